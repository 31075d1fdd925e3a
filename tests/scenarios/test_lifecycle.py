"""A RayCluster's life, one step at a time, through the in-memory Metacontroller (tests/loop.py).

Each test tells one story and, after each step, checks what a user would see: which pods and
Services exist, which were created or deleted, and what the RayCluster's status says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from app.raycluster.command import METRICS_PORT
from app.raycluster.names import head_service_name, pod_name
from tests.loop import POD, SERVICE, Loop, Step, cluster_spec, group, raycluster

SMALL = "small"
LARGE = "large"
Spec = dict[str, Any]


# -- the cluster of the story -------------------------------------------------------------------
def story(small: int = 2, large: int = 1, **extra: Any) -> Spec:
    return cluster_spec(
        group(SMALL, replicas=small, minimum=1, maximum=5),
        group(LARGE, replicas=large, minimum=0, maximum=3),
        **extra,
    )


def new_loop(spec: Spec | None = None, **options: Any) -> Loop:
    return Loop(raycluster(story() if spec is None else spec), **options)


def ordinal_name(loop: Loop, group_name: str | None, ordinal: int) -> str:
    """The name metaray gives the pod of this role with this ordinal (Part A naming)."""
    meta = loop.parent["metadata"]
    return pod_name(meta["name"], meta["uid"], group_name, ordinal)


def service_name(loop: Loop) -> str:
    return head_service_name(loop.parent["metadata"]["name"])


def heads(loop: Loop) -> list[str]:
    return [
        name
        for name in loop.pods()
        if loop.children[(POD, name)]["metadata"]["labels"]["ray.io/node-type"] == "head"
    ]


def snapshot(loop: Loop) -> dict[str, list[str]]:
    return {"head": heads(loop), SMALL: loop.workers(SMALL), LARGE: loop.workers(LARGE)}


def spec_group(spec: Spec, name: str) -> Spec:
    return next(g for g in spec["workerGroupSpecs"] if g["groupName"] == name)


def set_group(name: str, **changes: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec_group(spec, name).update(changes)

    return change


def status(step: Step) -> dict[str, Any]:
    return step.desired.status


def condition(step: Step, kind: str) -> dict[str, Any]:
    return next(c for c in status(step)["conditions"] if c["type"] == kind)


def answered(step: Step) -> list[str]:
    return sorted(c["metadata"]["name"] for c in step.desired.children)


def observed(step: Step) -> list[str]:
    return sorted(
        o["metadata"]["name"] for kind in step.request["children"].values() for o in kind.values()
    )


def settle(loop: Loop) -> Step:
    """Sync until nothing changes, let the kubelet start every pod, and sync once more."""
    loop.converge()
    loop.run_pods()
    step = loop.step()
    assert step.created == []
    assert step.deleted == []
    assert status(step).get("state") == "ready", status(step)
    return step


def unchanged(step: Step) -> None:
    assert step.created == []
    assert step.deleted == []


# -- create ---------------------------------------------------------------------------------------
def test_create_makes_head_workers_and_service_then_reports_ready() -> None:
    loop = new_loop()
    spec = loop.parent["spec"]

    first = loop.step()
    head = ordinal_name(loop, None, 0)
    small = [ordinal_name(loop, SMALL, k) for k in range(2)]
    large = [ordinal_name(loop, LARGE, 0)]
    assert heads(loop) == [head]
    assert loop.workers(SMALL) == sorted(small)
    assert loop.workers(LARGE) == large
    assert first.created == sorted([head, *small, *large, service_name(loop)])
    assert first.deleted == []
    assert (SERVICE, service_name(loop)) in loop.children
    for name in [head, *small, *large]:
        labels = loop.children[(POD, name)]["metadata"]["labels"]
        assert labels["ray.io/cluster"] == loop.parent["metadata"]["name"]
    assert "state" not in status(first)
    assert status(first)["desiredWorkerReplicas"] == 3
    assert status(first)["minWorkerReplicas"] == sum(
        g["minReplicas"] for g in spec["workerGroupSpecs"]
    )
    assert status(first)["maxWorkerReplicas"] == sum(
        g["maxReplicas"] for g in spec["workerGroupSpecs"]
    )

    pending = loop.step()
    unchanged(pending)
    assert "state" not in status(pending)
    assert status(pending)["availableWorkerReplicas"] == 0
    assert status(pending)["head"]["podName"] == head
    assert condition(pending, "HeadPodReady")["status"] == "False"

    loop.run_pods()
    ready = loop.step()
    unchanged(ready)
    assert status(ready)["state"] == "ready"
    assert status(ready)["availableWorkerReplicas"] == 3
    assert status(ready)["readyWorkerReplicas"] == 3
    assert status(ready)["desiredWorkerReplicas"] == 3
    ports = spec["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    expected = {p["name"]: str(p["containerPort"]) for p in ports} | {"metrics": str(METRICS_PORT)}
    assert status(ready)["endpoints"] == expected
    head_ip = loop.children[(POD, head)]["status"]["podIP"]
    assert status(ready)["head"]["podName"] == head
    assert status(ready)["head"]["podIP"] == head_ip
    assert status(ready)["head"]["serviceName"] == service_name(loop)
    assert condition(ready, "HeadPodReady")["status"] == "True"
    assert condition(ready, "RayClusterProvisioned")["status"] == "True"

    # Nothing changed, so nothing is written: the very same status bytes, timestamps included.
    again = loop.step()
    unchanged(again)
    assert orjson.dumps(status(again)) == orjson.dumps(status(ready))


def test_running_pods_that_are_not_ready_give_no_state() -> None:
    loop = new_loop()
    loop.converge()
    loop.run_pods(ready=False)
    step = loop.step()
    unchanged(step)
    assert "state" not in status(step)
    assert status(step)["availableWorkerReplicas"] == 3
    assert status(step)["readyWorkerReplicas"] == 0
    assert condition(step, "HeadPodReady")["status"] == "False"
    assert condition(step, "RayClusterProvisioned")["status"] == "False"


# -- scale up -------------------------------------------------------------------------------------
def test_scale_up_adds_exactly_the_new_pods() -> None:
    loop = new_loop()
    settle(loop)
    before, seen = snapshot(loop), set(loop.pods())

    loop.edit(set_group(SMALL, replicas=4))
    step = loop.step()
    assert step.deleted == []
    fresh = set(loop.workers(SMALL)) - set(before[SMALL])
    assert sorted(fresh) == step.created
    assert len(fresh) == 2
    assert not fresh & seen
    assert set(before[SMALL]) < set(loop.workers(SMALL))
    assert loop.workers(LARGE) == before[LARGE]
    assert heads(loop) == before["head"]
    assert status(step)["desiredWorkerReplicas"] == 5

    ready = settle(loop)
    assert status(ready)["availableWorkerReplicas"] == 5
    assert status(ready)["readyWorkerReplicas"] == 5


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [pytest.param(9, 5, id="above-max"), pytest.param(0, 1, id="below-min")],
)
def test_replicas_are_clamped_to_min_and_max(replicas: int, expected: int) -> None:
    loop = new_loop()
    settle(loop)
    loop.edit(set_group(SMALL, replicas=replicas))
    settle(loop)
    assert len(loop.workers(SMALL)) == expected
    assert status(loop.history[-1])["desiredWorkerReplicas"] == expected + 1


# -- scale down -----------------------------------------------------------------------------------
def test_scale_down_removes_not_running_pods_first_then_the_highest_ordinal() -> None:
    loop = new_loop(story(small=4))
    loop.step()
    small = [ordinal_name(loop, SMALL, k) for k in range(4)]
    assert loop.workers(SMALL) == sorted(small)
    unschedulable = small[1]
    loop.run_pods(only=[name for name in loop.pods() if name != unschedulable])
    unchanged(loop.step())
    before = snapshot(loop)

    loop.edit(set_group(SMALL, replicas=2))
    step = loop.step()
    assert step.deleted == sorted([unschedulable, small[3]])
    assert step.created == []
    loop.converge()
    assert loop.workers(SMALL) == sorted([small[0], small[2]])
    assert loop.workers(LARGE) == before[LARGE]
    assert heads(loop) == before["head"]


def test_scale_down_of_running_pods_removes_exactly_the_surplus() -> None:
    loop = new_loop(story(small=4))
    settle(loop)
    small = [ordinal_name(loop, SMALL, k) for k in range(4)]
    assert loop.workers(SMALL) == sorted(small)

    loop.edit(set_group(SMALL, replicas=1))
    step = loop.step()
    assert step.deleted == sorted(small[1:])
    assert step.created == []
    ready = settle(loop)
    assert loop.workers(SMALL) == [small[0]]
    assert status(ready)["availableWorkerReplicas"] == 2


def test_with_autoscaling_a_lower_replicas_alone_deletes_nothing() -> None:
    loop = new_loop(story(small=3, enableInTreeAutoscaling=True))
    settle(loop)
    before = snapshot(loop)
    loop.edit(set_group(SMALL, replicas=1))
    for _ in range(3):
        unchanged(loop.step())
    assert snapshot(loop) == before


# -- workersToDelete ------------------------------------------------------------------------------
def test_workers_to_delete_removes_exactly_the_named_pod_and_restores_the_count() -> None:
    loop = new_loop(story(small=3))
    settle(loop)
    small = [ordinal_name(loop, SMALL, k) for k in range(3)]
    assert loop.workers(SMALL) == sorted(small)
    before, seen = snapshot(loop), set(loop.pods())
    victim = small[1]

    loop.edit(set_group(SMALL, scaleStrategy={"workersToDelete": [victim]}))
    listed_since = len(loop.history)
    step = loop.step()
    assert step.deleted == [victim]
    assert len(step.created) == 1
    fresh = step.created[0]
    assert fresh not in seen
    assert loop.workers(SMALL) == sorted([small[0], small[2], fresh])
    assert loop.terminating() == [victim]
    assert loop.workers(LARGE) == before[LARGE]
    assert heads(loop) == before["head"]

    # The victim is gone, its ordinal is free again, and it is still listed: scaling up must
    # not bring it back (the autoscaler, not the hook, empties the list).
    settle(loop)
    assert victim not in loop.pods(live=False)
    loop.edit(set_group(SMALL, replicas=5))
    step = loop.step()
    assert len(step.created) == 2
    assert victim not in step.created
    settle(loop)
    assert victim not in {name for s in loop.history[listed_since:] for name in s.created}
    assert len(loop.workers(SMALL)) == 5


def test_workers_to_delete_ignores_names_that_are_not_pods_of_the_group() -> None:
    loop = new_loop()
    settle(loop)
    before = snapshot(loop)
    other_group_pod = before[LARGE][0]
    not_a_pod = ordinal_name(loop, SMALL, 7)
    loop.edit(set_group(SMALL, scaleStrategy={"workersToDelete": [other_group_pod, not_a_pod]}))
    step = loop.step()
    unchanged(step)
    assert snapshot(loop) == before
    warned = [e.message for e in step.desired.events if e.reason == "InvalidWorkersToDelete"]
    assert any(other_group_pod in message for message in warned)
    assert any(not_a_pod in message for message in warned)


def test_autoscaler_scale_in_keeps_every_live_pod_while_victims_terminate() -> None:
    """Part A: the autoscaler lowers replicas, lists victims, then empties the list at once."""
    loop = new_loop(story(small=3, enableInTreeAutoscaling=True))
    settle(loop)
    small = [ordinal_name(loop, SMALL, k) for k in range(3)]
    victim = small[0]

    loop.edit(set_group(SMALL, replicas=2, scaleStrategy={"workersToDelete": [victim]}))
    step = loop.step()
    assert step.deleted == [victim]
    assert step.created == []

    loop.held.add(victim)  # still terminating when the next syncs come
    loop.edit(set_group(SMALL, scaleStrategy={"workersToDelete": []}))
    for _ in range(2):
        step = loop.step()
        unchanged(step)
        assert loop.terminating() == [victim]
        assert loop.workers(SMALL) == sorted(small[1:])

    loop.held.clear()
    settle(loop)
    assert loop.workers(SMALL) == sorted(small[1:])


# -- pod failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_a_finished_worker_is_replaced_under_a_new_name(phase: str) -> None:
    loop = new_loop()
    settle(loop)
    before, seen = snapshot(loop), set(loop.pods())
    victim = before[SMALL][0]

    loop.finish(victim, phase)
    step = loop.step()
    assert step.deleted == [victim]
    assert len(step.created) == 1
    fresh = step.created[0]
    assert fresh not in seen
    assert loop.workers(SMALL) == sorted([*before[SMALL][1:], fresh])
    assert loop.workers(LARGE) == before[LARGE]
    assert heads(loop) == before["head"]

    ready = settle(loop)
    assert status(ready)["availableWorkerReplicas"] == 3


def test_a_failed_head_is_replaced_and_workers_are_left_alone() -> None:
    loop = new_loop()
    settle(loop)
    before, seen = snapshot(loop), set(loop.pods())
    [old_head] = before["head"]

    loop.finish(old_head)
    step = loop.step()
    assert step.deleted == [old_head]
    assert len(step.created) == 1
    [new_head] = step.created
    assert new_head not in seen
    assert heads(loop) == [new_head]
    assert loop.workers(SMALL) == before[SMALL]
    assert loop.workers(LARGE) == before[LARGE]
    assert status(step).get("state") != "ready"
    assert condition(step, "HeadPodReady")["status"] == "False"

    ready = settle(loop)
    assert status(ready)["head"]["podName"] == new_head
    assert loop.workers(SMALL) == before[SMALL]
    assert loop.workers(LARGE) == before[LARGE]


def test_a_lost_head_is_not_replaced_when_a_rayjob_sidecar_lives_in_it() -> None:
    """A RayJob's SidecarMode cluster: a new head would submit the job a second time."""
    loop = new_loop()
    loop.parent["metadata"]["annotations"] = {"ray.io/disable-provisioned-head-restart": "true"}
    settle(loop)
    [old_head] = heads(loop)
    loop.finish(old_head)
    step = loop.step()
    assert step.deleted == [old_head]
    assert step.created == []
    loop.step()
    assert heads(loop) == []


