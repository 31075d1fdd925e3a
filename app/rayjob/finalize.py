"""The RayJob controller's finalize hook: a RayJob is being deleted.

Its own cluster goes with it (ownerReferences); a Ray job still running on a user's cluster is
stopped first, for at most a minute: through its dashboard when metaray reads dashboards, else
by a short stop Job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from app.core.desired import Desired
from app.core.events import NORMAL, WARNING, Event
from app.core.observed import Child, Observed, ObservedObject
from app.core.status import previous_status
from app.core.time import later, parse_time
from app.raycluster.problems import InvalidSpec
from app.rayjob.address import dashboard_address
from app.rayjob.answer import echo, keys, resync_after
from app.rayjob.cluster import token_env
from app.rayjob.dashboard import TERMINAL as TERMINAL_RAY_JOB_STATES
from app.rayjob.dashboard import DashboardView, StopJob
from app.rayjob.kinds import JOB, RAYCLUSTER
from app.rayjob.names import stopper_job_name
from app.rayjob.options import Options
from app.rayjob.parse import parse_rayjob
from app.rayjob.spec import CLUSTER_SELECTOR_KEY, RayJob, managed_elsewhere
from app.rayjob.submitter import head_image, stopper_job
from app.rayjob.watch import asks_token, finished

# How long a deleted RayJob waits for its stop Job before letting go anyway.
STOP_TIMEOUT_SECONDS = 60


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
    everything = echo(observed, keys(observed))
    if managed_elsewhere(parent):  # its manager stops what it runs
        return Desired(everything, dict(previous), finalized=True)
    try:
        rayjob = parse_rayjob(parent, dashboard=options.dashboard)
    except InvalidSpec:
        found = _from_status(parent, previous, observed, options)
        if found is None:
            return Desired(everything, dict(previous), finalized=True)
        rayjob = found
    cluster = _stop_needed(rayjob, previous, related)
    if cluster is None:
        return Desired(everything, dict(previous), finalized=True)
    url = dashboard_address(parent, observed, related, options.cluster.cluster_domain)
    if url is None:  # no Running head pod of that cluster: no Ray job runs there to stop
        return Desired(everything, dict(previous), finalized=True)
    deleted = parse_time((parent.get("metadata") or {}).get("deletionTimestamp")) or now
    give_up = later(deleted, STOP_TIMEOUT_SECONDS) or now + timedelta(seconds=STOP_TIMEOUT_SECONDS)
    if options.dashboard and not asks_token(cluster.spec):
        return _stop_through_dashboard(url, previous, everything, dashboard, now, give_up)
    name = stopper_job_name(rayjob.name)
    stopper = next((j for j in observed.of_kind(JOB) if j.name == name), None)
    done = stopper is not None and (
        stopper.has_condition("Complete") or stopper.has_condition("Failed")
    )
    if done or now >= give_up:
        return Desired(everything, dict(previous), finalized=True)
    if stopper is not None:
        return Desired(
            everything, dict(previous), finalized=False, resync_after=resync_after([give_up], now)
        )
    image = head_image(cluster.spec)
    if not image:
        warning = Event(
            WARNING,
            "FailedToStopRayJob",
            f"RayCluster {rayjob.namespace}/{cluster.name} names no head image to run a stop Job "
            f"with: Ray job {previous.get('jobId')} was not stopped",
        )
        return Desired(everything, dict(previous), (warning,), finalized=True)
    token = token_env(cluster.name, rayjob.namespace, cluster.spec)
    ray_job_id = str(previous.get("jobId"))
    new_stopper = stopper_job(rayjob, options.submitter_script, image, url, ray_job_id, token)
    event = Event(
        NORMAL,
        "StoppingRayJob",
        f"Stopping Ray job {previous.get('jobId')} on RayCluster {rayjob.namespace}/{cluster.name}",
    )
    return Desired(
        [*everything, new_stopper],
        dict(previous),
        (event,),
        finalized=False,
        resync_after=resync_after([give_up], now),
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
    ray_job_id = str(previous.get("jobId"))
    view = dashboard if dashboard is not None and dashboard.about(url, ray_job_id) else None
    stopped = (
        view is not None
        and view.failing_since is None
        and (
            not view.found
            or (view.info is not None and view.info.status in TERMINAL_RAY_JOB_STATES)
        )
    )
    if stopped or now >= give_up:
        return Desired(everything, dict(previous), finalized=True)
    return Desired(
        everything,
        dict(previous),
        finalized=False,
        resync_after=resync_after([min(give_up, now + timedelta(seconds=2))], now),
        intents=(StopJob(url, ray_job_id),),
    )


def _stop_needed(
    rayjob: RayJob, previous: Mapping[str, Any], related: Observed
) -> ObservedObject | None:
    """The user's cluster, when a Ray job may still run there."""
    name = rayjob.selected_cluster
    if name is None or not previous.get("jobId"):
        return None
    if finished(previous):
        return None
    return next((c for c in related.of_kind(RAYCLUSTER) if c.name == name), None)
