"""The RayService core's operator-wide settings.

A module of its own so that the shell can build them without importing the core (its spec
models cost memory until the first RayService sync needs them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.raycluster.options import Options as ClusterOptions


@dataclass(frozen=True, slots=True)
class Options:
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    # How often a settled RayService is synced again to pick up Ray's view.
    poll_seconds: float = 10.0
    # Gateway and HTTPRoute are registered as RayService children (the config/gateway-api
    # overlay sets METARAY_GATEWAY_API=on): only then is NewClusterWithIncrementalUpgrade valid.
    gateway_api: bool = False
