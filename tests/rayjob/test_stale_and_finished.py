"""Over HTTP, through the in-memory Metacontroller: a finished RayJob never runs again, a stale
parent never undoes a retry, and edits that would orphan a live attempt are refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from app.rayjob.kinds import JOB
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.http.client import HookClient
from tests.rayjob.loop import START, JobLoop, rayjob_object, user_cluster
from tests.rayjob.test_http import HEADERS, over_http


@pytest.fixture
def clock() -> list[datetime]:
    return [START]


@pytest.fixture
def client(clock: list[datetime]) -> Iterator[HookClient]:
    yield HookClient(create_app(Settings(events="off"), clock=lambda: clock[0]))


def http_loop(client: HookClient, clock: list[datetime], **spec: Any) -> JobLoop:
    loop = JobLoop(rayjob_object(**spec))
    over_http(client, loop, clock)
    return loop


def running(loop: JobLoop) -> str:
    for _ in range(6):
        loop.step()
        if loop.status.get("rayClusterName") in loop.clusters():
            break
    loop.cluster_ready()
    loop.until("Running")
    return str(loop.status["rayClusterName"])


def clusters_in(answer: dict[str, Any]) -> list[str]:
    return sorted(c["metadata"]["name"] for c in answer["children"] if c["kind"] == "RayCluster")


# -- item 3: a finished RayJob runs again ------------------------------------------------------


@pytest.mark.parametrize("shutdown", [True, False], ids=["cluster-deleted", "cluster-kept"])
def test_a_complete_rayjob_stays_complete_through_an_invalid_edit_and_its_fix(
    client: HookClient, clock: list[datetime], shutdown: bool
) -> None:
    loop = http_loop(client, clock, shutdownAfterJobFinishes=shutdown)
    running(loop)
    loop.submitter_exits(0, "SUCCEEDED", "done")
    loop.step()
    loop.step()  # the observed status is Complete: a due shutdown is carried out now
    assert (loop.status["jobDeploymentStatus"], loop.status["succeeded"]) == ("Complete", 1)
    clusters_before = loop.clusters()
    loop.edit(activeDeadlineSeconds=-5)
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
    loop.edit(activeDeadlineSeconds=3600)
    created = [c for _ in range(6) for c in loop.step().created]
    assert created == []  # no new RayCluster, no new submitter: the entrypoint runs once
    status = loop.status
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED")
    assert (status["succeeded"], status["failed"]) == (1, 0)
    assert loop.clusters() == clusters_before


def test_a_failed_rayjob_stays_failed_with_its_reason_through_an_invalid_edit(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = http_loop(client, clock)
    running(loop)
    loop.submitter_exits(64, "FAILED", "boom")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["reason"]) == ("Failed", "AppFailed")
    loop.edit(submissionMode="Batch")
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
    loop.edit(submissionMode="K8sJobMode")
    assert all(loop.step().created == [] for _ in range(4))
    status = loop.status
    assert (status["jobDeploymentStatus"], status["reason"], status["failed"]) == (
        "Failed",
        "AppFailed",
        1,
    )


def test_an_invalid_edit_while_running_resumes_the_same_attempt(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = http_loop(client, clock)
    name = running(loop)
    loop.edit(activeDeadlineSeconds=-1)
    loop.step()
    loop.edit(activeDeadlineSeconds=600)
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert (loop.clusters(), loop.status["failed"]) == ([name], 0)


# -- item 4: a stale parent undoes a retry -----------------------------------------------------


def test_the_sync_that_decides_a_retry_deletes_nothing_so_a_stale_sync_rebuilds_nothing(
    client: HookClient, clock: list[datetime]
) -> None:
    """Behind Metacontroller the next sync often still sees the parent as Running: had the
    first answer deleted the children, that sync would rebuild attempt 0."""
    loop = http_loop(client, clock, backoffLimit=2)
    first = running(loop)
    running_parent = copy.deepcopy(loop.parent)
    loop.submitter_exits(64, "FAILED", "boom")
    step = loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["failed"]) == ("Retrying", 1)
    assert step.deleted == []
    stale = loop.step(running_parent)  # the cache still shows Running
    assert stale.created == [] and stale.deleted == []
    assert (loop.status["jobDeploymentStatus"], loop.status["failed"]) == ("Retrying", 1)
    assert loop.status.get("rayClusterName") == first


def test_a_stale_parent_of_attempt_0_neither_recreates_its_children_nor_rolls_status_back(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = http_loop(client, clock, backoffLimit=2)
    first = running(loop)
    old = copy.deepcopy(loop.parent)  # Running, failed 0, attempt 0's cluster and job id
    loop.submitter_exits(64, "FAILED", "boom")
    for _ in range(3):
        loop.step()
    second = running(loop)
    assert second != first and loop.jobs() == ["job"]
    newer = loop.status
    submitter_uid = loop.child(JOB, "job")["metadata"]["uid"]
    step = loop.step(old)
    assert step.created == [] and step.deleted == []
    assert loop.child(JOB, "job")["metadata"]["uid"] == submitter_uid  # not re-created
    status = loop.status
    assert status["failed"] == 1  # not rolled back to 0
    assert status["rayClusterName"] == second
    assert status["jobId"] == newer["jobId"]
    assert clusters_in(step.answer) == [second]


def test_a_stale_parent_while_the_retry_waits_for_its_new_cluster_recreates_nothing(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = http_loop(client, clock, backoffLimit=2)
    running(loop)
    old = copy.deepcopy(loop.parent)
    loop.submitter_exits(64, "FAILED", "boom")
    for _ in range(8):
        loop.step()
        fresh = loop.status.get("jobDeploymentStatus") == "Initializing"
        if fresh and loop.status.get("rayClusterName") in loop.clusters():
            break
    second = loop.status["rayClusterName"]
    assert loop.clusters() == [second] and loop.jobs() == []
    step = loop.step(old)  # attempt 0's Running parent: it would rebuild attempt 0's submitter
    assert step.created == [] and loop.jobs() == []
    assert (loop.status["failed"], loop.status["rayClusterName"]) == (1, second)


# -- item 9: edits that would orphan a live attempt --------------------------------------------


@pytest.mark.parametrize(
    "edit",
    [
        {"submissionMode": "SidecarMode"},
        {"clusterSelector": {"ray.io/cluster": "mine"}, "rayClusterSpec": None},
    ],
    ids=["mode", "cluster-source"],
)
def test_a_mode_or_cluster_edit_while_running_is_refused_and_keeps_every_child(
    client: HookClient, clock: list[datetime], edit: dict[str, Any]
) -> None:
    loop = http_loop(client, clock)
    loop.related_clusters["mine"] = user_cluster("mine")
    name = running(loop)
    children = copy.deepcopy(loop.children)
    loop.edit(**edit)
    step = loop.step()
    assert step.created == step.deleted == []
    assert loop.children == children
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
    assert "cannot change until it ends" in loop.status["message"]
    assert loop.status["rayClusterName"] == name


def test_leaving_a_users_cluster_mid_run_is_refused(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = http_loop(client, clock, clusterSelector={"ray.io/cluster": "mine"})
    loop.related_clusters["mine"] = user_cluster("mine")
    for _ in range(3):
        loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    spec = copy.deepcopy(rayjob_object()["spec"]["rayClusterSpec"])
    loop.edit(clusterSelector=None, rayClusterSpec=spec)
    step = loop.step()
    assert step.created == [] and loop.clusters(live=False) == []
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"


def test_a_long_message_from_the_submitter_is_capped_in_status(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = http_loop(client, clock)
    running(loop)
    loop.submitter_exits(64, "FAILED", "Traceback (most recent call last):\n" + "x" * 5000)
    loop.step()
    message = loop.status["message"]
    assert message.startswith("Traceback (most recent call last):")
    assert len(message) <= 1024


def test_submitter_pods_of_an_earlier_job_of_the_same_name_are_not_read(
    client: HookClient, clock: list[datetime]
) -> None:
    """The Job's own pod is gone (evicted, cleaned up) while a pod of an earlier Job of the
    same name still lingers with its report: the current Job's result is not taken from it."""
    loop = http_loop(client, clock)
    running(loop)
    terminated = {
        "exitCode": 64,
        "message": '{"status": "FAILED", "message": "an earlier attempt"}',
        "finishedAt": "2026-01-01T00:00:01Z",
    }
    loop.related_pods["job-old"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "job-old",
            "namespace": "default",
            "labels": {
                "ray.io/originated-from-cr-name": "job",
                "ray.io/originated-from-crd": "RayJob",
                "batch.kubernetes.io/job-name": "job",
                "batch.kubernetes.io/controller-uid": "an-earlier-job",
                "controller-uid": "an-earlier-job",
            },
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "ray-job-submitter", "state": {"terminated": terminated}}
            ],
        },
    }
    complete = {"type": "Complete", "status": "True", "lastTransitionTime": loop.stamp()}
    loop.child(JOB, "job")["status"] = {"succeeded": 1, "conditions": [complete]}
    loop.step()
    status = loop.status
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED")
    assert status.get("message") != "an earlier attempt"


