"""What one RayJob sync sees (``World``) and what one step of its lifecycle decides (``Step``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.core.events import Event
from app.core.observed import ObservedObject, ObservedPod
from app.rayjob.dashboard import DashboardView, Intent


@dataclass(frozen=True, slots=True)
class World:
    """What was observed: the RayJob's children and the related objects, by name."""

    clusters: Mapping[str, ObservedObject]
    submitter_jobs: Mapping[str, ObservedObject]
    related_clusters: Mapping[str, ObservedObject]
    related_pods: tuple[ObservedPod, ...]
    domain: str
    # The shell's latest word from the Ray job's dashboard (None: not read, or not yet).
    dashboard: DashboardView | None = None
    # How soon to look again while the dashboard decides (its answers arrive without an event).
    poll_seconds: float = 5.0
    # Whether the shell reads dashboards at all (METARAY_DASHBOARD).
    reads_dashboard: bool = False
    # The dashboard's address derived from owned and observed objects (app/rayjob/address.py),
    # None while there is none: the only one any intent or pod is given, never dashboardURL.
    address: str | None = None

    def view(self, status: Mapping[str, Any]) -> DashboardView | None:
        """The dashboard's word on this attempt's Ray job, if the shell has one."""
        view = self.dashboard
        if view is None or self.address is None:
            return None
        return view if view.about(self.address, status.get("jobId")) else None

    def live_clusters(self) -> list[str]:
        return sorted(n for n, c in self.clusters.items() if c.metadata.deletionTimestamp is None)


class Action(StrEnum):
    """What a step does with a child: the children follow from it in ``app.rayjob.children``."""

    BUILD = "build"  # create it if it is missing
    KEEP = "keep"  # as observed
    DELETE = "delete"
    SUSPEND_WORKERS = "suspend-workers"  # the cluster only: its worker groups suspended


@dataclass(slots=True)
class Step:
    """One step's decisions; the children follow from them in ``app.rayjob.children``."""

    status: dict[str, Any]
    cluster: Action = Action.KEEP
    submitter: Action = Action.KEEP  # never SUSPEND_WORKERS
    service: bool = False  # the RayJob's head Service for the current cluster
    events: list[Event] = field(default_factory=list)
    deadlines: list[datetime] = field(default_factory=list)
    delete_self: bool = False
    intents: list[Intent] = field(default_factory=list)

    def hold(self) -> None:
        """Carry out no deletion: the decision behind it is not yet in the observed status."""
        if self.cluster in (Action.DELETE, Action.SUSPEND_WORKERS):
            self.cluster = Action.KEEP
        if self.submitter == Action.DELETE:
            self.submitter = Action.KEEP
        self.delete_self = False

    def freeze(self) -> None:
        """Change no child at all (the observed children are newer than the parent)."""
        self.hold()
        self.cluster = self.submitter = Action.KEEP
        self.service = False
        self.intents.clear()
