"""A minimal schema check of the Gateway API's Gateway and HTTPRoute (gateway.networking.k8s.io/v1).

The published CRDs (kubernetes-sigs/gateway-api, config/crd/standard) cannot be downloaded here,
so this module states by hand what metaray writes, with the constraints the v1 CRDs put on those
fields: a Gateway's class and listeners (name, protocol, port 1-65535), an HTTPRoute's parent
references and one rule of path matches and weighted Service backends (weight 0-1000000). Strict
where metaray writes (an unknown field would be pruned by the API server), no more complete."""

from __future__ import annotations

from typing import Any

import jsonschema

_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
_SECTION = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
GATEWAY_SPEC = {
    "type": "object",
    "required": ["gatewayClassName", "listeners"],
    "additionalProperties": False,
    "properties": {
        "gatewayClassName": _NAME,
        "listeners": {
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": {
                "type": "object",
                "required": ["name", "port", "protocol"],
                "additionalProperties": False,
                "properties": {"name": _SECTION, "port": _PORT, "protocol": {"type": "string"}},
            },
        },
    },
}
_BACKEND = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": _NAME,
        "namespace": {"type": "string"},
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
    },
}
_MATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                "value": {"type": "string", "maxLength": 1024},
            },
        }
    },
}
HTTPROUTE_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "parentRefs": {
            "type": "array",
            "maxItems": 32,
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _NAME, "namespace": {"type": "string"}},
            },
        },
        "rules": {
            "type": "array",
            "maxItems": 16,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "matches": {"type": "array", "maxItems": 64, "items": _MATCH},
                    "backendRefs": {"type": "array", "maxItems": 16, "items": _BACKEND},
                },
            },
        },
    },
}
SCHEMAS = {
    kind: {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }
    for kind, spec in (("Gateway", GATEWAY_SPEC), ("HTTPRoute", HTTPROUTE_SPEC))
}


def errors(obj: dict[str, Any]) -> list[str]:
    """What the Gateway API's CRD schema (as far as stated above) says about ``obj``."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[obj["kind"]])
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]
