from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from app.core.observed import Observed
from app.raycluster.cluster import Options
from app.raycluster.names import SUFFIX_ALPHABET
from app.raycluster.pods import head_pod_template, worker_pod_template
from app.raycluster.sync import sync
from tests.loop import cluster_spec, group, raycluster
from tests.unit.helpers import UID, head_container, make_cluster, worker_container

ULIMIT = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"
FQDN = "demo-head-svc.default.svc.cluster.local"
ROLES = ["head", "worker"]


def build(role: str, spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    cluster = make_cluster(spec, **kw)
    if role == "head":
        return head_pod_template(cluster)
    return worker_pod_template(cluster, cluster.spec.workerGroupSpecs[0])


def ray_of(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def container_of(role: str, spec: dict[str, Any]) -> dict[str, Any]:
    return head_container(spec) if role == "head" else worker_container(spec)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def shm_volumes(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in pod["spec"].get("volumes", []) if v["name"] == "shared-mem"]


def shm_mounts(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in ray_of(pod).get("volumeMounts", []) if m["mountPath"] == "/dev/shm"]


# -- through sync: names and namespace ------------------------------------------------------------


def test_sync_creates_named_pods_in_the_cluster_namespace() -> None:
    parent = raycluster(cluster_spec(group(replicas=2)), namespace="ml")
    pods = [c for c in sync(parent, Observed()).children if c["kind"] == "Pod"]
    names = sorted(pod["metadata"]["name"] for pod in pods)
    suffix = f"[{SUFFIX_ALPHABET}]{{5}}"
    assert len(names) == 3
    assert sum(bool(re.fullmatch(rf"demo-head-{suffix}", n)) for n in names) == 1
    assert sum(bool(re.fullmatch(rf"demo-workers-worker-{suffix}", n)) for n in names) == 2
    assert {pod["metadata"]["namespace"] for pod in pods} == {"ml"}


@pytest.mark.parametrize("role", ROLES)
def test_namespace_forced_to_the_cluster_namespace(role: str) -> None:
    spec = cluster_spec(group())
    template = (
        spec["headGroupSpec"]["template"]
        if role == "head"
        else spec["workerGroupSpecs"][0]["template"]
    )
    template["metadata"] = {"namespace": "elsewhere", "name": "fixed-name"}
    pod = build(role, spec, namespace="ml")
    assert pod["metadata"]["namespace"] == "ml"
    assert "name" not in pod["metadata"]


# -- command ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "start"),
    [("head", "ray start --head "), ("worker", f"ray start --address={FQDN}:6379 ")],
)
def test_command_wrapped_in_bash_with_ulimit(role: str, start: str) -> None:
    ray = ray_of(build(role, cluster_spec(group())))
    assert ray["command"] == ["/bin/bash", "-c", "--"]
    assert len(ray["args"]) == 1
    assert ray["args"][0].startswith(f"{ULIMIT}; {start}")


@pytest.mark.parametrize("role", ROLES)
def test_generated_flags(role: str) -> None:
    script = ray_of(build(role, cluster_spec(group())))["args"][0]
    for flag in ("--block", "--num-cpus=1", "--memory=2147483648", "--metrics-export-port=8080"):
        assert f" {flag}" in script


def test_head_flags_are_sorted() -> None:
    script = ray_of(build("head", cluster_spec(group())))["args"][0]
    flags = [token for token in script.split() if token.startswith("--")]
    assert flags[0] == "--head"
    assert flags[1:] == sorted(flags[1:])


@pytest.mark.parametrize(
    ("command", "args", "prefix"),
    [
        (["echo", "123"], None, "echo 123 && "),
        (["python", "prep.py"], ["--fast"], "python prep.py --fast && "),
        (None, ["sleep 1"], "sleep 1 && "),
    ],
)
@pytest.mark.parametrize("role", ROLES)
def test_user_command_prepended(
    role: str, command: list[str] | None, args: list[str] | None, prefix: str
) -> None:
    spec = cluster_spec(group())
    container = container_of(role, spec)
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    ray = ray_of(build(role, spec))
    assert ray["command"] == ["/bin/bash", "-c", "--"]
    assert ray["args"][0].startswith(f"{prefix}{ULIMIT}; ray start ")


@pytest.mark.parametrize("role", ROLES)
def test_command_already_running_ray_start_left_alone(role: str) -> None:
    spec = cluster_spec(group())
    container = container_of(role, spec)
    container["command"] = ["/bin/sh", "-c"]
    container["args"] = ["ray start --head --block --num-cpus=0"]
    ray = ray_of(build(role, spec))
    assert ray["command"] == ["/bin/sh", "-c"]
    assert ray["args"] == ["ray start --head --block --num-cpus=0"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("value", ["true", "True"])
def test_overwrite_container_cmd_annotation(role: str, value: str) -> None:
    spec = cluster_spec(group())
    container_of(role, spec)["command"] = ["my-entrypoint"]
    pod = build(role, spec, annotations={"ray.io/overwrite-container-cmd": value})
    ray = ray_of(pod)
    assert ray["command"] == ["my-entrypoint"]
    assert "args" not in ray
    assert pod["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    assert env_of(ray)["KUBERAY_GEN_RAY_START_CMD"].startswith("ray start ")


def test_overwrite_annotation_false_still_wraps() -> None:
    spec = cluster_spec(group())
    head_container(spec)["command"] = ["my-entrypoint"]
    pod = build("head", spec, annotations={"ray.io/overwrite-container-cmd": "false"})
    assert ray_of(pod)["command"] == ["/bin/bash", "-c", "--"]


# -- ports -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_metrics_port_added_once(role: str) -> None:
    ports = ray_of(build(role, cluster_spec(group())))["ports"]
    assert [p for p in ports if p.get("name") == "metrics"] == [
        {"containerPort": 8080, "name": "metrics"}
    ]


@pytest.mark.parametrize("role", ROLES)
def test_user_metrics_port_kept(role: str) -> None:
    spec = cluster_spec(group())
    container_of(role, spec)["ports"] = [{"name": "metrics", "containerPort": 9000}]
    ports = ray_of(build(role, spec))["ports"]
    assert ports == [{"name": "metrics", "containerPort": 9000}]


def test_head_keeps_its_declared_ports() -> None:
    ports = ray_of(build("head", cluster_spec(group())))["ports"]
    assert [p["name"] for p in ports] == ["gcs-server", "dashboard", "client", "metrics"]


# -- /dev/shm --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_shared_memory_volume(role: str) -> None:
    pod = build(role, cluster_spec(group()))
    assert shm_mounts(pod) == [{"mountPath": "/dev/shm", "name": "shared-mem"}]
    assert shm_volumes(pod) == [
        {"emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}, "name": "shared-mem"}
    ]


@pytest.mark.parametrize(
    ("resources", "size"),
    [
        ({"limits": {"memory": "4Gi"}, "requests": {"memory": "2Gi"}}, "4Gi"),
        ({"requests": {"memory": "3Gi"}}, "3Gi"),
        ({"limits": {"memory": "1G"}}, "1G"),
        ({"limits": {"cpu": "1"}}, None),
        ({}, None),
    ],
)
def test_shared_memory_size_from_limit_else_request(
    resources: dict[str, Any], size: str | None
) -> None:
    spec = cluster_spec(group())
    head_container(spec)["resources"] = resources
    (volume,) = shm_volumes(build("head", spec))
    assert volume["emptyDir"].get("sizeLimit") == size
    assert volume["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("role", ROLES)
def test_no_shared_memory_when_user_mounts_dev_shm(role: str) -> None:
    spec = cluster_spec(group())
    container = container_of(role, spec)
    container["volumeMounts"] = [{"name": "my-shm", "mountPath": "/dev/shm"}]
    template = (
        spec["headGroupSpec"]["template"]
        if role == "head"
        else spec["workerGroupSpecs"][0]["template"]
    )
    template["spec"]["volumes"] = [{"name": "my-shm", "emptyDir": {"medium": "Memory"}}]
    pod = build(role, spec)
    assert ray_of(pod)["volumeMounts"] == [{"name": "my-shm", "mountPath": "/dev/shm"}]
    assert shm_volumes(pod) == []


@pytest.mark.parametrize("role", ROLES)
def test_no_shared_memory_with_plasma_directory(role: str) -> None:
    spec = cluster_spec(group())
    params = (
        spec["headGroupSpec"]["rayStartParams"]
        if role == "head"
        else spec["workerGroupSpecs"][0]["rayStartParams"]
    )
    params["plasma-directory"] = "/plasma"
    pod = build(role, spec)
    assert shm_mounts(pod) == []
    assert shm_volumes(pod) == []


def test_existing_shared_mem_volume_reused() -> None:
    spec = cluster_spec(group())
    mine = {"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
    spec["headGroupSpec"]["template"]["spec"]["volumes"] = [mine]
    pod = build("head", spec)
    assert shm_volumes(pod) == [mine]
    assert shm_mounts(pod) == [{"mountPath": "/dev/shm", "name": "shared-mem"}]


# -- init containers -------------------------------------------------------------------------------


def wait_gcs(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in pod["spec"].get("initContainers", []) if c["name"] == "wait-gcs-ready"]


def test_wait_gcs_ready_on_workers() -> None:
    spec = cluster_spec(group())
    worker_container(spec)["imagePullPolicy"] = "IfNotPresent"
    (init,) = wait_gcs(build("worker", spec))
    assert init["image"] == "rayproject/ray:2.52.0"
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert init["command"] == ["/bin/bash", "-c", "--"]
    assert f"ray health-check --address {FQDN}:6379" in init["args"][0]
    wanted = {"cpu": "200m", "memory": "256Mi"}
    assert init["resources"] == {"limits": wanted, "requests": wanted}


def test_wait_gcs_ready_follows_custom_port() -> None:
    spec = cluster_spec(group())
    spec["headGroupSpec"]["rayStartParams"] = {"port": "6380"}
    (init,) = wait_gcs(build("worker", spec))
    assert f"--address {FQDN}:6380" in init["args"][0]


def test_wait_gcs_ready_not_on_head() -> None:
    assert wait_gcs(build("head", cluster_spec(group()))) == []


def test_wait_gcs_ready_can_be_turned_off() -> None:
    pod = build("worker", cluster_spec(group()), options=Options(wait_gcs_init_container=False))
    assert wait_gcs(pod) == []


def test_wait_gcs_ready_after_user_init_containers() -> None:
    spec = cluster_spec(group())
    init = {"name": "prep", "image": "busybox"}
    spec["workerGroupSpecs"][0]["template"]["spec"]["initContainers"] = [init]
    names = [c["name"] for c in build("worker", spec)["spec"]["initContainers"]]
    assert names == ["prep", "wait-gcs-ready"]


@pytest.mark.parametrize("role", ROLES)
def test_every_init_container_learns_where_the_head_is(role: str) -> None:
    spec = cluster_spec(group())
    template = (
        spec["headGroupSpec"]["template"]
        if role == "head"
        else spec["workerGroupSpecs"][0]["template"]
    )
    template["spec"]["initContainers"] = [
        {"name": "prep", "image": "busybox"},
        {"name": "mine", "image": "busybox", "env": [{"name": "RAY_IP", "value": "custom"}]},
    ]
    for init in build(role, spec)["spec"]["initContainers"]:
        names = [item["name"] for item in init["env"]]
        assert names.count("FQ_RAY_IP") == 1
        assert names.count("RAY_IP") == 1
        env = env_of(init)
        assert env["FQ_RAY_IP"] == FQDN
        assert env["RAY_IP"] == ("custom" if init["name"] == "mine" else "demo-head-svc")


# -- probes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("version", ["2.52.0", "2.9.3", None])
def test_exec_probes_before_ray_2_53(role: str, version: str | None) -> None:
    spec = cluster_spec(group())
    if version is None:
        del spec["rayVersion"]
    else:
        spec["rayVersion"] = version
    ray = ray_of(build(role, spec))
    for probe in ("readinessProbe", "livenessProbe"):
        command = ray[probe]["exec"]["command"]
        assert command[:2] == ["bash", "-c"]
        assert "localhost:52365/api/local_raylet_healthz" in command[2]
        assert ("localhost:8265/api/gcs_healthz" in command[2]) is (role == "head")
        assert "httpGet" not in ray[probe]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("version", ["2.53.0", "2.60.1", "3.0.0"])
def test_http_probes_from_ray_2_53(role: str, version: str) -> None:
    spec = cluster_spec(group())
    spec["rayVersion"] = version
    ray = ray_of(build(role, spec))
    for probe in ("readinessProbe", "livenessProbe"):
        assert ray[probe]["httpGet"] == {"path": "/api/healthz", "port": 52365}
        assert "exec" not in ray[probe]


@pytest.mark.parametrize(("role", "timeout"), [("head", 5), ("worker", 2)])
def test_probe_timing(role: str, timeout: int) -> None:
    ray = ray_of(build(role, cluster_spec(group())))
    readiness, liveness = ray["readinessProbe"], ray["livenessProbe"]
    assert (readiness["initialDelaySeconds"], readiness["failureThreshold"]) == (10, 10)
    assert (liveness["initialDelaySeconds"], liveness["failureThreshold"]) == (30, 120)
    for probe in (readiness, liveness):
        assert probe["timeoutSeconds"] == timeout
        assert probe["periodSeconds"] == 5
        assert probe["successThreshold"] == 1


@pytest.mark.parametrize("role", ROLES)
def test_user_probe_kept(role: str) -> None:
    spec = cluster_spec(group())
    mine = {"tcpSocket": {"port": 6379}, "periodSeconds": 7}
    container_of(role, spec)["readinessProbe"] = mine
    ray = ray_of(build(role, spec))
    assert ray["readinessProbe"] == mine
    assert "exec" in ray["livenessProbe"]


def test_http_probe_follows_agent_port() -> None:
    spec = cluster_spec(group())
    spec["rayVersion"] = "2.53.0"
    spec["headGroupSpec"]["rayStartParams"] = {"dashboard-agent-listen-port": "52366"}
    ray = ray_of(build("head", spec))
    assert ray["readinessProbe"]["httpGet"]["port"] == 52366


# -- labels and annotations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "node_type", "group_label"),
    [("head", "head", "headgroup"), ("worker", "worker", "workers")],
)
def test_labels_precedence(role: str, node_type: str, group_label: str) -> None:
    spec = cluster_spec(group())
    template = (
        spec["headGroupSpec"]["template"]
        if role == "head"
        else spec["workerGroupSpecs"][0]["template"]
    )
    template["metadata"] = {
        "labels": {
            "team": "ml",
            "app.kubernetes.io/name": "my-app",
            "ray.io/cluster": "intruder",
            "ray.io/node-type": "intruder",
            "ray.io/group": "intruder",
            "controller-uid": "intruder",
        }
    }
    labels = build(role, spec)["metadata"]["labels"]
    assert labels["team"] == "ml"
    assert labels["app.kubernetes.io/name"] == "my-app"
    assert labels["ray.io/cluster"] == "demo"
    assert labels["ray.io/node-type"] == node_type
    assert labels["ray.io/group"] == group_label
    assert labels["ray.io/identifier"] == f"demo-{node_type}"
    assert labels["ray.io/is-ray-node"] == "yes"
    assert labels["app.kubernetes.io/created-by"] == "kuberay-operator"
    assert labels["controller-uid"] == UID


def test_group_labels_become_pod_labels_but_not_protected_ones() -> None:
    spec = cluster_spec(group(labels={"zone": "a", "ray.io/group": "intruder"}))
    pod = build("worker", spec)
    assert pod["metadata"]["labels"]["zone"] == "a"
    assert pod["metadata"]["labels"]["ray.io/group"] == "workers"
    assert "--labels=ray.io/group=intruder,zone=a" in ray_of(pod)["args"][0]


@pytest.mark.parametrize(
    ("annotations", "value"),
    [
        (None, "false"),
        ({"ray.io/ft-enabled": "true"}, "true"),
        ({"ray.io/ft-enabled": "TRUE"}, "true"),
    ],
)
def test_ft_annotation_on_head_only(annotations: dict[str, str] | None, value: str) -> None:
    spec = cluster_spec(group())
    head_container(spec)["env"] = [{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]
    head = build("head", spec, annotations=annotations)
    worker = build("worker", spec, annotations=annotations)
    assert head["metadata"]["annotations"]["ray.io/ft-enabled"] == value
    assert "ray.io/ft-enabled" not in worker["metadata"].get("annotations", {})


def test_template_annotations_kept() -> None:
    spec = cluster_spec(group())
    spec["workerGroupSpecs"][0]["template"]["metadata"] = {"annotations": {"team": "ml"}}
    annotations = build("worker", spec)["metadata"]["annotations"]
    assert annotations["team"] == "ml"
    assert set(annotations) == {"team", "ray.io/pod-template-hash"}


@pytest.mark.parametrize("role", ROLES)
def test_building_twice_gives_the_same_pod_and_leaves_the_spec_alone(role: str) -> None:
    cluster = make_cluster(cluster_spec(group()))
    spec = cluster.spec
    template = spec.headGroupSpec.template if role == "head" else spec.workerGroupSpecs[0].template
    before = copy.deepcopy(template)

    def once() -> dict[str, Any]:
        if role == "head":
            return head_pod_template(cluster)
        return worker_pod_template(cluster, spec.workerGroupSpecs[0])

    assert once() == once()
    assert template == before
