"""Which attempt a child belongs to, and the last rule of every answer: nothing goes back.

An attempt is one try at the Ray job: its cluster, its submitter Job and its submission id.
Its number is ``status.failed`` when it began (a retry bumps ``failed``). Metacontroller syncs
a parent from a cache that can lag its own status writes, while children come from informers
of their own, and it writes the answer's status over whatever is newer. So the children can
be newer than the parent: they carry their attempt, and a sync whose children prove a newer
attempt than its parent's status answers as that attempt's sync would, changing no child.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.core.observed import ObservedObject
from app.raycluster.spec import JSONObject
from app.rayjob.states import (
    ATTEMPT_FIELDS,
    INITIALIZING,
    RETRYING,
    RUNNING,
    count,
)
from app.rayjob.validation import finished

ATTEMPT = "metaray.io/attempt"  # label on the attempt's RayCluster and submitter Job
CLUSTER_NAME = "metaray.io/ray-cluster-name"  # annotation: the submitter outlives its cluster
RAY_JOB_ID = "metaray.io/job-id"  # annotation: the attempt's Ray submission id
# Status messages copied from Ray (a failed job's message holds the end of its logs, a refused
# submission the whole runtime-env error) are cut here: the status is written on every change
# and printed by kubectl; 1 KiB keeps the first lines, which name the error.
MESSAGE_CAP = 1024
_MORE = " [...]"


@dataclass(frozen=True, slots=True)
class Proof:
    """The newest attempt the observed children belong to, and what they say about it."""

    number: int
    cluster: str | None = None
    ray_job_id: str | None = None
    submitter: bool = False  # its submitter Job was observed (made only once it ran)


def mark(child: JSONObject, status: Mapping[str, Any]) -> JSONObject:
    """The child, labelled with the attempt it is built for."""
    metadata = dict(child.get("metadata") or {})
    labels = {**(metadata.get("labels") or {}), ATTEMPT: str(count(status.get("failed")))}
    notes = {CLUSTER_NAME: status.get("rayClusterName"), RAY_JOB_ID: status.get("jobId")}
    annotations = {
        **(metadata.get("annotations") or {}),
        **{k: v for k, v in notes.items() if isinstance(v, str) and v},
    }
    metadata["labels"] = dict(sorted(labels.items()))
    metadata["annotations"] = dict(sorted(annotations.items()))
    return {**child, "metadata": metadata}


def attempt(child: ObservedObject) -> int | None:
    value = child.metadata.labels.get(ATTEMPT, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def newest(
    clusters: Iterable[ObservedObject], submitter_jobs: Iterable[ObservedObject]
) -> Proof | None:
    """The newest attempt any observed RayCluster or submitter Job belongs to."""
    found: list[tuple[int, ObservedObject, bool]] = [
        (n, child, is_submitter)
        for is_submitter, children in ((False, clusters), (True, submitter_jobs))
        for child in children
        if (n := attempt(child)) is not None
    ]
    if not found:
        return None
    number = max(n for n, _, _ in found)
    mine = [(child, is_submitter) for n, child, is_submitter in found if n == number]
    notes = [child.metadata.annotations for child, _ in mine]
    cluster = next((c.name for c, is_submitter in mine if not is_submitter), None)
    cluster = cluster or next((n[CLUSTER_NAME] for n in notes if n.get(CLUSTER_NAME)), None)
    ray_job_id = next((n[RAY_JOB_ID] for n in notes if n.get(RAY_JOB_ID)), None)
    return Proof(number, cluster, ray_job_id, any(is_submitter for _, is_submitter in mine))


def caught_up(previous: Mapping[str, Any], proof: Proof | None) -> dict[str, Any] | None:
    """The status of the newest observed attempt, as far as its children tell, when they prove
    one newer than the parent's status (a stale parent); None when the status is not behind.

    With its submitter seen the attempt was Running (its outcome is then read as usual), with
    only its cluster it was at least Initializing; with neither it is torn down and retried."""
    if proof is None or proof.number <= count(previous.get("failed")) or finished(previous):
        return None  # a finished RayJob has no later attempt: children claiming one are not
    status = {k: v for k, v in previous.items() if k not in (*ATTEMPT_FIELDS, "endTime")}
    status.update(failed=proof.number, jobStatus="")
    if proof.cluster is None:
        status["jobDeploymentStatus"] = RETRYING
        return status
    status.update(
        jobDeploymentStatus=RUNNING if proof.submitter else INITIALIZING,
        rayClusterName=proof.cluster,
    )
    if proof.ray_job_id is not None:
        status["jobId"] = proof.ray_job_id
    return status


def settle(status: dict[str, Any], previous: Mapping[str, Any], proof: Proof | None) -> None:
    """The answer's last word: no counter below what the parent's status and the children
    prove, and no message longer than the cap."""
    floor = proof.number if proof is not None else 0
    status["failed"] = max(count(status.get("failed")), count(previous.get("failed")), floor)
    status["succeeded"] = max(count(status.get("succeeded")), count(previous.get("succeeded")))
    message = status.get("message")
    if isinstance(message, str) and len(message) > MESSAGE_CAP:
        status["message"] = capped(message)


def capped(message: str) -> str:
    return message if len(message) <= MESSAGE_CAP else message[: MESSAGE_CAP - len(_MORE)] + _MORE
