"""The RayCluster, RayJob and RayCronJob CustomResourceDefinitions, generated from the spec
models (RayCronJob's is served as v1 only; its jobTemplate embeds the RayJob spec schema).

``python -m app.faces.crd`` writes ``crds/ray.io_rayclusters.yaml`` and
``crds/ray.io_rayjobs.yaml``; ``python -m app.faces.crd --check`` exits 1 when either committed
file differs from a fresh generation.

Each spec schema is derived from its model's ``model_json_schema()`` (``RayClusterSpec``,
``RayJobSpec``). Where a model keeps a Kubernetes type as a plain JSON object (pod templates, the
head Service, the autoscaler's container settings, the submitter's pod template, ...), the full
Kubernetes schema is embedded from the OpenAPI definitions that ``kubernetes-validate`` ships,
with references inlined and descriptions dropped; a RayJob's ``rayClusterSpec`` embeds the
RayCluster spec schema itself. The result is a structural schema: every node has a type, or is
int-or-string.

No node preserves unknown fields (but the history collector's env ``valueFrom``, kept unspelled
for size). A field the schema does not know (a typo, or a KubeRay field
metaray does not implement) is rejected by kubectl's strict field
validation (its default since Kubernetes 1.27); a client that asks for no validation has it
pruned by the API server instead. Should one reach the hook anyway, the model rejects it and the
hook refuses the spec with a status naming it.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from app.faces.crd.raycluster import HEADER, RAYCLUSTER
from app.faces.crd.raycronjob import RAYCRONJOB
from app.faces.crd.rayjob import RAYJOB
from app.faces.crd.rayservice import RAYSERVICE
from app.faces.crd.schema import (
    CRDS,
    GROUP,
    GenerationError,
    JSONSchema,
    KubernetesTypes,
    Resource,
)

RESOURCES = (RAYCLUSTER, RAYJOB, RAYCRONJOB, RAYSERVICE)


def open_api_schema(types: KubernetesTypes, resource: Resource = RAYCLUSTER) -> JSONSchema:
    return {
        "type": "object",
        "description": resource.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": resource.spec(types),
            "status": resource.status(types),
        },
        "required": ["spec"],
        "x-kubernetes-validations": copy.deepcopy(resource.root_rules),
    }


def build_crd(types: KubernetesTypes | None = None, resource: Resource = RAYCLUSTER) -> JSONSchema:
    schema = open_api_schema(types or KubernetesTypes.load(), resource)
    kind = resource.kind
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": resource.plural,
                "singular": kind.lower(),
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == resource.versions[0],
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(resource.printer_columns),
                }
                for version in resource.versions
            ],
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated sub-schemas out in full: no YAML anchors for kubectl or kustomize."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(crd: Mapping[str, Any], header: str = HEADER) -> str:
    body = yaml.dump(crd, Dumper=_PlainDumper, sort_keys=True, default_flow_style=False, width=100)
    return header + body


def generate(types: KubernetesTypes | None = None) -> dict[str, str]:
    """Every CRD's file name (in crds/) and text."""
    types = types or KubernetesTypes.load()
    return {
        resource.output.name: render(build_crd(types, resource), resource.header)
        for resource in RESOURCES
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.faces.crd", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed CRD differs from a new one"
    )
    parser.add_argument("--output-dir", type=Path, default=CRDS, help="(default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        texts = generate()
    except GenerationError as error:
        print(f"cannot generate the CRDs: {error}", file=sys.stderr)
        return 2
    folder: Path = args.output_dir
    if args.check:
        stale = [
            folder / name
            for name, text in texts.items()
            if not (folder / name).exists() or (folder / name).read_text(encoding="utf-8") != text
        ]
        for output in stale:
            print(f"{output} is stale: run `python -m app.faces.crd`", file=sys.stderr)
        return 1 if stale else 0
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
