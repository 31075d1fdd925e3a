"""The Ray auth token, on the core and through the real HTTP shell.

The token is exactly the random bytes the shell hands to the sync that creates the Secret (so
two clusters, even of the same name, never share one); pods are created only once that Secret
is observed; every later answer echoes it unchanged whatever fresh bytes come in (a stale
replay of the creating sync included); a user's own ``secretName`` is never written; and the
token never reaches a log line, an Event, a metric, the status or an error.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import threading
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.core.desired import Desired
from app.core.observed import Observed
from app.hooks.request import decode
from app.hooks.response import encode
from app.raycluster import sync as core
from app.raycluster.auth import TOKEN_BYTES, MissingEntropy
from app.shell.settings import Settings
from tests.features.common import settle
from tests.loop import POD, SECRET, Loop, cluster_spec, group, raycluster
from tests.observability.harness import KubeServer, app_with, captured_logs, events_settings

T = TypeVar("T")
UID = "0f0f0f0f-1111-2222-3333-444444444444"


def auth_cluster(
    name: str = "demo", namespace: str = "default", uid: str = UID, **options: Any
) -> dict[str, Any]:
    spec = cluster_spec(group())
    spec["authOptions"] = {"mode": "token", **options}
    return raycluster(spec, name=name, namespace=namespace, uid=uid)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def the_token(loop: Loop) -> str:
    """The token in the Secret as it exists (the API server's base64 of ``stringData``)."""
    data = loop.children[(SECRET, loop.parent["metadata"]["name"])]["data"]["auth_token"]
    return base64.b64decode(data).decode()


def answered_secrets(children: list[Any]) -> dict[str, Any]:
    return {c["metadata"]["name"]: c for c in children if c["kind"] == "Secret"}


def answered_pods(children: list[Any]) -> list[str]:
    return [c["metadata"]["name"] for c in children if c["kind"] == "Pod"]


# -- on the core --------------------------------------------------------------------------


def core_answer(parent: dict[str, Any], observed: Observed, entropy: bytes | None) -> Desired:
    return core.sync(parent, observed, entropy=entropy)


def observed_after(parent: dict[str, Any], first: Desired) -> Observed:
    """What Metacontroller sends once the first answer's children exist."""
    loop = Loop(parent)
    for child in first.children:
        assert isinstance(child, dict)
        loop._create((f"{child['kind']}.{child['apiVersion']}", child["metadata"]["name"]), child)
    return decode(orjson.dumps(loop.request())).observed


@pytest.mark.parametrize(
    "entropy",
    [bytes(range(32)), b"\xff" * 32, bytes(range(40))],  # more than 32: only 32 are used
    ids=["counting", "ones", "longer"],
)
def test_core_token_is_exactly_the_first_32_bytes_of_the_creating_syncs_entropy(
    entropy: bytes,
) -> None:
    desired = core_answer(auth_cluster(), Observed(), entropy)
    (secret,) = answered_secrets(desired.children).values()
    assert secret["stringData"] == {"auth_token": b64(entropy[:TOKEN_BYTES])}
    assert answered_pods(desired.children) == []  # two-phase: no pod reads it yet


@pytest.mark.parametrize(
    "other",
    [
        auth_cluster(),  # the same cluster, another sync that creates the Secret
        auth_cluster(uid="9f9f9f9f-1111-2222-3333-444444444444"),  # deleted and re-created
        auth_cluster(namespace="team-b"),  # the same name in another namespace
    ],
    ids=["same", "recreated", "other-namespace"],
)
def test_core_same_name_with_other_entropy_gets_another_token(other: dict[str, Any]) -> None:
    first = core_answer(auth_cluster(), Observed(), b"\x01" * 32)
    second = core_answer(other, Observed(), b"\x02" * 32)
    assert (
        answered_secrets(first.children)["demo"]["stringData"]
        != answered_secrets(second.children)["demo"]["stringData"]
    )


@pytest.mark.parametrize(
    "entropy", [None, b"", b"\x00" * (TOKEN_BYTES - 1)], ids=["none", "empty", "one-short"]
)
def test_core_too_few_random_bytes_to_create_the_secret_is_an_error(
    entropy: bytes | None,
) -> None:
    with pytest.raises(MissingEntropy, match=f"{TOKEN_BYTES} random bytes"):
        core_answer(auth_cluster(), Observed(), entropy)


@pytest.mark.parametrize(
    "entropy", [None, b"\x02" * 32, b"\x03" * 64], ids=["none", "other", "longer"]
)
def test_core_an_observed_secret_is_echoed_whatever_entropy_comes_in(
    entropy: bytes | None,
) -> None:
    parent = auth_cluster()
    first = core_answer(parent, Observed(), b"\x01" * 32)
    later = core_answer(parent, observed_after(parent, first), entropy)
    secret = answered_secrets(orjson.loads(encode(later))["children"])["demo"]
    assert secret["stringData"] == {"auth_token": b64(b"\x01" * 32)}
    assert len(answered_pods(later.children)) == 2  # the head and the worker, now


# -- through the HTTP shell -----------------------------------------------------------------


class Served:
    """The app with its lifespan (so Events are posted), on an event loop in its own thread,
    called synchronously as Loop.call needs."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        self.lifespan = self.app.router.lifespan_context(self.app)
        self._run(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://metaray")
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.client.aclose())
        self._run(self.lifespan.__aexit__(None, None, None))  # drains the Events
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def post(self, path: str, content: bytes) -> httpx.Response:
        return self._run(self.client.post(path, content=content))

    def get(self, path: str) -> httpx.Response:
        return self._run(self.client.get(path))


def drive(loop: Loop, client: Served) -> None:
    def call(body: bytes) -> tuple[int, bytes]:
        response = client.post("/sync", content=body)
        return response.status_code, response.content

    loop.call = call


def handed_entropy(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Records the random bytes the shell hands the RayCluster core on every sync it computes
    (the shell's own source, not a stand-in)."""
    handed: list[bytes] = []
    real = core.sync

    def spy(parent: Any, observed: Any, options: Any, *, entropy: bytes) -> Desired:
        handed.append(entropy)
        return real(parent, observed, options, entropy=entropy)

    monkeypatch.setattr("app.raycluster.sync.sync", spy)
    return handed


def uncached(tmp_path: Path) -> Settings:
    """No answer cache: every sync, a replay included, is computed with fresh entropy."""
    return replace(events_settings(tmp_path, events="off"), cache_bytes=0)


def test_each_cluster_gets_exactly_the_entropy_of_its_creating_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = handed_entropy(monkeypatch)
    clusters = [
        auth_cluster("one"),
        auth_cluster("two", uid="2f0f0f0f-1111-2222-3333-444444444444"),
        auth_cluster("one", namespace="team-b", uid="3f0f0f0f-1111-2222-3333-444444444444"),
        auth_cluster("one", uid="4f0f0f0f-1111-2222-3333-444444444444"),  # re-created
    ]
    tokens = []
    with Served(app_with(events_settings(tmp_path, events="off"))) as client:
        for parent in clusters:
            loop = Loop(parent)
            drive(loop, client)
            step = loop.step()
            assert answered_pods(step.desired.children) == []
            tokens.append(the_token(loop))
            assert the_token(loop) == b64(handed[-1][:TOKEN_BYTES])
    assert len(handed) == len(clusters)
    assert len(set(handed)) == len(handed), "fresh bytes on every sync"
    assert len(set(tokens)) == len(tokens)


def test_secret_first_then_pods_and_the_token_echoed_on_every_later_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = handed_entropy(monkeypatch)
    loop = Loop(auth_cluster())
    with Served(app_with(uncached(tmp_path))) as client:
        drive(loop, client)
        creating = loop.step()
        token = b64(handed[0][:TOKEN_BYTES])
        assert the_token(loop) == token
        assert answered_pods(creating.desired.children) == []
        settle(loop)
        [head] = loop.heads()
        loop.finish(head)  # the head dies and is replaced
        loop.converge()
        loop.run_pods()
        loop.edit(lambda spec: spec["workerGroupSpecs"][0].update(replicas=3))
        settle(loop)
        pods = {name: copy.deepcopy(loop.children[(POD, name)]) for name in loop.pods()}

        # A stale replay of the creating sync (nothing observed), with other fresh bytes.
        replayed = client.post("/sync", content=orjson.dumps(creating.request))
        assert replayed.status_code == 200
        stale = replayed.json()["children"]
        assert answered_pods(stale) == [], "no pod before the Secret is observed"
        # Everything it asks for exists: Metacontroller's create finds it there, and the
        # Secret is OnDelete (tests/deploy/test_manifests.py), so nothing is written.
        assert {(f"{c['kind']}.{c['apiVersion']}", c["metadata"]["name"]) for c in stale} <= set(
            loop.children
        )
        after = loop.step()
        assert (after.created, after.deleted) == ([], [])
        assert {name: loop.children[(POD, name)] for name in loop.pods()} == pods

    later = [*loop.history[1:], after]
    assert len(later) >= 8
    assert len(set(handed)) == len(handed) == len(loop.history) + 1, "fresh bytes every time"
    for step in later:
        secret = answered_secrets(step.desired.children)["demo"]
        assert secret["stringData"] == {"auth_token": token}
    for step in loop.history:
        if answered_pods(step.desired.children):
            assert step.request["children"][SECRET], "pods only once the Secret is observed"
    assert the_token(loop) == token


@pytest.mark.parametrize("secret_name", ["my-token", "demo"])  # "demo": the name metaray uses
def test_a_users_secret_name_is_never_written_and_pods_do_not_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_name: str
) -> None:
    handed_entropy(monkeypatch)
    loop = Loop(auth_cluster(secretName=secret_name))
    with Served(app_with(uncached(tmp_path))) as client:
        drive(loop, client)
        first = loop.step()
        assert len(answered_pods(first.desired.children)) == 2
        settle(loop)
        loop.edit(lambda spec: spec["workerGroupSpecs"][0].update(replicas=2))
        settle(loop)
    for step in loop.history:
        assert answered_secrets(step.desired.children) == {}
    assert not [key for key in loop.children if key[0] == SECRET]
    ref = {"secretKeyRef": {"name": secret_name, "key": "auth_token"}}
    for name in loop.pods():
        env = loop.children[(POD, name)]["spec"]["containers"][0]["env"]
        assert {"name": "RAY_AUTH_TOKEN", "valueFrom": ref} in env


