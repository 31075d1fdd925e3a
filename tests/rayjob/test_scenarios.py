"""RayJob scenarios through an in-memory Metacontroller: what a user sees, sync after sync."""

from __future__ import annotations

import copy
from datetime import timedelta

import orjson
import pytest

from app.hooks.request import decode
from app.rayjob.customize import customize as rayjob_customize
from app.rayjob.finalize import STOP_TIMEOUT_SECONDS
from app.rayjob.finalize import finalize as rayjob_finalize
from app.rayjob.kinds import JOB, RAYCLUSTER, SERVICE
from tests.rayjob.loop import OPTIONS, JobLoop, rayjob_object, user_cluster


def running(loop: JobLoop) -> str:
    """Sync until the cluster exists, make it ready, sync until Running; the cluster's name."""
    for _ in range(6):
        loop.step()
        if loop.status.get("rayClusterName") in loop.clusters():
            break
    loop.cluster_ready()
    loop.until("Running")
    return str(loop.status["rayClusterName"])


def test_success_reports_succeeded_and_keeps_cluster_and_submitter() -> None:
    loop = JobLoop(rayjob_object())
    first = loop.step()
    assert first.created == []  # two-phase: the name is written before the cluster exists
    name = loop.status["rayClusterName"]
    assert loop.status["jobDeploymentStatus"] == "Initializing"
    assert loop.step().created == [f"RayCluster/{name}", "Service/job-head-svc"]
    cluster = loop.child(RAYCLUSTER, name)
    assert cluster["metadata"]["labels"]["ray.io/originated-from-cr-name"] == "job"
    assert cluster["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "user-queue"
    loop.cluster_ready()
    step = loop.until("Running")
    assert step.created == ["Job/job"]  # the head Service came with the cluster
    assert loop.status["dashboardURL"] == f"{name}-head-svc.default.svc.cluster.local:8265"
    loop.submitter_runs()
    loop.step()
    assert loop.status["jobStatus"] == "RUNNING"
    loop.submitter_exits(0, "SUCCEEDED", "all good")
    loop.step()
    status = loop.status
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED")
    assert (status["succeeded"], status["failed"], status["message"]) == (1, 0, "all good")
    assert "endTime" in status and "rayJobInfo" in status
    for _ in range(3):  # nothing more happens: no shutdown was asked for
        step = loop.step()
        assert step.created == step.deleted == []
    assert loop.clusters() == [name] and loop.jobs() == ["job"]


def test_submitter_job_is_built_to_make_exit_codes_authoritative() -> None:
    loop = JobLoop(rayjob_object(entrypoint="echo a; python x.py 'b c'"))
    running(loop)
    job = loop.child(JOB, "job")
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["onExitCodes"]["values"] == [64, 65, 66]
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-c", OPTIONS.submitter_script]
    env = {e["name"]: e["value"] for e in container["env"]}
    # The entrypoint goes to Ray as it is; no shell of the submitter ever sees it.
    assert env["METARAY_ENTRYPOINT"] == "echo a; python x.py 'b c'"
    assert env["RAY_JOB_SUBMISSION_ID"] == loop.status["jobId"]
    # The RayJob's own head Service, as observed: not a name the user chose, not the status.
    assert env["RAY_DASHBOARD_ADDRESS"] == "job-head-svc.default.svc.cluster.local:8265"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_application_failure_fails_at_once_without_submitter_retries() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.submitter_exits(64, "FAILED", "Job entrypoint command failed with exit code 3")
    loop.step()
    status = loop.status
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Failed", "FAILED")
    assert status["reason"] == "AppFailed"
    assert status["failed"] == 1
    assert "exit code 3" in status["message"]


def test_stopped_ray_job_completes() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.submitter_exits(65, "STOPPED", "stopped by the user")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["jobStatus"]) == ("Complete", "STOPPED")


def test_vanished_ray_job_fails_with_kuberays_message() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.submitter_exits(66)
    loop.step()
    assert loop.status["reason"] == "AppFailed"
    assert loop.status["message"] == "Submitter completed but Ray job not found in RayCluster."


def test_submitter_crash_then_success_on_its_retry() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.submitter_exits(1, attempt=0)  # the Job's backoffLimit retries it
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    loop.submitter_exits(0, "SUCCEEDED", "", attempt=1)
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Complete"


def test_submitter_giving_up_is_a_submission_failure() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    loop.submitter_gives_up()
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["reason"]) == (
        "Failed",
        "SubmissionFailed",
    )
    assert "backoff limit" in loop.status["message"]


