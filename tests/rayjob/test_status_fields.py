"""Each status field a user reads, exactly (the mutation run of app/rayjob/lifecycle.py found
steps whose fields no test pinned down): what Initializing, Running, Complete and a fresh
attempt write, counters that only go up, and what a hand-edited status cannot break."""

from __future__ import annotations

import copy
from datetime import timedelta

from app.core.events import WARNING
from app.rayjob.names import cluster_name, ray_job_id
from tests.rayjob.loop import JobLoop, rayjob_object
from tests.rayjob.test_scenarios import running


def test_initializing_and_running_copy_the_clusters_state_and_start_pending() -> None:
    loop = JobLoop(rayjob_object())
    loop.step()
    loop.step()
    loop.cluster_ready("provisioning")
    loop.step()
    status = loop.status
    assert status["jobDeploymentStatus"] == "Initializing"
    assert status["rayClusterStatus"] == {"state": "provisioning", "desiredWorkerReplicas": 1}
    loop.cluster_ready()
    loop.step()
    status = loop.status
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Running", "PENDING")
    assert status["rayClusterStatus"] == {"state": "ready", "desiredWorkerReplicas": 1}
    assert "message" not in status
    loop.children[("RayCluster.ray.io/v1", status["rayClusterName"])]["status"] = {"state": "x"}
    loop.step()
    assert loop.status["rayClusterStatus"] == {"state": "x"}  # followed while it runs


def test_a_missing_selected_cluster_is_a_warning_naming_it() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "absent"}))
    loop.step()
    [event] = loop.step().desired.events
    assert (event.type, event.reason) == (WARNING, "RayClusterNotFound")
    assert event.message == "RayCluster default/absent not found"


def test_a_fresh_attempt_is_named_from_uid_generation_and_attempt_and_forgets_the_last() -> None:
    loop = JobLoop(rayjob_object(backoffLimit=2))
    loop.step()
    status = loop.status
    assert status["rayClusterName"] == cluster_name("job", "uid-job-1", 1, 0)
    assert status["jobId"] == ray_job_id("job", "uid-job-1", 1, 0)
    assert status["jobStatus"] == ""
    other = JobLoop(rayjob_object(uid="uid-job-2"))
    other.step()
    assert other.status["jobId"] != status["jobId"]
    running(loop)
    loop.submitter_exits(64, "FAILED", "boom")
    for _ in range(4):
        loop.step()
        if loop.status.get("jobDeploymentStatus") == "Initializing":
            break
    status = loop.status
    assert status["rayClusterName"] == cluster_name("job", "uid-job-1", 1, 1)
    assert status["jobId"] == ray_job_id("job", "uid-job-1", 1, 1)
    assert status["jobStatus"] == ""
    assert not {"reason", "message", "endTime", "dashboardURL", "rayJobInfo"} & set(status)


def test_a_hand_edited_new_status_keeps_nothing_of_what_it_claims() -> None:
    loop = JobLoop(rayjob_object())
    loop.parent["status"] = {
        "endTime": "2026-01-01T00:00:00Z",
        "reason": "AppFailed",
        "message": "edited",
        "dashboardURL": "evil:80",
        "rayJobInfo": {"startTime": "2026-01-01T00:00:00Z"},
        "jobDeploymentStatus": "Running",  # but no cluster: starts from the spec
    }
    loop.step()
    status = loop.status
    assert status["jobDeploymentStatus"] == "Initializing"
    assert not {"reason", "message", "endTime", "dashboardURL", "rayJobInfo"} & set(status)


def test_completion_counts_up_from_the_counter_and_keeps_the_reports_times() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.parent["status"]["succeeded"] = 4  # an earlier run of the same RayJob, say
    loop.parent["status"]["reason"] = "left over"
    loop.submitter_exits(0, "SUCCEEDED", "done")
    stamp = loop.stamp()  # the report's times
    loop.step()
    status = loop.status
    assert (status["jobDeploymentStatus"], status["succeeded"]) == ("Complete", 5)
    assert "reason" not in status
    assert status["rayJobInfo"] == {"startTime": stamp, "endTime": stamp}


def test_a_report_with_only_an_end_time_is_kept() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.submitter_exits(0, "SUCCEEDED", "done")
    pod = next(iter(loop.related_pods.values()))
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    terminated["message"] = '{"status": "SUCCEEDED", "endTime": "2026-01-01T00:00:05Z"}'
    loop.step()
    assert loop.status["rayJobInfo"] == {"endTime": "2026-01-01T00:00:05Z"}


def test_counters_of_a_hand_edited_status_are_read_as_none() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.parent["status"]["succeeded"] = "x"
    loop.submitter_exits(0, "SUCCEEDED", "done")
    loop.step()
    assert loop.status["succeeded"] == 1


def test_the_retried_attempt_is_stamped_at_the_clock_of_its_new_start() -> None:
    loop = JobLoop(rayjob_object(backoffLimit=1))
    running(loop)
    loop.submitter_exits(64, "FAILED")
    loop.step()
    loop.now += timedelta(seconds=100)
    for _ in range(4):
        loop.step()
        if loop.status.get("jobDeploymentStatus") == "Initializing":
            break
    assert loop.status["startTime"] == loop.stamp()


def test_running_is_not_pre_running_a_pre_running_deadline_no_longer_applies() -> None:
    loop = JobLoop(rayjob_object(preRunningDeadlineSeconds=30))
    running(loop)
    loop.now += timedelta(seconds=60)
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"


def test_a_deadline_that_is_due_exactly_now_has_passed() -> None:
    loop = JobLoop(rayjob_object(activeDeadlineSeconds=30))
    running(loop)
    started = loop.status["startTime"]
    loop.now = loop.now.replace(second=int(started[17:19])) + timedelta(seconds=30)
    loop.now = loop.now.replace(minute=int(started[14:16]))
    loop.step()  # the step itself moves the clock one tick past the deadline
    assert loop.status["reason"] == "DeadlineExceeded"


def test_suspended_stays_suspended_and_keeps_nothing() -> None:
    loop = JobLoop(rayjob_object(suspend=True, shutdownAfterJobFinishes=True))
    for _ in range(3):
        loop.step()
    before = copy.deepcopy(loop.status)
    assert before["jobDeploymentStatus"] == "Suspended"
    assert loop.step().created == []
    assert loop.status == before
