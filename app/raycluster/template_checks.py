"""The RayCluster checks of a group's pod template, containers, head Service and
``rayStartParams`` that a CRD schema cannot make (it keeps pod templates as plain objects)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from app.raycluster.names import is_label_key, is_label_value, is_pod_name_segment
from app.raycluster.problems import Problem
from app.raycluster.quantity import QuantityError, parse_quantity
from app.raycluster.shell import shell_word_problem

if TYPE_CHECKING:
    from app.raycluster.spec import JSONObject, WorkerGroupSpec

FLAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Resource names go into ``--resources='{...}'``: inside single quotes, so ':' is safe too.
PLAIN_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]*$")


def check_group(path: str, group: WorkerGroupSpec) -> Iterator[Problem]:
    if not is_label_value(group.groupName) or not is_pod_name_segment(group.groupName):
        yield Problem(
            f"{path}.groupName",
            "must be usable as a label value and in pod names: at most 63 characters, "
            "dot-separated parts of lower-case letters, digits and '-', each starting and "
            "ending with a letter or digit",
        )
    for field in ("minReplicas", "maxReplicas", "replicas"):
        value = getattr(group, field)
        if value is not None and value < 0:
            yield Problem(f"{path}.{field}", "must not be negative")
    if group.numOfHosts < 1:
        yield Problem(f"{path}.numOfHosts", "must be at least 1")
    if group.minReplicas > group.maxReplicas:
        yield Problem(
            f"{path}.minReplicas",
            f"must not exceed maxReplicas ({group.minReplicas} > {group.maxReplicas})",
        )
    yield from check_template(f"{path}.template", group.template)
    yield from check_params(f"{path}.rayStartParams", group.rayStartParams)
    yield from check_quantities(f"{path}.resources", group.resources, negative=False)
    yield from check_words(f"{path}.resources", group.resources, "resource names")
    yield from check_ray_labels(path, group.groupName, group.labels, group.rayStartParams)


# The parts of a pod template metaray reads or extends, and the JSON type each must have.
_POD_SPEC_FIELDS = {"containers": list, "initContainers": list, "volumes": list}
_CONTAINER_FIELDS = {
    "name": str,
    "image": str,
    "command": list,
    "args": list,
    "env": list,
    "ports": list,
    "volumeMounts": list,
    "resources": dict,
}
_TYPE_NAMES: dict[type, str] = {
    list: "a list",
    dict: "an object",
    str: "a string",
    int: "an integer",
}
_LISTS_OF_OBJECTS = (
    "containers",
    "initContainers",
    "volumes",
    "env",
    "ports",
    "volumeMounts",
    "from",
    "to",
)


def check_template(path: str, template: JSONObject) -> Iterator[Problem]:
    metadata = template.get("metadata") or {}
    if not isinstance(metadata, dict):
        yield Problem(f"{path}.metadata", "must be an object")
        metadata = {}
    yield from _check_string_maps(f"{path}.metadata", metadata)
    pod_spec = template.get("spec") or {}
    if not isinstance(pod_spec, dict):
        yield Problem(f"{path}.spec", "must be an object")
        return
    yield from check_fields(f"{path}.spec", pod_spec, _POD_SPEC_FIELDS)
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers:
        yield Problem(f"{path}.spec.containers", "must list at least one container (Ray's first)")
        return
    yield from check_items(f"{path}.spec.volumes", pod_spec, "volumes", {"name": (str, True)})
    for kind in ("containers", "initContainers"):
        for index, container in enumerate(objects(pod_spec, kind)):
            yield from _check_container(f"{path}.spec.{kind}[{index}]", container)


def check_head_service(path: str, service: JSONObject) -> Iterator[Problem]:
    metadata = service.get("metadata") or {}
    if not isinstance(metadata, dict):
        yield Problem(f"{path}.metadata", "must be an object")
    else:
        yield from _check_string_maps(f"{path}.metadata", metadata)
        if not isinstance(metadata.get("name", ""), str):
            yield Problem(f"{path}.metadata.name", "must be a string")
    spec = service.get("spec") or {}
    if not isinstance(spec, dict):
        yield Problem(f"{path}.spec", "must be an object")
        return
    yield from check_fields(f"{path}.spec", spec, {"ports": list, "type": str})
    shape = {"name": (str, False), "port": (int, True)}
    yield from check_items(f"{path}.spec.ports", spec, "ports", shape)


def _check_string_maps(path: str, metadata: Mapping[str, Any]) -> Iterator[Problem]:
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            yield Problem(f"{path}.{key}", "must map strings to strings")


# The items of a container's lists that metaray reads: the fields it reads, their types, and
# whether Kubernetes requires them.
_Shape = dict[str, tuple[type, bool]]
_ITEM_SHAPES: dict[str, _Shape] = {
    "env": {"name": (str, True)},
    "ports": {"name": (str, False), "containerPort": (int, True)},
    "volumeMounts": {"name": (str, True), "mountPath": (str, True)},
}


def _check_container(path: str, container: JSONObject) -> Iterator[Problem]:
    yield from check_fields(path, container, _CONTAINER_FIELDS)
    for key in ("name", "image"):
        if not container.get(key):
            yield Problem(f"{path}.{key}", "is required")
    for key in ("command", "args"):
        parts = container.get(key)
        if isinstance(parts, list) and not all(isinstance(part, str) for part in parts):
            yield Problem(f"{path}.{key}", "must be a list of strings")
    for key, shape in _ITEM_SHAPES.items():
        yield from check_items(f"{path}.{key}", container, key, shape)
    resources = container.get("resources") or {}
    if isinstance(resources, dict):
        for kind in ("limits", "requests"):
            values = resources.get(kind) or {}
            if isinstance(values, dict):
                yield from check_quantities(f"{path}.resources.{kind}", values)
            else:
                yield Problem(f"{path}.resources.{kind}", "must be an object")


def check_fields(path: str, obj: JSONObject, types: Mapping[str, type]) -> Iterator[Problem]:
    for key, kind in types.items():
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, kind):
            yield Problem(f"{path}.{key}", f"must be {_TYPE_NAMES[kind]}")
        elif (
            isinstance(value, list)
            and key in _LISTS_OF_OBJECTS
            and not all(isinstance(item, dict) for item in value)
        ):
            yield Problem(f"{path}.{key}", "must be a list of objects")


def objects(obj: Mapping[str, Any], key: str) -> list[JSONObject]:
    """The objects of a list field, or none when it is not a list (reported elsewhere)."""
    items = obj.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def check_items(path: str, obj: Mapping[str, Any], key: str, shape: _Shape) -> Iterator[Problem]:
    for index, item in enumerate(objects(obj, key)):
        for field, (kind, required) in shape.items():
            value = item.get(field)
            if value is None:
                if required:
                    yield Problem(f"{path}[{index}].{field}", "is required")
            elif not isinstance(value, kind) or isinstance(value, bool):
                yield Problem(f"{path}[{index}].{field}", f"must be {_TYPE_NAMES[kind]}")


def check_quantities(
    path: str, values: Mapping[str, Any], *, negative: bool = True
) -> Iterator[Problem]:
    for key, value in values.items():
        try:
            amount = parse_quantity(value)
        except (QuantityError, TypeError):
            yield Problem(f"{path}.{key}", f"{value!r} is not a Kubernetes quantity")
            continue
        if amount < 0 and not negative:
            yield Problem(f"{path}.{key}", f"{value!r} must not be negative")


_PORT_FLAGS = ("port", "dashboard-port", "dashboard-agent-listen-port", "metrics-export-port")


def check_params(path: str, params: Mapping[str, str]) -> Iterator[Problem]:
    for key, value in params.items():
        if not FLAG_NAME.match(key):
            yield Problem(f"{path}.{key}", "is not a ray start flag name")
        elif key in _PORT_FLAGS and not (
            value.isascii() and value.isdigit() and 0 < int(value) < 65536
        ):
            yield Problem(f"{path}.{key}", "must be a port number from 1 to 65535")
        elif (problem := shell_word_problem(value)) is not None:
            yield Problem(f"{path}.{key}", f"{problem} (it goes into the ray start command)")


def check_ray_labels(
    path: str, group: str, labels: Mapping[str, str], params: Mapping[str, str]
) -> Iterator[Problem]:
    """A group's Ray labels are also pod labels, so they follow Kubernetes' label syntax (which
    keeps them shell-safe in ``--labels``); ``rayStartParams.labels`` would bypass that."""
    if "labels" in params:
        yield Problem(
            f"{path}.rayStartParams.labels",
            f"rayStartParams['labels'] is not supported for {group} group; "
            "please use the top-level Labels field instead",
        )
    for key, value in labels.items():
        if not is_label_key(key):
            yield Problem(
                f"{path}.labels",
                f"invalid label key for {group} group: {key!r}: must be a Kubernetes qualified "
                "name ([DNS-1123 subdomain/]name of at most 63 letters, digits, '-', '_', '.')",
            )
        elif not is_label_value(value):
            yield Problem(
                f"{path}.labels.{key}",
                f"invalid label value for {group} group: {value!r}: at most 63 letters, digits, "
                "'-', '_', '.', starting and ending with a letter or digit",
            )


def check_words(path: str, values: Mapping[str, str], what: str) -> Iterator[Problem]:
    """Resource names are pasted into the ``ray start`` command (their amounts are quantities,
    rendered as numbers)."""
    for key in values:
        if not PLAIN_WORD.match(key):
            yield Problem(
                f"{path}.{key}",
                f"{what} must be letters, digits and '-_./:' only ({key!r} is not)",
            )


# For the cores built on this one (RayJob): the same model rules and the same error paths.
