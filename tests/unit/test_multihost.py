"""Multi-host groups (numOfHosts > 1): whole replicas with KubeRay v1.7's indexing labels."""

from __future__ import annotations

from collections import Counter
from typing import Any

from app.core.observed import ObservedPod
from app.raycluster.names import legacy_prefix, suffix
from app.raycluster.scaling import Creation, Plan, plan_pods
from tests.loop import cluster_spec, group
from tests.unit.helpers import UID, make_cluster, observed_pod

INDEX = "ray.io/worker-group-replica-index"
REPLICA = "ray.io/worker-group-replica-name"
HOST = "ray.io/replica-host-index"


def plan(pods: list[ObservedPod], **spec: Any) -> Plan:
    groups = group(name="tpu", **{"numOfHosts": 2, **spec})
    head = observed_pod("demo-head-aaaaa", "head", "headgroup")
    return plan_pods(make_cluster(cluster_spec(groups)), [head, *pods])


def labels(creation: Creation) -> dict[str, str]:
    return dict(creation.labels)


def as_observed(creations: tuple[Creation, ...], **kw: Any) -> list[ObservedPod]:
    return [
        observed_pod(c.name, group="tpu", labels=labels(c), **kw)
        for c in creations
        if c.group == "tpu"
    ]


def test_each_replica_is_hosts_pods_with_one_name_one_index_and_host_indices() -> None:
    result = plan([], replicas=2)
    replicas: dict[str, list[dict[str, str]]] = {}
    for creation in result.create:
        if creation.group == "tpu":
            replicas.setdefault(labels(creation)[REPLICA], []).append(labels(creation))
    assert len(replicas) == 2
    assert sorted(members[0][INDEX] for members in replicas.values()) == ["0", "1"]
    for name, members in replicas.items():
        assert name.startswith("tpu-") and len(name) == len("tpu-") + 5
        assert sorted(m[HOST] for m in members) == ["0", "1"]
        assert {m[INDEX] for m in members} == {members[0][INDEX]}


def test_the_answer_is_a_fixpoint_once_created() -> None:
    first = plan([], replicas=2)
    again = plan(as_observed(first.create), replicas=2)
    assert again.create == () and again.remove == ()


def test_a_member_not_observed_yet_is_asked_for_again_under_the_same_name() -> None:
    first = [c for c in plan([], replicas=1).create if c.group == "tpu"]
    seen = as_observed((first[0],))
    again = [c for c in plan(seen, replicas=1).create if c.group == "tpu"]
    assert again == first[1:]  # same name, same labels: Metacontroller sees nothing new


def test_a_failed_member_takes_its_whole_replica_and_the_index_is_reused() -> None:
    first = tuple(c for c in plan([], replicas=2).create if c.group == "tpu")
    pods = as_observed(first)
    victim = pods[0]
    mate = next(
        p for p in pods[1:] if p.metadata.labels[REPLICA] == victim.metadata.labels[REPLICA]
    )
    failed = observed_pod(
        victim.name, group="tpu", labels=dict(victim.metadata.labels), phase="Failed"
    )
    result = plan([failed, *[p for p in pods if p is not victim]], replicas=2)
    assert {r.name for r in result.remove} == {victim.name, mate.name}
    new = [labels(c) for c in result.create if c.group == "tpu"]
    assert len(new) == 2 and {m[REPLICA] for m in new} != {victim.metadata.labels[REPLICA]}
    assert {m[INDEX] for m in new} == {victim.metadata.labels[INDEX]}


def test_workers_to_delete_removes_the_whole_replica_and_scale_down_removes_whole_replicas() -> (
    None
):
    pods = as_observed(tuple(c for c in plan([], replicas=3).create if c.group == "tpu"))
    listed = plan(pods, replicas=2, scaleStrategy={"workersToDelete": [pods[0].name]})
    gone = {r.name for r in listed.remove}
    replica = pods[0].metadata.labels[REPLICA]
    assert gone == {p.name for p in pods if p.metadata.labels[REPLICA] == replica}
    assert listed.create == ()
    down = plan(pods, replicas=1)
    removed = [p for p in pods if p.name in {r.name for r in down.remove}]
    assert len(removed) == 4
    assert Counter(p.metadata.labels[REPLICA] for p in removed).most_common()[0][1] == 2
    kept = [p for p in pods if p not in removed]
    assert {p.metadata.labels[INDEX] for p in kept} == {"0"}  # the highest indices went


def test_pods_from_before_indexing_are_kept_counted_and_go_first() -> None:
    legacy = [
        observed_pod(legacy_prefix("demo", "tpu") + suffix(UID, "worker/tpu", n), group="tpu")
        for n in range(2)
    ]
    steady = plan(legacy, replicas=1)
    assert steady.create == () and steady.remove == ()  # never renamed nor replaced
    up = plan(legacy, replicas=2)
    assert len([c for c in up.create if c.group == "tpu"]) == 2  # one whole new replica
    new = as_observed(tuple(c for c in up.create if c.group == "tpu"))
    down = plan([*legacy, *new], replicas=1)
    assert {r.name for r in down.remove} == {p.name for p in legacy}
