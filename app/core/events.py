"""What the core decided, as Kubernetes Event intents (KubeRay master's reasons)."""

from __future__ import annotations

from dataclasses import dataclass

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True, slots=True)
class Event:
    """An event about the RayCluster; the shell posts it, the core only describes it."""

    type: str
    reason: str
    message: str
