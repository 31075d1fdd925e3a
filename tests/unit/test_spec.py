from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import INT32_MAX, RayClusterSpec, parse_spec
from tests.loop import cluster_spec, group, raycluster
from tests.unit.helpers import head_container, worker_container

Edit = Callable[[dict[str, Any]], None]


def problems(parent: dict[str, Any]) -> list[Problem]:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(parent)
    return caught.value.problems


def paths_for(edit: Edit) -> list[str]:
    spec = cluster_spec(group())
    edit(spec)
    return [problem.path for problem in problems(raycluster(spec))]


def parsed(edit: Edit | None = None) -> RayClusterSpec:
    spec = cluster_spec(group())
    if edit is not None:
        edit(spec)
    return parse_spec(raycluster(spec))


def head(spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = spec["headGroupSpec"]
    return result


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = spec["workerGroupSpecs"][0]
    return result


# -- identity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Demo", "a" * 54, "1demo", "demo_x", "-demo", ""])
def test_bad_cluster_names(name: str) -> None:
    assert [p.path for p in problems(raycluster(cluster_spec(), name=name))] == ["metadata.name"]


def test_cluster_name_of_53_characters_is_fine() -> None:
    parse_spec(raycluster(cluster_spec(), name="a" * 53))


def test_missing_name() -> None:
    parent = raycluster(cluster_spec())
    del parent["metadata"]["name"]
    assert [p.path for p in problems(parent)] == ["metadata.name"]


@pytest.mark.parametrize("version", ["ray.io/v1", "ray.io/v1alpha1"])
def test_api_versions_accepted(version: str) -> None:
    parse_spec(raycluster(cluster_spec(group()), api_version=version))


def test_unknown_api_version() -> None:
    parent = raycluster(cluster_spec(), api_version="ray.io/v2")
    assert [p.path for p in problems(parent)] == ["apiVersion"]


@pytest.mark.parametrize("spec", [None, [], "spec"])
def test_spec_must_be_an_object(spec: Any) -> None:
    parent = raycluster(cluster_spec())
    parent["spec"] = spec
    assert [p.path for p in problems(parent)] == ["spec"]


# -- rules, each naming its field -----------------------------------------------------------------


def _set(path: list[Any], value: Any) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        target = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(path: list[Any]) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        target = spec
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _duplicate_group(spec: dict[str, Any]) -> None:
    spec["workerGroupSpecs"].append(group())


def _bad_head_limit(spec: dict[str, Any]) -> None:
    head_container(spec)["resources"]["limits"]["cpu"] = "lots"


def _bad_worker_request(spec: dict[str, Any]) -> None:
    worker_container(spec)["resources"]["requests"]["memory"] = "2GB"


def _imageless_worker(spec: dict[str, Any]) -> None:
    del worker_container(spec)["image"]


def _nameless_sidecar(spec: dict[str, Any]) -> None:
    head(spec)["template"]["spec"]["containers"].append({"image": "busybox"})


W0 = "spec.workerGroupSpecs[0]"
HEAD_TEMPLATE = "spec.headGroupSpec.template"


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (_set(["bogus"], 1), "spec.bogus"),
        (_set(["headGroupSpec", "bogus"], 1), "spec.headGroupSpec.bogus"),
        (_set(["workerGroupSpecs", 0, "bogus"], 1), f"{W0}.bogus"),
        (
            _set(["workerGroupSpecs", 0, "scaleStrategy"], {"bogus": []}),
            f"{W0}.scaleStrategy.bogus",
        ),
        (_set(["autoscalerOptions"], {"bogus": 1}), "spec.autoscalerOptions.bogus"),
        (_delete(["headGroupSpec"]), "spec.headGroupSpec"),
        (_delete(["headGroupSpec", "template"]), "spec.headGroupSpec.template"),
        (_delete(["workerGroupSpecs", 0, "groupName"]), f"{W0}.groupName"),
        (_set(["workerGroupSpecs", 0, "groupName"], "GPU"), f"{W0}.groupName"),
        (_set(["workerGroupSpecs", 0, "groupName"], "gpu_small"), f"{W0}.groupName"),
        (_set(["workerGroupSpecs", 0, "groupName"], "-gpu"), f"{W0}.groupName"),
        (_set(["workerGroupSpecs", 0, "groupName"], "g" * 64), f"{W0}.groupName"),
        (_set(["workerGroupSpecs", 0, "groupName"], ""), f"{W0}.groupName"),
        (_duplicate_group, "spec.workerGroupSpecs[1].groupName"),
        (_set(["workerGroupSpecs", 0, "minReplicas"], 11), f"{W0}.minReplicas"),
        (_set(["workerGroupSpecs", 0, "minReplicas"], -1), f"{W0}.minReplicas"),
        (_set(["workerGroupSpecs", 0, "maxReplicas"], -1), f"{W0}.maxReplicas"),
        (_set(["workerGroupSpecs", 0, "replicas"], -1), f"{W0}.replicas"),
        (_set(["workerGroupSpecs", 0, "replicas"], INT32_MAX + 1), f"{W0}.replicas"),
        (_set(["workerGroupSpecs", 0, "replicas"], "two"), f"{W0}.replicas"),
        (_set(["workerGroupSpecs", 0, "numOfHosts"], 0), f"{W0}.numOfHosts"),
        (
            _set(["headGroupSpec", "template", "spec", "containers"], []),
            f"{HEAD_TEMPLATE}.spec.containers",
        ),
        (_set(["headGroupSpec", "template"], {}), f"{HEAD_TEMPLATE}.spec.containers"),
        (
            _set(["workerGroupSpecs", 0, "template", "spec", "containers"], []),
            f"{W0}.template.spec.containers",
        ),
        (_imageless_worker, f"{W0}.template.spec.containers[0].image"),
        (_nameless_sidecar, f"{HEAD_TEMPLATE}.spec.containers[1].name"),
        (_bad_head_limit, f"{HEAD_TEMPLATE}.spec.containers[0].resources.limits.cpu"),
        (_bad_worker_request, f"{W0}.template.spec.containers[0].resources.requests.memory"),
        (_set(["workerGroupSpecs", 0, "resources"], {"CPU": "many"}), f"{W0}.resources.CPU"),
        (
            _set(["headGroupSpec", "resources"], {"memory": "1 Gi"}),
            "spec.headGroupSpec.resources.memory",
        ),
        (
            _set(["headGroupSpec", "template", "metadata"], {"labels": {"a": 1}}),
            f"{HEAD_TEMPLATE}.metadata.labels",
        ),
        (_set(["headGroupSpec", "serviceType"], "Headless"), "spec.headGroupSpec.serviceType"),
        (
            _set(["headGroupSpec", "headService"], {"spec": "ClusterIP"}),
            "spec.headGroupSpec.headService.spec",
        ),
        (
            _set(["autoscalerOptions"], {"upscalingMode": "Fast"}),
            "spec.autoscalerOptions.upscalingMode",
        ),
        (_set(["upgradeStrategy"], {"type": "Rolling"}), "spec.upgradeStrategy.type"),
    ],
)
def test_problem_names_the_field(edit: Edit, path: str) -> None:
    assert path in paths_for(edit)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("object-store-memory", "1\nrm -rf /"),
        ("object-store-memory", "1\r"),
        ("object-store-memory", "1\x00"),
        ("resources", '\'{"Custom": 1}'),
        ("resources", '"{}'),
        ("--num-cpus", "1"),
        ("num cpus", "1"),
    ],
)
@pytest.mark.parametrize("where", ["headGroupSpec", "workerGroupSpecs[0]"])
def test_unsafe_ray_start_params(key: str, value: str, where: str) -> None:
    def edit(spec: dict[str, Any]) -> None:
        target = head(spec) if where == "headGroupSpec" else worker(spec)
        target["rayStartParams"] = {key: value}

    assert paths_for(edit) == [f"spec.{where}.rayStartParams.{key}"]


