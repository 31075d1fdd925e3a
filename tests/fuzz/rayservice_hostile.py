"""Hostile RayService requests made from valid worlds: one path corrupted, a spec made invalid
by one known change (with the text the Ready message must hold), and customize requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from app.rayservice.serve import ServeView
from tests.fuzz.rayservice_strategies import TIMEOUT, as_served, rayservice_worlds
from tests.fuzz.strategies import BREAKERS, JSON_VALUES, SPECIAL_TEXT, mutations, paths
from tests.rayservice.loop import rayservice_object

# -- one path corrupted ----------------------------------------------------------------------------
HOT = frozenset(
    {
        "activeServiceStatus",
        "pendingServiceStatus",
        "rayClusterName",
        "rayClustersToDelete",
        "deleteAfter",
        "conditions",
        "reason",
        "status",
        "lastTransitionTime",
        "upgradeStrategy",
        "type",
        "serveConfigV2",
        "serveService",
        "selector",
        "ports",
        "annotations",
        "labels",
        "rayClusterConfig",
        "suspend",
        "endpoints",
        "data",
        "ownerReferences",
    }
)


@st.composite
def corrupted_rayservices(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, ServeView]]:
    body, views = draw(rayservice_worlds(damage=False))
    everywhere = [("parent", *path) for path in paths(body["parent"])]
    for where in ("children", "related"):
        for kind, objects in body[where].items():
            for key, obj in objects.items():
                everywhere += [(where, kind, key, *path) for path in paths(obj)]
    hot = [path for path in everywhere if path[-1] in HOT]
    draw(mutations(body, hot * 4 + everywhere, most=1, values=BREAKERS))
    for where in ("children", "related"):
        if where in body:  # a mutation may have deleted it
            body[where] = as_served(body[where])
    return body, views


# -- invalid on purpose ---------------------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(parent: dict[str, Any]) -> None:
        node = parent
        *head, last = path.split(".")
        for key in head:
            node = node.setdefault(key, {})
        node[last] = value

    return change


def _bad_group(parent: dict[str, Any]) -> None:
    parent["spec"]["rayClusterConfig"]["workerGroupSpecs"][0] |= {
        "minReplicas": 5,
        "maxReplicas": 2,
    }


# (the change, the text the Ready condition's message must hold)
INVALID: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_set("spec.upgradeStrategy", {"type": "Rolling"}), "Spec.UpgradeStrategy.Type"),
    (_set("spec.rayClusterDeletionDelaySeconds", -1), "RayClusterDeletionDelaySeconds"),
    (_set("spec.serveConfigV2", "applications: [1, 2]"), "spec.serveConfigV2"),
    (_set("spec.serveConfigV2", "a: [b"), "spec.serveConfigV2"),
    (_set("spec.serveConfigV2", "- a"), "spec.serveConfigV2"),
    (_set("spec.rayClusterConfig", "x"), "spec.rayClusterConfig"),
    (_set("spec.unknownField", 1), "spec.unknownField"),
    (_set("spec.serveConfig", {"importPath": "x"}), "spec.serveConfig"),
    (_set("spec.excludeHeadPodFromServeSvc", "maybe"), "spec.excludeHeadPodFromServeSvc"),
    (_set("metadata.name", "x" * 48), "no more than 47 characters"),
    (_set("metadata.name", "Svc"), "DNS1035"),
    (_set("metadata.annotations", {TIMEOUT: "-5"}), TIMEOUT),
    (_set("apiVersion", "ray.io/v2"), "apiVersion"),
    (_bad_group, "spec.rayClusterConfig.workerGroupSpecs"),
    (
        _set("spec.rayClusterConfig.headGroupSpec.headService", {"metadata": {"name": "h"}}),
        "headService.metadata.name",
    ),
]


@st.composite
def invalid_rayservices(
    draw: st.DrawFn,
) -> tuple[dict[str, Any], dict[str, ServeView], str]:
    body, views = draw(rayservice_worlds(damage=False))
    spec = body["parent"]["spec"]
    if "workerGroupSpecs" not in spec["rayClusterConfig"]:
        spec["rayClusterConfig"]["workerGroupSpecs"] = [
            rayservice_object()["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
        ]
    change, text = INVALID[draw(st.integers(0, len(INVALID) - 1))]
    change(body["parent"])
    return body, views, text


# -- customize -----------------------------------------------------------------------------------
@st.composite
def customize_bodies(draw: st.DrawFn) -> Any:
    body, _ = draw(rayservice_worlds(damage=False))
    sent = {"controller": body["controller"], "parent": body["parent"]}
    if draw(st.booleans()):
        parent = sent["parent"]
        if draw(st.booleans()):
            parent["spec"]["serveService"] = draw(
                st.sampled_from([{"metadata": {"name": 5}}, {"metadata": ["x"]}, [], "x", None])
            )
        if draw(st.booleans()):
            parent["spec"]["rayClusterConfig"]["authOptions"] = draw(
                st.sampled_from(
                    [{"secretName": ""}, {"secretName": 5}, {"secretName": "mine"}, "x"]
                )
            )
        parent["metadata"]["name"] = draw(st.sampled_from([*SPECIAL_TEXT[:8], 5, None, [], "svc"]))
        draw(mutations(sent, list(paths(sent)), most=2, values=JSON_VALUES))
    return sent
