"""The RayJob core's operator-wide settings.

A module of its own so that the shell's settings can build them without importing the core
(its spec models cost memory until the first RayJob sync needs them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.raycluster.options import Options as ClusterOptions


@dataclass(frozen=True, slots=True)
class Options:
    """Operator-wide settings, from the shell: the cluster core's, and the submitter script's
    source (the script ships with metaray; the core only embeds its text)."""

    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    submitter_script: str = ""
    # Whether the shell reads Ray dashboards (METARAY_DASHBOARD), and how often a RayJob whose
    # state the dashboard decides is synced again to pick up its answers.
    dashboard: bool = False
    dashboard_poll_seconds: float = 5.0
