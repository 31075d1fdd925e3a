"""What the shell hands the RayCluster core besides the request: operator-wide settings, and
how many random bytes come with every request (``auth.py`` turns them into a token Secret).

A module of its own so that the shell can name them without importing the core (its spec
models cost memory until the first RayCluster sync needs them)."""

from __future__ import annotations

from dataclasses import dataclass

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Options:
    """Operator-wide settings; the shell reads them from its environment and passes them in."""

    cluster_domain: str = "cluster.local"
    wait_gcs_init_container: bool = True
