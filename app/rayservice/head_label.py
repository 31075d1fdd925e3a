"""The head pod's ``ray.io/serve`` label: the serve Service (which selects ``ray.io/serve:
"true"``) sends traffic to the head only while its Serve proxy answers ``/-/healthz``.

Workers are gated by their readiness probe; the head's readiness cannot say whether its proxy
runs, so KubeRay relabels the head from the proxy's health. The head pod is the RayCluster
controller's child, not the RayService's, and Metacontroller never updates a pod (OnDelete), so
the core only asks (``SetHeadServeLabel``) and the shell patches the label.

Each reading carries the time it was taken, and the patch records it on the pod
(``metaray.io/serve-proxy-read-at``): a reading no newer than the one the label already follows
never changes it, so a stale view (another replica's, or one older than the observed pod) never
flips the label back. The patch itself names the pod's uid: a pod replaced under the same name is
never labelled from its predecessor's health.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime

from app.core import labels as lbl
from app.core.events import NORMAL, Event
from app.core.observed import Observed, ObservedObject, ObservedPod
from app.rayservice.children import RAYCLUSTER_KIND, head_serve_port
from app.rayservice.proxy import (
    FALSE,
    READ_AT,
    SERVE_LABEL,
    TRUE,
    ProxyTarget,
    ProxyView,
    SetHeadServeLabel,
)


def head_pods(clusters: Iterable[ObservedObject], related: Observed) -> dict[str, ObservedPod]:
    """Each live cluster's head pod, by cluster name: only a pod that cluster controls."""
    found: dict[str, ObservedPod] = {}
    by_name = {c.name: c for c in clusters if c.metadata.deletionTimestamp is None}
    for pod in related.pods:
        meta = pod.metadata
        cluster = by_name.get(meta.labels.get(lbl.CLUSTER, ""))
        if (
            cluster is None
            or pod.terminating
            or meta.labels.get(lbl.NODE_TYPE) != lbl.HEAD
            or meta.namespace != cluster.metadata.namespace
            or not meta.uid
            or not meta.controlled_by_a(RAYCLUSTER_KIND, cluster.metadata.uid)
        ):
            continue
        # Two heads (one being replaced): the newest decides, by name for a stable answer.
        known = found.get(cluster.name)
        if known is None or (meta.creationTimestamp or "", meta.name) > (
            known.metadata.creationTimestamp or "",
            known.metadata.name,
        ):
            found[cluster.name] = pod
    return found


def targets(clusters: Iterable[ObservedObject], related: Observed) -> dict[str, ProxyTarget]:
    """The head proxies to read, by pod uid: heads with an IP address (never a host name)."""
    clusters = list(clusters)
    specs = {c.name: c.spec for c in clusters}
    found: dict[str, ProxyTarget] = {}
    for name, pod in head_pods(clusters, related).items():
        try:
            address = ipaddress.ip_address(pod.status.podIP)
        except ValueError:
            continue  # no IP yet
        host = f"[{address}]" if address.version == 6 else str(address)
        port = head_serve_port(specs[name])
        if 0 < port < 65536:
            found[pod.metadata.uid] = ProxyTarget(name, pod.metadata.uid, f"{host}:{port}")
    return found


def decide(
    namespace: str,
    exclude: bool,
    serving: Iterable[str | None],
    clusters: Iterable[ObservedObject],
    related: Observed,
    views: Mapping[str, ProxyView],
) -> list[SetHeadServeLabel]:
    """What to relabel on the heads of the ``serving`` clusters (active and pending), given
    the shell's readings by pod uid. Nothing while a head has no reading at its address."""
    clusters = list(clusters)
    heads = head_pods(clusters, related)
    addresses = targets(clusters, related)
    wanted: list[SetHeadServeLabel] = []
    for name in sorted({n for n in serving if n is not None}):
        pod = heads.get(name)
        if pod is None:
            continue  # a missing head is no reason to stop: the rest of the answer stands
        meta = pod.metadata
        if exclude:
            value, read_at = FALSE, ""
        else:
            target = addresses.get(meta.uid)
            view = views.get(meta.uid)
            if target is None or view is None or view.url != target.url:
                continue
            if not _newer(view.read_at, meta.annotations.get(READ_AT)):
                continue  # the label already follows this reading, or a newer one
            value, read_at = (TRUE if view.healthy else FALSE), view.read_at
        if meta.labels.get(SERVE_LABEL) != value:
            wanted.append(SetHeadServeLabel(namespace, meta.name, meta.uid, value, read_at))
    return wanted


def events(intents: Iterable[SetHeadServeLabel]) -> list[Event]:
    """KubeRay's ``UpdatedHeadPodServeLabel``, said with the intent (the patch follows)."""
    return [
        Event(
            NORMAL,
            "UpdatedHeadPodServeLabel",
            f"Updated the {SERVE_LABEL} label of the head Pod {i.namespace}/{i.pod} to {i.value}",
        )
        for i in intents
    ]


def _newer(reading: str, recorded: str | None) -> bool:
    taken = _when(reading)
    if taken is None:
        return False
    before = _when(recorded)
    return before is None or taken > before


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
