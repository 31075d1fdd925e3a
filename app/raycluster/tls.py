"""Mutual TLS between Ray processes (``tlsOptions.enabled``), with certificates from cert-manager.

metaray asks cert-manager for a small PKI per cluster and never signs anything itself:

1. Issuer ``ray-selfsigned-issuer-<c>`` (self-signed), which signs
2. Certificate ``ray-ca-certificate-<c>``: the cluster's CA, in ``<c>-ca-secret-<uid[:8]>`` (the
   uid keeps a recreated cluster from reusing an old CA),
3. Issuer ``ray-ca-issuer-<c>`` (that CA), which signs
4. Certificate ``ray-head-cert-<c>`` (``localhost``, the head Service's name, ``127.0.0.1`` and
   the head pods' IPs) into ``ray-head-secret-<c>``, and
5. Certificate ``ray-worker-cert-<c>`` (``localhost``, ``127.0.0.1``, every worker pod's IP) into
   ``ray-worker-secret-<c>``.

``127.0.0.1`` is there because Ray's own processes in a pod reach each other over loopback by
IP (the head's ``RAY_ADDRESS`` is ``127.0.0.1:<port>``; the dashboard and the job submission
client call the GCS there), and gRPC checks the IP against the certificate.

Pods are created only once all three Certificates are observed Ready. A pod's IP is known only
after it exists, so each pod starts with ``wait-for-tls-ip-san``, which waits until the mounted
certificate names the pod's IP (metaray adds it, cert-manager reissues, the kubelet refreshes the
mounted Secret).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.core import kinds
from app.core.events import NORMAL, Event
from app.core.observed import Child, Observed
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.env import head_service_env, merge_env
from app.raycluster.feature_checks import TLS_MOUNT_PATH as MOUNT_PATH
from app.raycluster.feature_checks import TLS_VOLUME as VOLUME
from app.raycluster.spec import JSONObject

WAIT_CONTAINER = "wait-for-tls-ip-san"
WAIT_RESOURCES = {"cpu": "50m", "memory": "64Mi"}
ENV = {
    "RAY_USE_TLS": "1",
    "RAY_TLS_SERVER_CERT": f"{MOUNT_PATH}/tls.crt",
    "RAY_TLS_SERVER_KEY": f"{MOUNT_PATH}/tls.key",
    "RAY_TLS_CA_CERT": f"{MOUNT_PATH}/ca.crt",
}
# The containers that talk to Ray: its own (index 0), plus these found by name.
WIRED = ("wait-gcs-ready", "autoscaler")
API_VERSION = "cert-manager.io/v1"
LEAF_USAGES = ["digital signature", "key encipherment", "server auth", "client auth"]
CA_USAGES = ["cert sign", "crl sign"]
LOOPBACK = "127.0.0.1"
# Polls every 5 s until the certificate names this pod's IP (followed by ',' or the line end,
# so that 10.0.0.1 does not match 10.0.0.12); fails at once where openssl is missing.
WAIT_SCRIPT = (
    "if ! command -v openssl >/dev/null 2>&1; then "
    'echo "wait-for-tls-ip-san: openssl is not in the Ray image"; exit 1; fi; '
    f"until openssl x509 -in {MOUNT_PATH}/tls.crt -noout -text 2>/dev/null "
    '| grep -Eq "IP Address:${POD_IP}(,|$)"; do '
    'echo "waiting for the TLS certificate to name ${POD_IP}"; sleep 5; done'
)


def enabled(cluster: Cluster) -> bool:
    options = cluster.spec.tlsOptions
    return options is not None and bool(options.enabled)


def selfsigned_issuer(cluster: str) -> str:
    return f"ray-selfsigned-issuer-{cluster}"


def ca_issuer(cluster: str) -> str:
    return f"ray-ca-issuer-{cluster}"


def ca_certificate(cluster: str) -> str:
    return f"ray-ca-certificate-{cluster}"


def ca_secret(cluster: Cluster) -> str:
    return f"{cluster.name}-ca-secret-{cluster.uid[:8]}"


def certificate(cluster: str, head: bool) -> str:
    return f"ray-head-cert-{cluster}" if head else f"ray-worker-cert-{cluster}"


def secret(cluster: str, head: bool) -> str:
    return f"ray-head-secret-{cluster}" if head else f"ray-worker-secret-{cluster}"


# -- children ---------------------------------------------------------------------------------


def children(cluster: Cluster, observed: Observed) -> list[JSONObject]:
    """The two Issuers and three Certificates, SANs from the live pods observed now."""
    if not enabled(cluster):
        return []
    name = cluster.name
    return [
        _object(
            cluster, "Issuer", selfsigned_issuer(name), "selfsigned-issuer", {"selfSigned": {}}
        ),
        _object(
            cluster,
            "Certificate",
            ca_certificate(name),
            "ca-certificate",
            {
                "isCA": True,
                "commonName": f"ray-ca-{name}",
                "secretName": ca_secret(cluster),
                "duration": "87600h",  # 3650 days
                "renewBefore": "720h",  # 30 days
                "privateKey": {"algorithm": "RSA", "size": 4096},
                "usages": list(CA_USAGES),
                "issuerRef": _issuer_ref(selfsigned_issuer(name)),
            },
        ),
        _object(
            cluster,
            "Issuer",
            ca_issuer(name),
            "ca-issuer",
            {"ca": {"secretName": ca_secret(cluster)}},
        ),
        _leaf(cluster, observed, head=True),
        _leaf(cluster, observed, head=False),
    ]


def _leaf(cluster: Cluster, observed: Observed, *, head: bool) -> JSONObject:
    dns = ["localhost", cluster.head_fqdn] if head else ["localhost"]
    spec: JSONObject = {
        "secretName": secret(cluster.name, head),
        "dnsNames": dns,
        "duration": "2160h",  # 90 days
        "renewBefore": "360h",  # 15 days
        "usages": list(LEAF_USAGES),
        "issuerRef": _issuer_ref(ca_issuer(cluster.name)),
    }
    spec["ipAddresses"] = [
        LOOPBACK,
        *(ip for ip in pod_ips(cluster, observed, head=head) if ip != LOOPBACK),
    ]
    component = "head-certificate" if head else "worker-certificate"
    return _object(cluster, "Certificate", certificate(cluster.name, head), component, spec)


def pod_ips(cluster: Cluster, observed: Observed, *, head: bool) -> list[str]:
    """The IPs of the cluster's live head (or worker) pods, sorted: one answer per world."""
    node_type = lbl.HEAD if head else lbl.WORKER
    return sorted(
        {
            pod.status.podIP
            for pod in observed.pods
            if pod.cluster == cluster.name
            and pod.node_type == node_type
            and pod.status.podIP
            and not pod.terminating
            and pod.status.phase not in ("Succeeded", "Failed")
        }
    )


