"""A minimal schema check of cert-manager's Issuer and Certificate (cert-manager.io/v1).

The published CRDs (cert-manager's deploy/crds/cert-manager.io_{issuers,certificates}.yaml)
cannot be downloaded here, so this module states by hand what metaray relies on, read from them:
the fields an Issuer or a Certificate spec may hold (an unknown one would be pruned silently by
the API server), the required ones, their types, and the enums of ``usages`` and
``privateKey``. It is strict where metaray writes, and no more complete than that.
"""

from __future__ import annotations

from typing import Any

import jsonschema

_STRINGS = {"type": "array", "items": {"type": "string"}}
_REF = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string"},
        "group": {"type": "string"},
    },
}
KEY_USAGES = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
]
_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

CERTIFICATE_SPEC = {
    "type": "object",
    "required": ["issuerRef", "secretName"],
    "additionalProperties": False,
    "properties": {
        "commonName": {"type": "string", "maxLength": 64},
        "dnsNames": _STRINGS,
        "ipAddresses": _STRINGS,
        "duration": _DURATION,
        "renewBefore": _DURATION,
        "isCA": {"type": "boolean"},
        "issuerRef": _REF,
        "secretName": {"type": "string"},
        "usages": {"type": "array", "items": {"enum": KEY_USAGES}},
        "privateKey": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                "encoding": {"enum": ["PKCS1", "PKCS8"]},
                "rotationPolicy": {"enum": ["Never", "Always"]},
                "size": {"enum": [2048, 4096, 8192, 256, 384, 521]},
            },
        },
    },
}
ISSUER_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,  # exactly one issuer type
    "properties": {
        "selfSigned": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"crlDistributionPoints": _STRINGS},
        },
        "ca": {
            "type": "object",
            "required": ["secretName"],
            "additionalProperties": False,
            "properties": {
                "secretName": {"type": "string"},
                "crlDistributionPoints": _STRINGS,
                "ocspServers": _STRINGS,
                "issuingCertificateURLs": _STRINGS,
            },
        },
    },
}


def _object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


SCHEMAS = {
    "Issuer": _object("Issuer", ISSUER_SPEC),
    "Certificate": _object("Certificate", CERTIFICATE_SPEC),
}


def errors(obj: dict[str, Any]) -> list[str]:
    """What cert-manager's CRD schema (as far as stated above) says about ``obj``."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[obj["kind"]])
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]
