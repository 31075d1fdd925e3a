"""The documents a RayJob spec embeds as text or as an object: its runtime env (YAML, or KubeRay
v0.6's base64-encoded JSON), its entrypoint resources (JSON), and its cluster spec (checked by the
RayCluster core as the cluster it becomes). Each problem is added to the caller's list."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from app.raycluster.embedded import parse_embedded
from app.raycluster.problems import Problem
from app.raycluster.spec import INT32_MAX, JSONObject, RayClusterSpec
from app.rayjob.spec import RayJobSpec


def runtime_env(spec: RayJobSpec, problems: list[Problem]) -> JSONObject | None:
    if spec.runtimeEnvYAML is not None and spec.runtimeEnv is not None:
        problems.append(Problem("spec.runtimeEnv", "cannot be combined with runtimeEnvYAML"))
        return None
    if spec.runtimeEnvYAML is not None:
        return _parsed_mapping("spec.runtimeEnvYAML", spec.runtimeEnvYAML, _yaml, problems)
    if spec.runtimeEnv is not None:
        return _parsed_mapping("spec.runtimeEnv", spec.runtimeEnv, _base64_json, problems)
    return None


def _yaml(text: str) -> Any:
    import yaml  # only for a runtimeEnvYAML: the serving process need not hold PyYAML otherwise

    return yaml.safe_load(text)


def _base64_json(text: str) -> Any:
    return json.loads(base64.b64decode(text, validate=True))


def _parsed_mapping(path: str, text: str, parse: Any, problems: list[Problem]) -> JSONObject | None:
    try:
        value = parse(text)
    except Exception as error:  # any parse failure is the user's input, reported as such
        problems.append(Problem(path, f"cannot be parsed: {type(error).__name__}"))
        return None
    if value is None:
        return None
    if not isinstance(value, dict) or not _is_json(value):
        problems.append(Problem(path, "must describe a mapping of JSON values"))
        return None
    return value


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def entrypoint_resources(spec: RayJobSpec, problems: list[Problem]) -> dict[str, float] | None:
    if spec.entrypointResources is None:
        return None
    path = "spec.entrypointResources"
    try:
        value = json.loads(spec.entrypointResources)
    except ValueError:
        problems.append(Problem(path, "must be a JSON object"))
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < INT32_MAX
        for v in value.values()
    ):
        problems.append(Problem(path, "must map resource names to non-negative numbers"))
        return None
    return {str(k): float(v) for k, v in value.items()}


def cluster_spec(
    parent: Mapping[str, Any], spec: RayJobSpec, problems: list[Problem]
) -> RayClusterSpec | None:
    """The embedded cluster spec, checked by the RayCluster core as the cluster it becomes."""
    if spec.rayClusterSpec is None:
        return None
    cluster, found = parse_embedded(parent, "spec.rayClusterSpec", spec.rayClusterSpec)
    problems += found
    return cluster
