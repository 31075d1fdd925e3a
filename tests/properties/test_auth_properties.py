"""Properties of token authentication over the generated worlds of ``test_invariants``.

Each world gets ``authOptions`` in one of its shapes (metaray's token Secret observed or not
yet, the user's own Secret, Kubernetes tokens), and the hook is given arbitrary entropy.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, decode
from app.hooks.response import encode
from app.raycluster.sync import sync
from tests.loop import SECRET
from tests.properties.test_invariants import (
    FAST,
    SLOW,
    World,
    answered_pods,
    key,
    last_applied,
    seeded_loop,
    server_metadata,
    worlds,
)

MODES = ("token", "token-observed", "secret-ref", "k8s")
ENTROPY = st.binary(min_size=32, max_size=32)


@dataclass(frozen=True)
class AuthWorld:
    world: World
    mode: str
    token: str  # the observed Secret's token ("" when none is observed)

    def __repr__(self) -> str:
        return f"AuthWorld(mode={self.mode!r}, token={self.token!r})\n{self.world!r}"


def secret_object(parent: dict[str, Any], token: str) -> dict[str, Any]:
    """metaray's token Secret as Metacontroller sends it back once it exists."""
    meta = parent["metadata"]
    applied = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {
                "app.kubernetes.io/created-by": "kuberay-operator",
                "app.kubernetes.io/name": "kuberay",
                "controller-uid": meta["uid"],
                "ray.io/cluster": meta["name"],
            },
        },
        "type": "Opaque",
        "stringData": {"auth_token": token},
    }
    obj = {k: v for k, v in copy.deepcopy(applied).items() if k != "stringData"}
    obj["data"] = {"auth_token": base64.b64encode(token.encode()).decode()}
    obj["metadata"]["annotations"] = {LAST_APPLIED: last_applied(applied)}
    obj["metadata"] |= server_metadata(parent, 999)
    return obj


@st.composite
def auth_worlds(draw: st.DrawFn) -> AuthWorld:
    base = draw(worlds())
    mode = draw(st.sampled_from(MODES))
    options: dict[str, Any] = {"mode": "token"}
    if mode == "secret-ref":
        options["secretName"] = "users-token"
    elif mode == "k8s":
        options["enableK8sTokenAuth"] = True
    parent = copy.deepcopy(base.parent)
    parent["spec"] |= {"authOptions": options, "rayVersion": "2.55.0"}
    request = copy.deepcopy(base.request)
    request["parent"] = parent
    token = ""
    if mode == "token-observed":
        token = base64.b64encode(draw(ENTROPY)).decode()
        secret = secret_object(parent, token)
        request["children"][SECRET] = {key(base.namespace, base.name, base.hook_version): secret}
    return AuthWorld(World(parent, base.pods, request, base.hook_version), mode, token)


def run(world: World, entropy: bytes) -> Desired:
    request = decode(world.body())
    return sync(request.parent, request.observed, entropy=entropy)


def without_auth(world: World) -> World:
    parent = copy.deepcopy(world.parent)
    del parent["spec"]["authOptions"]
    request = copy.deepcopy(world.request)
    request["parent"] = parent
    request["children"].pop(SECRET, None)
    return World(parent, world.pods, request, world.hook_version)


def secrets_of(desired: Desired) -> list[dict[str, Any]]:
    """The answered Secrets as Metacontroller reads them (an echoed one is raw JSON text)."""
    answer = json.loads(encode(desired))
    return [child for child in answer["children"] if child["kind"] == "Secret"]


@FAST
@given(auth_worlds(), ENTROPY, ENTROPY)
def test_same_input_same_bytes_and_an_observed_secret_never_changes(
    world: AuthWorld, entropy: bytes, other: bytes
) -> None:
    first = encode(run(world.world, entropy))
    assert encode(run(world.world, entropy)) == first
    if world.mode != "token":  # nothing to create: the entropy is not used at all
        assert encode(run(world.world, other)) == first
    if world.mode == "token-observed":
        (secret,) = secrets_of(run(world.world, other))
        assert secret["stringData"] == {"auth_token": world.token}


@FAST
@given(auth_worlds(), ENTROPY)
def test_auth_changes_which_pods_are_kept_never_and_creates_none_before_the_secret(
    world: AuthWorld, entropy: bytes
) -> None:
    desired = run(world.world, entropy)
    plain = sync(*_decoded(without_auth(world.world)))
    kept = {n for n in answered_pods(desired) if n in {f.name for f in world.world.pods}}
    plain_kept = {n for n in answered_pods(plain) if n in {f.name for f in world.world.pods}}
    assert kept == plain_kept
    created = set(answered_pods(desired)) - kept
    if world.mode == "token":
        assert created == set()
        (secret,) = secrets_of(desired)
        assert secret["stringData"] == {"auth_token": base64.b64encode(entropy).decode()}
    else:
        assert created == set(answered_pods(plain)) - plain_kept
        assert len(secrets_of(desired)) == (world.mode == "token-observed")


def _decoded(world: World) -> tuple[dict[str, Any], Any]:
    request = decode(world.body())
    return request.parent, request.observed


@SLOW
@given(auth_worlds())
def test_converges_with_one_token_that_no_pod_spells_out(world: AuthWorld) -> None:
    loop = seeded_loop(world.world)
    loop.step()
    first = loop.children.get((SECRET, world.world.name))
    loop.converge()
    loop.run_pods()
    loop.converge()
    secret = loop.children.get((SECRET, world.world.name))
    if world.mode in ("secret-ref", "k8s"):
        assert first is None and secret is None
        return
    assert first is not None and secret is not None
    # Made once (or observed from the start) and never made again.
    assert secret["metadata"]["uid"] == first["metadata"]["uid"]
    token = base64.b64decode(secret["data"]["auth_token"]).decode()
    if world.mode == "token-observed":
        assert secret["metadata"]["uid"] == "child-uid-999"
        assert token == world.token
    pods = [c for (kind, _), c in loop.children.items() if kind == "Pod.v1"]
    assert pods, "the pods were created once the Secret was there"
    assert token not in orjson.dumps(pods).decode()
