from __future__ import annotations

from typing import Any

import pytest

from app.raycluster.pods import head_pod_template, worker_pod_template
from app.raycluster.service import head_service
from tests.loop import cluster_spec, group
from tests.unit.helpers import UID, head_container, make_cluster


def service_for(spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return head_service(make_cluster(spec, **kw))


def ports_of(service: dict[str, Any]) -> list[tuple[str, int]]:
    return [(port["name"], port["port"]) for port in service["spec"]["ports"]]


def test_name_and_namespace() -> None:
    service = service_for(cluster_spec(group()), namespace="ml")
    assert service["apiVersion"] == "v1"
    assert service["kind"] == "Service"
    assert service["metadata"]["name"] == "demo-head-svc"
    assert service["metadata"]["namespace"] == "ml"


def test_ports_from_head_container_sorted_by_name() -> None:
    service = service_for(cluster_spec(group()))
    assert ports_of(service) == [
        ("client", 10001),
        ("dashboard", 8265),
        ("gcs-server", 6379),
        ("metrics", 8080),
    ]
    for port in service["spec"]["ports"]:
        assert port["appProtocol"] == "tcp"
        assert "targetPort" not in port


def test_unnamed_port_named_after_its_number() -> None:
    spec = cluster_spec()
    head_container(spec)["ports"] = [{"containerPort": 8000}, {"containerPort": 6379, "name": ""}]
    assert ports_of(service_for(spec)) == [
        ("6379-port", 6379),
        ("8000-port", 8000),
        ("metrics", 8080),
    ]


@pytest.mark.parametrize("ports", [None, []])
def test_default_ports_when_container_has_none(ports: list[Any] | None) -> None:
    spec = cluster_spec()
    container = head_container(spec)
    if ports is None:
        del container["ports"]
    else:
        container["ports"] = ports
    assert ports_of(service_for(spec)) == [
        ("client", 10001),
        ("dashboard", 8265),
        ("gcs-server", 6379),
        ("metrics", 8080),
        ("serve", 8000),
    ]


def test_container_metrics_port_not_duplicated() -> None:
    spec = cluster_spec()
    head_container(spec)["ports"] = [{"containerPort": 9090, "name": "metrics"}]
    assert ports_of(service_for(spec)) == [("metrics", 9090)]


def test_service_ports_match_the_head_pod_ports() -> None:
    cluster = make_cluster(cluster_spec())
    pod_ports = {
        (p["name"], p["containerPort"])
        for p in head_pod_template(cluster)["spec"]["containers"][0]["ports"]
    }
    assert set(ports_of(head_service(cluster))) == pod_ports


def test_selector_selects_the_head_pod_only() -> None:
    spec = cluster_spec(group())
    spec["headGroupSpec"]["template"]["metadata"] = {"labels": {"app.kubernetes.io/name": "x"}}
    cluster = make_cluster(spec)
    selector = head_service(cluster)["spec"]["selector"]
    head_labels = head_pod_template(cluster)["metadata"]["labels"]
    worker_labels = worker_pod_template(cluster, cluster.spec.workerGroupSpecs[0])["metadata"][
        "labels"
    ]
    assert selector == {"ray.io/cluster": "demo", "ray.io/node-type": "head"}
    assert selector.items() <= head_labels.items()
    assert not selector.items() <= worker_labels.items()


@pytest.mark.parametrize(("template_app", "app"), [(None, "kuberay"), ("my-app", "my-app")])
def test_labels(template_app: str | None, app: str) -> None:
    spec = cluster_spec()
    if template_app is not None:
        spec["headGroupSpec"]["template"]["metadata"] = {
            "labels": {"app.kubernetes.io/name": template_app}
        }
    labels = service_for(spec)["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == app
    assert labels["app.kubernetes.io/created-by"] == "kuberay-operator"
    assert labels["ray.io/cluster"] == "demo"
    assert labels["ray.io/node-type"] == "head"
    assert labels["ray.io/identifier"] == "demo-head"
    assert labels["controller-uid"] == UID


@pytest.mark.parametrize("service_type", [None, "ClusterIP"])
def test_cluster_ip_service_is_headless(service_type: str | None) -> None:
    spec = cluster_spec()
    if service_type is not None:
        spec["headGroupSpec"]["serviceType"] = service_type
    service = service_for(spec)["spec"]
    assert service["type"] == "ClusterIP"
    assert service["clusterIP"] == "None"
    assert service["publishNotReadyAddresses"] is True


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_exposed_service_is_not_headless(service_type: str) -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["serviceType"] = service_type
    service = service_for(spec)["spec"]
    assert service["type"] == service_type
    assert "clusterIP" not in service
    assert "publishNotReadyAddresses" not in service


def test_head_service_annotations() -> None:
    spec = cluster_spec(headServiceAnnotations={"b": "2", "a": "1"})
    assert service_for(spec)["metadata"]["annotations"] == {"a": "1", "b": "2"}


def test_no_annotations_by_default() -> None:
    assert "annotations" not in service_for(cluster_spec())["metadata"]


def custom_service_spec() -> dict[str, Any]:
    spec = cluster_spec(headServiceAnnotations={"shared": "from-cluster"})
    spec["headGroupSpec"]["serviceType"] = "NodePort"
    spec["headGroupSpec"]["headService"] = {
        "metadata": {
            "name": "my-head",
            "namespace": "elsewhere",
            "labels": {"team": "ml", "ray.io/cluster": "intruder"},
            "annotations": {"mine": "1", "shared": "from-service"},
        },
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": {"app": "other"},
            "ports": [{"name": "serve", "port": 8000}, {"name": "dash", "port": 8265}],
        },
    }
    return spec


def test_custom_head_service_identity() -> None:
    meta = service_for(custom_service_spec())["metadata"]
    assert meta["name"] == "my-head"
    assert meta["namespace"] == "default"
    assert meta["labels"]["team"] == "ml"
    assert meta["labels"]["ray.io/cluster"] == "demo"
    assert meta["annotations"] == {"mine": "1", "shared": "from-cluster"}


def test_custom_head_service_spec() -> None:
    spec = service_for(custom_service_spec())["spec"]
    assert spec["type"] == "LoadBalancer"
    assert spec["externalTrafficPolicy"] == "Local"
    assert spec["selector"] == {"ray.io/cluster": "demo", "ray.io/node-type": "head"}
    assert "clusterIP" not in spec


def test_custom_head_service_ports_come_first_and_are_not_duplicated() -> None:
    ports = ports_of(service_for(custom_service_spec()))
    assert ports[:2] == [("serve", 8000), ("dash", 8265)]
    assert ports[2:] == [("client", 10001), ("gcs-server", 6379), ("metrics", 8080)]


def test_custom_head_service_type_defaults_to_service_type() -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["serviceType"] = "NodePort"
    spec["headGroupSpec"]["headService"] = {"metadata": {"name": "my-head"}}
    service = service_for(spec)
    assert service["metadata"]["name"] == "my-head"
    assert service["spec"]["type"] == "NodePort"


def test_custom_cluster_ip_is_kept() -> None:
    spec = cluster_spec()
    spec["headGroupSpec"]["headService"] = {"spec": {"clusterIP": "10.96.0.50"}}
    service = service_for(spec)["spec"]
    assert service["type"] == "ClusterIP"
    assert service["clusterIP"] == "10.96.0.50"
    assert "publishNotReadyAddresses" not in service
