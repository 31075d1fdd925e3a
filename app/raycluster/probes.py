"""Liveness and readiness probes for Ray containers that the user left without one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.raycluster.ports import dashboard_listen_port

# From this Ray version on, the dashboard agent serves one health endpoint for both roles.
HTTP_HEALTHZ_SINCE = (2, 53)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def _uses_http(ray_version: str | None) -> bool:
    match = _VERSION.match(ray_version or "")
    return match is not None and (int(match[1]), int(match[2])) >= HTTP_HEALTHZ_SINCE


def _handler(params: Mapping[str, str], *, head: bool, ray_version: str | None) -> dict[str, Any]:
    agent = params["dashboard-agent-listen-port"]
    if _uses_http(ray_version):
        port: int | str = int(agent) if agent.isascii() and agent.isdigit() else agent
        return {"httpGet": {"path": "/api/healthz", "port": port}}
    checks = [f"wget --tries 1 -T 2 -q -O- http://localhost:{agent}/api/local_raylet_healthz"]
    if head:
        dashboard = dashboard_listen_port(params)
        checks.append(f"wget --tries 1 -T 10 -q -O- http://localhost:{dashboard}/api/gcs_healthz")
    script = " && ".join(f"{check} | grep success" for check in checks)
    return {"exec": {"command": ["bash", "-c", script]}}


def add_probes(
    container: dict[str, Any], params: Mapping[str, str], *, head: bool, ray_version: str | None
) -> None:
    timeout = 5 if head else 2
    timing = {
        "readinessProbe": {"initialDelaySeconds": 10, "failureThreshold": 10},
        "livenessProbe": {"initialDelaySeconds": 30, "failureThreshold": 120},
    }
    for probe, numbers in timing.items():
        if probe in container:
            continue
        container[probe] = {
            **_handler(params, head=head, ray_version=ray_version),
            "initialDelaySeconds": numbers["initialDelaySeconds"],
            "timeoutSeconds": timeout,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": numbers["failureThreshold"],
        }
