"""Logging in the shell: JSON lines on stderr, and one line per hook answer.

One line per answer (not per pod) keeps a 1,000-pod sync to one line; pod names appear only in
its ``created`` and ``deleted`` lists. Every line passes through the answer's ``Redactor``.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

from app.shell.observability.redact import Redactor
from app.shell.observability.summary import (
    ERROR,
    RAYCLUSTER,
    RAYCRONJOB,
    RAYJOB,
    RAYSERVICE,
    Answer,
    Identity,
    kind_of,
)

ROOT = "metaray"
SYNC = "metaray.sync"
_HANDLER = "metaray-json"
_LEVELS = {"trace": logging.DEBUG}
# Libraries that log every request at INFO: one line per posted Event would be per pod.
_CHATTY = ("httpx", "httpcore")

_NAME_FIELD = {
    RAYCLUSTER: "cluster",
    RAYJOB: "rayjob",
    RAYCRONJOB: "raycronjob",
    RAYSERVICE: "rayservice",
}

log = logging.getLogger(SYNC)
_BEARER_ONLY = Redactor()


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload |= fields
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        # Records of answers are scrubbed when made; this catches a bearer token anywhere else.
        scrubbed = _BEARER_ONLY.value(payload)
        try:
            return orjson.dumps(scrubbed, default=str).decode()
        except TypeError:
            # An integer beyond 64 bits (a request made up by hand can hold one in the fields a
            # line reports): the standard encoder writes it, so the line is not lost.
            return json.dumps(scrubbed, default=str, separators=(",", ":"))


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure(level: str = "info") -> None:
    """JSON lines for every ``metaray.*`` logger; idempotent."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if h.name == _HANDLER]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler.name = _HANDLER
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(_LEVELS.get(level.lower(), level.upper()))
    logger.propagate = False  # our handler is the only one: no duplicates via the root
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


def configured() -> bool:
    return any(handler.name == _HANDLER for handler in logging.getLogger(ROOT).handlers)


def log_answer(answer: Answer, duration_ms: float, redactor: Redactor) -> None:
    """A RayCluster answer in pods; a RayJob answer in children, with its jobDeploymentStatus
    as ``state`` and ``delete_self`` when the RayJob itself is due for deletion."""
    cluster = answer.cluster
    fields: dict[str, Any] = _identity(answer.hook, cluster)
    if answer.kind != RAYCLUSTER:
        fields |= {
            "observed_children": answer.observed_children,
            "desired_children": answer.desired_children,
            "created": [{"kind": kind, "name": name} for kind, name in answer.created],
            "deleted": [{"kind": kind, "name": name} for kind, name in answer.deleted_children],
        }
    else:
        fields |= {
            "observed_pods": answer.observed_pods,
            "desired_pods": answer.desired_pods,
            "created": [name for _, name in answer.created],
            "deleted": [{"name": name, "reason": reason} for name, reason in answer.deleted],
        }
    fields |= {
        "state": answer.state,
        "duration_ms": round(duration_ms, 3),
        "outcome": answer.outcome,
    }
    if answer.finalized is not None:
        fields["finalized"] = answer.finalized
    if answer.delete_parent:
        fields["delete_self"] = True
    message = f"{answer.hook} {cluster.namespace}/{cluster.name} {answer.outcome}"
    # Scrubbed before the record exists: any handler, not just ours, may print it.
    log.info(redactor.text(message), extra={"fields": redactor.value(fields)})


def log_failure(
    hook: str,
    outcome: str,
    duration_ms: float,
    detail: str,
    cluster: Identity | None = None,
    redactor: Redactor | None = None,
) -> None:
    """A request that got no answer: 400 (``bad_request``) or 500 (``error``, with traceback).

    Call it from the ``except`` block: an error's traceback is taken from there.
    """
    redactor = redactor or Redactor()
    fields = {
        **_identity(hook, cluster or Identity()),
        "duration_ms": round(duration_ms, 3),
        "outcome": outcome,
        "error": detail,
    }
    if outcome == ERROR:
        fields["exception"] = traceback.format_exc()
    where = f" {cluster.namespace}/{cluster.name}" if cluster else ""
    level = logging.ERROR if outcome == ERROR else logging.WARNING
    message = redactor.text(f"{hook}{where} {outcome}")
    log.log(level, message, extra={"fields": redactor.value(fields)})


def _identity(hook: str, cluster: Identity) -> dict[str, Any]:
    """``cluster`` names a RayCluster, ``rayjob`` a RayJob (by the hook that answered)."""
    return {
        "hook": hook,
        _NAME_FIELD[kind_of(hook)]: cluster.name,
        "namespace": cluster.namespace,
        "uid": cluster.uid,
        "generation": cluster.generation,
    }