@pytest.mark.parametrize(
    "value", ["'{\"Custom1\": 1}'", '\'"{\\"Custom1\\": 1, \\"Custom2\\": 5}"\'', "0.0.0.0"]
)
def test_quoted_ray_start_params_accepted(value: str) -> None:
    assert parsed(_set(["headGroupSpec", "rayStartParams"], {"resources": value}))


@pytest.mark.parametrize("value", [[1], {"amount": 1}])
def test_non_scalar_quantity_is_a_problem_not_a_crash(value: Any) -> None:
    def edit(spec: dict[str, Any]) -> None:
        head_container(spec)["resources"]["limits"]["cpu"] = value

    assert paths_for(edit) == [f"{HEAD_TEMPLATE}.spec.containers[0].resources.limits.cpu"]


def test_all_problems_reported_together() -> None:
    spec = cluster_spec(group(minimum=5, maximum=1))
    spec["bogus"] = 1
    paths = [p.path for p in problems(raycluster(spec, name="Bad"))]
    assert "metadata.name" in paths
    assert "spec.bogus" in paths


def test_all_rule_problems_reported_together() -> None:
    spec = cluster_spec(group(minimum=5, maximum=1), group("workers"))
    paths = [p.path for p in problems(raycluster(spec))]
    assert f"{W0}.minReplicas" in paths
    assert "spec.workerGroupSpecs[1].groupName" in paths


def test_problem_text_names_path_and_rule() -> None:
    spec = cluster_spec(group(minimum=5, maximum=1))
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raycluster(spec))
    assert str(caught.value).startswith(f"{W0}.minReplicas: must not exceed maxReplicas")


