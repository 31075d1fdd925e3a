"""``FinalizingLoop``: the in-memory Metacontroller of tests/loop.py, plus its finalize hook.

Once the RayCluster has ``metadata.deletionTimestamp`` (see ``delete``), every step sends the
same request with ``finalizing: true`` and answers it with ``app.raycluster.sync.finalize``
through the same decode and encode path as the HTTP shell. Children are applied exactly as
``Loop`` applies them (deleted pods linger one step, ``held`` ones until released). Jobs are
simulated: a created Job starts with an empty status, and ``succeed_job``/``fail_job`` play the
Job controller. ``finalized`` is the last answer's verdict (None for a sync answer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.desired import Desired
from app.hooks.request import decode
from app.hooks.response import encode
from app.raycluster.sync import finalize
from tests.loop import Loop

JOB = "Job.batch/v1"
FINALIZER = "metacontroller.io/compositecontroller-metaray"


@dataclass
class FinalizingLoop(Loop):
    finalized: bool | None = None

    # -- the parent being deleted ------------------------------------------------------------
    @property
    def deleting(self) -> bool:
        return "deletionTimestamp" in self.parent["metadata"]

    def delete(self) -> None:
        """``kubectl delete``: the API server stamps the parent; Metacontroller's finalizer
        keeps it until a finalize answer says ``finalized: true``."""
        parent = copy.deepcopy(self.parent)
        metadata = parent["metadata"]
        metadata["deletionTimestamp"] = self.stamp()
        metadata["finalizers"] = [*metadata.get("finalizers", []), FINALIZER]
        self.parent = parent

    def request(self) -> dict[str, Any]:
        request = super().request()
        request["finalizing"] = self.deleting
        return request

    def answer(self, body: bytes) -> tuple[Desired | None, dict[str, Any]]:
        if not self.deleting:
            desired, answer = super().answer(body)
            self.finalized = None if desired is None else desired.finalized
            return desired, answer
        assert self.call is None, "FinalizingLoop finalizes in process only"
        request = decode(body)
        assert request.finalizing
        desired = finalize(request.parent, request.observed)
        answer = orjson.loads(encode(desired))
        self.finalized = answer.get("finalized")
        return desired, answer

    # -- Jobs and the Job controller -----------------------------------------------------------
    def _create(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        super()._create(key, desired)
        if key[0] == JOB:
            self.children[key]["status"] = {}

    def jobs(self) -> list[str]:
        return sorted(name for kind, name in self.children if kind == JOB)

    def job(self, name: str) -> dict[str, Any]:
        return self.children[(JOB, name)]

    def succeed_job(self, name: str) -> None:
        self.job(name)["status"] = {
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
        }

    def fail_job(self, name: str) -> None:
        self.job(name)["status"] = {
            "failed": 6,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        }
