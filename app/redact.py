"""Secrets a RayCluster carries in plain text, and scrubbing them out of what metaray reports.

Logs, Event notes and error texts are free text that may quote the spec some day; whatever a
RayCluster holds as a password or token is replaced by ``***`` before it leaves the process.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.raycluster import kinds
from app.raycluster.observed import Child, Observed

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
        """The plain-text secrets of ``parent``'s spec, and the values of ``secrets`` (Secret
        objects the request or the answer holds: the token Secret of authOptions)."""
        found = set(_secrets(parent.get("spec") if parent else None))
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
