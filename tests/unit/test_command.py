from __future__ import annotations

from typing import Any

import pytest

from app.raycluster.command import (
    Resources,
    container_resources,
    group_resources,
    head_port,
    ray_start,
    render_flags,
    start_params,
)

ADDRESS = "demo-head-svc.default.svc.cluster.local:6379"


def params(
    user: dict[str, str] | None = None,
    *,
    head: bool = False,
    resources: Resources | None = None,
    labels: dict[str, str] | None = None,
    autoscaling: bool = False,
) -> dict[str, str]:
    return start_params(
        user or {},
        head=head,
        head_address=ADDRESS,
        resources=resources or Resources(),
        labels=labels or {},
        autoscaling=autoscaling,
    )


def from_container(limits: dict[str, Any], requests: dict[str, Any] | None = None) -> Resources:
    return container_resources({"resources": {"limits": limits, "requests": requests or {}}})


@pytest.mark.parametrize("head", [True, False])
def test_defaults_for_both_roles(head: bool) -> None:
    result = params(head=head)
    assert result["metrics-export-port"] == "8080"
    assert result["dashboard-agent-listen-port"] == "52365"
    assert result["block"] == "true"


def test_head_defaults() -> None:
    result = params(head=True)
    assert result["dashboard-host"] == "0.0.0.0"
    assert "address" not in result
    assert "no-monitor" not in result


def test_worker_defaults() -> None:
    result = params(head=False)
    assert result["address"] == ADDRESS
    assert "dashboard-host" not in result
    assert "no-monitor" not in result


@pytest.mark.parametrize(("head", "no_monitor"), [(True, True), (False, False)])
def test_no_monitor_on_head_with_autoscaling(head: bool, no_monitor: bool) -> None:
    assert ("no-monitor" in params(head=head, autoscaling=True)) is no_monitor


@pytest.mark.parametrize(
    ("head", "key", "value"),
    [
        (False, "address", "elsewhere:6380"),
        (True, "dashboard-host", "127.0.0.1"),
        (True, "metrics-export-port", "9090"),
        (False, "dashboard-agent-listen-port", "52366"),
        (True, "num-cpus", "0"),
    ],
)
def test_user_params_override_defaults(head: bool, key: str, value: str) -> None:
    resources = Resources(cpu=from_container({"cpu": "4"}).cpu)
    assert params({key: value}, head=head, resources=resources)[key] == value


@pytest.mark.parametrize("value", ["false", "False", "0"])
def test_block_is_forced_true(value: str) -> None:
    assert params({"block": value})["block"] == "true"


def test_flags_render_sorted() -> None:
    assert render_flags({"b": "1", "c": "x", "a": "2"}) == "--a=2 --b=1 --c=x"


@pytest.mark.parametrize(
    ("value", "rendered"), [("true", "--flag"), ("True", "--flag"), ("false", ""), ("FALSE", "")]
)
def test_booleans_render_as_switches(value: str, rendered: str) -> None:
    assert render_flags({"flag": value}) == rendered


@pytest.mark.parametrize("key", ["log-color", "include-dashboard", "include-log-monitor"])
@pytest.mark.parametrize("value", ["true", "false"])
def test_explicit_booleans_render_with_value(key: str, value: str) -> None:
    assert render_flags({key: value}) == f"--{key}={value}"


def test_values_rendered_verbatim() -> None:
    value = '\'"{\\"Custom1\\": 1}"\''
    assert render_flags({"resources": value}) == f"--resources={value}"


@pytest.mark.parametrize(
    ("head", "prefix"), [(True, "ray start --head --"), (False, "ray start --")]
)
def test_ray_start_prefix(head: bool, prefix: str) -> None:
    assert ray_start(params(head=head), head=head).startswith(prefix)


def test_ray_start_contains_block_switch() -> None:
    assert " --block" in ray_start(params(head=False), head=False)


@pytest.mark.parametrize(
    ("limits", "requests", "num_cpus"),
    [
        ({"cpu": "500m"}, {}, "1"),
        ({"cpu": "1"}, {}, "1"),
        ({"cpu": "1500m"}, {}, "2"),
        ({"cpu": 3}, {}, "3"),
        ({}, {"cpu": "2"}, "2"),
        ({"cpu": "4"}, {"cpu": "1"}, "4"),
    ],
)
def test_num_cpus_rounded_up_from_limits_else_requests(
    limits: dict[str, Any], requests: dict[str, Any], num_cpus: str
) -> None:
    assert params(resources=from_container(limits, requests))["num-cpus"] == num_cpus


