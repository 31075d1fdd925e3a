"""Every child metaray answers for a sample is a valid object for a real API server: the
Kubernetes schemas kubernetes-validate ships, and for cert-manager's Issuers and Certificates the
hand-written minimal schema of tests/features/cert_manager.py, for the Gateway API's Gateway and
HTTPRoute that of tests/features/gateway_api.py."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.features import cert_manager, gateway_api
from tests.golden.render_samples import golden_path, samples

KUBERNETES_VERSION = "1.33"


@pytest.mark.parametrize("sample", samples(), ids=lambda path: path.name)
def test_every_child_is_a_valid_kubernetes_object(sample: Path) -> None:
    answer = yaml.safe_load(golden_path(sample).read_text())
    errors = []
    for child in answer["children"]:
        if child["apiVersion"] == "ray.io/v1":
            continue  # a RayJob's RayCluster: checked against metaray's own CRD (tests/crd)
        if child["apiVersion"] == "cert-manager.io/v1":
            errors += [
                f"{child['kind']}/{child['metadata']['name']}: {e}"
                for e in cert_manager.errors(child)
            ]
            continue
        if child["apiVersion"] == "gateway.networking.k8s.io/v1":
            errors += [
                f"{child['kind']}/{child['metadata']['name']}: {e}"
                for e in gateway_api.errors(child)
            ]
            continue
        try:
            kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            errors.append(f"{child['kind']}/{child['metadata']['name']}: {path}: {error.message}")
    assert not errors, "\n".join(errors)
