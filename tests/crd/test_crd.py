"""The generated RayCluster CRD: fresh, structural, complete, and as strict as the hook.

After a change of the spec model or of app/faces/crd/, regenerate with
``python -m app.faces.crd``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import app.faces.crd
from app.faces.crd import KubernetesTypes, build_crd, main, render
from app.faces.crd.raycluster import OUTPUT, PRINTER_COLUMNS
from app.faces.crd.schema import KUBERNETES_VERSION
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import RayClusterSpec, parse_spec
from tests.crd.schema_tools import (
    INT_OR_STRING,
    PRESERVE,
    RULES,
    Admission,
    Schema,
    apply_defaults,
    at,
    nodes,
    pruned,
    rule_failures,
    rule_passes,
)
from tests.loop import Loop, cluster_spec, group, raycluster

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
KUBECTL_APPLY_LIMIT = 262144  # bytes of all annotations, last-applied-configuration included
SPEC_ROOT = "properties.spec"
WORKER = "properties.spec.properties.workerGroupSpecs.items"
HEAD = "properties.spec.properties.headGroupSpec"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded = yaml.load(OUTPUT.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> Schema:
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    found: Schema = version["schema"]["openAPIV3Schema"]
    return found


@pytest.fixture(scope="module")
def admission(schema: Schema) -> Admission:
    return Admission(schema)


def status_schema(schema: Schema) -> Schema:
    return at(schema, "properties.status")


# -- (a) the committed file is what the generator writes ---------------------------------------


def test_committed_crd_is_fresh() -> None:
    assert OUTPUT.read_text() == render(build_crd()), "stale: run `python -m app.faces.crd`"


def test_generate_writes_both_crds_and_the_committed_ones_are_fresh() -> None:
    texts = app.faces.crd.generate()
    assert set(texts) == {
        "ray.io_rayclusters.yaml",
        "ray.io_rayjobs.yaml",
        "ray.io_raycronjobs.yaml",
        "ray.io_rayservices.yaml",
    }
    for name, text in texts.items():
        assert (OUTPUT.parent / name).read_text() == text, (
            f"{name} is stale: python -m app.faces.crd"
        )
    assert main(["--check"]) == 0


def test_check_flag_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = {"a.yaml": "kind: CustomResourceDefinition\n", "b.yaml": "kind: Other\n"}
    monkeypatch.setattr(app.faces.crd, "generate", lambda: dict(texts))
    folder = tmp_path / "crds"
    assert main(["--check", "--output-dir", str(folder)]) == 1  # missing
    assert main(["--output-dir", str(folder)]) == 0
    assert main(["--check", "--output-dir", str(folder)]) == 0
    for name in texts:  # either file, stale alone, fails the check
        (folder / name).write_text("kind: Something\n")
        assert main(["--check", "--output-dir", str(folder)]) == 1
        (folder / name).write_text(texts[name])
        assert main(["--check", "--output-dir", str(folder)]) == 0
    (folder / "b.yaml").unlink()
    assert main(["--check", "--output-dir", str(folder)]) == 1


def test_header_says_generated() -> None:
    head = OUTPUT.read_text().splitlines()[:3]
    assert all(line.startswith("#") for line in head)
    assert "python -m app.faces.crd" in head[0]
    assert any("Do not edit by hand" in line for line in head)


def test_kustomization_lists_the_crds() -> None:
    kustomization = yaml.safe_load((OUTPUT.parent / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [
        OUTPUT.name,
        "ray.io_rayjobs.yaml",
        "ray.io_raycronjobs.yaml",
        "ray.io_rayservices.yaml",
    ]


# -- identity, versions, printer columns -------------------------------------------------------


def test_identity(crd: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"] == {"name": "rayclusters.ray.io"}
    spec = crd["spec"]
    assert spec["group"] == "ray.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "RayCluster",
        "listKind": "RayClusterList",
        "plural": "rayclusters",
        "singular": "raycluster",
        "categories": ["all"],
    }


def test_versions_share_one_schema_and_v1_is_stored(crd: dict[str, Any]) -> None:
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert set(versions) == {"v1", "v1alpha1"}
    assert [name for name, v in versions.items() if v["storage"]] == ["v1"]
    assert all(v["served"] for v in versions.values())
    assert versions["v1"]["schema"] == versions["v1alpha1"]["schema"]
    for version in versions.values():
        assert version["subresources"] == {"status": {}}
        assert version["additionalPrinterColumns"] == PRINTER_COLUMNS


def test_printer_columns_are_kuberay_masters(crd: dict[str, Any]) -> None:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    table = [(c["name"], c["jsonPath"], c["type"], c.get("priority", 0)) for c in columns]
    assert table == [
        ("desired workers", ".status.desiredWorkerReplicas", "integer", 0),
        ("available workers", ".status.availableWorkerReplicas", "integer", 0),
        ("cpus", ".status.desiredCPU", "string", 0),
        ("memory", ".status.desiredMemory", "string", 0),
        ("gpus", ".status.desiredGPU", "string", 0),
        ("tpus", ".status.desiredTPU", "string", 1),
        ("status", ".status.state", "string", 0),
        ("age", ".metadata.creationTimestamp", "date", 0),
        ("head pod IP", ".status.head.podIP", "string", 1),
        ("head service IP", ".status.head.serviceIP", "string", 1),
    ]


def test_printer_columns_point_at_fields_of_that_type(schema: Schema) -> None:
    for column in PRINTER_COLUMNS:
        parts = column["jsonPath"].strip(".").split(".")
        if parts[0] == "metadata":
            continue
        node = at(schema, ".".join(f"properties.{p}" for p in parts))
        assert node["type"] == column["type"], column


def test_small_enough_for_client_side_kubectl_apply(crd: dict[str, Any]) -> None:
    compact = json.dumps(crd, separators=(",", ":"))
    assert len(compact) < KUBECTL_APPLY_LIMIT - 8192, len(compact)


# -- (b) structural ----------------------------------------------------------------------------

FORBIDDEN = {"$ref", "$schema", "$defs", "definitions", "id", "$id", "oneOf", "anyOf", "allOf"}
FORBIDDEN |= {"not", "nullable", "discriminator", "x-kubernetes-patch-strategy"}
SCALARS = {"string", "integer", "number", "boolean"}


def test_schema_is_structural(schema: Schema) -> None:
    assert schema["type"] == "object"
    assert schema["properties"]["metadata"] == {"type": "object"}
    for path, node in nodes(schema):
        assert not FORBIDDEN & set(node), (path, FORBIDDEN & set(node))
        assert not any(key.startswith("x-kubernetes-patch") for key in node), path
        typed = node.get("type") in {*SCALARS, "object", "array"}
        assert typed or node.get(INT_OR_STRING) is True or node.get(PRESERVE) is True, path
        if INT_OR_STRING in node:
            assert "type" not in node, path
        if "additionalProperties" in node:
            assert isinstance(node["additionalProperties"], dict), path
            assert "properties" not in node, path
            assert node["type"] == "object", path
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), path
        if "properties" in node:
            assert node["type"] == "object", path
            assert set(node.get("required", [])) <= set(node["properties"]), path


def test_list_map_keys_are_required_or_defaulted_scalars(schema: Schema) -> None:
    seen = 0
    for path, node in nodes(schema):
        kind = node.get("x-kubernetes-list-type")
        if kind == "map":
            seen += 1
            items = node["items"]
            assert items["type"] == "object", path
            for key in node["x-kubernetes-list-map-keys"]:
                prop = items["properties"][key]
                assert prop.get("type") in SCALARS, (path, key)
                assert key in items.get("required", []) or "default" in prop, (path, key)
        elif kind == "set":
            assert node["items"].get("type") in SCALARS or INT_OR_STRING in node["items"], path
        else:
            assert "x-kubernetes-list-map-keys" not in node, path
    assert seen > 20


def test_defaults_are_valid_values_of_their_node(schema: Schema) -> None:
    defaults = [(path, node) for path, node in nodes(schema) if "default" in node]
    assert defaults
    for path, node in defaults:
        probe = Admission({k: v for k, v in node.items() if k != "default"})
        assert probe.schema_errors(node["default"]) == [], path


def test_embedded_types_carry_no_descriptions(schema: Schema) -> None:
    for field in ("properties.template", "properties.headService"):
        for path, node in nodes(at(schema, f"{HEAD}.{field}"), field):
            assert path == field or "description" not in node, path


def test_embedded_object_meta_keeps_what_a_template_may_set(schema: Schema) -> None:
    for where in (f"{HEAD}.properties.template", f"{WORKER}.properties.template"):
        meta = at(schema, f"{where}.properties.metadata")
        assert meta["type"] == "object"
        assert set(meta["properties"]) == {"name", "namespace", "labels", "annotations"}
        assert meta["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    service_meta = at(schema, f"{HEAD}.properties.headService.properties.metadata")
    assert set(service_meta["properties"]) == {"name", "namespace", "labels", "annotations"}


INT_OR_STRING_PATHS = [
    f"{WORKER}.properties.template.properties.spec.properties.containers.items.properties"
    ".resources.properties.limits.additionalProperties",
    f"{HEAD}.properties.template.properties.spec.properties.containers.items.properties"
    ".resources.properties.requests.additionalProperties",
    f"{HEAD}.properties.template.properties.spec.properties.containers.items.properties"
    ".livenessProbe.properties.httpGet.properties.port",
    f"{HEAD}.properties.headService.properties.spec.properties.ports.items.properties.targetPort",
    "properties.spec.properties.autoscalerOptions.properties.resources.properties.limits"
    ".additionalProperties",
]


@pytest.mark.parametrize(
    "path",
    INT_OR_STRING_PATHS,
    ids=["limits", "requests", "probe-port", "target-port", "autoscaler-limits"],
)
def test_int_or_string_where_kubernetes_has_it(schema: Schema, path: str) -> None:
    assert at(schema, path).get(INT_OR_STRING) is True


def test_every_intorstring_and_quantity_of_the_pod_template_is_int_or_string(
    schema: Schema,
) -> None:
    """Walk Kubernetes' own PodTemplateSpec and ServiceSpec: each such ref became one."""
    definitions = json.loads(
        (
            Path(__import__("kubernetes_validate").__file__).parent
            / "kubernetes-json-schema"
            / f"{KUBERNETES_VERSION}-local"
            / "_definitions.json"
        ).read_text()
    )["$defs"]
    special = {
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    }

    def refs(node: dict[str, Any], path: str, trail: frozenset[str]) -> list[str]:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in special:
                return [path]
            if name in trail or name.endswith("ObjectMeta"):
                return []
            return refs(definitions[name], path, trail | {name})
        found = []
        for prop, sub in node.get("properties", {}).items():
            if prop != "ephemeralContainers":
                found += refs(sub, f"{path}.properties.{prop}", trail)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += refs(node[key], f"{path}.{key}", trail)
        return found

    template = {"$ref": "#/$defs/io.k8s.api.core.v1.PodTemplateSpec"}
    service = {"$ref": "#/$defs/io.k8s.api.core.v1.Service"}
    paths = refs(template, f"{WORKER}.properties.template", frozenset())
    paths += refs(service, f"{HEAD}.properties.headService", frozenset())
    assert len(paths) > 20
    for path in paths:
        assert at(schema, path).get(INT_OR_STRING) is True, path