@pytest.mark.parametrize("limits", [{}, {"cpu": "0"}])
def test_no_num_cpus_without_cpu(limits: dict[str, Any]) -> None:
    assert "num-cpus" not in params(resources=from_container(limits))


@pytest.mark.parametrize(
    ("memory", "flag"), [("2Gi", "2147483648"), ("1G", "1000000000"), ("512Mi", "536870912")]
)
def test_memory_in_bytes(memory: str, flag: str) -> None:
    assert params(resources=from_container({"memory": memory}))["memory"] == flag


def test_memory_only_from_the_limit() -> None:
    # KubeRay master: num-cpus falls back to the request, memory does not (Part B 2.5).
    assert "memory" not in params(resources=from_container({}, {"memory": "2Gi"}))


@pytest.mark.parametrize(
    ("limits", "gpus"),
    [
        ({"nvidia.com/gpu": "2"}, "2"),
        ({"amd.com/gpu": 1}, "1"),
        ({"cpu": "1", "nvidia.com/gpu": "1"}, "1"),
    ],
)
def test_num_gpus_from_a_key_ending_in_gpu(limits: dict[str, Any], gpus: str) -> None:
    assert params(resources=from_container(limits))["num-gpus"] == gpus


def test_no_num_gpus_without_gpu() -> None:
    assert "num-gpus" not in params(resources=from_container({"cpu": "1", "memory": "1Gi"}))


@pytest.mark.parametrize(
    ("limits", "resources"),
    [
        ({"google.com/tpu": "4"}, "'{\"TPU\":4}'"),
        ({"aws.amazon.com/neuroncore": 2}, "'{\"neuron_cores\":2}'"),
    ],
)
def test_accelerators_become_ray_resources(limits: dict[str, Any], resources: str) -> None:
    assert params(resources=from_container(limits))["resources"] == resources


def test_accelerator_rendered_in_command() -> None:
    start = ray_start(params(resources=from_container({"google.com/tpu": "4"})), head=False)
    assert "--resources='{\"TPU\":4}'" in start


def test_user_resources_win_over_accelerators() -> None:
    user = {"resources": "'{\"Custom\":1}'"}
    result = params(user, resources=from_container({"google.com/tpu": "4"}))
    assert result["resources"] == user["resources"]


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ({"CPU": "3"}, "num-cpus", "3"),
        ({"memory": "1Gi"}, "memory", "1073741824"),
        ({"GPU": "2"}, "num-gpus", "2"),
        ({"custom": "5"}, "resources", "'{\"custom\":5}'"),
    ],
)
def test_group_resources_override_container(override: dict[str, str], key: str, value: str) -> None:
    base = from_container({"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"})
    assert params(resources=group_resources(base, override))[key] == value


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ({"cpu": "3"}, "num-cpus", "3"),
        ({"Memory": "1Gi"}, "memory", "1073741824"),
        ({"gpu": "2"}, "num-gpus", "2"),
        ({"nvidia.com/gpu": "2"}, "num-gpus", "2"),
    ],
)
def test_group_resource_names_match_like_kuberay(
    override: dict[str, str], key: str, value: str
) -> None:
    result = params(resources=group_resources(Resources(), override))
    assert result[key] == value
    assert "resources" not in result


def test_group_resources_merge_with_accelerators() -> None:
    base = from_container({"google.com/tpu": "4"})
    merged = group_resources(base, {"custom": "1"})
    assert params(resources=merged)["resources"] == '\'{"TPU":4,"custom":1}\''


def test_group_labels_rendered_sorted() -> None:
    result = params(labels={"zone": "a", "accelerator": "tpu"})
    assert result["labels"] == "accelerator=tpu,zone=a"
    assert "--labels=accelerator=tpu,zone=a" in ray_start(result, head=False)


def test_no_labels_flag_without_group_labels() -> None:
    assert "labels" not in params()


@pytest.mark.parametrize(("user", "port"), [({}, "6379"), ({"port": "6380"}, "6380")])
def test_head_port(user: dict[str, str], port: str) -> None:
    assert head_port(user) == port
