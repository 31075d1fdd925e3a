from __future__ import annotations

from typing import Any

import pytest

from app.core.observed import ObservedPod
from app.raycluster.names import pod_name
from app.raycluster.scaling import (
    GROUP_REMOVED,
    SUSPENDED,
    WORKERS_TO_DELETE,
    Plan,
    plan_pods,
)
from tests.loop import cluster_spec, group
from tests.unit.helpers import UID, make_cluster, observed_pod

HEAD = pod_name("demo", UID, None, 0)


def w(ordinal: int, group_name: str = "workers") -> str:
    """The name metaray gives the worker of ``group_name`` with ``ordinal``."""
    return pod_name("demo", UID, group_name, ordinal)


def head_pod(phase: str = "Running", **kw: Any) -> ObservedPod:
    return observed_pod(HEAD, "head", "headgroup", phase=phase, **kw)


def worker(ordinal: int, phase: str = "Running", **kw: Any) -> ObservedPod:
    return observed_pod(w(ordinal), phase=phase, **kw)


def plan(pods: list[ObservedPod], *groups: dict[str, Any], **extra: Any) -> Plan:
    return plan_pods(make_cluster(cluster_spec(*groups, **extra)), pods)


def created(result: Plan, group_name: str | None = "workers") -> list[str]:
    return [c.name for c in result.create if c.group == group_name]


def removed(result: Plan) -> dict[str, str]:
    return {r.name: r.why for r in result.remove}


def test_new_cluster_gets_a_head_and_its_workers() -> None:
    result = plan([], group(replicas=2))
    assert created(result, None) == [HEAD]
    assert created(result) == [w(0), w(1)]
    assert result.keep == ()
    assert result.remove == ()


def test_steady_state_changes_nothing() -> None:
    pods = [head_pod(), worker(0), worker(1)]
    result = plan(pods, group(replicas=2))
    assert set(result.keep) == {HEAD, w(0), w(1)}
    assert result.create == ()
    assert result.remove == ()


@pytest.mark.parametrize(
    ("replicas", "minimum", "maximum", "count"),
    [(5, 0, 3, 3), (0, 2, 5, 2), (None, 1, 5, 1), (None, 0, 5, 0), (4, 0, 10, 4)],
)
def test_target_is_clamped(replicas: int | None, minimum: int, maximum: int, count: int) -> None:
    result = plan([head_pod()], group(replicas=replicas, minimum=minimum, maximum=maximum))
    assert len(created(result)) == count


def test_new_workers_take_the_lowest_free_replica_indices() -> None:
    """KubeRay v1.7 labels every worker with its replica index; a gap is filled first."""
    held = {"ray.io/worker-group-replica-index": "1"}
    result = plan([head_pod(), observed_pod(w(5), labels=held)], group(replicas=3))
    indices = [dict(c.labels)["ray.io/worker-group-replica-index"] for c in result.create]
    assert indices == ["0", "2"]


def test_scale_up_takes_the_lowest_free_ordinals() -> None:
    result = plan([head_pod(), worker(1)], group(replicas=3))
    assert created(result) == [w(0), w(2)]


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_finished_worker_replaced(phase: str) -> None:
    result = plan([head_pod(), worker(0, phase), worker(1)], group(replicas=2))
    assert removed(result) == {w(0): f"its phase is {phase}"}
    (new,) = created(result)
    assert new not in {w(0), w(1)}
    assert w(1) in result.keep


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_finished_head_replaced(phase: str) -> None:
    result = plan([head_pod(phase), worker(0)], group(replicas=1))
    assert removed(result) == {HEAD: f"its phase is {phase}"}
    (new,) = created(result, None)
    assert new != HEAD
    assert new.startswith("demo-head-")


def test_workers_to_delete_removes_exactly_the_named_pods() -> None:
    pods = [head_pod(), worker(0), worker(1), worker(2)]
    g = group(replicas=1, scaleStrategy={"workersToDelete": [w(0), w(2)]})
    result = plan(pods, g)
    assert removed(result) == {w(0): WORKERS_TO_DELETE, w(2): WORKERS_TO_DELETE}
    assert set(result.keep) == {HEAD, w(1)}
    assert result.create == ()


def test_workers_to_delete_wins_over_replicas_and_is_never_reused() -> None:
    pods = [head_pod(), worker(0), worker(1)]
    g = group(replicas=2, scaleStrategy={"workersToDelete": [w(0)]})
    result = plan(pods, g)
    assert removed(result) == {w(0): WORKERS_TO_DELETE}
    assert created(result) == [w(2)]


def test_listed_names_of_vanished_pods_are_not_reused() -> None:
    g = group(replicas=1, scaleStrategy={"workersToDelete": [w(0)]})
    result = plan([head_pod()], g)
    assert created(result) == [w(1)]
    assert result.unknown_deletes == (("workers", w(0)),)


def test_unknown_workers_to_delete_reported_not_acted_on() -> None:
    other = observed_pod(w(0, "other"), group="other")
    pods = [head_pod(), worker(0), other]
    listed = ["nobody", HEAD, w(0, "other")]
    result = plan(
        pods,
        group(replicas=1, scaleStrategy={"workersToDelete": listed}),
        group("other", replicas=1),
    )
    assert result.remove == ()
    assert set(result.keep) == {HEAD, w(0), w(0, "other")}
    assert set(result.unknown_deletes) == {("workers", name) for name in listed}


