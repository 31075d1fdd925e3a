"""What must hold for every request, however hostile, checked from the request itself.

The cardinal rule: Metacontroller deletes every observed child that a 200 answer leaves out.
So an answer may leave a child out only by a rule of Part A ("Scaling"), judged here from the
raw request (the parent's spec as sent, the pod's own labels, phase and annotations), not from
metaray's decisions; where the core's plan is at hand, the reason it gives must be that rule.

- decoding either succeeds or raises ``BadRequest`` (a 400); sync and finalize never raise
  (that would be a 5xx);
- the answer encodes to a JSON object ``{children, status}`` (plus a boolean ``finalized`` on
  /finalize), with no ``observedGeneration`` and no ``finalized`` in the status;
- every answered child names its apiVersion, kind and name, and no (kind, name) twice;
- an invalid spec (state ``failed``) answers exactly the observed children: none removed, none
  added;
- otherwise an observed child may be missing only if it is a pod that a rule removes, or a
  child of a type metaray builds from the spec (Service, Ingress, RBAC, Job) that the spec no
  longer asks for; children of other types always stay;
- with autoscaling off, a group loses exactly its surplus over the clamped target.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from app.core.desired import Desired
from app.hooks.request import BadRequest, decode
from app.hooks.response import encode
from app.raycluster.scaling import (
    GROUP_REMOVED,
    SUSPENDED,
    TEMPLATE_CHANGED,
    WORKERS_TO_DELETE,
    Plan,
)
from app.raycluster.sync import finalize, sync
from tests.fuzz.strategies import current_hashes

LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
HASH = "ray.io/pod-template-hash"
POD = "Pod.v1"
JOB = "Job.batch/v1"
# The child types metaray rebuilds from the spec on every sync (written out, not imported).
BUILT = frozenset(
    {
        "Service.v1",
        "Ingress.networking.k8s.io/v1",
        "ServiceAccount.v1",
        "Role.rbac.authorization.k8s.io/v1",
        "RoleBinding.rbac.authorization.k8s.io/v1",
        JOB,
        "Secret.v1",
        "NetworkPolicy.networking.k8s.io/v1",
        "PersistentVolumeClaim.v1",
        "Issuer.cert-manager.io/v1",
        "Certificate.cert-manager.io/v1",
    }
)
SECRET = "Secret.v1"
FINISHED = ("Failed", "Succeeded")
INT32_MAX = 2**31 - 1

# The spec's scalars, read the way its (lax) model reads them.
_BOOL: TypeAdapter[bool] = TypeAdapter(bool)
_INT: TypeAdapter[int] = TypeAdapter(int)
_STR: TypeAdapter[str] = TypeAdapter(str, config=ConfigDict(coerce_numbers_to_str=True))


def _read(obj: Any, key: str, adapter: TypeAdapter[Any], default: Any) -> Any:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return default if value is None else adapter.validate_python(value)


@dataclass(frozen=True)
class GroupView:
    name: str
    target: int
    suspended: bool
    listed: frozenset[str]


@dataclass(frozen=True)
class SpecView:
    """The parts of an accepted RayCluster the scaling rules depend on."""

    name: str
    suspend: bool
    autoscaling: bool
    recreate: bool
    groups: dict[str, GroupView]
    parent: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, parent: Mapping[str, Any]) -> SpecView:
        spec = parent["spec"]
        suspend = _read(spec, "suspend", _BOOL, False)
        strategy = spec.get("upgradeStrategy")
        groups = {}
        for raw in spec.get("workerGroupSpecs") or []:
            name = _read(raw, "groupName", _STR, None)
            minimum = _read(raw, "minReplicas", _INT, 0)
            maximum = _read(raw, "maxReplicas", _INT, INT32_MAX)
            replicas = _read(raw, "replicas", _INT, None)
            hosts = _read(raw, "numOfHosts", _INT, 1)
            suspended = suspend or _read(raw, "suspend", _BOOL, False)
            wanted = minimum if replicas is None else replicas
            target = 0 if suspended else max(minimum, min(wanted, maximum)) * hosts
            scale = raw.get("scaleStrategy")
            listed = _read(scale, "workersToDelete", TypeAdapter(list[Any]), [])
            names = frozenset(_STR.validate_python(victim) for victim in listed)
            groups[name] = GroupView(name, target, suspended, names)
        return cls(
            name=parent["metadata"]["name"],
            suspend=suspend,
            autoscaling=_read(spec, "enableInTreeAutoscaling", _BOOL, False),
            recreate=isinstance(strategy, Mapping) and strategy.get("type") == "Recreate",
            groups=groups,
            parent=parent,
        )


@dataclass(frozen=True)
class Seen:
    """One observed child, as the request states it."""

    key: str
    name: str
    obj: Mapping[str, Any] = field(repr=False)

    @property
    def labels(self) -> Mapping[str, Any]:
        return self.obj["metadata"].get("labels") or {}

    @property
    def annotations(self) -> Mapping[str, Any]:
        return self.obj["metadata"].get("annotations") or {}

    @property
    def terminating(self) -> bool:
        return self.obj["metadata"].get("deletionTimestamp") is not None

    @property
    def phase(self) -> Any:
        status = self.obj.get("status")
        return status.get("phase") if isinstance(status, Mapping) else None

    def describe(self) -> str:
        return (
            f"{self.key} {self.name!r} labels={dict(self.labels)} phase={self.phase!r} "
            f"terminating={self.terminating}"
        )


def observed(request: Mapping[str, Any]) -> list[Seen]:
    found = []
    for key, objects in (request.get("children") or {}).items():
        for obj in objects.values():
            found.append(Seen(key, obj["metadata"]["name"], obj))
    return found


def identity(child: Any) -> tuple[str, str]:
    """(``<Kind>.<apiVersion>``, name): how Metacontroller matches it to an observed child."""
    assert isinstance(child, dict), f"an answered child is not an object: {child!r:.200}"
    kind, version, meta = child.get("kind"), child.get("apiVersion"), child.get("metadata")
    assert isinstance(kind, str) and kind, f"an answered child has no kind: {child!r:.300}"
    assert isinstance(version, str) and version, f"an answered child has no apiVersion: {kind}"
    assert isinstance(meta, dict), f"an answered {kind} has no metadata"
    name = meta.get("name")
    assert isinstance(name, str), f"an answered {kind} has no name: {meta!r:.200}"
    return f"{kind}.{version}", name


# -- why a pod may leave -----------------------------------------------------------------------
def grounds(pod: Seen, view: SpecView, hashes: Mapping[str | None, str]) -> set[str]:
    """Every Part A rule by which this observed pod may be left out of a sync answer."""
    labels = pod.labels
    if labels.get("ray.io/cluster") != view.name:
        return set()  # not a pod of this cluster: no rule applies to it
    node_type, group = labels.get("ray.io/node-type"), labels.get("ray.io/group")
    found = set()
    if node_type == "head":
        if pod.phase in FINISHED:
            found.add("finished")
        if view.suspend:
            found.add("suspended")
        if view.recreate and pod.annotations.get(HASH) != hashes.get(None):
            found.add("template")
    elif node_type == "worker" and isinstance(group, str):
        if pod.phase in FINISHED:
            found.add("finished")
        spec_group = view.groups.get(group)
        if spec_group is None:
            found.add("group_removed")
        else:
            if pod.name in spec_group.listed:
                found.add("listed")
            if spec_group.suspended:
                found.add("suspended")
            if not view.autoscaling:
                found.add("surplus")  # the count is checked per group
            if view.recreate and pod.annotations.get(HASH) != hashes.get(group):
                found.add("template")
    return found


def rule_of(why: str, pod: Seen) -> str:
    """The rule a plan's reason names (an unknown reason names none)."""
    if why == WORKERS_TO_DELETE:
        return "listed"
    if why == GROUP_REMOVED:
        return "group_removed"
    if why == SUSPENDED:
        return "suspended"
    if why == TEMPLATE_CHANGED:
        return "template"
    if why.startswith("surplus"):
        return "surplus"
    if why == f"its phase is {pod.phase}":
        return "finished"
    return f"unknown reason {why!r}"


