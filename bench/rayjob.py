"""What a RayJob adds to its cluster: one RayJob sync against the RayCluster sync of the same
cluster, in process (decode + core + encode, the cyclic GC paused, as the service does).

    .venv/bin/python -m bench.rayjob [WORKERS ...]

A RayJob with its own cluster costs Metacontroller two hooks per resync: the RayCluster's
``/sync`` (every pod of the cluster) and the RayJob's ``/rayjob/sync`` (the RayCluster, its
submitter Job and head Service as children, the submitter pod as related; never the cluster's
pods). The target (the RayJob issue's words): a RayJob sync costs no more than the RayCluster
sync of the same cluster size plus 20 %, i.e. rayjob / cluster <= 1.2. What a RayJob adds to
its cluster's hook, (cluster + rayjob) / cluster, is printed beside it.

Both requests are built for a cluster of WORKERS Running worker pods and a Running head:
the RayCluster request by ``bench.requests``; the RayJob request by driving the in-memory
Metacontroller of ``tests/rayjob/loop.py`` with metaray's own options (the real submitter
script) to a Running RayJob whose cluster is ready and whose submitter pod runs, then dressing
every object as the API server returns it (managedFields, owner references, defaulted Job and
Service specs, statuses); the RayCluster child carries the status the ``/sync`` of (a) answers.
The core is given what the shell gives it: the related objects decoded, and (the dashboard
being read by default) the poller's word that the Ray job is RUNNING. The RayJob request is
checked to be a steady state: every child kept as it is, the status unchanged, no Event, no
intent. Only the shell's work around the core (metrics, the log line) is left out, as in
bench/inprocess.py.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, SyncRequest, decode
from app.hooks.response import encode
from app.raycluster.sync import sync as cluster_sync
from app.rayjob import sync as rayjob
from app.rayjob.dashboard import DashboardView, JobInfo
from app.rayjob.kinds import JOB, RAYCLUSTER, SERVICE
from app.rayjob.watch import watched as rayjob_watched
from app.shell.http.answers import paused_gc
from app.shell.settings import Settings
from bench.requests import STAMP, as_observed, parent, request
from tests.rayjob.loop import POD, JobLoop, rayjob_object

SETTINGS = Settings()
CLUSTER_OPTIONS = SETTINGS.options
JOB_OPTIONS = SETTINGS.rayjob_options
NAME = "rayjob-bench"
UID = "7a1e5c0d-2b3c-4d5e-8f90-1a2b3c4d5e6f"
TARGET = 1.2
BUDGET_SECONDS = 5.0  # of rounds per size, roughly
MIN_ROUNDS, MAX_ROUNDS = 25, 501


def dashboard_view(hook: SyncRequest) -> DashboardView | None:
    """What the shell hands the core with a sync (``view`` in app/shell/http/routes.py) once its
    poller has heard from the dashboard: the Ray job is RUNNING. None when metaray reads
    no dashboards."""
    target = rayjob_watched(hook.parent, hook.observed, hook.related, "cluster.local")
    if not JOB_OPTIONS.dashboard or target is None:
        return None
    info = JobInfo("RUNNING", "Job is currently running.", "2026-01-01T00:00:05Z")
    return DashboardView(*target, found=True, info=info)


class _Loop(JobLoop):
    """The in-memory Metacontroller, answering with metaray's real options and dashboard."""

    def decide(self, request: dict[str, Any]) -> tuple[Desired, dict[str, Any]]:
        decoded = decode(orjson.dumps(request), related=True, raycluster=False)
        view = dashboard_view(decoded)
        desired = rayjob.sync(
            decoded.parent, decoded.observed, decoded.related, self.now, JOB_OPTIONS, view
        )
        return desired, orjson.loads(encode(desired))


# -- the requests ------------------------------------------------------------------------------


def cluster_request(workers: int) -> bytes:
    """The RayCluster ``/sync`` request of a cluster with ``workers`` Running workers."""
    return request(workers + 1)


def cluster_status(body: bytes) -> dict[str, Any]:
    """The status the RayCluster hook writes for that cluster (ready, every pod Running)."""
    hook = decode(body)
    return dict(cluster_sync(hook.parent, hook.observed, CLUSTER_OPTIONS).status)


def _managed(api: str, manager: str, fields: dict[str, Any], status: bool) -> dict[str, Any]:
    entry = {
        "apiVersion": api,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": STAMP,
    }
    return entry | {"subresource": "status"} if status else entry


def _fields(node: Any) -> Any:
    if isinstance(node, dict):
        return {f"f:{k}": _fields(v) for k, v in node.items()}
    return {}


