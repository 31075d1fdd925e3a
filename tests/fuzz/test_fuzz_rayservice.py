"""Hypothesis fuzz of the RayService hooks: decode, sync or customize, encode, at a fixed clock
(``rayjob_strategies.NOW``), with the Serve poller's views as the shell passes them; and the
same requests over HTTP through the app.

Every input goes through ``rayservice_oracle``: a 400, or an answer that keeps what it must
(rules a-i), the same bytes twice, a fixpoint (j), and views that cost no child (k); an
exception is a 5xx in production and fails here. ``corpus/rayservice/*.json`` replays hand-made
and found cases over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from app.rayservice.serve import Application, ServeView
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.fuzz import count
from tests.fuzz.rayservice_hostile import (
    corrupted_rayservices,
    customize_bodies,
    invalid_rayservices,
)
from tests.fuzz.rayservice_run import (
    check_core,
    check_http,
    check_views_cost_nothing,
    converge,
    run_core,
)
from tests.fuzz.rayservice_strategies import NOW, PHASES, rayservice_worlds
from tests.fuzz.strategies import dumps, malformed_bodies

FUZZ = settings(
    deadline=None,
    derandomize=False,
    print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
)
HOOKS = ("sync", "customize")
SETTINGS = Settings()
GATEWAY_API = bool(getattr(SETTINGS, "gateway_api", False))
APP = create_app(SETTINGS, clock=lambda: NOW)
World = tuple[dict[str, Any], dict[str, ServeView]]


def post(path: str, body: bytes) -> httpx.Response:
    """Over HTTP; an exception in the app comes back as the 500 a server would send."""

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
            return await client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )

    return asyncio.run(call())


def fuzz(test: str, body: bytes, hook: str, views: Any = None, invalid: str | None = None) -> str:
    count(test)
    outcome = check_core(body, hook, NOW, views, invalid)
    event(outcome)
    return outcome


@settings(FUZZ, max_examples=250)
@given(rayservice_worlds(damage=False))
def test_valid_rayservices_in_every_phase(world: World) -> None:
    request, views = world
    fuzz("rayservice worlds /rayservice/sync", dumps(request), "sync", views)


@settings(FUZZ, max_examples=300)
@given(rayservice_worlds())
def test_hostile_rayservices_children_statuses_and_views(world: World) -> None:
    request, views = world
    fuzz("rayservice hostile worlds /rayservice/sync", dumps(request), "sync", views)


@settings(FUZZ, max_examples=250)
@given(corrupted_rayservices())
def test_a_valid_rayservice_with_one_corrupted_field(world: World) -> None:
    request, views = world
    fuzz("rayservice corrupted /rayservice/sync", dumps(request), "sync", views)


@settings(FUZZ, max_examples=100)
@given(invalid_rayservices())
def test_an_invalid_rayservice_keeps_every_child_and_says_why(
    case: tuple[dict[str, Any], dict[str, ServeView], str],
) -> None:
    request, views, text = case
    outcome = fuzz("rayservice invalid /rayservice/sync", dumps(request), "sync", views, text)
    assert outcome == "invalid", outcome


@settings(FUZZ, max_examples=60)
@given(rayservice_worlds(), st.sampled_from(["someone-else", "", 5, ["x"]]))
def test_managed_by_another_controller_changes_nothing(world: World, manager: Any) -> None:
    request, views = world
    parent = request.get("parent")  # a hostile world may have lost it
    if isinstance(parent, dict) and isinstance(parent.get("spec"), dict):
        parent["spec"]["managedBy"] = manager
    outcome = fuzz("rayservice managed elsewhere", dumps(request), "sync", views)
    if isinstance(parent, dict) and isinstance(parent.get("spec"), dict):
        assert outcome in ("managed elsewhere", "bad request"), outcome


@settings(FUZZ, max_examples=150)
@given(customize_bodies())
def test_customize_asks_only_for_what_it_names(request: Any) -> None:
    fuzz("rayservice /rayservice/customize", dumps(request), "customize")


@settings(FUZZ, max_examples=300)
@given(malformed_bodies(), st.sampled_from(HOOKS))
def test_broken_bytes_on_the_rayservice_hooks(body: bytes, hook: str) -> None:
    fuzz("rayservice broken bytes", body, hook)


@settings(FUZZ, max_examples=100)
@given(rayservice_worlds(damage=False))
def test_feeding_the_status_back_reaches_a_fixpoint(world: World) -> None:
    request, views = world
    count("rayservice fixpoint")
    event(f"{converge(dumps(request), NOW, views)} syncs to a fixpoint")


@settings(FUZZ, max_examples=150)
@given(st.booleans().flatmap(lambda damage: rayservice_worlds(damage=damage)))
def test_the_serve_views_word_never_costs_a_child(world: World) -> None:
    request, views = world
    count("rayservice views")
    event(check_views_cost_nothing(dumps(request), NOW, views))


@settings(FUZZ, max_examples=120)
@given(
    st.one_of(
        rayservice_worlds().map(lambda w: ("sync", dumps(w[0]))),
        corrupted_rayservices().map(lambda w: ("sync", dumps(w[0]))),
        customize_bodies().map(lambda b: ("customize", dumps(b))),
        st.tuples(st.sampled_from(HOOKS), malformed_bodies()),
    )
)
def test_the_rayservice_hooks_over_http(case: tuple[str, bytes]) -> None:
    hook, body = case
    count("rayservice http")
    response = post(f"/rayservice/{hook}", body)
    event(check_http(body, response.status_code, response.content, hook, NOW, GATEWAY_API))


def test_the_generators_reach_every_phase() -> None:
    """Valid worlds of each phase are accepted, and the answers cover the RayService's life."""
    outcomes: Counter[str] = Counter()

    for phase in PHASES:

        @settings(max_examples=15, derandomize=True, database=None, deadline=None)
        @given(rayservice_worlds(damage=False, phase=phase))
        def sample(world: World) -> None:
            request, views = world
            outcomes[check_core(dumps(request), "sync", NOW, views)] += 1

        sample()
    count("rayservice generator coverage", sum(outcomes.values()))
    assert outcomes["invalid"] + outcomes["bad request"] == 0, outcomes
    wanted = ("first deploy", "pending", "created", "serving", "upgrading", "cut over")
    wanted += ("awaiting delay", "staging suspend", "suspending", "suspended", "timed out")
    for phase in wanted:
        assert outcomes[phase] >= 2, (phase, outcomes)


