"""An in-memory Metacontroller for the RayJob controller, with a pretend cluster around it.

It applies answers as Metacontroller v4.17 does (delete what is left out, create what is new,
update RayClusters and Services in place, never update Jobs), writes the status, and lets the
test play the world: the RayCluster becoming ready, the submitter's pod running and exiting with
a code and a termination message, the head pod of a SidecarMode cluster, a user's own cluster.
Deleted children linger one step with a ``deletionTimestamp`` (or longer, while ``held``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, decode
from app.hooks.response import encode
from app.rayjob import sync as rayjob
from app.rayjob.address import dashboard_address
from app.rayjob.kinds import JOB, RAYCLUSTER, SERVICE
from app.rayjob.options import Options as RayJobOptions
from app.rayjob.watch import watched as rayjob_watched
from tests.loop import cluster_spec, group

START = datetime(2026, 1, 1, tzinfo=UTC)
POD = "Pod.v1"
SCRIPT = "print('metaray submitter')"
OPTIONS = RayJobOptions(submitter_script=SCRIPT)
IN_PLACE = (RAYCLUSTER, SERVICE)


def rayjob_object(name: str = "job", uid: str = "uid-job-1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "entrypoint": "python -c 'print(42)'",
        "rayClusterSpec": cluster_spec(group()),
        **spec,
    }
    if "clusterSelector" in spec:
        body.pop("rayClusterSpec")
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kueue.x-k8s.io/queue-name": "user-queue"},
        },
        "spec": body,
    }


def user_cluster(name: str = "mine", state: str = "ready") -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": cluster_spec(group()),
        "status": {"state": state},
    }


@dataclass
class Step:
    request: dict[str, Any]
    desired: Desired
    answer: dict[str, Any]
    created: list[str]
    deleted: list[str]


@dataclass
class JobLoop:
    parent: dict[str, Any]
    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    related_pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    related_clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: datetime = START
    tick: timedelta = timedelta(seconds=1)
    held: set[str] = field(default_factory=set)
    history: list[Step] = field(default_factory=list)
    _serial: int = 0

    # -- what Metacontroller sends ---------------------------------------------------------
    def request(self, parent: dict[str, Any] | None = None) -> dict[str, Any]:
        grouped: dict[str, dict[str, Any]] = {RAYCLUSTER: {}, JOB: {}, SERVICE: {}}
        for (kind, name), obj in sorted(self.children.items()):
            grouped[kind][f"default/{name}"] = obj
        related: dict[str, dict[str, Any]] = {
            POD: {f"default/{n}": p for n, p in sorted(self.related_pods.items())},
            RAYCLUSTER: {f"default/{n}": c for n, c in sorted(self.related_clusters.items())},
        }
        return {
            "controller": {"kind": "CompositeController", "metadata": {"name": "metaray-rayjob"}},
            "parent": parent if parent is not None else self.parent,
            "children": grouped,
            "related": related,
            "finalizing": False,
        }

    def watched(self, parent: dict[str, Any] | None = None) -> tuple[str, str] | None:
        """What the shell's poller would watch for this RayJob now."""
        decoded = decode(orjson.dumps(self.request(parent)), related=True, raycluster=False)
        return rayjob_watched(decoded.parent, decoded.observed, decoded.related, "cluster.local")

    def address(self) -> str:
        """The dashboard address derived from what is observed (app/rayjob/address.py)."""
        decoded = decode(orjson.dumps(self.request()), related=True, raycluster=False)
        found = dashboard_address(
            decoded.parent, decoded.observed, decoded.related, "cluster.local"
        )
        assert found is not None, "no address can be derived yet"
        return found

    def decide(self, request: dict[str, Any]) -> tuple[Desired, dict[str, Any]]:
        decoded = decode(orjson.dumps(request), related=True, raycluster=False)
        desired = rayjob.sync(decoded.parent, decoded.observed, decoded.related, self.now, OPTIONS)
        return desired, orjson.loads(encode(desired))

    # -- one sync, applied -----------------------------------------------------------------
    def step(self, parent: dict[str, Any] | None = None) -> Step:
        self.now += self.tick
        self._vanish_terminated()
        request = self.request(parent)
        desired, answer = self.decide(request)
        wanted = {
            (f"{c['kind']}.{c['apiVersion']}", c["metadata"]["name"]): c for c in answer["children"]
        }
        deleted = [
            name
            for key, name in list(self.children)
            if (key, name) not in wanted and self._delete((key, name))
        ]
        created = []
        for key, child in wanted.items():
            if key not in self.children:
                self._create(key, child)
                created.append(f"{key[0].split('.')[0]}/{key[1]}")
            elif key[0] in IN_PLACE:
                self._update(key, child)
        self.parent = {**self.parent, "status": answer["status"]}
        step = Step(request, desired, answer, sorted(created), sorted(deleted))
        self.history.append(step)
        return step

    def until(self, state: str, max_steps: int = 12) -> Step:
        for _ in range(max_steps):
            step = self.step()
            if self.status.get("jobDeploymentStatus") == state:
                return step
        raise AssertionError(f"never reached {state!r}: {self.status}")

    # -- the world -------------------------------------------------------------------------
    @property
    def status(self) -> dict[str, Any]:
        return dict(self.parent.get("status") or {})

    def edit(self, **changes: Any) -> None:
        parent = copy.deepcopy(self.parent)
        parent["spec"].update(changes)
        parent["metadata"]["generation"] += 1
        self.parent = parent

    def clusters(self, live: bool = True) -> list[str]:
        return sorted(
            n
            for (k, n), o in self.children.items()
            if k == RAYCLUSTER and not (live and _terminating(o))
        )

    def jobs(self, live: bool = True) -> list[str]:
        return sorted(
            n for (k, n), o in self.children.items() if k == JOB and not (live and _terminating(o))
        )

    def child(self, kind: str, name: str) -> dict[str, Any]:
        return self.children[(kind, name)]

    def user_head(self, cluster: str = "mine", ip: str = "10.1.2.3") -> None:
        """The Running head pod of a user's cluster (a related object), controlled by it."""
        owner = self.related_clusters[cluster]
        self.related_pods[f"{cluster}-head"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{cluster}-head",
                "namespace": "default",
                "labels": {"ray.io/cluster": cluster, "ray.io/node-type": "head"},
                "ownerReferences": [_controller_ref(owner)],
            },
            "spec": {"containers": [{"name": "ray-head"}]},
            "status": {"phase": "Running", "podIP": ip},
        }

    def cluster_ready(self, state: str = "ready") -> None:
        for name in self.clusters():
            self.children[(RAYCLUSTER, name)]["status"] = {
                "state": state,
                "desiredWorkerReplicas": 1,
            }

    def submitter_runs(self, attempt: int = 0) -> str:
        job = self.children[(JOB, self.parent["metadata"]["name"])]
        name = f"{job['metadata']['name']}-pod-{attempt}"
        labels = {  # as the Job controller labels its pods: by the Job's name and uid
            **job["spec"]["template"]["metadata"]["labels"],
            "batch.kubernetes.io/job-name": job["metadata"]["name"],
            "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
            "controller-uid": job["metadata"]["uid"],
        }
        self.related_pods[name] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "ray-job-submitter"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "ray-job-submitter", "state": {"running": {}}}],
            },
        }
        return name

    def submitter_exits(
        self, code: int, status: str = "", message: str = "", attempt: int = 0
    ) -> None:
        """The submitter pod ends; the Job controller sets the Job's condition the way a
        ``podFailurePolicy`` FailJob rule (64/65/66) or success would."""
        name = (
            self.submitter_runs(attempt)
            if f"{self.parent['metadata']['name']}-pod-{attempt}" not in self.related_pods
            else f"{self.parent['metadata']['name']}-pod-{attempt}"
        )
        report = json.dumps(
            {
                "status": status,
                "message": message,
                "startTime": self.stamp(),
                "endTime": self.stamp(),
            }
        )
        pod = self.related_pods[name]
        pod["status"] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": "ray-job-submitter",
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "message": report,
                            "finishedAt": self.stamp(),
                        }
                    },
                }
            ],
        }
        job = self.children[(JOB, self.parent["metadata"]["name"])]
        if code == 0:
            job["status"] = {"succeeded": 1, "conditions": [self._condition("Complete", "", "")]}
        elif code in (64, 65, 66):
            text = (
                f"Container ray-job-submitter for pod default/{name} failed with exit code "
                f"{code} matching FailJob rule at index 0"
            )
            job["status"] = {
                "failed": 1,
                "conditions": [self._condition("Failed", "PodFailurePolicy", text)],
            }
        else:
            job["status"] = {"failed": 1, "active": 1}

    def submitter_gives_up(self) -> None:
        job = self.children[(JOB, self.parent["metadata"]["name"])]
        text = "Job has reached the specified backoff limit"
        job["status"] = {
            "failed": 3,
            "conditions": [self._condition("Failed", "BackoffLimitExceeded", text)],
        }

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- how Metacontroller and the API server treat children -------------------------------
    def _condition(self, kind: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": self.stamp(),
        }

    def _create(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        obj = copy.deepcopy(desired)
        meta = obj["metadata"]
        meta.setdefault("namespace", "default")
        meta.setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
            desired, sort_keys=True, separators=(",", ":")
        )
        self._serial += 1
        meta |= {
            "uid": f"child-{self._serial}",
            "resourceVersion": str(self._serial),
            "creationTimestamp": self.stamp(),
            # Metacontroller makes the parent each child's controller.
            "ownerReferences": [_controller_ref(self.parent)],
        }
        obj["status"] = {}
        self.children[key] = obj

    def _update(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        obj = self.children[key]
        if json.loads(obj["metadata"]["annotations"][LAST_APPLIED]) == desired:
            return
        obj["spec"] = copy.deepcopy(desired["spec"])
        obj["metadata"]["labels"] = dict(desired["metadata"].get("labels") or {})
        obj["metadata"]["annotations"] = {
            **(desired["metadata"].get("annotations") or {}),
            LAST_APPLIED: json.dumps(desired, sort_keys=True, separators=(",", ":")),
        }

    def _delete(self, key: tuple[str, str]) -> bool:
        obj = self.children[key]
        if _terminating(obj):
            return False
        obj["metadata"]["deletionTimestamp"] = self.stamp()
        return True

    def _vanish_terminated(self) -> None:
        for key in [
            k for k, o in self.children.items() if _terminating(o) and k[1] not in self.held
        ]:
            del self.children[key]


def _controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _terminating(obj: dict[str, Any]) -> bool:
    return "deletionTimestamp" in obj["metadata"]