def _owner(api: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _uid(serial: int) -> str:
    return f"00000000-0000-0000-0001-{serial:012d}"


def _as_server(obj: dict[str, Any], serial: int, status_manager: str) -> None:
    """Server-side metadata on a child Metacontroller created, in place."""
    meta = obj["metadata"]
    meta |= {
        "uid": _uid(serial),
        "resourceVersion": str(5000 + serial),
        "generation": 1,
        "creationTimestamp": STAMP,
        "ownerReferences": [_owner("ray.io/v1", "RayJob", NAME, UID)],
    }
    applied = {k: v for k, v in obj.items() if k != "status"}
    meta["managedFields"] = [
        _managed(obj["apiVersion"], "metacontroller", _fields(applied), False),
        _managed(obj["apiVersion"], status_manager, _fields({"status": obj["status"]}), True),
    ]


def _default_job(job: dict[str, Any], uid: str) -> None:
    """What the API server and the Job controller add to the submitter Job, in place."""
    spec = job["spec"]
    selector = {"batch.kubernetes.io/controller-uid": uid}
    spec |= {
        "completionMode": "NonIndexed",
        "completions": 1,
        "manualSelector": False,
        "parallelism": 1,
        "podReplacementPolicy": "Failed",
        "selector": {"matchLabels": selector},
        "suspend": False,
    }
    template = spec["template"]
    template["metadata"]["labels"] |= {
        **selector,
        "batch.kubernetes.io/job-name": NAME,
        "controller-uid": uid,
        "job-name": NAME,
    }
    pod = template["spec"]
    for container in pod["containers"]:
        container |= {
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    pod |= {
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    }
    job["status"] = {
        "active": 1,
        "ready": 1,
        "startTime": STAMP,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }


def _default_service(service: dict[str, Any]) -> None:
    service["spec"] |= {
        "clusterIPs": ["None"],
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "sessionAffinity": "None",
    }
    for port in service["spec"]["ports"]:
        port |= {"protocol": "TCP", "targetPort": port["port"]}
    service["status"] = {"loadBalancer": {}}


def _submitter_pod(job: dict[str, Any], loop_pod: dict[str, Any]) -> dict[str, Any]:
    """The submitter Job's Running pod as the API server returns it."""
    template = job["spec"]["template"]
    desired = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": loop_pod["metadata"]["name"],
            "namespace": "default",
            "labels": {**template["metadata"]["labels"], **loop_pod["metadata"]["labels"]},
        },
        "spec": copy.deepcopy(template["spec"]),
    }
    pod = as_observed(desired, 90000)
    meta = pod["metadata"]
    meta.pop("annotations")  # no last-applied configuration: the Job controller made it
    meta["managedFields"][0]["fieldsV1"]["f:metadata"].pop("f:annotations")
    meta["ownerReferences"] = [_owner("batch/v1", "Job", NAME, job["metadata"]["uid"])]
    meta["managedFields"][0]["manager"] = "kube-controller-manager"
    pod["spec"]["restartPolicy"] = "Never"
    return pod


@dataclass(frozen=True)
class RayJobRequest:
    body: bytes
    now: datetime  # the shell's clock
    view: DashboardView | None  # the shell's latest word from the dashboard

    def sync(self) -> Desired:
        hook = decode(self.body, related=True, raycluster=False)
        return rayjob.sync(
            hook.parent, hook.observed, hook.related, self.now, JOB_OPTIONS, self.view
        )


def rayjob_request(workers: int, status: dict[str, Any]) -> RayJobRequest:
    """The ``/rayjob/sync`` request of a Running RayJob whose cluster has ``workers`` Running
    workers and reports ``status``, with one Running submitter pod."""
    loop = _Loop(rayjob_object(name=NAME, uid=UID, rayClusterSpec=parent(workers)["spec"]))
    for _ in range(6):
        loop.step()
        if loop.status.get("rayClusterName") in loop.clusters():
            break
    loop.cluster_ready()
    loop.until("Running")
    loop.submitter_runs()
    (cluster,) = loop.clusters()
    # The status of (a)'s cluster, under this cluster's name.
    named = orjson.dumps(status).replace(b"raycluster-bench", cluster.encode())
    loop.children[(RAYCLUSTER, cluster)]["status"] = orjson.loads(named)
    for _ in range(3):  # the RayJob's status takes in the cluster's, the submitter's, Ray's
        loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running", loop.status
    assert loop.status["jobStatus"] == "RUNNING", loop.status

    body = copy.deepcopy(loop.request())
    body["related"] = {k: v for k, v in body["related"].items() if v}  # only what customize asks
    children = body["children"]
    ((_, job),) = children[JOB].items()
    _as_server(next(iter(children[RAYCLUSTER].values())), 1, "metacontroller")
    _default_job(job, _uid(2))
    _as_server(job, 2, "kube-controller-manager")
    ((_, service),) = children[SERVICE].items()
    _default_service(service)
    _as_server(service, 3, "metacontroller")
    body["related"][POD] = {
        f"default/{p['metadata']['name']}": _submitter_pod(job, p)
        for p in body["related"][POD].values()
    }
    rayjob_parent = body["parent"]
    rayjob_parent["metadata"] |= {
        "resourceVersion": "4000",
        "managedFields": [
            _managed("ray.io/v1", "kubectl-create", {"f:spec": {}}, False),
            _managed("ray.io/v1", "metacontroller", _fields({"status": loop.status}), True),
        ],
    }
    encoded = orjson.dumps(body)
    hook = decode(encoded, related=True, raycluster=False)
    return RayJobRequest(encoded, loop.now + timedelta(seconds=1), dashboard_view(hook))