def test_terminating_pods_kept_but_not_counted() -> None:
    pods = [head_pod(), worker(0, terminating=True), worker(1)]
    result = plan(pods, group(replicas=2))
    assert set(result.keep) == {HEAD, w(0), w(1)}
    assert created(result) == [w(2)]
    assert result.remove == ()


def test_victims_still_terminating_after_the_autoscaler_cleared_its_list() -> None:
    # The Ray autoscaler named w0 and w1, lowered replicas to 1 and emptied workersToDelete
    # while both are still terminating: every live pod stays and nothing is replaced.
    pods = [
        head_pod(),
        worker(0, terminating=True),
        worker(1, terminating=True),
        worker(2),
    ]
    result = plan(pods, group(replicas=1), enableInTreeAutoscaling=True)
    assert set(result.keep) == {HEAD, w(0), w(1), w(2)}
    assert result.create == ()
    assert result.remove == ()


@pytest.mark.parametrize("autoscaling", [True, False])
def test_terminating_pods_are_not_surplus(autoscaling: bool) -> None:
    pods = [head_pod(), worker(0), worker(1, terminating=True)]
    result = plan(pods, group(replicas=1), enableInTreeAutoscaling=autoscaling)
    assert result.remove == ()
    assert result.create == ()


def test_surplus_removed_highest_ordinal_first_without_autoscaling() -> None:
    pods = [head_pod(), worker(0), worker(1), worker(2)]
    result = plan(pods, group(replicas=1))
    assert set(removed(result)) == {w(1), w(2)}
    assert all(why.startswith("surplus") for why in removed(result).values())
    assert set(result.keep) == {HEAD, w(0)}


@pytest.mark.parametrize("phase", ["Pending", ""])
def test_surplus_takes_pods_not_running_first(phase: str) -> None:
    pods = [head_pod(), worker(0, phase), worker(1), worker(2)]
    result = plan(pods, group(replicas=2))
    assert set(removed(result)) == {w(0)}


def test_surplus_of_pods_metaray_did_not_name_is_still_deterministic() -> None:
    pods = [head_pod(), observed_pod("legacy-b"), observed_pod("legacy-a"), worker(0)]
    first = plan(pods, group(replicas=1))
    again = plan(list(reversed(pods)), group(replicas=1))
    assert len(removed(first)) == 2
    assert first == again


def test_surplus_takes_the_highest_ordinal_even_far_from_zero() -> None:
    # Low ordinals were deleted through workersToDelete; the survivors keep high ones.
    pods = [head_pod(), worker(28), worker(29), worker(30)]
    result = plan(pods, group(replicas=2))
    assert set(removed(result)) == {w(30)}


def test_surplus_kept_with_autoscaling() -> None:
    pods = [head_pod(), worker(0), worker(1), worker(2)]
    result = plan(pods, group(replicas=1), enableInTreeAutoscaling=True)
    assert result.remove == ()
    assert set(result.keep) == {HEAD, w(0), w(1), w(2)}


def test_pods_of_a_removed_group_are_removed() -> None:
    old = [observed_pod(w(i, "old"), group="old") for i in range(2)]
    result = plan([head_pod(), worker(0), *old], group(replicas=1))
    assert removed(result) == {w(0, "old"): GROUP_REMOVED, w(1, "old"): GROUP_REMOVED}
    assert set(result.keep) == {HEAD, w(0)}


@pytest.mark.parametrize(
    "pod",
    [
        observed_pod("stranger", node_type=None, group=None),
        observed_pod("groupless", node_type="worker", group=None),
        observed_pod("odd-type", node_type="sidecar", group="workers"),
    ],
)
def test_pods_without_ray_labels_kept(pod: ObservedPod) -> None:
    result = plan([head_pod(), worker(0), pod], group(replicas=1))
    assert pod.name in result.keep
    assert pod.name not in removed(result)
    assert result.create == ()


def test_suspended_cluster_has_no_pods() -> None:
    pods = [head_pod(), worker(0), worker(1)]
    result = plan(pods, group(replicas=2), suspend=True)
    assert removed(result) == {HEAD: SUSPENDED, w(0): SUSPENDED, w(1): SUSPENDED}
    assert result.create == ()
    assert result.keep == ()


def test_suspended_new_cluster_creates_nothing() -> None:
    result = plan([], group(replicas=2), suspend=True)
    assert result.create == ()


def test_suspended_group_loses_only_its_pods() -> None:
    other = observed_pod(w(0, "other"), group="other")
    pods = [head_pod(), worker(0), other]
    result = plan(pods, group(replicas=1, suspend=True), group("other", replicas=1))
    assert removed(result) == {w(0): SUSPENDED}
    assert set(result.keep) == {HEAD, w(0, "other")}
    assert result.create == ()


def test_plan_is_deterministic() -> None:
    pods = [head_pod(), worker(0, "Failed"), worker(3)]
    assert plan(pods, group(replicas=3)) == plan(list(reversed(pods)), group(replicas=3))