def test_retry_gets_a_fresh_cluster_only_after_the_old_one_is_gone() -> None:
    loop = JobLoop(rayjob_object(backoffLimit=1))
    first = running(loop)
    loop.held.add(first)  # its pods take a while to terminate
    loop.submitter_exits(64, "FAILED", "boom")
    step = loop.step()
    assert loop.status["jobDeploymentStatus"] == "Retrying"
    assert loop.status["failed"] == 1
    assert step.deleted == []  # two-phase: the decision is written first
    step = loop.step()
    assert sorted(step.deleted) == sorted([first, "job"])
    for _ in range(3):
        step = loop.step()
        assert loop.status["jobDeploymentStatus"] == "Retrying"
        assert step.created == []  # no second cluster while the first still terminates
    loop.held.clear()
    second = running(loop)
    assert second != first
    assert loop.status["failed"] == 1
    loop.submitter_exits(64, "FAILED", "boom again")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["failed"]) == ("Failed", 2)


def test_job_service_follows_the_cluster_across_retries() -> None:
    loop = JobLoop(rayjob_object(backoffLimit=1))
    first = running(loop)
    assert loop.child(SERVICE, "job-head-svc")["spec"]["selector"]["ray.io/cluster"] == first
    loop.submitter_exits(64, "FAILED")
    loop.step()
    loop.step()
    second = running(loop)
    assert loop.child(SERVICE, "job-head-svc")["spec"]["selector"]["ray.io/cluster"] == second


def test_active_deadline_fails_without_retry() -> None:
    loop = JobLoop(rayjob_object(activeDeadlineSeconds=30, backoffLimit=3))
    running(loop)
    step = loop.step()
    assert 0 < step.answer["resyncAfterSeconds"] <= 32
    loop.now += timedelta(seconds=30)
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["reason"]) == (
        "Failed",
        "DeadlineExceeded",
    )
    assert loop.status["failed"] == 1  # DeadlineExceeded is not retried


def test_pre_running_deadline_while_the_cluster_never_gets_ready() -> None:
    loop = JobLoop(rayjob_object(preRunningDeadlineSeconds=10))
    loop.step()
    loop.step()
    loop.now += timedelta(seconds=10)
    loop.step()
    assert loop.status["reason"] == "PreRunningDeadlineExceeded"


def test_suspend_deletes_everything_before_reporting_suspended_then_resume() -> None:
    loop = JobLoop(rayjob_object(shutdownAfterJobFinishes=True))
    first = running(loop)
    loop.held.add(first)
    loop.edit(suspend=True)
    assert loop.step().deleted == []  # two-phase: Suspending is written first
    assert loop.status["jobDeploymentStatus"] == "Suspending"
    step = loop.step()
    assert sorted(step.deleted) == sorted([first, "job"])
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Suspending"  # the cluster is still there
    loop.held.clear()
    loop.until("Suspended")
    assert loop.clusters(live=False) == [] and loop.jobs(live=False) == []
    assert "rayClusterName" not in loop.status and loop.status["jobStatus"] == ""
    loop.edit(suspend=False)
    second = running(loop)
    assert second != first


def test_created_suspended_makes_nothing_until_admitted() -> None:
    loop = JobLoop(rayjob_object(suspend=True, shutdownAfterJobFinishes=True))
    for _ in range(3):
        assert loop.step().created == []
    assert loop.status["jobDeploymentStatus"] == "Suspended"
    loop.edit(suspend=False)
    running(loop)
    assert len(loop.clusters()) == 1


def test_shutdown_after_ttl_deletes_the_cluster_and_keeps_the_submitter() -> None:
    loop = JobLoop(rayjob_object(shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=10))
    name = running(loop)
    loop.submitter_exits(0, "SUCCEEDED")
    step = loop.step()
    assert step.answer["resyncAfterSeconds"] == 12
    step = loop.step()
    assert step.deleted == [] and loop.clusters() == [name]
    loop.now += timedelta(seconds=9)
    step = loop.step()
    assert step.deleted == [name]
    loop.step()
    assert loop.clusters(live=False) == [] and loop.jobs() == ["job"]
    assert loop.status["jobDeploymentStatus"] == "Complete"