def test_a_head_is_created_as_usual_before_the_cluster_was_ever_provisioned() -> None:
    loop = new_loop()
    loop.parent["metadata"]["annotations"] = {"ray.io/disable-provisioned-head-restart": "true"}
    loop.converge()
    assert len(heads(loop)) == 1


# -- worker groups --------------------------------------------------------------------------------
def test_a_group_removed_from_the_spec_loses_its_pods_only() -> None:
    loop = new_loop(story(small=2, large=2))
    settle(loop)
    before = snapshot(loop)

    def drop_large(spec: Spec) -> None:
        spec["workerGroupSpecs"] = [g for g in spec["workerGroupSpecs"] if g["groupName"] != LARGE]

    loop.edit(drop_large)
    step = loop.step()
    assert step.deleted == before[LARGE]
    assert step.created == []
    assert loop.workers(SMALL) == before[SMALL]
    assert heads(loop) == before["head"]
    assert status(step)["desiredWorkerReplicas"] == 2

    ready = settle(loop)
    assert loop.pods(LARGE, live=False) == []
    assert status(ready)["availableWorkerReplicas"] == 2


def test_suspend_removes_every_pod_and_resume_brings_them_back() -> None:
    loop = new_loop()
    settle(loop)
    loop.edit(lambda spec: spec.update(suspend=True))
    step = loop.step()
    assert step.created == []
    assert sorted(step.deleted) == sorted(loop.terminating())
    assert len(step.deleted) == 4
    last = loop.converge()
    assert loop.pods(live=False) == []
    assert (SERVICE, service_name(loop)) in loop.children
    assert status(last)["state"] == "suspended"
    unchanged(loop.step())

    loop.edit(lambda spec: spec.update(suspend=False))
    ready = settle(loop)
    assert len(heads(loop)) == 1
    assert len(loop.workers(SMALL)) == 2
    assert len(loop.workers(LARGE)) == 1
    assert status(ready)["state"] == "ready"


