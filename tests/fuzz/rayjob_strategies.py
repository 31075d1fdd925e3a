"""Generators of RayJob hook requests: valid RayJobs in every lifecycle state, with the children
and related objects Metacontroller would send, and hostile variants of them.

- ``rayjob_worlds``: a valid RayJob (its own cluster from ``tests.loop.cluster_spec`` or a
  user's cluster by ``clusterSelector``), a previous status in any state (or none), observed
  RayClusters, submitter and stop Jobs, Services and children of other kinds as Metacontroller
  sends them (controller-uid label, last-applied annotation, server-set fields, now and then a
  broken last-applied or a deletionTimestamp), and related submitter pods, head pods and the
  user's RayCluster. ``damage`` adds random mutations anywhere, a third of the time.
- ``corrupted_rayjobs``: a valid world with one spec or status path corrupted.
- ``invalid_rayjobs``: a valid world made invalid by one known change, with the field the
  answer's message must name.
- ``customize_bodies``: customize requests, valid and hostile.

``NOW`` is the shell's clock for every generated request; statuses are stamped around it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from app.hooks.request import LAST_APPLIED
from app.rayjob.dashboard import DashboardView, JobInfo
from app.rayjob.names import cluster_name, ray_job_id
from tests.fuzz.strategies import (
    BREAKERS,
    HOT_KEYS,
    JSON_VALUES,
    SPECIAL_TEXT,
    TEXT,
    _last_applied,
    mutations,
    one_in,
    paths,
)
from tests.loop import cluster_spec, container, group

RAYCLUSTER = "RayCluster.ray.io/v1"
JOB = "Job.batch/v1"
SERVICE = "Service.v1"
POD = "Pod.v1"
CONFIG_MAP = "ConfigMap.v1"
KUBERAY = "ray.io/kuberay-operator"
MULTIKUEUE = "kueue.x-k8s.io/multikueue"
IMAGE = "rayproject/ray:2.52.0"
SUBMITTER = "ray-job-submitter"  # the submitter container's name (written out, not imported)
USER_CLUSTER = "user-cluster"
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
STATES = [
    "",
    "Initializing",
    "Running",
    "Complete",
    "Failed",
    "Retrying",
    "Suspending",
    "Suspended",
    "ValidationFailed",
    "Waiting",
    "New",
]
JOB_STATUSES = ["", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]
RAYJOB_KEYS = frozenset(
    {
        "activeDeadlineSeconds",
        "backoffLimit",
        "clusterSelector",
        "condition",
        "deletionRules",
        "deletionStrategy",
        "entrypoint",
        "entrypointNumCpus",
        "entrypointResources",
        "jobDeploymentStatus",
        "jobId",
        "jobStatus",
        "managedBy",
        "onFailure",
        "onSuccess",
        "policy",
        "preRunningDeadlineSeconds",
        "rayClusterName",
        "rayClusterSpec",
        "runtimeEnvYAML",
        "shutdownAfterJobFinishes",
        "startTime",
        "endTime",
        "failed",
        "submissionMode",
        "submitterConfig",
        "submitterPodTemplate",
        "suspend",
        "ttlSeconds",
        "ttlSecondsAfterFinished",
    }
)
NAMES = st.sampled_from(["demo", "rayjob-sample", "a", "j-1", "x" * 47])
NAMESPACES = st.sampled_from(["default", "ml"])
UIDS = st.sampled_from(["0f0f0f0f-1111-2222-3333-444444444444", "e3e70682-c209-4cac", ""])
# Times around NOW, and some that are not times at all.
OFFSETS = st.sampled_from([0, 1, 30, 59, 60, 61, 3600, 86400])
ODD_TIMES = st.sampled_from(
    [
        "",
        "yesterday",
        "2026-01-01",
        "2026-01-01T12:00:00+02:00",
        "2026-01-01T11:59:59.5Z",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T25:00:00Z",
    ]
)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rayjob(
    spec: dict[str, Any],
    name: str = "demo",
    namespace: str = "default",
    uid: str = "0f0f0f0f-1111-2222-3333-444444444444",
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    parent: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": generation,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
    }
    if status is not None:
        parent["status"] = status
    return parent


def request(
    parent: dict[str, Any],
    children: dict[str, dict[str, Any]] | None = None,
    related: dict[str, dict[str, Any]] | None = None,
    finalizing: bool = False,
) -> dict[str, Any]:
    return {
        "controller": {
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "metaray-rayjob"},
        },
        "parent": parent,
        "children": children if children is not None else {},
        "related": related if related is not None else {},
        "finalizing": finalizing,
    }


# -- specs ----------------------------------------------------------------------------------- ----
@st.composite
def deletion_strategies(draw: st.DrawFn, shutdown: bool, selector: bool, autoscaling: bool) -> Any:
    """None, the legacy onSuccess/onFailure form, or deletion rules: always one KubeRay accepts."""
    allowed = ["DeleteSelf"] if selector else ["DeleteCluster", "DeleteSelf"]
    allowed += [] if selector or autoscaling else ["DeleteWorkers"]
    allowed += [] if shutdown else ["DeleteNone"]
    form = draw(st.sampled_from(["none", "none", "legacy", "rules"]))
    if form == "legacy":
        return {
            "onSuccess": {"policy": draw(st.sampled_from(allowed))},
            "onFailure": {"policy": draw(st.sampled_from(allowed))},
        }
    if form == "rules" and not shutdown:
        rules = []
        ttls = {"DeleteWorkers": 0, "DeleteCluster": 0, "DeleteSelf": 0}
        for when in draw(st.lists(st.sampled_from(["SUCCEEDED", "FAILED", "Failed"]), unique=True)):
            chosen = draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=3, unique=True))
            ttl = 0
            for policy in ("DeleteWorkers", "DeleteCluster", "DeleteSelf", "DeleteNone"):
                if policy not in chosen:
                    continue
                ttl += draw(st.sampled_from([0, 0, 30, 3600]))
                ttls[policy] = ttl
                key = "jobDeploymentStatus" if when == "Failed" else "jobStatus"
                rules.append({"policy": policy, "condition": {key: when, "ttlSeconds": ttl}})
        return {"deletionRules": rules} if rules else None
    return None


@st.composite
def rayjob_specs(
    draw: st.DrawFn, selector: bool | None = None, dashboard: bool = False
) -> dict[str, Any]:
    """A RayJob spec metaray accepts, using most of what it understands; with ``dashboard``
    (metaray reads Ray dashboards) HTTPMode and InteractiveMode too."""
    if selector is None:
        selector = one_in(draw, 5)
    mode = "K8sJobMode" if selector or draw(st.integers(0, 3)) else "SidecarMode"
    if dashboard and draw(st.booleans()):
        mode = draw(st.sampled_from(["HTTPMode", "InteractiveMode"]))
    spec: dict[str, Any] = {"entrypoint": draw(st.sampled_from(["python -c 'print(1)'", "echo"]))}
    autoscaling = False
    if selector:
        spec["clusterSelector"] = {"ray.io/cluster": USER_CLUSTER}
    else:
        groups = [group("workers", draw(st.integers(0, 2)), 0, 3)]
        if one_in(draw, 4):
            groups.append(group("small", 1, 1, 2))
        autoscaling = one_in(draw, 5)
        extra = {"enableInTreeAutoscaling": True} if autoscaling else {}
        spec["rayClusterSpec"] = cluster_spec(*groups, **extra)
        if mode == "SidecarMode" and draw(st.booleans()):
            head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
            head["restartPolicy"] = "Never"
    if mode != "K8sJobMode" or draw(st.booleans()):
        spec["submissionMode"] = mode
    shutdown = draw(st.booleans())
    if shutdown or draw(st.booleans()):
        spec["shutdownAfterJobFinishes"] = shutdown
    if shutdown and draw(st.booleans()):
        spec["ttlSecondsAfterFinished"] = draw(st.sampled_from([0, 10, 60, 3600]))
    strategy = draw(deletion_strategies(shutdown, selector, autoscaling))
    if strategy is not None:
        spec["deletionStrategy"] = strategy
    if shutdown and not selector and one_in(draw, 4):
        spec["suspend"] = True
    if not selector and mode != "InteractiveMode" and one_in(draw, 3):
        spec["backoffLimit"] = draw(st.integers(0, 2))
    for field in ("activeDeadlineSeconds", "preRunningDeadlineSeconds"):
        if one_in(draw, 5):
            spec[field] = draw(st.sampled_from([1, 60, 3600]))
    if one_in(draw, 6):
        spec["managedBy"] = KUBERAY
    if mode == "K8sJobMode" and one_in(draw, 6):
        command = ["ray", "job", "submit", "--", "echo"] if one_in(draw, 2) else None
        submitter = container(SUBMITTER, image=IMAGE)
        if command:
            submitter["command"] = command
        spec["submitterPodTemplate"] = {
            "spec": {"restartPolicy": "Never", "containers": [submitter]}
        }
        if one_in(draw, 2):
            spec["submitterConfig"] = {"backoffLimit": draw(st.integers(0, 3))}
    if one_in(draw, 5):
        spec["runtimeEnvYAML"] = "pip:\n  - humanize==4.9.0\nenv_vars:\n  A: b\n"
    if one_in(draw, 8):
        spec["entrypointResources"] = '{"custom": 1}'
    if one_in(draw, 8):
        spec["entrypointNumCpus"] = 0.5
    if one_in(draw, 8 if mode != "InteractiveMode" else 2):
        spec["jobId"] = "my-job-id"
    if one_in(draw, 8):
        spec["metadata"] = {"owner": "team-a"}
    return spec


# -- previous statuses ----------------------------------------------------------------------- ----
@st.composite
def times(draw: st.DrawFn) -> str:
    if one_in(draw, 12):
        return draw(ODD_TIMES)
    return stamp(NOW - timedelta(seconds=draw(OFFSETS)))


@st.composite
def previous_statuses(
    draw: st.DrawFn, name: str, uid: str, generation: int, spec: dict[str, Any]
) -> dict[str, Any] | None:
    """A status metaray (or KubeRay) could have written, in any state, or none at all."""
    if one_in(draw, 6):
        return None
    state = draw(st.sampled_from(STATES))
    failed = draw(st.sampled_from([0, 0, 1, 2]))
    selected = (spec.get("clusterSelector") or {}).get("ray.io/cluster")
    own = cluster_name(name, uid, generation, failed)
    status: dict[str, Any] = {"jobDeploymentStatus": state}
    if state in ("", "New") and draw(st.booleans()):
        del status["jobDeploymentStatus"]
    if failed or draw(st.booleans()):
        status["failed"] = failed
    if draw(st.booleans()):
        status["succeeded"] = draw(st.sampled_from([0, 1]))
    has_cluster = state in ("Initializing", "Running", "Complete", "Failed") or one_in(draw, 4)
    if has_cluster and not one_in(draw, 15):
        choices = [selected] if selected else [own, own, cluster_name(name, uid, generation, 0)]
        status["rayClusterName"] = draw(st.sampled_from([*choices, "other-abcde"]))
        status["jobId"] = ray_job_id(name, uid, generation, failed)
        status["startTime"] = draw(times())
        status["jobStatus"] = draw(st.sampled_from(JOB_STATUSES))
    if "rayClusterName" in status and draw(st.booleans()):
        status["dashboardURL"] = f"{status.get('rayClusterName', 'x')}-head-svc.default.svc:8265"
    if state in ("Complete", "Failed") and not one_in(draw, 6):
        status["endTime"] = draw(times())
        status["jobStatus"] = "SUCCEEDED" if state == "Complete" else "FAILED"
        if one_in(draw, 4):
            status["jobStatus"] = draw(st.sampled_from(JOB_STATUSES))
    if state == "Failed" or one_in(draw, 8):
        status["reason"] = draw(st.sampled_from(["AppFailed", "DeadlineExceeded", "x"]))
        status["message"] = draw(st.sampled_from(["", "boom", "Invalid RayJob spec: spec: x"]))
    if one_in(draw, 8):
        status["observedGeneration"] = generation
    if one_in(draw, 8):
        status["rayClusterStatus"] = {"state": "ready"}
    return status


STATUS_KEYS = [
    "jobDeploymentStatus",
    "jobStatus",
    "rayClusterName",
    "jobId",
    "startTime",
    "endTime",
    "failed",
    "succeeded",
    "dashboardURL",
    "reason",
    "message",
    "rayClusterStatus",
    "rayJobInfo",
    "observedGeneration",
    "jobStatusCheckFailureStartTime",
]
STATUS_VALUES = st.one_of(BREAKERS, ODD_TIMES, st.sampled_from(STATES), st.sampled_from([2**64]))


@st.composite
def hostile_statuses(draw: st.DrawFn, status: dict[str, Any] | None) -> Any:
    """The status with one to three fields of the wrong type, missing, or out of range: the
    status subresource can be written by anyone (and KubeRay wrote it before metaray)."""
    if one_in(draw, 10):
        return draw(BREAKERS)
    changed = dict(status or {})
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(STATUS_KEYS))
        if draw(st.integers(0, 3)) == 0:
            changed.pop(key, None)
        else:
            changed[key] = copy.deepcopy(draw(STATUS_VALUES))
    return changed


# -- children as Metacontroller sends them ---------------------------------------------------- ---
def _server_side(obj: dict[str, Any], parent: dict[str, Any], serial: int) -> None:
    obj["metadata"] |= {
        "uid": f"child-uid-{serial}",
        "resourceVersion": str(1000 + serial),
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "ownerReferences": [
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayJob",
                "name": str(parent["metadata"]["name"]),
                "uid": str(parent["metadata"]["uid"]),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": [{"manager": "metacontroller", "operation": "Update"}],
    }


@st.composite
def as_observed(
    draw: st.DrawFn,
    applied: dict[str, Any],
    parent: dict[str, Any],
    serial: int,
    status: dict[str, Any] | None,
) -> dict[str, Any]:
    """The child as Metacontroller sends it, from the object metaray once asked for."""
    applied["metadata"].setdefault("labels", {})["controller-uid"] = str(parent["metadata"]["uid"])
    obj = copy.deepcopy(applied)
    text = draw(_last_applied(applied, draw(st.sampled_from(["other-x", "demo", USER_CLUSTER]))))
    annotations = obj["metadata"].setdefault("annotations", {})
    if text is not None:
        annotations[LAST_APPLIED] = text
    _server_side(obj, parent, serial)
    if one_in(draw, 8):
        obj["metadata"]["deletionTimestamp"] = stamp(NOW)
    if status is not None:
        obj["status"] = status
    return obj


def _cluster_object(name: str, parent: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    job = str(parent["metadata"]["name"])
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": name,
            "namespace": parent["metadata"]["namespace"],
            "labels": {
                "ray.io/originated-from-cr-name": job,
                "ray.io/originated-from-crd": "RayJob",
            },
        },
        "spec": copy.deepcopy(spec),
    }


def _job_object(name: str, parent: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": parent["metadata"]["namespace"]},
        "spec": {
            "backoffLimit": 2,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": SUBMITTER}]}},
        },
    }


def _service_object(name: str, parent: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": parent["metadata"]["namespace"]},
        "spec": {"clusterIP": "None", "ports": [{"name": "dashboard", "port": 8265}]},
    }


CLUSTER_STATES = st.sampled_from(["ready", "ready", "", "suspended", "failed", None])
JOB_CONDITIONS = st.sampled_from(
    [
        [],
        [],
        [{"type": "Complete", "status": "True"}],
        [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        [
            {
                "type": "Failed",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": "Container ray-job-submitter for pod default/x failed with exit "
                "code 64 matching FailJob rule at index 0",
            }
        ],
        [{"type": "Complete", "status": "False"}],
    ]
)


@st.composite
def _cluster_status(draw: st.DrawFn) -> dict[str, Any]:
    state = draw(CLUSTER_STATES)
    return {} if state is None else {"state": state}


@st.composite
def _termination(draw: st.DrawFn) -> dict[str, Any]:
    """A submitter container's state: running, or ended with one of the script's exit codes."""
    if one_in(draw, 3):
        return {"running": {"startedAt": stamp(NOW)}}
    code = draw(st.sampled_from([0, 1, 64, 65, 66, 137]))
    report = draw(
        st.sampled_from(
            [
                None,
                '{"status": "SUCCEEDED", "message": "ok"}',
                '{"status": "FAILED", "message": "bad", "startTime": "1", "endTime": "2"}',
                '{"status": "STOPPED"}',
                "not json",
                "[]",
                '{"status": 5, "message": []}',
                "[" * 2000 + "]" * 2000,  # within the kubelet's 4096 bytes
            ]
        )
    )
    terminated: dict[str, Any] = {"exitCode": code, "finishedAt": stamp(NOW)}
    if report is not None:
        terminated["message"] = report
    return {"terminated": terminated}


@st.composite
def _related_pod(
    draw: st.DrawFn, parent: dict[str, Any], name: str, labels: dict[str, str]
) -> dict[str, Any]:
    phase = draw(st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]))
    statuses = [{"name": SUBMITTER, "ready": phase == "Running", "state": draw(_termination())}]
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": parent["metadata"]["namespace"],
            "labels": labels,
            "uid": f"pod-{name}",
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": SUBMITTER}]},
        "status": {"phase": phase, "containerStatuses": statuses},
    }
    if one_in(draw, 8):
        pod["metadata"]["deletionTimestamp"] = stamp(NOW)
    return pod


def _key(namespace: str, name: str, v2: bool) -> str:
    return f"{namespace}/{name}" if v2 else name


@st.composite
def rayjob_worlds(
    draw: st.DrawFn,
    *,
    finalizing: bool = False,
    damage: bool = True,
    selector: bool | None = None,
    dashboard: bool = False,
) -> dict[str, Any]:
    """A whole RayJob sync (or finalize) request as a JSON-like dict."""
    name = draw(NAMES)
    namespace = draw(NAMESPACES)
    uid = draw(UIDS)
    generation = draw(st.sampled_from([1, 1, 2, 5]))
    spec = draw(rayjob_specs(selector, dashboard))
    status = draw(previous_statuses(name, uid, generation, spec))
    if damage and one_in(draw, 4):
        status = draw(hostile_statuses(status))
    parent = rayjob(spec, name, namespace, uid, generation, status)
    if draw(st.booleans()):
        parent["metadata"]["labels"] = {"team": "a"}
    if one_in(draw, 4):
        parent["metadata"]["annotations"] = {
            "note": "b",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        }
    if finalizing:
        parent["metadata"]["deletionTimestamp"] = draw(times())
    selected = (spec.get("clusterSelector") or {}).get("ray.io/cluster")
    known = status if isinstance(status, dict) else {}
    failed = known.get("failed") if isinstance(known.get("failed"), int) else 0
    v2 = draw(st.booleans())
    serial = 0
    children: dict[str, dict[str, Any]] = {}

    def add(kind: str, obj: dict[str, Any]) -> None:
        bucket = children.setdefault(kind, {})
        if not any(o["metadata"]["name"] == obj["metadata"]["name"] for o in bucket.values()):
            bucket[_key(namespace, obj["metadata"]["name"], v2)] = obj

    cluster_names = [
        known.get("rayClusterName"),
        cluster_name(name, uid, generation, failed),
        cluster_name(name, uid, generation, max(0, failed - 1)),
        "other-abcde",
        USER_CLUSTER,
    ]
    own_spec = spec.get("rayClusterSpec") or cluster_spec(group())
    for _ in range(draw(st.integers(0, 2))):
        chosen = draw(st.sampled_from(cluster_names))
        if not isinstance(chosen, str):
            continue
        serial += 1
        applied = _cluster_object(chosen, parent, own_spec)
        add(RAYCLUSTER, draw(as_observed(applied, parent, serial, draw(_cluster_status()))))
    for job_name in draw(st.lists(st.sampled_from([name, name, f"{name}-stop", "x-job"]))):
        serial += 1
        applied = _job_object(job_name, parent)
        conditions = copy.deepcopy(draw(JOB_CONDITIONS))  # mutations must not reach the pool
        add(JOB, draw(as_observed(applied, parent, serial, {"conditions": conditions})))
    for service in draw(st.lists(st.sampled_from([f"{name}-head-svc", "x-svc"]), max_size=2)):
        serial += 1
        applied = _service_object(service, parent)
        add(SERVICE, draw(as_observed(applied, parent, serial, {"loadBalancer": {}})))
    if one_in(draw, 6):
        serial += 1
        applied = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"a": "b"},
        }
        add(CONFIG_MAP, draw(as_observed(applied, parent, serial, None)))

    related: dict[str, dict[str, Any]] = {}
    pods: dict[str, Any] = {}
    for index in range(draw(st.integers(0, 2))):
        labels = {
            "batch.kubernetes.io/job-name": name,
            "ray.io/originated-from-cr-name": name,
            "ray.io/originated-from-crd": "RayJob",
        }
        pod = draw(_related_pod(parent, f"{name}-{index}x", labels))
        pods[_key(namespace, pod["metadata"]["name"], v2)] = pod
    if spec.get("submissionMode") == "SidecarMode" and draw(st.booleans()):
        running = known.get("rayClusterName")
        labels = {
            "ray.io/cluster": running if isinstance(running, str) else "x",
            "ray.io/node-type": draw(st.sampled_from(["head", "head", "worker"])),
            "ray.io/originated-from-cr-name": name,
        }
        pod = draw(_related_pod(parent, "head-pod", labels))
        pods[_key(namespace, "head-pod", v2)] = pod
    if pods:
        related[POD] = pods
    if selected and draw(st.integers(0, 3)):
        user = _cluster_object(selected, parent, cluster_spec(group()))
        user["metadata"]["labels"] = {"team": "b"}
        user["metadata"]["uid"] = "user-cluster-uid"
        user["status"] = draw(_cluster_status())
        related[RAYCLUSTER] = {_key(namespace, selected, v2): user}

    body = request(parent, children, related, finalizing)
    if damage and one_in(draw, 3):
        draw(mutations(body, list(paths(body)), most=2))
    return body


# -- the dashboard's answers (an input, like the clock) -----------------------------------------
JOB_INFO_STATUSES = st.sampled_from(
    ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED", "", "running", "UNKNOWN"]
)


@st.composite
def dashboard_views(draw: st.DrawFn, status: Any) -> DashboardView | None:
    """What the shell last heard from the dashboard: about this attempt's job (mostly) or
    another one, found or not, failing since some time, with odd times and messages."""
    if one_in(draw, 5):
        return None
    known = status if isinstance(status, dict) else {}
    url, job = known.get("dashboardURL"), known.get("jobId")
    if not isinstance(url, str) or one_in(draw, 6):
        url = "other-head-svc.default.svc.cluster.local:8265"
    if not isinstance(job, str) or one_in(draw, 6):
        job = "another-job"
    failing = draw(st.none() | times()) if one_in(draw, 3) else None
    found = draw(st.booleans()) if failing is None else False
    info = None
    if found:
        info = JobInfo(
            status=draw(JOB_INFO_STATUSES),
            message=draw(st.sampled_from(["", "done", "Job failed", "\x00"])),
            start_time=draw(st.none() | times()),
            end_time=draw(st.none() | times()),
        )
    error = draw(st.sampled_from(["", "timeout", "HTTP 503"])) if failing else ""
    return DashboardView(url, job, found, info, failing, error)


@st.composite
def dashboard_worlds(draw: st.DrawFn) -> tuple[dict[str, Any], DashboardView | None]:
    """A RayJob world for a metaray that reads dashboards, and the dashboard's last word."""
    body = draw(rayjob_worlds(damage=draw(st.booleans()), dashboard=True))
    parent = body["parent"]
    status = parent.get("status") if isinstance(parent, dict) else None
    return body, draw(dashboard_views(status))