def test_rules_iterate_over_bounded_values_only(schema: Schema) -> None:
    """CEL cost: lists a rule walks have maxItems, strings it compares have maxLength."""
    groups = at(schema, "properties.spec.properties.workerGroupSpecs")
    assert groups["maxItems"] == 256
    assert groups["items"]["properties"]["groupName"]["maxLength"] == 63
    ruled = [path for path, node in nodes(schema) if RULES in node]
    backend = ".properties.spec.properties.gcsFaultToleranceOptions.properties.backend"
    assert ruled == ["", backend, ".properties.spec.properties.workerGroupSpecs", f".{WORKER}"]
    assert at(schema, backend[1:])["enum"] == ["redis", "rocksdb"]  # bounded: an enum


def test_the_gcs_backend_cannot_change(schema: Schema) -> None:
    [rule] = at(schema, "properties.spec.properties.gcsFaultToleranceOptions.properties.backend")[
        RULES
    ]
    assert rule["message"] == "gcsFaultToleranceOptions.backend is immutable"
    assert rule_passes(rule["rule"], "rocksdb")  # on create
    assert rule_passes(rule["rule"], "rocksdb", old="rocksdb")
    assert not rule_passes(rule["rule"], "redis", old="rocksdb")


# -- the spec schema covers the model ----------------------------------------------------------


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
    model = RayClusterSpec.model_json_schema()
    fields = _model_fields(model, model["$defs"], SPEC_ROOT)
    assert len(fields) > 50
    for path in fields:
        node = at(schema, path)
        assert node.get("description"), path
        assert "type" in node, path