# -- both hook versions ---------------------------------------------------------------------------
@pytest.mark.parametrize("hook_version", ["v1", "v2"])
def test_v1_and_v2_child_keys_both_work(hook_version: str) -> None:
    loop = new_loop(hook_version=hook_version)
    settle(loop)
    namespace = loop.parent["metadata"]["namespace"]
    keys = set(loop.history[-1].request["children"]["Pod.v1"])
    expected = {f"{namespace}/{n}" if hook_version == "v2" else n for n in loop.pods()}
    assert keys == expected
    before = snapshot(loop)

    loop.edit(set_group(SMALL, replicas=3))
    step = loop.step()
    assert step.deleted == []
    assert len(step.created) == 1
    victim = before[LARGE][0]
    loop.finish(victim)
    step = loop.step()
    assert step.deleted == [victim]
    assert len(step.created) == 1
    ready = settle(loop)
    assert status(ready)["availableWorkerReplicas"] == 4


# -- an invalid edit mid-life ---------------------------------------------------------------------
def min_above_max(spec: Spec) -> None:
    spec_group(spec, SMALL).update(minReplicas=6, maxReplicas=5, replicas=0)


def newline_in_ray_start_param(spec: Spec) -> None:
    spec["headGroupSpec"]["rayStartParams"]["num-cpus"] = "1\n"


