"""One source, no drift: the Helm chart renders the kustomize install.

``metacontroller/`` and ``config/`` are the source. ``scripts/sync-chart`` copies the CRDs, the
CompositeController registrations and the Grafana dashboard into ``charts/metaray/`` verbatim;
the rest of the chart is templates whose default render must equal ``kubectl kustomize`` apart
from the differences below, which docs/operations.md ("Install with Helm") lists too.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, HELM_LABELS, ROOT, Obj, only, render
from tests.deploy.test_manifests import require_tool

# Registrations of controllers that land on other branches: in the chart (off by default) before
# they are in metacontroller/. Each entry must go once its source exists (a test says so).
PENDING: set[str] = set()

# The documented differences between `helm template` (defaults) and `kubectl kustomize`:
# - Helm's own labels on every object (HELM_LABELS);
# - no Namespace object: the release's namespace is made by `helm install --create-namespace`;
# - the CRDs carry no labels (Helm installs crds/ as they are; kustomize labels them);
# - the ClusterRole and ClusterRoleBinding <release>-metacontroller: Metacontroller's RBAC for
#   exactly metaray's controllers, which the kustomize install leaves to Metacontroller's own
#   wildcard ClusterRole.
ONLY_IN_KUSTOMIZE = {("Namespace", "metaray")}
ONLY_IN_HELM = {
    ("ClusterRole", "metaray-metacontroller"),
    ("ClusterRoleBinding", "metaray-metacontroller"),
}


def kustomize(directory: str) -> list[Obj]:
    kubectl = require_tool("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def normalised(objects: list[Obj]) -> dict[tuple[str, str], Obj]:
    """Objects by (kind, name), without Helm's labels and without labels on CRDs."""
    out = {}
    for obj in objects:
        labels = {
            key: value
            for key, value in obj["metadata"].get("labels", {}).items()
            if key not in HELM_LABELS and obj["kind"] != "CustomResourceDefinition"
        }
        obj["metadata"].pop("labels", None)
        if labels:
            obj["metadata"]["labels"] = labels
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


# ---------------------------------------------------------------------------------------------
# The verbatim copies


def test_the_chart_crds_are_the_generated_crds() -> None:
    generated = {path.name: path.read_bytes() for path in (ROOT / "crds").glob("ray.io_*.yaml")}
    copied = {path.name: path.read_bytes() for path in (CHART / "crds").iterdir()}
    assert copied.keys() == generated.keys(), "run scripts/sync-chart"
    stale = [name for name in generated if copied[name] != generated[name]]
    assert not stale, f"charts/metaray/crds/ differs from crds/ ({stale}): run scripts/sync-chart"


def test_the_chart_registrations_are_the_kustomize_ones() -> None:
    sources = {
        p.name: p.read_bytes() for p in (ROOT / "metacontroller").glob("*compositecontroller.yaml")
    }
    copies = {p.name: p.read_bytes() for p in (CHART / "files" / "controllers").iterdir()}
    stale = [name for name in sources if copies.get(name) != sources[name]]
    assert not stale, f"{stale} differ from metacontroller/: run scripts/sync-chart"
    assert set(copies) - set(sources) == PENDING, (
        "a registration in the chart without a source in metacontroller/ must be listed in "
        "PENDING, and one whose source has landed must leave PENDING"
    )


