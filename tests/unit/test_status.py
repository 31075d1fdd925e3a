from __future__ import annotations

from typing import Any

import pytest

from app.core.observed import (
    POD_KEY,
    SERVICE_KEY,
    Observed,
    ObservedPod,
    ObservedService,
    parse,
)
from app.core.time import EPOCH
from app.raycluster.names import pod_name
from app.raycluster.spec import INT32_MAX
from app.raycluster.status import compute_status
from app.raycluster.sync import sync
from tests.loop import cluster_spec, container, group, raycluster
from tests.unit.helpers import UID, make_cluster, observed_pod

HEAD = pod_name("demo", UID, None, 0)
T0 = "2026-01-01T00:10:00Z"
T1 = "2026-01-01T00:20:00Z"


def w(ordinal: int) -> str:
    return pod_name("demo", UID, "workers", ordinal)


def head_pod(**kw: Any) -> ObservedPod:
    kw.setdefault("pod_ip", "10.0.0.1")
    return observed_pod(HEAD, "head", "headgroup", **kw)


def worker(ordinal: int, **kw: Any) -> ObservedPod:
    return observed_pod(w(ordinal), **kw)


def service(
    cluster_ip: str = "None", ports: list[dict[str, Any]] | None = None, name: str = "demo-head-svc"
) -> ObservedService:
    return parse(
        ObservedService,
        {
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:01Z"},
            "spec": {"clusterIP": cluster_ip, "ports": ports or []},
        },
    )


def status_of(
    pods: list[ObservedPod],
    *groups: dict[str, Any],
    services: tuple[ObservedService, ...] = (),
    previous: dict[str, Any] | None = None,
    clock: str | None = T0,
    **extra: Any,
) -> dict[str, Any]:
    cluster = make_cluster(cluster_spec(*groups, **extra))
    observed = Observed(pods=tuple(pods), services=services)
    return compute_status(cluster, observed, previous or {}, clock)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == kind]
    return found


# -- state -----------------------------------------------------------------------------------------


def test_ready_when_head_and_all_desired_workers_run_and_are_ready() -> None:
    status = status_of([head_pod(), worker(0), worker(1)], group(replicas=2))
    assert status["state"] == "ready"


def test_ready_head_only_cluster() -> None:
    assert status_of([head_pod()])["state"] == "ready"


@pytest.mark.parametrize(
    "pods",
    [
        pytest.param([head_pod(), worker(0)], id="missing-worker"),
        pytest.param([head_pod(), worker(0), worker(1, ready=False)], id="worker-not-ready"),
        pytest.param(
            [head_pod(), worker(0), worker(1, phase="Pending", ready=False)], id="worker-pending"
        ),
        pytest.param([head_pod(ready=False), worker(0), worker(1)], id="head-not-ready"),
        pytest.param([worker(0), worker(1)], id="no-head"),
        pytest.param([head_pod(phase="Failed"), worker(0), worker(1)], id="head-failed"),
        pytest.param([head_pod(), worker(0), worker(1, terminating=True)], id="worker-terminating"),
        pytest.param([head_pod(), worker(0), worker(1), worker(2)], id="extra-worker"),
    ],
)
def test_not_ready(pods: list[ObservedPod]) -> None:
    assert "state" not in status_of(pods, group(replicas=2))


def test_suspended_once_no_pods_are_observed() -> None:
    assert status_of([], group(replicas=2), suspend=True)["state"] == "suspended"


def test_not_suspended_while_pods_remain() -> None:
    status = status_of([head_pod(terminating=True)], group(replicas=2), suspend=True)
    assert status.get("state") != "suspended"


# -- counts ----------------------------------------------------------------------------------------


def test_worker_counts() -> None:
    pods = [
        head_pod(),
        worker(0),
        worker(1, ready=False),
        worker(2, phase="Pending", ready=False),
        worker(3, terminating=True),
        worker(4, phase="Failed", ready=False),
    ]
    status = status_of(pods, group(replicas=5))
    assert status["availableWorkerReplicas"] == 2
    assert status["readyWorkerReplicas"] == 1


def test_desired_min_max_workers() -> None:
    groups = [
        group("a", replicas=2, minimum=1, maximum=4),
        group("b", replicas=9, minimum=0, maximum=3),
        group("c", replicas=None, minimum=2, maximum=5, numOfHosts=2),
    ]
    status = status_of([], *groups)
    assert status["desiredWorkerReplicas"] == 2 + 3 + 4
    assert status["minWorkerReplicas"] == 1 + 0 + 4
    assert status["maxWorkerReplicas"] == 4 + 3 + 10


def test_max_workers_saturate_at_int32_max() -> None:
    groups = [group("a"), group("b")]
    for g in groups:
        del g["maxReplicas"]
    assert status_of([], *groups)["maxWorkerReplicas"] == INT32_MAX


