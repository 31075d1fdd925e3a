"""The child types metaray manages, keyed as Metacontroller keys them: ``<Kind>.<apiVersion>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POD = "Pod.v1"
SERVICE = "Service.v1"
INGRESS = "Ingress.networking.k8s.io/v1"
SERVICE_ACCOUNT = "ServiceAccount.v1"
ROLE = "Role.rbac.authorization.k8s.io/v1"
ROLE_BINDING = "RoleBinding.rbac.authorization.k8s.io/v1"
JOB = "Job.batch/v1"
SECRET = "Secret.v1"
NETWORK_POLICY = "NetworkPolicy.networking.k8s.io/v1"
PVC = "PersistentVolumeClaim.v1"
ISSUER = "Issuer.cert-manager.io/v1"
CERTIFICATE = "Certificate.cert-manager.io/v1"

# Registered only where cert-manager is installed (config/components/mtls): Metacontroller sends
# a key for every registered child type, empty or not, so a missing key means "not registered".
OPTIONAL = frozenset({ISSUER, CERTIFICATE})

# Rebuilt from the spec on every sync; an observed child of another type is kept as it is.
MANAGED = frozenset(
    {
        POD,
        SERVICE,
        INGRESS,
        SERVICE_ACCOUNT,
        ROLE,
        ROLE_BINDING,
        JOB,
        SECRET,
        NETWORK_POLICY,
        PVC,
        ISSUER,
        CERTIFICATE,
    }
)


def key_of(child: Mapping[str, Any]) -> str:
    """The Metacontroller key of a child: ``Pod.v1``, ``Role.rbac.authorization.k8s.io/v1``."""
    return f"{child['kind']}.{child['apiVersion']}"
