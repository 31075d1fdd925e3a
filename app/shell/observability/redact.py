"""Secrets a RayCluster or RayJob carries in plain text, and scrubbing them out of what metaray
reports.

Logs, Event notes and error texts are free text that may quote the spec some day; whatever a
parent holds as a password or token is replaced by ``***`` before it leaves the process:
``env`` values whose name says password, token or secret anywhere in the spec (a RayJob's
``submitterPodTemplate`` and embedded ``rayClusterSpec`` included), Redis passwords and
secret-looking ``rayStartParams``, and a RayJob's ``metadata`` values and ``runtimeEnvYAML``
values (``env_vars`` and any other key) whose key says so.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.core import kinds
from app.core.observed import Child, Observed

MASK = "***"
_SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)
_SECRET_FLAG = re.compile(r"password|token|secret", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True, repr=False)
class Redactor:
    """Replaces each known secret (longest first, so no fragment survives) by ``***``."""

    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Redactor({len(self.secrets)} secrets)"  # never the secrets themselves

    @classmethod
    def of(
        cls, parent: Mapping[str, Any] | None, secrets: Iterable[Mapping[str, Any]] = ()
    ) -> Redactor:
        """The plain-text secrets of ``parent``'s spec (a RayJob's runtimeEnvYAML and metadata
        included), and the values of ``secrets`` (Secret objects the request or the answer
        holds: the token Secret of authOptions)."""
        spec = parent.get("spec") if parent else None
        found = set(_secrets(spec))
        if isinstance(spec, Mapping):
            found |= set(_rayjob_secrets(spec))
        for secret in secrets:
            found.update(secret_values(secret))
        return cls(tuple(sorted(found, key=lambda s: (-len(s), s))))

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        # A bearer token never comes from the spec, but must not be logged either.
        if "earer" in text or "EARER" in text:
            text = _BEARER.sub(rf"\g<1>{MASK}", text)
        return text

    def value(self, value: Any) -> Any:
        """Strings scrubbed inside any JSON-like value."""
        if not self.secrets and not _may_hold_bearer(value):
            return value  # the common case, checked in one C pass instead of a walk
        return self._scrubbed(value)

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self._scrubbed(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrubbed(item) for item in value]
        return value


def secret_children(observed: Observed, answered: Iterable[Child] = ()) -> list[Mapping[str, Any]]:
    """Every Secret of a request and its answer (their values must never be reported)."""
    found: list[Mapping[str, Any]] = [
        observed.applied[(kinds.SECRET, obj.name)]
        for obj in observed.of_kind(kinds.SECRET)
        if (kinds.SECRET, obj.name) in observed.applied
    ]
    # New Secrets are plain objects; an echoed one is in ``observed`` already. Checking the
    # type first keeps the kept pods' raw JSON unparsed.
    found += [c for c in answered if isinstance(c, dict) and c.get("kind") == "Secret"]
    return found


def secret_values(secret: Mapping[str, Any]) -> Iterator[str]:
    """A Secret's values as they may appear in text: plain, base64 (``data``) and decoded."""
    string_data = secret.get("stringData")
    if isinstance(string_data, Mapping):
        yield from (v for v in string_data.values() if isinstance(v, str) and v)
    data = secret.get("data")
    if isinstance(data, Mapping):
        for value in data.values():
            if not isinstance(value, str) or not value:
                continue
            yield value
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
            if decoded:
                yield decoded


def _may_hold_bearer(value: Any) -> bool:
    try:
        text = orjson.dumps(value, default=str)
    except TypeError:
        return True
    return b"earer" in text or b"EARER" in text


def _secrets(node: Any) -> Iterator[str]:
    """Plain-text secrets anywhere in a spec: redisPassword.value, secret-looking
    rayStartParams and env values whose name says password, token or secret."""
    if isinstance(node, list):
        for item in node:
            yield from _secrets(item)
        return
    if not isinstance(node, Mapping):
        return
    name, value = node.get("name"), node.get("value")
    if isinstance(name, str) and isinstance(value, str) and _SECRET_NAME.search(name) and value:
        yield value
    for key, item in node.items():
        if key == "redisPassword" and isinstance(item, Mapping):
            if isinstance(item.get("value"), str) and item["value"]:
                yield item["value"]
        elif key == "rayStartParams" and isinstance(item, Mapping):
            yield from (
                v
                for k, v in item.items()
                if _SECRET_FLAG.search(str(k)) and isinstance(v, str) and v
            )
        else:
            yield from _secrets(item)


def _rayjob_secrets(spec: Mapping[str, Any]) -> Iterator[str]:
    """A RayJob's ``metadata`` (string map) values and ``runtimeEnvYAML`` values (its
    ``env_vars``, and anything else) whose key says password, token or secret."""
    metadata = spec.get("metadata")
    if isinstance(metadata, Mapping):
        yield from _flagged(metadata)
    runtime_env = spec.get("runtimeEnvYAML")
    if isinstance(runtime_env, str) and runtime_env.strip():
        import yaml  # only for a runtimeEnvYAML: not loaded by a hook that never sees one

        try:
            parsed = yaml.safe_load(runtime_env)
        except (yaml.YAMLError, RecursionError, ValueError):
            return  # the core reports it as invalid; nothing parsed, nothing known to hide
        yield from _yaml_secrets(parsed)


def _yaml_secrets(root: Any) -> Iterator[str]:
    """Each list and mapping once: YAML aliases share nodes, and a "billion laughs" document
    must not be walked a billion times."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, list | Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Mapping):
            yield from _flagged(node)
            stack.extend(node.values())
        else:
            stack.extend(node)


def _flagged(mapping: Mapping[Any, Any]) -> Iterator[str]:
    """Scalar values, as text, of keys that say password, token or secret."""
    for key, value in mapping.items():
        if not _SECRET_NAME.search(str(key)) or isinstance(value, bool):
            continue
        if isinstance(value, str | int | float) and str(value):
            yield str(value)
