"""Ray token authentication: ``authOptions`` (mode, secretName, enableK8sTokenAuth)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import orjson
import pytest

from app.core.desired import Desired
from app.core.observed import Observed
from app.hooks.request import decode
from app.raycluster.sync import sync
from tests.features.common import (
    Spec,
    children_of,
    container_named,
    env_of,
    head_of,
    only,
    pods_of,
    settle,
)
from tests.loop import POD, SECRET, Loop, cluster_spec, group, raycluster
from tests.unit.helpers import head_container

ENTROPY = bytes(range(32))
TOKEN = base64.b64encode(ENTROPY).decode()
SECRET_REF = {"secretKeyRef": {"name": "demo", "key": "auth_token"}}


def with_auth(version: str = "2.52.0", groups: int = 1, **options: Any) -> Spec:
    spec = cluster_spec(*[group(f"g{i}") for i in range(groups)], rayVersion=version)
    spec["authOptions"] = {"mode": "token", **options}
    return spec


def answer(spec: Spec, observed: Observed | None = None, entropy: bytes = ENTROPY) -> Desired:
    return sync(raycluster(spec), observed or Observed(), entropy=entropy)


def observed_with(*children: dict[str, Any]) -> Observed:
    """What Metacontroller sends once ``children`` exist (through the wire decoder)."""
    loop = Loop(raycluster(cluster_spec()))
    for child in children:
        loop._create((f"{child['kind']}.{child['apiVersion']}", child["metadata"]["name"]), child)
    return decode(orjson.dumps(loop.request())).observed


def auth_env(container: dict[str, Any]) -> dict[str, Any]:
    env = env_of(container)
    return {k: v for k, v in env.items() if k.startswith(("RAY_AUTH", "RAY_ENABLE_K8S"))}


# -- the Secret, two-phase ------------------------------------------------------------------


def test_first_answer_is_the_secret_and_no_pod() -> None:
    desired = answer(with_auth())
    assert pods_of(desired, "head") == pods_of(desired, "worker") == []
    secret = only(desired, "Secret")
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "demo",
            "namespace": "default",
            # KubeRay's one label (no app.kubernetes.io/*), and Metacontroller's controller-uid.
            "labels": {
                "controller-uid": "0f0f0f0f-1111-2222-3333-444444444444",
                "ray.io/cluster": "demo",
            },
        },
        "type": "Opaque",
        "stringData": {"auth_token": TOKEN},
    }
    assert [e.reason for e in desired.events] == ["CreatedService", "CreatedSecret"]


def test_a_rayservice_clusters_secret_carries_its_origin() -> None:
    """The RayService's customize hook selects its clusters' token Secrets by these labels."""
    parent = raycluster(with_auth())
    origin = {"ray.io/originated-from-cr-name": "svc", "ray.io/originated-from-crd": "RayService"}
    parent["metadata"]["labels"] = {**origin, "team": "a"}
    labels = only(sync(parent, Observed(), entropy=ENTROPY), "Secret")["metadata"]["labels"]
    assert labels.items() >= origin.items()
    assert "team" not in labels


def test_pods_are_created_once_the_secret_is_observed_and_it_is_echoed() -> None:
    first = answer(with_auth())
    observed = observed_with(only(first, "Secret"))
    second = answer(with_auth(), observed, entropy=b"\xff" * 32)
    assert len(pods_of(second, "head")) == 1 and len(pods_of(second, "worker")) == 1
    echoed = only(second, "Secret")
    assert dict(echoed) == only(first, "Secret") | {
        "metadata": {**only(first, "Secret")["metadata"], "namespace": "default"}
    }
    assert echoed["stringData"] == {"auth_token": TOKEN}  # not the new entropy


def test_a_secret_that_vanished_holds_back_new_pods_but_keeps_running_ones() -> None:
    loop = Loop(raycluster(with_auth()))
    settle(loop)
    del loop.children[(SECRET, "demo")]  # someone deleted it
    loop.edit(lambda spec: spec["workerGroupSpecs"][0].update(replicas=3))
    step = loop.step()
    assert step.deleted == []
    assert step.created == ["demo"]  # only the new Secret: no pod until it is observed
    step = loop.step()
    assert len(step.created) == 2 and all(
        name.startswith("demo-g0-worker-") for name in step.created
    )


def test_no_entropy_is_a_loud_error_not_a_predictable_token() -> None:
    with pytest.raises(ValueError, match="random bytes"):
        sync(raycluster(with_auth()), Observed())


# -- pod wiring -------------------------------------------------------------------------------


def settled_pods(spec: Spec) -> Desired:
    first = answer(spec)
    secrets = children_of(first, "Secret")
    return answer(spec, observed_with(*secrets) if secrets else None)


def test_every_container_kuberay_wires_gets_mode_and_token_by_reference() -> None:
    spec = with_auth()
    spec["enableInTreeAutoscaling"] = True
    desired = settled_pods(spec)
    head, (worker,) = head_of(desired), pods_of(desired, "worker")
    wired = [
        head["spec"]["containers"][0],
        container_named(head, "autoscaler"),
        worker["spec"]["containers"][0],
        next(c for c in worker["spec"]["initContainers"] if c["name"] == "wait-gcs-ready"),
    ]
    for container in wired:
        assert auth_env(container) == {
            "RAY_AUTH_MODE": {"name": "RAY_AUTH_MODE", "value": "token"},
            "RAY_AUTH_TOKEN": {"name": "RAY_AUTH_TOKEN", "valueFrom": SECRET_REF},
        }, container["name"]
    assert TOKEN not in json.dumps(children_of(desired, "Pod"))


def test_a_user_variable_of_the_same_name_wins() -> None:
    spec = with_auth()
    head_container(spec)["env"] = [{"name": "RAY_AUTH_MODE", "value": "disabled"}]
    ray = head_of(settled_pods(spec))["spec"]["containers"][0]
    assert auth_env(ray)["RAY_AUTH_MODE"] == {"name": "RAY_AUTH_MODE", "value": "disabled"}
    assert auth_env(ray)["RAY_AUTH_TOKEN"]["valueFrom"] == SECRET_REF


def test_secret_name_uses_the_users_secret_and_creates_none() -> None:
    desired = answer(with_auth(secretName="my-token"))
    assert children_of(desired, "Secret") == []
    (worker,) = pods_of(desired, "worker")  # no waiting: the user's Secret is theirs to create
    ref = auth_env(worker["spec"]["containers"][0])["RAY_AUTH_TOKEN"]["valueFrom"]
    assert ref == {"secretKeyRef": {"name": "my-token", "key": "auth_token"}}


def test_k8s_token_auth_projects_a_service_account_token() -> None:
    desired = answer(with_auth("2.55.0", enableK8sTokenAuth=True))
    assert children_of(desired, "Secret") == []
    head = head_of(desired)
    ray = head["spec"]["containers"][0]
    assert auth_env(ray) == {
        "RAY_AUTH_MODE": {"name": "RAY_AUTH_MODE", "value": "token"},
        "RAY_ENABLE_K8S_TOKEN_AUTH": {"name": "RAY_ENABLE_K8S_TOKEN_AUTH", "value": "true"},
    }
    assert {
        "mountPath": "/var/run/secrets/ray.io/serviceaccount",
        "name": "ray-token",
        "readOnly": True,
    } in ray["volumeMounts"]
    assert {
        "name": "ray-token",
        "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
    } in head["spec"]["volumes"]


def test_mode_disabled_wires_nothing() -> None:
    spec = with_auth()
    spec["authOptions"]["mode"] = "disabled"
    desired = answer(spec)
    assert children_of(desired, "Secret") == []
    assert auth_env(head_of(desired)["spec"]["containers"][0]) == {}


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "options", "message"),
    [
        (
            None,
            {},
            "authOptions.mode is 'token' but RayVersion was not specified. "
            "Ray version 2.52.0 or later is required",
        ),
        ("nightly", {}, "authOptions.mode is 'token' but RayVersion format is invalid: nightly"),
        ("2.51.1", {}, "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got 2.51.1"),
        (
            "2.54.0",
            {"enableK8sTokenAuth": True},
            "authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0, "
            "got 2.54.0",
        ),
        (
            "2.55.0",
            {"enableK8sTokenAuth": True, "secretName": "s"},
            "authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set",
        ),
        (
            "2.55.0",
            {"enableK8sTokenAuth": True, "mode": "disabled"},
            "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'",
        ),
    ],
)
def test_invalid_auth_is_a_failed_state_and_changes_nothing(
    version: str | None, options: dict[str, Any], message: str
) -> None:
    loop = Loop(raycluster(cluster_spec(group())))
    settle(loop)
    before = copy.deepcopy(loop.children)

    def broken(spec: Spec) -> None:
        spec["authOptions"] = {"mode": "token", **options}
        if version is None:
            del spec["rayVersion"]
        else:
            spec["rayVersion"] = version

    loop.edit(broken)
    step = loop.step()
    assert (step.created, step.deleted) == ([], [])
    assert loop.children.keys() == before.keys()
    assert step.desired.status["state"] == "failed"
    assert message in step.desired.status["reason"]


# -- stories ----------------------------------------------------------------------------------


def secret_text(loop: Loop) -> str:
    return json.dumps(loop.children[(SECRET, "demo")]["data"])


def test_token_never_changes_across_resyncs_head_restarts_and_replays() -> None:
    loop = Loop(raycluster(with_auth()))
    first = loop.step()
    assert first.created == ["demo", "demo-head-svc"]  # the Secret, no pod yet
    stale_request = first.request
    settle(loop)
    data = secret_text(loop)
    [head] = loop.heads()
    loop.finish(head)  # the head dies and is replaced
    loop.converge()
    loop.run_pods()
    for _ in range(5):
        loop.step()
    assert secret_text(loop) == data
    # A replay of the very first request (no Secret observed) asks for a fresh token; the
    # Secret is OnDelete, so the existing one is never updated.
    desired, _ = loop.answer(orjson.dumps(stale_request))
    assert desired is not None and only(desired, "Secret")["stringData"] != {"auth_token": TOKEN}
    loop.step()
    assert secret_text(loop) == data
    token = base64.b64decode(json.loads(data)["auth_token"]).decode()
    for name in loop.pods():
        pod_text = json.dumps(loop.children[(POD, name)])
        assert token not in pod_text


def test_turning_auth_off_removes_exactly_the_secret() -> None:
    loop = Loop(raycluster(with_auth()))
    settle(loop)
    before = set(loop.children)
    loop.edit(lambda spec: spec.pop("authOptions"))
    step = loop.step()
    assert step.deleted == ["demo"]
    assert set(loop.children) == before - {(SECRET, "demo")}
