"""What must hold for every RayService hook answer, judged from the request (and the Serve views
the shell passed) alone.

Metacontroller deletes every observed child a 200 answer leaves out, and writes the status from a
parent that may be stale, so the rules are about what an answer may leave out, add or change:

(a) decoding succeeds or raises ``BadRequest`` (a 400); sync and customize never raise (a 5xx);
    over HTTP only 200, 400, 413 or 429;
(b) ``spec.managedBy`` naming another controller: every child as recorded, the status as it was;
(c) an invalid spec: every observed child as recorded (its last-applied configuration byte for
    byte), nothing added, and a Ready condition ``ValidationFailed`` whose message says why;
(d) a live RayCluster is left out only once the parent's status lists it in
    ``rayClustersToDelete`` (two-phase) and, but for a suspend under way, its deleteAfter has
    passed; and, but for a suspend or a RayService that gave up (InitializingTimeout: both
    answer the parent's status as it was), never while it is the answer's active or pending
    cluster, or a Service (answered, or the head or serve Service as metaray last asked for
    it) selects it, or the route weights it. The
    head and serve Services (and, incremental, the Gateway and HTTPRoute) leave only with a
    suspend; a kept cluster is answered as recorded or with worker groups appended;
(e) a RayCluster is created only when the parent's status already names it pending (two-phase),
    the answer's status still does, at most one per answer, under a name metaray derives
    (``<rs>-<5 characters>``), while every other live cluster is active or already listed, and
    never during a suspend; Services, Gateway and HTTPRoute only under the names metaray gives
    them, selecting live observed clusters;
(f) traffic (the head and serve Services' selector) moves only to a cluster whose Serve
    applications all run the config asked for (a usable view), or that a Service already
    selects or the route already weights;
(g) the active cluster is live and not the pending one; every live cluster the answer keeps
    or makes is its status's active or pending cluster or listed for deletion (never two
    pending); an entry already listed keeps its deleteAfter (but in a suspend, which deletes
    every cluster at once);
(h) each Serve intent goes to a live observed cluster at the address derived from the head
    Service metaray's RayCluster controller owns for it (never from a status or a view), one
    per cluster;
(i) names metaray makes are DNS labels (≤ 63) and its label values valid, given valid inputs;
(j) the same body, views and clock give the same bytes, events and intents; feeding the
    answer's status back (same observed, views and clock) reaches a fixpoint;
(k) the Serve view's word never costs a child: unusable views (never answered, failing) give
    the children and intents of no views at all, and usable ones leave out no more than no
    views would (but for a cluster the status both lists and names active or pending).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from app.core.time import parse_time
from app.raycluster.problems import InvalidSpec
from app.rayservice.serve import ApplyServeConfig, deployed
from app.rayservice.spec import parse_rayservice
from tests.fuzz.rayjob_oracle import Seen, _exact, identity, observed, storable
from tests.fuzz.rayservice_objects import GATEWAY, HTTPROUTE, RAYCLUSTER, SERVICE
from tests.fuzz.rayservice_reading import (
    DNS_LABEL,
    TO_DELETE,
    Judged,
    condition_of,
    derived_urls,
    is_true,
    labels_valid,
    listed,
    mapping_of,
    selector_of,
    side,
    weighted,
)

INCREMENTAL = "NewClusterWithIncrementalUpgrade"


# -- the checks -----------------------------------------------------------------------------------
def check_answer(judged: Judged, invalid_text: str | None = None, gateway_api: bool = True) -> str:
    """Every invariant of one sync answer; the outcome (a phase) for statistics."""
    request, answer = judged.request, judged.answer
    body = json.loads(answer)
    assert isinstance(body, dict), f"the answer is not an object: {answer[:200]!r}"
    assert {"children", "status"} <= set(body) <= {"children", "status", "resyncAfterSeconds"}, (
        sorted(body)
    )
    status, children = body["status"], body["children"]
    assert isinstance(status, dict) and isinstance(children, list), answer[:300]
    if "resyncAfterSeconds" in body:
        resync = body["resyncAfterSeconds"]
        assert isinstance(resync, int | float) and not isinstance(resync, bool), resync
        assert math.isfinite(resync) and resync >= 0, f"resyncAfterSeconds {resync}"
    counted = Counter(identity(child) for child in children)
    twice = sorted(key for key, times in counted.items() if times > 1)
    assert not twice, f"children answered more than once: {twice}"
    by_key = {identity(child): child for child in children}
    parent = request["parent"]
    previous = storable(parent.get("status")) if isinstance(parent.get("status"), Mapping) else {}
    seen = observed(request)
    missing = [c for c in seen if (c.key, c.name) not in by_key]
    added = sorted(set(by_key) - {(c.key, c.name) for c in seen})

    def everything_as_recorded(why: str) -> None:
        assert not missing, f"{why}: children left out: {[c.describe() for c in missing]}"
        assert not added, f"{why}: children added: {added}"
        for child in seen:
            _exact(child, by_key[(child.key, child.name)], answer)
        assert not judged.intents, f"{why}: intents {judged.intents}"

    manager = mapping_of(parent.get("spec")).get("managedBy")
    if manager is not None and manager != "ray.io/kuberay-operator":
        everything_as_recorded("managed by another controller")
        assert status == previous, f"managed elsewhere, the status changed: {status!r:.300}"
        return "managed elsewhere"
    try:
        parse_rayservice(parent, gateway_api)
    except InvalidSpec:
        everything_as_recorded("invalid spec")
        ready = condition_of(status, "Ready")
        assert ready is not None and ready.get("reason") == "ValidationFailed", status
        message = ready.get("message")
        assert isinstance(message, str) and message, f"no message: {ready}"
        if invalid_text is not None:
            assert invalid_text in message, f"{invalid_text!r} is not in {message!r}"
        return "invalid"
    assert invalid_text is None, f"an invalid spec ({invalid_text}) was acted on"
    return _check_valid(judged, status, by_key, seen, missing, added, previous)


def _check_valid(
    judged: Judged,
    status: Mapping[str, Any],
    by_key: Mapping[tuple[str, str], Any],
    seen: list[Seen],
    missing: list[Seen],
    added: list[tuple[str, str]],
    previous: Mapping[str, Any],
) -> str:
    request, _answer, now = judged.request, judged.answer, judged.now
    parent = request["parent"]
    spec, meta = parent["spec"], parent["metadata"]
    rs = meta["name"]
    head = f"{rs}-head-svc"
    custom = mapping_of(mapping_of(spec.get("serveService")).get("metadata")).get("name")
    serve = custom if isinstance(custom, str) and custom else f"{rs}-serve-svc"
    incremental = mapping_of(spec.get("upgradeStrategy")).get("type") == INCREMENTAL
    suspended = is_true(previous, "Suspended") and spec.get("suspend") is True
    suspending = is_true(previous, "Suspending") and not suspended
    gave_up = mapping_of(condition_of(previous, "Ready")).get("reason") == "InitializingTimeout"
    before = listed(previous)
    live = {c.name for c in seen if c.key == RAYCLUSTER and not c.terminating}
    active, pending = side(status, "activeServiceStatus"), side(status, "pendingServiceStatus")
    answered_selects = {selector_of(c) for k, c in by_key.items() if k[0] == SERVICE}
    recorded = {(c.key, c.name): c.recorded for c in seen}
    selecting = {selector_of(recorded.get((SERVICE, n))) for n in (head, serve)}
    traffic = selecting | answered_selects
    routed = weighted(recorded.get((HTTPROUTE, f"{rs}-httproute")))
    selecting |= {c for c in live if f"{c}-serve-svc" in routed}
    # (d) what leaves
    for child in missing:
        if child.key == RAYCLUSTER and child.terminating:
            continue
        if child.key == RAYCLUSTER:
            assert child.name in before or suspended, f"{child.describe()} left out, never listed"
            due = parse_time(before.get(child.name))
            assert suspending or suspended or (due is not None and due <= now), (
                f"{child.describe()} left out before its deleteAfter {before.get(child.name)}"
            )
            # A suspend, or a RayService that gave up, answers the parent's status as it was
            # (the staging, or the giving up, cleared both names).
            named = child.name in (active, pending) and not (suspending or suspended or gave_up)
            assert not named, f"{child.describe()} left out, yet named"
            if not (suspending or suspended or gave_up):
                assert child.name not in traffic, f"{child.describe()} left out with traffic"
                assert f"{child.name}-serve-svc" not in routed, f"{child.describe()}: routed"
        elif (child.key, child.name) in ((SERVICE, head), (GATEWAY, f"{rs}-gateway")):
            assert suspending or suspended or (child.key == GATEWAY and not incremental), (
                f"{child.describe()} left out"
            )
        elif (child.key, child.name) in ((SERVICE, serve), (HTTPROUTE, f"{rs}-httproute")):
            allowed = (child.key == SERVICE and incremental) or (
                child.key == HTTPROUTE and not incremental
            )
            assert suspending or suspended or allowed, f"{child.describe()} left out"
    # (e) what is made
    made = [name for kind, name in added if kind == RAYCLUSTER]
    assert len(made) <= 1, f"two clusters created at once: {made}"
    for name in made:
        assert name == side(previous, "pendingServiceStatus") == pending, (
            f"created {name}: the parent's status names {side(previous, 'pendingServiceStatus')}, "
            f"the answer's {pending}"
        )
        assert re.fullmatch(rf"{re.escape(rs)}-[a-z0-9]{{5}}", name), f"created {name!r}"
        assert not (suspending or suspended or gave_up), f"created {name} in a suspend"
        unsettled = live - {active, pending} - set(before)
        assert not unsettled, f"created {name} while {sorted(unsettled)} live and not listed"
    for kind, name in added:
        if kind == SERVICE:
            ok = name in (head, serve) or (incremental and name.endswith("-serve-svc"))
            assert ok, f"created Service {name!r}"
        elif kind in (GATEWAY, HTTPROUTE):
            assert incremental and name in (f"{rs}-gateway", f"{rs}-httproute"), (kind, name)
        elif kind != RAYCLUSTER:
            raise AssertionError(f"created a {kind} {name!r}")
    # kept clusters: as recorded, or with groups appended; built children: valid names
    inputs_valid = labels_valid(meta.get("labels") or {}) and all(
        DNS_LABEL.match(n) and len(n) <= 63 for n in live
    )
    for key, child in by_key.items():
        was = recorded.get(key)
        if key in recorded and child == was:
            continue
        if key[0] == RAYCLUSTER and key in recorded:
            _appended_only(key[1], was, child)
        if key[0] == SERVICE:
            target = selector_of(child)
            assert target is None or target in live, f"Service {key[1]} selects {target!r}"
            if key[1] in (head, serve) and target != selector_of(was) and target not in selecting:
                _serves(judged, target, parent)
        if (
            inputs_valid
            and key[0] in (RAYCLUSTER, SERVICE)
            and key[1] in (head, f"{rs}-serve-svc", *made)
        ):
            assert DNS_LABEL.match(key[1]) and len(key[1]) <= 63, f"name {key[1]!r}"
            labels = mapping_of(child.get("metadata")).get("labels") or {}
            assert labels_valid(labels), f"{key}: labels {labels}"
    # (g) the status (a suspend, or a RayService that gave up, answers the parent's names)
    if not (suspending or suspended or gave_up):
        assert active is None or active in live, f"the active cluster {active} is not live"
        assert active is None or active != pending, f"{active} is both active and pending"
    after = listed(status)
    # A suspend deletes every cluster at once: its deadlines mean nothing, its status is the
    # parent's as it was.
    if not (suspending or suspended or is_true(status, "Suspending")):
        entries = status.get(TO_DELETE) or []
        assert len(entries) == len(after), f"unreadable or repeated entries: {entries}"
        for name, when in before.items():
            if name in after and name in {c.name for c in seen}:
                assert after[name] == when, f"{name}: deleteAfter {when} -> {after[name]}"
    if not (suspending or suspended):
        kept_live = {n for k, n in by_key if k[0] == RAYCLUSTER and (n in live or n in made)}
        unnamed = kept_live - {active, pending} - set(after)
        assert not unnamed, f"live clusters neither active, pending nor listed: {sorted(unnamed)}"
    _check_intents(judged, live, suspending or suspended or gave_up)
    return _phase(previous, status, suspending, suspended, gave_up, bool(made))


def _appended_only(name: str, was: Any, now: Any) -> None:
    """A live cluster is never rebuilt: only worker groups appended (and its hash)."""
    old, new = mapping_of(mapping_of(was).get("spec")), mapping_of(mapping_of(now).get("spec"))
    assert new.get("headGroupSpec") == old.get("headGroupSpec"), f"{name}: head rebuilt"
    groups, now_groups = old.get("workerGroupSpecs") or [], new.get("workerGroupSpecs") or []
    if not isinstance(groups, list) or not isinstance(now_groups, list):
        assert now_groups == groups, f"{name}: groups changed"
        return
    assert now_groups[: len(groups)] == groups, f"{name}: groups changed"


def _serves(judged: Judged, target: str | None, parent: Mapping[str, Any]) -> None:
    """(f) traffic moves only to a cluster whose usable view says every application runs the
    config asked for."""
    urls = derived_urls(judged.request)
    view = judged.views.get(target or "")
    assert view is not None and target in urls and view.url == urls[target], (
        f"traffic moved to {target} without a usable view"
    )
    assert view.fresh and view.applications, f"traffic moved to {target}: {view}"
    assert all(app.status == "RUNNING" for _, app in view.applications), f"to {target}: {view}"
    config = parse_rayservice(parent, True).serve_config
    assert deployed(config, view), f"traffic moved to {target}, which runs another config"


def _check_intents(judged: Judged, live: set[str], quiet: bool) -> None:
    urls = derived_urls(judged.request)
    puts = [i.cluster for i in judged.intents if isinstance(i, ApplyServeConfig)]
    assert len(puts) == len(set(puts)), f"two Serve configs for one cluster: {judged.intents}"
    for intent in judged.intents:
        if isinstance(intent, ApplyServeConfig):
            assert not quiet, f"a Serve config sent during a suspend or after giving up: {intent}"
            assert intent.cluster in live, f"a Serve config for {intent.cluster}, not live"
            assert urls.get(intent.cluster) == intent.url, (
                f"a Serve config to {intent.url!r}; derived {urls.get(intent.cluster)!r}"
            )
            assert isinstance(json.loads(intent.config), dict), intent.config[:200]
        elif hasattr(intent, "cluster"):
            assert intent.cluster in live, f"an intent for {intent.cluster}: {intent!r:.200}"


def _phase(
    previous: Mapping[str, Any],
    status: Mapping[str, Any],
    suspending: bool,
    suspended: bool,
    gave_up: bool,
    made: bool,
) -> str:
    if suspended:
        return "suspended"
    if suspending:
        return "suspending"
    if is_true(status, "Suspending"):
        return "staging suspend"
    if gave_up or mapping_of(condition_of(status, "Ready")).get("reason") == "InitializingTimeout":
        return "timed out"
    active, pending = side(status, "activeServiceStatus"), side(status, "pendingServiceStatus")
    if made:
        return "created"
    if active is not None and active != side(previous, "activeServiceStatus"):
        return "cut over"
    if active and pending:
        return "upgrading"
    if listed(status):
        return "awaiting delay"
    if active:
        return "serving"
    was = side(previous, "activeServiceStatus") or side(previous, "pendingServiceStatus")
    return "pending" if was else "first deploy"


def check_customize(parent: Any, answer: bytes) -> str:
    body = json.loads(answer)
    assert isinstance(body, dict) and set(body) == {"relatedResources"}, body
    rules = body["relatedResources"]
    assert isinstance(rules, list), rules
    namespace = mapping_of(mapping_of(parent).get("metadata")).get("namespace")
    for rule in rules:
        assert isinstance(rule, dict), rule
        assert isinstance(rule.get("apiVersion"), str) and isinstance(rule.get("resource"), str)
        assert "labelSelector" in rule or "names" in rule, f"a rule selects everything: {rule}"
        names = rule.get("names")
        assert names is None or (
            isinstance(names, list) and all(isinstance(n, str) and n for n in names)
        ), rule
        if isinstance(namespace, str) and namespace:
            assert rule.get("namespace") == namespace, rule
    return f"{len(rules)} rules"
