"""A RayJob parent, validated and defaulted into a ``RayJob``, or every problem it has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import check_identity, pydantic_problems
from app.rayjob import spec_documents as documents
from app.rayjob.spec import (
    HTTP_MODE,
    INTERACTIVE_MODE,
    K8S_JOB_MODE,
    MAX_RAYJOB_NAME,
    SIDECAR_MODE,
    RayJob,
    RayJobSpec,
)
from app.rayjob.spec_checks import check_spec, check_with_cluster


def parse_rayjob(parent: Mapping[str, Any], dashboard: bool = True) -> RayJob:
    """Validate and default a RayJob object, or raise ``InvalidSpec`` naming every problem.

    ``dashboard`` says whether metaray reads Ray dashboards: HTTPMode and InteractiveMode need
    it."""
    problems = list(check_identity(parent, MAX_RAYJOB_NAME))
    raw = parent.get("spec")
    if not isinstance(raw, Mapping):
        raise InvalidSpec([*problems, Problem("spec", "must be an object")])
    try:
        spec = RayJobSpec.model_validate(raw)
    except ValidationError as error:
        raise InvalidSpec([*problems, *pydantic_problems(error)]) from None
    problems += check_spec(spec)
    if spec.submissionMode in (HTTP_MODE, INTERACTIVE_MODE) and not dashboard:
        problems.append(
            Problem(
                "spec.submissionMode",
                f"{spec.submissionMode} needs the Ray dashboard, which this metaray does not "
                f"read (METARAY_DASHBOARD=off): use {K8S_JOB_MODE} or {SIDECAR_MODE}",
            )
        )
    runtime_env = documents.runtime_env(spec, problems)
    resources = documents.entrypoint_resources(spec, problems)
    cluster_spec = documents.cluster_spec(parent, spec, problems)
    if cluster_spec is not None:
        problems += check_with_cluster(spec, cluster_spec)
    if problems:
        raise InvalidSpec(problems)
    metadata = parent["metadata"]
    return RayJob(
        name=metadata["name"],
        namespace=metadata.get("namespace") or "default",
        uid=metadata.get("uid") or "",
        generation=_generation(metadata),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        spec=spec,
        cluster_spec=cluster_spec,
        runtime_env=runtime_env,
        entrypoint_resources=resources,
    )


def _generation(metadata: Mapping[str, Any]) -> int:
    generation = metadata.get("generation")
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else 0
