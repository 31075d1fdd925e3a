"""KubeRay's RayJob rules: each bad spec is refused with a message naming the field, and a
refused spec never costs a child."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from app.raycluster.problems import InvalidSpec
from app.rayjob.parse import parse_rayjob
from tests.rayjob.loop import JobLoop, rayjob_object

RULE = {"policy": "DeleteCluster", "condition": {"jobStatus": "SUCCEEDED"}}
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no cluster", {"rayClusterSpec": None}, "spec: must set one of rayClusterSpec"),
    (
        "both",
        {"clusterSelector": {"ray.io/cluster": "x"}, "rayClusterSpec": {}},
        "spec.clusterSelector",
    ),
    ("suspend without shutdown", {"suspend": True}, "spec.suspend: requires"),
    ("ttl without shutdown", {"ttlSecondsAfterFinished": 10}, "spec.ttlSecondsAfterFinished"),
    ("negative deadline", {"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds"),
    ("pre-running deadline", {"preRunningDeadlineSeconds": -1}, "spec.preRunningDeadlineSeconds"),
    ("negative backoff", {"backoffLimit": -1}, "spec.backoffLimit: must not be negative"),
    ("unknown mode", {"submissionMode": "Batch"}, "spec.submissionMode: must be one of"),
    ("http mode, no dashboard", {"submissionMode": "HTTPMode"}, "METARAY_DASHBOARD=off"),
    ("interactive, no dashboard", {"submissionMode": "InteractiveMode"}, "needs the Ray dashboard"),
    (
        "interactive retries",
        {"submissionMode": "InteractiveMode", "backoffLimit": 1},
        "spec.backoffLimit: must be 0 in InteractiveMode",
    ),
    ("no entrypoint", {"entrypoint": "  "}, "spec.entrypoint: is required"),
    ("bad yaml", {"runtimeEnvYAML": "pip: [a"}, "spec.runtimeEnvYAML: cannot be parsed"),
    ("yaml list", {"runtimeEnvYAML": "- a"}, "spec.runtimeEnvYAML: must describe a mapping"),
    ("both runtime envs", {"runtimeEnvYAML": "a: 1", "runtimeEnv": "e30="}, "spec.runtimeEnv"),
    ("bad base64", {"runtimeEnv": "%%%"}, "spec.runtimeEnv: cannot be parsed"),
    ("resources not json", {"entrypointResources": "{x"}, "spec.entrypointResources"),
    ("resources not numbers", {"entrypointResources": '{"a": "b"}'}, "spec.entrypointResources"),
    ("negative cpus", {"entrypointNumCpus": -1}, "spec.entrypointNumCpus"),
    ("unknown field", {"entryPoint": "x"}, "spec.entryPoint: unknown field"),
    ("managedBy", {"managedBy": "me"}, None),  # another controller's: nothing is done at all
    (
        "sidecar with template",
        {"submissionMode": "SidecarMode", "submitterPodTemplate": {"spec": {"containers": [{}]}}},
        "spec.submitterPodTemplate: cannot be used with SidecarMode",
    ),
    (
        "sidecar head restarts",
        {"submissionMode": "SidecarMode", "rayClusterSpec": "restartPolicy: Always"},
        "restartPolicy: must be Never",
    ),
    ("bad cluster", {"rayClusterSpec": "no head"}, "spec.rayClusterSpec.headGroupSpec"),
    (
        "template spec not an object",
        {"submitterPodTemplate": {"spec": 3}, "entrypoint": ""},
        "spec.submitterPodTemplate.spec: must be an object",
    ),
    (
        "template containers not a list",
        {"submitterPodTemplate": {"spec": {"containers": 3}}},
        "spec.submitterPodTemplate.spec.containers",
    ),
    (
        "selector with backoff",
        {"clusterSelector": {"ray.io/cluster": "x"}, "backoffLimit": 1},
        "spec.backoffLimit: must be 0 with spec.clusterSelector",
    ),
    (
        "selector with suspend",
        {
            "clusterSelector": {"ray.io/cluster": "x"},
            "suspend": True,
            "shutdownAfterJobFinishes": True,
        },
        "spec.suspend: cannot be used with spec.clusterSelector",
    ),
    ("selector without name", {"clusterSelector": {"app": "x"}}, "must name the RayCluster"),
    (
        "rules with shutdown",
        {"deletionStrategy": {"deletionRules": [RULE]}, "shutdownAfterJobFinishes": True},
        "cannot be combined with spec.shutdownAfterJobFinishes",
    ),
    (
        "legacy half",
        {"deletionStrategy": {"onSuccess": {"policy": "DeleteCluster"}}},
        "must set both onSuccess and onFailure",
    ),
    (
        "legacy and rules",
        {"deletionStrategy": {"onSuccess": {"policy": "DeleteCluster"}, "deletionRules": [RULE]}},
        "cannot combine onSuccess/onFailure with deletionRules",
    ),
    (
        "duplicate rule",
        {"deletionStrategy": {"deletionRules": [RULE, RULE]}},
        "repeats the rule DeleteCluster on SUCCEEDED",
    ),
    (
        "rule order",
        {
            "deletionStrategy": {
                "deletionRules": [
                    {
                        "policy": "DeleteCluster",
                        "condition": {"jobStatus": "FAILED", "ttlSeconds": 5},
                    },
                    {
                        "policy": "DeleteWorkers",
                        "condition": {"jobStatus": "FAILED", "ttlSeconds": 9},
                    },
                ]
            }
        },
        "DeleteWorkers (ttlSeconds 9) must not come after DeleteCluster (ttlSeconds 5)",
    ),
    (
        "condition with both",
        {
            "deletionStrategy": {
                "deletionRules": [
                    {
                        "policy": "DeleteCluster",
                        "condition": {"jobStatus": "FAILED", "jobDeploymentStatus": "Failed"},
                    }
                ]
            }
        },
        "must set exactly one of jobStatus and jobDeploymentStatus",
    ),
    (
        "delete cluster with selector",
        {
            "clusterSelector": {"ray.io/cluster": "x"},
            "deletionStrategy": {"deletionRules": [RULE]},
        },
        "DeleteCluster cannot be used with spec.clusterSelector",
    ),
]


def spec_with(changes: dict[str, Any]) -> dict[str, Any]:
    parent = rayjob_object()
    spec = parent["spec"]
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        elif key == "rayClusterSpec" and value == "restartPolicy: Always":
            spec[key]["headGroupSpec"]["template"]["spec"]["restartPolicy"] = "Always"
        elif key == "rayClusterSpec" and value == "no head":
            spec[key].pop("headGroupSpec")
        else:
            spec[key] = value
    if "clusterSelector" in changes and "rayClusterSpec" not in changes:
        spec.pop("rayClusterSpec")
    return parent


REFUSED = [case for case in INVALID if case[2] is not None]


@pytest.mark.parametrize(("case", "changes", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_bad_spec_is_refused_with_the_field_named(
    case: str, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse_rayjob(spec_with(changes), dashboard=False)  # as the loop runs: dashboards off
    assert message in str(raised.value)


@pytest.mark.parametrize(("case", "changes", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_a_bad_edit_of_a_running_rayjob_costs_no_child(
    case: str, changes: dict[str, Any], message: str | None
) -> None:
    loop = JobLoop(rayjob_object())
    for _ in range(2):
        loop.step()
    loop.cluster_ready()
    loop.until("Running")
    before = copy.deepcopy(loop.children)
    bad = spec_with(changes)
    loop.parent = {**bad, "status": loop.status, "metadata": {**bad["metadata"], "generation": 2}}
    step = loop.step()
    assert step.deleted == [] and step.created == []
    assert set(loop.children) == set(before)
    if message is not None:
        assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
        assert message in loop.status["message"]


@pytest.mark.parametrize(
    ("name", "ok"), [("a" * 47, True), ("a" * 48, False), ("Job", False), ("9job", False)]
)
def test_the_name_is_a_dns_1035_label_of_at_most_47_characters(name: str, ok: bool) -> None:
    parent = rayjob_object(name=name)
    if ok:
        assert parse_rayjob(parent).name == name
    else:
        with pytest.raises(InvalidSpec, match=r"metadata\.name"):
            parse_rayjob(parent)


def test_runtime_env_yaml_and_v1alpha1_base64_become_the_same_json() -> None:
    env = {"pip": ["requests==2.26.0"], "env_vars": {"counter_name": "test_counter"}}
    from_yaml = parse_rayjob(rayjob_object(runtimeEnvYAML=json.dumps(env)))
    encoded = base64.b64encode(json.dumps(env).encode()).decode()
    old = rayjob_object(runtimeEnv=encoded)
    old["apiVersion"] = "ray.io/v1alpha1"
    assert from_yaml.runtime_env == parse_rayjob(old).runtime_env == env


def test_defaults_are_kuberays() -> None:
    job = parse_rayjob(rayjob_object())
    assert job.mode == "K8sJobMode"
    assert job.submitter_backoff_limit == 2
    assert job.spec.backoffLimit == 0 and job.spec.ttlSecondsAfterFinished == 0