def _issuer_ref(name: str) -> JSONObject:
    return {"name": name, "kind": "Issuer", "group": "cert-manager.io"}


def _object(cluster: Cluster, kind: str, name: str, component: str, spec: JSONObject) -> JSONObject:
    labels = {
        **lbl.cluster_labels(cluster.name, cluster.uid),
        "app.kubernetes.io/component": component,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": cluster.namespace,
            "labels": dict(sorted(labels.items())),
        },
        "spec": spec,
    }


def waiting_for_certificates(cluster: Cluster, observed: Observed) -> bool:
    """Whether new pods must wait: a Certificate is not observed Ready yet."""
    return bool(not_ready(cluster, observed))


def not_ready(cluster: Cluster, observed: Observed) -> list[str]:
    """The Certificates new pods wait for: not observed yet, or not Ready."""
    ready = {c.name for c in observed.of_kind(kinds.CERTIFICATE) if c.has_condition("Ready")}
    wanted = [ca_certificate(cluster.name), *(certificate(cluster.name, h) for h in (True, False))]
    return [name for name in wanted if name not in ready] if enabled(cluster) else []


def events(cluster: Cluster, observed: Observed, built: Iterable[Child]) -> list[Event]:
    """``MTLSCertsNotReady`` while pods wait for cert-manager (one Event series, as the shell
    aggregates repeats), ``MTLSCertificatesUpdated`` when a Certificate's IP SANs change."""
    found = []
    waiting = not_ready(cluster, observed)
    if waiting:
        message = (
            f"Waiting for cert-manager to issue Certificates {', '.join(waiting)}: no pod is "
            "created until they are Ready"
        )
        found.append(Event(NORMAL, "MTLSCertsNotReady", message))
    for child in built:
        if child["kind"] != "Certificate":
            continue
        applied = observed.applied.get((kinds.CERTIFICATE, child["metadata"]["name"]))
        if applied is None:
            continue
        before = [
            ip for ip in (applied.get("spec") or {}).get("ipAddresses") or [] if ip != LOOPBACK
        ]
        after = [ip for ip in child["spec"].get("ipAddresses") or [] if ip != LOOPBACK]
        if before != after:
            message = (
                f"Updated the IP addresses of Certificate {cluster.namespace}/"
                f"{child['metadata']['name']}: {len(after)} pod IPs"
            )
            found.append(Event(NORMAL, "MTLSCertificatesUpdated", message))
    return found


# -- pods -------------------------------------------------------------------------------------


def add_tls(cluster: Cluster, pod_spec: JSONObject, *, head: bool) -> None:
    """The certificate volume, its mount and the TLS variables in every container that talks
    to Ray, and the init container that waits for the pod's own IP in the certificate."""
    if not enabled(cluster):
        return
    volumes = pod_spec.setdefault("volumes", [])
    volumes.append({"name": VOLUME, "secret": {"secretName": secret(cluster.name, head)}})
    variables = [{"name": key, "value": value} for key, value in ENV.items()]
    for container in _wired(pod_spec):
        container["env"] = merge_env(container.get("env"), variables)
        _mount(container)
    ray = pod_spec["containers"][0]
    wait = _wait_container(ray)
    # Like every other init container, it learns where the head is.
    wait["env"] = merge_env(wait["env"], head_service_env(cluster))
    pod_spec["initContainers"] = [wait, *pod_spec.get("initContainers", [])]


def _wired(pod_spec: JSONObject) -> list[JSONObject]:
    containers: list[Any] = pod_spec["containers"]
    inits: list[Any] = pod_spec.get("initContainers") or []
    return [
        containers[0],
        *(c for c in containers[1:] if c.get("name") in WIRED),
        *(c for c in inits if c.get("name") in WIRED),
    ]


def _mount(container: JSONObject) -> None:
    mounts = container.setdefault("volumeMounts", [])
    mounts.append({"mountPath": MOUNT_PATH, "name": VOLUME, "readOnly": True})


def _wait_container(ray: JSONObject) -> JSONObject:
    container: JSONObject = {
        "name": WAIT_CONTAINER,
        "image": ray.get("image"),
        "command": ["sh", "-c"],
        "args": [WAIT_SCRIPT],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "resources": {"limits": dict(WAIT_RESOURCES), "requests": dict(WAIT_RESOURCES)},
        "volumeMounts": [{"mountPath": MOUNT_PATH, "name": VOLUME, "readOnly": True}],
    }
    for key in ("imagePullPolicy", "securityContext"):
        if key in ray:
            container[key] = ray[key]
    return container
