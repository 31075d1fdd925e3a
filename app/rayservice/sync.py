"""The entry points of the RayService core: Metacontroller's sync and customize hooks.

Pure: the RayService, its observed children, the related objects, the shell's clock and the
shell's latest Serve views in; the desired children, the status, Event intents, the Serve
intents and the next deadline out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core import kinds
from app.core.desired import Desired
from app.core.events import NORMAL, WARNING, Event
from app.core.observed import Child, Observed
from app.core.status import previous_status
from app.core.time import stamp
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import JSONObject
from app.rayservice import children, gateway, head_label, names, observe, routing, timeout
from app.rayservice.keep import echo, invalid
from app.rayservice.options import Options as Options  # re-exported: the core's users name it here
from app.rayservice.plan import (
    ACTIVE,
    BUSY_RESYNC_SECONDS,
    PENDING,
    RAYCLUSTER,
    TO_DELETE,
    Plan,
    World,
    decide,
)
from app.rayservice.proxy import ProxyTarget, ProxyView
from app.rayservice.serve import ServeTarget, ServeView
from app.rayservice.spec import RayService, Strategy, managed_elsewhere, parse_rayservice
from app.rayservice.status import (
    RUNNING,
    Condition,
    conditions,
    conditions_of,
    finish,
    is_true,
    side_status,
    to_delete_entries,
)
from app.rayservice.suspend import is_suspended, resumed, suspend

SERVICE = kinds.SERVICE


def watched(observed: Observed, related: Observed, options: Options) -> dict[str, ServeTarget]:
    """The dashboards whose Serve views the next syncs need, from owned objects only."""
    return observe.targets(observed.of_kind(RAYCLUSTER), related, options.cluster.cluster_domain)


def watched_proxies(observed: Observed, related: Observed) -> dict[str, ProxyTarget]:
    """The head proxies whose health the next syncs need (by pod uid): the heads of this
    RayService's clusters, at their own IPs."""
    return head_label.targets(observed.of_kind(RAYCLUSTER), related)


def sync(
    parent: Mapping[str, Any],
    observed: Observed,
    related: Observed,
    now: datetime,
    options: Options | None = None,
    views: Mapping[str, ServeView] | None = None,
    proxies: Mapping[str, ProxyView] | None = None,
) -> Desired:
    """``views``: the shell's latest Serve view per cluster name (for the addresses that
    ``watched`` returned); ``proxies``: its latest reading of each head proxy, by pod uid (for
    the addresses that ``watched_proxies`` returned)."""
    options = options or Options()
    previous = previous_status(parent)
    if managed_elsewhere(parent):
        return Desired(echo(observed), dict(previous))
    try:
        rs = parse_rayservice(parent, options.gateway_api)
    except InvalidSpec as problem:
        return invalid(observed, previous, problem, now)
    clusters = {c.name: c for c in observed.of_kind(RAYCLUSTER)}
    targets = watched(observed, related, options)
    # A view counts only for the address metaray derived for that cluster now.
    usable = {
        name: view
        for name, view in (views or {}).items()
        if name in targets and view.url == targets[name].url
    }
    if rs.spec.suspend or is_true(previous, Condition.SUSPENDING) or is_suspended(previous):
        suspended = suspend(rs, previous, observed, clusters, now)
        if suspended is not None:
            return suspended
        previous = resumed(previous, now)
    if timeout.timed_out(previous):
        return timeout.gave_up(rs, previous, observed, clusters, now)
    limit = timeout.deadline(rs, previous)
    if limit is not None and now >= limit:
        live = sorted(n for n, c in clusters.items() if c.metadata.deletionTimestamp is None)
        status, message = timeout.give_up(rs, previous, live, now)
        return Desired(
            echo(observed),
            finish(previous, status, rs.generation, now),
            (Event(WARNING, timeout.REASON, message),),
            resync_after=BUSY_RESYNC_SECONDS,
        )
    stepped = rs.strategy == Strategy.INCREMENTAL
    seen = gateway.observe(rs.name, observed, clusters) if stepped else gateway.NOTHING
    world = World(
        gateway=seen,
        clusters=clusters,
        applied={
            n: observed.applied[(RAYCLUSTER, n)]
            for n in clusters
            if (RAYCLUSTER, n) in observed.applied
        },
        views=usable,
        targets=targets,
        selected=_selected(rs, observed) | {c for c, w in seen.weights.items() if w > 0},
        now=now,
    )
    plan = decide(rs, previous, world, lambda name: _cluster(rs, name))
    if limit is not None:
        plan.deadlines.append(limit)
    kept = _kept(observed, plan)
    if stepped:
        built = routing.answer(rs, observed, world, plan, options.cluster)
    else:
        built = _services(rs, observed, world, plan, options)
    answer = [*kept, *plan.build.values(), *built]
    status = _status(rs, previous, plan, world, related, now)
    labels = head_label.decide(
        rs.namespace,
        rs.spec.excludeHeadPodFromServeSvc,
        (plan.active, plan.pending),
        world.live.values(),
        related,
        proxies or {},
    )
    return Desired(
        _sorted(answer),
        status,
        (*_events(rs, observed, answer, plan), *head_label.events(labels)),
        resync_after=_resync(plan, now, options),
        intents=(*plan.intents, *labels),
    )


