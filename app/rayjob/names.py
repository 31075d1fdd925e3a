"""Names of a RayJob's children and of its Ray job: deterministic, never drawn at random

A stale parent status replayed to the hook must name the same cluster again, not a second one,
so the cluster's 5-character suffix is a pure function of the RayJob's uid, its generation and
how many attempts have failed: each retry and each resume (a new generation) gets a new name.
"""

from __future__ import annotations

from app.raycluster.names import suffix


def cluster_name(rayjob: str, uid: str, generation: int, failed: int) -> str:
    return f"{rayjob}-{suffix(uid, f'rayjob-cluster/{generation}/{failed}', 0)}"


def ray_job_id(rayjob: str, uid: str, generation: int, failed: int) -> str:
    return f"{rayjob}-{suffix(uid, f'rayjob-id/{generation}/{failed}', 0)}"


def submitter_job_name(rayjob: str) -> str:
    """KubeRay's: the submitter Job has the RayJob's own name."""
    return rayjob


def stopper_job_name(rayjob: str) -> str:
    return f"{rayjob}-stop"


def head_service_name(rayjob: str) -> str:
    """The RayJob's own head Service: a stable address across retries."""
    return f"{rayjob}-head-svc"
