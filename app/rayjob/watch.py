"""Which Ray job's dashboard the shell polls for a RayJob, and whether its cluster asks a token.

Read by the shell before each sync (``watched``) and by the finalize hook: both from the parent
and the observed and related objects only, never from an address a user could write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.observed import Observed
from app.core.status import previous_status
from app.rayjob.address import dashboard_address, selected_cluster, selected_name
from app.rayjob.dashboard import TERMINAL as TERMINAL_RAY_JOB_STATES
from app.rayjob.lifecycle import RUNNING


def watched(
    parent: Mapping[str, Any], observed: Observed, related: Observed, domain: str
) -> tuple[str, str] | None:
    """The (dashboard, job id) whose answers the next syncs of this RayJob need: while it runs
    (or waits to be let go while its Ray job may still run), None otherwise. The dashboard is
    the one derived from owned and observed objects (``app.rayjob.address``), never
    ``status.dashboardURL``; None where none can be derived."""
    status = previous_status(parent)
    ray_job_id = status.get("jobId")
    if not (isinstance(ray_job_id, str) and ray_job_id):
        return None
    metadata = parent.get("metadata")
    deleting = isinstance(metadata, Mapping) and metadata.get("deletionTimestamp") is not None
    running = status.get("jobDeploymentStatus") == RUNNING
    if not (running or (deleting and not finished(status))):
        return None
    if token_auth(parent, related):
        return None  # the poller holds no cluster's token: its questions would be refused
    url = dashboard_address(parent, observed, related, domain)
    return (url, ray_job_id) if url is not None else None


def token_auth(parent: Mapping[str, Any], related: Observed) -> bool:
    """Whether the RayJob's cluster asks for a token: the selected cluster's own authOptions
    for a clusterSelector RayJob (unknown while it is not observed: then True, so nothing
    calls it unauthenticated), else those of rayClusterSpec."""
    if selected_name(parent) is not None:
        cluster = selected_cluster(parent, related)
        return cluster is None or asks_token(cluster.spec)
    spec = parent.get("spec")
    return asks_token(spec.get("rayClusterSpec") if isinstance(spec, Mapping) else None)


def asks_token(cluster: Any) -> bool:
    """Whether a RayCluster spec turns token authentication on."""
    options = cluster.get("authOptions") if isinstance(cluster, Mapping) else None
    return isinstance(options, Mapping) and options.get("mode") == "token"


def finished(status: Mapping[str, Any]) -> bool:
    """Whether the status last saw the Ray job in a terminal state."""
    return status.get("jobStatus") in TERMINAL_RAY_JOB_STATES