def live_members(pods: list[Seen], view: SpecView, group: GroupView) -> list[Seen]:
    """The group's pods that count toward its target: this cluster's, not finishing, not listed."""
    return [
        pod
        for pod in pods
        if pod.labels.get("ray.io/cluster") == view.name
        and pod.labels.get("ray.io/node-type") == "worker"
        and pod.labels.get("ray.io/group") == group.name
        and not pod.terminating
        and pod.phase not in FINISHED
        and pod.name not in group.listed
    ]


# -- the checks ----------------------------------------------------------------------------------
def check_answer(
    request: Mapping[str, Any], answer: bytes, hook: str, plan: Plan | None = None
) -> str:
    """Assert every invariant of one answer; returns the answer's state for statistics."""
    body = json.loads(answer)
    assert isinstance(body, dict), f"the answer is not a JSON object: {answer[:200]!r}"
    wanted_keys = {"children", "status"} | ({"finalized"} if hook == "finalize" else set())
    assert set(body) == wanted_keys, f"answer keys {sorted(body)} on /{hook}"
    status, children = body["status"], body["children"]
    assert isinstance(status, dict), f"status is not an object: {status!r:.200}"
    assert isinstance(children, list), f"children is not a list: {children!r:.200}"
    assert "observedGeneration" not in status, "status sets observedGeneration"
    assert "finalized" not in status, "status carries finalized"
    if hook == "finalize":
        assert isinstance(body["finalized"], bool), f"finalized is {body['finalized']!r}"

    answered = Counter(identity(child) for child in children)
    twice = sorted(key for key, times in answered.items() if times > 1)
    assert not twice, f"the answer names these children more than once: {twice}"

    seen = observed(request)
    kept = {(pod.key, pod.name) for pod in seen}
    missing = [child for child in seen if (child.key, child.name) not in answered]
    failed = status.get("state") == "failed"
    if failed:
        lost = [child.describe() for child in missing]
        assert not lost, f"an invalid spec lost observed children: {lost}"
        added = sorted(set(answered) - kept)
        assert not added, f"an invalid spec created children: {added}"
        return "failed"
    if hook == "finalize":
        _check_finalize(request, missing)
    else:
        pods = {name for key, name in answered if key == POD}
        _check_sync(request, seen, missing, pods, plan)
    return "answered"


