"""Properties of the RayJob hook over whole lifecycles: generated RayJobs driven through many
syncs by a small in-test Metacontroller, with the world acting between syncs.

The stand-in applies each answer as Metacontroller does (deletes what is left out, creates what
is new with the controller-uid label and the last-applied annotation, updates RayClusters and
Services in place, writes the status); the world makes the cluster ready, ends the submitter
with one of its exit codes, toggles ``suspend`` and moves the clock. Every answer goes through
the RayJob oracle (``tests/fuzz/rayjob_oracle.py``); across steps: never two live clusters of
the RayJob, the user's cluster never a child, and once the world stops changing (the clock
too), a fixpoint within a few syncs whose answer is the same bytes every time.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from app.hooks.request import LAST_APPLIED
from tests.fuzz import count
from tests.fuzz.rayjob_oracle import check_rayjob_answer, run_rayjob_core
from tests.fuzz.rayjob_strategies import (
    JOB,
    NOW,
    RAYCLUSTER,
    SUBMITTER,
    USER_CLUSTER,
    rayjob,
    rayjob_specs,
    request,
)
from tests.loop import cluster_spec, group

PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
LIFECYCLES = settings(
    max_examples=200,
    deadline=None,
    print_blob=True,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
UID = "0f0f0f0f-1111-2222-3333-444444444444"
# Exit codes of metaray's submitter: 0 SUCCEEDED, 64 FAILED, 65 STOPPED, 66 job gone; 1 broke.
EXITS = (0, 64, 65, 66, 1)
EVENTS = st.sampled_from(
    ["nothing", "ready", "ready", "exit", "exit", "tick", "tick", "wait", "suspend", "resume"]
)


@dataclass
class Metacontroller:
    """One RayJob, its children and the related objects, applied the way Metacontroller does."""

    parent: dict[str, Any]
    now: datetime = NOW
    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    serial: int = 0
    history: list[tuple[str, str]] = field(default_factory=list)

    def body(self) -> bytes:
        grouped: dict[str, dict[str, Any]] = {}
        for (kind, name), obj in sorted(self.children.items()):
            grouped.setdefault(kind, {})[f"default/{name}"] = obj
        related = {
            "Pod.v1": {f"default/{n}": p for n, p in sorted(self.pods.items())},
            RAYCLUSTER: {f"default/{n}": c for n, c in sorted(self.clusters.items())},
        }
        return json.dumps(request(self.parent, grouped, related)).encode()

    def sync(self) -> tuple[bytes, dict[str, Any]]:
        """One sync, checked by the oracle; its answer."""
        body = self.body()
        count("rayjob lifecycle syncs")
        answer = run_rayjob_core(body, "sync", self.now)
        assert answer is not None, "the stand-in sent a request the hook refused"
        check_rayjob_answer(json.loads(body), answer, "sync", self.now)
        return body, json.loads(answer)

    def apply(self, answer: dict[str, Any]) -> tuple[list[str], list[str]]:
        # Children that were terminating are gone by now.
        for key in [k for k, o in self.children.items() if "deletionTimestamp" in o["metadata"]]:
            del self.children[key]
        wanted = {
            (f"{c['kind']}.{c['apiVersion']}", c["metadata"]["name"]): c for c in answer["children"]
        }
        deleted = []
        for key, obj in self.children.items():
            if key not in wanted:
                obj["metadata"]["deletionTimestamp"] = stamp(self.now)
                deleted.append(f"{key[0]}/{key[1]}")
        created = []
        for key, child in wanted.items():
            if key not in self.children:
                self.create(key, child)
                created.append(f"{key[0]}/{key[1]}")
            elif key[0] != JOB:  # Jobs are immutable; RayClusters and Services are updated
                self.update(key, child)
        self.parent = {**self.parent, "status": answer["status"]}
        return created, deleted

    def create(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        obj = copy.deepcopy(desired)
        meta = obj["metadata"]
        meta.setdefault("labels", {}).setdefault("controller-uid", UID)
        meta.setdefault("namespace", "default")
        meta.setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
            obj, sort_keys=True, separators=(",", ":")
        )
        self.serial += 1
        meta |= {"uid": f"child-{self.serial}", "creationTimestamp": stamp(self.now)}
        obj["status"] = {"conditions": []} if key[0] == JOB else {}
        self.children[key] = obj

    def update(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        obj = self.children[key]
        wanted = copy.deepcopy(desired)
        wanted["metadata"].setdefault("labels", {}).setdefault("controller-uid", UID)
        text = json.dumps(wanted, sort_keys=True, separators=(",", ":"))
        if obj["metadata"]["annotations"].get(LAST_APPLIED) == text:
            return
        obj["spec"] = wanted.get("spec", {})
        obj["metadata"]["annotations"][LAST_APPLIED] = text

    # -- the world ----------------------------------------------------------------------------
    def live(self, kind: str) -> list[str]:
        return sorted(
            name
            for (k, name), obj in self.children.items()
            if k == kind and "deletionTimestamp" not in obj["metadata"]
        )

    def make_ready(self) -> None:
        for name in self.live(RAYCLUSTER):
            self.children[(RAYCLUSTER, name)]["status"] = {"state": "ready"}
        for cluster in self.clusters.values():
            cluster["status"] = {"state": "ready"}

    def submitter_exits(self, code: int) -> None:
        name = self.parent["metadata"]["name"]
        job = self.children.get((JOB, name))
        if job is None or "deletionTimestamp" in job["metadata"]:
            return
        self.serial += 1
        report = {0: "SUCCEEDED", 64: "FAILED", 65: "STOPPED"}.get(code)
        terminated: dict[str, Any] = {"exitCode": code, "finishedAt": stamp(self.now)}
        if report is not None:
            terminated["message"] = json.dumps({"status": report, "message": "done"})
        self.pods[f"{name}-pod-{self.serial}"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-pod-{self.serial}",
                "namespace": "default",
                "labels": {"batch.kubernetes.io/job-name": name},
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": SUBMITTER}]},
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [{"name": SUBMITTER, "state": {"terminated": terminated}}],
            },
        }
        if code == 0:
            job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        else:
            message = f"Container {SUBMITTER} for pod default/x failed with exit code {code}"
            job["status"] = {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "PodFailurePolicy",
                        "message": message,
                    }
                ]
            }

    def edit(self, **changes: Any) -> None:
        parent = copy.deepcopy(self.parent)
        parent["spec"].update(changes)
        parent["metadata"]["generation"] += 1
        self.parent = parent


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def act(loop: Metacontroller, what: str, code: int) -> None:
    spec = loop.parent["spec"]
    if what == "ready":
        loop.make_ready()
    elif what == "exit":
        loop.submitter_exits(code)
    elif what == "tick":
        loop.now += timedelta(seconds=1)
    elif what == "wait":
        loop.now += timedelta(seconds=400)
    elif what == "suspend" and spec.get("shutdownAfterJobFinishes") and "rayClusterSpec" in spec:
        loop.edit(suspend=True)
    elif what == "resume" and spec.get("suspend"):
        loop.edit(suspend=False)


def check_step(loop: Metacontroller) -> None:
    """What must hold of the children once an answer is applied."""
    live = loop.live(RAYCLUSTER)
    assert len(live) <= 1, f"two live clusters: {live} (status {loop.parent.get('status')})"
    assert USER_CLUSTER not in live, "the user's cluster became a child"


def quiet(loop: Metacontroller, steps: int = 8) -> int:
    """Sync with nothing changing outside until applying the answer changes nothing: the next
    request is the same bytes as the last (a fixpoint). The syncs it took."""
    for taken in range(1, steps + 1):
        before = loop.body()
        _, answer = loop.sync()
        loop.apply(answer)
        check_step(loop)
        if loop.body() == before:
            return taken
    raise AssertionError(f"no fixpoint within {steps} quiet syncs: {loop.parent.get('status')}")


@LIFECYCLES
@given(
    rayjob_specs(),
    st.lists(st.tuples(EVENTS, st.sampled_from(EXITS)), min_size=3, max_size=14),
)
def test_a_rayjob_lifecycle_keeps_the_rules_and_settles(
    spec: dict[str, Any], events: list[tuple[str, int]]
) -> None:
    loop = Metacontroller(rayjob(spec, uid=UID))
    if "clusterSelector" in spec:
        user = {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": USER_CLUSTER, "namespace": "default", "uid": "user-uid"},
            "spec": cluster_spec(group()),
            "status": {"state": ""},
        }
        loop.clusters[USER_CLUSTER] = user
    for what, code in events:
        _, answer = loop.sync()
        loop.apply(answer)
        check_step(loop)
        act(loop, what, code)
    taken = quiet(loop)
    state = (loop.parent.get("status") or {}).get("jobDeploymentStatus") or "new"
    event(f"settled in {state}")
    event(f"{taken} quiet syncs")
