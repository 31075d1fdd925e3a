"""What every builder needs to know about the cluster: its identity, spec and addresses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app import __version__
from app.raycluster.command import head_port
from app.raycluster.names import head_service_name
from app.raycluster.options import Options as Options  # re-exported: the core's users name it here
from app.raycluster.spec import RayClusterSpec, WorkerGroupSpec

FT_ANNOTATION = "ray.io/ft-enabled"
OVERWRITE_CMD_ANNOTATION = "ray.io/overwrite-container-cmd"
# Set by the RayJob controller on a SidecarMode cluster: the submitter lives in the head, so a
# new head would run the job a second time.
NO_HEAD_RESTART_ANNOTATION = "ray.io/disable-provisioned-head-restart"
# metaray's version on every head pod. Not KubeRay's ``ray.io/kuberay-version``: KubeRay compares
# that one with its own version (RayService upgrades), and metaray's version is not KubeRay's.
VERSION_ANNOTATION = "ray.io/metaray-version"
CREATOR_KINDS = ("RayJob", "RayService")


def metaray_version() -> str:
    return f"v{__version__}"


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    namespace: str
    uid: str
    annotations: Mapping[str, str]
    spec: RayClusterSpec
    options: Options = field(default_factory=Options)
    # The previous status says every pod was once up (the RayClusterProvisioned condition).
    provisioned: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    # The controlling owner (apiVersion, kind, name), e.g. the RayJob that made this cluster.
    controller: tuple[str, str, str] | None = None

    @classmethod
    def from_parent(
        cls, parent: Mapping[str, Any], spec: RayClusterSpec, options: Options
    ) -> Cluster:
        metadata = parent.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        labels = metadata.get("labels") or {}
        return cls(
            name=metadata["name"],
            namespace=metadata.get("namespace") or "default",
            uid=metadata.get("uid") or "",
            annotations={k: v for k, v in annotations.items() if isinstance(v, str)},
            spec=spec,
            options=options,
            provisioned=_provisioned(parent.get("status")),
            labels={k: v for k, v in labels.items() if isinstance(v, str)},
            controller=_controller(metadata.get("ownerReferences")),
        )

    @property
    def head_service_name(self) -> str:
        custom = self.spec.headGroupSpec.headService
        name = ((custom or {}).get("metadata") or {}).get("name")
        return name if isinstance(name, str) and name else head_service_name(self.name)

    @property
    def head_fqdn(self) -> str:
        return f"{self.head_service_name}.{self.namespace}.svc.{self.options.cluster_domain}"

    @property
    def head_port(self) -> str:
        return head_port(self.spec.headGroupSpec.rayStartParams)

    @property
    def head_address(self) -> str:
        return f"{self.head_fqdn}:{self.head_port}"

    @property
    def ft_enabled(self) -> bool:
        annotated = self.annotations.get(FT_ANNOTATION, "").lower() == "true"
        return annotated or self.spec.gcsFaultToleranceOptions is not None

    @property
    def overwrite_command(self) -> bool:
        return self.annotations.get(OVERWRITE_CMD_ANNOTATION, "").lower() == "true"

    @property
    def head_restart_disabled(self) -> bool:
        """A lost head is not replaced once the cluster was provisioned (KubeRay's rule)."""
        annotated = self.annotations.get(NO_HEAD_RESTART_ANNOTATION, "").lower() == "true"
        return annotated and self.provisioned

    @property
    def creator_kind(self) -> str:
        """Which custom resource made this cluster (KubeRay's ``originated-from-crd`` label)."""
        kind = self.labels.get("ray.io/originated-from-crd", "")
        return kind if kind in CREATOR_KINDS else "RayCluster"

    @property
    def autoscaling(self) -> bool:
        return self.spec.enableInTreeAutoscaling

    def group(self, name: str) -> WorkerGroupSpec | None:
        for group in self.spec.workerGroupSpecs:
            if group.groupName == name:
                return group
        return None


def _provisioned(status: Any) -> bool:
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping)
        and c.get("type") == "RayClusterProvisioned"
        and c.get("status") == "True"
        for c in conditions
    )


def _controller(references: Any) -> tuple[str, str, str] | None:
    """The owner reference marked ``controller`` (there is at most one), if well formed."""
    if not isinstance(references, list):
        return None
    for ref in references:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            parts = (ref.get("apiVersion"), ref.get("kind"), ref.get("name"))
            if all(isinstance(part, str) for part in parts):
                return (str(parts[0]), str(parts[1]), str(parts[2]))
    return None
