"""An in-memory Metacontroller for the RayService controller, with a pretend Kubernetes and a
pretend Ray Serve around it.

It applies answers as Metacontroller v4.17 does (delete what is left out, create what is new,
update RayClusters and Services in place, write the status) and plays the world between syncs:
a created RayCluster's head becomes ready (and its controller's head Service appears as a
related object, owned by that cluster); each cluster's Serve takes a config PUT to its
dashboard, deploys it for a few steps and reports RUNNING (or never, or DEPLOY_FAILED); a
dashboard can fail or lie; the serve Service's EndpointSlice lists the selected cluster's
proxies once its applications run. Deleted clusters linger one step with a deletionTimestamp.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, decode
from app.hooks.response import encode
from app.rayservice import sync as rayservice
from app.rayservice.serve import Application, ApplyServeConfig, Deployment, ServeView
from tests.loop import cluster_spec, group

START = datetime(2026, 1, 1, tzinfo=UTC)
RAYCLUSTER = "RayCluster.ray.io/v1"
SERVICE = "Service.v1"
SLICE = "EndpointSlice.discovery.k8s.io/v1"
SECRET_KIND = "Secret.v1"
IN_PLACE = (RAYCLUSTER, SERVICE)
OPTIONS = rayservice.Options()

SERVE_CONFIG = """
applications:
  - name: fruit
    import_path: fruit.deployment_graph
    route_prefix: /fruit
    deployments:
      - name: MangoStand
        user_config: {price: 3}
  - name: math
    import_path: conditional_dag.serve_dag
    route_prefix: /calc
"""


def serve_cluster_spec(**extra: Any) -> dict[str, Any]:
    spec = cluster_spec(group(), **extra)
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["ports"] = [*head["ports"], {"containerPort": 8000, "name": "serve"}]
    return spec


def rayservice_object(name: str = "svc", uid: str = "uid-rs-1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rayClusterConfig": serve_cluster_spec(),
        "serveConfigV2": SERVE_CONFIG,
        **spec,
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": body,
    }


@dataclass
class Serve:
    """One cluster's Ray Serve, as its dashboard tells it."""

    deployed: dict[str, Any] | None = None
    status: str = "RUNNING"
    steps_left: int = 0
    puts: int = 0
    capacity: int | None = None  # Serve's target_capacity, as last PUT


@dataclass
class ServeWorld:
    """Every cluster's Serve; ``deploy_steps`` syncs from a PUT to RUNNING."""

    deploy_steps: int = 2
    serves: dict[str, Serve] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # dashboards that time out
    never_ready: set[str] = field(default_factory=set)  # clusters whose apps never run
    liars: set[str] = field(default_factory=set)  # say RUNNING for a config they do not run
    sick: set[str] = field(default_factory=set)  # applications UNHEALTHY
    puts: list[tuple[str, str]] = field(default_factory=list)

    def view(self, cluster: str, url: str, now: datetime) -> ServeView:
        serve = self.serves.setdefault(cluster, Serve())
        if cluster in self.failing:
            return ServeView(url, None, failing_since=_stamp(now), error="timed out")
        if cluster in self.liars:
            apps = (("fruit", Application("RUNNING", deployed={"name": "old"})),)
            return ServeView(url, apps)
        config = serve.deployed
        if config is None:
            return ServeView(url, ())
        apps = tuple(
            (
                str(app.get("name") or "default"),
                Application(
                    "UNHEALTHY" if cluster in self.sick else serve.status,
                    deployments=(("Ingress", Deployment("HEALTHY")),),
                    deployed={**app, "runtime_env": {}},  # Ray adds defaults to what it says
                ),
            )
            for app in config.get("applications") or []
        )
        return ServeView(url, apps, target_capacity=serve.capacity)

    def put(self, intent: ApplyServeConfig) -> None:
        if intent.cluster in self.failing:
            return
        serve = self.serves.setdefault(intent.cluster, Serve())
        body = intent.body()
        serve.capacity = body.pop("target_capacity", None)
        serve.deployed = body
        serve.puts += 1
        serve.status = "DEPLOYING"
        serve.steps_left = self.deploy_steps
        self.puts.append((intent.cluster, intent.config))

    def tick(self) -> None:
        for name, serve in self.serves.items():
            if serve.status == "DEPLOYING" and name not in self.never_ready:
                serve.steps_left -= 1
                if serve.steps_left <= 0:
                    serve.status = "RUNNING"

    def running(self, cluster: str) -> bool:
        serve = self.serves.get(cluster)
        return (
            serve is not None
            and serve.deployed is not None
            and serve.status == "RUNNING"
            and cluster not in self.failing
            and cluster not in self.sick
        )


@dataclass
class Step:
    request: dict[str, Any]
    desired: Desired
    answer: dict[str, Any]
    created: list[str]
    deleted: list[str]