# -- one path corrupted ------------------------------------------------------------------------ --
HOT = HOT_KEYS | RAYJOB_KEYS


@st.composite
def corrupted_rayjobs(draw: st.DrawFn, finalizing: bool = False) -> dict[str, Any]:
    """A valid world with one path of the spec, the status or the metadata corrupted."""
    body = draw(rayjob_worlds(finalizing=finalizing, damage=False))
    parent = body["parent"]
    everywhere = [("parent", "spec", *path) for path in paths(parent["spec"])]
    everywhere += [("parent", "status", *path) for path in paths(parent.get("status") or {})]
    everywhere += [("parent", "metadata", *path) for path in paths(parent["metadata"])]
    for kind, objects in body["related"].items():
        for key, obj in objects.items():
            everywhere += [("related", kind, key, *path) for path in paths(obj)]
    for kind, objects in body["children"].items():
        for key, obj in objects.items():
            for path in paths(obj):
                if path[0] in ("spec", "status"):
                    everywhere.append(("children", kind, key, *path))
    hot = [path for path in everywhere if path[-1] in HOT]
    draw(mutations(body, hot * 4 + everywhere, most=1, values=BREAKERS))
    return body


# -- invalid on purpose ------------------------------------------------------------------------ --
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(parent: dict[str, Any]) -> None:
        node = parent
        *head, last = path.split(".")
        for key in head:
            node = node.setdefault(key, {})
        node[last] = value

    return change


