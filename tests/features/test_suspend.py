"""Suspend: ``spec.suspend`` removes every pod, ``workerGroupSpecs[].suspend`` one group's."""

from __future__ import annotations

import pytest

from tests.features.common import Spec, condition, set_group, settle, unchanged
from tests.loop import SERVICE, Loop, Step, cluster_spec, group, raycluster

INGRESS = "Ingress.networking.k8s.io/v1"
SUSPENDING = "RayClusterSuspending"
SUSPENDED = "RayClusterSuspended"
PROVISIONED = "RayClusterProvisioned"


def story() -> Spec:
    spec = cluster_spec(group("small", replicas=2), group("large", replicas=1))
    spec["headGroupSpec"]["enableIngress"] = True
    return spec


def state(step: Step) -> str | None:
    value = step.desired.status.get("state")
    return None if value is None else str(value)


@pytest.mark.parametrize("autoscaling", [False, True])
def test_suspend_deletes_every_pod_keeps_services_and_reports_each_phase(
    autoscaling: bool,
) -> None:
    loop = Loop(raycluster({**story(), "enableInTreeAutoscaling": autoscaling}))
    settle(loop)
    pods = loop.pods()
    assert len(pods) == 4
    loop.held.update(pods)  # the pods take a while to terminate

    loop.edit(lambda spec: spec.update(suspend=True))
    step = loop.step()
    assert step.deleted == pods
    assert step.created == []
    assert loop.pods() == []
    assert loop.terminating() == pods
    assert (SERVICE, "demo-head-svc") in loop.children
    assert (INGRESS, "demo-head-ingress") in loop.children
    assert condition(step, SUSPENDING)["status"] == "True"
    assert state(step) is None

    for _ in range(2):  # still terminating
        step = loop.step()
        unchanged(step)
        assert condition(step, SUSPENDING)["status"] == "True"
        assert condition(step, SUSPENDED)["status"] == "False"
        assert state(step) is None

    loop.held.clear()
    step = loop.step()
    unchanged(step)
    assert loop.pods(live=False) == []
    assert state(step) == "suspended"
    assert condition(step, SUSPENDED)["status"] == "True"
    assert condition(step, SUSPENDING)["status"] == "False"
    assert condition(step, PROVISIONED)["status"] == "False"
    assert step.desired.status["desiredWorkerReplicas"] == 0
    assert (SERVICE, "demo-head-svc") in loop.children
    assert (INGRESS, "demo-head-ingress") in loop.children

    again = loop.step()
    unchanged(again)
    assert again.desired.status == step.desired.status


def test_a_suspended_cluster_creates_nothing_when_scaled() -> None:
    loop = Loop(raycluster(story()))
    settle(loop)
    loop.edit(lambda spec: spec.update(suspend=True))
    loop.converge()
    loop.edit(set_group("small", replicas=5))
    for _ in range(2):
        step = loop.step()
        unchanged(step)
        assert loop.pods(live=False) == []
        assert state(step) == "suspended"


def test_resume_recreates_the_pods_and_becomes_ready() -> None:
    loop = Loop(raycluster(story()))
    settle(loop)
    loop.edit(lambda spec: spec.update(suspend=True))
    loop.converge()
    assert loop.pods(live=False) == []

    loop.edit(lambda spec: spec.update(suspend=False))
    step = loop.step()
    assert step.deleted == []
    assert len(loop.heads()) == 1
    assert len(loop.workers("small")) == 2
    assert len(loop.workers("large")) == 1
    assert sorted(step.created) == loop.pods()
    assert condition(step, SUSPENDED)["status"] == "False"
    assert condition(step, SUSPENDING)["status"] == "False"
    assert state(step) != "suspended"

    ready = settle(loop)
    assert state(ready) == "ready"
    assert condition(ready, SUSPENDED)["status"] == "False"
    assert condition(ready, PROVISIONED)["status"] == "True"


def test_a_head_only_cluster_is_not_ready_while_it_is_being_suspended() -> None:
    loop = Loop(raycluster(cluster_spec()))
    settle(loop)
    (head,) = loop.heads()
    loop.held.add(head)
    loop.edit(lambda spec: spec.update(suspend=True))
    step = loop.step()
    assert step.deleted == [head]
    assert condition(step, SUSPENDING)["status"] == "True"
    assert state(step) is None
    step = loop.step()
    assert condition(step, SUSPENDING)["status"] == "True"
    assert state(step) is None


@pytest.mark.parametrize("autoscaling", [False, True])
def test_group_suspend_removes_only_that_groups_pods(autoscaling: bool) -> None:
    loop = Loop(raycluster({**story(), "enableInTreeAutoscaling": autoscaling}))
    settle(loop)
    heads, large = loop.heads(), loop.workers("large")
    small = loop.workers("small")

    loop.edit(set_group("small", suspend=True))
    step = loop.step()
    assert step.deleted == small
    assert step.created == []
    assert loop.heads() == heads
    assert loop.workers("large") == large
    assert loop.workers("small") == []
    step = loop.converge()
    assert step.desired.status["desiredWorkerReplicas"] == 1
    assert state(step) == "ready"
    kinds = {c["type"] for c in step.desired.status["conditions"]}
    assert SUSPENDED not in kinds
    assert SUSPENDING not in kinds

    loop.edit(set_group("small", suspend=False))
    step = loop.step()
    assert step.deleted == []
    assert len(step.created) == 2
    assert loop.heads() == heads
    assert loop.workers("large") == large
    assert len(loop.workers("small")) == 2
    settle(loop)