def test_suspended_cluster_desires_no_workers() -> None:
    assert status_of([], group(replicas=2), suspend=True)["desiredWorkerReplicas"] == 0


# -- desired resources -----------------------------------------------------------------------------


def accelerated_group(replicas: int) -> dict[str, Any]:
    ray = container("ray-worker", cpu="500m", memory="1Gi")
    ray["resources"]["limits"] |= {"nvidia.com/gpu": "1", "google.com/tpu": "4"}
    return group(replicas=replicas, template={"spec": {"containers": [ray]}})


@pytest.mark.parametrize(
    ("replicas", "cpu", "memory", "gpu", "tpu"),
    [(2, "2", "4Gi", "2", "8"), (1, "1500m", "3Gi", "1", "4"), (0, "1", "2Gi", "0", "0")],
)
def test_desired_resources(replicas: int, cpu: str, memory: str, gpu: str, tpu: str) -> None:
    status = status_of([], accelerated_group(replicas))
    assert status["desiredCPU"] == cpu
    assert status["desiredMemory"] == memory
    assert status["desiredGPU"] == gpu
    assert status["desiredTPU"] == tpu


def test_desired_resources_prefer_requests_and_count_sidecars() -> None:
    ray = container("ray-worker", cpu="2", memory="2Gi")
    ray["resources"]["requests"] = {"cpu": "1", "memory": "1Gi"}
    sidecar = container("sidecar", cpu="250m", memory="256Mi")
    g = group(replicas=2, template={"spec": {"containers": [ray, sidecar]}})
    status = status_of([], g)
    assert status["desiredCPU"] == "3500m"  # head 1 + 2 x (1 + 0.25)
    assert status["desiredMemory"] == "4608Mi"  # 2Gi + 2 x (1Gi + 256Mi)


def test_suspended_cluster_desires_nothing() -> None:
    status = status_of([], accelerated_group(2), suspend=True)
    assert (status["desiredCPU"], status["desiredMemory"]) == ("0", "0")
    assert (status["desiredGPU"], status["desiredTPU"]) == ("0", "0")


# -- endpoints and head ----------------------------------------------------------------------------


def test_endpoints_from_the_observed_service() -> None:
    ports = [
        {"name": "client", "port": 10001, "targetPort": 10001},
        {"name": "dashboard", "port": 8265, "targetPort": 8265, "nodePort": 30265},
        {"name": "gcs-server", "port": 6379, "targetPort": "gcs"},
        {"port": 9999, "targetPort": 9999},
    ]
    status = status_of([head_pod()], services=(service(ports=ports),))
    assert status["endpoints"] == {"client": "10001", "dashboard": "30265", "gcs-server": "gcs"}


def test_no_endpoints_without_a_service() -> None:
    assert "endpoints" not in status_of([head_pod()])


@pytest.mark.parametrize(
    ("cluster_ip", "service_ip"), [("None", "10.0.0.1"), ("10.96.0.9", "10.96.0.9")]
)
def test_head_fields(cluster_ip: str, service_ip: str) -> None:
    status = status_of([head_pod(), worker(0)], services=(service(cluster_ip),))
    assert status["head"] == {
        "podIP": "10.0.0.1",
        "podName": HEAD,
        "serviceIP": service_ip,
        "serviceName": "demo-head-svc",
    }


def test_head_fields_follow_a_custom_service_name() -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["headService"] = {"metadata": {"name": "my-head"}}
    cluster = make_cluster(spec)
    observed = Observed(pods=(head_pod(),), services=(service("10.96.0.9", name="my-head"),))
    status = compute_status(cluster, observed, {}, T0)
    assert status["head"]["serviceName"] == "my-head"
    assert status["head"]["serviceIP"] == "10.96.0.9"


def test_head_fields_without_head_pod() -> None:
    status = status_of([worker(0)], services=(service("None"),))
    assert status["head"] == {"serviceName": "demo-head-svc"}


def test_no_head_fields_when_nothing_is_observed() -> None:
    assert "head" not in status_of([])


# -- conditions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "status", "reason"),
    [
        pytest.param([head_pod()], "True", "HeadPodRunningAndReady", id="ready"),
        pytest.param([], "False", "HeadPodNotFound", id="absent"),
        pytest.param(
            [head_pod(phase="Failed", ready=False)], "False", "HeadPodNotFound", id="failed"
        ),
        pytest.param(
            [head_pod(phase="Pending", ready=False, waiting="ImagePullBackOff")],
            "False",
            "ImagePullBackOff",
            id="waiting",
        ),
        pytest.param(
            [head_pod(ready=False, waiting="CrashLoopBackOff")],
            "False",
            "CrashLoopBackOff",
            id="crashing",
        ),
    ],
)
def test_head_pod_ready_condition(pods: list[ObservedPod], status: str, reason: str) -> None:
    found = condition(status_of(pods), "HeadPodReady")
    assert (found["status"], found["reason"]) == (status, reason)


