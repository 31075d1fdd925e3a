"""Ray token authentication (``authOptions``): the token Secret and the pods' wiring.

With ``mode: token`` every Ray process of the cluster shares one secret token. metaray creates it
as the Secret ``<cluster>`` (key ``auth_token``) unless the user names their own Secret
(``secretName``) or asks for Kubernetes service-account tokens (``enableK8sTokenAuth``).

The core has no randomness: the shell passes 32 random bytes with every request (``entropy``),
and the core uses them only when the Secret has never been observed. Pods that read the token
are created only once the Secret is observed, so the head and the workers can never start with
different tokens; from then on the observed Secret is answered exactly as it was created and is
never regenerated, whatever a stale or replayed request says.
"""

from __future__ import annotations

import base64
from typing import Any

from app.core import kinds
from app.core import labels as core_labels
from app.core.observed import Child, Observed
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.env import merge_env
from app.raycluster.options import TOKEN_BYTES
from app.raycluster.spec import JSONObject

TOKEN_KEY = "auth_token"
K8S_TOKEN_VOLUME = "ray-token"
K8S_TOKEN_PATH = "/var/run/secrets/ray.io/serviceaccount"
# The containers KubeRay wires: Ray's own (index 0) plus these, found by name.
WIRED_INIT_CONTAINERS = ("wait-gcs-ready",)
# ``ray-job-submitter``: a RayJob's SidecarMode submitter, which talks to the head's dashboard.
WIRED_SIDECARS = ("autoscaler", "ray-history-collector", "ray-job-submitter")


class MissingEntropy(ValueError):
    """A token Secret must be created but the shell passed no random bytes: a bug in the
    caller. Raised rather than inventing a predictable token; the shell answers 500 and
    Metacontroller changes nothing."""


def enabled(cluster: Cluster) -> bool:
    options = cluster.spec.authOptions
    return options is not None and options.mode == "token"


def k8s_tokens(cluster: Cluster) -> bool:
    options = cluster.spec.authOptions
    return enabled(cluster) and options is not None and bool(options.enableK8sTokenAuth)


def token_secret_name(cluster: Cluster) -> str | None:
    """The Secret the pods read ``RAY_AUTH_TOKEN`` from, or None when they read none."""
    options = cluster.spec.authOptions
    if options is None or not enabled(cluster) or k8s_tokens(cluster):
        return None
    return options.secretName or cluster.name


def owned_secret_name(cluster: Cluster) -> str | None:
    """The token Secret metaray creates (never the user's own ``secretName``)."""
    options = cluster.spec.authOptions
    if options is None or options.secretName is not None:
        return None
    return token_secret_name(cluster)


def secret_child(cluster: Cluster, observed: Observed, entropy: bytes | None) -> Child | None:
    """The token Secret to answer: the observed one unchanged, else a new one."""
    name = owned_secret_name(cluster)
    if name is None:
        return None
    kept = observed.applied.get((kinds.SECRET, name))
    if kept is not None:
        return kept
    if entropy is None or len(entropy) < TOKEN_BYTES:
        raise MissingEntropy(f"{TOKEN_BYTES} random bytes are needed to create a token Secret")
    return _new_secret(cluster, name, entropy[:TOKEN_BYTES])


def waiting_for_secret(cluster: Cluster, observed: Observed) -> bool:
    """Whether new pods must wait: metaray's token Secret is not observed yet."""
    name = owned_secret_name(cluster)
    return name is not None and (kinds.SECRET, name) not in observed.applied


def _new_secret(cluster: Cluster, name: str, token: bytes) -> JSONObject:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": cluster.namespace,
            "labels": {**_originated(cluster), **lbl.data_labels(cluster.name, cluster.uid)},
        },
        "type": "Opaque",
        "stringData": {TOKEN_KEY: base64.b64encode(token).decode("ascii")},
    }


def _originated(cluster: Cluster) -> dict[str, str]:
    """The cluster's ``originated-from`` labels (a RayService's or RayJob's cluster): its owner's
    customize hook selects the token Secret by them, and by nothing broader."""
    keys = (core_labels.ORIGINATED_NAME, core_labels.ORIGINATED_CRD)
    return {k: cluster.labels[k] for k in keys if k in cluster.labels}


def env(cluster: Cluster) -> list[JSONObject]:
    """What a wired container needs: the mode, and the token or the K8s switch."""
    if not enabled(cluster):
        return []
    variables: list[JSONObject] = [{"name": "RAY_AUTH_MODE", "value": "token"}]
    secret = token_secret_name(cluster)
    if secret is not None:
        ref = {"secretKeyRef": {"name": secret, "key": TOKEN_KEY}}
        variables.append({"name": "RAY_AUTH_TOKEN", "valueFrom": ref})
    else:
        variables.append({"name": "RAY_ENABLE_K8S_TOKEN_AUTH", "value": "true"})
    return variables


def add_auth(cluster: Cluster, pod_spec: JSONObject) -> None:
    """Wire every container KubeRay wires; a variable or mount the user set wins."""
    if not enabled(cluster):
        return
    variables = env(cluster)
    k8s = k8s_tokens(cluster)
    for container in _wired(pod_spec):
        container["env"] = merge_env(container.get("env"), variables)
        if k8s:
            _mount_token(container)
    if k8s:
        volumes = pod_spec.setdefault("volumes", [])
        if not any(volume.get("name") == K8S_TOKEN_VOLUME for volume in volumes):
            volumes.append(_token_volume())


def _wired(pod_spec: JSONObject) -> list[JSONObject]:
    containers: list[Any] = pod_spec.get("containers") or []
    wired = [containers[0]] if containers else []
    wired += [c for c in containers[1:] if c.get("name") in WIRED_SIDECARS]
    inits: list[Any] = pod_spec.get("initContainers") or []
    wired += [c for c in inits if c.get("name") in WIRED_INIT_CONTAINERS]
    return wired


def _mount_token(container: JSONObject) -> None:
    mounts = container.setdefault("volumeMounts", [])
    if any(
        m.get("name") == K8S_TOKEN_VOLUME or m.get("mountPath") == K8S_TOKEN_PATH for m in mounts
    ):
        return
    mounts.append({"mountPath": K8S_TOKEN_PATH, "name": K8S_TOKEN_VOLUME, "readOnly": True})


def _token_volume() -> JSONObject:
    """A projected service-account token (no audience or expiry set, as KubeRay)."""
    return {
        "name": K8S_TOKEN_VOLUME,
        "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
    }
