"""``ray.io/initializing-timeout`` as KubeRay (give up, terminal, clusters deleted after the
delay, two-phase and stale-safe), KubeRay's RayService Event reasons, and the
``kuberay_service_*`` gauges."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.rayservice.timeout import go_duration
from app.shell.kube.events import action_of, controller_of
from tests.rayservice.loop import ServiceLoop, rayservice_object


def stuck(timeout: str = "30s", delay: int = 5) -> ServiceLoop:
    """A RayService whose first cluster never gets a head (no capacity)."""
    parent = rayservice_object(rayClusterDeletionDelaySeconds=delay)
    parent["metadata"]["annotations"] = {"ray.io/initializing-timeout": timeout}
    loop = ServiceLoop(parent)
    loop.step()
    loop.stuck.add(loop.pending or "")
    return loop


def reasons(loop: ServiceLoop) -> list[str]:
    return [e.reason for s in loop.history if s.desired for e in s.desired.events]


def test_an_initializing_rayservice_gives_up_after_the_timeout_and_its_cluster_goes() -> None:
    loop = stuck()
    name = loop.pending
    loop.run(25)
    assert loop.condition("Ready")["reason"] == "Initializing"  # 26 s in: not yet
    assert name in loop.clusters()
    loop.until(lambda s: s.condition("Ready")["reason"] == "InitializingTimeout", max_steps=10)
    ready = loop.condition("Ready")
    assert ready["status"] == "False"
    assert ready["message"].startswith(
        "RayService failed to become ready within the configured timeout of 30s. "
        "Time spent initializing: 3"
    )
    assert loop.pending is None and loop.active is None
    assert reasons(loop).count("RayServiceInitializingTimeout") == 1
    assert name in loop.clusters()  # two-phase, and the deletion delay
    loop.until(lambda s: name not in s.clusters(live=False), max_steps=12)
    assert "DeletedRayCluster" in reasons(loop)


def test_after_the_timeout_a_spec_change_creates_nothing() -> None:
    loop = stuck(timeout="10")
    loop.until(lambda s: s.condition("Ready")["reason"] == "InitializingTimeout", max_steps=20)
    spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"
    loop.edit(rayClusterConfig=spec)
    loop.run(15)
    assert all(not s.created for s in loop.history[-15:])
    assert loop.clusters(live=False) == []
    assert loop.condition("Ready")["reason"] == "InitializingTimeout"


def test_a_stale_parent_from_before_the_timeout_deletes_nothing() -> None:
    loop = stuck(delay=0)
    name = loop.pending
    loop.until(lambda s: s.condition("Ready")["reason"] == "InitializingTimeout", max_steps=40)
    stale = copy.deepcopy(loop.history[-2].request["parent"])
    assert stale["status"]["conditions"][0]["reason"] != "InitializingTimeout"
    for _ in range(3):
        step = loop.step(parent=stale, write_status=False)
        assert step.deleted == [] and step.created == []
    assert name in loop.clusters()


def test_a_serving_rayservice_never_times_out() -> None:
    parent = rayservice_object()
    parent["metadata"]["annotations"] = {"ray.io/initializing-timeout": "20s"}
    loop = ServiceLoop(parent)
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    loop.run(20)
    assert loop.condition("Ready")["reason"] == "NonZeroServeEndpoints"
    assert "RayServiceInitializingTimeout" not in reasons(loop)


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (90, "1m30s"), (3600, "1h0m0s"), (1.5, "1.5s")]
)
def test_durations_read_as_go_writes_them(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


# -- Events -----------------------------------------------------------------------------------


def test_a_first_deploy_and_an_upgrade_tell_kuberays_reasons() -> None:
    loop = ServiceLoop(rayservice_object(rayClusterDeletionDelaySeconds=0))
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    first = reasons(loop)
    assert {"CreatedRayCluster", "CreatedService", "UpdatedServeApplications"} <= set(first)
    assert first.count("UpdatedServeApplications") == 1
    spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"
    old = loop.active
    loop.edit(rayClusterConfig=spec)
    loop.until(lambda s: old not in s.clusters(live=False), max_steps=30)
    later = reasons(loop)[len(first) :]
    assert {"CreatedRayCluster", "UpdatedService", "DeletedRayCluster"} <= set(later)


@pytest.mark.parametrize(
    ("reason", "action"),
    [
        ("UpdatedServeApplications", "Update"),
        ("RayServiceInitializingTimeout", "Reconcile"),
        ("InvalidRayServiceSpec", "Validate"),
        ("DeletedRayCluster", "Delete"),
    ],
)
def test_each_rayservice_reason_has_an_action(reason: str, action: str) -> None:
    assert action_of(reason) == action


def test_rayservice_events_come_from_the_rayservice_controller() -> None:
    assert controller_of("RayService") == "metaray.io/rayservice-controller"


# -- metrics ----------------------------------------------------------------------------------


def test_the_service_gauges_follow_ready_and_upgrade() -> None:
    from app.shell.observability.service_gauges import ServiceGauges, series_of

    now = [1000.0]
    gauges = ServiceGauges(60.0, lambda: now[0])
    parent: dict[str, Any] = rayservice_object()
    loop = ServiceLoop(parent)
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    at = loop.now
    now[0] = at.timestamp()
    gauges.observe(series_of(parent, {"conditions": []}, at))
    text = _samples(gauges)
    ids = ("svc", "default", "uid-rs-1")
    assert text[("kuberay_service_info", *ids, None)] == 1
    assert text[("kuberay_service_condition_ready", *ids, "false")] == 1
    gauges.observe(series_of(parent, loop.status, at))
    text = _samples(gauges)
    assert ("kuberay_service_condition_ready", *ids, "false") not in text
    assert text[("kuberay_service_condition_ready", *ids, "true")] == 1
    assert text[("kuberay_service_condition_upgrade_in_progress", *ids, "false")] == 1
    now[0] += 61
    assert _samples(gauges) == {}  # expired: no answer for twice the resync period


def _samples(gauges: Any) -> dict[tuple[Any, ...], float]:
    found = {}
    for family in gauges.collect():
        for sample in family.samples:
            labels = sample.labels
            key = (sample.name, labels["name"], labels["namespace"], labels["uid"])
            found[(*key, labels.get("condition"))] = sample.value
    return found
