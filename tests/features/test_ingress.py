"""The head Ingress: ``headGroupSpec.enableIngress`` and ``ingressOptions``."""

from __future__ import annotations

from typing import Any

from tests.features.common import Spec, first_sync, only, settle, unchanged
from tests.loop import Loop, cluster_spec, group, raycluster
from tests.unit.helpers import head_container

INGRESS = "Ingress.networking.k8s.io/v1"


def with_ingress(**options: Any) -> Spec:
    spec = cluster_spec(group())
    spec["headGroupSpec"]["enableIngress"] = True
    if options:
        spec["headGroupSpec"]["ingressOptions"] = options
    return spec


def ingress(spec: Spec, annotations: dict[str, str] | None = None, **parent: Any) -> Any:
    return only(first_sync(spec, annotations, **parent), "Ingress")


def the_path(obj: dict[str, Any]) -> dict[str, Any]:
    (rule,) = obj["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert isinstance(path, dict)
    return path


def test_no_ingress_unless_enabled() -> None:
    desired = first_sync(cluster_spec(group()))
    assert [c for c in desired.children if c["kind"] == "Ingress"] == []


def test_name_namespace_and_labels() -> None:
    obj = ingress(with_ingress(), name="web", namespace="team-a")
    assert obj["apiVersion"] == "networking.k8s.io/v1"
    assert obj["metadata"]["name"] == "web-head-ingress"
    assert obj["metadata"]["namespace"] == "team-a"
    assert obj["metadata"]["labels"]["ray.io/cluster"] == "web"
    assert obj["metadata"]["labels"]["ray.io/identifier"] == "web-head"


def test_defaults_route_everything_to_the_dashboard_of_the_head_service() -> None:
    obj = ingress(with_ingress())
    (rule,) = obj["spec"]["rules"]
    assert "host" not in rule
    assert the_path(obj) == {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": "demo-head-svc", "port": {"number": 8265}}},
    }
    assert "tls" not in obj["spec"]
    assert "ingressClassName" not in obj["spec"]


def test_backend_port_is_the_port_named_dashboard() -> None:
    spec = with_ingress()
    ports = head_container(spec)["ports"]
    for port in ports:
        if port["name"] == "dashboard":
            port["containerPort"] = 9265
    backend = the_path(ingress(spec))["backend"]["service"]
    assert backend["port"] == {"number": 9265}


def test_backend_port_defaults_to_8265_without_a_dashboard_port() -> None:
    spec = with_ingress()
    head_container(spec)["ports"] = [
        {"containerPort": 6379, "name": "gcs-server"},
        {"containerPort": 9999, "name": "web"},
    ]
    assert the_path(ingress(spec))["backend"]["service"]["port"] == {"number": 8265}


def test_backend_follows_a_custom_head_service_name() -> None:
    spec = with_ingress()
    spec["headGroupSpec"]["headService"] = {"metadata": {"name": "dash"}}
    desired = first_sync(spec)
    assert only(desired, "Service")["metadata"]["name"] == "dash"
    assert the_path(only(desired, "Ingress"))["backend"]["service"]["name"] == "dash"


def test_ingress_options_set_host_path_path_type_and_tls() -> None:
    tls = [{"hosts": ["ray.example.com"], "secretName": "ray-tls"}]
    obj = ingress(
        with_ingress(
            host="ray.example.com", path="/ray(/|$)(.*)", pathType="ImplementationSpecific", tls=tls
        )
    )
    (rule,) = obj["spec"]["rules"]
    assert rule["host"] == "ray.example.com"
    path = the_path(obj)
    assert path["path"] == "/ray(/|$)(.*)"
    assert path["pathType"] == "ImplementationSpecific"
    assert path["backend"]["service"]["name"] == "demo-head-svc"
    assert obj["spec"]["tls"] == tls


def test_path_alone_keeps_the_prefix_path_type() -> None:
    path = the_path(ingress(with_ingress(path="/dashboard")))
    assert (path["path"], path["pathType"]) == ("/dashboard", "Prefix")


def test_class_comes_from_the_annotation_and_other_annotations_are_copied() -> None:
    annotations = {
        "kubernetes.io/ingress.class": "nginx",
        "nginx.ingress.kubernetes.io/rewrite-target": "/$1",
        "team": "ml",
        "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"RayCluster"}',
    }
    obj = ingress(with_ingress(), annotations)
    assert obj["spec"]["ingressClassName"] == "nginx"
    copied = obj["metadata"]["annotations"]
    assert copied == {"nginx.ingress.kubernetes.io/rewrite-target": "/$1", "team": "ml"}


def test_no_annotations_without_annotations_to_copy() -> None:
    obj = ingress(with_ingress(), {"kubernetes.io/ingress.class": "traefik"})
    assert obj["spec"]["ingressClassName"] == "traefik"
    assert not obj["metadata"].get("annotations")


def test_the_ingress_is_stable_and_turning_it_off_deletes_it() -> None:
    loop = Loop(raycluster(with_ingress()))
    first = loop.step()
    assert "demo-head-ingress" in first.created
    assert (INGRESS, "demo-head-ingress") in loop.children
    settle(loop)
    unchanged(loop.step())
    pods = loop.pods()

    loop.edit(lambda spec: spec["headGroupSpec"].update(enableIngress=False))
    step = loop.step()
    assert step.deleted == ["demo-head-ingress"]
    assert step.created == []
    assert (INGRESS, "demo-head-ingress") not in loop.children
    assert loop.pods() == pods
    assert ("Service.v1", "demo-head-svc") in loop.children
    unchanged(loop.step())

    loop.edit(lambda spec: spec["headGroupSpec"].update(enableIngress=True))
    step = loop.step()
    assert step.created == ["demo-head-ingress"]
    assert step.deleted == []
