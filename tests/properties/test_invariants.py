"""Properties of the sync hook over generated RayClusters and generated observed pods.

Each example is a valid spec (1-3 worker groups, small replicas/min/max, optional
workersToDelete, autoscaling on or off) and a set of observed pods shaped exactly like the
ones Metacontroller sends (labels, the last-applied annotation, status, some terminating),
named by metaray's own naming or by someone else, belonging to the spec's groups, to groups
that were removed from the spec, to the head, or to no Ray group at all. The request goes
through the wire decoder, as it does in production.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from itertools import count
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, decode
from app.hooks.response import encode
from app.raycluster.names import pod_name
from app.raycluster.scaling import GROUP_REMOVED, WORKERS_TO_DELETE
from app.raycluster.sync import sync
from tests.loop import POD, SERVICE, Loop, cluster_spec, group, raycluster

# -- Kubernetes' own name rules (apimachinery validation), written out independently ----------
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

STAMP = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"
IMAGE = "rayproject/ray:2.52.0"
PHASES = ("Pending", "Running", "Failed", "Succeeded")
FINISHED = ("Failed", "Succeeded")
HEAD_GROUP = "headgroup"

# No "explain" phase: it re-runs a failing test many times after shrinking, for little gain.
PHASES_RUN = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
FAST = settings(max_examples=120, deadline=None, print_blob=True, phases=PHASES_RUN)
SLOW = settings(
    max_examples=75,
    deadline=None,
    print_blob=True,
    phases=PHASES_RUN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- generated worlds ------------------------------------------------------------------------
@dataclass(frozen=True)
class PodFact:
    """What the test knows about one generated observed pod."""

    name: str
    node_type: str | None  # "head", "worker", or None: no Ray labels at all
    group: str | None  # the ray.io/group label ("headgroup" for the head)
    ordinal: int | None  # set when the name is metaray's own pod_name(..., ordinal)
    phase: str
    ready: bool
    terminating: bool

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def running(self) -> bool:
        return self.phase == "Running"


@dataclass(frozen=True, repr=False)
class World:
    parent: dict[str, Any]
    pods: tuple[PodFact, ...]
    request: dict[str, Any]
    hook_version: str

    def __repr__(self) -> str:
        """What a failing example needs to show, without the full request bodies."""
        spec = self.parent["spec"]
        lines = [
            f"World(cluster={self.name!r}, namespace={self.namespace!r}, uid={self.uid!r}, "
            f"hook={self.hook_version}, autoscaling={self.autoscaling}, "
            f"observed_service={bool(self.request['children'][SERVICE])})"
        ]
        for g in spec["workerGroupSpecs"]:
            lines.append(
                f"  group {g['groupName']!r}: replicas={g.get('replicas')} "
                f"min={g['minReplicas']} max={g['maxReplicas']} target={target(g)} "
                f"workersToDelete={self.listed(g['groupName'])}"
            )
        for f in self.pods:
            lines.append(
                f"  pod {f.name!r}: {f.node_type}/{f.group} ordinal={f.ordinal} {f.phase}"
                f"{' ready' if f.ready else ''}{' terminating' if f.terminating else ''}"
            )
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    @property
    def name(self) -> str:
        return str(self.parent["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.parent["metadata"]["namespace"])

    @property
    def uid(self) -> str:
        return str(self.parent["metadata"]["uid"])

    @property
    def groups(self) -> dict[str, dict[str, Any]]:
        return {g["groupName"]: g for g in self.parent["spec"]["workerGroupSpecs"]}

    @property
    def autoscaling(self) -> bool:
        return bool(self.parent["spec"].get("enableInTreeAutoscaling"))

    def body(self) -> bytes:
        return orjson.dumps(self.request)

    def listed(self, group_name: str) -> list[str]:
        spec = self.groups[group_name]
        return list((spec.get("scaleStrategy") or {}).get("workersToDelete") or [])

    def all_listed(self) -> set[str]:
        return {name for g in self.groups for name in self.listed(g)}

    def is_listed(self, fact: PodFact) -> bool:
        """Named in the workersToDelete of its own (still existing) group."""
        return (
            fact.node_type == "worker"
            and fact.group in self.groups
            and fact.name in self.listed(fact.group)
        )

    def live(self, group_name: str) -> list[PodFact]:
        """The group's pods that count toward its target (Part A "Scaling")."""
        return [
            f
            for f in self.pods
            if f.node_type == "worker"
            and f.group == group_name
            and not f.terminating
            and not f.finished
            and not self.is_listed(f)
        ]

    def live_heads(self) -> list[PodFact]:
        return [
            f for f in self.pods if f.node_type == "head" and not f.terminating and not f.finished
        ]


