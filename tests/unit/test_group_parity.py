"""A group's ``resources`` and ``labels`` fields, as KubeRay maps them (issue 12, item 1)."""

from __future__ import annotations

from typing import Any

import pytest

from app.raycluster.pods import head_pod_template, worker_pod_template
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import parse_spec
from tests.loop import cluster_spec, group, raycluster
from tests.unit.helpers import make_cluster


def head_args(spec: dict[str, Any]) -> str:
    pod = head_pod_template(make_cluster(spec))
    return str(pod["spec"]["containers"][0]["args"][0])


def worker_pod(spec: dict[str, Any]) -> dict[str, Any]:
    cluster = make_cluster(spec)
    return worker_pod_template(cluster, cluster.spec.workerGroupSpecs[0])


def messages(spec: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raycluster(spec))
    return [str(problem) for problem in caught.value.problems]


def test_head_cpu_zero_is_advertised_not_dropped() -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["resources"] = {"CPU": "0"}
    args = head_args(spec)
    assert "--num-cpus=0" in args
    assert "--num-cpus=1" not in args  # not the container's CPU


def test_head_without_resources_advertises_its_container_cpu() -> None:
    assert "--num-cpus=1" in head_args(cluster_spec())


@pytest.mark.parametrize(
    ("resources", "flag"),
    [
        ({"GPU": "0"}, "--num-gpus=0"),
        ({"memory": "0"}, "--memory=0"),
        ({"CPU": "3", "GPU": "1"}, "--num-gpus=1"),
        (
            {"accelerator_type:A100": "1", "TPU": "2"},
            '--resources=\'{"TPU":2,"accelerator_type:A100":1}\'',
        ),
    ],
)
def test_group_resources_map_to_flags(resources: dict[str, str], flag: str) -> None:
    spec = cluster_spec(group(resources=resources))
    assert flag in worker_pod(spec)["spec"]["containers"][0]["args"][0]


@pytest.mark.parametrize("flag", ["num-cpus", "num-gpus", "memory", "resources"])
def test_resources_and_resource_flags_together_are_invalid(flag: str) -> None:
    spec = cluster_spec(group(resources={"CPU": "1"}, rayStartParams={flag: "1"}))
    assert messages(spec) == [
        "spec.workerGroupSpecs[0].resources: resource fields should not be set in both "
        "rayStartParams and Resources for workers group; please use only one "
        f"(rayStartParams sets {flag})"
    ]


def test_negative_group_resource_is_invalid() -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["resources"] = {"CPU": "-1"}
    assert messages(spec) == ["spec.headGroupSpec.resources.CPU: '-1' must not be negative"]


def test_labels_flag_sorted_and_pod_labels_merged() -> None:
    template = {
        "metadata": {"labels": {"zone": "template", "team": "ml"}},
        "spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0"}]},
    }
    labels = {"zone": "us-east-1a", "ray.io/market-type": "spot", "ray.io/cluster": "intruder"}
    pod = worker_pod(cluster_spec(group(labels=labels, template=template)))
    args = pod["spec"]["containers"][0]["args"][0]
    assert "--labels=ray.io/cluster=intruder,ray.io/market-type=spot,zone=us-east-1a" in args
    pod_labels = pod["metadata"]["labels"]
    assert pod_labels["zone"] == "us-east-1a"  # the group's label wins over the template's
    assert pod_labels["team"] == "ml"
    assert pod_labels["ray.io/market-type"] == "spot"
    assert pod_labels["ray.io/cluster"] == "demo"  # never overridden


def test_ray_start_params_labels_rejected() -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["rayStartParams"] = {"labels": "a=b"}
    assert messages(spec) == [
        "spec.headGroupSpec.rayStartParams.labels: rayStartParams['labels'] is not supported "
        "for head group; please use the top-level Labels field instead"
    ]


@pytest.mark.parametrize("key", ["-bad", "a/b/c", "UPPER.example.com/x", "x" * 64, "", "a b"])
def test_invalid_label_keys(key: str) -> None:
    [message] = messages(cluster_spec(group(labels={key: "v"})))
    assert message.startswith(
        f"spec.workerGroupSpecs[0].labels: invalid label key for workers group: {key!r}"
    )


@pytest.mark.parametrize("value", ["-bad", "a b", "x" * 64, "a=b", "a,b"])
def test_invalid_label_values(value: str) -> None:
    [message] = messages(cluster_spec(group(labels={"k": value})))
    assert message.startswith(
        f"spec.workerGroupSpecs[0].labels.k: invalid label value for workers group: {value!r}"
    )


@pytest.mark.parametrize(
    "labels", [{"ray.io/accelerator-type": "A100"}, {"k": ""}, {"example.com/k_1.x": "v-1.2_3"}]
)
def test_valid_labels_accepted(labels: dict[str, str]) -> None:
    assert (
        parse_spec(raycluster(cluster_spec(group(labels=labels)))).workerGroupSpecs[0].labels
        == labels
    )
