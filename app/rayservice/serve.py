"""Ray Serve as the core sees it: plain values in (what the shell last read from a cluster's
dashboard), intents out (the config the shell should PUT there).

Whether a config is applied is read from Ray's own ``deployed_app_config``, compared as parsed
data, never remembered: a restart of metaray re-applies nothing and forgets nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AppStatus(StrEnum):
    """Ray Serve's application states (``ApplicationStatus``)."""

    NOT_STARTED = "NOT_STARTED"
    DEPLOYING = "DEPLOYING"
    RUNNING = "RUNNING"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    DELETING = "DELETING"
    UNHEALTHY = "UNHEALTHY"


DEFAULT_APP = "default"  # Ray's name for an application without one
JSONConfig = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Deployment:
    status: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class Application:
    status: str
    message: str = ""
    deployments: tuple[tuple[str, Deployment], ...] = ()
    deployed: Any = None  # Ray's deployed_app_config, parsed


@dataclass(frozen=True, slots=True)
class ServeView:
    """The shell's latest word from one cluster's dashboard.

    ``applications`` is None until the dashboard answered once; ``failing_since`` (RFC 3339) is
    set while every query since then failed (the applications are then the last ones read).
    """

    url: str
    applications: tuple[tuple[str, Application], ...] | None = None
    failing_since: str | None = None
    error: str = ""
    # Ray's ``target_capacity`` (percent; None: every replica, as without one).
    target_capacity: float | None = None

    @property
    def fresh(self) -> bool:
        return self.applications is not None and self.failing_since is None


@dataclass(frozen=True, slots=True)
class ServeTarget:
    """A cluster whose dashboard the shell should read: ``url`` is ``host:port``, derived from
    the head Service the cluster's controller owns (never from a status or a user's name)."""

    cluster: str
    url: str
    # The cluster's Ray auth token (authOptions mode token), sent as ``Authorization: Bearer``;
    # empty without token auth. Never printed.
    token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ApplyServeConfig:
    """``PUT /api/serve/applications/`` with ``config`` (canonical JSON text)."""

    cluster: str
    url: str
    config: str
    # Serve's target_capacity in percent (incremental upgrades), sent with the config.
    target_capacity: int | None = None

    def body(self) -> Any:
        body = json.loads(self.config)
        if self.target_capacity is not None and isinstance(body, dict):
            body["target_capacity"] = self.target_capacity
        return body

    @property
    def key(self) -> str:
        """What makes two PUTs the same: the config and the capacity."""
        return (
            self.config if self.target_capacity is None else f"{self.config}@{self.target_capacity}"
        )


def canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def app_names(config: Mapping[str, Any]) -> list[str]:
    return [str(app.get("name") or DEFAULT_APP) for app in config.get("applications") or []]


def deployed(config: Mapping[str, Any] | None, view: ServeView) -> bool:
    """Whether Ray runs exactly the applications of ``config``, each as configured (Ray may add
    defaults to what it reports: every field the config sets must match, no more)."""
    if view.applications is None:
        return False
    if config is None:
        return True  # nothing to apply: whatever runs is what was asked for
    running = dict(view.applications)
    wanted = {str(app.get("name") or DEFAULT_APP): app for app in config.get("applications") or []}
    if set(running) != set(wanted):
        return False
    return all(_within(app, running[name].deployed) for name, app in wanted.items())


def _within(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _within(value, actual[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(wanted) == len(actual)
            and all(_within(w, a) for w, a in zip(wanted, actual, strict=True))
        )
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    if isinstance(wanted, int | float) and isinstance(actual, int | float):
        return float(wanted) == float(actual)
    return bool(wanted == actual)


def ready(config: Mapping[str, Any] | None, view: ServeView | None) -> bool:
    """Traffic may go to this cluster: a fresh answer, at least one application, every one
    RUNNING, and the config asked for is the one deployed (a dashboard that says RUNNING for
    another config does not count)."""
    if view is None or not view.fresh or not view.applications:
        return False
    running = all(app.status == AppStatus.RUNNING for _, app in view.applications)
    return running and deployed(config, view)


def applied_capacity(view: ServeView | None) -> int | None:
    """The target_capacity Ray runs its applications at: None while it runs none (or has not
    answered), 100 when it runs them without one."""
    if view is None or not view.fresh or not view.applications:
        return None
    capacity = view.target_capacity
    if capacity is None:
        return 100
    # Only a percent counts: the shell reads Ray's answer leniently (NaN, Infinity, 1e300).
    return round(capacity) if math.isfinite(capacity) and 0 <= capacity <= 100 else None


def running_config(view: ServeView) -> JSONConfig:
    """The applications Ray runs, as Ray reports their config: what a cluster whose config is
    frozen (the active one during an upgrade) is sent again with another capacity."""
    return {"applications": [app.deployed for _, app in view.applications or () if app.deployed]}


def statuses(view: ServeView | None) -> dict[str, Any] | None:
    """``applicationStatuses`` as KubeRay writes them; None without an answer."""
    if view is None or view.applications is None:
        return None
    return {
        name: {
            "status": app.status,
            **({"message": app.message} if app.message else {}),
            "serveDeploymentStatuses": {
                dep: {"status": d.status, **({"message": d.message} if d.message else {})}
                for dep, d in app.deployments
            },
        }
        for name, app in view.applications
    }