def target(spec: dict[str, Any]) -> int:
    """clamp(replicas ?? minReplicas, minReplicas, maxReplicas), straight from Part A."""
    minimum, maximum = spec["minReplicas"], spec["maxReplicas"]
    wanted = spec.get("replicas")
    wanted = minimum if wanted is None else wanted
    return max(minimum, min(wanted, maximum))


DNS_GROUP_NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda n: n != HEAD_GROUP
)


@st.composite
def wide_group_names(draw: st.DrawFn) -> str:
    """Anything metaray says it accepts as a group name: a label value of lower-case letters,
    digits, '-' and '.' (up to 63 characters), with the separators in every combination."""
    words = draw(st.lists(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), min_size=1, max_size=6))
    separators = st.sampled_from(["-", ".", "--", "-.", ".-", ".."])
    name = words[0]
    for word in words[1:]:
        name += draw(separators) + word
    name = name[:63].rstrip("-.")
    return name if name != HEAD_GROUP else "x" + name


WIDE_GROUP_NAMES = wide_group_names()
SHORT_CLUSTER_NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
LONG_CLUSTER_NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,51}[a-z0-9])?", fullmatch=True)
NAMESPACES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
FOREIGN_NAMES = st.from_regex(r"[a-z][a-z0-9]{2,8}-[a-z0-9]{1,6}", fullmatch=True)
# Where a group's ordinals start: new names take the lowest free ordinal, so the pods of a
# young group sit near 0, while after much churn (workersToDelete) they can all sit far above.
ORDINAL_BASES = st.sampled_from([0, 0, 20, 45])


