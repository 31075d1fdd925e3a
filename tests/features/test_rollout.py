"""Template rollout: the pod template hash, ``upgradeStrategy`` None and Recreate.

The Recreate stories check the world after every sync and again after the kubelet starts the
new pods, the way ``kubectl get pods -w`` would show it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from app.raycluster.rollout import template_hash
from tests.features.common import (
    Spec,
    first_sync,
    is_ready,
    pod,
    pods_of,
    problems,
    set_group,
    settle,
    unchanged,
)
from tests.loop import POD, Loop, Step, cluster_spec, group, raycluster
from tests.unit.helpers import make_cluster

HASH = "ray.io/pod-template-hash"
OLD_IMAGE = "rayproject/ray:2.52.0"
NEW_IMAGE = "rayproject/ray:2.53.0"


def two_groups(**extra: Any) -> Spec:
    return cluster_spec(group("small", replicas=2), group("large", replicas=1), **extra)


def hashes(spec: Spec) -> dict[str, set[str]]:
    """The hash on the pods a first sync creates, per group ("headgroup" for the head)."""
    found: dict[str, set[str]] = {}
    for obj in first_sync(spec).children:
        if obj["kind"] == "Pod":
            group_name = obj["metadata"]["labels"]["ray.io/group"]
            found.setdefault(group_name, set()).add(obj["metadata"]["annotations"][HASH])
    return found


def edited(spec: Spec, change: Callable[[Spec], None]) -> Spec:
    copied = copy.deepcopy(spec)
    change(copied)
    return copied


def worker_image(name: str, image: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        target = next(g for g in spec["workerGroupSpecs"] if g["groupName"] == name)
        target["template"]["spec"]["containers"][0]["image"] = image

    return change


def head_image(image: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image

    return change


# -- the hash --------------------------------------------------------------------------------
def test_every_pod_carries_its_template_hash() -> None:
    desired = first_sync(two_groups())
    pods = [*pods_of(desired, "head"), *pods_of(desired, "worker")]
    assert len(pods) == 4
    for obj in pods:
        value = obj["metadata"]["annotations"][HASH]
        assert isinstance(value, str)
        assert value
    found = hashes(two_groups())
    assert set(found) == {"headgroup", "small", "large"}
    assert all(len(values) == 1 for values in found.values())
    assert len({next(iter(values)) for values in found.values()}) == 3


SCALING_EDITS: dict[str, Callable[[Spec], None]] = {
    "replicas": set_group("small", replicas=5),
    "minReplicas": set_group("small", minReplicas=1),
    "maxReplicas": set_group("small", maxReplicas=7),
    "workersToDelete": set_group("small", scaleStrategy={"workersToDelete": ["x", "y"]}),
    "group-suspend": set_group("large", suspend=True),
    "idleTimeoutSeconds": set_group("small", idleTimeoutSeconds=120),
    "enableIngress": lambda spec: spec["headGroupSpec"].update(enableIngress=True),
    "serviceType": lambda spec: spec["headGroupSpec"].update(serviceType="NodePort"),
}


@pytest.mark.parametrize("change", SCALING_EDITS.values(), ids=SCALING_EDITS.keys())
def test_scaling_edits_keep_every_hash(change: Callable[[Spec], None]) -> None:
    before = hashes(two_groups())
    after = hashes(edited(two_groups(), change))
    for name, values in after.items():
        assert values == before[name], name


def test_cluster_suspend_keeps_the_hash() -> None:
    base = make_cluster(two_groups())
    paused = make_cluster(two_groups(suspend=True))
    assert template_hash(base, None) == template_hash(paused, None)
    for running, suspended in zip(
        base.spec.workerGroupSpecs, paused.spec.workerGroupSpecs, strict=True
    ):
        assert template_hash(base, running) == template_hash(paused, suspended)


AUTOSCALER_READS = {"upscalingMode": "Conservative", "idleTimeoutSeconds": 300}


@pytest.mark.parametrize(("field", "value"), AUTOSCALER_READS.items())
def test_settings_the_autoscaler_reads_itself_keep_the_hash(field: str, value: Any) -> None:
    """README: the autoscaler reads these from the RayCluster; no pod is built from them,
    so changing them must not look like a new template (Recreate would replace the head)."""
    spec = two_groups(enableInTreeAutoscaling=True, autoscalerOptions={})
    before = hashes(spec)
    after = hashes(edited(spec, lambda s: s["autoscalerOptions"].update({field: value})))
    assert after == before


TEMPLATE_EDITS: dict[str, tuple[Callable[[Spec], None], set[str]]] = {
    "worker-image": (worker_image("small", NEW_IMAGE), {"small"}),
    "head-image": (head_image(NEW_IMAGE), {"headgroup"}),
    "worker-params": (
        set_group("large", rayStartParams={"num-cpus": "3"}),
        {"large"},
    ),
    "worker-labels": (
        lambda spec: spec["workerGroupSpecs"][0]["template"].update(
            metadata={"labels": {"team": "ml"}}
        ),
        {"small"},
    ),
    "head-params": (
        lambda spec: spec["headGroupSpec"].update(rayStartParams={"num-cpus": "0"}),
        {"headgroup"},
    ),
    "rayVersion": (
        lambda spec: spec.update(rayVersion="2.53.0"),
        {"headgroup", "small", "large"},
    ),
    "autoscaling": (
        lambda spec: spec.update(enableInTreeAutoscaling=True),
        {"headgroup", "small", "large"},
    ),
}


@pytest.mark.parametrize(("change", "changed"), TEMPLATE_EDITS.values(), ids=TEMPLATE_EDITS.keys())
def test_template_edits_change_exactly_their_groups_hash(
    change: Callable[[Spec], None], changed: set[str]
) -> None:
    before = hashes(two_groups())
    after = hashes(edited(two_groups(), change))
    moved = {name for name, values in after.items() if values != before[name]}
    assert moved == changed


# -- upgradeStrategy None ----------------------------------------------------------------------
def image_of(loop: Loop, name: str) -> str:
    image = pod(loop, name)["spec"]["containers"][0]["image"]
    assert isinstance(image, str)
    return image


@pytest.mark.parametrize("strategy", [None, {"type": "None"}])
def test_none_never_replaces_existing_pods(strategy: dict[str, str] | None) -> None:
    extra = {} if strategy is None else {"upgradeStrategy": strategy}
    loop = Loop(raycluster(cluster_spec(group(replicas=2), **extra)))
    settle(loop)
    before = loop.pods()

    loop.edit(head_image(NEW_IMAGE))
    loop.edit(worker_image("workers", NEW_IMAGE))
    for _ in range(4):
        step = loop.step()
        unchanged(step)
        assert step.desired.status["state"] == "ready"
    assert loop.pods() == before
    assert {image_of(loop, name) for name in before} == {OLD_IMAGE}

    # New pods get the new template; the old ones run on.
    loop.edit(set_group("workers", replicas=3))
    step = loop.step()
    assert step.deleted == []
    (fresh,) = step.created
    assert image_of(loop, fresh) == NEW_IMAGE
    assert {image_of(loop, name) for name in before} == {OLD_IMAGE}
    old_hash = pod(loop, before[0])["metadata"]["annotations"][HASH]
    assert pod(loop, fresh)["metadata"]["annotations"][HASH] != old_hash


# -- Recreate ----------------------------------------------------------------------------------
def recreate_loop(replicas: int = 4, **strategy: Any) -> Loop:
    spec = cluster_spec(group(replicas=replicas), upgradeStrategy={"type": "Recreate", **strategy})
    loop = Loop(raycluster(spec))
    settle(loop)
    return loop


def uids(loop: Loop, names: list[str]) -> set[str]:
    """The API server's uids of these pods: names are reused, uids never."""
    return {pod(loop, name)["metadata"]["uid"] for name in names}


