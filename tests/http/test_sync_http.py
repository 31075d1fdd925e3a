"""POST /sync over HTTP (httpx, in-process) with bodies shaped exactly like Metacontroller's."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.fixtures import capture, captures, last_applied
from tests.http.client import HookClient


@pytest.fixture(scope="module")
def client() -> Iterator[HookClient]:
    yield HookClient(create_app(Settings()))


def post(client: HookClient, body: dict[str, Any] | bytes) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/sync", content=content, headers={"Content-Type": "application/json"})


def observed_names(request: dict[str, Any]) -> set[str]:
    return {c["metadata"]["name"] for kind in request["children"].values() for c in kind.values()}


def answered(response: Any) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in response.json()["children"]}


@pytest.mark.parametrize("name", captures())
def test_every_capture_is_answered_200_with_children_and_status(
    client: HookClient, name: str
) -> None:
    request = capture(name)
    response = post(client, request)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"children", "status"}
    assert body["children"], "a RayCluster always has at least its head Service"
    assert "observedGeneration" not in body["status"]


def test_running_cluster_keeps_every_child_exactly_as_last_applied(client: HookClient) -> None:
    request = capture("sync-c-all-running")
    children = answered(post(client, request))
    for kind in ("Pod.v1",):
        for name, child in request["children"][kind].items():
            assert children[name] == last_applied(child)
    assert set(children) == observed_names(request)


def test_running_cluster_status_reports_ready_head_and_endpoints(client: HookClient) -> None:
    status = post(client, capture("sync-c-all-running")).json()["status"]
    assert status["state"] == "ready"
    assert status["readyWorkerReplicas"] == 1
    assert status["head"]["podName"] == "raycluster-kuberay-head-twctf"
    assert status["head"]["serviceIP"] == "10.0.0.125"
    assert status["endpoints"] == {
        "client": "10001",
        "dashboard": "8265",
        "gcs-server": "6379",
        "metrics": "8080",
    }


def test_first_sync_creates_head_worker_and_service(client: HookClient) -> None:
    children = post(client, capture("sync-a-first")).json()["children"]
    kinds = sorted((c["kind"], c["metadata"]["labels"].get("ray.io/node-type")) for c in children)
    assert kinds == [("Pod", "head"), ("Pod", "worker"), ("Service", "head")]


def test_failed_worker_is_replaced(client: HookClient) -> None:
    request = capture("sync-d-worker-failed")
    children = answered(post(client, request))
    assert "raycluster-kuberay-worker-workergroup-hkgvx" not in children
    workers = [
        c for c in children.values() if c["metadata"]["labels"].get("ray.io/group") == "workergroup"
    ]
    assert len(workers) == 1


def test_workers_to_delete_removes_exactly_the_named_pod(client: HookClient) -> None:
    request = capture("sync-e3-scale-down-workers-to-delete")
    victim = request["parent"]["spec"]["workerGroupSpecs"][0]["scaleStrategy"]["workersToDelete"]
    children = answered(post(client, request))
    assert set(children) == observed_names(request) - set(victim)


def test_terminating_worker_is_not_replaced_twice(client: HookClient) -> None:
    request = capture("sync-e2b-worker-terminating")
    children = answered(post(client, request))
    created = set(children) - observed_names(request)
    assert created == set()


def test_v2_keys_are_understood_like_v1_keys(client: HookClient) -> None:
    v1 = capture("sync-c-all-running")
    v2 = copy.deepcopy(v1)
    for kind, objects in v2["children"].items():
        v2["children"][kind] = {f"default/{name}": obj for name, obj in objects.items()}
    assert post(client, v1).content == post(client, v2).content


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not a Metacontroller sync request"),
        (b"", "not a Metacontroller sync request"),
        (b"[]", "not a Metacontroller sync request"),
        (b'{"children": {}}', "parent"),
        (b'{"parent": {}, "children": {"Pod.v1": {"x": {"metadata": 5}}}}', "metadata"),
    ],
)
def test_malformed_body_is_400_with_a_message(
    client: HookClient, body: bytes, fragment: str
) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def invalid_spec_request(change: Any) -> dict[str, Any]:
    request = capture("sync-c-all-running")
    change(request["parent"]["spec"])
    return request


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s["workerGroupSpecs"][0].update(minReplicas=9), "minReplicas"),
        (lambda s: s["workerGroupSpecs"][0].update(replicas="many"), "replicas"),
        (lambda s: s.update(headGroupSpec=None), "headGroupSpec"),
        (lambda s: s["headGroupSpec"].update(rayStartParams={"x": "a\nb"}), "rayStartParams.x"),
        (lambda s: s.update(workerGroupSpecs=[*s["workerGroupSpecs"]] * 2), "groupName"),
        (lambda s: s.update(unknownField=1), "unknownField"),
    ],
)
def test_invalid_spec_deletes_nothing_and_says_why(
    client: HookClient, change: Any, field: str
) -> None:
    request = invalid_spec_request(change)
    response = post(client, request)
    assert response.status_code == 200
    children = answered(response)
    assert set(children) == observed_names(request)
    for objects in request["children"].values():
        for name, child in objects.items():
            assert children[name] == last_applied(child)
    status = response.json()["status"]
    assert status["state"] == "failed"
    assert field in status["reason"]


def test_invalid_spec_keeps_a_child_without_last_applied_as_observed(client: HookClient) -> None:
    request = invalid_spec_request(lambda s: s["workerGroupSpecs"][0].update(minReplicas=9))
    pod = next(iter(request["children"]["Pod.v1"].values()))
    del pod["metadata"]["annotations"]["metacontroller.k8s.io/last-applied-configuration"]
    kept = answered(post(client, request))[pod["metadata"]["name"]]
    assert kept["spec"] == pod["spec"]
    assert kept["metadata"]["labels"] == pod["metadata"]["labels"]
    assert "status" not in kept
    assert {"uid", "resourceVersion", "managedFields", "creationTimestamp"} & set(
        kept["metadata"]
    ) == set()


def test_invalid_cluster_name_deletes_nothing(client: HookClient) -> None:
    request = capture("sync-c-all-running")
    request["parent"]["metadata"]["name"] = "Ray_Cluster"
    response = post(client, request)
    assert set(answered(response)) == observed_names(request)
    assert "metadata.name" in response.json()["status"]["reason"]


def test_old_crd_parent_missing_optional_fields_deletes_nothing(client: HookClient) -> None:
    request = capture("sync-c-all-running")
    parent = request["parent"]
    parent["apiVersion"] = "ray.io/v1alpha1"
    for group in parent["spec"]["workerGroupSpecs"]:
        for optional in ("minReplicas", "maxReplicas", "numOfHosts", "priority", "rayStartParams"):
            group.pop(optional, None)
    parent["spec"]["headGroupSpec"].pop("rayStartParams")
    response = post(client, request)
    assert response.status_code == 200
    assert set(answered(response)) == observed_names(request)
    assert response.json()["status"]["state"] == "ready"


def test_children_of_kinds_metaray_does_not_manage_are_kept(client: HookClient) -> None:
    request = capture("sync-c-all-running")
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hand-made", "namespace": "default", "uid": "u1"},
        "data": {"a": "b"},
    }
    request["children"]["ConfigMap.v1"] = {"hand-made": config}
    children = answered(post(client, request))
    assert children["hand-made"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hand-made", "namespace": "default"},
        "data": {"a": "b"},
    }


def test_an_ingress_no_longer_asked_for_is_deleted(client: HookClient) -> None:
    request = capture("sync-c-all-running")
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "raycluster-kuberay-head-ingress", "namespace": "default"},
        "spec": {"rules": []},
    }
    request["children"]["Ingress.networking.k8s.io/v1"] = {ingress["metadata"]["name"]: ingress}
    children = answered(post(client, request))
    assert "raycluster-kuberay-head-ingress" not in children
    assert set(children) == observed_names(request) - {"raycluster-kuberay-head-ingress"}


def test_an_internal_fault_is_500_so_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.raycluster.sync.sync", broken)
    response = post(HookClient(create_app(Settings())), capture("sync-c-all-running"))
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: RuntimeError"}


def test_same_request_same_bytes(client: HookClient) -> None:
    request = capture("sync-e1-scale-up")
    assert post(client, request).content == post(client, copy.deepcopy(request)).content


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_ok(client: HookClient, path: str) -> None:
    assert client.get(path).json() == {"status": "ok"}


def test_metrics_are_exposed(client: HookClient) -> None:
    post(client, capture("sync-a-first"))
    text = client.get("/metrics").text
    assert 'http_requests_total{handler="/sync",method="POST",status="2xx"}' in text
