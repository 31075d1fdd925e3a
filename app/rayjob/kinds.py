"""The RayJob controller's child types, keyed as Metacontroller keys them."""

from __future__ import annotations

from app.core import kinds

RAYCLUSTER = "RayCluster.ray.io/v1"
JOB = kinds.JOB
SERVICE = kinds.SERVICE