def test_deleting_a_selector_rayjob_with_an_invalid_spec_still_stops_its_ray_job(
    clock: list[datetime],
) -> None:
    """Its spec no longer parses, but its status says a Ray job runs on the user's cluster:
    letting go at once would leave it running there (here by a stop Job: dashboards off)."""
    settings = Settings(events="off", dashboard=False)
    client = HookClient(create_app(settings, clock=lambda: clock[0]))
    loop = http_loop(client, clock, clusterSelector={"ray.io/cluster": "mine"})
    loop.related_clusters["mine"] = user_cluster("mine")
    loop.user_head("mine", "10.1.2.3")
    for _ in range(3):
        loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    loop.edit(activeDeadlineSeconds=-5)
    request = loop.request()
    request["finalizing"] = True
    request["parent"]["metadata"]["deletionTimestamp"] = loop.stamp()
    clock[0] = loop.now
    response = client.post(
        "/rayjob/finalize", content=json.dumps(request).encode(), headers=HEADERS
    )
    answer = response.json()
    assert answer["finalized"] is False
    [stopper] = [c for c in answer["children"] if c["metadata"]["name"] == "job-stop"]
    env = {
        e["name"]: e.get("value")
        for e in stopper["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["RAY_JOB_SUBMISSION_ID"] == loop.status["jobId"]
