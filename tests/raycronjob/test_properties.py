"""Hypothesis: a Metacontroller stand-in that sometimes syncs a stale parent, a clock that
moves by seconds or hours, runs that start and finish, and a user who edits the policy, the
limits, the deadline and suspend. Whatever happens: no run is created twice, no active run is
deleted unless a newer run created under Replace is there, every run is created for a tick of
its schedule that has come, at most one per sync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.time import parse_time
from app.raycronjob.runs import REPLACES, SCHEDULED, run_name
from app.raycronjob.schedule import parse
from tests.raycronjob.loop import START, CronLoop, cron_object

SCHEDULES = [
    ("* * * * *", None),
    ("*/5 * * * *", None),
    ("@every 20s", None),
    ("@every 90s", None),
    ("0 * * * *", None),
    ("30 1 * * *", "America/New_York"),
]
FINISHED = ("Complete", "Failed", "ValidationFailed")

edits = st.fixed_dictionaries(
    {},
    optional={
        "concurrencyPolicy": st.sampled_from(["Allow", "Forbid", "Replace"]),
        "suspend": st.booleans(),
        "successfulJobsHistoryLimit": st.integers(0, 3),
        "failedJobsHistoryLimit": st.integers(0, 3),
        "startingDeadlineSeconds": st.integers(0, 600),
    },
)
actions = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1, 7, 20, 59, 60, 61, 300, 3600, 10_000])),
    st.tuples(st.just("sync"), st.integers(0, 3) | st.integers(4, 60)),
    st.tuples(st.just("finish"), st.integers(0, 50), st.sampled_from(FINISHED)),
    st.tuples(st.just("run"), st.integers(0, 50)),
    st.tuples(st.just("edit"), edits),
)


@settings(max_examples=200, deadline=None)
@given(
    schedule=st.sampled_from(SCHEDULES),
    start=edits,
    steps=st.lists(actions, min_size=1, max_size=40),
)
def test_no_run_twice_no_running_run_deleted_by_mistake(
    schedule: tuple[str, str | None], start: dict[str, Any], steps: list[tuple[Any, ...]]
) -> None:
    text, zone = schedule
    spec: dict[str, Any] = {"schedule": text, **start}
    if zone:
        spec["timeZone"] = zone
    loop = CronLoop(cron_object(**spec))
    parsed = parse(text, zone)
    anchor = START
    for action in steps:
        kind = action[0]
        if kind == "advance":
            loop.now += timedelta(seconds=action[1])
        elif kind == "finish" and loop.live():
            live = loop.live()
            loop.finish(live[-1 - action[1] % len(live)], action[2])  # the newest first
        elif kind == "run" and loop.live():
            live = loop.live()
            loop.run(live[action[1] % len(live)])
        elif kind == "edit":
            loop.edit(**action[1])
        before = {
            n: o for n, o in loop.children.items() if "deletionTimestamp" not in o["metadata"]
        }
        # Any parent the API server ever held, however old: the guarantees do not depend on
        # how stale Metacontroller's cache is.
        stale = min(action[1], len(loop.parents)) if kind == "sync" else 0
        step = loop.step(stale=stale)
        assert len(loop.created) == len(set(loop.created)), f"a run created twice: {loop.created}"
        assert len(step.created) <= 1
        for name in step.created:
            tick = parse_time(loop.children[name]["metadata"]["annotations"][SCHEDULED])
            assert tick is not None and tick <= loop.now
            assert name == run_name("nightly", tick)
            assert parsed.is_tick(anchor, tick), f"{tick} is no tick of {text}"
        for name in step.deleted:
            run = before[name]
            if run["status"].get("jobDeploymentStatus") in FINISHED:
                continue
            tick = run["metadata"]["annotations"][SCHEDULED]
            assert any(
                o["metadata"]["annotations"].get(REPLACES) == "true"
                and o["metadata"]["annotations"][SCHEDULED] > tick
                for o in before.values()
            ), f"active run {name} deleted without a newer replacing run"