@dataclass
class ServiceLoop:
    parent: dict[str, Any]
    world: ServeWorld = field(default_factory=ServeWorld)
    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    now: datetime = START
    tick: timedelta = timedelta(seconds=1)
    history: list[Step] = field(default_factory=list)
    # A hook other than the in-process core (the HTTP app): body -> (status, body).
    call: Callable[[bytes], tuple[int, bytes]] | None = None
    # Clusters whose head never becomes ready (no capacity).
    stuck: set[str] = field(default_factory=set)
    # Token-auth clusters have their token Secret (made by the RayCluster controller).
    token_secrets: bool = False
    options: rayservice.Options = OPTIONS
    # The child types the controller registers (Metacontroller sends a key for each).
    kinds: tuple[str, ...] = (RAYCLUSTER, SERVICE)
    _serial: int = 0

    # -- what Metacontroller sends ---------------------------------------------------------
    def request(self, parent: dict[str, Any] | None = None) -> dict[str, Any]:
        grouped: dict[str, dict[str, Any]] = {kind: {} for kind in self.kinds}
        for (kind, name), obj in sorted(self.children.items()):
            grouped[kind][f"default/{name}"] = obj
        return {
            "controller": {"kind": "CompositeController", "metadata": {"name": "metaray-svc"}},
            "parent": parent if parent is not None else self.parent,
            "children": grouped,
            "related": self.related(),
            "finalizing": False,
        }

    def related(self) -> dict[str, dict[str, Any]]:
        services, slices = {}, {}
        for (kind, _), obj in sorted(self.children.items()):
            if kind == RAYCLUSTER and _head_ready(obj):
                svc = _cluster_head_service(obj)
                services[f"default/{svc['metadata']['name']}"] = svc
        serve = self.children.get((SERVICE, "svc-serve-svc"))
        if serve is not None:
            target = serve["spec"]["selector"]["ray.io/cluster"]
            ready = self.world.running(target) and (RAYCLUSTER, target) in self.children
            slices["default/svc-serve-svc-abcde"] = _slice(target if ready else None)
        secrets = {}
        for (kind, name), obj in sorted(self.children.items()):
            auth = obj.get("spec", {}).get("authOptions") or {}
            if kind == RAYCLUSTER and self.token_secrets and auth.get("mode") == "token":
                secrets[f"default/{name}"] = _token_secret(obj)
        return {SERVICE: services, SLICE: slices, SECRET_KIND: secrets}

    def views(self, request: dict[str, Any]) -> dict[str, ServeView]:
        decoded = decode(orjson.dumps(request), related=True, raycluster=False)
        targets = rayservice.watched(decoded.observed, decoded.related, self.options)
        return {n: self.world.view(n, t.url, self.now) for n, t in targets.items()}

    def decide(self, request: dict[str, Any]) -> tuple[Desired | None, dict[str, Any]]:
        if self.call is not None:
            status, raw = self.call(orjson.dumps(request))
            assert status == 200, raw
            return None, orjson.loads(raw)
        decoded = decode(orjson.dumps(request), related=True, raycluster=False)
        views = self.views(request)
        desired = rayservice.sync(
            decoded.parent, decoded.observed, decoded.related, self.now, self.options, views
        )
        return desired, orjson.loads(encode(desired))

    # -- one sync, applied -----------------------------------------------------------------
    def step(self, parent: dict[str, Any] | None = None, write_status: bool = True) -> Step:
        self.now += self.tick
        self._vanish_terminated()
        self._heads_come_up()
        request = self.request(parent)
        desired, answer = self.decide(request)
        wanted = {
            (f"{c['kind']}.{c['apiVersion']}", c["metadata"]["name"]): c for c in answer["children"]
        }
        deleted = [
            name
            for key, name in list(self.children)
            if (key, name) not in wanted and self._delete((key, name))
        ]
        created = []
        for key, child in wanted.items():
            if key not in self.children:
                self._create(key, child)
                created.append(f"{key[0].split('.')[0]}/{key[1]}")
            elif key[0] in IN_PLACE or key[0] not in (RAYCLUSTER, SERVICE):
                self._update(key, child)
        if write_status:
            self.parent = {**self.parent, "status": answer["status"]}
        if desired is not None:
            for intent in desired.intents:
                if isinstance(intent, ApplyServeConfig):
                    self.world.put(intent)
        self.world.tick()
        step = Step(request, desired, answer, sorted(created), sorted(deleted))  # type: ignore[arg-type]
        self.history.append(step)
        return step

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def until(self, check: Callable[[ServiceLoop], bool], max_steps: int = 30) -> None:
        for _ in range(max_steps):
            self.step()
            if check(self):
                return
        raise AssertionError(f"never got there: {json.dumps(self.status, indent=1)[:2000]}")

    # -- the world -------------------------------------------------------------------------
    @property
    def status(self) -> dict[str, Any]:
        return dict(self.parent.get("status") or {})

    @property
    def active(self) -> str | None:
        return (self.status.get("activeServiceStatus") or {}).get("rayClusterName")

    @property
    def pending(self) -> str | None:
        return (self.status.get("pendingServiceStatus") or {}).get("rayClusterName")

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status.get("conditions", []) if c["type"] == kind)

    def edit(self, **changes: Any) -> None:
        parent = copy.deepcopy(self.parent)
        parent["spec"].update(changes)
        parent["metadata"]["generation"] += 1
        self.parent = parent

    def clusters(self, live: bool = True) -> list[str]:
        return sorted(
            n
            for (k, n), o in self.children.items()
            if k == RAYCLUSTER and not (live and "deletionTimestamp" in o["metadata"])
        )

    def selector(self, service: str = "svc-serve-svc") -> str | None:
        found = self.children.get((SERVICE, service))
        return None if found is None else found["spec"]["selector"]["ray.io/cluster"]

    # -- how Metacontroller applies it ------------------------------------------------------
    def _create(self, key: tuple[str, str], child: dict[str, Any]) -> None:
        obj = copy.deepcopy(child)
        self._serial += 1
        meta = obj["metadata"]
        meta["uid"] = f"uid-{self._serial}"
        meta["creationTimestamp"] = _stamp(self.now)
        meta["annotations"] = {**(meta.get("annotations") or {}), LAST_APPLIED: json.dumps(child)}
        meta["ownerReferences"] = [
            {
                "kind": "RayService",
                "name": "svc",
                "uid": self.parent["metadata"]["uid"],
                "controller": True,
            }
        ]
        if key[0] == RAYCLUSTER:
            obj["status"] = {"state": "", "conditions": []}
        self.children[key] = obj

    def _update(self, key: tuple[str, str], child: dict[str, Any]) -> None:
        current = self.children[key]
        if json.loads(current["metadata"]["annotations"][LAST_APPLIED]) == child:
            return
        obj = copy.deepcopy(child)
        obj["metadata"] = {
            **current["metadata"],
            "labels": child["metadata"].get("labels", {}),
            "annotations": {
                **(child["metadata"].get("annotations") or {}),
                LAST_APPLIED: json.dumps(child),
            },
        }
        if "status" in current:
            obj["status"] = current["status"]
        self.children[key] = obj

    def _delete(self, key: tuple[str, str]) -> bool:
        obj = self.children[key]
        if "deletionTimestamp" in obj["metadata"]:
            return False
        obj["metadata"]["deletionTimestamp"] = _stamp(self.now)
        return True

    def _vanish_terminated(self) -> None:
        for key, obj in list(self.children.items()):
            if "deletionTimestamp" in obj["metadata"]:
                del self.children[key]

    def _heads_come_up(self) -> None:
        for (kind, name), obj in self.children.items():
            if (
                kind == RAYCLUSTER
                and name not in self.stuck
                and "deletionTimestamp" not in obj["metadata"]
            ):
                obj["status"] = {
                    "state": "ready",
                    "conditions": [
                        {
                            "type": "HeadPodReady",
                            "status": "True",
                            "reason": "HeadPodRunningAndReady",
                        }
                    ],
                }


