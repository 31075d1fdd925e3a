"""Reading the Ray job's result from the submitter: exit codes, conditions, reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.observed import ObservedObject, ObservedPod, parse
from app.rayjob import outcome


def job(condition: str, reason: str = "", message: str = "") -> ObservedObject:
    return parse(
        ObservedObject,
        {
            "metadata": {"name": "job"},
            "status": {
                "conditions": [
                    {"type": condition, "status": "True", "reason": reason, "message": message}
                ]
            },
        },
    )


def pod(code: int, report: Any, finished: str = "2026-01-01T00:00:09Z") -> ObservedPod:
    terminated = {"exitCode": code, "message": json.dumps(report), "finishedAt": finished}
    return parse(
        ObservedPod,
        {
            "metadata": {"name": f"pod-{finished}"},
            "status": {
                "containerStatuses": [
                    {"name": "ray-job-submitter", "state": {"terminated": terminated}}
                ]
            },
        },
    )


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [(64, "FAILED", "AppFailed"), (65, "STOPPED", "SubmissionFailed"), (66, "FAILED", "AppFailed")],
)
def test_a_failjob_rule_names_the_exit_code_and_so_the_result(
    code: int, status: str, reason: str
) -> None:
    text = f"Container ray-job-submitter for pod ns/p failed with exit code {code} matching ..."
    ended = outcome.of_submitter_job(job("Failed", "PodFailurePolicy", text), [], ours=True)
    assert ended is not None
    assert ended.ray_job_status == status
    assert ended.succeeded == (status == "STOPPED")
    if ended.ray_job_status == "FAILED":
        assert ended.reason == reason


def test_a_complete_job_of_our_script_succeeded_with_its_report() -> None:
    report = {"status": "SUCCEEDED", "message": "ok", "startTime": "2026-01-01T00:00:01Z"}
    ended = outcome.of_submitter_job(job("Complete"), [pod(0, report)], ours=True)
    assert ended == outcome.Outcome("SUCCEEDED", "ok", "2026-01-01T00:00:01Z", None)


@pytest.mark.parametrize("order", ["newest-first", "newest-last", "newest-between"])
def test_the_newest_report_wins_whatever_order_the_pods_come_in(order: str) -> None:
    """A first or last report taken blindly is wrong for one of these orders."""
    old = pod(1, {"status": "FAILED", "message": "old"}, "2026-01-01T00:00:01Z")
    older = pod(1, {"status": "FAILED", "message": "older"}, "2026-01-01T00:00:00Z")
    new = pod(0, {"status": "SUCCEEDED", "message": "new"}, "2026-01-01T00:00:09Z")
    pods = {
        "newest-first": [new, old, older],
        "newest-last": [older, old, new],
        "newest-between": [old, new, older],
    }[order]
    ended = outcome.of_submitter_job(job("Complete"), pods, ours=True)
    assert ended == outcome.Outcome("SUCCEEDED", "new")


def test_a_report_with_a_bad_date_keeps_the_result_and_drops_the_date() -> None:
    report = {"status": "SUCCEEDED", "startTime": "yesterday", "endTime": 5}
    ended = outcome.of_submitter_job(job("Complete"), [pod(0, report)], ours=True)
    assert ended == outcome.Outcome("SUCCEEDED", "", None, None)


def test_a_backoff_limit_failure_is_a_submission_failure() -> None:
    failed = job("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    ended = outcome.of_submitter_job(failed, [], ours=True)
    assert ended is not None and ended.reason == "SubmissionFailed"
    assert "BackoffLimitExceeded" in ended.message


def test_a_users_own_submitter_is_not_read_for_exit_codes() -> None:
    text = "Container c for pod ns/p failed with exit code 64"
    ended = outcome.of_submitter_job(job("Failed", "PodFailurePolicy", text), [], ours=False)
    assert ended is not None and ended.reason == "SubmissionFailed"
    assert (
        "cannot tell"
        in (outcome.of_submitter_job(job("Complete"), [], ours=False) or ended).message
    )


def test_a_running_job_has_no_outcome() -> None:
    assert outcome.of_submitter_job(job("Suspended"), [], ours=True) is None
