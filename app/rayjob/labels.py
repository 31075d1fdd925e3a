"""The labels and annotations that tie a RayJob to what it creates (KubeRay's keys)."""

from __future__ import annotations

from app.raycluster import labels as lbl

ORIGINATED_NAME = "ray.io/originated-from-cr-name"
ORIGINATED_CRD = "ray.io/originated-from-crd"
SUBMISSION_MODE = "ray.io/job-submission-mode"
DISABLE_HEAD_RESTART = "ray.io/disable-provisioned-head-restart"
JOB_NAME = "batch.kubernetes.io/job-name"
RAYJOB_CRD = "RayJob"


def originated(rayjob: str) -> dict[str, str]:
    return {ORIGINATED_NAME: rayjob, ORIGINATED_CRD: RAYJOB_CRD}


def submitter_labels(rayjob: str) -> dict[str, str]:
    """On the submitter Job and its pods."""
    return {**originated(rayjob), lbl.CREATED_BY: lbl.CREATED_BY_VALUE}
