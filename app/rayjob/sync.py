"""The entry points of the RayJob core: Metacontroller's sync, finalize and customize hooks.

Pure: the RayJob, its observed children, the related objects and the shell's clock in; the
desired children, the status, Event intents and the next deadline out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from app.core.desired import Desired
from app.core.events import NORMAL, WARNING, Event
from app.core.observed import Child, Observed, ObservedObject
from app.core.status import previous_status
from app.core.time import later, parse_time
from app.raycluster import labels as lbl
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import JSONObject
from app.rayjob import attempts
from app.rayjob import labels as jl
from app.rayjob.address import dashboard_address, selected_cluster, selected_name
from app.rayjob.cluster import (
    RAYCLUSTER_API,
    RAYCLUSTER_KIND,
    dashboard_url,
    ray_cluster,
    token_env,
    with_workers_suspended,
)
from app.rayjob.dashboard import TERMINAL as TERMINAL_JOB_STATES
from app.rayjob.dashboard import DashboardView, StopJob
from app.rayjob.kinds import JOB, RAYCLUSTER, SERVICE
from app.rayjob.lifecycle import RUNNING, advance
from app.rayjob.names import stop_job_name, submitter_job_name
from app.rayjob.options import Options as Options  # re-exported: the core's users name it here
from app.rayjob.service import head_service
from app.rayjob.spec import (
    CLUSTER_SELECTOR_KEY,
    SIDECAR_MODE,
    RayJob,
    managed_elsewhere,
    parse_rayjob,
)
from app.rayjob.submitter import head_image, sidecar, stop_job, submitter_job, template_image
from app.rayjob.validation import invalid_status, refused_edit
from app.rayjob.world import Action, Step, World

# How long a deleted RayJob waits for its stop Job before letting go anyway.
STOP_TIMEOUT_SECONDS = 60
# A deadline is looked at this long after it falls due (KubeRay's requeue margin).
RESYNC_MARGIN_SECONDS = 2
_CREATED = {
    RAYCLUSTER: "CreatedRayCluster",
    JOB: "CreatedRayJobSubmitter",
    SERVICE: "CreatedService",
}
_DELETED = {RAYCLUSTER: "DeletedRayCluster", JOB: "DeletedRayJobSubmitter"}


def sync(
    parent: Mapping[str, Any],
    observed: Observed,
    related: Observed,
    now: datetime,
    options: Options | None = None,
    dashboard: DashboardView | None = None,
) -> Desired:
    """``dashboard`` is the shell's latest word from the dashboard named by ``watched``."""
    options = options or Options()
    previous = previous_status(parent)
    if managed_elsewhere(parent):
        return Desired(_echo(observed, _keys(observed)), dict(previous))
    try:
        job = parse_rayjob(parent, dashboard=options.dashboard)
    except InvalidSpec as invalid:
        return _invalid(observed, previous, str(invalid), _invalid_reason(invalid), now)
    address = dashboard_address(parent, observed, related, options.cluster.cluster_domain)
    world = _world(observed, related, options, dashboard, address)
    refused = refused_edit(job, previous, world)
    if refused is not None:
        return _invalid(observed, previous, refused, "InvalidRayJobSpec", now)
    proof = attempts.newest(world.clusters.values(), world.jobs.values())
    ahead = attempts.caught_up(previous, proof)
    step = advance(job, ahead if ahead is not None else previous, world, now)
    if ahead is not None:
        step.freeze()  # the children are newer than this parent: change none of them
    attempts.settle(step.status, previous, proof)
    children = _children(job, step, observed, world, options, previous)
    events = (*step.events, *_changes(job, observed, children))
    return Desired(
        children,
        step.status,
        events,
        resync_after=_resync(step.deadlines, now),
        delete_parent=step.delete_self,
        intents=tuple(step.intents),
    )


def watched(
    parent: Mapping[str, Any], observed: Observed, related: Observed, domain: str
) -> tuple[str, str] | None:
    """The (dashboard, job id) whose answers the next syncs of this RayJob need: while it runs
    (or waits to be let go while its Ray job may still run), None otherwise. The dashboard is
    the one derived from owned and observed objects (``app.rayjob.address``), never
    ``status.dashboardURL``; None where none can be derived."""
    status = previous_status(parent)
    job = status.get("jobId")
    if not (isinstance(job, str) and job):
        return None
    metadata = parent.get("metadata")
    deleting = isinstance(metadata, Mapping) and metadata.get("deletionTimestamp") is not None
    running = status.get("jobDeploymentStatus") == RUNNING
    if not (running or (deleting and not _finished(status))):
        return None
    if token_auth(parent, related):
        return None  # the poller holds no cluster's token: its questions would be refused
    url = dashboard_address(parent, observed, related, domain)
    return (url, job) if url is not None else None