# -- defaults --------------------------------------------------------------------------------------


def test_group_defaults() -> None:
    spec = cluster_spec({"groupName": "g", "template": group()["template"]})
    g = parse_spec(raycluster(spec)).workerGroupSpecs[0]
    assert g.minReplicas == 0
    assert g.maxReplicas == INT32_MAX
    assert g.replicas is None
    assert g.numOfHosts == 1
    assert g.rayStartParams == {}
    assert g.scaleStrategy.workersToDelete == []
    assert g.suspend is False


@pytest.mark.parametrize("minimum", [0, 3])
def test_replicas_default_to_min_replicas(minimum: int) -> None:
    spec = cluster_spec(group(replicas=None, minimum=minimum))
    assert parse_spec(raycluster(spec)).workerGroupSpecs[0].target == minimum


def test_spec_defaults() -> None:
    spec = parse_spec(raycluster({"headGroupSpec": cluster_spec()["headGroupSpec"]}))
    assert spec.workerGroupSpecs == []
    assert spec.enableInTreeAutoscaling is False
    assert spec.suspend is False
    assert spec.headServiceAnnotations == {}


def test_numbers_in_ray_start_params_become_strings() -> None:
    spec = parsed(_set(["headGroupSpec", "rayStartParams"], {"num-cpus": 2, "port": 6380}))
    assert spec.headGroupSpec.rayStartParams == {"num-cpus": "2", "port": "6380"}


def test_v06_manifest_fields_accepted() -> None:
    spec = cluster_spec(group())
    head(spec).update({"replicas": 1, "enableIngress": False, "serviceType": "ClusterIP"})
    spec |= {
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "upscalingMode": "Default",
            "idleTimeoutSeconds": 60,
            "imagePullPolicy": "Always",
            "resources": {"limits": {"cpu": "500m"}},
            "env": [],
            "envFrom": [],
            "volumeMounts": [],
            "securityContext": {},
        },
        "headServiceAnnotations": {"a": "b"},
    }
    assert parse_spec(raycluster(spec, api_version="ray.io/v1alpha1")).enableInTreeAutoscaling


# -- null means unset ------------------------------------------------------------------------------


NULLS = {
    "replicas": (["workerGroupSpecs", 0, "replicas"], None),
    "minReplicas": (["workerGroupSpecs", 0, "minReplicas"], None),
    "maxReplicas": (["workerGroupSpecs", 0, "maxReplicas"], None),
    "group-rayStartParams": (["workerGroupSpecs", 0, "rayStartParams"], None),
    "scaleStrategy": (["workerGroupSpecs", 0, "scaleStrategy"], None),
    "workersToDelete": (["workerGroupSpecs", 0, "scaleStrategy"], {"workersToDelete": None}),
    "head-rayStartParams": (["headGroupSpec", "rayStartParams"], None),
    "serviceType": (["headGroupSpec", "serviceType"], None),
    "workerGroupSpecs": (["workerGroupSpecs"], None),
    "headServiceAnnotations": (["headServiceAnnotations"], None),
    "suspend": (["suspend"], None),
    "autoscalerOptions": (["autoscalerOptions"], None),
    "template-metadata": (["headGroupSpec", "template", "metadata"], None),
    "template-labels": (["headGroupSpec", "template", "metadata"], {"labels": None}),
    "headService-spec": (["headGroupSpec", "headService"], {"spec": None}),
}


@pytest.mark.parametrize(("path", "value"), list(NULLS.values()), ids=list(NULLS))
def test_null_means_unset(path: list[Any], value: Any) -> None:
    parsed(_set(path, value))


def test_null_replicas_default_to_min_replicas() -> None:
    spec = cluster_spec(group(replicas=None, minimum=2))
    worker(spec)["replicas"] = None
    worker(spec)["maxReplicas"] = None
    g = parse_spec(raycluster(spec)).workerGroupSpecs[0]
    assert (g.target, g.maxReplicas) == (2, INT32_MAX)


# -- target ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "minimum", "maximum", "hosts", "suspend", "target"),
    [
        (None, 0, 10, 1, False, 0),
        (None, 2, 10, 1, False, 2),
        (4, 0, 10, 1, False, 4),
        (5, 0, 3, 1, False, 3),
        (0, 2, 5, 1, False, 2),
        (2, 0, 10, 2, False, 4),
        (5, 0, 3, 2, False, 6),
        (3, 1, 10, 1, True, 0),
    ],
)
def test_target_clamps(
    replicas: int | None, minimum: int, maximum: int, hosts: int, suspend: bool, target: int
) -> None:
    spec = cluster_spec(
        group(
            replicas=replicas, minimum=minimum, maximum=maximum, numOfHosts=hosts, suspend=suspend
        )
    )
    assert parse_spec(raycluster(spec)).workerGroupSpecs[0].target == target
