"""Carrying out ``SetHeadServeLabel``: the RayService core's wish for a head pod's
``ray.io/serve`` label, which Metacontroller cannot write (the pod is the RayCluster
controller's child, and pods are never updated: OnDelete).

Like the janitor: ``offer_all`` runs when the answer is sent and only queues (full: dropped and
counted); one background task sends the PATCHes with the hook's ServiceAccount (ClusterRole
``metaray-head-labeler``: pods, patch only). Each is a JSON merge patch of the label, and of the
reading it follows (``metaray.io/serve-proxy-read-at``), carrying ``metadata.uid``: the API
server refuses it (409) for a pod replaced under the same name. It sets a value, so sending it
twice changes nothing; an intent queued or in flight is not queued again, nor one that follows
a reading and was carried out. 404 (gone) and 409 count as done: the next sync decides from
what it observes then.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from app.rayservice.proxy import READ_AT, SERVE_LABEL, SetHeadServeLabel
from app.shell.kube.sender import ApiSender

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

MERGE_PATCH = "application/merge-patch+json"
DONE_SIZE = 4096  # intents remembered as carried out, least recent dropped first
_FINAL = {200: "patched", 404: "not_found", 409: "conflict"}

log = logging.getLogger("metaray.pod_labels")


class Counters(Protocol):
    def head_label(self, outcome: str) -> None: ...


class NoCounters:
    def head_label(self, outcome: str) -> None:
        pass


def path(intent: SetHeadServeLabel) -> str:
    namespace, name = quote(intent.namespace, safe=""), quote(intent.pod, safe="")
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


def body(intent: SetHeadServeLabel) -> dict[str, Any]:
    """The merge patch: the label, the reading it follows, and the uid as a precondition."""
    metadata: dict[str, Any] = {"uid": intent.uid, "labels": {SERVE_LABEL: intent.value}}
    if intent.read_at:
        metadata["annotations"] = {READ_AT: intent.read_at}
    return {"metadata": metadata}


class HeadLabeler(ApiSender[SetHeadServeLabel]):
    name = "metaray-head-labeler"

    def __init__(
        self,
        client: Callable[[], httpx.AsyncClient],
        counters: Counters | None = None,
        *,
        queue_size: int = 1000,
        done_size: int = DONE_SIZE,
    ) -> None:
        super().__init__(client, queue_size)
        self.counters: Counters = counters if counters is not None else NoCounters()
        self.done_size = done_size
        self.pending: set[SetHeadServeLabel] = set()
        self.done: OrderedDict[SetHeadServeLabel, None] = OrderedDict()

    def offer_all(self, intents: Iterable[Any]) -> None:
        """Queue each ``SetHeadServeLabel`` not already queued or carried out; never waits."""
        for intent in intents:
            if not isinstance(intent, SetHeadServeLabel):
                continue
            if intent in self.pending or intent in self.done:
                continue
            if not self.offer(intent):
                self.counters.head_label("dropped")
                continue
            self.pending.add(intent)

    async def send(self, client: httpx.AsyncClient, item: SetHeadServeLabel) -> None:
        response = await client.patch(
            path(item), json=body(item), headers={"Content-Type": MERGE_PATCH}
        )
        outcome = _FINAL.get(response.status_code)
        if outcome is None:
            detail = f"HTTP {response.status_code}: {response.text[:200]}"
            self._failed(item, "rejected", detail)
            return
        self.counters.head_label(outcome)
        if item.read_at:
            # A reading's wish is carried out once (a newer reading is a new wish). One that
            # follows no reading (excludeHeadPodFromServeSvc) is sent again while the observed
            # label differs, so that a label changed by someone else is put back.
            self.done[item] = None
            while len(self.done) > self.done_size:
                self.done.popitem(last=False)
        log.info(
            "set %s=%s on the head pod %s/%s: %s",
            SERVE_LABEL,
            item.value,
            item.namespace,
            item.pod,
            outcome,
        )

    def failed(self, item: SetHeadServeLabel, error: Exception) -> None:
        self._failed(item, "unreachable", type(error).__name__)

    def finished(self, item: SetHeadServeLabel) -> None:
        self.pending.discard(item)

    def dropped(self, count: int) -> None:
        for _ in range(count):
            self.counters.head_label("dropped")

    def _failed(self, item: SetHeadServeLabel, outcome: str, detail: str) -> None:
        """Not retried here: the next sync asks again while the label still differs."""
        self.counters.head_label(outcome)
        log.warning(
            "cannot set %s on the head pod %s/%s: %s",
            SERVE_LABEL,
            item.namespace,
            item.pod,
            detail,
        )
