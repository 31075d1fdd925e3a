"""Settings of the service, read from the environment (``METARAY_*`` and Kubernetes' own)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from app.raycluster.options import Options
from app.rayjob.options import Options as RayJobOptions
from app.submitter import source as submitter_source

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EVENTS_MODES = ("auto", "on", "off")
SWITCH = ("on", "off")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    log_level: str = "info"
    cluster_domain: str = "cluster.local"
    wait_gcs_init_container: bool = True
    # Kubernetes Events: auto posts them only when running in a cluster (see app/shell/kube/api.py).
    events: str = "auto"
    events_queue_size: int = 1000
    # A per-RayCluster or per-RayJob gauge series that no answer has refreshed for this long goes
    # (a finalize removes it at once). It must outlast the registrations' resyncPeriodSeconds
    # (600 s) several times over, and Metacontroller's 30 min cache flush, so that an idle
    # parent never blinks out between resyncs; it is finite so that a replica no longer asked
    # about a parent (deleted without finalize, answered by another replica) stops reporting it.
    gauge_horizon_seconds: float = 3600.0
    # PROMETHEUS_MULTIPROC_DIR: several uvicorn workers share their metrics through it.
    metrics_dir: str | None = None
    # In-cluster API access; kube_host is None outside a cluster.
    kube_host: str | None = None
    kube_port: str = "443"
    token_path: str = f"{SERVICE_ACCOUNT_DIR}/token"
    ca_path: str = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
    pod_name: str = "metaray"
    # Hook security and limits (see SECURITY.md).
    auth_token: str | None = None
    max_body_bytes: int = 64 * 2**20  # ~5,000 pods of ~11 KB each, with room to spare
    max_in_flight: int = 8
    compute_timeout_seconds: float = 10.0
    cache_bytes: int = 16 * 2**20  # answers up to a quarter of it (~800 pods) are kept
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Ray dashboards (RayJob): read them, how often, how long to wait for one answer, and how
    # soon a RayJob that the dashboard decides is synced again.
    dashboard: bool = True
    dashboard_interval_seconds: float = 3.0
    dashboard_timeout_seconds: float = 2.0
    dashboard_resync_seconds: float = 5.0
    # Gateway and HTTPRoute are registered as RayService children (config/gateway-api sets
    # METARAY_GATEWAY_API=on): NewClusterWithIncrementalUpgrade is refused without them.
    gateway_api: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        events = env.get("METARAY_EVENTS", defaults.events).lower()
        if events not in EVENTS_MODES:
            raise ValueError(f"METARAY_EVENTS must be one of {', '.join(EVENTS_MODES)}: {events!r}")
        return cls(
            host=env.get("METARAY_HOST", defaults.host),
            port=int(env.get("METARAY_PORT", defaults.port)),
            workers=int(env.get("METARAY_WORKERS", defaults.workers)),
            log_level=env.get("METARAY_LOG_LEVEL", defaults.log_level),
            cluster_domain=env.get("CLUSTER_DOMAIN", defaults.cluster_domain),
            wait_gcs_init_container=env.get("ENABLE_INIT_CONTAINER_INJECTION", "true").lower()
            != "false",
            events=events,
            events_queue_size=int(env.get("METARAY_EVENTS_QUEUE_SIZE", defaults.events_queue_size)),
            gauge_horizon_seconds=float(
                env.get("METARAY_GAUGE_HORIZON_SECONDS", defaults.gauge_horizon_seconds)
            ),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            kube_host=env.get("KUBERNETES_SERVICE_HOST") or None,
            kube_port=env.get("KUBERNETES_SERVICE_PORT", defaults.kube_port),
            pod_name=env.get("POD_NAME") or env.get("HOSTNAME") or defaults.pod_name,
            auth_token=_token(env),
            max_body_bytes=int(env.get("METARAY_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_in_flight=int(env.get("METARAY_MAX_IN_FLIGHT", defaults.max_in_flight)),
            compute_timeout_seconds=float(
                env.get("METARAY_COMPUTE_TIMEOUT_SECONDS", defaults.compute_timeout_seconds)
            ),
            cache_bytes=int(env.get("METARAY_CACHE_BYTES", defaults.cache_bytes)),
            tls_cert_file=env.get("METARAY_TLS_CERT_FILE") or None,
            tls_key_file=env.get("METARAY_TLS_KEY_FILE") or None,
            dashboard=_switch(env, "METARAY_DASHBOARD", defaults.dashboard),
            dashboard_interval_seconds=float(
                env.get("METARAY_DASHBOARD_INTERVAL_SECONDS", defaults.dashboard_interval_seconds)
            ),
            dashboard_timeout_seconds=float(
                env.get("METARAY_DASHBOARD_TIMEOUT_SECONDS", defaults.dashboard_timeout_seconds)
            ),
            dashboard_resync_seconds=float(
                env.get("METARAY_DASHBOARD_RESYNC_SECONDS", defaults.dashboard_resync_seconds)
            ),
            gateway_api=_switch(env, "METARAY_GATEWAY_API", defaults.gateway_api),
        )

    @property
    def options(self) -> Options:
        return Options(
            cluster_domain=self.cluster_domain,
            wait_gcs_init_container=self.wait_gcs_init_container,
        )

    @property
    def rayjob_options(self) -> RayJobOptions:
        return RayJobOptions(
            cluster=self.options,
            submitter_script=submitter_source(),
            dashboard=self.dashboard,
            dashboard_poll_seconds=self.dashboard_resync_seconds,
        )


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "on" if default else "off").lower()
    if value not in SWITCH:
        raise ValueError(f"{name} must be on or off: {value!r}")
    return value == "on"


def _token(env: Mapping[str, str]) -> str | None:
    """The bearer token Metacontroller must send: from a file (a mounted Secret) or a value."""
    path = env.get("METARAY_AUTH_TOKEN_FILE")
    if path:
        with open(path) as file:
            token = file.read().strip()
        if not token:
            raise ValueError(f"METARAY_AUTH_TOKEN_FILE {path} is empty")
        return token
    return env.get("METARAY_AUTH_TOKEN") or None