def ready_workers(loop: Loop) -> list[str]:
    return [name for name in loop.workers("workers") if is_ready(pod(loop, name))]


def ready_old_in_request(step: Step) -> set[str]:
    """Workers that were ready and ran the old image when this sync was asked."""
    return {
        obj["metadata"]["name"]
        for obj in step.request["children"][POD].values()
        if obj["metadata"]["labels"]["ray.io/node-type"] == "worker"
        and obj["spec"]["containers"][0]["image"] == OLD_IMAGE
        and is_ready(obj)
        and "deletionTimestamp" not in obj["metadata"]
    }


def roll_workers(loop: Loop, limit: int, target: int = 4, max_steps: int = 30) -> list[Step]:
    """Sync and start pods until every worker runs the new image and is ready, checking
    ``maxUnavailable`` after every sync and after every kubelet round."""
    heads = loop.heads()
    steps = []
    for _ in range(max_steps):
        step = loop.step()
        steps.append(step)
        assert not set(step.deleted) & set(heads), "the head was replaced"
        assert step.desired.status["readyWorkerReplicas"] >= target - limit
        replaced_ready = set(step.deleted) & ready_old_in_request(step)
        assert len(replaced_ready) <= limit, replaced_ready
        assert len(ready_workers(loop)) >= target - limit
        assert len(loop.workers("workers")) == target
        loop.run_pods()
        assert len(ready_workers(loop)) >= target - limit
        workers = loop.workers("workers")
        if {image_of(loop, n) for n in workers} == {NEW_IMAGE} and ready_workers(loop) == workers:
            break
    else:
        raise AssertionError(f"the rollout did not finish within {max_steps} syncs")
    return steps