def _both_sources(parent: dict[str, Any]) -> None:
    parent["spec"]["clusterSelector"] = {"ray.io/cluster": USER_CLUSTER}
    parent["spec"].setdefault("rayClusterSpec", cluster_spec(group()))


def _no_source(parent: dict[str, Any]) -> None:
    parent["spec"].pop("clusterSelector", None)
    parent["spec"].pop("rayClusterSpec", None)


def _bad_group(parent: dict[str, Any]) -> None:
    spec = parent["spec"].get("rayClusterSpec")
    if spec is None:
        parent["spec"].pop("clusterSelector", None)
        parent["spec"]["rayClusterSpec"] = spec = cluster_spec(group())
    spec["workerGroupSpecs"][0] |= {"minReplicas": 5, "maxReplicas": 2}


def _no_entrypoint(parent: dict[str, Any]) -> None:
    """metaray's own submitter needs the entrypoint (a user's submitter command may not)."""
    parent["spec"]["entrypoint"] = " "
    parent["spec"].pop("submitterPodTemplate", None)


def _half_legacy(parent: dict[str, Any]) -> None:
    parent["spec"]["deletionStrategy"] = {"onSuccess": {"policy": "DeleteSelf"}}


# (what is changed, the field the message must name)
INVALID: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_set("spec.submissionMode", "Batch"), "spec.submissionMode"),
    (_no_entrypoint, "spec.entrypoint"),
    (_set("spec.activeDeadlineSeconds", 0), "spec.activeDeadlineSeconds"),
    (_set("spec.preRunningDeadlineSeconds", -5), "spec.preRunningDeadlineSeconds"),
    (_set("spec.backoffLimit", -1), "spec.backoffLimit"),
    (_set("spec.ttlSecondsAfterFinished", -1), "spec.ttlSecondsAfterFinished"),
    (_set("spec.runtimeEnvYAML", "[1, 2]"), "spec.runtimeEnvYAML"),
    (_set("spec.runtimeEnvYAML", "a: [b"), "spec.runtimeEnvYAML"),
    (_set("spec.entrypointResources", "{x"), "spec.entrypointResources"),
    (_set("spec.entrypointNumCpus", -1), "spec.entrypointNumCpus"),
    (_set("spec.unknownField", 1), "spec.unknownField"),
    (_set("spec.shutdownAfterJobFinishes", "maybe"), "spec.shutdownAfterJobFinishes"),
    (_set("metadata.name", "x" * 48), "metadata.name"),
    (_set("metadata.name", "Demo"), "metadata.name"),
    (_set("apiVersion", "ray.io/v2"), "apiVersion"),
    (_both_sources, "spec.clusterSelector"),
    (_no_source, "spec"),
    (_bad_group, "spec.rayClusterSpec.workerGroupSpecs"),
    (_half_legacy, "spec.deletionStrategy"),
]


@st.composite
def invalid_rayjobs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A world whose RayJob is invalid by one known change; the field its message must name."""
    body = draw(rayjob_worlds(damage=False))
    index = draw(st.integers(0, len(INVALID) - 1))
    change, field = INVALID[index]
    change(body["parent"])
    return body, field


# -- customize --------------------------------------------------------------------------------- --
@st.composite
def customize_bodies(draw: st.DrawFn) -> Any:
    """``{controller, parent}``: a valid RayJob, then often a damaged one."""
    body = draw(rayjob_worlds(damage=False))
    request = {"controller": body["controller"], "parent": body["parent"]}
    if draw(st.booleans()):
        parent = request["parent"]
        spec = parent["spec"]
        if draw(st.booleans()):
            spec["clusterSelector"] = draw(
                st.sampled_from(
                    [{"ray.io/cluster": draw(TEXT)}, {"ray.io/cluster": 5}, [], None, "x"]
                )
            )
        parent["metadata"]["name"] = draw(st.sampled_from([*SPECIAL_TEXT[:8], 5, None, []]))
        draw(mutations(request, list(paths(request)), most=2, values=JSON_VALUES))
    return request