def test_deletion_rules_suspend_workers_then_delete_cluster_then_ask_to_delete_the_rayjob() -> None:
    rules = [
        {"policy": "DeleteWorkers", "condition": {"jobStatus": "FAILED", "ttlSeconds": 10}},
        {"policy": "DeleteCluster", "condition": {"jobStatus": "FAILED", "ttlSeconds": 20}},
        {"policy": "DeleteSelf", "condition": {"jobStatus": "FAILED", "ttlSeconds": 30}},
    ]
    loop = JobLoop(rayjob_object(deletionStrategy={"deletionRules": rules}))
    name = running(loop)
    loop.submitter_exits(64, "FAILED")
    loop.step()
    loop.now += timedelta(seconds=10)
    loop.step()
    groups = loop.child(RAYCLUSTER, name)["spec"]["workerGroupSpecs"]
    assert all(group["suspend"] is True for group in groups)
    loop.now += timedelta(seconds=10)
    assert loop.step().deleted == [name]
    loop.now += timedelta(seconds=10)
    step = loop.step()
    assert step.desired.delete_parent is True
    # The shell's DELETE may fail: the RayJob asks for its own next look, so the retry does not
    # wait for Metacontroller's periodic resync (10 minutes).
    assert step.answer["resyncAfterSeconds"] == 32
    loop.now += timedelta(seconds=32)
    assert loop.step().desired.delete_parent is True


def test_cluster_selector_never_touches_the_users_cluster() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    loop.related_clusters["mine"] = user_cluster("mine")
    loop.user_head("mine", "10.1.2.3")
    for _ in range(3):
        loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert loop.status["rayClusterName"] == "mine"
    assert loop.status["dashboardURL"] == "mine-head-svc.default.svc.cluster.local:8265"
    # The submitter calls the user's head pod, never a Service named in the user's spec.
    env = loop.child(JOB, "job")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e.get("value") for e in env}["RAY_DASHBOARD_ADDRESS"] == "10.1.2.3:8265"
    assert loop.clusters(live=False) == []  # never a child
    assert SERVICE not in {k for k, _ in loop.children}  # no Service of its own either
    loop.submitter_exits(64, "FAILED")
    loop.step()
    for _ in range(3):
        answer = loop.step().answer
        assert all(c["kind"] != "RayCluster" for c in answer["children"])
    assert loop.status["jobDeploymentStatus"] == "Failed"


def test_cluster_selector_waits_for_a_missing_cluster_and_says_so() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "absent"}))
    loop.step()
    step = loop.step()
    assert loop.status["jobDeploymentStatus"] == "Initializing"
    assert "absent not found" in loop.status["message"]
    assert [e.reason for e in step.desired.events] == ["RayClusterNotFound"]


def test_sidecar_mode_puts_the_submitter_in_the_head_and_reads_its_exit_code() -> None:
    loop = JobLoop(rayjob_object(submissionMode="SidecarMode"))
    name = running(loop)
    assert loop.jobs() == []  # no submitter Job
    cluster = loop.child(RAYCLUSTER, name)
    head = cluster["spec"]["headGroupSpec"]["template"]
    sidecar = head["spec"]["containers"][-1]
    assert sidecar["name"] == "ray-job-submitter"
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["RAY_DASHBOARD_ADDRESS"] == "127.0.0.1:8265"
    assert head["metadata"]["labels"]["ray.io/originated-from-cr-name"] == "job"
    assert cluster["metadata"]["annotations"]["ray.io/disable-provisioned-head-restart"] == "true"
    loop.related_pods["head"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "head",
            "namespace": "default",
            "labels": {"ray.io/cluster": name, "ray.io/node-type": "head"},
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "ray-head", "state": {"running": {}}},
                {"name": "ray-job-submitter", "state": {"running": {}}},
            ],
        },
    }
    loop.step()
    assert loop.status["jobStatus"] == "RUNNING"
    submitter = loop.related_pods["head"]["status"]["containerStatuses"][1]
    submitter["state"] = {"terminated": {"exitCode": 64, "message": '{"status": "FAILED"}'}}
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["reason"]) == ("Failed", "AppFailed")


def test_stale_parent_status_replayed_never_creates_a_second_cluster() -> None:
    loop = JobLoop(rayjob_object(backoffLimit=2))
    first_request_parent = copy.deepcopy(loop.parent)
    name = running(loop)
    stale_parents = [copy.deepcopy(first_request_parent)]
    stale_parents += [copy.deepcopy(step.request["parent"]) for step in loop.history]
    for stale in stale_parents:
        request = loop.request(stale)
        _, answer = loop.decide(request)
        clusters = [c["metadata"]["name"] for c in answer["children"] if c["kind"] == "RayCluster"]
        assert clusters == [name]
        assert len([c for c in answer["children"] if c["kind"] == "Job"]) <= 1


