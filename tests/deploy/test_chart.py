"""charts/metaray with a real helm: lint, every toggle rendered and validated, the values
schema, Metacontroller's RBAC, NOTES' first cluster, and Metacontroller's own values file."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.raycluster.autoscaler import RULES as AUTOSCALER_RULES
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.deploy.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    Obj,
    only,
    render,
    run_helm,
)
from tests.deploy.test_manifests import KUBERNETES_VERSION

# Parents whose CRD and routes land on other branches (their toggles are off by default).
PENDING_PARENTS: set[str] = set()
NOT_BUILTIN = {"CompositeController", "ServiceMonitor", "PodMonitor"}

TOGGLES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "rayjob off": {"rayjob.enabled": False},
    "raycronjob on": {"raycronjob.enabled": True},
    "rayservice and gatewayAPI on": {"rayservice.enabled": True, "gatewayAPI.enabled": True},
    "mtls on": {"mtls.enabled": True},
    "events off": {"events": "off"},
    "dashboard off": {"dashboard": False},
    "monitors and grafana on": {
        "serviceMonitor.enabled": True,
        "podMonitor.enabled": True,
        "grafanaDashboard.enabled": True,
    },
    "networkPolicy, pdb and metacontroller rbac off": {
        "networkPolicy.enabled": False,
        "podDisruptionBudget.enabled": False,
        "metacontroller.rbac.create": False,
    },
    "everything on": {
        "raycronjob.enabled": True,
        "rayservice.enabled": True,
        "gatewayAPI.enabled": True,
        "mtls.enabled": True,
        "serviceMonitor.enabled": True,
        "podMonitor.enabled": True,
        "grafanaDashboard.enabled": True,
    },
    "everything off": {
        "rayjob.enabled": False,
        "events": "off",
        "dashboard": False,
        "networkPolicy.enabled": False,
        "podDisruptionBudget.enabled": False,
        "metacontroller.rbac.create": False,
    },
}


def test_helm_lint_passes() -> None:
    result = run_helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def crds() -> dict[str, Obj]:
    return {
        crd["spec"]["names"]["plural"]: crd
        for path in (CHART / "crds").glob("*.yaml")
        for crd in [yaml.safe_load(path.read_text())]
    }


@pytest.fixture(scope="module")
def routes() -> set[tuple[str, str]]:
    return {
        (method, getattr(route, "path", ""))
        for route in create_app(Settings()).routes
        for method in getattr(route, "methods", None) or ()
    }


def controllers(objects: list[Obj]) -> dict[str, Obj]:
    """The rendered CompositeControllers by parent resource."""
    found = [obj for obj in objects if obj["kind"] == "CompositeController"]
    return {obj["spec"]["parentResource"]["resource"]: obj for obj in found}


def children(controller: Obj) -> dict[str, str]:
    return {c["resource"]: c["apiVersion"] for c in controller["spec"]["childResources"]}


@pytest.mark.parametrize("values", TOGGLES.values(), ids=TOGGLES.keys())
def test_every_builtin_object_validates_against_the_kubernetes_schemas(
    values: dict[str, Any],
) -> None:
    objects = render(values)
    errors = []
    for obj in objects:
        if obj["kind"] in NOT_BUILTIN:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
    assert not errors, "\n".join(errors)
    for obj in objects:
        namespaced = obj["kind"] not in ("CompositeController", "ClusterRole", "ClusterRoleBinding")
        assert ("namespace" in obj["metadata"]) == namespaced, obj["metadata"]


@pytest.mark.parametrize("values", TOGGLES.values(), ids=TOGGLES.keys())
def test_each_controller_registers_a_served_crd_and_calls_routes_the_app_serves(
    values: dict[str, Any], crds: dict[str, Obj], routes: set[tuple[str, str]]
) -> None:
    rendered = controllers(render(values))
    service = only(render(values), "Service")
    for resource, controller in rendered.items():
        assert controller["apiVersion"] == "metacontroller.k8s.io/v1alpha1"
        assert controller["metadata"]["name"].startswith(RELEASE)
        for hook in controller["spec"]["hooks"].values():
            target = hook["webhook"]["service"]
            assert (target["name"], target["namespace"]) == (RELEASE, NAMESPACE)
            assert target["port"] == service["spec"]["ports"][0]["port"]
            if resource not in PENDING_PARENTS:
                assert ("POST", hook["webhook"]["path"]) in routes
        if resource in PENDING_PARENTS:
            assert resource not in crds, f"{resource} has landed: drop it from PENDING_PARENTS"
            continue
        version = {v["name"]: v for v in crds[resource]["spec"]["versions"]}["v1"]
        assert version["served"] and version["storage"] and "status" in version["subresources"]


def test_the_toggles_do_what_they_say() -> None:
    def env(objects: list[Obj]) -> dict[str, str]:
        [container] = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
        return {item["name"]: item.get("value", "") for item in container["env"]}

    def role_names(objects: list[Obj]) -> set[str]:
        return {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"}

    default = render()
    assert set(controllers(default)) == {"rayclusters", "rayjobs", "raycronjobs", "rayservices"}
    no_service = render({"rayservice.enabled": False})
    assert "rayservices" not in controllers(no_service)
    assert "metaray-head-labeler" not in role_names(no_service)
    assert {"metaray-events", "metaray-rayjob-deleter", "metaray-head-labeler"} <= role_names(
        default
    )
    assert (env(default)["METARAY_EVENTS"], env(default)["METARAY_DASHBOARD"]) == ("auto", "on")

    no_jobs = render({"rayjob.enabled": False})
    assert set(controllers(no_jobs)) == {"rayclusters", "rayservices"}  # no RayJobs, no crons
    assert "metaray-rayjob-deleter" not in role_names(no_jobs)

    no_events = render({"events": "off"})
    assert env(no_events)["METARAY_EVENTS"] == "off"
    assert "metaray-events" not in role_names(no_events)
    assert env(render({"dashboard": False}))["METARAY_DASHBOARD"] == "off"

    cron = controllers(render({"raycronjob.enabled": True}))["raycronjobs"]
    assert cron["spec"]["childResources"] == [
        {"apiVersion": "ray.io/v1", "resource": "rayjobs", "updateStrategy": {"method": "OnDelete"}}
    ]
    assert cron["spec"]["hooks"]["sync"]["webhook"]["path"] == "/raycronjob/sync"

    mtls = children(controllers(render({"mtls.enabled": True}))["rayclusters"])
    assert mtls["issuers"] == mtls["certificates"] == "cert-manager.io/v1"

    service = controllers(render({"rayservice.enabled": True, "gatewayAPI.enabled": True}))
    gateway = children(service["rayservices"])
    assert gateway["gateways"] == gateway["httproutes"] == "gateway.networking.k8s.io/v1"
    without = children(controllers(render({"rayservice.enabled": True}))["rayservices"])
    assert "gateways" not in without and "httproutes" not in without

    kinds = {o["kind"] for o in render(TOGGLES["monitors and grafana on"])}
    assert {"ServiceMonitor", "PodMonitor", "ConfigMap"} <= kinds
    bare = {o["kind"] for o in render(TOGGLES["networkPolicy, pdb and metacontroller rbac off"])}
    assert not {"NetworkPolicy", "PodDisruptionBudget"} & bare
    assert "metaray-metacontroller" not in role_names(render({"metacontroller.rbac.create": False}))


# ---------------------------------------------------------------------------------------------
# Metacontroller's ClusterRole: exactly the controllers rendered, never a wildcard

CRUD = {"get", "list", "watch", "create", "update", "patch", "delete"}


def allowed(rules: list[Obj], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in rules
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@pytest.mark.parametrize("values", TOGGLES.values(), ids=TOGGLES.keys())
def test_metacontroller_may_manage_exactly_the_registered_types(values: dict[str, Any]) -> None:
    objects = render(values)
    names = {obj["metadata"]["name"] for obj in objects}
    if values.get("metacontroller.rbac.create") is False:
        assert "metaray-metacontroller" not in names
        return
    role = only(objects, "ClusterRole", "metaray-metacontroller")
    rules = role["rules"]
    assert not [r for r in rules if "*" in r["apiGroups"] + r["resources"] + r["verbs"]]
    expected: set[tuple[str, str]] = set()
    for resource, controller in controllers(objects).items():
        group = group_of(controller["spec"]["parentResource"]["apiVersion"])
        assert {"get", "list", "watch", "update", "patch"} <= allowed(rules, group, resource)
        for sub in ("status", "finalizers"):
            assert "update" in allowed(rules, group, f"{resource}/{sub}")
        expected |= {
            (group, resource),
            (group, f"{resource}/status"),
            (group, f"{resource}/finalizers"),
        }
        for child in controller["spec"]["childResources"]:
            key = (group_of(child["apiVersion"]), child["resource"])
            assert allowed(rules, *key) == CRUD, key
            expected.add(key)
    related = {
        ("", "pods"),
        ("", "pods/resize"),  # held so that the autoscaler Role it creates may grant it
        ("ray.io", "rayclusters"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
    }
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted - expected <= related, "a grant no rendered controller needs"
    binding = only(objects, "ClusterRoleBinding", "metaray-metacontroller")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "metacontroller", "namespace": "metacontroller"}
    ]


def test_metacontroller_holds_what_the_autoscaler_roles_it_creates_grant() -> None:
    """Kubernetes refuses to let anyone create a Role granting more than they hold."""
    rules = only(render(), "ClusterRole", "metaray-metacontroller")["rules"]
    for rule in AUTOSCALER_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) <= allowed(rules, group, resource), (group, resource)


def test_the_rayservice_customize_hook_may_read_what_it_asks_for() -> None:
    from app.rayservice.sync import customize

    parent = {
        "metadata": {"name": "svc", "namespace": "ns"},
        "spec": {"rayClusterConfig": {"authOptions": {"mode": "token", "secretName": "mine"}}},
    }
    for values in ({}, {"rayjob.enabled": False}):
        rules = only(render(values), "ClusterRole", "metaray-metacontroller")["rules"]
        asked = customize(parent)["relatedResources"]
        assert {r["resource"] for r in asked} >= {"pods", "services", "secrets", "endpointslices"}
        for related in asked:
            group = group_of(related["apiVersion"])
            assert {"get", "list", "watch"} <= allowed(rules, group, related["resource"])


def test_the_rayjob_customize_hook_may_read_what_it_asks_for() -> None:
    from app.rayjob.customize import customize

    parent = {
        "metadata": {"name": "job", "namespace": "ns"},
        "spec": {"clusterSelector": {"ray.io/cluster": "mine"}},
    }
    rules = only(render(), "ClusterRole", "metaray-metacontroller")["rules"]
    for related in customize(parent)["relatedResources"]:
        group = group_of(related["apiVersion"])
        assert {"get", "list", "watch"} <= allowed(rules, group, related["resource"])
