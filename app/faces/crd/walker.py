"""The walk from a pydantic model's JSON schema to a structural CRD schema."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.faces.crd.schema import INT32_MIN, Embed, GenerationError, JSONSchema, KubernetesTypes
from app.raycluster.spec import INT32_MAX


@dataclass(frozen=True)
class Tables:
    """What one CRD adds to its model: embedded types, constraints, rules, descriptions.

    Keys are ``Model.field`` (or ``Model`` for ``object_rules``), as in the model's JSON Schema.
    """

    kind: str  # the resource's own entry in `descriptions`
    embedded: Mapping[str, Embed]
    constraints: Mapping[str, JSONSchema]
    object_rules: Mapping[str, list[JSONSchema]]
    descriptions: Mapping[str, str]
    # Model defaults the CRD leaves out (KubeRay's CRD has none there).
    without_default: frozenset[str] = frozenset()


class SpecWalker:
    """Turns the model's JSON Schema into a structural CRD schema, one field at a time."""

    def __init__(self, model: Mapping[str, Any], types: KubernetesTypes, tables: Tables) -> None:
        self._defs: Mapping[str, Any] = model.get("$defs", {})
        self._root = model
        self._types = types
        self._tables = tables
        self._used: set[str] = set()

    def spec(self) -> JSONSchema:
        schema = self._model(self._root)
        t = self._tables
        unused = set(t.embedded) | set(t.constraints) | set(t.descriptions) | set(t.object_rules)
        unused |= t.without_default
        unused -= self._used
        unused -= {t.kind}
        if unused:
            raise GenerationError(f"entries for fields the model does not have: {sorted(unused)}")
        return schema

    def _model(self, node: Mapping[str, Any]) -> JSONSchema:
        name = str(node["title"])
        out: JSONSchema = {
            "type": "object",
            "properties": {
                field: self._field(name, field, sub)
                for field, sub in sorted(node.get("properties", {}).items())
            },
        }
        if node.get("required"):
            out["required"] = sorted(node["required"])
        if name in self._tables.object_rules:
            self._used.add(name)
            out["x-kubernetes-validations"] = copy.deepcopy(self._tables.object_rules[name])
        if name in self._tables.descriptions:  # a field's own description replaces its model's
            out["description"] = self._describe(name)
        return out

    def _field(self, owner: str, field: str, node: Mapping[str, Any]) -> JSONSchema:
        where = f"{owner}.{field}"
        value = _without_null(node, where)
        tables = self._tables
        if where in tables.embedded:
            self._used.add(where)
            out = self._embedded(where, value)
        else:
            out = self._value(value, where)
        out["description"] = self._describe(where)
        default = node.get("default")
        if where in tables.without_default:
            self._used.add(where)
        elif isinstance(default, bool | int | str):
            out["default"] = default
        if where in tables.constraints:
            self._used.add(where)
            out |= copy.deepcopy(tables.constraints[where])
        return out

    def _embedded(self, where: str, node: Mapping[str, Any]) -> JSONSchema:
        embedded = self._tables.embedded[where](self._types)
        if _is_json_object(node):
            return embedded
        if node.get("type") == "array" and _is_json_object(node.get("items", {})):
            return {"type": "array", "items": embedded}
        raise GenerationError(f"{where} is not a JSON object (or a list of them) in the model")

    def _value(self, node: Mapping[str, Any], where: str) -> JSONSchema:
        if "$ref" in node:
            return self._model(self._defs[str(node["$ref"]).rsplit("/", 1)[-1]])
        kind = node.get("type")
        if kind == "object":
            extra = node.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                return {"type": "object", "additionalProperties": self._value(extra, where)}
            raise GenerationError(
                f"{where} is a free-form object in the model: map it to a Kubernetes type in "
                "EMBEDDED"
            )
        if kind == "array":
            return {"type": "array", "items": self._value(node["items"], where)}
        if kind == "integer":
            return _integer(node)
        if kind in ("string", "boolean", "number"):
            out: JSONSchema = {"type": kind}
            if "enum" in node:
                out["enum"] = list(node["enum"])
            elif "const" in node:  # a one-value Literal
                out["enum"] = [node["const"]]
            return out
        if "enum" in node and all(isinstance(v, str) for v in node["enum"]):
            return {"type": "string", "enum": list(node["enum"])}
        raise GenerationError(f"{where}: cannot express {dict(node)} in a structural schema")

    def _describe(self, where: str) -> str:
        self._used.add(where)
        if where not in self._tables.descriptions:
            raise GenerationError(f"no description for {where}: add one to the descriptions")
        return self._tables.descriptions[where]


def _without_null(node: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """``X | None`` in the model is an optional X in the CRD."""
    if "anyOf" not in node:
        return node
    options = [option for option in node["anyOf"] if option.get("type") != "null"]
    if len(options) != 1:
        raise GenerationError(f"{where}: a union the CRD cannot express: {node['anyOf']}")
    return dict(options[0])


def _is_json_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" and node.get("additionalProperties") is True


def _integer(node: Mapping[str, Any]) -> JSONSchema:
    low, high = node.get("minimum"), node.get("maximum")
    out: JSONSchema = {"type": "integer"}
    if low is not None and high is not None and low >= INT32_MIN and high <= INT32_MAX:
        out["format"] = "int32"
    else:
        out["format"] = "int64"
    if low is not None:
        out["minimum"] = low
    if high is not None:
        out["maximum"] = high
    return out
