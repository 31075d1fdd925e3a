"""Hypothesis fuzz of the RayJob hooks through the wire decoder: decode, sync, finalize or
customize, encode, at a fixed clock (``rayjob_strategies.NOW``).

Every input goes through ``rayjob_oracle.check_rayjob_core``: a 400, or an answer that keeps
what it must (rules a-c), twice the same bytes (e); an exception is a 5xx in production and
fails here. ``corpus/rayjob-*.json`` replays hand-made and found cases over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from app.hooks.request import BadRequest, decode
from app.raycluster.problems import InvalidSpec
from app.rayjob.parse import parse_rayjob
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.fuzz import count
from tests.fuzz.rayjob_oracle import check_rayjob_core, check_rayjob_http, converge
from tests.fuzz.rayjob_strategies import (
    MULTIKUEUE,
    NOW,
    corrupted_rayjobs,
    customize_bodies,
    dashboard_worlds,
    invalid_rayjobs,
    rayjob_worlds,
)
from tests.fuzz.strategies import dumps, malformed_bodies

PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
FUZZ = settings(deadline=None, derandomize=False, print_blob=True, phases=PHASES)
HOOKS = ("sync", "finalize", "customize")
NOW_TEXT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def fuzz(
    test: str,
    body: bytes,
    hook: str,
    invalid_field: str | None = None,
    dashboard: Any = None,
) -> str:
    count(test)
    outcome = check_rayjob_core(body, hook, NOW, invalid_field, dashboard)
    event(outcome)
    return outcome


@settings(FUZZ, max_examples=300)
@given(rayjob_worlds(damage=False))
def test_valid_rayjobs_in_every_state(request: dict[str, Any]) -> None:
    fuzz("rayjob worlds /rayjob/sync", dumps(request), "sync")


@settings(FUZZ, max_examples=300)
@given(rayjob_worlds())
def test_hostile_rayjobs_children_and_statuses(request: dict[str, Any]) -> None:
    fuzz("rayjob hostile worlds /rayjob/sync", dumps(request), "sync")


@settings(FUZZ, max_examples=300)
@given(corrupted_rayjobs())
def test_a_valid_rayjob_with_one_corrupted_field(request: dict[str, Any]) -> None:
    fuzz("rayjob corrupted /rayjob/sync", dumps(request), "sync")


@settings(FUZZ, max_examples=250)
@given(
    st.booleans().flatmap(
        lambda selector: st.one_of(
            rayjob_worlds(finalizing=True, selector=selector),
            corrupted_rayjobs(finalizing=True),
        )
    )
)
def test_finalize_keeps_every_child(request: dict[str, Any]) -> None:
    fuzz("rayjob worlds /rayjob/finalize", dumps(request), "finalize")


@settings(FUZZ, max_examples=150)
@given(invalid_rayjobs())
def test_an_invalid_rayjob_changes_nothing_and_names_the_field(case: tuple[Any, str]) -> None:
    request, field = case
    outcome = fuzz("rayjob invalid /rayjob/sync", dumps(request), "sync", field)
    assert outcome in ("validation failed", "managed elsewhere") or outcome.startswith("open"), (
        outcome
    )


@settings(FUZZ, max_examples=80)
@given(
    st.one_of(rayjob_worlds(), rayjob_worlds(damage=False, selector=True)),
    st.sampled_from([MULTIKUEUE, "someone-else", "", 5, ["x"]]),
)
def test_managed_by_another_controller_changes_nothing(
    request: dict[str, Any], manager: Any
) -> None:
    parent = request["parent"]
    if isinstance(parent, dict) and isinstance(parent.get("spec"), dict):
        parent["spec"]["managedBy"] = manager
    outcome = fuzz("rayjob managed elsewhere /rayjob/sync", dumps(request), "sync")
    if isinstance(parent, dict) and isinstance(parent.get("spec"), dict):
        assert outcome in ("managed elsewhere", "bad request") or outcome.startswith("open")
        parent["metadata"] = {**_mapping(parent.get("metadata")), "deletionTimestamp": NOW_TEXT}
        request["finalizing"] = True
        fuzz("rayjob managed elsewhere /rayjob/finalize", dumps(request), "finalize")


@settings(FUZZ, max_examples=150)
@given(customize_bodies())
def test_customize_asks_only_for_what_it_names(request: Any) -> None:
    fuzz("rayjob /rayjob/customize", dumps(request), "customize")


@settings(FUZZ, max_examples=300)
@given(malformed_bodies(), st.sampled_from(HOOKS))
def test_broken_bytes_on_the_rayjob_hooks(body: bytes, hook: str) -> None:
    fuzz("rayjob broken bytes", body, hook)


@settings(FUZZ, max_examples=100)
@given(rayjob_worlds(damage=False))
def test_feeding_the_status_back_reaches_a_fixpoint(request: dict[str, Any]) -> None:
    """Same children, same clock, the answer's status as the parent's: a fixpoint (f)."""
    count("rayjob fixpoint", 1)
    states = converge(request, NOW)
    event(f"{len(states)} syncs to a fixpoint")


@settings(FUZZ, max_examples=150)
@given(dashboard_worlds())
def test_the_dashboards_word_never_costs_a_child(case: tuple[dict[str, Any], Any]) -> None:
    """A metaray that reads dashboards (HTTPMode, InteractiveMode, live states), with the
    dashboard's last word (about this job or another, found or not, failing for a while): the
    same rules, and a fixpoint when nothing changes (the dashboard's word included)."""
    request, view = case
    dashboard = view if view is not None else True
    outcome = fuzz("rayjob dashboard /rayjob/sync", dumps(request), "sync", dashboard=dashboard)
    if outcome.startswith("state"):
        converge(request, NOW, dashboard=dashboard)


def test_the_generators_reach_every_state() -> None:
    """Most generated valid RayJobs are accepted, and the answers cover the lifecycle."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=150, derandomize=True, database=None, deadline=None)
    @given(rayjob_worlds(damage=False))
    def sample(request: dict[str, Any]) -> None:
        try:
            parse_rayjob(decode(dumps(request), related=True).parent)
        except (BadRequest, InvalidSpec):
            outcomes["refused"] += 1
            return
        outcomes[check_rayjob_core(dumps(request), "sync", NOW)] += 1

    sample()
    count("rayjob generator coverage", sum(outcomes.values()))
    assert outcomes["refused"] <= sum(outcomes.values()) // 20, outcomes
    for state in ("new", "Initializing", "Running", "Complete", "Failed", "Retrying"):
        assert outcomes[f"state {state}"] >= 2, (state, outcomes)
    suspending = outcomes["state Suspending"] + outcomes["state Suspended"]
    assert suspending >= 2, outcomes


# -- the corpus, over HTTP at a fixed clock ----------------------------------------------------- -
CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("rayjob-*.json"))
FIELDS = {"why", "hook", "status", "state", "kept", "gone", "body", "raw", "base64", "now"}
FIELDS |= {"dashboard"}


def post(app: Any, path: str, body: bytes) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
            return await client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )

    return asyncio.run(call())


def body_of(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        return str(case["raw"]).encode()
    if "base64" in case:
        return base64.b64decode(case["base64"])
    return json.dumps(case["body"]).encode()


def test_the_rayjob_corpus_has_cases() -> None:
    assert len(CASES) >= 8, [path.stem for path in CASES]


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_rayjob_corpus_case(path: Path) -> None:
    """A case: ``why``, the ``hook`` (``rayjob/sync``, ...), the exact HTTP ``status``, the
    body, the shell's clock ``now`` (default ``NOW``), and optionally the answer's
    ``jobDeploymentStatus`` (``state``, "" for none) and children ``kept`` or ``gone``;
    ``dashboard: false`` runs a metaray that does not read Ray dashboards."""
    case = json.loads(path.read_text())
    assert set(case) <= FIELDS, sorted(set(case) - FIELDS)
    assert case["why"]
    now = datetime.fromisoformat(case["now"]) if "now" in case else NOW
    settings = dataclasses.replace(Settings(), dashboard=case.get("dashboard", True))
    app = create_app(settings, clock=lambda: now)
    body = body_of(case)
    count("rayjob corpus")
    response = post(app, f"/{case['hook']}", body)
    assert response.status_code == case["status"], f"{case['why']}\n{response.text[:500]}"
    hook = case["hook"].rsplit("/", 1)[1]
    check_rayjob_http(body, response.status_code, response.content, hook, now)
    if response.status_code != 200 or hook == "customize":
        return
    answer = response.json()
    answered = {child["metadata"]["name"] for child in answer["children"]}
    if "state" in case:
        assert answer["status"].get("jobDeploymentStatus", "") == case["state"], answer["status"]
    assert set(case.get("kept", [])) <= answered, sorted(set(case["kept"]) - answered)
    assert not set(case.get("gone", [])) & answered, sorted(set(case["gone"]) & answered)
    # The same body at the same clock: the same bytes (e), over HTTP too.
    assert post(app, f"/{case['hook']}", body).content == response.content
