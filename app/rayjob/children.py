"""The children a RayJob's sync answers: every observed child as metaray last asked for it,
but for what the lifecycle's step builds (its cluster, submitter Job, head Service) or deletes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.events import WARNING, Event
from app.core.observed import Child, Observed
from app.raycluster.spec import JSONObject
from app.rayjob import attempts
from app.rayjob import labels as jl
from app.rayjob.answer import echo, keys
from app.rayjob.cluster import dashboard_url, ray_cluster, token_env, with_workers_suspended
from app.rayjob.kinds import JOB, RAYCLUSTER, SERVICE
from app.rayjob.names import submitter_job_name
from app.rayjob.options import Options
from app.rayjob.service import head_service
from app.rayjob.spec import SIDECAR_MODE, RayJob
from app.rayjob.submitter import head_image, sidecar, submitter_job, template_image
from app.rayjob.world import Action, Step, World


def children(
    rayjob: RayJob,
    step: Step,
    observed: Observed,
    world: World,
    options: Options,
    previous: Mapping[str, Any],
) -> list[Child]:
    """Every observed child as it is, but for what this step builds or deletes."""
    status = step.status
    name = status.get("rayClusterName")
    built: dict[tuple[str, str], Child] = {}
    dropped: set[tuple[str, str]] = set()
    if step.cluster == Action.DELETE:
        dropped |= {(RAYCLUSTER, c) for c in world.clusters}
    elif isinstance(name, str) and rayjob.selected_cluster is None:
        key = (RAYCLUSTER, name)
        # Never two live clusters: another one still up means this status is stale (a replayed
        # request) or the last attempt's cluster has not gone yet; either way, wait.
        alone = all(other == name for other in world.live_clusters())
        if step.cluster == Action.BUILD and key not in observed.applied and alone:
            cluster = ray_cluster(rayjob, name, _sidecar(rayjob, status, options))
            built[key] = _attempt_of(rayjob, cluster, status)
        elif step.cluster == Action.SUSPEND_WORKERS and key in observed.applied:
            suspended = with_workers_suspended(observed.applied[key])
            if suspended != dict(observed.applied[key]):  # else kept as recorded, byte for byte
                built[key] = suspended
    submitter_key = (JOB, submitter_job_name(rayjob.name))
    if step.submitter == Action.DELETE:
        dropped |= {(JOB, j) for j in world.submitter_jobs}
    elif step.submitter == Action.BUILD and submitter_key not in observed.applied:
        submitter = _submitter(rayjob, step, world, options, previous)
        if submitter is not None:
            built[submitter_key] = _attempt_of(rayjob, submitter, status)
    if step.service and isinstance(name, str) and rayjob.cluster_spec is not None:
        service = head_service(rayjob, name, _cluster_spec(world, name, rayjob), options.cluster)
        built[(SERVICE, service["metadata"]["name"])] = service
    kept = [k for k in keys(observed) if k not in dropped and k not in built]
    return [*echo(observed, kept), *(built[k] for k in sorted(built))]


def _attempt_of(rayjob: RayJob, child: JSONObject, status: Mapping[str, Any]) -> JSONObject:
    """A new cluster or submitter Job carries the attempt it is made for (and the submitter its
    mode, which the cluster carries already): a later sync of a stale parent can tell."""
    marked = attempts.mark(child, status)
    marked["metadata"]["labels"] = dict(
        sorted({**marked["metadata"]["labels"], jl.SUBMISSION_MODE: rayjob.mode}.items())
    )
    return marked


def _submitter(
    rayjob: RayJob, step: Step, world: World, options: Options, previous: Mapping[str, Any]
) -> JSONObject | None:
    """The submitter Job, once there is an address to give it (derived, never the status's)
    and an image to run it with (the user's template's, else the cluster's head image); until
    then none, so that no Job is asked for that could not run, and no Event claims one."""
    name = str(step.status.get("rayClusterName"))
    spec = _cluster_spec(world, name, rayjob)
    if rayjob.selected_cluster is not None:
        selected = world.related_clusters.get(name)
        spec = selected.spec if selected is not None else {}
    image = template_image(rayjob) or head_image(spec)
    if not image:
        message = (
            f"RayCluster {rayjob.namespace}/{name} names no head image and "
            "spec.submitterPodTemplate no image: the submitter Job cannot be created"
        )
        if previous.get("message") != message:
            step.events.append(Event(WARNING, "FailedToCreateRayJobSubmitter", message))
        step.status["message"] = message
        return None
    if world.address is None:
        return None  # the head Service (or head pod) is not observed yet: the next sync
    token = token_env(name, rayjob.namespace, spec)
    ray_job_id = str(step.status.get("jobId") or "")
    return submitter_job(rayjob, options.submitter_script, image, world.address, ray_job_id, token)


def _sidecar(rayjob: RayJob, status: Mapping[str, Any], options: Options) -> JSONObject | None:
    if rayjob.mode != SIDECAR_MODE or rayjob.spec.rayClusterSpec is None:
        return None
    url = dashboard_url(
        "", rayjob.namespace, rayjob.spec.rayClusterSpec, options.cluster.cluster_domain
    )
    port = int(url.rsplit(":", 1)[1])
    return sidecar(
        rayjob,
        options.submitter_script,
        head_image(rayjob.spec.rayClusterSpec),
        port,
        str(status.get("jobId")),
    )


def _cluster_spec(world: World, name: str, rayjob: RayJob) -> Mapping[str, Any]:
    """The spec the cluster was created with (later edits of rayClusterSpec are ignored)."""
    observed = world.clusters.get(name)
    return (
        observed.spec
        if observed is not None and observed.spec
        else rayjob.spec.rayClusterSpec or {}
    )
