"""Deleting RayJobs whose ``DeleteSelf`` deletion policy is due: the core's ``delete_parent``.

A hook cannot delete its own parent through Metacontroller, so the shell does it with the hook's
ServiceAccount, like the Events: ``enqueue`` runs after the response has been sent and only puts
the RayJob on a bounded queue (full: dropped and counted); one background task sends the DELETEs.
A failure is counted and logged and never touches an answer; it is not retried here, but the
next sync of the RayJob (Metacontroller's resync) asks again.

Each DELETE carries ``preconditions.uid``: a RayJob deleted meanwhile and recreated under the
same name is never deleted by an answer about its predecessor (the API server answers 409).
404 (already gone) and 409 count as done. A RayJob queued, in flight or already deleted by this
process is not queued again, so a resync racing the deletion sends one DELETE, not two.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from app.shell.kube.sender import ApiSender
from app.shell.observability.redact import Redactor

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

DONE_SIZE = 4096  # uids remembered as deleted, least recent dropped first
RAYJOB = "RayJob"
DEFAULT_API_VERSION = "ray.io/v1"
# The outcomes after which the RayJob needs nothing more from this process.
_FINAL = {200: "deleted", 202: "deleted", 404: "not_found", 409: "conflict"}

log = logging.getLogger("metaray.janitor")


class Counters(Protocol):
    def deletion(self, outcome: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """The RayJob an answer was about, as it was sent."""

    api_version: str
    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, parent: Mapping[str, Any]) -> Target | None:
        """None unless ``parent`` is a RayJob with a name, namespace and uid, not already
        being deleted."""
        meta = parent.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        if parent.get("kind") != RAYJOB or meta.get("deletionTimestamp"):
            return None
        name, namespace, uid = (meta.get(key) for key in ("name", "namespace", "uid"))
        if not all(isinstance(v, str) and v for v in (name, namespace, uid)):
            return None
        api_version = parent.get("apiVersion")
        if not (isinstance(api_version, str) and api_version.startswith("ray.io/")):
            api_version = DEFAULT_API_VERSION
        return cls(api_version, str(name), str(namespace), str(uid))

    @property
    def path(self) -> str:
        namespace, name = quote(self.namespace, safe=""), quote(self.name, safe="")
        return f"/apis/{self.api_version}/namespaces/{namespace}/rayjobs/{name}"

    def body(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": self.uid},
            "propagationPolicy": "Background",
        }

    def fields(self, outcome: str) -> dict[str, str]:
        return {
            "rayjob": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "outcome": outcome,
        }


class Janitor(ApiSender[tuple[Target, Redactor]]):
    name = "metaray-janitor"

    def __init__(
        self,
        client: Callable[[], httpx.AsyncClient],
        counters: Counters,
        *,
        queue_size: int = 1000,
        done_size: int = DONE_SIZE,
    ) -> None:
        super().__init__(client, queue_size)
        self.counters = counters
        self.done_size = done_size
        self.pending: set[str] = set()  # uids queued or being deleted
        self.done: OrderedDict[str, None] = OrderedDict()

    async def enqueue(self, parent: Mapping[str, Any], redactor: Redactor) -> None:
        """Queue the answer's RayJob for deletion (a background task of the response: it
        never waits)."""
        target = Target.of(parent)
        if target is None or target.uid in self.pending or target.uid in self.done:
            return
        if self.queue is None:
            self.counters.deletion("dropped")
            return
        if not self.offer((target, redactor)):
            self.counters.deletion("dropped")
            log.warning(
                "cannot delete RayJob %s/%s for DeleteSelf now: the queue is full",
                target.namespace,
                target.name,
                extra={"fields": target.fields("dropped")},
            )
            return
        self.pending.add(target.uid)

    async def send(self, client: httpx.AsyncClient, item: tuple[Target, Redactor]) -> None:
        await self._delete(client, *item)

    def failed(self, item: tuple[Target, Redactor], error: Exception) -> None:
        target, redactor = item
        self._failed(target, "unreachable", type(error).__name__, redactor)

    def finished(self, item: tuple[Target, Redactor]) -> None:
        self.pending.discard(item[0].uid)

    def dropped(self, count: int) -> None:
        for _ in range(count):
            self.counters.deletion("dropped")

    async def _delete(self, client: httpx.AsyncClient, target: Target, redactor: Redactor) -> None:
        response = await client.request("DELETE", target.path, json=target.body())
        outcome = _FINAL.get(response.status_code)
        if outcome is None:
            detail = f"HTTP {response.status_code}: {response.text[:200]}"
            self._failed(target, "rejected", detail, redactor)
            return
        self.counters.deletion(outcome)
        self.done[target.uid] = None
        while len(self.done) > self.done_size:
            self.done.popitem(last=False)
        message = {
            "deleted": "deleted RayJob %s/%s: its DeleteSelf policy is due",
            "not_found": "RayJob %s/%s, due for DeleteSelf, is already gone",
            "conflict": "RayJob %s/%s, due for DeleteSelf, was not deleted: it was recreated",
        }[outcome]
        log.info(
            redactor.text(message % (target.namespace, target.name)),
            extra={"fields": redactor.value(target.fields(outcome))},
        )

    def _failed(self, target: Target, outcome: str, detail: str, redactor: Redactor) -> None:
        """Counted and logged every time: a RayJob is asked for again once per resync only."""
        self.counters.deletion(outcome)
        message = f"cannot delete RayJob {target.namespace}/{target.name} for DeleteSelf"
        fields = target.fields(outcome) | {"error": detail}
        log.warning(redactor.text(message), extra={"fields": redactor.value(fields)})
