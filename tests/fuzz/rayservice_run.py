"""Running the RayService core as the shell does (decode, sync or customize, encode), and the
checks that take more than one run: determinism, the fixpoint, and views that cost no child."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from app.hooks.request import BadRequest, decode, decode_customize
from app.hooks.response import encode
from app.rayservice import sync as rayservice
from app.rayservice.serve import ServeView
from tests.fuzz.rayjob_oracle import identity, observed
from tests.fuzz.rayservice_objects import OPTIONS
from tests.fuzz.rayservice_oracle import check_answer, check_customize
from tests.fuzz.rayservice_reading import Judged, listed, mapping_of, side
from tests.fuzz.strategies import dumps


def run_core(
    body: bytes, hook: str, now: datetime, views: Mapping[str, ServeView] | None = None
) -> tuple[bytes, tuple[Any, ...], tuple[Any, ...]] | None:
    """decode + sync or customize + encode, as the shell does: the bytes, the events and the
    intents; None for a 400. An exception out of here is a 5xx in production."""
    if hook == "customize":
        try:
            parent = decode_customize(body)
        except BadRequest:
            return None
        return orjson.dumps(rayservice.customize(parent)), (), ()
    try:
        request = decode(body, related=True, raycluster=False)
    except BadRequest:
        return None
    desired = rayservice.sync(
        request.parent, request.observed, request.related, now, OPTIONS, views
    )
    return encode(desired), desired.events, desired.intents


def parse_request(body: bytes) -> Any:
    return json.loads(body.decode("utf-8", errors="replace"))


def check_core(
    body: bytes,
    hook: str,
    now: datetime,
    views: Mapping[str, ServeView] | None = None,
    invalid_text: str | None = None,
) -> str:
    """Every invariant of one request through the core, twice (determinism)."""
    first = run_core(body, hook, now, views)
    if first is None:
        return "bad request"
    again = run_core(body, hook, now, views)
    assert again == first, f"two answers to the same input:\n{first[0]!r:.600}\n{again!r:.600}"
    if hook == "customize":
        return check_customize(parse_request(body).get("parent"), first[0])
    judged = Judged(parse_request(body), first[0], now, views or {}, first[2])
    return check_answer(judged, invalid_text)


def check_http(
    body: bytes, status: int, answer: bytes, hook: str, now: datetime, gateway_api: bool
) -> str:
    assert status in (200, 400, 413, 429), f"/rayservice/{hook} answered {status}: {answer[:300]!r}"
    if status != 200:
        error = json.loads(answer)
        assert isinstance(error, dict) and isinstance(error.get("error"), str), answer[:200]
        return str(status)
    if hook == "customize":
        return check_customize(parse_request(body).get("parent"), answer)
    return check_answer(Judged(parse_request(body), answer, now, {}), gateway_api=gateway_api)


def unusable(views: Mapping[str, ServeView], now: datetime) -> dict[str, ServeView]:
    """The same views as the poller has them before any answer, or failing ever since."""
    return {
        name: ServeView(view.url)
        if i % 2
        else ServeView(view.url, view.applications, "2026-01-01T00:00:00Z", "down")
        for i, (name, view) in enumerate(sorted(views.items()))
    }


def check_views_cost_nothing(body: bytes, now: datetime, views: Mapping[str, ServeView]) -> str:
    """(k) the Serve view's word never costs a child."""
    blind = run_core(body, "sync", now, {})
    if blind is None:
        return "bad request"
    deaf = run_core(body, "sync", now, unusable(views, now))
    assert deaf is not None
    children = [json.loads(a)["children"] for a in (blind[0], deaf[0])]
    assert children[0] == children[1], "views nobody could read changed the children"
    assert blind[2] == deaf[2], f"views nobody could read made intents: {deaf[2]}"
    told = run_core(body, "sync", now, views)
    assert told is not None
    request = parse_request(body)
    previous = mapping_of(request["parent"].get("status"))
    contradictory = set(listed(previous)) & {
        side(previous, "activeServiceStatus"),
        side(previous, "pendingServiceStatus"),
    }

    def dropped(answer: bytes) -> set[tuple[str, str]]:
        kept = {identity(c) for c in json.loads(answer)["children"]}
        return {(c.key, c.name) for c in observed(request)} - kept

    extra = dropped(told[0]) - dropped(blind[0])
    assert {n for _, n in extra} <= contradictory, f"the views cost {sorted(extra)}"
    return "views checked"


def converge(body: bytes, now: datetime, views: Mapping[str, ServeView], steps: int = 8) -> int:
    """(j) feed each answer's status back with the same observed, views and clock."""
    request = parse_request(body)
    answers: list[bytes] = []
    for _ in range(steps):
        result = run_core(body, "sync", now, views)
        assert result is not None, "an answered request became a bad request"
        check_answer(Judged(request, result[0], now, views, result[2]))
        if answers and result[0] == answers[-1]:
            return len(answers)
        answers.append(result[0])
        request = {
            **request,
            "parent": {**request["parent"], "status": json.loads(result[0])["status"]},
        }
        body = dumps(request)
    raise AssertionError(f"no fixpoint within {steps} syncs: {[a[-300:] for a in answers[-2:]]}")
