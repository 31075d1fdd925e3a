"""Resources a cluster asks for in total: the ``desired*`` status fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from app.raycluster.quantity import QuantityError, format_bytes, format_cpu, parse_quantity
from app.raycluster.spec import JSONObject, RayClusterSpec

TPU = "google.com/tpu"


def pod_requests(template: JSONObject) -> dict[str, Fraction]:
    """Per resource, the sum over the template's containers of request (else limit)."""
    totals: dict[str, Fraction] = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        limits: Mapping[str, Any] = resources.get("limits") or {}
        requests: Mapping[str, Any] = resources.get("requests") or {}
        for key in {*limits, *requests}:
            try:
                amount = parse_quantity(requests.get(key, limits.get(key)))
            except (QuantityError, TypeError):
                continue
            totals[key] = totals.get(key, Fraction(0)) + amount
    return totals


def _total(pods: Iterable[tuple[dict[str, Fraction], int]]) -> dict[str, Fraction]:
    totals: dict[str, Fraction] = {}
    for requests, count in pods:
        for key, amount in requests.items():
            totals[key] = totals.get(key, Fraction(0)) + amount * count
    return totals


def desired_resources(spec: RayClusterSpec, head_count: int) -> dict[str, str]:
    pods = [(pod_requests(spec.headGroupSpec.template), head_count)]
    pods += [(pod_requests(group.template), group.target) for group in spec.workerGroupSpecs]
    if spec.suspend:
        pods = []
    totals = _total(pods)
    gpu = sum((v for k, v in totals.items() if k.endswith("gpu")), Fraction(0))
    return {
        "desiredCPU": format_cpu(totals.get("cpu", Fraction(0))),
        "desiredGPU": format_cpu(gpu),
        "desiredMemory": format_bytes(totals.get("memory", Fraction(0))),
        "desiredTPU": format_cpu(totals.get(TPU, Fraction(0))),
    }
