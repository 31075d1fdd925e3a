"""The in-memory Metacontroller of ``loop.py`` with the Gateway API overlay installed: Gateway
and HTTPRoute registered as RayService children, a Gateway controller that accepts and programs
the Gateway and accepts the route once every backend Service exists (or refuses, on demand),
and EndpointSlices for each cluster's own serve Service."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from app.rayservice import sync as rayservice
from tests.rayservice.loop import RAYCLUSTER, SERVICE, ServeWorld, ServiceLoop, rayservice_object

GATEWAY = "Gateway.gateway.networking.k8s.io/v1"
HTTPROUTE = "HTTPRoute.gateway.networking.k8s.io/v1"
SLICE = "EndpointSlice.discovery.k8s.io/v1"
OPTIONS = rayservice.Options(gateway_api=True)


def incremental_object(
    step: int = 10, interval: int = 30, surge: int = 20, **spec: Any
) -> dict[str, Any]:
    rs = rayservice_object(**spec)
    rs["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] = True
    rs["spec"].setdefault(
        "upgradeStrategy",
        {
            "type": "NewClusterWithIncrementalUpgrade",
            "clusterUpgradeOptions": {
                "gatewayClassName": "istio",
                "stepSizePercent": step,
                "intervalSeconds": interval,
                "maxSurgePercent": surge,
            },
        },
    )
    return rs


def _conditions(ok: bool, *kinds: str) -> list[dict[str, Any]]:
    return [{"type": k, "status": "True" if ok else "False", "reason": k} for k in kinds]


@dataclass
class GatewayLoop(ServiceLoop):
    """``gateway_ready``: whether the Gateway controller accepts what it is given."""

    options: rayservice.Options = OPTIONS
    kinds: tuple[str, ...] = (RAYCLUSTER, SERVICE, GATEWAY, HTTPROUTE)
    gateway_ready: bool = True
    world: ServeWorld = field(default_factory=ServeWorld)

    def request(self, parent: dict[str, Any] | None = None) -> dict[str, Any]:
        self._gateway_controller()
        return super().request(parent)

    def related(self) -> dict[str, dict[str, Any]]:
        found = super().related()
        slices = dict(found.get(SLICE, {}))
        for (kind, name), svc in sorted(self.children.items()):
            target = (svc.get("spec") or {}).get("selector", {}).get("ray.io/cluster")
            if kind != SERVICE or not name.endswith("-serve-svc") or name == "svc-serve-svc":
                continue
            ready = self.world.running(target) and (RAYCLUSTER, target) in self.children
            slices[f"default/{name}-abcde"] = _slice(name, target if ready else None)
        found[SLICE] = slices
        return found

    def _gateway_controller(self) -> None:
        gateway = self.children.get((GATEWAY, "svc-gateway"))
        if gateway is not None:
            gateway["status"] = {
                "conditions": _conditions(self.gateway_ready, "Accepted", "Programmed")
            }
        route = self.children.get((HTTPROUTE, "svc-httproute"))
        if route is not None:
            refs = route["spec"]["rules"][0]["backendRefs"]
            resolved = all((SERVICE, r["name"]) in self.children for r in refs)
            route["status"] = {
                "parents": [
                    {
                        "parentRef": {"name": "svc-gateway", "namespace": "default"},
                        "conditions": [
                            *_conditions(self.gateway_ready, "Accepted"),
                            *_conditions(resolved, "ResolvedRefs"),
                        ],
                    }
                ]
            }

    # -- what a user sees ------------------------------------------------------------------
    def weights(self) -> dict[str, int]:
        """Cluster -> weight in the observed HTTPRoute."""
        route = self.children.get((HTTPROUTE, "svc-httproute"))
        if route is None:
            return {}
        refs = route["spec"]["rules"][0]["backendRefs"]
        return {r["name"].removesuffix("-serve-svc"): r["weight"] for r in refs}

    def capacity(self, cluster: str | None) -> int | None:
        serve = self.world.serves.get(cluster or "")
        return None if serve is None else serve.capacity

    def side(self, key: str) -> dict[str, Any]:
        return dict(self.status.get(key) or {})

    def new_image(self, image: str = "rayproject/ray:2.53.0") -> None:
        spec = copy.deepcopy(self.parent["spec"]["rayClusterConfig"])
        spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image
        self.edit(rayClusterConfig=spec)


def _slice(service: str, target: str | None) -> dict[str, Any]:
    endpoints = (
        [{"addresses": ["10.0.1.9"], "conditions": {"ready": True}, "targetRef": {"uid": target}}]
        if target
        else []
    )
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-abcde",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service, "ray.io/serve": "svc-serve"},
        },
        "endpoints": endpoints,
    }
