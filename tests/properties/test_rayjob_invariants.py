"""Properties of the RayJob hook over whole lifecycles: generated RayJobs driven through many
syncs by a small in-test Metacontroller, with the world acting between syncs.

The stand-in applies each answer as Metacontroller does (deletes what is left out, creates what
is new with the controller-uid label and the last-applied annotation, updates RayClusters and
Services in place, writes the status); the world makes the cluster ready, ends the submitter
with one of its exit codes, toggles ``suspend`` and moves the clock. Every answer goes through
the RayJob oracle (``tests/fuzz/rayjob_oracle.py``); across steps: never two live clusters of
the RayJob, the user's cluster never a child, and once the world stops changing (the clock
too), a fixpoint within a few syncs whose answer is the same bytes every time.

Stale replays: as behind a real Metacontroller, a sync may see the whole parent as it was before
the last status write (its cache lags its own writes by tens of milliseconds, so at the clock of
that write) with the children as they are now, and its answer's status is written over the
newer one. Across the whole history (issue 15, rules 3-4):
no child is created for an attempt older than the newest one observed, ``failed`` and
``succeeded`` never go back, and Complete or Failed once written is never left (only for
ValidationFailed, which this history does not provoke).
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
    [
        "nothing",
        "ready",
        "ready",
        "exit",
        "exit",
        "tick",
        "tick",
        "wait",
        "suspend",
        "resume",
        "stale",
        "stale",
    ]
)
ATTEMPT = "metaray.io/attempt"


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
    stale: dict[str, Any] | None = None  # the parent before the last status write
    stale_at: datetime = NOW  # when that write happened
    written: list[dict[str, Any]] = field(default_factory=list)  # every status written
    newest_attempt: int = 0

    def body(self, parent: dict[str, Any] | None = None) -> bytes:
        grouped: dict[str, dict[str, Any]] = {}
        for (kind, name), obj in sorted(self.children.items()):
            grouped.setdefault(kind, {})[f"default/{name}"] = obj
        related = {
            "Pod.v1": {f"default/{n}": p for n, p in sorted(self.pods.items())},
            RAYCLUSTER: {f"default/{n}": c for n, c in sorted(self.clusters.items())},
        }
        parent = parent if parent is not None else self.parent
        return json.dumps(request(parent, grouped, related)).encode()

    def sync(self, parent: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
        """One sync (of ``parent``, a stale one, if given), checked by the oracle; its answer."""
        body = self.body(parent)
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
                made = int(child["metadata"].get("labels", {}).get(ATTEMPT, "-1"))
                if key[0] in (RAYCLUSTER, JOB):
                    assert made >= self.newest_attempt, (
                        f"created {key} for attempt {made} after attempt {self.newest_attempt}"
                    )
                    self.newest_attempt = made
                self.create(key, child)
                created.append(f"{key[0]}/{key[1]}")
            elif key[0] != JOB:  # Jobs are immutable; RayClusters and Services are updated
                self.update(key, child)
        if answer["status"] != self.parent.get("status"):
            self.stale, self.stale_at = copy.deepcopy(self.parent), self.now
        self.parent = {**self.parent, "status": answer["status"]}
        self.check_history(answer["status"])
        return created, deleted

    def check_history(self, status: dict[str, Any]) -> None:
        """Nothing goes back across the history, stale replays included."""
        for earlier in self.written:
            for counter in ("failed", "succeeded"):
                assert status.get(counter, 0) >= earlier.get(counter, 0), (
                    f"status.{counter} went back: {earlier.get(counter)} -> {status.get(counter)}"
                )
            if earlier.get("jobDeploymentStatus") in ("Complete", "Failed"):
                assert status.get("jobDeploymentStatus") == earlier["jobDeploymentStatus"], (
                    f"left {earlier['jobDeploymentStatus']} for {status.get('jobDeploymentStatus')}"
                )
        self.written.append(copy.deepcopy(status))

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
        if job["status"].get("conditions"):
            return  # a Job that has finished stays finished
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
                "labels": {  # the Job controller's: by the Job's name and its uid
                    "batch.kubernetes.io/job-name": name,
                    "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
                },
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
        stale = what == "stale" and loop.stale is not None
        if stale:
            event("stale replay")
            # The whole parent as it was before the write it misses: its spec too. A cache that
            # lags behind its own status write cannot hold a later spec edit (resourceVersions
            # are one line), so an old status never meets a newer spec.
            parent = copy.deepcopy(loop.stale)
        if stale:  # right after the write it misses: Metacontroller lags by milliseconds
            now, loop.now = loop.now, loop.stale_at
        _, answer = loop.sync(parent if stale else None)
        if stale:
            loop.now = now
        loop.apply(answer)
        check_step(loop)
        act(loop, what, code)
    taken = quiet(loop)
    state = (loop.parent.get("status") or {}).get("jobDeploymentStatus") or "new"
    event(f"settled in {state}")
    event(f"{taken} quiet syncs")
