"""Posting the core's Event intents as ``events.k8s.io/v1`` Events on their parent.

The parent is the RayCluster or the RayJob the answer was about (``regarding`` names its
apiVersion, kind, name, namespace and uid as sent); each kind has its own reporting controller,
as in KubeRay (``metaray.io/raycluster-controller``, ``metaray.io/rayjob-controller``).

Best effort and off the request path: ``enqueue`` runs after the response is sent and only
puts the Events on a bounded queue (full: dropped and counted); one background task posts them.
A failing API server is counted and logged once per kind of failure, never retried, and never
touches a sync answer.

Aggregation follows client-go's events/v1 broadcaster: an Event with the same regarding uid,
reason and note as one sent within ``window`` seconds is not created again; the existing
Event's ``series`` (count, lastObservedTime) is PATCHed instead. An invalid spec re-reported on
every resync is one Event whose count grows.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.core.events import Event
from app.shell.kube.sender import ApiSender
from app.shell.observability.redact import Redactor

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

CONTROLLER = "metaray.io/raycluster-controller"
RAYJOB_CONTROLLER = "metaray.io/rayjob-controller"
RAYSERVICE_CONTROLLER = "metaray.io/rayservice-controller"
_CONTROLLERS = {
    "RayCluster": CONTROLLER,
    "RayJob": RAYJOB_CONTROLLER,
    "RayService": RAYSERVICE_CONTROLLER,
}
NOTE_BYTES = 1024  # the API server rejects a longer note
WINDOW_SECONDS = 600.0  # client-go's correlator aggregates over 10 minutes
CACHE_SIZE = 4096  # client-go's LRU size
_ACTIONS = (
    ("Created", "Create"),
    ("Deleted", "Delete"),
    ("Updated", "Update"),
    ("Invalid", "Validate"),
)
_FINALIZE_REASONS = ("RedisCleanupFailed", "RedisCleanupSkipped")
# RayJob reasons whose verb does not say the action (KubeRay v1.7's events.k8s.io actions).
_RAYJOB_ACTIONS = {
    "RayClusterNotFound": "Validate",  # clusterSelector names a RayCluster that is not there
    "StoppingRayJob": "Delete",  # the RayJob is deleted: its Ray job is stopped first
    # RayService reasons whose verb does not say the action.
    "RayServiceInitializingTimeout": "Reconcile",
    "RollbackImpossible": "Reconcile",
    "FailedToUpdateServeApplications": "Update",
    "FailedToUpdateHeadPodServeLabel": "Update",
}

log = logging.getLogger("metaray.events")


class Counters(Protocol):
    def posted(self, outcome: str) -> None: ...

    def dropped(self, count: int = 1) -> None: ...


def action_of(reason: str) -> str:
    """Create, Delete, Update or Validate by the reason's verb; Finalize for the Redis
    cleanup; RayJob reasons without a verb by what they do."""
    if reason in _FINALIZE_REASONS:
        return "Finalize"
    if reason in _RAYJOB_ACTIONS:
        return _RAYJOB_ACTIONS[reason]
    return next((action for verb, action in _ACTIONS if reason.startswith(verb)), "Sync")


def controller_of(kind: str) -> str:
    """The reporting controller of Events about a parent of this kind."""
    return _CONTROLLERS.get(kind, CONTROLLER)


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Regarding:
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, parent: Mapping[str, Any]) -> Regarding | None:
        meta = parent.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        fields = [parent.get("apiVersion"), parent.get("kind"), *map(meta.get, _IDENTITY)]
        texts = [field for field in fields if isinstance(field, str) and field]
        if len(texts) != len(fields):
            return None  # nothing to attach an Event to
        api_version, kind, name, namespace, uid = texts
        return cls(api_version, kind, name, namespace, uid)

    def reference(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in ("apiVersion", "kind", *_IDENTITY)}


_IDENTITY = ("name", "namespace", "uid")


@dataclass(frozen=True, slots=True)
class Pending:
    """One Event waiting to be sent, stamped with the time its answer was computed."""

    regarding: Regarding
    type: str
    reason: str
    note: str
    time: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.regarding.uid, self.reason, self.note)


def event_body(name: str, pending: Pending, instance: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": pending.regarding.namespace},
        "eventTime": micro_time(pending.time),
        "reportingController": controller_of(pending.regarding.kind),
        "reportingInstance": instance,
        "action": action_of(pending.reason),
        "reason": pending.reason,
        "regarding": pending.regarding.reference(),
        "note": pending.note,
        "type": pending.type,
    }


def _note(message: str, redactor: Redactor) -> str:
    data = redactor.text(message).encode()
    if len(data) <= NOTE_BYTES:
        return data.decode()
    return data[: NOTE_BYTES - 3].decode(errors="ignore") + "..."


@dataclass(slots=True)
class _Series:
    name: str
    count: int
    last: datetime


class Correlator:
    """The Events sent lately, by (uid, reason, note): least recently seen dropped first."""

    def __init__(self, window: float = WINDOW_SECONDS, size: int = CACHE_SIZE) -> None:
        self.window = window
        self.size = size
        self.seen: OrderedDict[tuple[str, str, str], _Series] = OrderedDict()

    def recent(self, pending: Pending) -> _Series | None:
        series = self.seen.get(pending.key)
        if series is None or (pending.time - series.last).total_seconds() > self.window:
            return None
        return series

    def sent(self, pending: Pending, name: str, count: int) -> None:
        self.seen[pending.key] = _Series(name, count, pending.time)
        self.seen.move_to_end(pending.key)
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)


class EventSink(ApiSender[Pending]):
    name = "metaray-events"

    def __init__(
        self,
        client: Callable[[], httpx.AsyncClient],
        counters: Counters,
        *,
        instance: str,
        queue_size: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        correlator: Correlator | None = None,
    ) -> None:
        super().__init__(client, queue_size)
        self.counters = counters
        self.instance = instance
        self.clock = clock
        self.correlator = correlator or Correlator()
        self.failing: set[str] = set()
        self.last_name = 0

    async def enqueue(
        self, parent: Mapping[str, Any], events: Iterable[Event], redactor: Redactor
    ) -> None:
        """Queue an answer's Events (a background task of the response: it never waits)."""
        events = list(events)
        regarding = Regarding.of(parent)
        if regarding is None or self.queue is None:
            self.counters.dropped(len(events))
            return
        now = self.clock()
        for event in events:
            pending = Pending(
                regarding, event.type, event.reason, _note(event.message, redactor), now
            )
            if not self.offer(pending):
                self.counters.dropped()

    async def send(self, client: httpx.AsyncClient, item: Pending) -> None:
        await self._send(client, item)

    def failed(self, item: Pending, error: Exception) -> None:
        self._failed(type(error).__name__, "unreachable", repr(error))

    def dropped(self, count: int) -> None:
        self.counters.dropped(count)  # Events of answers still being sent are dropped

    async def _send(self, client: httpx.AsyncClient, pending: Pending) -> None:
        series = self.correlator.recent(pending)
        if series is not None:
            count = series.count + 1
            response = await client.patch(
                _path(pending, series.name),
                json={"series": {"count": count, "lastObservedTime": micro_time(pending.time)}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            if response.status_code != 404:  # 404: expired (event TTL): start a new one
                self._settled(response, pending, series.name, count, "patched")
                return
        name = self._name(pending)
        body = event_body(name, pending, self.instance)
        response = await client.post(_path(pending), json=body)
        self._settled(response, pending, name, 1, "created")

    def _settled(
        self, response: httpx.Response, pending: Pending, name: str, count: int, outcome: str
    ) -> None:
        if response.is_success:
            self.correlator.sent(pending, name, count)
            self.counters.posted(outcome)
            if self.failing:
                log.info(
                    "posting Events works again", extra={"fields": {"after": sorted(self.failing)}}
                )
                self.failing = set()
            return
        detail = response.text[:200]
        self._failed(f"HTTP {response.status_code}", "rejected", detail)

    def _failed(self, kind: str, outcome: str, detail: str) -> None:
        """Counted every time, logged once per kind of failure until posting works again."""
        self.counters.posted(outcome)
        if kind not in self.failing:
            self.failing.add(kind)
            message = f"cannot post Kubernetes Events ({kind}); further failures like it are "
            log.warning(message + "counted, not logged", extra={"fields": {"detail": detail}})

    def _name(self, pending: Pending) -> str:
        """``<parent>.<hex nanoseconds>`` as client-go names them, strictly increasing."""
        nanos = int(pending.time.timestamp() * 1_000_000) * 1000
        self.last_name = max(nanos, self.last_name + 1)
        return f"{pending.regarding.name}.{self.last_name:x}"


def _path(pending: Pending, name: str | None = None) -> str:
    path = f"/apis/events.k8s.io/v1/namespaces/{pending.regarding.namespace}/events"
    return f"{path}/{name}" if name else path
