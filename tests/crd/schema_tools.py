"""What the API server does with a CRD schema, approximated for tests.

- ``validate``: OpenAPI validation with jsonschema, after rewriting Kubernetes' extensions
  (``x-kubernetes-int-or-string`` becomes ``anyOf: [integer, string]``; an object that neither
  lists ``additionalProperties`` nor preserves unknown fields rejects them, as strict field
  validation does).
- ``apply_defaults``: structural defaulting (it runs before validation in the API server),
  after dropping ``null`` from fields that are not ``nullable`` (``metadata:`` left empty in a
  manifest), as the API server does.
- ``pruned``: the fields the API server would drop.
- ``rule_failures``: the ``x-kubernetes-validations`` CEL rules, evaluated with cel-python.
  Transition rules (those that read ``oldSelf``) run only on an update, and only where the old
  object has a value at the same place, as in the API server.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from typing import Any

import celpy
from jsonschema import Draft202012Validator

Schema = dict[str, Any]
INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE = "x-kubernetes-preserve-unknown-fields"
RULES = "x-kubernetes-validations"
ROOT_METADATA = ".properties.metadata"


def nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path (made of properties.NAME, items, additionalProperties)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.properties.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}.additionalProperties")


def at(schema: Schema, path: str) -> Schema:
    """The node at a dotted path such as ``spec.workerGroupSpecs.items.properties.template``."""
    node = schema
    for part in path.split("."):
        node = node[part]
    return node


# -- validation ------------------------------------------------------------------------------


def as_json_schema(schema: Schema) -> Schema:
    out = copy.deepcopy(schema)
    for path, node in nodes(out):
        if path == ROOT_METADATA:
            continue  # the API server checks an object's metadata itself
        if node.pop(INT_OR_STRING, False):
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if (
            node.get("type") == "object"
            and "additionalProperties" not in node
            and not node.get(PRESERVE)
        ):
            node["additionalProperties"] = False
    return out


class Admission:
    """Defaulting, OpenAPI validation and CEL rules of one openAPIV3Schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(as_json_schema(schema))

    def schema_errors(self, value: Any) -> list[str]:
        """Every OpenAPI validation error, as ``path: message``."""
        return sorted(
            f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in self._validator.iter_errors(value)
        )

    def errors(self, obj: Any, old: Any = None) -> list[str]:
        """Why creating ``obj`` (or updating ``old`` to it) would be refused: defaults first,
        then schema, then rules."""
        defaulted = apply_defaults(self.schema, obj)
        previous = MISSING if old is None else apply_defaults(self.schema, old)
        return self.schema_errors(defaulted) or rule_failures(self.schema, defaulted, old=previous)


# -- defaulting and pruning ------------------------------------------------------------------


def apply_defaults(schema: Schema, value: Any) -> Any:
    """A copy of ``value`` with the schema's defaults filled in, as the API server does."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value and value[name] is None and not sub.get("nullable"):
                del value[name]
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in schema.get("properties", {}):
                    _default(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


def pruned(schema: Schema, value: Any, path: str = "") -> list[str]:
    """Paths of the fields the API server would prune from ``value``."""
    found: list[str] = []
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if f"{path}.properties.{key}" == ROOT_METADATA:
                continue
            if key in props:
                found += pruned(props[key], item, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += pruned(extra, item, f"{path}.{key}")
            elif not schema.get(PRESERVE):
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += pruned(schema["items"], item, f"{path}[{index}]")
    return found


# -- CEL rules -------------------------------------------------------------------------------


MISSING: Any = object()  # no old value here: a create, or a field the old object lacked


@cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def is_transition_rule(rule: str) -> bool:
    return "oldSelf" in rule


def rule_passes(rule: str, value: Any, old: Any = MISSING) -> bool:
    """A transition rule (one reading ``oldSelf``) holds on create, as in the API server, and
    is evaluated against ``old`` on update."""
    if is_transition_rule(rule) and old is MISSING:
        return True
    bindings = {"self": celpy.json_to_cel(value)}
    if old is not MISSING:
        bindings["oldSelf"] = celpy.json_to_cel(old)
    result = _program(rule).evaluate(bindings)
    return result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))


def rule_failures(schema: Schema, value: Any, path: str = "", old: Any = MISSING) -> list[str]:
    """``path: message`` of every rule that does not hold; defaults must be applied first.

    ``old`` is the previous object on an update. List items are not correlated with old ones
    (the API server does that for map lists only), so rules on them never see ``oldSelf``.
    """
    failed = [
        f"{path or '<root>'}: {rule['message']}"
        for rule in schema.get(RULES, [])
        if not (is_transition_rule(rule["rule"]) and old is MISSING)
        and not rule_passes(rule["rule"], value, old)
    ]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                previous = old.get(key, MISSING) if isinstance(old, dict) else MISSING
                failed += rule_failures(sub, item, f"{path}.{key}" if path else key, previous)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            failed += rule_failures(schema["items"], item, f"{path}[{index}]")
    return failed
