"""An in-memory Metacontroller for the RayCronJob controller, with a moving clock.

It applies answers as Metacontroller v4.17 does for a child type registered ``OnDelete``:
delete what the answer leaves out, create what is new, never update a RayJob. It writes the
status the answer gives, and can hand the hook a *stale* parent (one whose status is a write or
more behind) the way Metacontroller's informer cache sometimes does. The test plays the world:
the clock, runs finishing, a user deleting a run.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.hooks.request import LAST_APPLIED, decode
from app.hooks.response import encode
from app.raycronjob import sync as cronjob
from app.raycronjob.runs import RAYJOB
from tests.rayjob.loop import rayjob_object

START = datetime(2026, 1, 1, tzinfo=UTC)
Decide = Callable[[dict[str, Any], datetime], dict[str, Any]]


def template(**changes: Any) -> dict[str, Any]:
    """A RayJob spec that the RayJob core accepts (the RayJob tests' own)."""
    return {**rayjob_object()["spec"], **changes}


def cron_object(name: str = "nightly", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCronJob",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {"schedule": "* * * * *", "jobTemplate": template(), **spec},
    }


def request(parent: dict[str, Any], children: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "controller": {"kind": "CompositeController", "metadata": {"name": "metaray-raycronjob"}},
        "parent": parent,
        "children": {RAYJOB: {f"default/{n}": c for n, c in sorted(children.items())}},
        "related": {},
        "finalizing": False,
    }


def in_process(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    decoded = decode(orjson.dumps(body))
    answer: dict[str, Any] = orjson.loads(
        encode(cronjob.sync(decoded.parent, decoded.observed, now))
    )
    return answer


@dataclass
class Step:
    answer: dict[str, Any]
    created: list[str]
    deleted: list[str]
    stale: bool


@dataclass
class CronLoop:
    parent: dict[str, Any]
    now: datetime = START
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every parent the API server has held, oldest first (a stale sync replays one of them).
    parents: list[dict[str, Any]] = field(default_factory=list)
    decide: Decide = in_process
    created: list[str] = field(default_factory=list)  # every create, in order, ever
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (name, its state) ever
    history: list[Step] = field(default_factory=list)
    _serial: int = 0

    def step(self, stale: int = 0) -> Step:
        """One sync at the loop's clock; ``stale``: the parent is that many writes old (1: the
        one before the last write)."""
        self._vanish_terminated()
        parent = self.parents[-stale] if 0 < stale <= len(self.parents) else self.parent
        answer = self.decide(request(copy.deepcopy(parent), copy.deepcopy(self.children)), self.now)
        wanted = {c["metadata"]["name"]: c for c in answer["children"]}
        deleted = []
        for name, obj in list(self.children.items()):
            if name not in wanted and "deletionTimestamp" not in obj["metadata"]:
                obj["metadata"]["deletionTimestamp"] = self.stamp()
                self.deleted.append((name, obj["status"].get("jobDeploymentStatus", "")))
                deleted.append(name)
        created = []
        for name, child in wanted.items():
            if name not in self.children:
                self._create(child)
                created.append(name)
        if answer["status"] != self.parent.get("status"):
            self.parents.append(self.parent)
            self.parent = {**self.parent, "status": answer["status"]}
        step = Step(answer, sorted(created), sorted(deleted), stale > 0)
        self.history.append(step)
        return step

    def settle(self, steps: int = 4) -> list[str]:
        """A few syncs at the same time (a status write and a create each cause one)."""
        created: list[str] = []
        for _ in range(steps):
            created += self.step().created
        return created

    def at(self, moment: datetime) -> list[str]:
        self.now = moment
        return self.settle()

    def advance(self, **delta: float) -> list[str]:
        return self.at(self.now + timedelta(**delta))

    # -- the world -------------------------------------------------------------------------
    @property
    def status(self) -> dict[str, Any]:
        return dict(self.parent.get("status") or {})

    def live(self) -> list[str]:
        return sorted(
            n for n, o in self.children.items() if "deletionTimestamp" not in o["metadata"]
        )

    def finish(self, name: str, state: str = "Complete") -> None:
        self.children[name]["status"] = {
            "jobDeploymentStatus": state,
            "jobStatus": "SUCCEEDED" if state == "Complete" else "FAILED",
            "endTime": self.stamp(),
        }

    def run(self, name: str) -> None:
        self.children[name]["status"] = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}

    def edit(self, **changes: Any) -> None:
        parent = copy.deepcopy(self.parent)
        parent["spec"].update(changes)
        parent["metadata"]["generation"] += 1
        self.parents.append(self.parent)
        self.parent = parent

    def user_deletes(self, name: str) -> None:
        del self.children[name]

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _create(self, desired: dict[str, Any]) -> None:
        obj = copy.deepcopy(desired)
        meta = obj["metadata"]
        meta.setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
            desired, sort_keys=True, separators=(",", ":")
        )
        self._serial += 1
        meta |= {"uid": f"run-{self._serial}", "creationTimestamp": self.stamp()}
        obj["status"] = {}
        self.children[meta["name"]] = obj
        self.created.append(meta["name"])

    def _vanish_terminated(self) -> None:
        for name in [n for n, o in self.children.items() if "deletionTimestamp" in o["metadata"]]:
            del self.children[name]
