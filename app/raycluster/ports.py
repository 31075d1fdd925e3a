"""Where a cluster's Ray dashboard is: one rule for every child and caller that needs it.

Two facts, each decided here only: the port Ray's dashboard listens on inside the head pod
(``rayStartParams["dashboard-port"]``, else Ray's default), and the head container's port
named ``dashboard`` (what the head Service and an Ingress expose, else the same default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DASHBOARD = "dashboard"
DEFAULT_DASHBOARD_PORT = 8265


def dashboard_listen_port(params: Mapping[str, str]) -> int:
    """The port the head's dashboard listens on (the spec checks make it a number)."""
    given = params.get("dashboard-port", "")
    return int(given) if given.isascii() and given.isdigit() else DEFAULT_DASHBOARD_PORT


def dashboard_container_port(head_group: Mapping[str, Any]) -> int:
    """The first container's port named ``dashboard`` in a raw ``headGroupSpec`` (from a model
    or from an observed object: nothing in it is trusted to have its type), else the default."""
    template = head_group.get("template")
    pod_spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    ports = first.get("ports") if isinstance(first, Mapping) else None
    for port in ports if isinstance(ports, list) else []:
        number = port.get("containerPort") if isinstance(port, Mapping) else None
        if (
            port.get("name") == DASHBOARD
            and isinstance(number, int)
            and not isinstance(number, bool)
            and 0 < number < 65536
        ):
            return number
    return DEFAULT_DASHBOARD_PORT