def test_embedded_fields_are_the_kubernetes_types(schema: Schema) -> None:
    types = KubernetesTypes.load()
    template = types.schema("io.k8s.api.core.v1.PodTemplateSpec")
    head = at(schema, HEAD)["properties"]
    assert {k: v for k, v in head["template"].items() if k != "description"} == template
    env = at(schema, "properties.spec.properties.autoscalerOptions.properties.env")
    assert env["items"] == types.schema("io.k8s.api.core.v1.EnvVar")
    worker = at(schema, WORKER)["properties"]
    assert worker["template"]["properties"] == head["template"]["properties"]


def test_model_defaults_are_crd_defaults(schema: Schema) -> None:
    group_node = at(schema, WORKER)["properties"]
    assert group_node["minReplicas"]["default"] == 0
    assert group_node["maxReplicas"]["default"] == 2147483647
    assert group_node["numOfHosts"]["default"] == 1
    assert "default" not in group_node["replicas"]  # the hook defaults it to minReplicas
    for name in ("replicas", "minReplicas", "maxReplicas", "numOfHosts", "idleTimeoutSeconds"):
        assert group_node[name]["format"] == "int32", name
        assert group_node[name]["maximum"] == 2147483647, name
    upscaling = at(schema, "properties.spec.properties.autoscalerOptions.properties.upscalingMode")
    assert upscaling["enum"] == ["Default", "Aggressive", "Conservative"]