def token_auth(parent: Mapping[str, Any], related: Observed) -> bool:
    """Whether the RayJob's cluster asks for a token: the selected cluster's own authOptions
    for a clusterSelector RayJob (unknown while it is not observed: then True, so nothing
    calls it unauthenticated), else those of rayClusterSpec."""
    if selected_name(parent) is not None:
        cluster = selected_cluster(parent, related)
        return cluster is None or _token_auth(cluster.spec)
    spec = parent.get("spec")
    return _token_auth(spec.get("rayClusterSpec") if isinstance(spec, Mapping) else None)


def _token_auth(cluster: Any) -> bool:
    options = cluster.get("authOptions") if isinstance(cluster, Mapping) else None
    return isinstance(options, Mapping) and options.get("mode") == "token"


def finalize(
    parent: Mapping[str, Any],
    observed: Observed,
    related: Observed,
    now: datetime,
    options: Options | None = None,
    dashboard: DashboardView | None = None,
) -> Desired:
    """A RayJob is being deleted. Its own cluster goes with it (ownerReferences); a Ray job
    still running on a user's cluster is stopped first, for at most a minute: through its
    dashboard when metaray reads dashboards, else by a short Job."""
    options = options or Options()
    previous = previous_status(parent)
    everything = _echo(observed, _keys(observed))
    if managed_elsewhere(parent):  # its manager stops what it runs
        return Desired(everything, dict(previous), finalized=True)
    try:
        job = parse_rayjob(parent, dashboard=options.dashboard)
    except InvalidSpec:
        found = _from_status(parent, previous, observed, options)
        if found is None:
            return Desired(everything, dict(previous), finalized=True)
        job = found
    cluster = _stop_needed(job, previous, related)
    if cluster is None:
        return Desired(everything, dict(previous), finalized=True)
    url = dashboard_address(parent, observed, related, options.cluster.cluster_domain)
    if url is None:  # no Running head pod of that cluster: no Ray job runs there to stop
        return Desired(everything, dict(previous), finalized=True)
    deleted = parse_time((parent.get("metadata") or {}).get("deletionTimestamp")) or now
    give_up = later(deleted, STOP_TIMEOUT_SECONDS) or now + timedelta(seconds=STOP_TIMEOUT_SECONDS)
    if options.dashboard and not _token_auth(cluster.spec):
        return _stop_through_dashboard(url, previous, everything, dashboard, now, give_up)
    name = stop_job_name(job.name)
    stopper = next((j for j in observed.of_kind(JOB) if j.name == name), None)
    done = stopper is not None and (
        stopper.has_condition("Complete") or stopper.has_condition("Failed")
    )
    if done or now >= give_up:
        return Desired(everything, dict(previous), finalized=True)
    if stopper is not None:
        return Desired(
            everything, dict(previous), finalized=False, resync_after=_resync([give_up], now)
        )
    image = head_image(cluster.spec)
    if not image:
        warning = Event(
            WARNING,
            "FailedToStopRayJob",
            f"RayCluster {job.namespace}/{cluster.name} names no head image to run a stop Job "
            f"with: Ray job {previous.get('jobId')} was not stopped",
        )
        return Desired(everything, dict(previous), (warning,), finalized=True)
    token = token_env(cluster.name, job.namespace, cluster.spec)
    job_id = str(previous.get("jobId"))
    job_object = stop_job(job, options.submitter_script, image, url, job_id, token)
    event = Event(
        NORMAL,
        "StoppingRayJob",
        f"Stopping Ray job {previous.get('jobId')} on RayCluster {job.namespace}/{cluster.name}",
    )
    return Desired(
        [*everything, job_object],
        dict(previous),
        (event,),
        finalized=False,
        resync_after=_resync([give_up], now),
    )


def _from_status(
    parent: Mapping[str, Any], previous: Mapping[str, Any], observed: Observed, options: Options
) -> RayJob | None:
    """A RayJob deleted with a spec that is now invalid: whether its Ray job may still run on a
    cluster it does not own is decided from its status (the cluster it ran on, its job id),
    as the RayJob that stands for it; None when its own cluster takes the job with it."""
    name = previous.get("rayClusterName")
    owned = {c.name for c in observed.of_kind(RAYCLUSTER)}
    if not isinstance(name, str) or not name or name in owned or not previous.get("jobId"):
        return None
    spec = {"clusterSelector": {CLUSTER_SELECTOR_KEY: name}, "entrypoint": "stop"}
    try:
        return parse_rayjob({**parent, "spec": spec}, dashboard=options.dashboard)
    except InvalidSpec:  # the metadata itself is wrong: nothing can be named after it
        return None