def customize(parent: Mapping[str, Any]) -> JSONObject:
    metadata = parent.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or not name:
        return {"relatedResources": []}
    spec = parent.get("spec")
    custom = spec.get("serveService") if isinstance(spec, Mapping) else None
    serve = names.serve_service(name, custom if isinstance(custom, Mapping) else None)
    ns = namespace if isinstance(namespace, str) else ""
    rules = observe.customize_rules(name, ns, serve, _token_secret(spec))
    strategy = spec.get("upgradeStrategy") if isinstance(spec, Mapping) else None
    if isinstance(strategy, Mapping) and strategy.get("type") == Strategy.INCREMENTAL:
        # Each cluster's own serve Service: their EndpointSlices copy its labels.
        slices = {"matchLabels": {children.SERVE_SELECTOR_LABEL: f"{name}-serve"}}
        rule = {"apiVersion": "discovery.k8s.io/v1", "resource": "endpointslices"}
        rules.append({**rule, "labelSelector": slices, **({"namespace": ns} if ns else {})})
    return {"relatedResources": rules}


def _token_secret(spec: Any) -> str | None:
    """The user's own token Secret (``authOptions.secretName``), if any."""
    config = spec.get("rayClusterConfig") if isinstance(spec, Mapping) else None
    auth = config.get("authOptions") if isinstance(config, Mapping) else None
    name = auth.get("secretName") if isinstance(auth, Mapping) else None
    return name if isinstance(name, str) and name else None


def _cluster(rs: RayService, name: str) -> JSONObject:
    return children.ray_cluster(
        name,
        rs.namespace,
        rs.name,
        rs.labels,
        rs.annotations,
        rs.spec.rayClusterConfig,
        names.goal_hash(rs.cluster_spec),
    )


def _selected(rs: RayService, observed: Observed) -> frozenset[str]:
    found = set()
    for name in (names.head_service(rs.name), names.serve_service(rs.name, rs.spec.serveService)):
        target = children.selected_cluster(observed.applied.get((SERVICE, name)))
        if target is not None:
            found.add(target)
    return frozenset(found)


def _kept(observed: Observed, plan: Plan) -> list[Child]:
    """Every observed cluster as metaray last asked for it, but for those rebuilt or due."""
    return [
        child
        for (kind, name), child in sorted(observed.applied.items())
        if kind == RAYCLUSTER and name not in plan.build and name not in plan.delete
    ]


def _services(
    rs: RayService, observed: Observed, world: World, plan: Plan, options: Options
) -> list[Child]:
    """The head and serve Services, selecting the target cluster; none before any cluster
    was ready (an observed one is kept as it is until then)."""
    wanted = [names.head_service(rs.name), names.serve_service(rs.name, rs.spec.serveService)]
    if plan.target is None:
        return [observed.applied[(SERVICE, n)] for n in wanted if (SERVICE, n) in observed.applied]
    spec = children.cluster_spec_of(world.applied.get(plan.target), rs.cluster_spec)
    return [
        children.head_service(rs.name, rs.namespace, plan.target, spec, options.cluster),
        children.serve_service(rs.name, rs.namespace, plan.target, spec, rs.spec.serveService),
    ]


