"""The labels and annotations that tie a RayJob to what it creates (KubeRay's keys)."""

from __future__ import annotations

from app.core.labels import ORIGINATED_CRD, ORIGINATED_NAME, RAYJOB_CRD, SUBMISSION_MODE
from app.raycluster import labels as lbl

__all__ = ["ORIGINATED_CRD", "ORIGINATED_NAME", "RAYJOB_CRD", "SUBMISSION_MODE"]

DISABLE_HEAD_RESTART = "ray.io/disable-provisioned-head-restart"
JOB_NAME = "batch.kubernetes.io/job-name"


def originated(rayjob: str) -> dict[str, str]:
    return {ORIGINATED_NAME: rayjob, ORIGINATED_CRD: RAYJOB_CRD}


def submitter_labels(rayjob: str) -> dict[str, str]:
    """On the submitter Job and its pods."""
    return {**originated(rayjob), lbl.CREATED_BY: lbl.CREATED_BY_VALUE}