def test_a_stale_status_of_an_earlier_attempt_changes_no_child_and_rolls_nothing_back() -> None:
    loop = JobLoop(rayjob_object(backoffLimit=2))
    running(loop)
    old = copy.deepcopy(loop.parent)
    loop.submitter_exits(64, "FAILED")
    for _ in range(3):
        loop.step()
    second = running(loop)
    newer = loop.status
    request = loop.request(old)
    _, answer = loop.decide(request)
    observed = sorted(
        (c["kind"], name) for group in request["children"].values() for name, c in group.items()
    )
    answered = sorted((c["kind"], f"default/{c['metadata']['name']}") for c in answer["children"])
    assert answered == observed  # nothing created, nothing deleted
    status = answer["status"]
    assert (status["failed"], status["rayClusterName"], status["jobId"]) == (
        1,
        second,
        newer["jobId"],
    )


def test_invalid_spec_keeps_every_child_and_says_why() -> None:
    loop = JobLoop(rayjob_object())
    name = running(loop)
    loop.edit(activeDeadlineSeconds=-5)
    step = loop.step()
    assert step.deleted == [] and step.created == []
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
    assert "spec.activeDeadlineSeconds: must be greater than 0" in loop.status["message"]
    assert loop.clusters() == [name] and loop.jobs() == ["job"]
    loop.edit(activeDeadlineSeconds=3600)  # fixed: carries on with the same cluster
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert loop.clusters() == [name]


@pytest.mark.parametrize("manager", ["kueue.x-k8s.io/multikueue", "someone-else"])
def test_managed_by_another_controller_changes_nothing(manager: str) -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    before = copy.deepcopy(loop.status)
    loop.edit(managedBy=manager)
    step = loop.step()
    assert step.created == step.deleted == []
    assert loop.status == before


def test_customize_asks_for_submitter_pods_and_the_selected_cluster() -> None:
    parent = rayjob_object(clusterSelector={"ray.io/cluster": "mine"})
    rules = rayjob_customize(parent)["relatedResources"]
    assert rules == [
        {
            "apiVersion": "v1",
            "resource": "pods",
            "labelSelector": {
                "matchLabels": {
                    "ray.io/originated-from-cr-name": "job",
                    "ray.io/originated-from-crd": "RayJob",
                }
            },
            "namespace": "default",
        },
        {
            "apiVersion": "ray.io/v1",
            "resource": "rayclusters",
            "names": ["mine"],
            "namespace": "default",
        },
        {
            "apiVersion": "v1",
            "resource": "pods",
            "labelSelector": {
                "matchLabels": {"ray.io/cluster": "mine", "ray.io/node-type": "head"}
            },
            "namespace": "default",
        },
    ]


def test_deleting_a_selector_rayjob_stops_its_ray_job_within_a_bound() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    loop.related_clusters["mine"] = user_cluster("mine")
    loop.user_head("mine", "10.1.2.3")
    for _ in range(3):
        loop.step()
    parent = copy.deepcopy(loop.parent)
    parent["metadata"]["deletionTimestamp"] = loop.stamp()
    request = decode(orjson.dumps(loop.request(parent)), related=True, raycluster=False)
    answer = rayjob_finalize(parent, request.observed, request.related, loop.now, OPTIONS)
    stopper = [c for c in answer.children if c["metadata"]["name"] == "job-stop"]
    assert answer.finalized is False and len(stopper) == 1
    env = {
        e["name"]: e["value"]
        for e in stopper[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["METARAY_SUBMITTER_MODE"] == "stop"
    later = loop.now + timedelta(seconds=STOP_TIMEOUT_SECONDS)
    assert rayjob_finalize(parent, request.observed, request.related, later, OPTIONS).finalized


def test_deleting_a_rayjob_with_its_own_cluster_lets_go_at_once() -> None:
    loop = JobLoop(rayjob_object())
    running(loop)
    request = decode(orjson.dumps(loop.request()), related=True, raycluster=False)
    answer = rayjob_finalize(loop.parent, request.observed, request.related, loop.now, OPTIONS)
    assert answer.finalized is True
    assert len(answer.children) == len(loop.children)  # nothing dropped early