@pytest.mark.parametrize(
    ("breakage", "field", "rule"),
    [
        pytest.param(
            min_above_max, "spec.workerGroupSpecs[0].minReplicas", "maxReplicas", id="min>max"
        ),
        pytest.param(
            newline_in_ray_start_param,
            "spec.headGroupSpec.rayStartParams.num-cpus",
            "newline",
            id="newline",
        ),
    ],
)
def test_an_invalid_edit_changes_nothing_until_it_is_fixed(
    breakage: Callable[[Spec], None], field: str, rule: str
) -> None:
    loop = new_loop()
    settle(loop)
    valid = copy.deepcopy(loop.parent["spec"])
    before = snapshot(loop)
    # A failed worker, and a group removed in the same edit: both would normally delete pods.
    failed = before[SMALL][0]
    loop.finish(failed)
    children = set(loop.children)

    def break_spec(spec: Spec) -> None:
        breakage(spec)
        spec["workerGroupSpecs"] = [g for g in spec["workerGroupSpecs"] if g["groupName"] != LARGE]

    loop.edit(break_spec)
    for _ in range(2):
        step = loop.step()
        unchanged(step)
        assert set(loop.children) == children
        assert loop.terminating() == []
        assert answered(step) == observed(step)
        assert status(step)["state"] == "failed"
        assert field in status(step)["reason"]
        assert rule in status(step)["reason"]
        assert status(step)["head"]["podName"] == before["head"][0]
    # An unchanged invalid cluster is not rewritten on every sync either.
    assert orjson.dumps(status(loop.history[-1])) == orjson.dumps(status(loop.history[-2]))

    def fix(spec: Spec) -> None:
        spec.clear()
        spec.update(copy.deepcopy(valid))

    loop.edit(fix)
    step = loop.step()
    assert step.deleted == [failed]
    assert len(step.created) == 1
    assert loop.workers(LARGE) == before[LARGE]
    ready = settle(loop)
    assert "reason" not in status(ready)
    assert status(ready)["availableWorkerReplicas"] == 3