@st.composite
def worlds(
    draw: st.DrawFn,
    group_names: st.SearchStrategy[str] = DNS_GROUP_NAMES,
    cluster_names: st.SearchStrategy[str] = SHORT_CLUSTER_NAMES,
) -> World:
    cluster = draw(cluster_names)
    namespace = draw(NAMESPACES)
    uid = str(draw(st.uuids()))
    autoscaling = draw(st.booleans())
    names = draw(st.lists(group_names, min_size=1, max_size=5, unique=True))
    in_spec = draw(st.integers(1, min(3, len(names))))
    spec_names, removed_names = names[:in_spec], names[in_spec:]

    facts: dict[str, PodFact] = {}
    for group_name in [None, *spec_names, *removed_names]:
        base = draw(ORDINAL_BASES)
        for _ in range(draw(st.integers(0, 2 if group_name is None else 5))):
            own = draw(st.integers(0, 3)) > 0
            ordinal = base + draw(st.integers(0, 8)) if own else None
            name = (
                pod_name(cluster, uid, group_name, ordinal)
                if ordinal is not None
                else draw(FOREIGN_NAMES)
            )
            phase = draw(st.sampled_from(PHASES))
            fact = PodFact(
                name=name,
                node_type="head" if group_name is None else "worker",
                group=HEAD_GROUP if group_name is None else group_name,
                ordinal=ordinal,
                phase=phase,
                ready=phase == "Running" and draw(st.booleans()),
                terminating=draw(st.integers(0, 4)) == 0,
            )
            facts.setdefault(name, fact)
    for _ in range(draw(st.integers(0, 1))):
        phase = draw(st.sampled_from(PHASES))
        name = draw(FOREIGN_NAMES)
        facts.setdefault(name, PodFact(name, None, None, None, phase, False, False))

    groups = []
    for group_name in spec_names:
        minimum = draw(st.integers(0, 3))
        maximum = draw(st.integers(minimum, minimum + 3))
        replicas = draw(st.none() | st.integers(0, maximum + 2))
        # workersToDelete may name this group's pods, other groups' pods, and names that
        # are no pod at all (metaray's own unused names among them).
        unused = [
            pod_name(cluster, uid, group_name, k)
            for k in range(6)
            if pod_name(cluster, uid, group_name, k) not in facts
        ]
        candidates = sorted(facts) + unused + ["not-a-pod"]
        victims = draw(st.just([]) | st.lists(st.sampled_from(candidates), max_size=4, unique=True))
        extra: dict[str, Any] = {}
        if victims:
            extra["scaleStrategy"] = {"workersToDelete": victims}
        groups.append(group(group_name, replicas, minimum, maximum, **extra))

    spec = cluster_spec(*groups, enableInTreeAutoscaling=autoscaling)
    parent = raycluster(spec, name=cluster, namespace=namespace, uid=uid)
    hook_version = draw(st.sampled_from(["v1", "v2"]))
    pods = tuple(facts.values())
    serial = count(1)
    observed = {fact.name: pod_object(parent, fact, next(serial)) for fact in pods}
    children: dict[str, dict[str, Any]] = {POD: {}, SERVICE: {}}
    for name, obj in observed.items():
        children[POD][key(namespace, name, hook_version)] = obj
    service = observed_service(parent, next(serial)) if draw(st.booleans()) else None
    if service is not None:
        children[SERVICE][key(namespace, service["metadata"]["name"], hook_version)] = service
    request = {
        "controller": {
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "metaray"},
        },
        "parent": parent,
        "children": children,
        "related": {},
        "finalizing": False,
    }
    return World(parent, pods, request, hook_version)


def key(namespace: str, name: str, hook_version: str) -> str:
    return f"{namespace}/{name}" if hook_version == "v2" else name


