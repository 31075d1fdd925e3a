"""KubeRay's RayService samples against metaray's CRDs: each is admitted by the RayService CRD
unchanged (v1 and the v0.6 ``v1alpha1``) and accepted by the hook; what the core answers for it
(``metaray render``'s walk) fits too — its status is admitted and nothing of it is pruned, its
RayCluster child is admitted by the RayCluster CRD. The Services are checked against the
Kubernetes schemas by tests/golden/test_children_valid.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.crd.test_crd as raycluster_crd
from app.faces.crd.rayservice import RAYSERVICE
from app.faces.render import render, to_yaml
from app.raycluster.cluster import Options
from app.rayjob.options import Options as RayJobOptions
from app.rayservice.spec import parse_rayservice
from tests.crd.schema_tools import Admission, Schema, at, pruned

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _schema(path: Path, version: str) -> Schema:
    crd = _load(path)
    found: Schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"][
        "openAPIV3Schema"
    ]
    return found


def _samples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SAMPLES.glob("ray-service.*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "RayService":
                found.append((path.name, doc))
    return found


SAMPLE_SERVICES = _samples()
IDS = [name for name, _ in SAMPLE_SERVICES]


# KubeRay v1.7's RayService samples (ray-operator/config/samples, vllm/ flattened), but for the
# incremental upgrade's, which needs the Gateway API overlay; and v0.6's autoscaler sample.
KUBERAY_SAMPLES = {
    "ray-service.sample.yaml",
    "ray-service.custom-serve-service.yaml",
    "ray-service.different-port.yaml",
    "ray-service.high-availability.yaml",
    "ray-service.no-ray-serve-replica.yaml",
    "ray-service.mobilenet.yaml",
    "ray-service.stable-diffusion.yaml",
    "ray-service.text-summarizer.yaml",
    "ray-service.text-ml.yaml",
    "ray-service.tpu-single-host.yaml",
    "ray-service.llm-serve.yaml",
    "ray-service.deepseek.yaml",
    "ray-service.high-throughput-llm.yaml",
    "ray-service.high-throughput-gemma4.yaml",
    "ray-service.vllm-tpu-v6e-singlehost.yaml",
    "ray-service.autoscaler.yaml",
}


def test_kuberays_samples_are_there() -> None:
    assert set(IDS) >= KUBERAY_SAMPLES


def test_an_empty_template_metadata_is_dropped_as_the_api_server_does() -> None:
    """KubeRay's Gemma sample leaves a worker template's ``metadata:`` empty (null); the API
    server drops a null it may not keep, so the sample is admitted and metaray never sees it."""
    service = dict(SAMPLE_SERVICES)["ray-service.high-throughput-gemma4.yaml"]
    worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert "metadata" in worker["template"] and worker["template"]["metadata"] is None
    schema = _schema(RAYSERVICE.output, "v1")
    node = at(schema, "properties.spec.properties.rayClusterConfig")
    assert Admission(node).schema_errors(service["spec"]["rayClusterConfig"]) != []
    assert Admission(node).errors(service["spec"]["rayClusterConfig"]) == []


@pytest.mark.parametrize("service", [s for _, s in SAMPLE_SERVICES], ids=IDS)
def test_sample_is_admitted_unchanged_and_the_hook_accepts_it(service: dict[str, Any]) -> None:
    version = service["apiVersion"].split("/")[1]
    schema = _schema(RAYSERVICE.output, version)
    assert Admission(schema).errors(service) == []
    assert pruned(schema, service) == []
    parent = {**service, "metadata": {**service["metadata"], "uid": "u"}}
    parsed = parse_rayservice(parent, gateway_api=True)  # with the config/gateway-api overlay
    assert parsed.name == service["metadata"]["name"]


def _rendered(name: str) -> dict[str, Any]:
    answer = render(
        SAMPLES / name,
        None,
        Options(),
        RayJobOptions(submitter_script="print('submitter')\n"),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        entropy=bytes(32),
    )
    plain: dict[str, Any] = yaml.safe_load(to_yaml(answer))
    return plain


@pytest.mark.parametrize("name", IDS)
def test_the_status_the_core_writes_is_admitted_and_kept(name: str) -> None:
    """A status field the schema lacked would be pruned, and the two-phase hook would never see
    the cluster name it wrote."""
    status = _rendered(name)["status"]
    service = dict(SAMPLE_SERVICES)[name]
    assert status["activeServiceStatus"]["rayClusterName"].startswith(
        f"{service['metadata']['name']}-"
    )
    node = at(_schema(RAYSERVICE.output, "v1"), "properties.status")
    assert Admission(node).schema_errors(status) == []
    assert pruned(node, status) == []


@pytest.mark.parametrize("name", IDS)
def test_the_cluster_serves_and_is_admitted_by_the_raycluster_crd(name: str) -> None:
    answer = _rendered(name)
    clusters = [c for c in answer["children"] if c["kind"] == "RayCluster"]
    assert [c["metadata"]["name"] for c in clusters] == [
        answer["status"]["activeServiceStatus"]["rayClusterName"]
    ]
    services = [c for c in answer["children"] if c["kind"] == "Service"]
    assert len(services) == 2  # the head and the serve Service, selecting that cluster
    assert {s["spec"]["selector"]["ray.io/cluster"] for s in services} == {
        clusters[0]["metadata"]["name"]
    }
    schema = _schema(raycluster_crd.OUTPUT, "v1")
    cluster = copy.deepcopy(clusters[0])
    cluster.pop("status", None)
    assert Admission(schema).errors(cluster) == []
    assert pruned(schema, cluster) == []


def test_each_sample_shows_its_feature() -> None:
    custom = _rendered("ray-service.custom-serve-service.yaml")
    serve = next(
        c for c in custom["children"] if c["metadata"]["name"] == "custom-ray-serve-service-name"
    )
    assert serve["spec"]["type"] == "LoadBalancer"
    assert {p["name"] for p in serve["spec"]["ports"]} >= {"custom-ray-serve-service-port"}
    different = _rendered("ray-service.different-port.yaml")
    serve = next(
        c
        for c in different["children"]
        if c["metadata"]["name"] == "rayservice-different-port-serve-svc"
    )
    assert [p["port"] for p in serve["spec"]["ports"]] == [9000]
    ha = _rendered("ray-service.high-availability.yaml")
    cluster = next(c for c in ha["children"] if c["kind"] == "RayCluster")
    assert cluster["spec"]["gcsFaultToleranceOptions"]["redisAddress"] == "redis:6379"
    scaler = _rendered("ray-service.autoscaler.yaml")
    cluster = next(c for c in scaler["children"] if c["kind"] == "RayCluster")
    assert cluster["spec"]["enableInTreeAutoscaling"] is True


def _cluster_of(name: str) -> dict[str, Any]:
    [cluster] = [c for c in _rendered(name)["children"] if c["kind"] == "RayCluster"]
    return cluster


def test_the_newer_samples_keep_what_they_show() -> None:
    """What each of KubeRay's newer samples is about reaches the cluster metaray creates."""
    no_replica = _cluster_of("ray-service.no-ray-serve-replica.yaml")["spec"]
    assert no_replica["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert no_replica["workerGroupSpecs"][0]["replicas"] == 2
    tpu = _cluster_of("ray-service.tpu-single-host.yaml")["spec"]["workerGroupSpecs"][0]
    assert tpu["numOfHosts"] == 1
    assert tpu["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "2x2x1"
    gpu = _cluster_of("ray-service.stable-diffusion.yaml")["spec"]["workerGroupSpecs"][0]
    assert gpu["template"]["spec"]["tolerations"][0]["key"] == "ray.io/node-type"
    # The Hugging Face Secret beside the RayService is the user's: never a child.
    llm = _rendered("ray-service.llm-serve.yaml")
    assert {c["kind"] for c in llm["children"]} == {"RayCluster", "Service"}
    # envsubst placeholders are strings like any other until the user fills them in.
    vllm = _cluster_of("ray-service.vllm-tpu-v6e-singlehost.yaml")["spec"]
    assert vllm["headGroupSpec"]["template"]["spec"]["serviceAccountName"] == "$KSA_NAME"
    gemma = _cluster_of("ray-service.high-throughput-gemma4.yaml")["spec"]["workerGroupSpecs"][0]
    assert gemma["template"]["spec"]["containers"][0]["name"] == "llm"
