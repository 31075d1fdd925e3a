"""The one address of a RayJob's Ray dashboard that metaray, its poller and its pods may call,
derived from objects metaray owns and observes; never read from the status (anyone who may
edit the RayJob may edit its status) nor built from a Service name the user chose.

- The RayJob's own cluster: the RayJob's head Service ``<rayjob>-head-svc``, an observed child
  that the RayJob controls, a Service with a selector (not ExternalName, not selector-less: its
  endpoints are the pods it selects, not a list someone wrote by hand) that selects the head of
  the RayCluster child the RayJob controls; its name is metaray's, its port the one named
  ``dashboard``.
- A user's cluster (``clusterSelector``): the Running head pod of the selected RayCluster, a
  related object carrying the cluster's label and controlled by that RayCluster (its uid), at
  its pod IP. No Service of that cluster is trusted: its name, type and endpoints are the user's.

None when no such object is observed (yet): then nothing is called and no pod is given an
address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from app.core.observed import Observed, ObservedObject, ObservedPod
from app.raycluster import labels as lbl
from app.raycluster.ports import dashboard_container_port
from app.rayjob.kinds import RAYCLUSTER
from app.rayjob.names import head_service_name
from app.rayjob.spec import CLUSTER_SELECTOR_KEY

DASHBOARD_PORT = "dashboard"


def dashboard_address(
    parent: Mapping[str, Any], observed: Observed, related: Observed, domain: str
) -> str | None:
    """The RayJob's dashboard, from its raw parent (the shell's poller needs it before the core
    runs, and an invalid spec must still be stopped on finalize) and what was observed."""
    selected = selected_cluster(parent, related)
    if selected is not None:
        return selected_dashboard(selected, related.pods)
    if selected_name(parent) is not None:
        return None  # the user's cluster is not observed: nothing to derive an address from
    metadata = _mapping(parent.get("metadata"))
    cluster = _mapping(parent.get("status")).get("rayClusterName")
    name, namespace, uid = (metadata.get(k) for k in ("name", "namespace", "uid"))
    if not all(isinstance(v, str) and v for v in (cluster, name, namespace, uid)):
        return None
    return own_dashboard(str(name), str(namespace), str(uid), str(cluster), observed, domain)


def selected_name(parent: Mapping[str, Any]) -> str | None:
    selector = _mapping(_mapping(parent.get("spec")).get("clusterSelector"))
    name = selector.get(CLUSTER_SELECTOR_KEY)
    return name if isinstance(name, str) and name else None


def selected_cluster(parent: Mapping[str, Any], related: Observed) -> ObservedObject | None:
    """The user's RayCluster named by ``clusterSelector``, as observed (a related object)."""
    name = selected_name(parent)
    return next((c for c in related.of_kind(RAYCLUSTER) if c.name == name), None)


def own_dashboard(
    rayjob: str, namespace: str, uid: str, cluster: str, observed: Observed, domain: str
) -> str | None:
    """``host:port`` of the dashboard of ``cluster``, the RayJob's own RayCluster child."""
    owned = next((c for c in observed.of_kind(RAYCLUSTER) if c.name == cluster), None)
    if owned is None or owned.metadata.deletionTimestamp is not None:
        return None
    if not owned.metadata.controlled_by(uid):
        return None
    name = head_service_name(rayjob)
    services = observed.services
    service = next((s for s in services if s.name == name), None)
    if service is None or service.metadata.deletionTimestamp is not None:
        return None
    if not service.metadata.controlled_by(uid) or service.spec.type == "ExternalName":
        return None
    if service.spec.selector != lbl.head_selector(cluster):
        return None
    port = next((p.port for p in service.spec.ports if p.name == DASHBOARD_PORT), None)
    if port is None or not 0 < port < 65536:
        return None
    return f"{name}.{namespace}.svc.{domain}:{port}"


def selected_dashboard(cluster: ObservedObject, pods: tuple[ObservedPod, ...]) -> str | None:
    """``ip:port`` of the dashboard of a user's RayCluster (a related object): its Running head
    pod's IP, the pod controlled by that very cluster."""
    if not cluster.metadata.uid:
        return None
    heads = sorted(
        (
            pod
            for pod in pods
            if pod.cluster == cluster.name
            and pod.node_type == lbl.HEAD
            and pod.running
            and not pod.terminating
            and pod.metadata.controlled_by(cluster.metadata.uid)
            and _ip(pod.status.podIP)
        ),
        key=lambda pod: pod.name,
    )
    if not heads:
        return None
    ip = ipaddress.ip_address(heads[0].status.podIP)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{host}:{container_port(cluster.spec)}"


def container_port(spec: Mapping[str, Any]) -> int:
    """The head container's port named ``dashboard`` in a cluster's raw spec, else Ray's."""
    head = spec.get("headGroupSpec")
    return dashboard_container_port(head if isinstance(head, Mapping) else {})


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