# -- the corpus, over HTTP at a fixed clock ------------------------------------------------------
CORPUS = Path(__file__).parent / "corpus" / "rayservice"
CASES = sorted(CORPUS.glob("*.json"))
FIELDS = {"why", "hook", "status", "kept", "gone", "body", "raw", "base64", "active", "pending"}
FIELDS |= {"message", "views"}


def body_of(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        return str(case["raw"]).encode()
    if "base64" in case:
        return base64.b64decode(case["base64"])
    return json.dumps(case["body"]).encode()  # the json module: integers beyond 64 bits too


def views_of(case: dict[str, Any]) -> dict[str, ServeView]:
    """``views``: per cluster, the ``url``, ``applications`` (``[name, {status, deployed}]``
    pairs, or null for never answered), ``failing_since`` and ``target_capacity``."""
    found = {}
    for cluster, view in case.get("views", {}).items():
        apps = view.get("applications")
        read = (
            None
            if apps is None
            else tuple(
                (name, Application(app["status"], deployed=app.get("deployed")))
                for name, app in apps
            )
        )
        found[cluster] = ServeView(
            view["url"],
            read,
            view.get("failing_since"),
            target_capacity=view.get("target_capacity"),
        )
    return found


def test_the_rayservice_corpus_has_cases() -> None:
    names = [path.stem for path in CASES]
    assert len(names) >= 8, names
    assert any(name.startswith("bug-") for name in names), names


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_rayservice_corpus_case(path: Path) -> None:
    """A case: ``why``, the ``hook`` (``sync`` or ``customize``), the exact HTTP ``status``,
    the body, and optionally the answer's ``active`` and ``pending`` cluster ("" for none),
    children ``kept`` or ``gone`` (``Kind/name``), and text the Ready ``message`` holds. A case
    with the Serve poller's ``views`` (which HTTP cannot carry) is judged on the core's answer
    to them, and posted over HTTP too (no views there: the answer only has to be right)."""
    case = json.loads(path.read_text())
    assert set(case) <= FIELDS, sorted(set(case) - FIELDS)
    assert case["why"]
    body = body_of(case)
    count("rayservice corpus")
    response = post(f"/rayservice/{case['hook']}", body)
    assert response.status_code == case["status"], f"{case['why']}\n{response.text[:500]}"
    check_http(body, response.status_code, response.content, case["hook"], NOW, GATEWAY_API)
    if response.status_code != 200 or case["hook"] == "customize":
        return
    assert post(f"/rayservice/{case['hook']}", body).content == response.content
    answer = response.json()
    if "views" in case:
        check_core(body, "sync", NOW, views_of(case))
        answered_bytes = run_core(body, "sync", NOW, views_of(case))
        assert answered_bytes is not None
        answer = json.loads(answered_bytes[0])
    status = answer["status"]
    for key, field in (("active", "activeServiceStatus"), ("pending", "pendingServiceStatus")):
        if key in case:
            assert (status.get(field) or {}).get("rayClusterName", "") == case[key], status
    if "message" in case:
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert case["message"] in ready["message"], ready
    answered = {f"{c['kind']}/{c['metadata']['name']}" for c in answer["children"]}
    assert set(case.get("kept", [])) <= answered, sorted(set(case["kept"]) - answered)
    assert not set(case.get("gone", [])) & answered, sorted(set(case["gone"]) & answered)