def _stop_through_dashboard(
    url: str,
    previous: Mapping[str, Any],
    everything: list[Child],
    dashboard: DashboardView | None,
    now: datetime,
    give_up: datetime,
) -> Desired:
    """``url``: the derived address (``app.rayjob.address``), never the status's."""
    job_id = str(previous.get("jobId"))
    view = dashboard if dashboard is not None and dashboard.about(url, job_id) else None
    stopped = (
        view is not None
        and view.failing_since is None
        and (not view.found or (view.info is not None and view.info.status in TERMINAL_JOB_STATES))
    )
    if stopped or now >= give_up:
        return Desired(everything, dict(previous), finalized=True)
    return Desired(
        everything,
        dict(previous),
        finalized=False,
        resync_after=_resync([min(give_up, now + timedelta(seconds=2))], now),
        intents=(StopJob(url, job_id),),
    )


def _finished(status: Mapping[str, Any]) -> bool:
    return status.get("jobStatus") in TERMINAL_JOB_STATES


def customize(parent: Mapping[str, Any]) -> JSONObject:
    """The related objects a RayJob's sync needs: its submitter pods (and, in SidecarMode, its
    head pod), and the user's RayCluster in clusterSelector mode. Depends on the parent's spec
    only: Metacontroller caches the answer per generation."""
    metadata = parent.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    rules: list[JSONObject] = []
    if isinstance(name, str) and name:
        rules.append(
            {
                "apiVersion": "v1",
                "resource": "pods",
                "labelSelector": {"matchLabels": jl.originated(name)},
            }
        )
    spec = parent.get("spec")
    selector = spec.get("clusterSelector") if isinstance(spec, Mapping) else None
    selected = selector.get(CLUSTER_SELECTOR_KEY) if isinstance(selector, Mapping) else None
    if isinstance(selected, str) and selected:
        rules.append({"apiVersion": RAYCLUSTER_API, "resource": "rayclusters", "names": [selected]})
        # Its head pod: the only address of a user's cluster metaray calls (app.rayjob.address).
        rules.append(
            {
                "apiVersion": "v1",
                "resource": "pods",
                "labelSelector": {"matchLabels": lbl.head_selector(selected)},
            }
        )
    if isinstance(namespace, str) and namespace:
        rules = [{**rule, "namespace": namespace} for rule in rules]
    return {"relatedResources": rules}


def _world(
    observed: Observed,
    related: Observed,
    options: Options,
    dashboard: DashboardView | None,
    address: str | None,
) -> World:
    return World(
        clusters={c.name: c for c in observed.of_kind(RAYCLUSTER)},
        jobs={j.name: j for j in observed.of_kind(JOB)},
        related_clusters={c.name: c for c in related.of_kind(RAYCLUSTER)},
        related_pods=related.pods,
        domain=options.cluster.cluster_domain,
        dashboard=dashboard if options.dashboard else None,
        poll_seconds=options.dashboard_poll_seconds,
        address=address,
        reads_dashboard=options.dashboard,
    )


