"""RayJobs on clusters with token auth: every client metaray starts holds the cluster's token,
by reference to its Secret, never by value."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from app.hooks.request import decode
from app.raycluster.problems import InvalidSpec
from app.rayjob.finalize import finalize as rayjob_finalize
from app.rayjob.kinds import JOB, RAYCLUSTER
from app.rayjob.parse import parse_rayjob
from tests.loop import POD, Loop, cluster_spec, group, raycluster
from tests.rayjob.loop import OPTIONS, JobLoop, rayjob_object, user_cluster

AUTH = {"mode": "token"}


def secure_spec(**auth: Any) -> dict[str, Any]:
    return {**cluster_spec(group()), "authOptions": {**AUTH, **auth}}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def running(loop: JobLoop) -> str:
    for _ in range(4):
        loop.step()
        if loop.status.get("rayClusterName") in loop.clusters():
            break
    loop.cluster_ready()
    loop.until("Running")
    return str(loop.status["rayClusterName"])


def test_the_submitter_job_reads_the_clusters_token_secret() -> None:
    loop = JobLoop(rayjob_object(rayClusterSpec=secure_spec()))
    name = running(loop)
    container = loop.child(JOB, "job")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN"] == {"secretKeyRef": {"name": name, "key": "auth_token"}}


def test_the_users_own_secret_is_named() -> None:
    loop = JobLoop(rayjob_object(rayClusterSpec=secure_spec(secretName="team-token")))
    running(loop)
    container = loop.child(JOB, "job")["spec"]["template"]["spec"]["containers"][0]
    token = env_of(container)["RAY_AUTH_TOKEN"]
    assert token == {"secretKeyRef": {"name": "team-token", "key": "auth_token"}}


def test_a_selected_cluster_with_token_auth_gives_its_token_to_the_submitter() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    mine = user_cluster("mine")
    mine["spec"]["authOptions"] = AUTH
    loop.related_clusters["mine"] = mine
    loop.user_head("mine")
    for _ in range(3):
        loop.step()
    container = loop.child(JOB, "job")["spec"]["template"]["spec"]["containers"][0]
    token = env_of(container)["RAY_AUTH_TOKEN"]
    assert token == {"secretKeyRef": {"name": "mine", "key": "auth_token"}}
    parent = copy.deepcopy(loop.parent)
    parent["metadata"]["deletionTimestamp"] = loop.stamp()
    request = decode(orjson.dumps(loop.request(parent)), related=True, raycluster=False)
    answer = rayjob_finalize(parent, request.observed, request.related, loop.now, OPTIONS)
    [stopper] = [c for c in answer.children if c["metadata"]["name"] == "job-stop"]
    stop_env = env_of(stopper["spec"]["template"]["spec"]["containers"][0])
    assert stop_env["RAY_AUTH_TOKEN"] == token


def test_the_sidecar_submitter_gets_the_token_in_the_head_pod() -> None:
    """The RayJob answers a RayCluster with the submitter in its head template; the RayCluster
    core, building the head pod, wires it as it wires its own sidecars."""
    loop = JobLoop(rayjob_object(submissionMode="SidecarMode", rayClusterSpec=secure_spec()))
    name = running(loop)
    child = loop.child(RAYCLUSTER, name)
    cluster = Loop(raycluster(child["spec"], name=name, uid="uid-cluster"))
    cluster.converge()
    [head] = [
        obj
        for (kind, _), obj in cluster.children.items()
        if kind == POD and obj["metadata"]["labels"]["ray.io/node-type"] == "head"
    ]
    [sidecar] = [c for c in head["spec"]["containers"] if c["name"] == "ray-job-submitter"]
    token = env_of(sidecar)["RAY_AUTH_TOKEN"]
    assert token == {"secretKeyRef": {"name": name, "key": "auth_token"}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"rayClusterSpec": {**secure_spec(enableK8sTokenAuth=True), "rayVersion": "2.55.0"}},
            "K8s token auth mode is currently not supported for RayJob",
        ),
        (
            {"rayClusterSpec": secure_spec(), "submissionMode": "HTTPMode"},
            "token auth cannot be used with HTTPMode yet",
        ),
    ],
)
def test_what_a_rayjob_cannot_do_with_token_auth_is_refused(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSpec, match=message):
        parse_rayjob(rayjob_object(**spec))


def test_the_dashboard_of_a_token_auth_cluster_is_not_polled() -> None:
    loop = JobLoop(rayjob_object(rayClusterSpec=secure_spec()))
    running(loop)
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert loop.watched() is None
    plain = JobLoop(rayjob_object())
    running(plain)
    assert plain.watched() is not None
