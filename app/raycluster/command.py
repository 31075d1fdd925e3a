"""The ``ray start`` command line: defaulted flags, flags derived from resources, rendering."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from app.raycluster.quantity import ceil_int, parse_quantity

DEFAULT_GCS_PORT = "6379"
METRICS_PORT = 8080
DASHBOARD_AGENT_PORT = "52365"
ULIMIT = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"
# Ray parses these as explicit values, not switches, so "true"/"false" stay "--k=v".
EXPLICIT_BOOLEANS = frozenset({"log-color", "include-dashboard", "include-log-monitor"})
# Accelerators that Ray knows by another name, passed through --resources.
CUSTOM_ACCELERATORS = {"google.com/tpu": "TPU", "aws.amazon.com/neuroncore": "neuron_cores"}


@dataclass(frozen=True, slots=True)
class Resources:
    """The Ray container's resources, as ``ray start`` should advertise them."""

    cpu: Fraction | None = None
    memory: Fraction | None = None
    gpu: Fraction | None = None
    custom: tuple[tuple[str, Fraction], ...] = ()
    # Set by a group's ``resources`` map: advertised even when zero (``CPU: "0"`` keeps Ray
    # from scheduling tasks on the head), where a zero from the container means "not given".
    explicit: frozenset[str] = frozenset()


def container_resources(container: Mapping[str, Any]) -> Resources:
    """CPU from the limit (else the request); memory, GPUs and accelerators from limits only."""
    spec = container.get("resources") or {}
    limits: Mapping[str, Any] = spec.get("limits") or {}
    requests: Mapping[str, Any] = spec.get("requests") or {}
    cpu = limits.get("cpu", requests.get("cpu"))
    memory = limits.get("memory")

    gpu = None
    custom = []
    for key in sorted(limits):
        if gpu is None and _is_gpu(key):
            gpu = parse_quantity(limits[key])
        elif key in CUSTOM_ACCELERATORS:
            custom.append((CUSTOM_ACCELERATORS[key], parse_quantity(limits[key])))
    return Resources(
        None if cpu is None else parse_quantity(cpu),
        None if memory is None else parse_quantity(memory),
        gpu,
        tuple(custom),
    )


def _is_gpu(resource: str) -> bool:
    return resource.endswith("gpu") or resource.startswith("nvidia.com/mig-")


def group_resources(base: Resources, overrides: Mapping[str, str]) -> Resources:
    """A group's ``resources`` map overrides what the container's resources say."""
    if not overrides:
        return base
    custom = dict(base.custom)
    cpu, memory, gpu = base.cpu, base.memory, base.gpu
    explicit = set(base.explicit)
    for key, raw in overrides.items():
        value = parse_quantity(raw)
        name = key.lower()
        if name == "cpu":
            cpu = value
            explicit.add("cpu")
        elif name == "memory":
            memory = value
            explicit.add("memory")
        elif _is_gpu(name):
            gpu = value
            explicit.add("gpu")
        else:
            custom[key] = value
    return Resources(cpu, memory, gpu, tuple(sorted(custom.items())), frozenset(explicit))


def _number(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else float(value)


def start_params(
    user: Mapping[str, str],
    *,
    head: bool,
    head_address: str,
    resources: Resources,
    labels: Mapping[str, str],
    autoscaling: bool,
) -> dict[str, str]:
    """The user's flags plus the ones Ray on Kubernetes needs, which the user may override."""
    defaults: dict[str, str] = {
        "metrics-export-port": str(METRICS_PORT),
        "dashboard-agent-listen-port": DASHBOARD_AGENT_PORT,
    }
    if head:
        defaults["dashboard-host"] = "0.0.0.0"
        if autoscaling:
            defaults["no-monitor"] = "true"
    else:
        defaults["address"] = head_address
    for flag, kind, amount in (
        ("num-cpus", "cpu", resources.cpu),
        ("memory", "memory", resources.memory),
        ("num-gpus", "gpu", resources.gpu),
    ):
        if amount is not None and (amount > 0 or kind in resources.explicit):
            defaults[flag] = str(ceil_int(amount))
    if resources.custom:
        custom = {name: _number(amount) for name, amount in resources.custom}
        defaults["resources"] = "'" + json.dumps(custom, separators=(",", ":")) + "'"
    if labels:
        defaults["labels"] = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    params = {**defaults, **user}
    # Ray pods must block in ray start: the container lives as long as the Ray node.
    params["block"] = "true"
    return params


def render_flags(params: Mapping[str, str]) -> str:
    """Flags in sorted order; "true"/"false" become a bare switch or nothing."""
    flags = []
    for key in sorted(params):
        value = params[key]
        lowered = value.lower()
        if lowered in ("true", "false") and key not in EXPLICIT_BOOLEANS:
            if lowered == "true":
                flags.append(f"--{key}")
        else:
            flags.append(f"--{key}={value}")
    return " ".join(flags)


def ray_start(params: Mapping[str, str], *, head: bool) -> str:
    flags = render_flags(params)
    return f"ray start --head {flags}" if head else f"ray start {flags}"


def head_port(params: Mapping[str, str]) -> str:
    return params.get("port", DEFAULT_GCS_PORT)