def test_crd_defaulting_does_not_change_what_the_hook_reads(schema: Schema) -> None:
    parent = raycluster(cluster_spec(group("small", replicas=None), group("big", 2, 1, 5)))
    defaulted = apply_defaults(schema, parent)
    assert defaulted != parent
    # The one default inside a pod template: Kubernetes' own `protocol: TCP` of a port.
    for container in defaulted["spec"]["headGroupSpec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            assert port.pop("protocol") == "TCP"
    assert parse_spec(defaulted) == parse_spec(parent)


# -- (c) the status the hook writes ------------------------------------------------------------


def _statuses() -> list[dict[str, Any]]:
    loop = Loop(raycluster(cluster_spec(group("small", 2, 1, 4), group("big", 1, 0, 3))))
    loop.converge()
    loop.run_pods()
    ready = loop.converge().desired.status
    assert ready["state"] == "ready"
    ready_written = copy.deepcopy(loop.parent["status"])

    def invalid(spec: dict[str, Any]) -> None:
        spec["workerGroupSpecs"][0]["minReplicas"] = 9

    loop.edit(invalid)
    loop.step()
    failed = copy.deepcopy(loop.parent["status"])
    assert failed["state"] == "failed"
    pending = Loop(raycluster(cluster_spec(group())))
    pending.step()
    return [ready_written, failed, copy.deepcopy(pending.parent["status"])]


STATUSES = _statuses()


@pytest.mark.parametrize("status", STATUSES, ids=["ready", "failed", "pending"])
def test_hook_status_validates_and_nothing_is_pruned(
    schema: Schema, status: dict[str, Any]
) -> None:
    node = status_schema(schema)
    assert Admission(node).schema_errors(status) == []
    assert pruned(node, status) == []


@pytest.mark.parametrize("status", STATUSES, ids=["ready", "failed", "pending"])
def test_status_values_have_their_exact_json_types(schema: Schema, status: dict[str, Any]) -> None:
    props = status_schema(schema)["properties"]
    python_types: dict[str, type] = {"integer": int, "string": str, "object": dict, "array": list}
    for key, value in status.items():
        assert type(value) is python_types[props[key]["type"]], key


def test_status_schema_has_exactly_the_fields_the_hook_writes(schema: Schema) -> None:
    written = {key for status in STATUSES for key in status}
    assert written == set(status_schema(schema)["properties"])
    heads = {key for status in STATUSES for key in status.get("head", {})}
    assert heads == set(status_schema(schema)["properties"]["head"]["properties"])


def test_status_conditions_are_a_list_map_of_metav1_conditions(schema: Schema) -> None:
    conditions = status_schema(schema)["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert item["required"] == ["lastTransitionTime", "message", "reason", "status", "type"]
    assert item["properties"]["lastTransitionTime"] == {"type": "string", "format": "date-time"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    observed = status_schema(schema)["properties"]["observedGeneration"]
    assert (observed["type"], observed["format"]) == ("integer", "int64")


# -- (d) the samples ---------------------------------------------------------------------------


def _sample_clusters() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "RayCluster":
                found.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return found


SAMPLE_CLUSTERS = _sample_clusters()


def test_there_are_samples() -> None:
    assert len(SAMPLE_CLUSTERS) >= 2


@pytest.mark.parametrize(
    "cluster", [c for _, c in SAMPLE_CLUSTERS], ids=[n for n, _ in SAMPLE_CLUSTERS]
)
def test_sample_is_admitted_unchanged(admission: Admission, cluster: dict[str, Any]) -> None:
    assert admission.errors(cluster) == []
    assert pruned(admission.schema, cluster) == []


def test_test_builders_are_admitted(admission: Admission) -> None:
    parent = raycluster(cluster_spec(group("small", replicas=None), group("big", 2, 1, 5)))
    assert admission.errors(parent) == []
    assert pruned(admission.schema, parent) == []


# -- (e) invalid manifests ---------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def _worker(change: Callable[[dict[str, Any]], None]) -> Edit:
    return lambda obj: change(obj["spec"]["workerGroupSpecs"][0])


def _set(field: str, value: Any) -> Edit:
    return _worker(lambda g: g.__setitem__(field, value))


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    return found


INVALID: list[tuple[str, Edit, str, bool]] = [
    # (id, edit, expected message, the hook rejects it as well)
    (
        "replicas-not-a-number",
        _set("replicas", "two"),
        "spec.workerGroupSpecs.0.replicas: 'two' is not of type 'integer'",
        True,
    ),
    (
        "unknown-container-field",
        lambda obj: _container(obj).__setitem__("imagee", "x"),
        "Additional properties are not allowed ('imagee' was unexpected)",
        False,
    ),
    (
        "negative-min-replicas",
        _set("minReplicas", -1),
        "spec.workerGroupSpecs.0.minReplicas: -1 is less than the minimum of 0",
        True,
    ),
    (
        "negative-replicas",
        _set("replicas", -3),
        "spec.workerGroupSpecs.0.replicas: -3 is less than the minimum of 0",
        True,
    ),
    (
        "zero-hosts",
        _set("numOfHosts", 0),
        "spec.workerGroupSpecs.0.numOfHosts: 0 is less than the minimum of 1",
        True,
    ),
    (
        "replicas-beyond-int32",
        _set("maxReplicas", 2**31),
        "spec.workerGroupSpecs.0.maxReplicas: 2147483648 is greater than the maximum of 2147483647",
        True,
    ),
    (
        "group-name-not-a-label",
        _set("groupName", "Small_Group"),
        "spec.workerGroupSpecs.0.groupName: 'Small_Group' does not match",
        True,
    ),
    (
        "group-name-too-long",
        _set("groupName", "g" * 64),
        "spec.workerGroupSpecs.0.groupName: '" + "g" * 64 + "' is too long",
        True,
    ),
    (
        "unknown-upscaling-mode",
        lambda obj: obj["spec"].__setitem__("autoscalerOptions", {"upscalingMode": "Fast"}),
        "spec.autoscalerOptions.upscalingMode: 'Fast' is not one of",
        True,
    ),
    (
        "unknown-service-type",
        lambda obj: obj["spec"]["headGroupSpec"].__setitem__("serviceType", "Internal"),
        "spec.headGroupSpec.serviceType: 'Internal' is not one of",
        True,
    ),
    (
        "cpu-not-a-quantity",
        lambda obj: _container(obj)["resources"]["limits"].__setitem__("cpu", "lots"),
        "resources.limits.cpu: 'lots' does not match",
        True,
    ),
    (
        "missing-head-group",
        lambda obj: obj["spec"].pop("headGroupSpec"),
        "spec: 'headGroupSpec' is a required property",
        True,
    ),
    (
        "missing-template",
        _worker(lambda g: g.pop("template")),
        "spec.workerGroupSpecs.0: 'template' is a required property",
        True,
    ),
    (
        "min-above-max",
        _worker(lambda g: g.update(minReplicas=5, maxReplicas=2)),
        "spec.workerGroupSpecs[0]: minReplicas must be less than or equal to maxReplicas",
        True,
    ),
    (
        "duplicate-group-names",
        lambda obj: obj["spec"]["workerGroupSpecs"].append(
            copy.deepcopy(obj["spec"]["workerGroupSpecs"][0])
        ),
        "spec.workerGroupSpecs: groupName must be unique across workerGroupSpecs",
        True,
    ),
    (
        "name-of-54-characters",
        lambda obj: obj["metadata"].__setitem__("name", "r" * 54),
        "<root>: metadata.name must be at most 53 characters",
        True,
    ),
    (
        "name-not-dns-1035",
        lambda obj: obj["metadata"].__setitem__("name", "1cluster"),
        "<root>: metadata.name must be a DNS-1035 label",
        True,
    ),
]


def _valid() -> dict[str, Any]:
    return raycluster(cluster_spec(group("small", 2, 1, 4)))


def test_the_base_of_the_invalid_table_is_valid(admission: Admission) -> None:
    assert admission.errors(_valid()) == []
    parse_spec(_valid())


@pytest.mark.parametrize(
    ("edit", "message", "hook_rejects"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_manifest_is_refused(
    admission: Admission, edit: Edit, message: str, hook_rejects: bool
) -> None:
    obj = _valid()
    edit(obj)
    errors = admission.errors(obj)
    assert errors, "admitted"
    assert any(message in error for error in errors), errors
    if hook_rejects:
        with pytest.raises(InvalidSpec):
            parse_spec(obj)


def test_a_name_of_53_characters_is_fine(admission: Admission) -> None:
    obj = _valid()
    obj["metadata"]["name"] = "r" * 53
    assert admission.errors(obj) == []


def test_min_max_rule_sees_the_defaults(admission: Admission, schema: Schema) -> None:
    """Without min/max the defaults 0 and 2147483647 apply before the rule runs."""
    obj = _valid()
    group_spec = obj["spec"]["workerGroupSpecs"][0]
    del group_spec["minReplicas"], group_spec["maxReplicas"]
    assert admission.errors(obj) == []
    group_spec["minReplicas"] = 7  # above no explicit max: fine with the default max
    assert rule_failures(schema, apply_defaults(schema, obj)) == []


def test_a_typo_or_unsupported_kuberay_field_is_rejected_everywhere(admission: Admission) -> None:
    """kubectl's strict field validation rejects it; a client that lets the API server prune it
    instead loses it; and a hook that somehow sees it refuses the spec."""
    obj = _valid()
    obj["spec"]["rayClusterOptions"] = {"mode": "token"}
    obj["spec"]["workerGroupSpecs"][0]["minReplica"] = 1
    errors = " ".join(admission.errors(obj))
    assert "'rayClusterOptions' was unexpected" in errors
    assert "'minReplica' was unexpected" in errors
    assert sorted(pruned(admission.schema, obj)) == [
        ".spec.rayClusterOptions",
        ".spec.workerGroupSpecs[0].minReplica",
    ]
    with pytest.raises(InvalidSpec, match="rayClusterOptions: unknown field"):
        parse_spec(obj)


def test_unknown_field_in_a_pod_template_would_be_pruned(admission: Admission) -> None:
    obj = _valid()
    _container(obj)["imagee"] = "x"
    assert pruned(admission.schema, obj) == [
        ".spec.workerGroupSpecs[0].template.spec.containers[0].imagee"
    ]


# -- (f) kubectl explain paths -----------------------------------------------------------------

EXPLAIN = [
    (
        "spec.workerGroupSpecs.items.properties.template.properties.spec.properties.containers"
        ".items.properties.image",
        "string",
    ),
    ("spec.headGroupSpec.properties.template.properties.metadata.properties.labels", "object"),
    ("spec.headGroupSpec.properties.headService.properties.spec.properties.ports", "array"),
    ("spec.headGroupSpec.properties.ingressOptions.properties.tls", "array"),
    ("spec.autoscalerOptions.properties.securityContext.properties.runAsUser", "integer"),
    (
        "spec.gcsFaultToleranceOptions.properties.redisPassword.properties.valueFrom.properties"
        ".secretKeyRef.properties.key",
        "string",
    ),
    ("spec.autoscalerOptions.properties.envFrom.items.properties.secretRef", "object"),
    ("spec.autoscalerOptions.properties.volumeMounts.items.properties.mountPath", "string"),
    ("spec.workerGroupSpecs.items.properties.scaleStrategy.properties.workersToDelete", "array"),
    ("status.head.properties.serviceIP", "string"),
]


@pytest.mark.parametrize(("path", "kind"), EXPLAIN, ids=[p for p, _ in EXPLAIN])
def test_explain_path_exists(schema: Schema, path: str, kind: str) -> None:
    """``spec.workerGroupSpecs.items...`` is ``properties.spec.properties.workerGroupSpecs...``."""
    top, field, rest = path.split(".", 2)
    assert at(schema, f"properties.{top}.properties.{field}.{rest}")["type"] == kind