def _head_ready(cluster: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "HeadPodReady" and c.get("status") == "True"
        for c in (cluster.get("status") or {}).get("conditions", [])
    )


def _cluster_head_service(cluster: dict[str, Any]) -> dict[str, Any]:
    """What metaray's RayCluster controller makes: ``<cluster>-head-svc``, owned by it."""
    name = cluster["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{name}-head-svc",
            "namespace": "default",
            "labels": {
                "ray.io/cluster": name,
                "ray.io/node-type": "head",
                "ray.io/originated-from-cr-name": "svc",
                "ray.io/originated-from-crd": "RayService",
            },
            "ownerReferences": [
                {
                    "kind": "RayCluster",
                    "name": name,
                    "uid": cluster["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"ports": [{"name": "dashboard", "port": 8265}, {"name": "serve", "port": 8000}]},
    }


def token_of(cluster: str) -> str:
    """The pretend token of a cluster (what metaray's RayCluster controller generated)."""
    return f"tok-{cluster}-Zq8"


def _token_secret(cluster: dict[str, Any]) -> dict[str, Any]:
    name = cluster["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {
                "ray.io/cluster": name,
                "ray.io/originated-from-cr-name": "svc",
                "ray.io/originated-from-crd": "RayService",
            },
            "ownerReferences": [
                {
                    "kind": "RayCluster",
                    "name": name,
                    "uid": cluster["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "data": {"auth_token": base64.b64encode(token_of(name).encode()).decode()},
    }


def _slice(target: str | None) -> dict[str, Any]:
    endpoints = (
        [
            {
                "addresses": ["10.0.0.9"],
                "conditions": {"ready": True},
                "targetRef": {"uid": f"pod-{target}"},
            }
        ]
        if target
        else []
    )
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "svc-serve-svc-abcde",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "svc-serve-svc"},
        },
        "endpoints": endpoints,
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
