"""Helpers shared by the feature tests: one-shot syncs and loop stories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.desired import Desired
from app.core.observed import Observed
from app.raycluster.names import pod_name
from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import parse_spec
from app.raycluster.sync import sync
from tests.loop import POD, Loop, Step, raycluster

Spec = dict[str, Any]
Child = dict[str, Any]


def first_sync(spec: Spec, annotations: dict[str, str] | None = None, **parent: Any) -> Desired:
    """The answer to the very first sync of a RayCluster: nothing observed yet."""
    obj = raycluster(spec, **parent)
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return sync(obj, Observed())


def children_of(desired: Desired, kind: str) -> list[Child]:
    return [child for child in desired.children if child["kind"] == kind]


def only(desired: Desired, kind: str) -> Child:
    found = children_of(desired, kind)
    assert len(found) == 1, [c["metadata"]["name"] for c in found]
    return found[0]


def pods_of(desired: Desired, node_type: str) -> list[Child]:
    return [
        pod
        for pod in children_of(desired, "Pod")
        if pod["metadata"]["labels"]["ray.io/node-type"] == node_type
    ]


def head_of(desired: Desired) -> Child:
    heads = pods_of(desired, "head")
    assert len(heads) == 1
    return heads[0]


def container_named(pod: Child, name: str) -> Child:
    found = [c for c in pod["spec"]["containers"] if c["name"] == name]
    assert len(found) == 1, [c["name"] for c in pod["spec"]["containers"]]
    return found[0]


def env_of(container: Child) -> dict[str, Child]:
    names = [item["name"] for item in container.get("env", [])]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {item["name"]: item for item in container.get("env", [])}


def start_script(container: Child) -> str:
    """The bash script of a Ray container (``/bin/bash -c -- <script>``)."""
    assert container["command"] == ["/bin/bash", "-c", "--"]
    (script,) = container["args"]
    assert isinstance(script, str)
    return script


def problems(obj: dict[str, Any]) -> list[Problem]:
    """The problems ``parse_spec`` finds in a RayCluster object (none when it is valid)."""
    try:
        parse_spec(obj)
    except InvalidSpec as invalid:
        return invalid.problems
    return []


# -- loop stories ---------------------------------------------------------------------------
def name_of(loop: Loop, group: str | None, ordinal: int) -> str:
    meta = loop.parent["metadata"]
    return pod_name(meta["name"], meta["uid"], group, ordinal)


def set_group(name: str, **changes: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        next(g for g in spec["workerGroupSpecs"] if g["groupName"] == name).update(changes)

    return change


def condition(step: Step, kind: str) -> dict[str, Any]:
    found = [c for c in step.desired.status["conditions"] if c["type"] == kind]
    assert len(found) == 1, step.desired.status["conditions"]
    return found[0]


def unchanged(step: Step) -> None:
    assert step.created == [], step.created
    assert step.deleted == [], step.deleted


def settle(loop: Loop) -> Step:
    """Sync until nothing changes, start every pod, sync once more: the cluster is ready."""
    loop.converge()
    loop.run_pods()
    step = loop.step()
    unchanged(step)
    assert step.desired.status.get("state") == "ready", step.desired.status
    return step


def pod(loop: Loop, name: str) -> Child:
    return loop.children[(POD, name)]


def is_ready(obj: Child) -> bool:
    status = obj.get("status", {})
    return status.get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )
