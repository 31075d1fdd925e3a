"""Replays every case of ``corpus/`` over HTTP (in-process ASGI).

A case is a JSON file: ``why`` it is interesting, the ``hook`` it goes to, the exact HTTP
``status`` metaray must answer, and the body as a JSON request (``body``, with optional
``inflate`` entries that put a string of ``size`` characters at ``path``), as text (``raw``),
as ``base64`` bytes, or as ``pieces`` (``[text, times]`` pairs, concatenated). Optionally the
``state`` of a 200 answer, and children that must be answered (``kept``) or left out (``gone``).
Every answer must also pass all the fuzz oracle's invariants. Cases named ``bug-*`` are minimal
examples of faults the fuzz found; they state the behaviour metaray should have.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.fuzz import count
from tests.fuzz.oracle import check_http

CORPUS = Path(__file__).parent / "corpus"
# rayjob-*.json go to the RayJob hooks, with their own oracle (test_fuzz_rayjob.py).
CASES = sorted(path for path in CORPUS.glob("*.json") if not path.name.startswith("rayjob-"))
FIELDS = {"why", "hook", "status", "state", "kept", "gone", "body", "inflate", "raw", "base64"}
FIELDS |= {"pieces"}
APP = create_app(Settings())


def body_of(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        return str(case["raw"]).encode()
    if "base64" in case:
        return base64.b64decode(case["base64"])
    if "pieces" in case:
        return "".join(text * times for text, times in case["pieces"]).encode()
    request = copy.deepcopy(case["body"])
    for item in case.get("inflate", []):
        *path, last = item["path"]
        node = request
        for key in path:
            node = node.setdefault(key, {})
        node[last] = "x" * item["size"]
    return json.dumps(request).encode()  # the json module: integers beyond 64 bits too


def post(path: str, body: bytes) -> httpx.Response:
    """Over HTTP; an exception in the app comes back as the 500 a server would send."""

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
            return await client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )

    return asyncio.run(call())


def test_the_corpus_has_hand_made_cases_and_bugs() -> None:
    names = [path.stem for path in CASES]
    assert len([name for name in names if not name.startswith("bug-")]) >= 12, names
    assert any(name.startswith("bug-") for name in names), names


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_corpus_case(path: Path) -> None:
    case = json.loads(path.read_text())
    assert set(case) <= FIELDS, sorted(set(case) - FIELDS)
    assert isinstance(case["why"], str)
    assert case["why"]
    hook = case["hook"]
    body = body_of(case)
    count("corpus")
    response = post(f"/{hook}", body)
    assert response.status_code == case["status"], f"{case['why']}\n{response.text[:500]}"
    check_http(body, response.status_code, response.content, hook)
    if response.status_code != 200:
        return
    answer = response.json()
    answered = {child["metadata"]["name"] for child in answer["children"]}
    if "state" in case:
        assert answer["status"].get("state") == case["state"], answer["status"]
    assert set(case.get("kept", [])) <= answered, sorted(set(case["kept"]) - answered)
    assert not set(case.get("gone", [])) & answered, sorted(set(case["gone"]) & answered)