def check_steady(request: RayJobRequest) -> None:
    """The RayJob request is one of a resync: every child kept exactly as last applied, the
    status unchanged, nothing to tell or ask."""
    hook = decode(request.body, related=True, raycluster=False)
    desired = request.sync()
    kept = {(f"{c['kind']}.{c['apiVersion']}", c["metadata"]["name"]) for c in desired.children}
    assert kept == set(hook.observed.keys()), kept
    for child in desired.children:
        key = (f"{child['kind']}.{child['apiVersion']}", child["metadata"]["name"])
        assert child == hook.observed.applied[key], key
    assert desired.status == hook.parent["status"], (desired.status, hook.parent["status"])
    assert not desired.events, desired.events
    assert not desired.intents, desired.intents
    assert len(hook.related.pods) == 1
    raw = orjson.loads(request.body)
    for child in raw["children"][JOB].values():
        assert LAST_APPLIED in child["metadata"]["annotations"]


# -- the measurement ---------------------------------------------------------------------------


def one_cluster_sync(body: bytes) -> bytes:
    with paused_gc():
        hook = decode(body)
        return encode(cluster_sync(hook.parent, hook.observed, CLUSTER_OPTIONS))


def one_rayjob_sync(request: RayJobRequest) -> bytes:
    with paused_gc():
        return encode(request.sync())


def _once(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Figures:
    workers: int
    cluster_bytes: int
    rayjob_bytes: int
    cluster: float  # median seconds of (a)
    rayjob: float  # median seconds of (b)
    ratio: float  # median over the rounds of (b)/(a), each round's pair run back to back
    rounds: int

    @property
    def total(self) -> float:
        return 1 + self.ratio


def measure(workers: int) -> Figures:
    """(a) then (b), round after round, so that each pair sees the same machine: the medians
    of each, and the median of the rounds' ratios (steadier than a ratio of medians on a
    shared machine)."""
    cluster_body = cluster_request(workers)
    job_request = rayjob_request(workers, cluster_status(cluster_body))
    check_steady(job_request)
    a = lambda: one_cluster_sync(cluster_body)  # noqa: E731
    b = lambda: one_rayjob_sync(job_request)  # noqa: E731
    for _ in range(3):  # warm-up
        a()
        b()
    probe = _once(a) + _once(b)
    rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, int(BUDGET_SECONDS / max(probe, 1e-6))))
    pairs = [(_once(a), _once(b)) for _ in range(rounds)]
    return Figures(
        workers,
        len(cluster_body),
        len(job_request.body),
        statistics.median(p[0] for p in pairs),
        statistics.median(p[1] for p in pairs),
        statistics.median(p[1] / p[0] for p in pairs),
        rounds,
    )


def breakdown(workers: int, runs: int = 301) -> dict[str, float]:
    """Where (b) goes, without (a) in between: medians of its decoding, core and encoding,
    each timed inside the same run, and of the whole; orjson.loads of the body for scale."""
    job_request = rayjob_request(workers, cluster_status(cluster_request(workers)))
    body, now, view = job_request.body, job_request.now, job_request.view
    phases: dict[str, list[float]] = {"decode": [], "core": [], "encode": [], "all three": []}
    for _ in range(runs):
        with paused_gc():
            t0 = time.perf_counter()
            hook = decode(body, related=True, raycluster=False)
            t1 = time.perf_counter()
            desired = rayjob.sync(hook.parent, hook.observed, hook.related, now, JOB_OPTIONS, view)
            t2 = time.perf_counter()
            encode(desired)
            t3 = time.perf_counter()
        for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            phases[name].append(seconds)
    loads = statistics.median(_once(lambda: orjson.loads(body)) for _ in range(runs))
    return {"orjson.loads": loads} | {k: statistics.median(v) for k, v in phases.items()}


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main(sizes: list[int]) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load}, {os.cpu_count()} CPUs; medians; b/a: median of per-round ratios")
    print(
        f"{'workers':>7} {'(a) KB':>8} {'(b) KB':>7} {'rounds':>6} {'(a) cluster':>12} "
        f"{'(b) rayjob':>11} {'b/a':>6} {'(a+b)/a':>8}  target b/a <= {TARGET}"
    )
    for workers in sizes:
        f = measure(workers)
        verdict = "ok" if f.ratio <= TARGET else "OVER"
        print(
            f"{workers:>7} {f.cluster_bytes / 1e3:>8.0f} {f.rayjob_bytes / 1e3:>7.0f} "
            f"{f.rounds:>6} {_time(f.cluster):>12} {_time(f.rayjob):>11} {f.ratio:>6.2f} "
            f"{f.total:>8.2f}  {verdict}"
        )
    parts = breakdown(min(sizes))
    print(
        f"(b) alone, {min(sizes)} workers: "
        + ", ".join(f"{name} {_time(seconds)}" for name, seconds in parts.items())
    )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 100, 1000])
