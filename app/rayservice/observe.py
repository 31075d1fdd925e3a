"""What a RayService's sync reads from its related objects (its customize hook's answer): the
dashboards it may call, and the ready endpoints of its serve Service.

A dashboard's address is derived only from an object metaray owns and observes: the head
Service that metaray's RayCluster controller made for one of this RayService's own clusters
(its controller owner reference names that cluster's uid, it has the name metaray gives it),
and the port that Service calls ``dashboard``. Never from a status, never from a name the user
chose.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from app.core import kinds
from app.core import labels as lbl
from app.core.observed import Observed, ObservedObject, ObservedService
from app.raycluster.auth import TOKEN_KEY
from app.raycluster.names import head_service_name
from app.rayservice.children import RAYCLUSTER_KIND
from app.rayservice.serve import ServeTarget

ENDPOINT_SLICE = "EndpointSlice.discovery.k8s.io/v1"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def targets(
    clusters: Iterable[ObservedObject], related: Observed, domain: str
) -> dict[str, ServeTarget]:
    """The dashboard of each live cluster whose head is ready, by cluster name."""
    services = {s.name: s for s in related.services}
    found: dict[str, ServeTarget] = {}
    for cluster in clusters:
        if cluster.metadata.deletionTimestamp is not None or not _head_ready(cluster):
            continue
        service = services.get(head_service_name(cluster.name))
        if service is None or not _owned(service, cluster):
            continue
        port = next((p.port for p in service.spec.ports if p.name == "dashboard"), 0)
        if not 0 < port < 65536:
            continue
        token = _token(cluster, related)
        if token is None:
            continue  # its dashboard refuses every call until the token Secret is observed
        url = f"{service.name}.{cluster.metadata.namespace}.svc.{domain}:{port}"
        found[cluster.name] = ServeTarget(cluster.name, url, token)
    return found


def _token(cluster: ObservedObject, related: Observed) -> str | None:
    """The cluster's Ray auth token: "" without token auth, None while its Secret is missing.

    The Secret is the one the cluster's pods read: the user's ``secretName``, or the Secret
    ``<cluster>`` that metaray's RayCluster controller made for that very cluster (labelled
    with it and owned by its uid), key ``auth_token``."""
    auth = cluster.spec.get("authOptions")
    if not isinstance(auth, Mapping) or auth.get("mode") != "token":
        return ""
    own = auth.get("secretName")
    name = own if isinstance(own, str) and own else cluster.name
    for secret in related.of_kind(kinds.SECRET):
        meta = secret.metadata
        if meta.name != name or meta.namespace != cluster.metadata.namespace:
            continue
        if name == cluster.name and not (
            meta.controlled_by_a(RAYCLUSTER_KIND, cluster.metadata.uid)
            and meta.labels.get(lbl.CLUSTER) == cluster.name
        ):
            continue
        value = secret.data.get(TOKEN_KEY)
        try:
            token = base64.b64decode(value or "", validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return token or None
    return None


def _owned(service: ObservedService, cluster: ObservedObject) -> bool:
    meta = service.metadata
    return (
        meta.controlled_by_a(RAYCLUSTER_KIND, cluster.metadata.uid)
        and meta.labels.get(lbl.CLUSTER) == cluster.name
        and meta.labels.get(lbl.NODE_TYPE) == lbl.HEAD
        and meta.namespace == cluster.metadata.namespace
    )


def _head_ready(cluster: ObservedObject) -> bool:
    """KubeRay's gate: the HeadPodReady condition (or a ``ready`` cluster)."""
    return cluster.has_condition("HeadPodReady") or cluster.status.get("state") == "ready"


def endpoints(related: Observed, service: str) -> int:
    """Ready endpoints of the serve Service, each pod counted once across its slices."""
    seen: set[str] = set()
    for slice_ in related.of_kind(ENDPOINT_SLICE):
        if slice_.metadata.labels.get(SERVICE_NAME_LABEL) != service:
            continue
        for endpoint in slice_.endpoints:
            if not _ready(endpoint):
                continue
            ref = endpoint.get("targetRef")
            uid = ref.get("uid") if isinstance(ref, Mapping) else None
            addresses = endpoint.get("addresses")
            key = uid if isinstance(uid, str) and uid else repr(addresses)
            seen.add(key)
    return len(seen)


def _ready(endpoint: Any) -> bool:
    if not isinstance(endpoint, Mapping):
        return False
    conditions = endpoint.get("conditions")
    # An unset ready condition means ready (discovery.k8s.io/v1).
    return not isinstance(conditions, Mapping) or conditions.get("ready") is not False


def customize_rules(
    name: str, namespace: str, serve_service: str, token_secret: str | None = None
) -> list[dict[str, Any]]:
    """The related objects a RayService's sync needs: its clusters' head Services, token
    Secrets and head pods (labelled with the RayService through the cluster it builds), the
    user's own token Secret if ``authOptions`` names one, and its serve Service's
    EndpointSlices."""
    originated = {lbl.ORIGINATED_NAME: name, lbl.ORIGINATED_CRD: "RayService"}
    rules: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "resource": "services",
            "labelSelector": {"matchLabels": {**originated, lbl.NODE_TYPE: lbl.HEAD}},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "resource": "endpointslices",
            "labelSelector": {"matchLabels": {SERVICE_NAME_LABEL: serve_service}},
        },
        {
            "apiVersion": "v1",
            "resource": "secrets",
            "labelSelector": {"matchLabels": originated},
        },
        # Its clusters' head pods: ray.io/serve follows each head's proxy health.
        {
            "apiVersion": "v1",
            "resource": "pods",
            "labelSelector": {"matchLabels": {**originated, lbl.NODE_TYPE: lbl.HEAD}},
        },
    ]
    if token_secret:
        rules.append({"apiVersion": "v1", "resource": "secrets", "names": [token_secret]})
    return [{**rule, "namespace": namespace} for rule in rules] if namespace else rules