def _children(
    job: RayJob,
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
    elif isinstance(name, str) and job.selected_cluster is None:
        key = (RAYCLUSTER, name)
        # Never two live clusters: another one still up means this status is stale (a replayed
        # request) or the last attempt's cluster has not gone yet; either way, wait.
        alone = all(other == name for other in world.live_clusters())
        if step.cluster == Action.BUILD and key not in observed.applied and alone:
            cluster = ray_cluster(job, name, _sidecar(job, status, options))
            built[key] = _attempt_of(job, cluster, status)
        elif step.cluster == Action.SUSPEND_WORKERS and key in observed.applied:
            suspended = with_workers_suspended(observed.applied[key])
            if suspended != dict(observed.applied[key]):  # else kept as recorded, byte for byte
                built[key] = suspended
    submitter_key = (JOB, submitter_job_name(job.name))
    if step.submitter == Action.DELETE:
        dropped |= {(JOB, j) for j in world.jobs}
    elif step.submitter == Action.BUILD and submitter_key not in observed.applied:
        submitter = _submitter(job, step, world, options, previous)
        if submitter is not None:
            built[submitter_key] = _attempt_of(job, submitter, status)
    if step.service and isinstance(name, str) and job.cluster_spec is not None:
        service = head_service(job, name, _cluster_spec(world, name, job), options.cluster)
        built[(SERVICE, service["metadata"]["name"])] = service
    kept = [k for k in _keys(observed) if k not in dropped and k not in built]
    return [*_echo(observed, kept), *(built[k] for k in sorted(built))]


def _attempt_of(job: RayJob, child: JSONObject, status: Mapping[str, Any]) -> JSONObject:
    """A new cluster or submitter Job carries the attempt it is made for (and the submitter its
    mode, which the cluster carries already): a later sync of a stale parent can tell."""
    marked = attempts.mark(child, status)
    marked["metadata"]["labels"] = dict(
        sorted({**marked["metadata"]["labels"], jl.SUBMISSION_MODE: job.mode}.items())
    )
    return marked


def _submitter(
    job: RayJob, step: Step, world: World, options: Options, previous: Mapping[str, Any]
) -> JSONObject | None:
    """The submitter Job, once there is an address to give it (derived, never the status's)
    and an image to run it with (the user's template's, else the cluster's head image); until
    then none, so that no Job is asked for that could not run, and no Event claims one."""
    name = str(step.status.get("rayClusterName"))
    spec = _cluster_spec(world, name, job)
    if job.selected_cluster is not None:
        selected = world.related_clusters.get(name)
        spec = selected.spec if selected is not None else {}
    image = template_image(job) or head_image(spec)
    if not image:
        message = (
            f"RayCluster {job.namespace}/{name} names no head image and "
            "spec.submitterPodTemplate no image: the submitter Job cannot be created"
        )
        if previous.get("message") != message:
            step.events.append(Event(WARNING, "FailedToCreateRayJobSubmitter", message))
        step.status["message"] = message
        return None
    if world.address is None:
        return None  # the head Service (or head pod) is not observed yet: the next sync
    token = token_env(name, job.namespace, spec)
    job_id = str(step.status.get("jobId") or "")
    return submitter_job(job, options.submitter_script, image, world.address, job_id, token)


def _sidecar(job: RayJob, status: Mapping[str, Any], options: Options) -> JSONObject | None:
    if job.mode != SIDECAR_MODE or job.spec.rayClusterSpec is None:
        return None
    url = dashboard_url("", job.namespace, job.spec.rayClusterSpec, options.cluster.cluster_domain)
    port = int(url.rsplit(":", 1)[1])
    return sidecar(
        job,
        options.submitter_script,
        head_image(job.spec.rayClusterSpec),
        port,
        str(status.get("jobId")),
    )


def _cluster_spec(world: World, name: str, job: RayJob) -> Mapping[str, Any]:
    """The spec the cluster was created with (later edits of rayClusterSpec are ignored)."""
    observed = world.clusters.get(name)
    return (
        observed.spec if observed is not None and observed.spec else job.spec.rayClusterSpec or {}
    )


def _stop_needed(
    job: RayJob, previous: Mapping[str, Any], related: Observed
) -> ObservedObject | None:
    """The user's cluster, when a Ray job may still run there."""
    name = job.selected_cluster
    if name is None or not previous.get("jobId"):
        return None
    if _finished(previous):
        return None
    return next((c for c in related.of_kind(RAYCLUSTER) if c.name == name), None)


def _invalid(
    observed: Observed, previous: Mapping[str, Any], problem: str, reason: str, now: datetime
) -> Desired:
    """Every child exactly as metaray last asked for it, and a status that says what is wrong
    (and keeps what the state it interrupts is: ``app.rayjob.validation``)."""
    status = invalid_status(previous, problem, now)
    attempts.settle(status, previous, None)
    event = Event(WARNING, reason, attempts.capped(f"Invalid RayJob, nothing changed: {problem}"))
    return Desired(_echo(observed, _keys(observed)), status, (event,))


def _invalid_reason(invalid: InvalidSpec) -> str:
    on_metadata = all(p.path.startswith(("metadata", "apiVersion")) for p in invalid.problems)
    return "InvalidRayJobMetadata" if on_metadata else "InvalidRayJobSpec"


def _changes(job: RayJob, observed: Observed, children: list[Child]) -> list[Event]:
    """Created and Deleted events, from the difference between observed and answered."""
    answered = {(_key(c), str(c["metadata"]["name"])) for c in children}
    events = []
    for kind, name in sorted(answered - set(observed.keys())):
        if kind in _CREATED:
            what = _what(kind)
            events.append(Event(NORMAL, _CREATED[kind], f"Created {what} {job.namespace}/{name}"))
    live = {
        (k, o.name)
        for k in _DELETED
        for o in observed.of_kind(k)
        if not o.metadata.deletionTimestamp
    }
    for kind, name in sorted(live - answered):
        events.append(
            Event(NORMAL, _DELETED[kind], f"Deleted {_what(kind)} {job.namespace}/{name}")
        )
    return events


def _what(kind: str) -> str:
    return {RAYCLUSTER: RAYCLUSTER_KIND, JOB: "submitter Job", SERVICE: "Service"}[kind]


def _key(child: Child) -> str:
    return f"{child['kind']}.{child['apiVersion']}"


def _keys(observed: Observed) -> list[tuple[str, str]]:
    return sorted(observed.keys())


def _echo(observed: Observed, keys: Iterable[tuple[str, str]]) -> list[Child]:
    return [observed.applied[key] for key in keys if key in observed.applied]


def _resync(deadlines: list[datetime], now: datetime) -> float | None:
    if not deadlines:
        return None
    return max((min(deadlines) - now).total_seconds(), 0) + RESYNC_MARGIN_SECONDS
