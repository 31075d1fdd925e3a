"""Settings of the service, read from the environment (``METARAY_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from app.raycluster.cluster import Options


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "info"
    cluster_domain: str = "cluster.local"
    wait_gcs_init_container: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            host=env.get("METARAY_HOST", defaults.host),
            port=int(env.get("METARAY_PORT", defaults.port)),
            log_level=env.get("METARAY_LOG_LEVEL", defaults.log_level),
            cluster_domain=env.get("CLUSTER_DOMAIN", defaults.cluster_domain),
            wait_gcs_init_container=env.get("ENABLE_INIT_CONTAINER_INJECTION", "true").lower()
            != "false",
        )

    @property
    def options(self) -> Options:
        return Options(
            cluster_domain=self.cluster_domain,
            wait_gcs_init_container=self.wait_gcs_init_container,
        )
