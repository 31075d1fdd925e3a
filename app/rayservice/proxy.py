"""What the RayService core and the shell say to each other about a head pod's Serve proxy:
the reading the shell takes (``ProxyTarget`` in, ``ProxyView`` out) and the label the core asks
for (``SetHeadServeLabel``). A light module of its own, so that the shell names these values
without importing the core (its spec models cost memory until the first RayService sync).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVE_LABEL = "ray.io/serve"
READ_AT = "metaray.io/serve-proxy-read-at"
# The Serve proxy's own health route, on the node's serve port (KubeRay's head label reads it).
HEALTHZ = "/-/healthz"
TRUE, FALSE = "true", "false"


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    """A head pod whose Serve proxy the shell should read: ``url`` is ``ip:port``, the pod's
    own IP (observed on a pod the cluster owns) and the head container's ``serve`` port."""

    cluster: str
    pod_uid: str
    url: str


@dataclass(frozen=True, slots=True)
class ProxyView:
    """The shell's latest reading of one head's proxy: ``healthy`` is a 200 from
    ``/-/healthz``; any other answer, a timeout or a refused connection is not healthy.
    ``read_at`` is when it was read (ISO 8601, the shell's clock)."""

    url: str
    healthy: bool
    read_at: str


@dataclass(frozen=True, slots=True)
class SetHeadServeLabel:
    """Set ``ray.io/serve`` of the pod with this uid to ``value``; ``read_at`` is the reading
    it follows ("" when no reading decides it: ``excludeHeadPodFromServeSvc``)."""

    namespace: str
    pod: str
    uid: str
    value: str
    read_at: str = ""
