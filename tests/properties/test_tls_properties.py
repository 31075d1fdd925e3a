"""Properties of ``tlsOptions`` over the generated worlds of ``test_invariants``."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, decode
from app.raycluster.sync import sync
from tests.loop import CERTIFICATE, ISSUER
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

CERTIFICATES = ("ray-ca-certificate-{}", "ray-head-cert-{}", "ray-worker-cert-{}")


def issued(world: World, name: str, ready: bool) -> dict[str, Any]:
    """A Certificate as Metacontroller sends it, Ready or not (its spec does not matter here)."""
    obj: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": world.namespace},
        "spec": {"secretName": name, "issuerRef": {"name": "x"}},
    }
    obj["metadata"]["annotations"] = {LAST_APPLIED: last_applied(obj)}
    obj["metadata"] |= server_metadata(world.parent, 500)
    if ready:
        obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return obj


@st.composite
def tls_worlds(draw: st.DrawFn) -> tuple[World, bool]:
    """A world with TLS on and the cert-manager types registered; all three Certificates
    Ready, or some missing or not Ready."""
    base = draw(worlds())
    parent = copy.deepcopy(base.parent)
    parent["spec"]["tlsOptions"] = {"enabled": True}
    request = copy.deepcopy(base.request)
    request["parent"] = parent
    request["children"][ISSUER] = {}
    request["children"][CERTIFICATE] = {}
    world = World(parent, base.pods, request, base.hook_version)
    states = draw(st.lists(st.sampled_from(["ready", "pending", "absent"]), min_size=3, max_size=3))
    for pattern, state in zip(CERTIFICATES, states, strict=True):
        name = pattern.format(base.name)
        if state != "absent":
            obj = issued(world, name, state == "ready")
            request["children"][CERTIFICATE][key(base.namespace, name, base.hook_version)] = obj
    return world, all(state == "ready" for state in states)


def run(world: World) -> Desired:
    request = decode(world.body())
    return sync(request.parent, request.observed)


def without_tls(world: World) -> World:
    parent = copy.deepcopy(world.parent)
    del parent["spec"]["tlsOptions"]
    request = copy.deepcopy(world.request)
    request["parent"] = parent
    return World(parent, world.pods, request, world.hook_version)


@FAST
@given(tls_worlds())
def test_tls_keeps_the_same_pods_and_creates_none_before_the_certificates(
    case: tuple[World, bool],
) -> None:
    world, ready = case
    desired, plain = run(world), run(without_tls(world))
    observed = {f.name for f in world.pods}
    kept = {n for n in answered_pods(desired) if n in observed}
    assert kept == {n for n in answered_pods(plain) if n in observed}
    created = set(answered_pods(desired)) - observed
    assert created == (set(answered_pods(plain)) - observed if ready else set())
    kinds = sorted(c["kind"] for c in desired.children if c["apiVersion"] == "cert-manager.io/v1")
    assert kinds == ["Certificate"] * 3 + ["Issuer"] * 2


@SLOW
@given(tls_worlds())
def test_converges_and_turning_tls_off_removes_only_the_pki(case: tuple[World, bool]) -> None:
    world, _ = case
    loop = seeded_loop(world)
    loop.step()
    loop.issue_certificates()
    loop.converge()
    loop.run_pods()
    loop.converge()
    assert loop.heads(), "the head was created once the Certificates were issued"
    before = set(loop.children)
    loop.edit(lambda spec: spec.pop("tlsOptions"))
    loop.step()
    gone = before - set(loop.children)
    assert {kind for kind, _ in gone} == {ISSUER, CERTIFICATE}
