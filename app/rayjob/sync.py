"""The RayJob controller's sync hook: build the world, run the lifecycle, answer.

Pure: the RayJob, its observed children, the related objects and the shell's clock in; the
desired children, the status, Event intents and the next deadline out. The finalize and
customize hooks are ``app.rayjob.finalize`` and ``app.rayjob.customize``; what the shell polls
for a RayJob is ``app.rayjob.watch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.desired import Desired
from app.core.events import WARNING, Event
from app.core.observed import Observed
from app.core.status import previous_status
from app.raycluster.problems import InvalidSpec
from app.rayjob import attempts
from app.rayjob.address import dashboard_address
from app.rayjob.answer import echo, keys, resync_after
from app.rayjob.changes import changes
from app.rayjob.children import children
from app.rayjob.dashboard import DashboardView
from app.rayjob.kinds import JOB, RAYCLUSTER
from app.rayjob.lifecycle import advance
from app.rayjob.options import Options
from app.rayjob.parse import parse_rayjob
from app.rayjob.spec import managed_elsewhere
from app.rayjob.validation import invalid_status, refused_edit
from app.rayjob.world import World


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
        return Desired(echo(observed, keys(observed)), dict(previous))
    try:
        rayjob = parse_rayjob(parent, dashboard=options.dashboard)
    except InvalidSpec as invalid:
        return _invalid(observed, previous, str(invalid), _invalid_reason(invalid), now)
    address = dashboard_address(parent, observed, related, options.cluster.cluster_domain)
    world = _world(observed, related, options, dashboard, address)
    refused = refused_edit(rayjob, previous, world)
    if refused is not None:
        return _invalid(observed, previous, refused, "InvalidRayJobSpec", now)
    proof = attempts.newest(world.clusters.values(), world.submitter_jobs.values())
    ahead = attempts.caught_up(previous, proof)
    step = advance(rayjob, ahead if ahead is not None else previous, world, now)
    if ahead is not None:
        step.freeze()  # the children are newer than this parent: change none of them
    attempts.settle(step.status, previous, proof)
    answered = children(rayjob, step, observed, world, options, previous)
    events = (*step.events, *changes(rayjob, observed, answered))
    return Desired(
        answered,
        step.status,
        events,
        resync_after=resync_after(step.deadlines, now),
        delete_parent=step.delete_self,
        intents=tuple(step.intents),
    )


def _world(
    observed: Observed,
    related: Observed,
    options: Options,
    dashboard: DashboardView | None,
    address: str | None,
) -> World:
    return World(
        clusters={c.name: c for c in observed.of_kind(RAYCLUSTER)},
        submitter_jobs={j.name: j for j in observed.of_kind(JOB)},
        related_clusters={c.name: c for c in related.of_kind(RAYCLUSTER)},
        related_pods=related.pods,
        domain=options.cluster.cluster_domain,
        dashboard=dashboard if options.dashboard else None,
        poll_seconds=options.dashboard_poll_seconds,
        address=address,
        reads_dashboard=options.dashboard,
    )


def _invalid(
    observed: Observed, previous: Mapping[str, Any], problem: str, reason: str, now: datetime
) -> Desired:
    """Every child exactly as metaray last asked for it, and a status that says what is wrong
    (and keeps what the state it interrupts is: ``app.rayjob.validation``)."""
    status = invalid_status(previous, problem, now)
    attempts.settle(status, previous, None)
    event = Event(WARNING, reason, attempts.capped(f"Invalid RayJob, nothing changed: {problem}"))
    return Desired(echo(observed, keys(observed)), status, (event,))


def _invalid_reason(invalid: InvalidSpec) -> str:
    on_metadata = all(p.path.startswith(("metadata", "apiVersion")) for p in invalid.problems)
    return "InvalidRayJobMetadata" if on_metadata else "InvalidRayJobSpec"
