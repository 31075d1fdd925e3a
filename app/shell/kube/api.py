"""Reaching the Kubernetes API from inside a pod: its address, the service-account token, the CA."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.shell.settings import Settings

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

# Bound service-account tokens are rotated by the kubelet; client-go re-reads them each minute.
TOKEN_REFRESH_SECONDS = 60.0
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class KubeApi:
    base_url: str
    token_path: str
    ca_path: str


def events_api(settings: Settings) -> KubeApi | None:
    """Where to post Events, or None: ``off``; ``auto`` outside a cluster (no service host or
    no token file); ``on`` insists, and fails at startup outside a cluster."""
    if settings.events == "off":
        return None
    if settings.kube_host is None:
        if settings.events == "on":
            raise ValueError("METARAY_EVENTS=on needs KUBERNETES_SERVICE_HOST: run in a cluster")
        return None
    if settings.events == "auto" and not Path(settings.token_path).is_file():
        return None
    return _api(settings, settings.kube_host)


def in_cluster_api(settings: Settings) -> KubeApi | None:
    """The API server for what the hook must do itself (a RayJob's DeleteSelf), or None
    outside a cluster: no service host, or no service-account token to act with. Not
    governed by ``METARAY_EVENTS``: reporting can be turned off, a RayJob's own deletion
    policy cannot."""
    if settings.kube_host is None or not Path(settings.token_path).is_file():
        return None
    return _api(settings, settings.kube_host)


def _api(settings: Settings, kube_host: str) -> KubeApi:
    host = f"[{kube_host}]" if ":" in kube_host else kube_host
    return KubeApi(f"https://{host}:{settings.kube_port}", settings.token_path, settings.ca_path)


class BearerToken:
    """The token file, re-read every ``refresh`` seconds; a read failure keeps the last token.
    An httpx auth callable (httpx wraps it per request) rather than an ``httpx.Auth`` subclass,
    so that this module and the hook's start-up need no httpx until a request is made."""

    def __init__(
        self,
        path: str,
        refresh: float = TOKEN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.refresh = refresh
        self.clock = clock
        self.token = ""
        self.read_at = float("-inf")

    def current(self) -> str:
        now = self.clock()
        if now - self.read_at >= self.refresh:
            # A projected volume mid-update: the previous token is still valid meanwhile.
            with contextlib.suppress(OSError):
                self.token = self.path.read_text().strip()
            self.read_at = now
        return self.token

    def __call__(self, request: httpx.Request) -> httpx.Request:
        token = self.current()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        return request


def client(api: KubeApi, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An API client: the cluster's CA when its file is there, the system's otherwise."""
    import httpx

    verify: ssl.SSLContext | bool = True
    if transport is None and Path(api.ca_path).is_file():
        verify = ssl.create_default_context(cafile=api.ca_path)
    return httpx.AsyncClient(
        base_url=api.base_url,
        auth=BearerToken(api.token_path),
        transport=transport,
        verify=verify,
        timeout=TIMEOUT_SECONDS,
    )