def _check_finalize(request: Mapping[str, Any], missing: list[Seen]) -> None:
    """A finalize answer removes pods and Jobs only while cleaning a fault-tolerant cluster."""
    parent = request["parent"]
    annotations = parent["metadata"].get("annotations")
    annotations = annotations if isinstance(annotations, Mapping) else {}
    flag = annotations.get("ray.io/ft-enabled")
    spec = parent["spec"]
    fault_tolerant = (isinstance(flag, str) and flag.lower() == "true") or spec.get(
        "gcsFaultToleranceOptions"
    ) is not None
    for child in missing:
        allowed = fault_tolerant and child.key in (POD, JOB)
        assert allowed, f"finalize lost {child.describe()} (fault tolerant: {fault_tolerant})"


def _check_sync(
    request: Mapping[str, Any],
    seen: list[Seen],
    missing: list[Seen],
    answered_pods: set[str],
    plan: Plan | None,
) -> None:
    for child in missing:
        assert child.key == POD or child.key in BUILT, f"sync lost {child.describe()}"
    try:
        view = SpecView.of(request["parent"])
    except Exception as error:  # the oracle cannot read what metaray acted on
        raise AssertionError(f"sync acted on a spec it should have refused: {error}") from error
    _check_token_secret(request, seen, missing, answered_pods)
    hashes = current_hashes(dict(request["parent"])) if view.recreate else {}
    pods = [child for child in seen if child.key == POD]
    gone = [pod for pod in missing if pod.key == POD and not pod.terminating]
    removals = {removal.name: removal for removal in plan.remove} if plan is not None else {}
    for pod in gone:
        holds = grounds(pod, view, hashes)
        if plan is None:
            assert holds, f"sync lost a pod no rule removes: {pod.describe()}"
            continue
        removal = removals.get(pod.name)
        assert removal is not None, f"sync lost a pod its plan keeps: {pod.describe()}"
        rule = rule_of(removal.why, pod)
        assert rule in holds, (
            f"sync removed {pod.describe()} because {removal.why!r}, but only {sorted(holds)} "
            "apply to it"
        )
    if plan is not None:
        answered_anyway = sorted(set(removals) & answered_pods)
        assert not answered_anyway, f"the plan removes pods the answer keeps: {answered_anyway}"
    for group in view.groups.values():
        if group.suspended:
            continue
        live = live_members(pods, view, group)
        surplus = 0 if view.autoscaling else max(0, len(live) - group.target)
        if plan is not None:
            cut = [
                r.name for r in plan.remove if r.group == group.name and r.why.startswith("surplus")
            ]
        else:
            cut = [pod.name for pod in live if pod.name not in answered_pods]
        stale = [
            pod
            for pod in live
            if view.recreate and pod.annotations.get(HASH) != hashes.get(group.name)
        ]
        if plan is None and stale:
            assert len(cut) <= surplus + len(stale), (group, cut, surplus)
        else:
            assert len(cut) == surplus, (
                f"group {group.name!r} (target {group.target}, {len(live)} live pods, "
                f"autoscaling {view.autoscaling}) has a surplus of {surplus}, but these "
                f"{len(cut)} of its live pods left: {cut}"
            )


