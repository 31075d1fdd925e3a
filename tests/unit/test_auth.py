"""``app.raycluster.auth`` called directly: which Secret the pods read and which one metaray
creates for each shape of ``authOptions``, and how a pod spec is wired. Fast, so it is also the
token code's mutation-testing selection (docs/testing-mutation.md)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.core.observed import Observed
from app.raycluster import auth
from app.raycluster.cluster import Cluster
from tests.loop import cluster_spec, group
from tests.unit.helpers import make_cluster

MODE = {"name": "RAY_AUTH_MODE", "value": "token"}
K8S = {"name": "RAY_ENABLE_K8S_TOKEN_AUTH", "value": "true"}
MOUNT = {
    "mountPath": "/var/run/secrets/ray.io/serviceaccount",
    "name": "ray-token",
    "readOnly": True,
}
VOLUME = {
    "name": "ray-token",
    "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
}


def token_from(secret: str) -> dict[str, Any]:
    ref = {"secretKeyRef": {"name": secret, "key": "auth_token"}}
    return {"name": "RAY_AUTH_TOKEN", "valueFrom": ref}


def cluster(options: dict[str, Any] | None, name: str = "demo") -> Cluster:
    spec = cluster_spec(group(), rayVersion="2.55.0")
    if options is not None:
        spec["authOptions"] = options
    return make_cluster(spec, name=name)


# (authOptions, what the wired containers get, the Secret metaray creates and waits for)
SHAPES = [
    pytest.param(None, [], None, id="no-authOptions"),
    pytest.param({}, [], None, id="no-mode"),
    pytest.param({"mode": "disabled"}, [], None, id="disabled"),
    pytest.param({"mode": "disabled", "secretName": "s"}, [], None, id="disabled-secretName"),
    pytest.param({"mode": "token"}, [MODE, token_from("demo")], "demo", id="token"),
    pytest.param(
        {"mode": "token", "enableK8sTokenAuth": False},
        [MODE, token_from("demo")],
        "demo",
        id="token-k8s-false",
    ),
    pytest.param(
        {"mode": "token", "secretName": "mine"}, [MODE, token_from("mine")], None, id="secretName"
    ),
    pytest.param(
        {"mode": "token", "secretName": "demo"}, [MODE, token_from("demo")], None, id="own-name"
    ),
    pytest.param({"mode": "token", "enableK8sTokenAuth": True}, [MODE, K8S], None, id="k8s"),
]


@pytest.mark.parametrize(("options", "env", "created"), SHAPES)
def test_each_shape_wires_its_variables_and_creates_at_most_metarays_own_secret(
    options: dict[str, Any] | None, env: list[dict[str, Any]], created: str | None
) -> None:
    subject = cluster(options)
    assert auth.env(subject) == env
    assert auth.owned_secret_name(subject) == created
    assert auth.waiting_for_secret(subject, Observed()) == (created is not None)
    secret = auth.secret_child(subject, Observed(), b"\x07" * 32)
    if created is None:
        assert secret is None
        # Nothing to create: no random bytes are needed, and none missing is an error.
        assert auth.secret_child(subject, Observed(), None) is None
    else:
        assert isinstance(secret, dict) and secret["metadata"]["name"] == created


def test_the_secret_is_named_for_its_cluster() -> None:
    subject = cluster({"mode": "token"}, name="other")
    assert auth.env(subject) == [MODE, token_from("other")]
    secret = auth.secret_child(subject, Observed(), b"\x07" * 32)
    assert isinstance(secret, dict) and secret["metadata"]["name"] == "other"


def container(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "rayproject/ray:2.55.0", **extra}


def pod_spec() -> dict[str, Any]:
    """Ray's container first, then every sidecar KubeRay wires and one it does not, and the
    same for init containers."""
    return {
        "containers": [
            container("ray-head"),
            container("logger"),
            container("autoscaler"),
            container("ray-history-collector"),
            container("ray-job-submitter"),
        ],
        "initContainers": [container("setup"), container("wait-gcs-ready")],
    }


WIRED = ["ray-head", "autoscaler", "ray-history-collector", "ray-job-submitter", "wait-gcs-ready"]


def by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in spec["containers"] + spec["initContainers"]}


@pytest.mark.parametrize("options", [p.values[0] for p in SHAPES])
def test_exactly_the_containers_kuberay_wires_get_the_variables(
    options: dict[str, Any] | None,
) -> None:
    subject = cluster(options)
    spec = pod_spec()
    auth.add_auth(subject, spec)
    k8s = auth.k8s_tokens(subject)
    for name, wired in by_name(spec).items():
        expected = auth.env(subject) if name in WIRED else []
        assert wired.get("env", []) == expected, name
        assert wired.get("volumeMounts", []) == ([MOUNT] if k8s and name in WIRED else []), name
    assert spec.get("volumes", []) == ([VOLUME] if k8s else [])


@pytest.mark.parametrize("options", [None, {"mode": "disabled"}])
def test_without_token_auth_a_pod_spec_is_left_exactly_as_it_was(
    options: dict[str, Any] | None,
) -> None:
    spec = pod_spec()
    before = copy.deepcopy(spec)
    auth.add_auth(cluster(options), spec)
    assert spec == before


def test_the_first_container_is_rays_whatever_its_name() -> None:
    spec = {"containers": [container("main"), container("logger")]}
    auth.add_auth(cluster({"mode": "token"}), spec)
    assert spec["containers"][0]["env"] == [MODE, token_from("demo")]
    assert "env" not in spec["containers"][1]


@pytest.mark.parametrize("spec", [{}, {"containers": []}, {"containers": None}])
def test_a_pod_spec_without_containers_is_no_error(spec: dict[str, Any]) -> None:
    auth.add_auth(cluster({"mode": "token"}), spec)
    assert not spec.get("containers")


def test_what_the_user_set_wins_and_is_never_doubled() -> None:
    user_mount = {"mountPath": "/elsewhere", "name": "ray-token"}
    path_mount = {"mountPath": auth.K8S_TOKEN_PATH, "name": "my-volume"}
    user_volume = {"name": "ray-token", "secret": {"secretName": "mine"}}
    spec = {
        "containers": [
            container("ray-head", env=[{"name": "RAY_AUTH_MODE", "value": "disabled"}]),
            container("autoscaler", volumeMounts=[user_mount]),
            container("ray-job-submitter", volumeMounts=[path_mount]),
        ],
        "volumes": [user_volume],
    }
    subject = cluster({"mode": "token", "enableK8sTokenAuth": True})
    auth.add_auth(subject, spec)
    auth.add_auth(subject, spec)  # twice: nothing is added a second time
    head, autoscaler, submitter = spec["containers"]
    assert head["env"] == [{"name": "RAY_AUTH_MODE", "value": "disabled"}, K8S]
    assert head["volumeMounts"] == [MOUNT]
    assert autoscaler["volumeMounts"] == [user_mount]
    assert submitter["volumeMounts"] == [path_mount]
    assert spec["volumes"] == [user_volume]


def test_our_volume_is_added_next_to_the_users_own() -> None:
    theirs = {"name": "data", "emptyDir": {}}
    spec = {"containers": [container("ray-head")], "volumes": [theirs]}
    auth.add_auth(cluster({"mode": "token", "enableK8sTokenAuth": True}), spec)
    assert spec["volumes"] == [theirs, VOLUME]