def _status(
    rs: RayService,
    previous: Mapping[str, Any],
    plan: Plan,
    world: World,
    related: Observed,
    now: datetime,
) -> JSONObject:
    stepped = rs.strategy == Strategy.INCREMENTAL
    serve_name = names.serve_service(rs.name, rs.spec.serveService)
    if stepped:
        endpoints = routing.endpoints(related, plan, world)
    else:
        endpoints = observe.endpoints(related, serve_name) if plan.target is not None else 0
    sides = (
        side_status(plan.active, previous, ACTIVE, world.clusters, world.views),
        side_status(plan.pending, previous, PENDING, world.clusters, world.views),
    )
    if stepped:
        routing.status_sides(previous, plan, world, sides, now)
    status: JSONObject = {
        ACTIVE: sides[0],
        PENDING: sides[1],
        "numServeEndpoints": endpoints,
        "serviceStatus": RUNNING if endpoints > 0 else "",
        "conditions": [
            *conditions(previous, plan, endpoints, stamp(now)),
            *routing.rollback(previous, plan, stamp(now)),
            *_kept_conditions(previous),
        ],
    }
    if plan.to_delete:
        status[TO_DELETE] = to_delete_entries(plan)
    return finish(previous, status, rs.generation, now)


def _kept_conditions(previous: Mapping[str, Any]) -> list[Any]:
    """Suspended (False, after a resume) is carried as it is."""
    return [c for c in conditions_of(previous) if c.get("type") == Condition.SUSPENDED]


def _events(rs: RayService, observed: Observed, answer: list[Child], plan: Plan) -> list[Event]:
    ns = rs.namespace
    seen = set(observed.keys())
    events = []
    for child in answer:
        key = (kinds.key_of(child), str(child["metadata"]["name"]))
        kind = key[0].split(".", 1)[0]
        if key not in seen:
            events.append(Event(NORMAL, f"Created{kind}", f"Created {kind} {ns}/{key[1]}"))
        elif key[0] != RAYCLUSTER and observed.applied.get(key) != child:
            events.append(Event(NORMAL, f"Updated{kind}", f"Updated {kind} {ns}/{key[1]}"))
        elif key[0] == RAYCLUSTER and key[1] in plan.build:
            events.append(Event(NORMAL, "UpdatedRayCluster", f"Updated RayCluster {ns}/{key[1]}"))
    live = {c.name for c in observed.of_kind(RAYCLUSTER) if c.metadata.deletionTimestamp is None}
    for name in sorted(plan.delete & live):
        events.append(Event(NORMAL, "DeletedRayCluster", f"Deleted RayCluster {ns}/{name}"))
    # Said with the intent (the PUT follows the answer), so once per read of Ray that still
    # shows another config; the Event correlator folds the repeats.
    for intent in plan.intents:
        message = f"Updated serve applications to the RayCluster {ns}/{intent.cluster}"
        events.append(Event(NORMAL, "UpdatedServeApplications", message))
        if intent.target_capacity is not None and rs.strategy == Strategy.INCREMENTAL:
            message = (
                f"Updated the target_capacity of the RayCluster {ns}/{intent.cluster} "
                f"to {intent.target_capacity}"
            )
            events.append(Event(NORMAL, "UpdatedServeTargetCapacity", message))
    return events


def _resync(plan: Plan, now: datetime, options: Options) -> float:
    busy = plan.pending is not None or plan.target is None or plan.intents or plan.delete
    wait = BUSY_RESYNC_SECONDS if busy else options.poll_seconds
    for due in plan.deadlines:
        wait = min(wait, max((due - now).total_seconds(), 0.0) + 1)
    return wait


def _sorted(answer: list[Child]) -> list[Child]:
    return sorted(answer, key=lambda c: (kinds.key_of(c), str(c["metadata"]["name"])))