@pytest.mark.parametrize(("strategy", "limit"), [({}, 1), ({"maxUnavailable": 2}, 2)])
def test_recreate_rolls_workers_a_batch_at_a_time(strategy: dict[str, int], limit: int) -> None:
    loop = recreate_loop(**strategy)
    heads, old = loop.heads(), loop.workers("workers")
    old_uids = uids(loop, old)
    loop.edit(worker_image("workers", NEW_IMAGE))

    steps = roll_workers(loop, limit)
    assert len(steps[0].deleted) == limit  # the first batch goes at once
    assert len(steps[0].created) == limit
    replaced = [name for step in steps for name in step.deleted]
    assert sorted(replaced) == old
    assert max(len(step.deleted) for step in steps) == limit
    assert loop.heads() == heads
    workers = loop.workers("workers")
    assert len(workers) == 4
    assert not uids(loop, workers) & old_uids
    assert {image_of(loop, name) for name in workers} == {NEW_IMAGE}
    assert ready_workers(loop) == workers
    final = loop.converge()
    unchanged(final)
    assert final.desired.status["state"] == "ready"
    assert final.desired.status["readyWorkerReplicas"] == 4


def test_recreate_waits_for_replacements_to_be_ready() -> None:
    loop = recreate_loop()
    loop.edit(worker_image("workers", NEW_IMAGE))
    first = loop.step()
    assert len(first.deleted) == 1
    for _ in range(3):  # the replacement is still pending: nothing else goes
        step = loop.step()
        unchanged(step)
    loop.run_pods(ready=False)  # running but not ready yet
    unchanged(loop.step())
    (fresh,) = first.created
    pod(loop, fresh)["status"]["conditions"][0]["status"] = "True"
    step = loop.step()
    assert len(step.deleted) == 1


def test_recreate_replaces_outdated_workers_that_are_not_ready_at_once() -> None:
    spec = cluster_spec(group(replicas=4), upgradeStrategy={"type": "Recreate"})
    loop = Loop(raycluster(spec))
    loop.converge()
    loop.run_pods(only=loop.heads())
    loop.run_pods(ready=False)  # the workers run but are not ready
    old = loop.workers("workers")
    loop.edit(worker_image("workers", NEW_IMAGE))
    step = loop.step()
    assert step.deleted == old
    assert len(step.created) == 4


def test_recreate_replaces_the_head_first_and_workers_wait_for_it() -> None:
    loop = recreate_loop()
    (old_head,) = loop.heads()
    old_workers = loop.workers("workers")
    old_uids = uids(loop, old_workers)
    loop.edit(head_image(NEW_IMAGE))
    loop.edit(worker_image("workers", NEW_IMAGE))

    step = loop.step()
    assert step.deleted == [old_head]
    (new_head,) = step.created
    assert loop.heads() == [new_head]
    assert image_of(loop, new_head) == NEW_IMAGE
    assert loop.workers("workers") == old_workers

    for _ in range(2):  # the new head is pending: the workers wait
        unchanged(loop.step())
        assert loop.workers("workers") == old_workers
    loop.run_pods(ready=False, only=[new_head])  # running, not ready: still waiting
    unchanged(loop.step())
    assert loop.workers("workers") == old_workers

    pod(loop, new_head)["status"]["conditions"][0]["status"] = "True"
    roll_workers(loop, 1)
    assert loop.heads() == [new_head]
    assert not uids(loop, loop.workers("workers")) & old_uids


@pytest.mark.parametrize(
    "change",
    [
        set_group("workers", replicas=4),
        lambda spec: spec["headGroupSpec"].update(enableIngress=True),
    ],
    ids=["replicas", "enableIngress"],
)
def test_recreate_ignores_scaling_and_service_edits(change: Callable[[Spec], None]) -> None:
    loop = recreate_loop(replicas=3)
    before = uids(loop, loop.pods())
    loop.edit(change)
    loop.converge()
    loop.run_pods()
    loop.converge()
    assert before <= uids(loop, loop.pods())


@pytest.mark.parametrize("value", [0, -1])
def test_max_unavailable_below_one_is_invalid(value: int) -> None:
    spec = cluster_spec(group(), upgradeStrategy={"type": "Recreate", "maxUnavailable": value})
    found = problems(raycluster(spec))
    assert [p.path for p in found] == ["spec.upgradeStrategy.maxUnavailable"]
    desired = first_sync(spec)
    assert desired.status["state"] == "failed"
    assert "spec.upgradeStrategy.maxUnavailable" in desired.status["reason"]
