"""The generated RayJob CRD: fresh, structural, KubeRay's shape, and as strict as the hook.

After a change of the spec model or of app/faces/crd/, regenerate with
``python -m app.faces.crd``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.crd.test_crd as raycluster_crd
from app.faces.crd import KubernetesTypes, build_crd, render
from app.faces.crd.rayjob import RAYJOB, RAYJOB_HEADER, RAYJOB_OUTPUT, RAYJOB_PRINTER_COLUMNS
from app.faces.render import render as render_answer
from app.faces.render import to_yaml
from app.raycluster.cluster import Options as ClusterOptions
from app.raycluster.problems import InvalidSpec
from app.rayjob.options import Options as RayJobOptions
from app.rayjob.parse import parse_rayjob
from app.rayjob.spec import RayJobSpec
from tests.crd.schema_tools import Admission, Schema, apply_defaults, at, nodes, pruned

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MAX_CRD_BYTES = 1024 * 1024  # what we allow ourselves, as compact JSON (etcd's limit is 1.5 MiB)
SPEC = "properties.spec"
RULES_PATH = f"{SPEC}.properties.deletionStrategy.properties.deletionRules"


def _load(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loaded = yaml.load(path.read_text(), Loader=loader)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return _load(RAYJOB_OUTPUT)


@pytest.fixture(scope="module")
def raycluster_schema() -> Schema:
    crd = _load(raycluster_crd.OUTPUT)
    found: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return found


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> Schema:
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    found: Schema = version["schema"]["openAPIV3Schema"]
    return found


@pytest.fixture(scope="module")
def admission(schema: Schema) -> Admission:
    return Admission(schema)


def without_description(node: Schema) -> Schema:
    return {key: value for key, value in node.items() if key != "description"}


# -- (a) the committed file is what the generator writes ---------------------------------------


def test_committed_crd_is_fresh() -> None:
    assert RAYJOB_OUTPUT.read_text() == render(build_crd(None, RAYJOB), RAYJOB_HEADER), (
        "stale: run `python -m app.faces.crd`"
    )


def test_header_says_generated_from_the_rayjob_model() -> None:
    head = RAYJOB_OUTPUT.read_text().splitlines()[:3]
    assert all(line.startswith("#") for line in head)
    assert "python -m app.faces.crd" in head[0]
    assert "app/rayjob/spec.py" in head[0]
    assert any("Do not edit by hand" in line for line in head)


# -- identity, versions, printer columns, size -------------------------------------------------


def test_identity(crd: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"] == {"name": "rayjobs.ray.io"}
    spec = crd["spec"]
    assert spec["group"] == "ray.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "RayJob",
        "listKind": "RayJobList",
        "plural": "rayjobs",
        "singular": "rayjob",
        "categories": ["all"],
    }


def test_v1_is_stored_and_v1alpha1_served_with_the_same_schema(crd: dict[str, Any]) -> None:
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert set(versions) == {"v1", "v1alpha1"}
    assert [name for name, v in versions.items() if v["storage"]] == ["v1"]
    assert versions["v1alpha1"]["served"] is True
    assert versions["v1"]["served"] is True
    assert versions["v1"]["schema"] == versions["v1alpha1"]["schema"]
    for version in versions.values():
        assert version["subresources"] == {"status": {}}
        assert version["additionalPrinterColumns"] == RAYJOB_PRINTER_COLUMNS


def test_printer_columns_are_kuberays(crd: dict[str, Any]) -> None:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    table = [(c["name"], c["jsonPath"], c["type"], c.get("priority", 0)) for c in columns]
    assert table == [
        ("job status", ".status.jobStatus", "string", 0),
        ("deployment status", ".status.jobDeploymentStatus", "string", 0),
        ("ray cluster name", ".status.rayClusterName", "string", 0),
        ("start time", ".status.startTime", "date", 0),
        ("end time", ".status.endTime", "date", 0),
        ("age", ".metadata.creationTimestamp", "date", 0),
    ]


def test_printer_columns_point_at_fields_of_that_type(schema: Schema) -> None:
    for column in RAYJOB_PRINTER_COLUMNS:
        parts = column["jsonPath"].strip(".").split(".")
        if parts[0] == "metadata":
            continue
        node = at(schema, ".".join(f"properties.{p}" for p in parts))
        if column["type"] == "date":
            assert (node["type"], node["format"]) == ("string", "date-time"), column
        else:
            assert node["type"] == column["type"], column


def test_small_enough_to_store(crd: dict[str, Any]) -> None:
    """Far beyond client-side apply's 256 KiB annotation (hence --server-side), well within
    what the API server stores. About 336 KB as JSON, 1.05 MB as YAML (2026-12-02)."""
    compact = json.dumps(crd, separators=(",", ":"))
    assert len(compact) < MAX_CRD_BYTES, len(compact)


# -- (b) structural, and what is embedded ------------------------------------------------------


def test_schema_is_structural(schema: Schema) -> None:
    raycluster_crd.test_schema_is_structural(schema)
    raycluster_crd.test_list_map_keys_are_required_or_defaulted_scalars(schema)
    raycluster_crd.test_defaults_are_valid_values_of_their_node(schema)


# The one exception, inherited from the RayCluster CRD: the history collector's env valueFrom is
# kept but not spelled out (its size; the API server still checks it in the pod).
PRESERVED = (
    ".properties.spec.properties.rayClusterSpec.properties.historyServerOptions.properties"
    ".collectorOptions.properties.env.items.properties.valueFrom"
)


def test_nothing_preserves_unknown_fields(schema: Schema) -> None:
    """As in the RayCluster CRD: unknown fields are rejected (strict field validation) or
    pruned, never kept silently."""
    preserved = [
        path for path, node in nodes(schema) if "x-kubernetes-preserve-unknown-fields" in node
    ]
    assert preserved == [PRESERVED]


def test_ray_cluster_spec_is_the_rayclusters_spec(
    schema: Schema, raycluster_schema: Schema
) -> None:
    embedded = at(schema, f"{SPEC}.properties.rayClusterSpec")
    own = at(raycluster_schema, "properties.spec")
    assert without_description(embedded) == without_description(own)
    assert embedded["required"] == ["headGroupSpec"]
    assert embedded["description"]


def test_submitter_pod_template_is_a_pod_template_spec(schema: Schema) -> None:
    template = at(schema, f"{SPEC}.properties.submitterPodTemplate")
    expected = KubernetesTypes.load().schema("io.k8s.api.core.v1.PodTemplateSpec")
    assert without_description(template) == expected
    assert "ephemeralContainers" not in template["properties"]["spec"]["properties"]


def test_runtime_env_of_v0_6_is_kept(crd: dict[str, Any]) -> None:
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        assert spec["runtimeEnv"]["type"] == "string", version["name"]
        assert spec["runtimeEnvYAML"]["type"] == "string", version["name"]


def _model_fields(node: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    if "anyOf" in node:
        node = next(o for o in node["anyOf"] if o.get("type") != "null")
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    found = []
    for name, sub in node.get("properties", {}).items():
        found.append(f"{path}.properties.{name}")
        found += _model_fields(sub, defs, f"{path}.properties.{name}")
    if isinstance(node.get("items"), dict):
        found += _model_fields(node["items"], defs, f"{path}.items")
    return found


def test_every_model_field_is_in_the_schema(schema: Schema) -> None:
    model = RayJobSpec.model_json_schema()
    fields = _model_fields(model, model["$defs"], SPEC)
    assert len(fields) > 30
    for path in fields:
        node = at(schema, path)
        assert node.get("description"), path
        assert "type" in node, path


# -- (c) defaults and bounds: KubeRay's, plus what the hook checks -----------------------------


def test_defaults_are_kuberays(schema: Schema) -> None:
    defaults = {path: node["default"] for path, node in nodes(schema) if "default" in node}
    own = {
        path: value
        for path, value in defaults.items()
        if ".properties.rayClusterSpec." not in path
        and ".properties.submitterPodTemplate." not in path
        and ".properties.rayClusterStatus." not in path
    }
    assert own == {
        ".properties.spec.properties.submissionMode": "K8sJobMode",
        ".properties.spec.properties.ttlSecondsAfterFinished": 0,
        ".properties.spec.properties.backoffLimit": 0,
        f".{RULES_PATH}.items.properties.condition.properties.ttlSeconds": 0,
        ".properties.status.properties.succeeded": 0,
        ".properties.status.properties.failed": 0,
    }


def test_bounds_and_enums(schema: Schema) -> None:
    spec = at(schema, SPEC)["properties"]
    assert spec["preRunningDeadlineSeconds"]["minimum"] == 1
    assert spec["activeDeadlineSeconds"]["minimum"] == 1
    assert spec["backoffLimit"]["minimum"] == 0
    assert spec["ttlSecondsAfterFinished"]["minimum"] == 0
    for name in ("preRunningDeadlineSeconds", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        assert (spec[name]["type"], spec[name]["format"]) == ("integer", "int32"), name
    assert spec["submissionMode"]["enum"] == [
        "K8sJobMode",
        "HTTPMode",
        "InteractiveMode",
        "SidecarMode",
    ]
    rules = at(schema, RULES_PATH)
    assert rules["minItems"] == 1
    assert rules["x-kubernetes-list-type"] == "atomic"
    rule = rules["items"]
    assert rule["required"] == ["condition", "policy"]
    policies = ["DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone"]
    assert rule["properties"]["policy"]["enum"] == policies
    condition = rule["properties"]["condition"]["properties"]
    assert condition["jobStatus"]["enum"] == ["SUCCEEDED", "FAILED"]
    assert condition["jobDeploymentStatus"]["enum"] == ["Failed"]
    assert condition["ttlSeconds"]["minimum"] == 0
    strategy = at(schema, f"{SPEC}.properties.deletionStrategy.properties")
    assert strategy["onSuccess"]["properties"]["policy"]["enum"] == policies


def test_managed_by_is_immutable_and_one_of_two(schema: Schema) -> None:
    rules = at(schema, f"{SPEC}.properties.managedBy")["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == [
        "self == oldSelf",
        "self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",
    ]


def test_crd_defaulting_does_not_change_what_the_hook_reads(schema: Schema) -> None:
    for _, job in SAMPLE_JOBS:
        plain = parse_rayjob(job)
        defaulted = parse_rayjob(apply_defaults(schema, job))
        assert defaulted.spec.model_dump(exclude={"rayClusterSpec"}) == plain.spec.model_dump(
            exclude={"rayClusterSpec"}
        )
        assert defaulted.runtime_env == plain.runtime_env
        assert defaulted.mode == plain.mode


# -- (d) the status ----------------------------------------------------------------------------


def _status() -> dict[str, Any]:
    """A KubeRay-shaped status of a finished RayJob, with a real RayCluster status inside."""
    return {
        "jobId": "rayjob-sample-x7k2p",
        "rayClusterName": "rayjob-sample-b4zqm",
        "dashboardURL": "rayjob-sample-b4zqm-head-svc.default.svc.cluster.local:8265",
        "jobStatus": "SUCCEEDED",
        "jobDeploymentStatus": "Complete",
        "reason": "",
        "message": "Job finished successfully.",
        "startTime": "2026-12-02T04:00:00Z",
        "endTime": "2026-12-02T04:03:10Z",
        "succeeded": 1,
        "failed": 0,
        "rayClusterStatus": copy.deepcopy(raycluster_crd.STATUSES[0]),
        "observedGeneration": 1,
        "rayJobInfo": {"startTime": "2026-12-02T04:01:02Z", "endTime": "2026-12-02T04:03:01Z"},
        "jobStatusCheckFailureStartTime": "2026-12-02T04:02:00Z",
    }


def test_status_has_kuberays_fields(schema: Schema) -> None:
    status = at(schema, "properties.status")["properties"]
    assert set(status) == set(_status())
    for name in ("startTime", "endTime", "jobStatusCheckFailureStartTime"):
        assert (status[name]["type"], status[name]["format"]) == ("string", "date-time"), name
    for name in ("succeeded", "failed"):
        assert (status[name]["type"], status[name]["format"]) == ("integer", "int32"), name
    observed = status["observedGeneration"]
    assert (observed["type"], observed["format"]) == ("integer", "int64")
    info = status["rayJobInfo"]["properties"]
    assert set(info) == {"startTime", "endTime"}


def test_ray_cluster_status_is_the_rayclusters_status(
    schema: Schema, raycluster_schema: Schema
) -> None:
    embedded = at(schema, "properties.status.properties.rayClusterStatus")
    own = at(raycluster_schema, "properties.status")
    assert without_description(embedded) == without_description(own)


def test_a_full_status_validates_and_nothing_is_pruned(schema: Schema) -> None:
    node = at(schema, "properties.status")
    status = _status()
    assert Admission(node).schema_errors(status) == []
    assert pruned(node, status) == []


# -- (e) the samples ---------------------------------------------------------------------------


def _sample_jobs() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SAMPLES.glob("ray-job.*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "RayJob":
                found.append((path.name, doc))
    return found


SAMPLE_JOBS = _sample_jobs()


def test_the_samples_are_there() -> None:
    assert sorted(name for name, _ in SAMPLE_JOBS) == [
        "ray-job.deletion-rules.yaml",
        "ray-job.resources.yaml",
        "ray-job.sample.yaml",
        "ray-job.shutdown.yaml",
        "ray-job.sidecar-mode.yaml",
        "ray-job.use-existing-raycluster.yaml",
    ]


@pytest.mark.parametrize("job", [j for _, j in SAMPLE_JOBS], ids=[n for n, _ in SAMPLE_JOBS])
def test_sample_is_admitted_unchanged_and_the_hook_accepts_it(
    admission: Admission, job: dict[str, Any]
) -> None:
    assert admission.errors(job) == []
    assert pruned(admission.schema, job) == []
    parsed = parse_rayjob(job)
    assert parsed.name == job["metadata"]["name"]
    for container in _containers(job):
        assert container["image"] == "rayproject/ray:2.52.0"


def _containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = job["spec"].get("rayClusterSpec")
    if cluster is None:
        return []
    templates = [cluster["headGroupSpec"]["template"]]
    templates += [group["template"] for group in cluster.get("workerGroupSpecs", [])]
    return [c for t in templates for c in t["spec"]["containers"]]


def _sample(name: str) -> dict[str, Any]:
    return next(job for sample, job in SAMPLE_JOBS if sample == name)


def test_each_sample_shows_its_feature() -> None:
    sample = parse_rayjob(_sample("ray-job.sample.yaml"))
    assert sample.mode == "K8sJobMode"
    assert sample.runtime_env is not None
    assert set(sample.runtime_env) == {"pip", "env_vars"}
    assert sample.cluster_spec is not None
    assert [g.target for g in sample.cluster_spec.workerGroupSpecs] == [1]

    shutdown = parse_rayjob(_sample("ray-job.shutdown.yaml")).spec
    assert (shutdown.shutdownAfterJobFinishes, shutdown.ttlSecondsAfterFinished) == (True, 10)

    resources = parse_rayjob(_sample("ray-job.resources.yaml"))
    assert (resources.spec.entrypointNumCpus, resources.spec.entrypointNumGpus) == (2, 0.5)
    assert resources.entrypoint_resources
    assert resources.cluster_spec is not None
    params = resources.cluster_spec.headGroupSpec.rayStartParams
    assert {"num-cpus", "num-gpus", "resources"} <= set(params)

    assert parse_rayjob(_sample("ray-job.sidecar-mode.yaml")).mode == "SidecarMode"

    rules = parse_rayjob(_sample("ray-job.deletion-rules.yaml")).spec.deletionStrategy
    assert rules is not None and rules.deletionRules is not None
    table = {(r.condition.jobStatus, r.policy, r.condition.ttlSeconds) for r in rules.deletionRules}
    assert table == {
        (status, policy, ttl)
        for status in ("SUCCEEDED", "FAILED")
        for policy, ttl in (("DeleteWorkers", 30), ("DeleteCluster", 60), ("DeleteSelf", 90))
    }


def test_the_existing_cluster_sample_selects_the_mini_cluster() -> None:
    job = parse_rayjob(_sample("ray-job.use-existing-raycluster.yaml"))
    mini = yaml.safe_load((SAMPLES / "ray-cluster.mini.yaml").read_text())
    assert job.selected_cluster == mini["metadata"]["name"] == "raycluster-mini"
    assert job.cluster_spec is None


def test_the_sample_mounts_its_program_from_the_configmap_in_the_same_file() -> None:
    docs = list(yaml.safe_load_all((SAMPLES / "ray-job.sample.yaml").read_text()))
    [config_map] = [d for d in docs if d["kind"] == "ConfigMap"]
    job = _sample("ray-job.sample.yaml")
    script = job["spec"]["entrypoint"].split()[-1]
    folder, _, file_name = script.rpartition("/")
    assert file_name in config_map["data"]
    cluster = job["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"]]
    templates += [group["template"] for group in cluster["workerGroupSpecs"]]
    for template in templates:
        volumes = {
            v["name"]: v["configMap"]["name"]
            for v in template["spec"]["volumes"]
            if "configMap" in v
        }
        [mount] = [
            m
            for c in template["spec"]["containers"]
            for m in c["volumeMounts"]
            if m["mountPath"] == folder
        ]
        assert volumes[mount["name"]] == config_map["metadata"]["name"]


def test_v1alpha1_manifests_with_a_base64_runtime_env_are_admitted(admission: Admission) -> None:
    job = _valid()
    job["apiVersion"] = "ray.io/v1alpha1"
    job["spec"]["runtimeEnv"] = "eyJwaXAiOiBbInJlcXVlc3RzIl19"  # {"pip": ["requests"]}
    assert admission.errors(job) == []
    assert parse_rayjob(job).runtime_env == {"pip": ["requests"]}


# -- (f) invalid manifests ---------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def _valid() -> dict[str, Any]:
    return copy.deepcopy(_sample("ray-job.shutdown.yaml"))


def _spec(**changes: Any) -> Edit:
    return lambda obj: obj["spec"].update(changes)


def _strategy(strategy: dict[str, Any]) -> Edit:
    return _spec(
        deletionStrategy=strategy, shutdownAfterJobFinishes=False, ttlSecondsAfterFinished=0
    )


def _rule(policy: str = "DeleteCluster", **condition: Any) -> dict[str, Any]:
    return {"policy": policy, "condition": condition}


def _without_head(obj: dict[str, Any]) -> None:
    del obj["spec"]["rayClusterSpec"]["headGroupSpec"]


def _select_cluster(obj: dict[str, Any], selector: dict[str, str]) -> None:
    del obj["spec"]["rayClusterSpec"]
    obj["spec"]["clusterSelector"] = selector


def _worker(**changes: Any) -> Edit:
    return lambda obj: obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(changes)


INVALID: list[tuple[str, Edit, str, bool]] = [
    # (id, edit, expected message, the hook rejects it as well)
    (
        "managed-by-someone-else",
        _spec(managedBy="example.com/my-operator"),
        "spec.managedBy: managedBy must be one of ray.io/kuberay-operator, "
        "kueue.x-k8s.io/multikueue",
        True,
    ),
    (
        "legacy-and-rules-mixed",
        _strategy(
            {
                "onSuccess": {"policy": "DeleteCluster"},
                "onFailure": {"policy": "DeleteNone"},
                "deletionRules": [_rule(jobStatus="SUCCEEDED")],
            }
        ),
        "spec.deletionStrategy: onSuccess/onFailure (legacy) and deletionRules cannot be combined",
        True,
    ),
    (
        "legacy-without-on-failure",
        _strategy({"onSuccess": {"policy": "DeleteCluster"}}),
        "spec.deletionStrategy: the legacy policies need both onSuccess and onFailure",
        True,
    ),
    (
        "empty-deletion-strategy",
        _strategy({}),
        "spec.deletionStrategy: deletionRules is required unless onSuccess and onFailure are set",
        True,
    ),
    (
        "no-deletion-rules",
        _strategy({"deletionRules": []}),
        "spec.deletionStrategy.deletionRules: [] should be non-empty",
        True,
    ),
    (
        "condition-with-both-statuses",
        _strategy({"deletionRules": [_rule(jobStatus="FAILED", jobDeploymentStatus="Failed")]}),
        "spec.deletionStrategy.deletionRules[0].condition: a condition needs exactly one of "
        "jobStatus and jobDeploymentStatus",
        True,
    ),
    (
        "condition-with-neither-status",
        _strategy({"deletionRules": [_rule(ttlSeconds=5)]}),
        "spec.deletionStrategy.deletionRules[0].condition: a condition needs exactly one of "
        "jobStatus and jobDeploymentStatus",
        True,
    ),
    (
        "unknown-policy",
        _strategy({"deletionRules": [_rule("DeleteEverything", jobStatus="FAILED")]}),
        "spec.deletionStrategy.deletionRules.0.policy: 'DeleteEverything' is not one of",
        True,
    ),
    (
        "job-status-not-final",
        _strategy({"deletionRules": [_rule(jobStatus="RUNNING")]}),
        "spec.deletionStrategy.deletionRules.0.condition.jobStatus: 'RUNNING' is not one of",
        True,
    ),
    (
        "negative-rule-ttl",
        _strategy({"deletionRules": [_rule(jobStatus="FAILED", ttlSeconds=-1)]}),
        "condition.ttlSeconds: -1 is less than the minimum of 0",
        True,
    ),
    (
        "zero-pre-running-deadline",
        _spec(preRunningDeadlineSeconds=0),
        "spec.preRunningDeadlineSeconds: 0 is less than the minimum of 1",
        True,
    ),
    (
        "zero-active-deadline",
        _spec(activeDeadlineSeconds=0),
        "spec.activeDeadlineSeconds: 0 is less than the minimum of 1",
        True,
    ),
    (
        "negative-backoff-limit",
        _spec(backoffLimit=-1),
        "spec.backoffLimit: -1 is less than the minimum of 0",
        True,
    ),
    (
        "negative-ttl-after-finished",
        _spec(ttlSecondsAfterFinished=-5),
        "spec.ttlSecondsAfterFinished: -5 is less than the minimum of 0",
        True,
    ),
    (
        "unknown-submission-mode",
        _spec(submissionMode="K8sJob"),
        "spec.submissionMode: 'K8sJob' is not one of",
        True,
    ),
    (
        "cluster-without-head",
        _without_head,
        "spec.rayClusterSpec: 'headGroupSpec' is a required property",
        True,
    ),
    (
        "cluster-worker-min-above-max",
        _worker(minReplicas=3, maxReplicas=1),
        "spec.rayClusterSpec.workerGroupSpecs[0]: minReplicas must be less than or equal to "
        "maxReplicas",
        True,
    ),
    (
        "cluster-spec-and-selector",
        _spec(clusterSelector={"ray.io/cluster": "raycluster-mini"}),
        "spec: exactly one of rayClusterSpec and clusterSelector must be set",
        True,
    ),
    (
        "neither-cluster-spec-nor-selector",
        lambda obj: obj["spec"].pop("rayClusterSpec"),
        "spec: exactly one of rayClusterSpec and clusterSelector must be set",
        True,
    ),
    (
        "selector-without-cluster-name",
        lambda obj: _select_cluster(obj, {"app": "ray"}),
        "spec: clusterSelector must name the RayCluster under 'ray.io/cluster'",
        True,
    ),
    (
        "typo-in-a-field-name",
        _spec(entryPoint="python x.py"),
        "Additional properties are not allowed ('entryPoint' was unexpected)",
        True,
    ),
    (
        "name-of-48-characters",
        lambda obj: obj["metadata"].__setitem__("name", "j" * 48),
        "<root>: metadata.name must be at most 47 characters",
        True,
    ),
    (
        "name-not-dns-1035",
        lambda obj: obj["metadata"].__setitem__("name", "9job"),
        "<root>: metadata.name must be a DNS-1035 label",
        True,
    ),
]


def test_the_base_of_the_invalid_table_is_valid(admission: Admission) -> None:
    assert admission.errors(_valid()) == []
    parse_rayjob(_valid())


@pytest.mark.parametrize(
    ("edit", "message", "hook_rejects"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_manifest_is_refused_for_its_reason(
    admission: Admission, edit: Edit, message: str, hook_rejects: bool
) -> None:
    obj = _valid()
    edit(obj)
    errors = admission.errors(obj)
    assert errors, "admitted"
    assert any(message in error for error in errors), errors
    if hook_rejects:
        with pytest.raises(InvalidSpec):
            parse_rayjob(obj)


@pytest.mark.parametrize(
    "strategy",
    [
        {"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteNone"}},
        {"deletionRules": [_rule("DeleteCluster", jobDeploymentStatus="Failed", ttlSeconds=5)]},
    ],
    ids=["legacy", "rules"],
)
def test_either_deletion_style_alone_is_admitted(
    admission: Admission, strategy: dict[str, Any]
) -> None:
    obj = _valid()
    _strategy(strategy)(obj)
    assert admission.errors(obj) == []
    parse_rayjob(obj)


def test_managed_by_cannot_change_but_may_stay(admission: Admission) -> None:
    old = _valid()
    old["spec"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    assert admission.errors(old) == []
    same = copy.deepcopy(old)
    same["spec"]["entrypoint"] = "python -c 'print(1)'"
    assert admission.errors(same, old=old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["managedBy"] = "ray.io/kuberay-operator"
    assert admission.errors(changed) == []  # fine as a new object
    assert admission.errors(changed, old=old) == ["spec.managedBy: managedBy is immutable"]


# -- (g) what the RayJob core writes fits the CRDs ---------------------------------------------


def _rendered(name: str) -> dict[str, Any]:
    """The sample as the core answers it once its cluster is ready (app.faces.render's walk)."""
    answer = render_answer(
        SAMPLES / name,
        None,
        ClusterOptions(),
        RayJobOptions(submitter_script="print('submitter')\n"),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        entropy=bytes(32),
    )
    plain: dict[str, Any] = yaml.safe_load(to_yaml(answer))
    return plain


@pytest.mark.parametrize("name", [n for n, _ in SAMPLE_JOBS])
def test_the_status_the_core_writes_is_admitted_and_kept(schema: Schema, name: str) -> None:
    """A status field the schema lacked would be pruned, and the two-phase hook would never
    see the cluster name it wrote."""
    status = _rendered(name)["status"]
    assert status["jobDeploymentStatus"]
    node = at(schema, "properties.status")
    assert Admission(node).schema_errors(status) == []
    assert pruned(node, status) == []


@pytest.mark.parametrize("name", [n for n, _ in SAMPLE_JOBS])
def test_the_raycluster_child_is_admitted_by_the_raycluster_crd(
    raycluster_schema: Schema, name: str
) -> None:
    children = _rendered(name)["children"]
    clusters = [child for child in children if child["kind"] == "RayCluster"]
    assert len(clusters) == (0 if name == "ray-job.use-existing-raycluster.yaml" else 1)
    for cluster in clusters:
        cluster = copy.deepcopy(cluster)
        cluster.pop("status", None)
        assert Admission(raycluster_schema).errors(cluster) == []
        assert pruned(raycluster_schema, cluster) == []