def _check_token_secret(
    request: Mapping[str, Any], seen: list[Seen], missing: list[Seen], answered_pods: set[str]
) -> None:
    """With metaray's own token Secret: never dropped once observed, and no new pod before."""
    options = request["parent"]["spec"].get("authOptions") or {}
    if (
        options.get("mode") != "token"
        or options.get("secretName")
        or options.get("enableK8sTokenAuth")
    ):
        return
    name = request["parent"]["metadata"]["name"]
    observed_secret = any(child.key == SECRET and child.name == name for child in seen)
    if observed_secret:
        assert not [c for c in missing if c.key == SECRET and c.name == name], "token lost"
    else:
        pods = {child.name for child in seen if child.key == POD}
        created = sorted(answered_pods - pods)
        assert not created, f"pods created before the token Secret was observed: {created}"


def parse_request(body: bytes) -> Any:
    """The request the hook accepted. Bytes it never reads (the controller, a child's spec)
    may be anything, even invalid UTF-8: those cannot change what the oracle looks at."""
    return json.loads(body.decode("utf-8", errors="replace"))


# -- running the core and the app -----------------------------------------------------------------
ENTROPY = bytes(range(32))


def run_core(body: bytes, hook: str) -> Desired | None:
    """The hook's answer in-process, None for a request the hook must refuse (a 400)."""
    try:
        request = decode(body)
    except BadRequest:
        return None
    decide = finalize if hook == "finalize" else sync
    # As the shell does: random bytes for a token Secret (authOptions), fixed here.
    return decide(request.parent, request.observed, entropy=ENTROPY)


def check_core(body: bytes, hook: str = "sync") -> str:
    """decode + sync/finalize + encode, and every invariant; returns the outcome."""
    desired = run_core(body, hook)
    if desired is None:
        return "bad request"
    return check_answer(parse_request(body), encode(desired), hook, desired.plan)


def check_http(body: bytes, status: int, answer: bytes, hook: str = "sync") -> str:
    """What an HTTP answer to ``body`` must look like; returns the outcome."""
    assert status in (200, 400, 413, 429), f"/{hook} answered {status}: {answer[:300]!r}"
    if status != 200:
        error = json.loads(answer)
        assert isinstance(error, dict), f"a {status} without a JSON error: {answer[:200]!r}"
        assert isinstance(error.get("error"), str), f"a {status} without an error: {error}"
        return str(status)
    return check_answer(parse_request(body), answer, hook)
