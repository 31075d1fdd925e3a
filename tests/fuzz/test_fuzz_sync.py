"""Hypothesis fuzz of the core through the wire decoder: decode, sync or finalize, encode.

In-process and without HTTP, so that a run feeds the hook over ten thousand inputs within a few
minutes. Every input goes through ``oracle.check_core``: a 400 or an answer that loses nothing
(see ``oracle.py`` for the invariants). An exception out of sync or finalize is a 5xx in
production and a failure here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from app.hooks.request import BadRequest, decode
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import parse_spec
from tests.fixtures import captures
from tests.fuzz import count
from tests.fuzz.oracle import check_core
from tests.fuzz.strategies import (
    capture_bytes,
    corrupted_specs,
    dumps,
    malformed_bodies,
    mutated_captures,
    storage_and_collector_specs,
    worlds,
)

# No "explain" phase: it re-runs a failing example many times for little gain.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
FUZZ = settings(
    deadline=None,
    derandomize=False,
    print_blob=True,
    phases=PHASES,
)


def fuzz(test: str, body: bytes, hook: str = "sync") -> None:
    count(test)
    event(check_core(body, hook))


@settings(FUZZ, max_examples=3000)
@given(malformed_bodies())
def test_broken_bytes_are_refused_or_answered_without_loss(body: bytes) -> None:
    fuzz("broken bytes", body)


@settings(FUZZ, max_examples=2000)
@given(mutated_captures(), st.sampled_from(["sync", "finalize"]))
def test_real_requests_with_wrong_types_missing_or_extra_fields(body: bytes, hook: str) -> None:
    fuzz("mutated captures", body, hook)


@settings(FUZZ, max_examples=2400)
@given(worlds())
def test_hostile_clusters_and_children_on_sync(request: dict[str, Any]) -> None:
    fuzz("hostile worlds /sync", dumps(request))


@settings(FUZZ, max_examples=800)
@given(worlds(finalizing=True))
def test_hostile_clusters_and_children_on_finalize(request: dict[str, Any]) -> None:
    fuzz("hostile worlds /finalize", dumps(request), "finalize")


@settings(FUZZ, max_examples=1800)
@given(corrupted_specs())
def test_a_valid_spec_with_one_corrupted_field(request: dict[str, Any]) -> None:
    fuzz("corrupted specs", dumps(request))


@settings(FUZZ, max_examples=600)
@given(storage_and_collector_specs())
def test_embedded_gcs_storage_and_history_collector_specs(request: dict[str, Any]) -> None:
    fuzz("storage and collector specs", dumps(request))


@pytest.mark.parametrize("name", captures())
def test_every_capture_whole_and_cut_short(name: str) -> None:
    """Each real request is answered without loss; every proper prefix of it is a 400."""
    body = capture_bytes(name)
    assert check_core(body) == "answered"
    cuts = sorted({len(body) * k // 40 for k in range(40)})
    for cut in cuts:
        with pytest.raises(BadRequest):
            decode(body[:cut])
    count("capture prefixes", 1 + len(cuts))


def test_the_generators_reach_the_core() -> None:
    """The generated requests are not all refused: most decode, and many carry a valid spec
    (otherwise the fuzz would only ever test the 400 path and the invalid-spec path)."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=400, derandomize=True, database=None, deadline=None)
    @given(st.sampled_from(["world", "spec", "capture"]), st.data())
    def sample(family: str, data: st.DataObject) -> None:
        if family == "world":
            body = dumps(data.draw(worlds()))
        elif family == "spec":
            body = dumps(data.draw(corrupted_specs()))
        else:
            body = data.draw(mutated_captures())
        try:
            parent = decode(body).parent
        except BadRequest:
            outcomes[f"{family} refused"] += 1
            return
        try:
            parse_spec(parent)
            outcomes[f"{family} valid"] += 1
        except InvalidSpec:
            outcomes[f"{family} invalid"] += 1
        except Exception:  # a crash of the spec checks: the fuzz tests report it
            outcomes[f"{family} invalid"] += 1

    sample()
    count("generator coverage", sum(outcomes.values()))
    # A corrupted spec is mostly refused (as it should be): one in eight valid is enough there.
    for family, share in (("world", 5), ("spec", 8), ("capture", 5)):
        total = sum(n for key, n in outcomes.items() if key.startswith(family))
        assert outcomes[f"{family} valid"] >= total // share, (family, outcomes)
        assert outcomes[f"{family} invalid"] >= total // 20, outcomes
    assert outcomes["world refused"] <= sum(outcomes.values()) // 4, outcomes