def test_token_survives_hook_restarts_and_never_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = KubeServer()
    settings = events_settings(tmp_path)
    loop = Loop(auth_cluster())
    seen: list[str] = []
    with captured_logs(logging.DEBUG) as captured:
        with Served(app_with(settings, server)) as client:
            drive(loop, client)
            settle(loop)
            token = the_token(loop)
            pods = {name: copy.deepcopy(loop.children[(POD, name)]) for name in loop.pods()}
        # The hook restarts (a new process keeps nothing): same Secret, same pods.
        with Served(app_with(settings, server)) as client:
            drive(loop, client)
            [head] = loop.heads()
            loop.finish(head)
            loop.converge()
            loop.run_pods()
            settle(loop)
            assert the_token(loop) == token
            assert answered_secrets(loop.history[-1].desired.children)["demo"]["stringData"] == {
                "auth_token": token
            }
            kept = {
                name: loop.children[(POD, name)] for name in pods if (POD, name) in loop.children
            }
            assert all(kept[n]["spec"] == pods[n]["spec"] for n in kept)
            # An invalid spec: its reason, Event and log line name the problem, not the token.
            loop.edit(lambda spec: spec.update(rayVersion="2.40.0"))
            step = loop.step()
            assert step.desired.status["state"] == "failed"
            seen.append(client.get("/metrics").text)

            def leaky(*_: Any, **__: Any) -> Desired:
                raise ValueError(f"the core quoted the token {token}")

            monkeypatch.setattr("app.raycluster.sync.sync", leaky)
            response = client.post("/sync", content=json.dumps(loop.request()).encode())
            assert response.status_code == 500
            seen.append(response.text)
    assert server.requests, "Events were posted"
    seen += captured.lines
    seen += [repr(copy.copy(record.__dict__)) for record in captured.records]
    seen += [request.content.decode() for request in server.requests]
    seen += [json.dumps(step.desired.status) for step in loop.history]
    encoded = base64.b64encode(token.encode()).decode()
    assert not [text for text in seen if token in text or encoded in text]
    assert any("***" in line for line in captured.lines), "the quoted token was masked"
    for name in loop.pods(live=False):
        assert token not in json.dumps(loop.children[(POD, name)])
