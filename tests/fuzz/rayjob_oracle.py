"""What must hold for every RayJob hook answer, judged from the request itself.

Metacontroller deletes every observed child that a 200 answer leaves out, so the rules are
about what an answer may leave out, add or change (child types ``RayCluster.ray.io/v1``,
``Job.batch/v1``, ``Service.v1``; related ``Pod.v1`` and ``RayCluster.ray.io/v1``):

(a) an invalid RayJob: every observed child answered exactly as Metacontroller recorded it
    (its last-applied configuration, byte for byte; the observed object without server-set
    fields where there is no usable record), nothing added, and the status says
    ``jobDeploymentStatus: ValidationFailed``, ``reason: ValidationFailed`` and a message that
    names the field;
(b) ``spec.managedBy`` naming another controller: children as recorded, status unchanged;
(c) otherwise a child is left out only when the lifecycle deletes it: in Retrying, Suspending
    and Suspended (before or after the step) the RayClusters and Jobs; in Complete and Failed
    the RayCluster when a deletion policy that deletes it is due; nothing else, ever. A kept
    child is answered as recorded, except the RayJob's head Service (rebuilt every sync) and
    the RayCluster whose workers a due DeleteWorkers suspends. New children are only the
    RayJob's cluster (named in the answer's status, never the user's cluster, never while
    another live cluster is observed), its submitter Job and its head Service;
    finalize keeps every child, may add the stop Job and leaves the status alone;
(d) decoding either succeeds or raises ``BadRequest`` (a 400); sync, finalize and customize
    never raise (a 5xx);
(e) the same body at the same clock gives the same bytes;
(f) feeding the answer's status back with the same children reaches a fixpoint;
(g) attempts (rules 3-4 of issue 15): no counter (``failed``, ``succeeded``) below the parent's
    status or below the attempt its observed children carry (label ``metaray.io/attempt``);
    a new RayCluster or submitter carries the answer's attempt, never one older than an
    observed child's; deletions only in a sync whose parent already holds the state that
    decides them (two-phase); Complete and Failed are left only for ValidationFailed, and a
    ValidationFailed that interrupted them resumes them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.hooks.request import BadRequest, decode, decode_customize
from app.hooks.response import encode
from app.rayjob import sync as rayjob
from app.rayjob.customize import customize as rayjob_customize
from app.rayjob.dashboard import DashboardView
from app.rayjob.finalize import finalize as rayjob_finalize
from app.shell.settings import Settings

LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
RAYCLUSTER = "RayCluster.ray.io/v1"
JOB = "Job.batch/v1"
SERVICE = "Service.v1"
KUBERAY = "ray.io/kuberay-operator"
SELECTOR_KEY = "ray.io/cluster"
VALIDATION_FAILED = "ValidationFailed"
TEARDOWN = ("Retrying", "Suspending", "Suspended")
TERMINAL = ("Complete", "Failed")
STATES = {"", "Initializing", "Running", "Waiting", *TERMINAL, *TEARDOWN, VALIDATION_FAILED, "New"}
ATTEMPT = "metaray.io/attempt"


def count(value: Any) -> int:
    """A counter as the hook reads it (int32, else none)."""
    fits32 = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 - 1
    return int(value) if fits32 else 0


def attempt_of(obj: Mapping[str, Any]) -> int | None:
    labels = _mapping(_mapping(obj.get("metadata")).get("labels"))
    value = labels.get(ATTEMPT)
    ok = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10
    return int(value) if ok else None


def interrupted_terminal(status: Mapping[str, Any]) -> str | None:
    """The terminal state a status is in, or that its ValidationFailed interrupted."""
    state = status.get("jobDeploymentStatus")
    if state in TERMINAL:
        return str(state)
    if state != VALIDATION_FAILED or not _is_time(status.get("endTime")):
        return None
    reason = status.get("reason")
    return (
        "Failed"
        if isinstance(reason, str) and reason not in ("", VALIDATION_FAILED)
        else "Complete"
    )


def _is_time(value: Any) -> bool:
    from app.core.time import parse_time

    return parse_time(value) is not None


def storable(value: Any) -> Any:
    """A status as an API server could hold it: integers beyond 64 bits cannot be (so the hook
    drops them rather than failing to answer)."""
    if isinstance(value, Mapping):
        return {k: storable(v) for k, v in value.items() if fits(v)}
    if isinstance(value, list):
        return [storable(v) for v in value if fits(v)]
    return value


def fits(value: Any) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


# Set by the API server or Metacontroller: never part of what metaray asked for.
SERVER_METADATA = {
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "ownerReferences",
}


@dataclass(frozen=True)
class Seen:
    """One observed child, and the object Metacontroller recorded for it."""

    key: str
    name: str
    obj: Mapping[str, Any] = field(repr=False)
    recorded: Any = field(repr=False)
    text: str | None = field(repr=False)

    @property
    def terminating(self) -> bool:
        return self.obj["metadata"].get("deletionTimestamp") is not None

    def describe(self) -> str:
        return f"{self.key} {self.name!r} (terminating: {self.terminating})"


def recorded(key: str, obj: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The child's last-applied configuration when it is a JSON object of this very child,
    otherwise the observed object without status and server-set metadata."""
    meta = obj["metadata"]
    text = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if isinstance(text, str):
        try:
            applied = json.loads(text)
        except (ValueError, RecursionError):
            applied = None
        if isinstance(applied, dict):
            kind, version = applied.get("kind"), applied.get("apiVersion")
            name = _mapping(applied.get("metadata")).get("name")
            typed = isinstance(kind, str) and isinstance(version, str)
            if typed and name == meta["name"] and f"{kind}.{version}" == key:
                return applied, text
    metadata = {k: v for k, v in meta.items() if k not in SERVER_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    metadata.pop("annotations", None)
    if annotations:
        metadata["annotations"] = annotations
    stripped = {k: v for k, v in obj.items() if k != "status"}
    stripped["metadata"] = metadata
    return stripped, None


def observed(request: Mapping[str, Any]) -> list[Seen]:
    found = []
    for key, objects in (request.get("children") or {}).items():
        for obj in objects.values():
            applied, text = recorded(key, obj)
            found.append(Seen(key, obj["metadata"]["name"], obj, applied, text))
    return found


def identity(child: Any) -> tuple[str, str]:
    assert isinstance(child, dict), f"an answered child is not an object: {child!r:.200}"
    kind, version, meta = child.get("kind"), child.get("apiVersion"), child.get("metadata")
    assert isinstance(kind, str) and kind, f"an answered child has no kind: {child!r:.300}"
    assert isinstance(version, str) and version, f"an answered child has no apiVersion: {kind}"
    assert isinstance(meta, dict), f"an answered {kind} has no metadata"
    name = meta.get("name")
    assert isinstance(name, str), f"an answered {kind} has no name: {meta!r:.200}"
    return f"{kind}.{version}", name


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def selected_cluster(spec: Mapping[str, Any]) -> str | None:
    chosen = _mapping(spec.get("clusterSelector")).get(SELECTOR_KEY)
    return chosen if isinstance(chosen, str) and chosen else None


def managed_elsewhere(parent: Mapping[str, Any]) -> bool:
    manager = _mapping(parent.get("spec")).get("managedBy")
    return manager is not None and manager != KUBERAY


def _after(ended: datetime, seconds: Any) -> datetime | None:
    try:
        return ended + timedelta(seconds=int(seconds or 0))
    except (OverflowError, TypeError, ValueError):
        return None


def cluster_deletion_due(spec: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> bool:
    """Whether a policy that deletes the RayJob's own cluster has fallen due (KubeRay's
    ``shutdownAfterJobFinishes`` + ``ttlSecondsAfterFinished``, ``deletionStrategy``)."""
    if selected_cluster(spec) is not None:
        return False
    ended = parse_time(status.get("endTime")) or now
    strategy = _mapping(spec.get("deletionStrategy"))
    ttl = spec.get("ttlSecondsAfterFinished")
    policies: list[tuple[Any, Any]] = []
    if isinstance(strategy.get("deletionRules"), list):
        for rule in strategy["deletionRules"]:
            condition = _mapping(_mapping(rule).get("condition"))
            on_job = condition.get("jobStatus")
            on_deployment = condition.get("jobDeploymentStatus")
            if (on_job is not None and on_job == status.get("jobStatus")) or (
                on_deployment is not None and on_deployment == status.get("jobDeploymentStatus")
            ):
                policies.append((_mapping(rule).get("policy"), condition.get("ttlSeconds")))
    elif strategy:
        chosen = {"SUCCEEDED": "onSuccess", "FAILED": "onFailure"}.get(
            status.get("jobStatus") if isinstance(status.get("jobStatus"), str) else ""
        )
        if chosen is not None:
            policies.append((_mapping(strategy.get(chosen)).get("policy"), ttl))
    elif spec.get("shutdownAfterJobFinishes") is True:
        policies.append(("DeleteCluster", ttl))
    for policy, seconds in policies:
        at = _after(ended, seconds)
        if policy == "DeleteCluster" and at is not None and at <= now:
            return True
    return False


def _workers_suspended(applied: Any) -> Any:
    changed = json.loads(json.dumps(applied))
    for group in _mapping(changed.get("spec")).get("workerGroupSpecs") or []:
        if isinstance(group, dict):
            group["suspend"] = True
    return changed


INT64 = range(-(2**63), 2**64)


def _beyond_64_bits_as_floats(value: Any) -> Any:
    """How the decoder reads an observed object (orjson: an integer beyond 64 bits becomes a
    float). Open find ``stripped-child-integer-beyond-64-bits``: a child without a usable
    last-applied configuration is answered with such an integer changed to a float."""
    if isinstance(value, dict):
        return {k: _beyond_64_bits_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_beyond_64_bits_as_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
        return float(value)
    return value


def _exact(child: Seen, answered: Any, answer: bytes) -> None:
    expected = (
        child.recorded if child.text is not None else _beyond_64_bits_as_floats(child.recorded)
    )
    assert answered == expected, (
        f"{child.describe()} is not answered as recorded:\n  recorded {child.recorded!r:.400}"
        f"\n  answered {answered!r:.400}"
    )
    if child.text is not None:
        assert child.text.encode() in answer, f"{child.describe()}: the record's bytes changed"


# -- the checks ----------------------------------------------------------------------------- -----
def check_rayjob_answer(
    request: Mapping[str, Any],
    answer: bytes,
    hook: str,
    now: datetime,
    invalid_field: str | None = None,
) -> str:
    """Assert every invariant of one answer; returns the outcome for statistics."""
    body = json.loads(answer)
    assert isinstance(body, dict), f"the answer is not a JSON object: {answer[:200]!r}"
    required = {"children", "status"} | ({"finalized"} if hook == "finalize" else set())
    allowed = required | {"resyncAfterSeconds"}
    assert required <= set(body) <= allowed, f"answer keys {sorted(body)} on /rayjob/{hook}"
    status, children = body["status"], body["children"]
    assert isinstance(status, dict), f"status is not an object: {status!r:.200}"
    assert isinstance(children, list), f"children is not a list: {children!r:.200}"
    if hook == "finalize":
        assert isinstance(body["finalized"], bool), f"finalized is {body['finalized']!r}"
    if "resyncAfterSeconds" in body:
        resync = body["resyncAfterSeconds"]
        assert isinstance(resync, int | float) and not isinstance(resync, bool), resync
        assert math.isfinite(resync) and resync >= 0, f"resyncAfterSeconds {resync}"

    answered = Counter(identity(child) for child in children)
    twice = sorted(key for key, times in answered.items() if times > 1)
    assert not twice, f"the answer names these children more than once: {twice}"
    by_key = {identity(child): child for child in children}

    parent = request["parent"]
    previous = storable(parent.get("status")) if isinstance(parent.get("status"), Mapping) else {}
    name = _mapping(parent.get("metadata")).get("name")
    seen = observed(request)
    seen_keys = {(child.key, child.name) for child in seen}
    missing = [child for child in seen if (child.key, child.name) not in by_key]
    added = sorted(set(by_key) - seen_keys)
    state = status.get("jobDeploymentStatus")

    def everything_as_recorded(why: str) -> None:
        lost = [child.describe() for child in missing]
        assert not lost, f"{why}: observed children left out: {lost}"
        for child in seen:
            _exact(child, by_key[(child.key, child.name)], answer)

    if hook == "sync" and managed_elsewhere(parent):
        everything_as_recorded("managed by another controller")
        assert not added, f"managed by another controller, yet created {added}"
        assert status == previous, f"managed elsewhere, the status changed: {status!r:.300}"
        return "managed elsewhere"
    if state == VALIDATION_FAILED and hook == "sync":
        everything_as_recorded("invalid spec")
        assert not added, f"an invalid spec created children: {added}"
        reason = previous.get("reason")
        kept = isinstance(reason, str) and reason not in ("", VALIDATION_FAILED)
        if previous.get("jobDeploymentStatus") not in TERMINAL:
            assert status.get("reason") == (reason if kept else VALIDATION_FAILED), status
        assert interrupted_terminal(status) == interrupted_terminal(previous), (
            f"a validation failure lost the finished state: {previous!r:.300} -> {status!r:.300}"
        )
        message = status.get("message")
        assert isinstance(message, str) and message, f"no message: {status!r:.300}"
        if invalid_field is not None:
            assert invalid_field in message, f"{invalid_field!r} is not named in {message!r}"
        return "validation failed"
    assert invalid_field is None or hook != "sync", (
        f"an invalid spec ({invalid_field}) was acted on: state {state!r}"
    )
    if hook == "finalize":
        everything_as_recorded("finalize")
        # Rule (b) holds for finalize too: another controller runs this RayJob.
        assert not (managed_elsewhere(parent) and added), (
            f"managed by another controller, yet finalize created {added}"
        )
        stop = (JOB, f"{name}-stop")
        assert set(added) <= {stop}, f"finalize created {added}"
        assert status == previous, f"finalize changed the status: {status!r:.300}"
        return f"finalized {body['finalized']}"
    _check_sync(request, answer, status, by_key, seen, missing, added, previous, now)
    _check_attempts(status, by_key, seen, added, previous)
    return f"state {state or 'new'}"


def _check_attempts(
    status: Mapping[str, Any],
    by_key: Mapping[tuple[str, str], Any],
    seen: list[Seen],
    added: list[tuple[str, str]],
    previous: Mapping[str, Any],
) -> None:
    """Rule (g): nothing goes back."""
    proven = max(
        (n for c in seen if c.key in (RAYCLUSTER, JOB) and (n := attempt_of(c.obj)) is not None),
        default=0,
    )
    for counter, floor in (
        ("failed", max(count(previous.get("failed")), proven)),
        ("succeeded", count(previous.get("succeeded"))),
    ):
        assert count(status.get(counter)) >= floor, (
            f"status.{counter} went back: {status.get(counter)!r} < {floor} (parent "
            f"{previous.get(counter)!r}, children prove attempt {proven})"
        )
    for key in added:
        if key[0] in (RAYCLUSTER, JOB):
            made = attempt_of(by_key[key])
            assert made is not None, f"created {key} without its attempt"
            assert made == count(status.get("failed")) and made >= proven, (
                f"created {key} for attempt {made}; status says {status.get('failed')}, the "
                f"children prove {proven}"
            )
    was = interrupted_terminal(previous)
    if was is not None and previous.get("jobDeploymentStatus") in TERMINAL:
        assert status.get("jobDeploymentStatus") == was, (
            f"left {was} for {status.get('jobDeploymentStatus')!r}"
        )


def _check_sync(
    request: Mapping[str, Any],
    answer: bytes,
    status: Mapping[str, Any],
    by_key: Mapping[tuple[str, str], Any],
    seen: list[Seen],
    missing: list[Seen],
    added: list[tuple[str, str]],
    previous: Mapping[str, Any],
    now: datetime,
) -> None:
    parent = request["parent"]
    spec = _mapping(parent.get("spec"))
    name = parent["metadata"]["name"]
    state = status.get("jobDeploymentStatus", "")
    before = previous.get("jobDeploymentStatus")
    assert state in STATES, f"unknown jobDeploymentStatus {state!r}"
    # Two-phase: a deletion is carried out only once the parent already holds the decision.
    tearing_down = state in TEARDOWN and before == state
    due = state in TERMINAL and before == state and cluster_deletion_due(spec, status, now)
    for child in missing:
        if child.key == RAYCLUSTER:
            assert tearing_down or due, (
                f"{child.describe()} left out in state {before!r} -> {state!r} (a deletion "
                f"policy due: {due})"
            )
        elif child.key == JOB:
            assert tearing_down, f"{child.describe()} left out in state {before!r} -> {state!r}"
        else:
            raise AssertionError(f"{child.describe()} left out in state {before!r} -> {state!r}")
    # Kept children: as recorded, but for the rebuilt head Service and suspended workers.
    for child in seen:
        answered = by_key.get((child.key, child.name))
        if answered is None:
            continue
        if child.key == SERVICE and child.name == f"{name}-head-svc":
            continue
        if child.key == RAYCLUSTER and state in TERMINAL and answered != child.recorded:
            assert answered == _workers_suspended(child.recorded), (
                f"{child.describe()} changed beyond suspending its workers"
            )
            continue
        _exact(child, answered, answer)
    # New children: only the RayJob's own.
    selected = selected_cluster(spec)
    live_clusters = [c.name for c in seen if c.key == RAYCLUSTER and not c.terminating]
    for key in added:
        kind, child_name = key
        if kind == RAYCLUSTER:
            assert child_name != selected, "the user's cluster is answered as a child"
            assert child_name == status.get("rayClusterName"), (
                f"created RayCluster {child_name!r}, status names {status.get('rayClusterName')!r}"
            )
            assert state not in TEARDOWN, f"created RayCluster {child_name!r} in {state}"
            assert not live_clusters, (
                f"created RayCluster {child_name!r} while {live_clusters} live (state "
                f"{before!r} -> {state!r})"
            )
        elif kind == JOB:
            assert child_name == name, f"created Job {child_name!r}"
            assert state not in TEARDOWN, f"created the submitter in {state}"
        elif kind == SERVICE:
            assert child_name == f"{name}-head-svc", f"created Service {child_name!r}"
        else:
            raise AssertionError(f"created a child of type {kind}: {child_name!r}")
    if selected is not None:
        answered_clusters = {n for k, n in by_key if k == RAYCLUSTER}
        assert selected not in answered_clusters or (RAYCLUSTER, selected) in {
            (c.key, c.name) for c in seen
        }, "the user's cluster is answered as a child"


def check_customize_answer(parent: Any, answer: bytes) -> str:
    body = json.loads(answer)
    assert isinstance(body, dict) and set(body) == {"relatedResources"}, body
    rules = body["relatedResources"]
    assert isinstance(rules, list), rules
    metadata = _mapping(_mapping(parent).get("metadata"))
    namespace = metadata.get("namespace")
    for rule in rules:
        assert isinstance(rule, dict), rule
        assert isinstance(rule.get("apiVersion"), str) and isinstance(rule.get("resource"), str)
        assert "labelSelector" in rule or "names" in rule, f"a rule selects everything: {rule}"
        if isinstance(namespace, str) and namespace:
            assert rule.get("namespace") == namespace, rule
    return f"{len(rules)} rules"


# -- running the core ------------------------------------------------------------------------- ---
# As the shell runs the core (the real submitter script), without reading Ray dashboards
# (METARAY_DASHBOARD=off: submitter Jobs, stop Jobs), and with (HTTPMode, InteractiveMode,
# live job states, stopping through the dashboard).
OPTIONS = dataclasses.replace(Settings().rayjob_options, dashboard=False)
DASHBOARD_OPTIONS = dataclasses.replace(OPTIONS, dashboard=True)


def run_rayjob_core(
    body: bytes, hook: str, now: datetime, dashboard: DashboardView | bool | None = None
) -> bytes | None:
    """decode + sync/finalize/customize + encode, as the shell does; None for a 400.
    An exception out of here is a 5xx in production. ``dashboard``: the dashboard's last word
    (a metaray that reads dashboards; True for one that has heard nothing yet)."""
    if hook == "customize":
        try:
            parent = decode_customize(body)
        except BadRequest:
            return None
        return json.dumps(rayjob_customize(parent)).encode()
    try:
        request = decode(body, related=True, raycluster=False)
    except BadRequest:
        return None
    decide = rayjob_finalize if hook == "finalize" else rayjob.sync
    options = OPTIONS if dashboard is None else DASHBOARD_OPTIONS
    view = dashboard if isinstance(dashboard, DashboardView) else None
    desired = decide(request.parent, request.observed, request.related, now, options, view)
    return encode(desired)


def parse_request(body: bytes) -> Any:
    return json.loads(body.decode("utf-8", errors="replace"))


def check_rayjob_core(
    body: bytes,
    hook: str,
    now: datetime,
    invalid_field: str | None = None,
    dashboard: DashboardView | bool | None = None,
) -> str:
    """Every invariant of one request through the core, twice (determinism)."""
    answer = run_rayjob_core(body, hook, now, dashboard)
    if answer is None:
        return "bad request"
    again = run_rayjob_core(body, hook, now, dashboard)
    assert again == answer, f"two answers to the same body at the same clock:\n{answer!r:.600}"
    if hook == "customize":
        return check_customize_answer(parse_request(body).get("parent"), answer)
    return check_rayjob_answer(parse_request(body), answer, hook, now, invalid_field)


def check_rayjob_http(body: bytes, status: int, answer: bytes, hook: str, now: datetime) -> str:
    assert status in (200, 400, 413, 429), f"/rayjob/{hook} answered {status}: {answer[:300]!r}"
    if status != 200:
        error = json.loads(answer)
        assert isinstance(error, dict) and isinstance(error.get("error"), str), answer[:200]
        return str(status)
    if hook == "customize":
        return check_customize_answer(parse_request(body).get("parent"), answer)
    return check_rayjob_answer(parse_request(body), answer, hook, now)


def converge(
    request: dict[str, Any],
    now: datetime,
    steps: int = 8,
    dashboard: DashboardView | bool | None = None,
) -> list[Any]:
    """Feed each answer's status back with the same children and the same clock until the
    answer no longer changes; the statuses on the way (f)."""
    body = json.dumps(request).encode()
    answers: list[bytes] = []
    statuses: list[Any] = []
    for _ in range(steps):
        answer = run_rayjob_core(body, "sync", now, dashboard)
        assert answer is not None, "a request the hook answered became a bad request"
        check_rayjob_answer(parse_request(body), answer, "sync", now)
        if answers and answer == answers[-1]:
            return statuses
        answers.append(answer)
        status = json.loads(answer)["status"]
        statuses.append(status.get("jobDeploymentStatus"))
        parent = {**request["parent"], "status": status}
        request = {**request, "parent": parent}
        body = json.dumps(request).encode()
    raise AssertionError(f"no fixpoint within {steps} syncs: states {statuses}")
