"""The observed children, reduced to what the decisions need.

These slim models are what the wire layer decodes Metacontroller's children into: everything
else in a child (managedFields, most of spec and status) is never materialised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from app.core import kinds
from app.core import labels as lbl

JSONObject = dict[str, Any]
POD_KEY = kinds.POD
SERVICE_KEY = kinds.SERVICE
TERMINAL_PHASES = ("Failed", "Succeeded")


class _Slim(msgspec.Struct, frozen=True):
    """Unknown fields are skipped while decoding: they cost nothing."""


_T = TypeVar("_T", bound=_Slim)


def parse(kind: type[_T], data: Any) -> _T:
    """A slim model from already-decoded JSON (tests, offline rendering)."""
    return msgspec.convert(data, kind)


class OwnerReference(_Slim, frozen=True):
    uid: str = ""
    kind: str = ""
    name: str = ""
    controller: bool = False


class ObjectMeta(_Slim, frozen=True):
    name: str
    namespace: str = ""
    uid: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    # Who controls the object: an address is only ever derived from what metaray owns (and a
    # submitter pod is matched to its Job by uid: Job names repeat across attempts).
    ownerReferences: list[OwnerReference] = []

    def controlled_by(self, uid: str) -> bool:
        return bool(uid) and any(r.controller and r.uid == uid for r in self.ownerReferences)

    def controlled_by_a(self, kind: str, uid: str) -> bool:
        """Controlled by the object of that kind and uid."""
        return self.controlled_by(uid) and any(
            r.controller and r.kind == kind and r.uid == uid for r in self.ownerReferences
        )


class Reason(_Slim, frozen=True):
    reason: str | None = None


class Terminated(Reason, frozen=True):
    exitCode: int = 0
    message: str | None = None
    finishedAt: str | None = None


class ContainerState(_Slim, frozen=True):
    waiting: Reason | None = None
    terminated: Terminated | None = None


class ContainerStatus(_Slim, frozen=True):
    name: str = ""
    ready: bool = False
    state: ContainerState | None = None
    # A restarted container's previous run (how it ended).
    lastState: ContainerState | None = None


class PodCondition(_Slim, frozen=True):
    type: str
    status: str = ""
    reason: str | None = None
    lastTransitionTime: str | None = None


class PodStatus(_Slim, frozen=True):
    phase: str = ""
    podIP: str = ""
    reason: str | None = None
    startTime: str | None = None
    conditions: list[PodCondition] = []
    containerStatuses: list[ContainerStatus] = []


class ContainerName(_Slim, frozen=True):
    name: str = ""


class PodSpec(_Slim, frozen=True):
    restartPolicy: str = "Always"
    containers: list[ContainerName] = []


class ObservedPod(_Slim, frozen=True):
    metadata: ObjectMeta
    kind: str = ""
    apiVersion: str = ""
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def terminating(self) -> bool:
        return self.metadata.deletionTimestamp is not None

    @property
    def finished(self) -> bool:
        """The pod will never run Ray again and must be replaced: it Failed or Succeeded, or
        its Ray container exited in a pod that does not restart containers (autoscaler v2
        keeps such a head Running through its sidecar)."""
        return self.status.phase in TERMINAL_PHASES or self.ray_exited

    @property
    def ray_exited(self) -> bool:
        if self.spec.restartPolicy == "Always" or not self.spec.containers:
            return False
        ray = self.spec.containers[0].name
        return any(
            status.name == ray and status.state is not None and status.state.terminated is not None
            for status in self.status.containerStatuses
        )

    @property
    def finish_reason(self) -> str:
        if self.ray_exited:
            return f"its Ray container exited and its restartPolicy is {self.spec.restartPolicy}"
        return f"its phase is {self.status.phase}"

    @property
    def running(self) -> bool:
        return self.status.phase == "Running"

    @property
    def ready(self) -> bool:
        return self.running and any(
            c.type == "Ready" and c.status == "True" for c in self.status.conditions
        )

    @property
    def cluster(self) -> str | None:
        return self.metadata.labels.get(lbl.CLUSTER)

    @property
    def node_type(self) -> str | None:
        return self.metadata.labels.get(lbl.NODE_TYPE)

    @property
    def group(self) -> str | None:
        return self.metadata.labels.get(lbl.GROUP)

    def timestamps(self) -> Iterator[str | None]:
        yield self.metadata.creationTimestamp
        yield self.metadata.deletionTimestamp
        yield self.status.startTime
        for condition in self.status.conditions:
            yield condition.lastTransitionTime


class ServicePort(_Slim, frozen=True):
    name: str = ""
    port: int = 0
    nodePort: int = 0
    targetPort: int | str | None = None


class ServiceSpec(_Slim, frozen=True):
    type: str = "ClusterIP"
    clusterIP: str = ""
    selector: dict[str, str] = {}
    externalName: str = ""
    ports: list[ServicePort] = []


class ObservedService(_Slim, frozen=True):
    metadata: ObjectMeta
    kind: str = ""
    apiVersion: str = ""
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)

    @property
    def name(self) -> str:
        return self.metadata.name


class ObservedObject(_Slim, frozen=True):
    """A child other than a pod or Service: its name, spec and status (Jobs, RayClusters)."""

    metadata: ObjectMeta
    kind: str = ""
    apiVersion: str = ""
    spec: dict[str, Any] = {}
    status: dict[str, Any] = {}
    # An EndpointSlice keeps its endpoints beside its metadata (a RayService counts them).
    endpoints: list[dict[str, Any]] = []
    # A Secret's values (base64): a RayService's cluster token, sent to its dashboard.
    data: dict[str, str] = {}

    def __repr__(self) -> str:
        # Never a Secret's values, wherever an object is printed.
        return f"ObservedObject({self.kind}.{self.apiVersion} {self.metadata.name!r})"

    @property
    def name(self) -> str:
        return self.metadata.name

    def has_condition(self, kind: str) -> bool:
        conditions = self.status.get("conditions")
        return isinstance(conditions, list) and any(
            isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
            for c in conditions
        )


class RawChild(Mapping[str, Any]):
    """A child exactly as metaray last asked for it, kept as the JSON text Metacontroller
    recorded (its last-applied configuration): answered byte for byte, never rebuilt.

    It reads like the object it encodes (parsed on first access), so callers that look inside
    do not need to care; the encoder writes ``text`` out as it is.
    """

    __slots__ = ("_parsed", "name", "text")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._parsed: dict[str, Any] | None = None

    def _object(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = json.loads(self.text)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._object()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._object())

    def __len__(self) -> int:
        return len(self._object())

    def __repr__(self) -> str:
        return f"RawChild({self.name!r})"


Child = JSONObject | RawChild


@dataclass(frozen=True, slots=True)
class Observed:
    """All observed children, plus for each one the object metaray last asked for.

    ``applied`` is keyed by (child-type key, name): the child's last-applied configuration,
    or the observed object without server-set fields where there is none. Answering it
    unchanged makes Metacontroller leave that child exactly as it is.
    """

    pods: tuple[ObservedPod, ...] = ()
    services: tuple[ObservedService, ...] = ()
    others: Mapping[str, tuple[ObservedObject, ...]] = field(default_factory=dict)
    applied: Mapping[tuple[str, str], Child] = field(default_factory=dict)
    # Optional child types (kinds.OPTIONAL) the request had no key for: not registered.
    unregistered: frozenset[str] = frozenset()

    def of_kind(self, kind: str) -> tuple[ObservedObject, ...]:
        return tuple(self.others.get(kind, ()))

    def keys(self) -> Iterator[tuple[str, str]]:
        """(child-type key, name) of every observed child."""
        for pod in self.pods:
            yield POD_KEY, pod.name
        for service in self.services:
            yield SERVICE_KEY, service.name
        for kind, objects in self.others.items():
            for obj in objects:
                yield kind, obj.metadata.name