def last_applied(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def server_metadata(parent: dict[str, Any], serial: int) -> dict[str, Any]:
    return {
        "uid": f"child-uid-{serial}",
        "resourceVersion": str(1000 + serial),
        "creationTimestamp": STAMP,
        "ownerReferences": [
            {
                "apiVersion": parent["apiVersion"],
                "kind": "RayCluster",
                "name": parent["metadata"]["name"],
                "uid": parent["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": [
            {
                "manager": "metacontroller",
                "operation": "Update",
                "apiVersion": "v1",
                "time": STAMP,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {}}},
            }
        ],
    }


def pod_object(parent: dict[str, Any], fact: PodFact, serial: int) -> dict[str, Any]:
    """A pod as Metacontroller sends it: what was applied, plus server fields and status."""
    cluster = parent["metadata"]["name"]
    labels = {"controller-uid": parent["metadata"]["uid"]}
    if fact.node_type is None:
        labels["app"] = "sidecar"
    else:
        labels |= {
            "ray.io/cluster": cluster,
            "ray.io/node-type": fact.node_type,
            "ray.io/group": str(fact.group),
            "ray.io/identifier": f"{cluster}-{fact.node_type}",
            "ray.io/is-ray-node": "yes",
        }
    applied = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": fact.name,
            "namespace": parent["metadata"]["namespace"],
            "labels": dict(sorted(labels.items())),
        },
        "spec": {"containers": [{"name": "ray", "image": IMAGE}]},
    }
    metadata = copy.deepcopy(applied["metadata"])
    metadata["annotations"] = {LAST_APPLIED: last_applied(applied)}
    metadata |= server_metadata(parent, serial)
    if fact.terminating:
        metadata |= {"deletionTimestamp": LATER, "deletionGracePeriodSeconds": 30}
    status: dict[str, Any] = {"phase": fact.phase, "qosClass": "BestEffort"}
    if fact.phase != "Pending":
        ready = "True" if fact.ready else "False"
        status |= {
            "podIP": f"10.1.{serial // 250}.{serial % 250}",
            "startTime": STAMP,
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": STAMP}],
            "containerStatuses": [{"name": "ray", "ready": fact.ready, "state": {}}],
        }
    spec = {
        **copy.deepcopy(applied["spec"]),
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "nodeName": "node-1",
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def observed_service(parent: dict[str, Any], serial: int) -> dict[str, Any] | None:
    """The head Service metaray asks for, as the API server then holds it (if it asks)."""
    desired = sync(parent, decode(orjson.dumps({"parent": parent})).observed)
    services = [c for c in desired.children if c["kind"] == "Service"]
    if not services:
        return None
    applied = copy.deepcopy(services[0])
    applied["metadata"].setdefault("labels", {})["controller-uid"] = parent["metadata"]["uid"]
    obj = copy.deepcopy(applied)
    obj["metadata"]["annotations"] = {
        **obj["metadata"].get("annotations", {}),
        LAST_APPLIED: last_applied(applied),
    }
    obj["metadata"] |= server_metadata(parent, serial)
    for port in obj["spec"].get("ports", []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    obj["status"] = {"loadBalancer": {}}
    return obj


# -- running the hook --------------------------------------------------------------------------
def run(body: bytes) -> Desired:
    request = decode(body)
    return sync(request.parent, request.observed)


def answer_bytes(desired: Desired) -> bytes:
    return encode(desired)


def answered_pods(desired: Desired) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in desired.children if c["kind"] == "Pod"}


def seeded_loop(world: World) -> Loop:
    """The in-memory Metacontroller, holding exactly the generated children."""
    loop = Loop(copy.deepcopy(world.parent), hook_version=world.hook_version)
    for kind, objects in world.request["children"].items():
        for obj in objects.values():
            loop.children[(kind, obj["metadata"]["name"])] = copy.deepcopy(obj)
    return loop


def loop_heads(loop: Loop) -> list[str]:
    return [
        name
        for name in loop.pods()
        if loop.children[(POD, name)]["metadata"]["labels"].get("ray.io/node-type") == "head"
    ]


# -- the properties ------------------------------------------------------------------------------
@FAST
@given(worlds())
def test_same_input_gives_the_same_bytes(world: World) -> None:
    body = world.body()
    first = answer_bytes(run(body))
    assert answer_bytes(run(body)) == first
    assert answer_bytes(run(orjson.dumps(copy.deepcopy(world.request)))) == first
    # Reusing one decoded request twice also shows that sync does not mutate its input.
    request = decode(body)
    assert answer_bytes(sync(request.parent, request.observed)) == first
    assert answer_bytes(sync(request.parent, request.observed)) == first
    assert answer_bytes(sync(copy.deepcopy(request.parent), request.observed)) == first
    # The order in which children arrive is not part of the input's meaning.
    shuffled = copy.deepcopy(world.request)
    shuffled["children"] = {
        kind: dict(reversed(objects.items()))
        for kind, objects in reversed(shuffled["children"].items())
    }
    assert answer_bytes(run(orjson.dumps(shuffled))) == first


@SLOW
@given(worlds())
def test_converges_to_a_fixpoint(world: World) -> None:
    loop = seeded_loop(world)
    loop.converge()
    settled = loop.step()
    assert settled.created == []
    assert settled.deleted == []
    loop.run_pods()
    started = loop.step()
    assert started.created == []
    assert started.deleted == []
    again = loop.step()
    assert again.created == []
    assert again.deleted == []
    # Fed back its own answer and an unchanged world, the hook answers the very same bytes
    # (status included): no create, no delete, no update storm.
    assert answer_bytes(again.desired) == answer_bytes(started.desired)


@SLOW
@given(worlds())
def test_group_sizes_after_convergence(world: World) -> None:
    loop = seeded_loop(world)
    loop.converge()
    every_listed = world.all_listed()
    for name, spec in world.groups.items():
        survivors = len(world.live(name))
        expected = target(spec) if not world.autoscaling else max(target(spec), survivors)
        assert len(loop.workers(name)) == expected, name
    observed_groups = {f.group for f in world.pods if f.node_type == "worker"}
    for name in observed_groups - set(world.groups):
        assert loop.workers(name) == [], name
    assert len(loop_heads(loop)) == max(1, len(world.live_heads()))
    created = {name for step in loop.history for name in step.created}
    assert not created & every_listed


@FAST
@given(worlds())
def test_workers_to_delete_are_never_answered(world: World) -> None:
    desired = run(world.body())
    answered = answered_pods(desired)
    observed = {f.name: f for f in world.pods}
    for group_name in world.groups:
        for victim in world.listed(group_name):
            fact = observed.get(victim)
            # A pod of this group goes; a listed name that is no pod is never created.
            # (Another group's pod is not this group's to delete: the next property checks
            # that it only leaves by a rule of its own.)
            if fact is None or (fact.node_type == "worker" and fact.group == group_name):
                assert victim not in answered, (group_name, victim)


@FAST
@given(worlds())
def test_pods_leave_only_by_a_part_a_rule(world: World) -> None:
    desired = run(world.body())
    assert desired.plan is not None
    answered = answered_pods(desired)
    observed = {f.name: f for f in world.pods}
    removals = {r.name: r for r in desired.plan.remove}
    left_out = set(observed) - set(answered)

    # The plan and the answer agree; only a terminating pod may leave without a reason.
    assert set(removals) <= left_out
    assert {n for n in left_out if not observed[n].terminating} <= set(removals)

    surplus: dict[str, list[PodFact]] = {name: [] for name in world.groups}
    for name in sorted(set(removals)):
        fact, why = observed[name], removals[name].why
        allowed = []
        if world.is_listed(fact):
            allowed.append(why == WORKERS_TO_DELETE)
        if fact.finished:
            allowed.append(why == f"its phase is {fact.phase}")
        if fact.node_type == "worker" and fact.group not in world.groups:
            allowed.append(why == GROUP_REMOVED)
        if fact.group in world.groups and fact in world.live(str(fact.group)):
            is_surplus = not world.autoscaling and why.startswith("surplus")
            allowed.append(is_surplus)
            if is_surplus:
                surplus[str(fact.group)].append(fact)
        assert any(allowed), (name, why, fact)

    for name, spec in world.groups.items():
        live = world.live(name)
        extra = 0 if world.autoscaling else max(0, len(live) - target(spec))
        assert len(surplus[name]) == extra, name
        # Not-running pods go first, then the highest ordinal.
        kept = [f for f in live if f not in surplus[name]]
        for gone in surplus[name]:
            for stays in kept:
                assert not (gone.running and not stays.running), (gone, stays)
                if gone.running == stays.running and None not in (gone.ordinal, stays.ordinal):
                    assert gone.ordinal > stays.ordinal, (gone, stays)

    # A kept pod is answered exactly as it was applied: pods are never updated.
    for name, pod in answered.items():
        if name in observed:
            applied = world.request["children"][POD][key(world.namespace, name, world.hook_version)]
            assert pod == json.loads(applied["metadata"]["annotations"][LAST_APPLIED])


@FAST
@given(worlds())
def test_creates_exactly_the_shortfall_with_fresh_names(world: World) -> None:
    desired = run(world.body())
    observed = {f.name for f in world.pods}
    created = {n: p for n, p in answered_pods(desired).items() if n not in observed}
    taken = observed | world.all_listed()

    def lowest_free(group_name: str | None, wanted: int) -> set[str]:
        names: list[str] = []
        for ordinal in range(len(taken) + wanted + 1):
            candidate = pod_name(world.name, world.uid, group_name, ordinal)
            if len(names) < wanted and candidate not in taken:
                names.append(candidate)
        return set(names)

    for name, spec in world.groups.items():
        shortfall = max(0, target(spec) - len(world.live(name)))
        mine = {n for n, p in created.items() if p["metadata"]["labels"]["ray.io/group"] == name}
        assert mine == lowest_free(name, shortfall), name
    heads = {n for n, p in created.items() if p["metadata"]["labels"]["ray.io/node-type"] == "head"}
    assert heads == lowest_free(None, 0 if world.live_heads() else 1)


@FAST
@given(worlds(group_names=WIDE_GROUP_NAMES, cluster_names=LONG_CLUSTER_NAMES))
def test_children_are_valid_kubernetes_objects(world: World) -> None:
    desired = run(world.body())
    if desired.status.get("state") == "failed":
        # Rejecting a name is allowed, as long as it is named and nothing changes.
        assert "groupName" in desired.status["reason"]
        observed = [c for objects in world.request["children"].values() for c in objects.values()]
        assert sorted(c["metadata"]["name"] for c in desired.children) == sorted(
            c["metadata"]["name"] for c in observed
        )
        return
    for child in desired.children:
        assert isinstance(child.get("apiVersion"), str)
        assert child["apiVersion"]
        assert isinstance(child.get("kind"), str)
        assert child["kind"]
        metadata = child["metadata"]
        name = metadata["name"]
        assert metadata["namespace"] == world.namespace, name
        assert len(name) <= 253, name
        assert DNS1123_SUBDOMAIN.fullmatch(name), name
        if child["kind"] == "Service":
            assert len(name) <= 63, name
            assert DNS1035_LABEL.fullmatch(name), name
        for label, value in (metadata.get("labels") or {}).items():
            assert isinstance(value, str), (name, label)
            assert len(value) <= 63, (name, label, value)
            assert LABEL_VALUE.fullmatch(value), (name, label, value)
            prefix, _, local = label.rpartition("/")
            assert not prefix or (len(prefix) <= 253 and DNS1123_SUBDOMAIN.fullmatch(prefix))
            assert len(local) <= 63, (name, label)
            assert QUALIFIED_NAME.fullmatch(local), (name, label)


@st.composite
def crowded_groups(draw: st.DrawFn) -> World:
    """One group with autoscaling off and more live pods (metaray's names) than it wants."""
    cluster, uid = draw(SHORT_CLUSTER_NAMES), str(draw(st.uuids()))
    ordinals = draw(st.lists(st.integers(0, 80), min_size=2, max_size=8, unique=True))
    facts = tuple(
        PodFact(
            pod_name(cluster, uid, "g", ordinal),
            "worker",
            "g",
            ordinal,
            phase := draw(st.sampled_from(["Pending", "Running"])),
            phase == "Running",
            False,
        )
        for ordinal in ordinals
    )
    wanted = draw(st.integers(0, len(facts) - 1))
    parent = raycluster(cluster_spec(group("g", wanted, 0, 10)), name=cluster, uid=uid)
    pods = {f.name: pod_object(parent, f, serial) for serial, f in enumerate(facts, 1)}
    request = {"parent": parent, "children": {POD: pods, SERVICE: {}}}
    return World(parent, facts, request, "v1")


@FAST
@given(crowded_groups())
def test_surplus_goes_not_running_first_then_highest_ordinal(world: World) -> None:
    desired = run(world.body())
    assert desired.plan is not None
    wanted = target(world.groups["g"])
    by_choice = sorted(world.pods, key=lambda f: (f.running, -(f.ordinal or 0)))
    expected = {f.name for f in by_choice[: len(world.pods) - wanted]}
    assert {r.name for r in desired.plan.remove} == expected
    observed = {f.name for f in world.pods}
    assert set(answered_pods(desired)) & observed == observed - expected