def test_the_grafana_dashboard_is_the_config_one() -> None:
    source = ROOT / "config" / "grafana" / "metaray-dashboard.json"
    assert (CHART / "files" / "grafana" / source.name).read_bytes() == source.read_bytes()
    configmap = only(render({"grafanaDashboard.enabled": True}), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"][source.name]) == json.loads(source.read_text())


# ---------------------------------------------------------------------------------------------
# The default render against kustomize


@pytest.fixture(scope="module")
def helm_objects() -> dict[tuple[str, str], Obj]:
    return normalised(render(include_crds=True))


@pytest.fixture(scope="module")
def kustomize_objects() -> dict[tuple[str, str], Obj]:
    return normalised(kustomize("metacontroller"))


def test_the_same_objects_apart_from_the_documented_ones(
    helm_objects: dict[tuple[str, str], Obj], kustomize_objects: dict[tuple[str, str], Obj]
) -> None:
    assert set(kustomize_objects) - set(helm_objects) == ONLY_IN_KUSTOMIZE
    assert set(helm_objects) - set(kustomize_objects) == ONLY_IN_HELM


def test_every_shared_object_is_identical(
    helm_objects: dict[tuple[str, str], Obj], kustomize_objects: dict[tuple[str, str], Obj]
) -> None:
    """CRDs, CompositeController specs, RBAC rules, the Deployment's container... field by
    field: any edit to one install that the other lacks fails here."""
    shared = sorted(set(helm_objects) & set(kustomize_objects))
    assert len(shared) >= 13
    differing = [key for key in shared if helm_objects[key] != kustomize_objects[key]]
    assert not differing, "\n".join(
        f"{kind}/{name}:\n  helm:      {diff(helm_objects[key], kustomize_objects[key])}"
        for key in differing
        for kind, name in [key]
    )


def diff(left: Any, right: Any, path: str = "") -> str:
    """The first path where two values differ, with both values."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                return diff(left.get(key), right.get(key), f"{path}.{key}")
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            if a != b:
                return diff(a, b, f"{path}[{index}]")
    return f"{path}: {left!r}\n  kustomize: {right!r}"


def test_mtls_renders_the_config_mtls_overlay() -> None:
    helm_cc = normalised(render({"mtls.enabled": True}))[("CompositeController", "metaray")]
    overlay = normalised(kustomize("config/mtls"))[("CompositeController", "metaray")]
    assert helm_cc == overlay, diff(helm_cc, overlay)


def test_gateway_api_renders_the_config_gateway_api_overlay() -> None:
    """The RayService registration and the hook's METARAY_GATEWAY_API, as the overlay sets them."""
    key = ("CompositeController", "metaray-rayservice")
    helm = normalised(render({"gatewayAPI.enabled": True}))
    overlay = normalised(kustomize("config/gateway-api"))
    assert helm[key] == overlay[key], diff(helm[key], overlay[key])
    helm_env, overlay_env = _env(helm), _env(overlay)
    assert helm_env["METARAY_GATEWAY_API"] == overlay_env["METARAY_GATEWAY_API"] == "on"
    assert "METARAY_GATEWAY_API" not in _env(normalised(render({})))


def _env(objs: dict[Any, Any]) -> dict[str, Any]:
    container = objs[("Deployment", "metaray")]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_monitors_are_config_prometheus() -> None:
    helm = normalised(render({"serviceMonitor.enabled": True, "podMonitor.enabled": True}))
    for key, source in normalised(kustomize("config/prometheus")).items():
        assert helm[key] == source, diff(helm[key], source)


# ---------------------------------------------------------------------------------------------
# settings: every METARAY_* the app reads has a value in the chart, or a stated reason not to

# Set by their own values (logLevel, events, dashboard).
DEDICATED = {"METARAY_LOG_LEVEL", "METARAY_EVENTS", "METARAY_DASHBOARD", "METARAY_GATEWAY_API"}
# Not settable: the Service, the probes and the NetworkPolicy rely on 0.0.0.0:8080; the hook's
# token and TLS files come from Secrets (SECURITY.md), through extraEnv and extraVolumes.
NOT_VALUES = {
    "METARAY_HOST",
    "METARAY_PORT",
    "METARAY_AUTH_TOKEN",
    "METARAY_AUTH_TOKEN_FILE",
    "METARAY_TLS_CERT_FILE",
    "METARAY_TLS_KEY_FILE",
}


def settings_env_names() -> set[str]:
    source = (ROOT / "app" / "shell" / "settings.py").read_text()
    return set(re.findall(r'"(METARAY_[A-Z_]+)"', source))


def test_every_setting_of_the_app_is_a_chart_value_or_excluded_on_purpose() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    keys = schema["properties"]["settings"]["properties"]
    as_env = {"METARAY_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper() for key in keys}
    assert as_env | DEDICATED | NOT_VALUES == settings_env_names()
    assert not as_env & (DEDICATED | NOT_VALUES)


def test_settings_reach_the_container_as_the_env_the_app_reads() -> None:
    from app.shell.settings import Settings

    values = {
        "settings.maxInFlight": 16,
        "settings.computeTimeoutSeconds": 4.5,
        "logLevel": "debug",
    }
    deployment = only(render(values), "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings = Settings.from_env(env)
    assert (settings.max_in_flight, settings.compute_timeout_seconds) == (16, 4.5)
    assert settings.log_level == "debug"