def test_provisioned_condition() -> None:
    provisioning = status_of([head_pod(), worker(0)], group(replicas=2))
    provisioned = status_of([head_pod(), worker(0), worker(1)], group(replicas=2))
    before = condition(provisioning, "RayClusterProvisioned")
    after = condition(provisioned, "RayClusterProvisioned")
    assert (before["status"], before["reason"]) == ("False", "RayClusterPodsProvisioning")
    assert (after["status"], after["reason"]) == ("True", "AllPodRunningAndReadyFirstTime")


def test_provisioned_condition_is_sticky() -> None:
    first = status_of([head_pod(), worker(0)], group(replicas=1), clock=T0)
    later = status_of([worker(0)], group(replicas=1), previous=first, clock=T1)
    found = condition(later, "RayClusterProvisioned")
    assert found["status"] == "True"
    assert found["lastTransitionTime"] == T0


# -- timestamps ------------------------------------------------------------------------------------


def test_fresh_status_is_stamped_with_the_clock() -> None:
    status = status_of([head_pod()], clock=T0)
    assert status["lastUpdateTime"] == T0
    assert {c["lastTransitionTime"] for c in status["conditions"]} == {T0}


def test_without_a_clock_the_epoch_is_used() -> None:
    status = status_of([head_pod()], clock=None)
    assert status["lastUpdateTime"] == EPOCH


def test_unchanged_status_keeps_its_timestamps() -> None:
    pods = [head_pod(), worker(0)]
    first = status_of(pods, group(replicas=1), clock=T0)
    previous = {**first, "observedGeneration": 3}
    again = status_of(pods, group(replicas=1), previous=previous, clock=T1)
    assert again == first


def test_changed_status_moves_only_what_changed() -> None:
    first = status_of([head_pod(), worker(0, ready=False)], group(replicas=1), clock=T0)
    second = status_of([head_pod(), worker(0)], group(replicas=1), previous=first, clock=T1)
    assert second["lastUpdateTime"] == T1
    assert condition(second, "HeadPodReady")["lastTransitionTime"] == T0
    assert condition(second, "RayClusterProvisioned")["lastTransitionTime"] == T1


def test_condition_keeps_its_transition_time_when_only_the_message_changes() -> None:
    first = status_of([head_pod()], clock=T0)
    other_head = observed_pod(pod_name("demo", UID, None, 1), "head", "headgroup")
    second = status_of([other_head], previous=first, clock=T1)
    found = condition(second, "HeadPodReady")
    assert found["message"] != condition(first, "HeadPodReady")["message"]
    assert found["lastTransitionTime"] == T0


# -- through sync ----------------------------------------------------------------------------------


def observed_with_applied(pods: list[ObservedPod], services: list[ObservedService]) -> Observed:
    applied: dict[tuple[str, str], dict[str, Any]] = {}
    for pod in pods:
        applied[(POD_KEY, pod.name)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod.name},
        }
    for svc in services:
        applied[(SERVICE_KEY, svc.name)] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": svc.name},
        }
    return Observed(pods=tuple(pods), services=tuple(services), applied=applied)


def running_cluster() -> tuple[dict[str, Any], Observed]:
    parent = raycluster(cluster_spec(group(replicas=1)))
    pods = [
        head_pod(created="2026-01-01T00:00:05Z", transition="2026-01-01T00:01:00Z"),
        worker(0, created="2026-01-01T00:00:06Z", transition="2026-01-01T00:02:30+00:00"),
    ]
    return parent, observed_with_applied(pods, [service()])


def test_sync_stamps_with_the_newest_observed_timestamp() -> None:
    parent, observed = running_cluster()
    status = sync(parent, observed).status
    assert status["state"] == "ready"
    assert status["lastUpdateTime"] == "2026-01-01T00:02:30Z"
    assert {c["lastTransitionTime"] for c in status["conditions"]} == {"2026-01-01T00:02:30Z"}


def test_sync_identical_input_gives_identical_status() -> None:
    parent, observed = running_cluster()
    first = sync(parent, observed).status
    parent["status"] = {**first, "observedGeneration": 1}
    parent["metadata"]["managedFields"] = [
        {"manager": "metacontroller", "time": "2026-01-01T01:00:00Z"}
    ]
    assert sync(parent, observed).status == first


def test_sync_invalid_spec_fails_and_keeps_children() -> None:
    parent, observed = running_cluster()
    parent["spec"]["workerGroupSpecs"][0] |= {"minReplicas": 5, "maxReplicas": 1}
    desired = sync(parent, observed)
    assert desired.status["state"] == "failed"
    assert "spec.workerGroupSpecs[0].minReplicas" in desired.status["reason"]
    assert sorted(c["metadata"]["name"] for c in desired.children) == sorted(
        [HEAD, w(0), "demo-head-svc"]
    )
    assert desired.status["head"]["podName"] == HEAD
