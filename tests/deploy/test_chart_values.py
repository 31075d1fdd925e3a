"""The chart's values: what values.schema.json refuses, what the pod-placement values reach,
the first cluster NOTES.txt offers, and the values file for Metacontroller's own chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.faces.render import render as metaray_render
from app.shell.settings import Settings
from tests.crd.schema_tools import Admission
from tests.deploy.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
    Obj,
    only,
    render,
    render_error,
    run_helm,
)

BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicas": 0}, "/replicas"),
    ({"logLevel": "verbose"}, "/logLevel"),
    ({"events": "maybe"}, "/events"),
    ({"dashboard": "yes"}, "/dashboard"),
    ({"rayjob.enabled": "true"}, "/rayjob/enabled"),
    ({"mtls": {"enabled": True, "issuer": "x"}}, "/mtls"),
    ({"settings.maxInflight": 3}, "/settings"),  # a typo is refused, not ignored
    ({"settings.maxInFlight": 0}, "/settings/maxInFlight"),
    ({"settings.computeTimeoutSeconds": "ten"}, "/settings/computeTimeoutSeconds"),
    ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
    ({"resources.limits.memory": "lots"}, "/resources/limits/memory"),
    ({"service.port": 70000}, "/service/port"),
    ({"serviceMonitor.interval": "30 seconds"}, "/serviceMonitor/interval"),
    ({"networkPolicy.metacontroller.namespace": "Meta_Controller"}, "/networkPolicy"),
    ({"nodeSelector": {"disk": 1}}, "/nodeSelector/disk"),
    ({"replica": 3}, "replica"),  # an unknown top-level value
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_the_values_schema_refuses_bad_values(values: dict[str, Any], where: str) -> None:
    assert where in render_error(values)


def test_placement_image_and_resources_reach_the_pod() -> None:
    values = {
        "image.repository": "registry.example/metaray",
        "image.tag": "9.9.9",
        "replicas": 3,
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "priorityClassName": "system-cluster-critical",
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
        "clusterDomain": "corp.local",
    }
    deployment = only(render(values), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == "registry.example/metaray:9.9.9"
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["priorityClassName"] == "system-cluster-critical"
    # Helm merges maps: the requests change, the default limits stay.
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    assert Settings.from_env(env).cluster_domain == "corp.local"


def test_the_default_image_is_the_charts_app_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    [container] = only(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/metaray/metaray:{chart['appVersion']}"


# ---------------------------------------------------------------------------------------------
# NOTES.txt: the first cluster it offers is valid and comes up as it says


@pytest.fixture(scope="module")
def notes() -> str:
    result = run_helm("install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client")
    assert result.returncode == 0, result.stderr
    return result.stdout.partition("NOTES:")[2]


def test_notes_first_cluster_is_valid_and_becomes_a_head_pod_and_service(
    notes: str, tmp_path: Path
) -> None:
    match = re.search(r"kubectl apply -f - <<'YAML'\n(.*?)\nYAML\n", notes, re.S)
    assert match, notes
    manifest = yaml.safe_load(match.group(1))
    crd = yaml.safe_load((CHART / "crds" / "ray.io_rayclusters.yaml").read_text())
    [v1] = [v for v in crd["spec"]["versions"] if v["name"] == manifest["apiVersion"][7:]]
    assert Admission(v1["schema"]["openAPIV3Schema"]).errors(manifest) == []

    path = tmp_path / "first.yaml"
    path.write_text(match.group(1))
    settings = Settings()
    answer = metaray_render(
        path,
        None,
        settings.options,
        settings.rayjob_options,
        now=datetime(2025, 1, 1, tzinfo=UTC),
        entropy=bytes(32),
    )
    name = manifest["metadata"]["name"]
    kinds = sorted(child["kind"] for child in answer["children"])
    assert kinds == ["Pod", "Service"]
    service = only(answer["children"], "Service")
    # What NOTES port-forwards to.
    assert f"service/{service['metadata']['name']} 8265:8265" in notes
    assert 8265 in [port["port"] for port in service["spec"]["ports"]]
    assert f"kubectl get raycluster {name}" in notes
    reasons = {condition["reason"] for condition in answer["status"]["conditions"]}
    assert "RayClusterPodsProvisioning" in reasons, reasons


def test_notes_say_how_to_upgrade_the_crds(notes: str) -> None:
    assert "kubectl apply --server-side --force-conflicts -f <chart>/crds/" in notes


# ---------------------------------------------------------------------------------------------
# config/metacontroller/values.yaml: Metacontroller's own chart, beside metaray's

METACONTROLLER_VALUES = ROOT / "config" / "metacontroller" / "values.yaml"
# metacontroller-helm 4.17.2's default commandArgs: replacing the list must keep them.
CHART_DEFAULT_ARGS = [
    "--zap-log-level=4",
    "--discovery-interval=20s",
    "--cache-flush-interval=30m",
    "--health-probe-bind-address=:8081",
]


@pytest.fixture(scope="module")
def metacontroller_values() -> Obj:
    values: Obj = yaml.safe_load(METACONTROLLER_VALUES.read_text())
    return values


def flag(args: list[str], name: str) -> float:
    [value] = [arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{name}=")]
    return float(value)


def test_metacontroller_runs_with_raised_client_limits(metacontroller_values: Obj) -> None:
    args = metacontroller_values["commandArgs"]
    assert flag(args, "client-go-qps") >= 100 > 5
    assert flag(args, "client-go-burst") >= 200 > 10
    assert args[: len(CHART_DEFAULT_ARGS)] == CHART_DEFAULT_ARGS


def test_metacontroller_is_what_metarays_networkpolicy_and_rbac_expect(
    metacontroller_values: Obj,
) -> None:
    """Release and namespace "metacontroller" with nameOverride "metacontroller": its pods are
    labelled app.kubernetes.io/name=metacontroller, its ServiceAccount is
    metacontroller/metacontroller (the chart's fullname rule)."""
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    peer = chart_values["networkPolicy"]["metacontroller"]
    name = metacontroller_values["nameOverride"]
    assert peer["podLabels"] == {"app.kubernetes.io/name": name}
    account = chart_values["metacontroller"]["serviceAccount"]
    assert (account["name"], account["namespace"]) == (name, peer["namespace"])
    text = METACONTROLLER_VALUES.read_text()
    assert f"helm install {name} oci://" in text
    assert f"-n {peer['namespace']} --create-namespace" in text


def test_metacontroller_keeps_no_wildcard_and_only_its_own_resources(
    metacontroller_values: Obj,
) -> None:
    rules = metacontroller_values["clusterRole"]["rules"]
    assert not [r for r in rules if "*" in r["apiGroups"] + r["resources"] + r["verbs"]]
    groups = {group for rule in rules for group in rule["apiGroups"]}
    assert groups == {"metacontroller.k8s.io", "", "coordination.k8s.io"}
    core = {res for rule in rules if rule["apiGroups"] == [""] for res in rule["resources"]}
    assert core == {"events"}
