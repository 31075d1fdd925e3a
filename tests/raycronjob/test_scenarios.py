"""RayCronJob scenarios over HTTP, with the Metacontroller stand-in and a moving clock:
schedule, time zone, DST, outages, suspend, each concurrency policy, history limits, invalid
specs and stale replays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from app.raycronjob.runs import CRONJOB_NAME, SCHEDULED
from tests.raycronjob.http import Hook, over_http
from tests.raycronjob.loop import START, cron_object, in_process, request, template


def minutes(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def at(hour: int, minute: int = 0, day: int = 1, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# -- the schedule ---------------------------------------------------------------------------


def test_nothing_runs_before_the_first_tick_after_creation() -> None:
    loop = over_http(cron_object())
    assert loop.settle() == []
    assert loop.advance(seconds=59) == []
    assert loop.history[-1].answer["resyncAfterSeconds"] == 1


def test_each_minute_gets_one_run_named_as_kuberay_names_it() -> None:
    loop = over_http(cron_object())
    first = loop.at(START + timedelta(minutes=1))
    assert first == [f"nightly-{minutes(START) + 1}"]
    run = loop.children[first[0]]
    assert run["metadata"]["labels"][CRONJOB_NAME] == "nightly"
    assert run["metadata"]["annotations"][SCHEDULED] == "2026-01-01T00:01:00Z"
    assert run["spec"] == template()
    assert loop.status["lastScheduleTime"] == "2026-01-01T00:01:00Z"
    assert loop.status["active"] == [
        {"apiVersion": "ray.io/v1", "kind": "RayJob", "name": first[0], "namespace": "default"}
    ]
    assert "pendingScheduleTime" not in loop.status
    assert loop.advance(seconds=30) == []
    assert loop.history[-1].answer["resyncAfterSeconds"] == 30
    assert loop.advance(seconds=30) == [f"nightly-{minutes(START) + 2}"]


def test_the_run_is_decided_in_status_before_it_is_created() -> None:
    loop = over_http(cron_object())
    loop.now = START + timedelta(minutes=1)
    decided = loop.step()
    assert decided.created == [] and decided.answer["children"] == []
    assert decided.answer["status"]["pendingScheduleTime"] == "2026-01-01T00:01:00Z"
    assert loop.step().created == [f"nightly-{minutes(START) + 1}"]


def test_sub_minute_every_ticks_get_distinct_names() -> None:
    loop = over_http(cron_object(schedule="@every 20s"))
    created = []
    for second in (20, 40, 60, 80):
        created += loop.at(START + timedelta(seconds=second))
    start = int(START.timestamp())
    assert created == [
        f"nightly-{start + 20}",
        f"nightly-{start + 40}",
        f"nightly-{(start + 60) // 60}",
        f"nightly-{start + 80}",
    ]
    assert all(len(name) <= 47 for name in created)


def test_every_runs_count_from_the_creation_time() -> None:
    parent = cron_object(schedule="@every 1h30m")
    parent["metadata"]["creationTimestamp"] = "2026-01-01T00:10:00Z"
    loop = over_http(parent)
    assert loop.at(at(1, 39)) == []
    assert loop.at(at(1, 40)) == [f"nightly-{minutes(at(1, 40))}"]


# -- time zones and daylight saving ---------------------------------------------------------


def test_a_time_zone_moves_the_ticks() -> None:
    loop = over_http(cron_object(schedule="45 21 * * *", timeZone="Asia/Taipei"))
    assert loop.at(at(13, 44)) == []
    assert loop.at(at(13, 45)) == [f"nightly-{minutes(at(13, 45))}"]  # 21:45 in Taipei
    assert loop.at(at(21, 45)) == []  # 21:45 UTC is 05:45 in Taipei


def test_a_daily_run_runs_once_when_the_clock_falls_back() -> None:
    parent = cron_object(schedule="30 1 * * *", timeZone="America/New_York")
    parent["metadata"]["creationTimestamp"] = "2026-10-31T12:00:00Z"
    loop = over_http(parent)
    created = []
    moment = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    while moment < datetime(2026, 11, 2, 8, 0, tzinfo=UTC):
        created += loop.at(moment)
        moment += timedelta(minutes=15)
    # 01:30 EDT (05:30 UTC) runs; 01:30 EST (06:30 UTC) the same day does not; then 01:30 EST.
    assert created == [
        f"nightly-{minutes(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))}",
        f"nightly-{minutes(datetime(2026, 11, 2, 6, 30, tzinfo=UTC))}",
    ]


def test_a_time_the_clock_skips_runs_right_after_the_gap() -> None:
    parent = cron_object(schedule="30 2 * * *", timeZone="America/New_York")
    parent["metadata"]["creationTimestamp"] = "2026-03-07T12:00:00Z"
    loop = over_http(parent)
    assert loop.at(datetime(2026, 3, 8, 6, 59, tzinfo=UTC)) == []
    # 02:30 does not exist on 8 March 2026 in New York: it runs at 03:00 EDT (07:00 UTC).
    assert loop.at(datetime(2026, 3, 8, 7, 0, tzinfo=UTC)) == [
        f"nightly-{minutes(datetime(2026, 3, 8, 7, 0, tzinfo=UTC))}"
    ]
    assert loop.at(datetime(2026, 3, 9, 6, 30, tzinfo=UTC)) == [
        f"nightly-{minutes(datetime(2026, 3, 9, 6, 30, tzinfo=UTC))}"
    ]


# -- outages, deadlines, suspend ------------------------------------------------------------


def test_after_an_outage_only_the_latest_missed_tick_runs() -> None:
    loop = over_http(cron_object())
    assert loop.at(START + timedelta(hours=3, seconds=10)) == [f"nightly-{minutes(START) + 180}"]
    assert loop.live() == [f"nightly-{minutes(START) + 180}"]


def test_a_missed_tick_past_its_starting_deadline_is_skipped_with_a_warning() -> None:
    parent = cron_object(schedule="0 * * * *", startingDeadlineSeconds=300)
    loop = over_http(parent)
    now = at(2, 10)
    body = request(parent, {})
    answer = in_process(body, now)
    assert answer["children"] == [] and "pendingScheduleTime" not in answer["status"]
    assert loop.at(now) == []
    assert loop.at(at(3, 4)) == [f"nightly-{minutes(at(3))}"]  # within 300 s of 03:00


def test_suspend_stops_new_runs_and_keeps_the_running_one() -> None:
    loop = over_http(cron_object())
    [running] = loop.at(START + timedelta(minutes=1))
    loop.edit(suspend=True)
    assert loop.advance(minutes=10) == []
    assert loop.live() == [running]
    assert "resyncAfterSeconds" not in loop.history[-1].answer
    loop.edit(suspend=False)
    # Resumed: the latest missed tick runs once, not the ten that passed.
    assert loop.settle() == [f"nightly-{minutes(START) + 11}"]


def test_suspend_after_the_decision_stops_the_creation() -> None:
    loop = over_http(cron_object())
    loop.now = START + timedelta(minutes=1)
    loop.step()
    assert loop.status["pendingScheduleTime"]
    loop.edit(suspend=True)
    assert loop.settle() == []
    assert "pendingScheduleTime" not in loop.status


# -- concurrency ----------------------------------------------------------------------------


def test_allow_runs_overlap() -> None:
    loop = over_http(cron_object(concurrencyPolicy="Allow"))
    loop.at(START + timedelta(minutes=1))
    loop.advance(minutes=1)
    assert len(loop.live()) == 2 and len(loop.status["active"]) == 2


def test_forbid_waits_for_the_active_run_then_runs_the_latest_tick_once() -> None:
    loop = over_http(cron_object(concurrencyPolicy="Forbid"))
    [first] = loop.at(START + timedelta(minutes=1))
    assert loop.advance(minutes=1) == []
    assert loop.advance(minutes=1) == []
    loop.finish(first)
    assert loop.settle() == [f"nightly-{minutes(START) + 3}"]
    assert loop.advance(seconds=1) == []


def test_replace_starts_the_new_run_then_deletes_the_old_one() -> None:
    loop = over_http(cron_object(concurrencyPolicy="Replace"))
    [first] = loop.at(START + timedelta(minutes=1))
    loop.run(first)
    loop.now += timedelta(minutes=1)
    steps = [loop.step() for _ in range(4)]
    second = f"nightly-{minutes(START) + 2}"
    created_at = next(i for i, s in enumerate(steps) if s.created)
    deleted_at = next(i for i, s in enumerate(steps) if s.deleted)
    assert steps[created_at].created == [second]
    assert steps[deleted_at].deleted == [first]
    assert created_at < deleted_at  # never a moment with neither
    assert loop.live() == [second]


def test_replace_leaves_finished_runs_alone() -> None:
    loop = over_http(cron_object(concurrencyPolicy="Replace"))
    [first] = loop.at(START + timedelta(minutes=1))
    loop.finish(first)
    loop.advance(minutes=1)
    assert first in loop.live()


# -- history limits -------------------------------------------------------------------------


def test_history_limits_keep_the_newest_finished_runs_and_every_active_one() -> None:
    loop = over_http(cron_object(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1))
    names = []
    for _ in range(5):
        names += loop.advance(minutes=1)
    for name, state in zip(names[:4], ["Complete", "Complete", "Failed", "Failed"], strict=True):
        loop.finish(name, state)
    loop.settle()
    assert loop.live() == [names[1], names[3], names[4]]
    assert sorted(n for n, _ in loop.deleted) == [names[0], names[2]]


def test_the_newest_run_is_kept_even_beyond_a_zero_limit() -> None:
    loop = over_http(cron_object(schedule="0 * * * *", successfulJobsHistoryLimit=0))
    [run] = loop.at(at(1))
    loop.finish(run)
    loop.settle()
    assert loop.live() == [run]
    [later] = loop.at(at(2))
    assert loop.live() == [later]


def test_without_limits_finished_runs_stay_as_in_kuberay() -> None:
    loop = over_http(cron_object())
    names = loop.advance(minutes=1) + loop.advance(minutes=1)
    for name in names:
        loop.finish(name, "Failed")
    loop.advance(minutes=1)
    assert set(names) <= set(loop.live())


def test_last_successful_time_is_when_the_newest_success_ended() -> None:
    loop = over_http(cron_object())
    [run] = loop.advance(minutes=1)
    loop.now += timedelta(seconds=20)
    loop.finish(run)
    loop.settle()
    assert loop.status["lastSuccessfulTime"] == "2026-01-01T00:01:20Z"
    assert "active" not in loop.status


# -- metadata -------------------------------------------------------------------------------


def test_job_metadata_reaches_each_run_and_kuberays_keys_win() -> None:
    metadata = {
        "labels": {"kueue.x-k8s.io/queue-name": "user-queue", CRONJOB_NAME: "spoof"},
        "annotations": {"team": "search", SCHEDULED: "spoof"},
    }
    loop = over_http(cron_object(jobMetadata=metadata))
    [run] = loop.advance(minutes=1)
    meta = loop.children[run]["metadata"]
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "user-queue"
    assert meta["labels"][CRONJOB_NAME] == "nightly"
    assert meta["annotations"]["team"] == "search"
    assert meta["annotations"][SCHEDULED] == "2026-01-01T00:01:00Z"


# -- invalid specs --------------------------------------------------------------------------


def test_an_invalid_spec_keeps_every_run_and_says_why() -> None:
    loop = over_http(cron_object())
    runs = loop.advance(minutes=1) + loop.advance(minutes=1)
    loop.edit(schedule="TZ=Asia/Taipei 0 0 * * *")
    step = loop.step()
    assert step.deleted == [] and loop.live() == sorted(runs)
    assert "use timeZone field instead" in loop.status["message"]
    assert loop.status["lastScheduleTime"] == "2026-01-01T00:02:00Z"
    loop.edit(schedule="* * * * *", jobTemplate=template(submissionMode="Batch"))
    assert loop.advance(minutes=5) == []
    assert "spec.jobTemplate.submissionMode" in loop.status["message"]
    assert loop.live() == sorted(runs)


def test_a_name_longer_than_kuberays_cap_is_refused() -> None:
    hook = Hook()
    answer = hook.post(request(cron_object(name="c" * 37), {})).json()
    assert "metadata.name" in answer["status"]["message"]
    assert hook.post(request(cron_object(name="c" * 36), {})).json()["status"] == {}


# -- stale replays --------------------------------------------------------------------------


def test_a_stale_parent_that_still_holds_the_decision_does_not_create_again() -> None:
    loop = over_http(cron_object())
    loop.now = START + timedelta(minutes=1)
    loop.step()  # decided
    [run] = loop.step().created  # created
    loop.step()  # observed: pending cleared
    for stale in (1, 2, 3):
        assert loop.step(stale=stale).created == []
    assert loop.created == [run]


def test_a_stale_parent_after_the_history_limit_deleted_a_run_recreates_nothing() -> None:
    loop = over_http(cron_object(successfulJobsHistoryLimit=0))
    first = loop.advance(minutes=1)[0]
    loop.finish(first)
    loop.advance(minutes=1)
    assert first not in loop.children
    for stale in range(1, len(loop.parents)):
        loop.step(stale=stale)
    assert loop.created.count(first) == 1


def test_a_stale_parent_never_deletes_a_running_run() -> None:
    loop = over_http(cron_object(concurrencyPolicy="Forbid", successfulJobsHistoryLimit=0))
    [run] = loop.advance(minutes=1)
    loop.run(run)
    loop.edit(concurrencyPolicy="Replace")
    for stale in range(1, len(loop.parents)):
        assert loop.step(stale=stale).deleted == []
    assert loop.live() == [run]


def test_the_same_request_at_the_same_time_gives_the_same_bytes() -> None:
    hook = Hook()
    body = request(cron_object(), {})
    hook.now = START + timedelta(minutes=1)
    assert hook.post(body).content == hook.post(body).content


# -- events ---------------------------------------------------------------------------------


def test_each_run_created_skipped_or_deleted_is_an_event() -> None:
    from app.hooks.request import decode
    from app.raycronjob import sync as core

    loop = over_http(cron_object(concurrencyPolicy="Forbid", successfulJobsHistoryLimit=0))
    reasons: list[str] = []

    def decide(body: dict[str, Any], now: datetime) -> dict[str, Any]:
        decoded = decode(json.dumps(body).encode())
        desired = core.sync(decoded.parent, decoded.observed, now)
        reasons.extend(e.reason for e in desired.events)
        return in_process(body, now)

    loop.decide = decide
    [first] = loop.advance(minutes=1)
    loop.advance(minutes=1)  # Forbid: skipped while the first is active
    loop.finish(first)
    loop.settle()  # the second runs, the first goes
    assert reasons.count("CreatedRayJob") >= 2
    assert "JobAlreadyActive" in reasons
    assert "DeletedRayJob" in reasons
