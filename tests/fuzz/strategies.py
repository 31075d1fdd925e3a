"""Generators of hostile Metacontroller requests, from broken bytes to subtly wrong objects.

Four families, each returning request bodies as bytes:

- ``malformed_bodies``: real captures truncated, with bytes flipped, cut, spliced or replaced,
  and JSON of the wrong shape at the top.
- ``mutated_captures``: real captures with one to three values anywhere (parent, spec, the
  children map, a child, its metadata, labels, annotations, status) replaced by a value of
  another type, deleted, or given an unknown sibling.
- ``worlds``: generated clusters with generated children, hostile where Metacontroller would
  never be (names colliding with metaray's own, the same pod in two groups' workersToDelete,
  ray.io/* labels of other clusters and groups, several heads, corrupt last-applied
  configurations, children of unknown kinds, every pod phase, v1 and v2 keys, duplicates).
- ``corrupted_specs``: a valid spec with no pods yet (so that every template is built), with
  one path of the spec corrupted.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
from hypothesis import note
from hypothesis import strategies as st

from app.hooks.request import LAST_APPLIED
from app.raycluster.cluster import Cluster, Options
from app.raycluster.names import pod_name
from app.raycluster.problems import InvalidSpec
from app.raycluster.rollout import HASH_ANNOTATION, template_hash
from app.raycluster.spec import parse_spec
from tests.fixtures import capture, captures
from tests.loop import cluster_spec, container, group, raycluster

POD = "Pod.v1"
SERVICE = "Service.v1"
INGRESS = "Ingress.networking.k8s.io/v1"
SERVICE_ACCOUNT = "ServiceAccount.v1"
ROLE = "Role.rbac.authorization.k8s.io/v1"
ROLE_BINDING = "RoleBinding.rbac.authorization.k8s.io/v1"
JOB = "Job.batch/v1"
IMAGE = "rayproject/ray:2.52.0"
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
STAMP = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"
CLUSTER_LABEL = "ray.io/cluster"
NODE_TYPE_LABEL = "ray.io/node-type"
GROUP_LABEL = "ray.io/group"
FT_ANNOTATION = "ray.io/ft-enabled"


def _u(*code_points: int) -> str:
    return "".join(chr(c) for c in code_points)


# -- scalars and JSON values -----------------------------------------------------------------
SPECIAL_TEXT = [
    "",
    " ",
    "head",
    "worker",
    "headgroup",
    "Head",
    "true",
    "false",
    "null",
    "0",
    "-1",
    "1e3",
    "500m",
    "2Gi",
    "a" * 63,
    "a" * 64,
    "b" * 253,
    "c" * 254,
    "x" * 2000,
    "\x00",
    "\n",
    "\t",
    "'",
    '"',
    "\\",
    "$(id)",
    "${HOME}",
    "a b",
    "--flag",
    "a=b",
    "{}",
    "[]",
    "{not json",
    "default/x",
    "a/b/c",
    _u(0x0440, 0x0430, 0x0443),  # Cyrillic letters that look like "ray"
    _u(0xFF52, 0xFF41, 0xFF59),  # fullwidth "ray"
    _u(0x0130),  # dotted capital I: lower() changes its length
    _u(0x00DF),  # sharp s: upper() changes its length
    "a" + _u(0x0301),  # combining accent
    _u(0x200B),  # zero-width space
    _u(0x202E) + "gnp.exe",  # right-to-left override
    _u(0xFEFF),  # byte order mark
    _u(0x1F600),  # outside the BMP
    _u(0x10FFFF),
    _u(0xFFFD),
    _u(0x00B2),  # superscript two: str.isdigit() but not int()
    _u(0x0663),  # Arabic-Indic three: int() accepts it
    _u(0x0967, 0x0968),  # Devanagari "12"
    _u(0x2160),  # Roman numeral one
    "2" + _u(0x00B2),
]
# Pools instead of regex-generated names: drawing from a pool is one choice, where a regex
# costs dozens (and the fuzz has ten thousand inputs to make in a few minutes).
DNS_WORDS = [
    "a",
    "x1",
    "demo",
    "workers",
    "gpu-group",
    "small",
    "cpu.v2",
    "0",
    "7",
    "head",
    "worker",
    "headgroup-2",
    "team-a.batch",
    "q" * 63,
    "z9-" * 20 + "z",
]
TEXT = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.sampled_from(DNS_WORDS),
    st.text(max_size=8),
)
BIG_NUMBERS = [
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    1e308,
    -1e308,
    5e-324,
    -0.0,
    0.5,
    1.0,
    2.5,
    1e16,
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from(BIG_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def dumps(value: Any) -> bytes:
    """JSON bytes; integers beyond 64 bits and lone surrogates go through the json module."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=True).encode()


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws. Hypothesis leans towards the smallest value (and shrinks
    towards it), so the rare outcome is the largest one."""
    return draw(st.integers(1, n)) == n


# What breaks code that trusts a field's type: empty values of the wrong type first.
BREAKERS = st.one_of(
    st.sampled_from([None, [], {}, "", 0, True]),
    st.sampled_from(
        [-1, "x", [None], [{}], [[]], ["x"], [{"name": ["x"]}], {"": None}, 2**64, 1e308]
    ),
    st.sampled_from(SPECIAL_TEXT),
    JSON_VALUES,
)
# Fields metaray reads, extends or copies: where a corruption is most likely to hurt.
HOT_KEYS = frozenset(
    {
        "annotations",
        "args",
        "authOptions",
        "egressRules",
        "ingressRules",
        "networkPolicy",
        "tlsOptions",
        "workerGroups",
        "enableK8sTokenAuth",
        "mode",
        "secretName",
        "autoscalerOptions",
        "command",
        "containerPort",
        "containers",
        "enableInTreeAutoscaling",
        "env",
        "envFrom",
        "gcsFaultToleranceOptions",
        "groupName",
        "headGroupSpec",
        "headService",
        "image",
        "ingressOptions",
        "initContainers",
        "labels",
        "limits",
        "maxReplicas",
        "metadata",
        "minReplicas",
        "mountPath",
        "name",
        "numOfHosts",
        "ports",
        "rayStartParams",
        "rayVersion",
        "replicas",
        "requests",
        "resources",
        "restartPolicy",
        "scaleStrategy",
        "serviceAccountName",
        "spec",
        "suspend",
        "template",
        "tls",
        "upgradeStrategy",
        "value",
        "volumeMounts",
        "volumes",
        "workerGroupSpecs",
        "workersToDelete",
    }
)
# Resource quantities: canonical, odd, out of range, and digits that only Unicode calls digits.
QUANTITIES = st.sampled_from(
    [
        "1",
        "500m",
        "2Gi",
        "1e3",
        "0.5",
        ".5",
        "5.",
        "+1",
        "-1",
        "1.5Gi",
        "1E3",
        "1e-30",
        "1e308",
        "1Ei",
        "9" * 40,
        " 1",
        "1Ki ",
        "0x10",
        "1_000",
        "Infinity",
        "NaN",
        "",
        _u(0x0663),
        _u(0xFF11),
        "2" + _u(0x00B2),
        "1" + _u(0x00B5),  # micro sign
        "1" + _u(0x041C) + "i",  # Cyrillic capital em
    ]
)
# ray start flag values: numbers in every script Python's str.isdigit() accepts.
PARAM_VALUES = st.one_of(
    st.sampled_from(
        [
            "6379",
            "52365",
            "true",
            "false",
            "",
            "-1",
            "0x10",
            "1e3",
            "'a b'",
            '"{\\"CPU\\": 1}"',
            _u(0x00B2),
            _u(0x0663),
            _u(0xFF11, 0xFF12),
            _u(0x2460),
            "8" + _u(0x00B3),
        ]
    ),
    TEXT,
)


# -- mutations at a path -----------------------------------------------------------------------
Path = tuple[str | int, ...]


def paths(node: Any, prefix: Path = (), depth: int = 12) -> Iterator[Path]:
    """Every path into a JSON document (the root excluded)."""
    if depth == 0:
        return
    items: Iterator[tuple[str | int, Any]]
    if isinstance(node, dict):
        items = iter(node.items())
    elif isinstance(node, list):
        items = iter(enumerate(node))
    else:
        return
    for key, child in items:
        path = (*prefix, key)
        yield path
        yield from paths(child, path, depth - 1)


def _flip(value: Any) -> Any:
    """The same content in a JSON type nobody expects there."""
    if isinstance(value, dict):
        return list(value.values()) or [value]
    if isinstance(value, list):
        return {str(i): item for i, item in enumerate(value)}
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isascii() and value.isdigit() else [value]
    return {}


def mutate(doc: Any, path: Path, op: str, value: Any) -> None:
    """Apply one mutation in place; a path that no longer exists is left alone."""
    parent = doc
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if not isinstance(parent, dict | list):  # an earlier mutation made a string of it
        return
    try:
        current = parent[last]
    except (KeyError, IndexError, TypeError):
        return
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif op == "flip":
        parent[last] = _flip(current)
    elif op == "extra":
        if isinstance(current, dict):
            current["zz-unknown-" + str(len(current))] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            parent[last] = value


OPS = st.sampled_from(["replace", "replace", "replace", "delete", "flip", "extra"])


@st.composite
def mutations(
    draw: st.DrawFn,
    doc: Any,
    candidates: list[Path],
    most: int = 3,
    values: st.SearchStrategy[Any] = JSON_VALUES,
) -> list[str]:
    """One to ``most`` mutations of ``doc`` at paths among ``candidates``; their description."""
    done = []
    for _ in range(draw(st.integers(1, most))):
        if not candidates:
            break
        path = candidates[draw(st.integers(0, len(candidates) - 1))]
        op = draw(OPS)
        value = draw(values) if op in ("replace", "extra") else None
        mutate(doc, path, op, value)
        done.append(f"{op} {'.'.join(map(str, path))} {value!r:.80}")
        note(f"mutation: {done[-1]}")
    return done


# -- real captures -------------------------------------------------------------------------------
SMALL_CAPTURES = tuple(name for name in captures() if "large" not in name)


@functools.cache
def capture_bytes(name: str) -> bytes:
    return orjson.dumps(capture(name))


@functools.cache
def _capture_regions(name: str) -> dict[str, list[Path]]:
    """The paths of a capture, grouped by where they lead (so each region gets its share)."""
    regions: dict[str, list[Path]] = {
        "top": [],
        "parent": [],
        "spec": [],
        "children": [],
        "metadata": [],
        "labels": [],
        "annotations": [],
        "status": [],
    }
    for path in paths(capture(name)):
        if len(path) == 1:
            regions["top"].append(path)
        if path[0] == "parent":
            regions["spec" if path[1:2] == ("spec",) else "parent"].append(path)
        elif path[0] == "children":
            if len(path) <= 3:
                regions["children"].append(path)
            elif "labels" in path[4:6]:
                regions["labels"].append(path)
            elif "annotations" in path[4:6]:
                regions["annotations"].append(path)
            elif path[3] == "metadata":
                regions["metadata"].append(path)
            elif path[3] == "status":
                regions["status"].append(path)
            else:
                regions["children"].append(path)
    return {region: found for region, found in regions.items() if found}


@st.composite
def mutated_captures(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(SMALL_CAPTURES))
    doc = orjson.loads(capture_bytes(name))
    regions = _capture_regions(name)
    region = draw(st.sampled_from(sorted(regions)))
    draw(mutations(doc, regions[region]))
    return dumps(doc)


WRONG_TOP_LEVEL = [
    b"",
    b" ",
    b"null",
    b"[]",
    b"{}",
    b"0",
    b"-1",
    b'""',
    b"true",
    b'"parent"',
    b"[{}]",
    b'{"parent": null}',
    b'{"parent": []}',
    b'{"parent": "x"}',
    b'{"parent": 1}',
    b'{"parent": {}}',
    b'{"parent": {}, "children": null}',
    b'{"parent": {}, "children": []}',
    b'{"parent": {}, "children": "x"}',
    b'{"parent": {}, "children": {"Pod.v1": null}}',
    b'{"parent": {}, "children": {"Pod.v1": []}}',
    b'{"parent": {}, "children": {"Pod.v1": {"a": null}}}',
    b'{"parent": {}, "children": {"Pod.v1": {"a": []}}}',
    b'{"parent": {}, "children": {"Pod.v1": {"a": {}}}}',
    b'{"parent": {}, "children": {"Pod.v1": {"a": {"metadata": {}}}}}',
    b'{"parent": {}, "children": {"Pod.v1": {"a": {"metadata": {"name": 5}}}}}',
    b'{"parent": {}, "children": {"Pod.v1": {"a": {"metadata": {"name": "a"}}}}}',
    b'{"parent": {}, "children": {"X.v1": {"a": {"metadata": {"name": "a"}}}}}',
    b'{"parent": {}, "finalizing": "yes"}',
    b'{"parent": {}, "finalizing": null}',
    b'{"parent": {"a": 1e400}}',
    b'{"parent": {"a": NaN}}',
    b'{"parent": {"a": Infinity}}',
    b'{"parent": {"a": "\\ud800"}}',
    b'{"parent": {"a": "\\udc00\\ud800"}}',
    b'{"parent": {"a": "\xff\xfe"}}',
    b'{"parent": {}, "parent": []}',
    b'\xef\xbb\xbf{"parent": {}}',
    b'{"parent": {}}\x00',
    b'{"parent": {}} {"parent": {}}',
    b'{"parent": {},}',
    b"{'parent': {}}",
    b'{"parent": {"a": 123456789012345678901234567890123456789}}',
    b'{"parent": {"a": -0}}',
    b'{"parent": {"a": 1E+2}}',
    b'{"parent": {"a": 01}}',
]


@st.composite
def malformed_bodies(draw: st.DrawFn) -> bytes:
    """Broken bytes: real captures cut short or damaged, and JSON of the wrong shape."""
    kind = draw(st.sampled_from(["truncate", "damage", "splice", "top", "random", "deep"]))
    if kind == "top":
        return draw(st.sampled_from(WRONG_TOP_LEVEL))
    if kind == "random":
        return draw(st.binary(max_size=64))
    source = capture_bytes(draw(st.sampled_from(SMALL_CAPTURES)))
    size = len(source)
    if kind == "truncate":
        return source[: draw(st.integers(0, size - 1))]
    if kind == "deep":
        # Nesting deeper than any parser's comfort, in the parent and in a child.
        depth = draw(
            st.sampled_from([100, 500, 5000, 100000])
        )  # not near ~1000: no parser is sure there
        where = draw(st.sampled_from([b'"spec":', b'"labels":', b'"status":']))
        at = source.find(where)
        at = at + len(where) if at >= 0 else 1
        return source[:at] + b"[" * depth + b"]" * depth + b"," + source[at:]
    at = draw(st.integers(0, size - 1))
    if kind == "damage":
        width = draw(st.integers(1, 8))
        return source[:at] + draw(st.binary(min_size=1, max_size=8)) + source[at + width :]
    # splice: a slice of the document repeated or dropped
    end = draw(st.integers(at, min(size, at + 400)))
    return source[:at] + (source[at:end] * 2 if draw(st.booleans()) else b"") + source[end:]


# -- generated worlds ------------------------------------------------------------------------------
CLUSTER_NAMES = st.sampled_from(
    ["demo", "a", "raycluster-kuberay", "r-1", "ml", "c0ffee", "x" * 53, "head", "w-o-r-k"]
)
HOSTILE_CLUSTER_NAMES = st.sampled_from(
    ["", "a" * 54, "Demo", "1demo", "demo-", "demo.x", _u(0x0440, 0x0430, 0x0443), "x" * 300]
)
GROUP_NAMES = st.sampled_from(
    ["workers", "g", "gpu-group", "a.b", "small", "0", "1", "cpu.v2", "head", "worker", "q" * 63]
)
HOSTILE_GROUP_NAMES = st.sampled_from(
    ["headgroup", "", "G", "a" * 64, "a..b", _u(0x00DF), "a/b", "-a", "a" * 63]
)
NAMESPACES = st.sampled_from(["default", "ml", "team-a"])
FOREIGN_NAMES = st.sampled_from(
    [f"{word}-{tail}" for word in ("sidecar", "kuberay", "job", "x") for tail in ("a1", "7", "zz9")]
)
UIDS = st.sampled_from(
    [
        "0f0f0f0f-1111-2222-3333-444444444444",
        "9807e1cc-ef98-ea62-342e-607cb15b4f7a",
        "e3e70682-c209-4cac-629f-6fbed82c07cd",
        "",
    ]
)
PHASES = st.sampled_from(
    ["Pending", "Running", "Running", "Succeeded", "Failed", "Unknown", "", "running", "Evicted"]
)
OTHER_KINDS = [
    ("ConfigMap.v1", "v1", "ConfigMap"),
    ("Foo.example.com/v1alpha1", "example.com/v1alpha1", "Foo"),
    ("Pod.v2", "v2", "Pod"),
    (INGRESS, "networking.k8s.io/v1", "Ingress"),
    (SERVICE_ACCOUNT, "v1", "ServiceAccount"),
    (ROLE, "rbac.authorization.k8s.io/v1", "Role"),
    (ROLE_BINDING, "rbac.authorization.k8s.io/v1", "RoleBinding"),
    (JOB, "batch/v1", "Job"),
    (SERVICE, "v1", "Service"),
]


def last_applied_text(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _server_side(obj: dict[str, Any], parent: dict[str, Any], serial: int) -> None:
    obj["metadata"] |= {
        "uid": f"child-uid-{serial}",
        "resourceVersion": str(1000 + serial),
        "creationTimestamp": STAMP,
        "ownerReferences": [
            {
                "apiVersion": parent["apiVersion"],
                "kind": "RayCluster",
                "name": str(parent["metadata"]["name"]),
                "uid": str(parent["metadata"]["uid"]),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": [
            {"manager": "metacontroller", "operation": "Update", "time": STAMP, "fieldsV1": {}}
        ],
    }


@st.composite
def _last_applied(draw: st.DrawFn, applied: dict[str, Any], other_name: str) -> str | None:
    """The last-applied annotation of a child: mostly right, sometimes anything but."""
    variant = draw(
        st.sampled_from(
            ["ok"] * 12
            + [
                "missing",
                "invalid",
                "truncated",
                "other-name",
                "other-kind",
                "other-version",
                "no-api-version",
                "no-kind",
                "not-an-object",
                "empty",
                "extra-fields",
            ]
        )
    )
    text = last_applied_text(applied)
    if variant == "ok":
        return text
    if variant == "missing":
        return None
    if variant == "invalid":
        return "{not json"
    if variant == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    if variant == "not-an-object":
        return draw(st.sampled_from(["[]", "5", '"x"', "null", "true", '[{"kind":"Pod"}]']))
    if variant == "empty":
        return ""
    other = copy.deepcopy(applied)
    if variant == "other-name":
        other["metadata"]["name"] = other_name
    elif variant == "other-kind":
        other["kind"] = "Service" if applied["kind"] != "Service" else "Pod"
    elif variant == "other-version":
        other["apiVersion"] = "v2"
    elif variant == "no-api-version":
        del other["apiVersion"]
    elif variant == "no-kind":
        del other["kind"]
    else:
        other["zz-extra"] = draw(JSON_VALUES)
    return last_applied_text(other)


@st.composite
def _labels(draw: st.DrawFn, labels: dict[str, str], cluster: str, groups: list[str]) -> None:
    """Label edge cases, in place: ray.io/* of another cluster or group, missing, empty, long."""
    edits = draw(st.integers(0, 2)) if one_in(draw, 4) else 0
    for _ in range(edits):
        edit = draw(
            st.sampled_from(
                [
                    "other-cluster",
                    "no-cluster",
                    "head",
                    "worker",
                    "no-node-type",
                    "empty-node-type",
                    "other-group",
                    "no-group",
                    "headgroup",
                    "long",
                    "unicode",
                    "extra-ray",
                ]
            )
        )
        if edit == "other-cluster":
            labels[CLUSTER_LABEL] = cluster + "-other"
        elif edit == "no-cluster":
            labels.pop(CLUSTER_LABEL, None)
        elif edit in ("head", "worker"):
            labels[NODE_TYPE_LABEL] = edit
        elif edit == "no-node-type":
            labels.pop(NODE_TYPE_LABEL, None)
        elif edit == "empty-node-type":
            labels[NODE_TYPE_LABEL] = ""
        elif edit == "other-group":
            labels[GROUP_LABEL] = draw(st.sampled_from([*groups, "gone", ""]))
        elif edit == "no-group":
            labels.pop(GROUP_LABEL, None)
        elif edit == "headgroup":
            labels[GROUP_LABEL] = "headgroup"
        elif edit == "long":
            labels[draw(st.sampled_from([GROUP_LABEL, CLUSTER_LABEL, "x"]))] = "a" * 64
        elif edit == "unicode":
            labels[draw(st.sampled_from([GROUP_LABEL, NODE_TYPE_LABEL, "y"]))] = draw(TEXT)
        else:
            labels["ray.io/" + draw(st.sampled_from(["is-ray-node", "identifier", "x"]))] = draw(
                TEXT
            )


def current_hashes(parent: dict[str, Any]) -> dict[str | None, str]:
    """The pod-template hash of the head (None) and of each group, when the spec is valid."""
    try:
        spec = parse_spec(parent)
    except InvalidSpec:
        return {}
    cluster = Cluster.from_parent(parent, spec, Options())
    hashes: dict[str | None, str] = {None: template_hash(cluster, None)}
    for worker_group in spec.workerGroupSpecs:
        hashes[worker_group.groupName] = template_hash(cluster, worker_group)
    return hashes


@st.composite
def _spec(draw: st.DrawFn, cluster: str, uid: str, names: list[str]) -> dict[str, Any]:
    """A spec metaray accepts, using most of what it understands."""
    groups = []
    for name in names:
        minimum = draw(st.integers(0, 3))
        maximum = draw(st.integers(minimum, minimum + 3))
        extra: dict[str, Any] = {}
        if one_in(draw, 10):
            extra["suspend"] = True
        if one_in(draw, 10):
            extra["numOfHosts"] = 2
        replicas = draw(st.none() | st.integers(0, maximum + 2))
        groups.append(group(name, replicas, minimum, maximum, **extra))
    extra_spec: dict[str, Any] = {"enableInTreeAutoscaling": draw(st.booleans())}
    if one_in(draw, 10):
        extra_spec["suspend"] = True
    if one_in(draw, 5):
        extra_spec["upgradeStrategy"] = {"type": draw(st.sampled_from(["Recreate", "None"]))}
    if one_in(draw, 10):
        extra_spec["gcsFaultToleranceOptions"] = {"redisAddress": "redis:6379"}
    spec = cluster_spec(*groups, **extra_spec)
    spec["rayVersion"] = draw(st.sampled_from(["2.52.0", "2.53.0", "2.60.0"]))
    if one_in(draw, 10):
        spec["headGroupSpec"]["enableIngress"] = True
    return spec


def _pod_applied(
    parent: dict[str, Any], name: str, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": parent["metadata"]["namespace"],
        "labels": dict(sorted(labels.items())),
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "ray", "image": IMAGE}]},
    }


@st.composite
def _pod(
    draw: st.DrawFn,
    parent: dict[str, Any],
    role: str | None,
    name: str,
    groups: list[str],
    hashes: dict[str | None, str],
    serial: int,
) -> dict[str, Any]:
    """A pod as Metacontroller sends it. ``role`` is "head", a group name, or None (no Ray)."""
    cluster = str(parent["metadata"]["name"])
    uid = str(parent["metadata"]["uid"])
    labels = {"controller-uid": uid}
    annotations: dict[str, str] = {}
    if role is not None:
        node_type = "head" if role == "head" else "worker"
        labels |= {
            CLUSTER_LABEL: cluster,
            NODE_TYPE_LABEL: node_type,
            GROUP_LABEL: "headgroup" if role == "head" else role,
            "ray.io/identifier": f"{cluster}-{node_type}",
            "ray.io/is-ray-node": "yes",
        }
        current = hashes.get(None if role == "head" else role)
        if current is not None and draw(st.booleans()):
            annotations[HASH_ANNOTATION] = current
        elif draw(st.booleans()):
            annotations[HASH_ANNOTATION] = "0123456789abcdef"
    else:
        labels["app"] = "sidecar"
    applied = _pod_applied(parent, name, labels, annotations)
    obj = copy.deepcopy(applied)
    draw(_labels(obj["metadata"]["labels"], cluster, groups))
    text = draw(_last_applied(applied, draw(FOREIGN_NAMES)))
    meta = obj["metadata"]
    meta["annotations"] = {**annotations}
    if text is not None:
        meta["annotations"][LAST_APPLIED] = text
    if one_in(draw, 10):
        meta["annotations"][draw(TEXT)] = draw(TEXT)
    _server_side(obj, parent, serial)
    if one_in(draw, 6):
        meta |= {"deletionTimestamp": LATER, "deletionGracePeriodSeconds": 30}
    phase = draw(PHASES)
    ready = phase == "Running" and draw(st.booleans())
    status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort"}
    if phase != "Pending":
        status |= {
            "podIP": f"10.1.{serial // 250}.{serial % 250}",
            "startTime": STAMP,
            "conditions": [{"type": "Ready", "status": str(ready), "lastTransitionTime": STAMP}],
            "containerStatuses": [{"name": "ray", "ready": ready, "state": {}}],
        }
    if one_in(draw, 20):
        pass  # no status at all
    elif one_in(draw, 20):
        obj["status"] = {"qosClass": "BestEffort"}  # no phase
    else:
        obj["status"] = status
    obj["spec"] |= {"restartPolicy": "Always", "nodeName": "node-1"}
    return obj


def _key(namespace: str, name: str, hook_version: str) -> str:
    return f"{namespace}/{name}" if hook_version == "v2" else name


@st.composite
def worlds(
    draw: st.DrawFn, *, pods: bool = True, finalizing: bool = False, damage: bool = True
) -> dict[str, Any]:
    """A whole sync (or finalize) request as a JSON-like dict. ``damage``: random mutations
    anywhere and invalid names now and then; without it the spec is one metaray accepts."""
    cluster = draw(HOSTILE_CLUSTER_NAMES if damage and one_in(draw, 20) else CLUSTER_NAMES)
    namespace = draw(NAMESPACES)
    uid = draw(UIDS)
    names = draw(st.lists(GROUP_NAMES, min_size=1, max_size=4, unique=True))
    if damage and one_in(draw, 15):
        names[0] = draw(HOSTILE_GROUP_NAMES)
    in_spec = draw(st.integers(1, min(3, len(names))))
    spec_names, removed = names[:in_spec], names[in_spec:]
    spec = draw(_spec(cluster, uid, spec_names))
    parent = raycluster(spec, name=cluster, namespace=namespace, uid=uid)
    parent["apiVersion"] = draw(st.sampled_from(["ray.io/v1", "ray.io/v1", "ray.io/v1alpha1"]))
    if one_in(draw, 5) and "gcsFaultToleranceOptions" not in spec:
        # KubeRay v0.6's fault tolerance: the annotation, and the head's Redis address.
        flag = draw(st.sampled_from(["true", "True", "false", "yes"]))
        parent["metadata"]["annotations"] = {FT_ANNOTATION: flag}
        if flag.lower() == "true":
            head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
            head["env"] = [{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]
    if finalizing:
        parent["metadata"]["deletionTimestamp"] = LATER
    hashes = current_hashes(parent)

    # The pods: metaray's own names, foreign ones, and names that collide with something.
    reserved = [
        f"{cluster}-head-svc",
        f"{cluster}-head-ingress",
        f"{cluster}-cleanup",
        cluster,
        *(pod_name(cluster, uid, other, 0) for other in names),
        pod_name(cluster, uid, None, 0),
    ]
    hook_version = draw(st.sampled_from(["v1", "v2", "mixed"]))
    children: dict[str, dict[str, Any]] = {POD: {}, SERVICE: {}}
    serial = 0
    pod_names: list[str] = []

    added: set[tuple[str, str]] = set()

    def add(kind: str, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        if (kind, name) in added:
            return  # one child per (type, name): duplicates come only on purpose, below
        added.add((kind, name))
        version = hook_version if hook_version != "mixed" else draw(st.sampled_from(["v1", "v2"]))
        children.setdefault(kind, {})[_key(namespace, name, version)] = obj

    roles: list[str | None] = ["head", *spec_names, *removed, None]
    for role in roles if pods else []:
        most = {None: 1, "head": 2}.get(role, 4)
        base = draw(st.sampled_from([0, 0, 20]))
        for _ in range(draw(st.integers(0, most))):
            how = draw(st.integers(0, 9))
            group_name = None if role in ("head", None) else role
            if how < 6:
                name = pod_name(cluster, uid, group_name, base + draw(st.integers(0, 6)))
            elif how < 8:
                name = draw(FOREIGN_NAMES)
            elif how < 9:
                name = draw(st.sampled_from(reserved))
            else:
                name = draw(TEXT) or "x"
            if name in pod_names:
                continue
            serial += 1
            pod_names.append(name)
            add(POD, draw(_pod(parent, role, name, spec_names, hashes, serial)))

    # workersToDelete: this group's pods, another group's, the head, unused metaray names.
    unused = [pod_name(cluster, uid, other, k) for other in spec_names for k in range(3)]
    candidates = [*pod_names, *unused, "not-a-pod"]
    for worker_group in spec["workerGroupSpecs"]:
        if one_in(draw, 3):
            victims = draw(st.lists(st.sampled_from(candidates), max_size=4, unique=True))
            worker_group["scaleStrategy"] = {"workersToDelete": victims}
    if len(spec["workerGroupSpecs"]) > 1 and pod_names and one_in(draw, 5):
        shared = draw(st.sampled_from(pod_names))
        for worker_group in spec["workerGroupSpecs"][:2]:
            worker_group.setdefault("scaleStrategy", {"workersToDelete": []})
            worker_group["scaleStrategy"]["workersToDelete"].append(shared)

    # The head Service as metaray asked for it, and children of other kinds.
    if draw(st.booleans()):
        name = f"{cluster}-head-svc"
        applied: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"ray.io/cluster": cluster},
            },
            "spec": {"clusterIP": "None", "ports": [{"name": "gcs-server", "port": 6379}]},
        }
        obj = copy.deepcopy(applied)
        text = draw(_last_applied(applied, draw(FOREIGN_NAMES)))
        obj["metadata"]["annotations"] = {} if text is None else {LAST_APPLIED: text}
        serial += 1
        _server_side(obj, parent, serial)
        obj["spec"]["ports"][0] |= {"protocol": "TCP", "targetPort": 6379}
        obj["status"] = {"loadBalancer": {}}
        add(SERVICE, obj)
    for _ in range(draw(st.integers(0, 2))):
        kind, api_version, kind_name = draw(st.sampled_from(OTHER_KINDS))
        name = draw(st.sampled_from([*reserved, *pod_names, "extra"]) | FOREIGN_NAMES)
        applied = {
            "apiVersion": api_version,
            "kind": kind_name,
            "metadata": {"name": name, "namespace": namespace},
        }
        obj = copy.deepcopy(applied)
        text = draw(_last_applied(applied, draw(FOREIGN_NAMES)))
        obj["metadata"]["annotations"] = {} if text is None else {LAST_APPLIED: text}
        serial += 1
        _server_side(obj, parent, serial)
        if kind == JOB:
            done = draw(st.sampled_from(["Complete", "Failed", None]))
            obj["status"] = {"conditions": [{"type": done, "status": "True"}] if done else []}
        add(kind, obj)

    # The same child twice, under its v1 and its v2 key (Metacontroller never does this).
    if children[POD] and one_in(draw, 20):
        some = draw(st.sampled_from(sorted(children[POD])))
        obj = children[POD][some]
        name = str(obj["metadata"]["name"])
        twin = name if some != name else f"{namespace}/{name}"
        children[POD][twin] = copy.deepcopy(obj)

    request: dict[str, Any] = {
        "controller": {
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "metaray"},
        },
        "parent": parent,
        "children": children,
        "related": {},
        "finalizing": finalizing,
    }
    # Random damage anywhere, for a third of the worlds.
    if damage and one_in(draw, 3):
        draw(mutations(request, list(paths(request)), most=2))
    return request


@st.composite
def corrupted_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec and no pods (every template gets built), with one spec path corrupted."""
    request = draw(worlds(pods=False, damage=False))
    parent = request["parent"]
    spec = parent["spec"]
    # Give each group something to create, so that every worker template is built too.
    for worker_group in spec.get("workerGroupSpecs") or []:
        if isinstance(worker_group, dict):
            worker_group["minReplicas"] = max(1, worker_group.get("minReplicas") or 0)
            worker_group["maxReplicas"] = max(3, worker_group.get("maxReplicas") or 0)
            worker_group.pop("suspend", None)
    spec.pop("suspend", None)
    # Richer templates: the fields metaray reads or extends, so corrupting them matters.
    for template in _templates(spec):
        pod_spec = template.setdefault("spec", {})
        if draw(st.booleans()):
            pod_spec["initContainers"] = [container("init", image=IMAGE)]
            pod_spec["volumes"] = [{"name": "data", "emptyDir": {}}]
        ray = pod_spec["containers"][0]
        if draw(st.booleans()):
            ray |= {
                "env": [{"name": "A", "value": "1"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "command": ["python"],
                "args": ["-c", "pass"],
                "ports": [{"containerPort": 8265, "name": "dashboard"}],
            }
        if draw(st.booleans()):
            template["metadata"] = {"labels": {"team": "a"}, "annotations": {"note": "b"}}
        if one_in(draw, 3):
            kind = draw(st.sampled_from(["limits", "requests"]))
            resource = draw(st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "google.com/tpu"]))
            ray.setdefault("resources", {}).setdefault(kind, {})[resource] = draw(QUANTITIES)
    if one_in(draw, 4):
        spec["headGroupSpec"]["resources"] = {"cpu": draw(QUANTITIES), "memory": draw(QUANTITIES)}
    if draw(st.booleans()):
        spec["headGroupSpec"]["headService"] = {
            "metadata": {"name": "custom-svc", "labels": {"a": "b"}, "annotations": {"c": "d"}},
            "spec": {"type": "ClusterIP", "ports": [{"name": "x", "port": 1}]},
        }
    if draw(st.booleans()):
        spec["autoscalerOptions"] = {
            "version": draw(st.sampled_from(["v1", "v2"])),
            "env": [{"name": "B", "value": "2"}],
            "resources": {"limits": {"cpu": "1"}},
        }
        spec["enableInTreeAutoscaling"] = True
    if one_in(draw, 3):
        spec["authOptions"] = draw(
            st.sampled_from(
                [
                    {"mode": "token"},
                    {"mode": "token", "secretName": "users-token"},
                    {"mode": "token", "enableK8sTokenAuth": True},
                    {"mode": "disabled"},
                ]
            )
        )
        spec["rayVersion"] = "2.55.0"
    if one_in(draw, 4):
        spec["tlsOptions"] = {"enabled": draw(st.booleans())}
        # Registered (config/mtls/), or not: then TLS must be refused without any loss.
        if draw(st.booleans()):
            request["children"].setdefault("Issuer.cert-manager.io/v1", {})
            request["children"].setdefault("Certificate.cert-manager.io/v1", {})
    groups = [g for g in spec.get("workerGroupSpecs") or [] if isinstance(g, dict)]
    names = [g.get("groupName") for g in groups]
    if one_in(draw, 3) and all(isinstance(n, str) and DNS1123.fullmatch(n) for n in names):
        mode = draw(st.sampled_from(["DenyAll", "DenyAllIngress", "DenyAllEgress"]))
        kind = "ingressRules" if mode == "DenyAllIngress" else "egressRules"
        peers = "from" if mode == "DenyAllIngress" else "to"
        rule = {peers: [{"podSelector": {}}], "ports": [{"port": 53}, {"port": "dns"}]}
        spec["networkPolicy"] = {
            "mode": mode,
            "head": {kind: [rule]},
            "workerGroups": [{"groupName": name, kind: [rule]} for name in names[:1]],
        }
    if draw(st.booleans()):
        spec["headGroupSpec"]["ingressOptions"] = {"host": "x.example.com", "path": "/"}
        spec["headGroupSpec"]["enableIngress"] = True
    flags = st.sampled_from(
        ["dashboard-agent-listen-port", "port", "num-cpus", "resources", "block", "x"]
    )
    for params in _params(spec):
        if one_in(draw, 3):
            params.update(draw(st.dictionaries(flags, PARAM_VALUES, min_size=1, max_size=2)))
    for group_spec in [spec["headGroupSpec"], *groups]:
        clash = {"num-cpus", "num-gpus", "memory", "resources"} & set(group_spec["rayStartParams"])
        if one_in(draw, 4):
            group_spec["labels"] = {"zone": "a", "example.com/tier": "gold"}
        if one_in(draw, 4) and not clash:
            group_spec["resources"] = {"CPU": "0", "GPU": "1", "custom": "2"}
    parent["metadata"]["labels"] = {"team": "a"}
    parent["metadata"].setdefault("annotations", {})["note"] = "b"
    everywhere = [("parent", "spec", *path) for path in paths(spec)]
    everywhere += [("parent", "metadata", *path) for path in paths(parent["metadata"])]
    hot = [path for path in everywhere if path[-1] in HOT_KEYS]
    draw(mutations(request, hot * 4 + everywhere, most=1, values=BREAKERS))
    return request


def _params(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield spec["headGroupSpec"].setdefault("rayStartParams", {})
    for worker_group in spec.get("workerGroupSpecs") or []:
        yield worker_group.setdefault("rayStartParams", {})


def _templates(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield spec["headGroupSpec"]["template"]
    for worker_group in spec.get("workerGroupSpecs") or []:
        if isinstance(worker_group, dict) and isinstance(worker_group.get("template"), dict):
            yield worker_group["template"]


@st.composite
def storage_and_collector_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A corrupted spec (as ``corrupted_specs``) that also asks for the embedded GCS store or the
    history collector, some of whose fields the corruption may hit."""
    request = draw(corrupted_specs())
    parent = request["parent"]
    spec = parent.get("spec")
    if not isinstance(spec, dict):
        return request
    if draw(st.booleans()) and "gcsFaultToleranceOptions" not in spec:
        storage = draw(st.sampled_from([{}, {"size": "2Gi", "subPath": "gcs"}, {"claimName": "c"}]))
        spec["gcsFaultToleranceOptions"] = {"backend": "rocksdb", "storage": storage}
    else:
        collector = {"image": IMAGE, "env": [{"name": "EVENTS_PORT", "value": "9000"}]}
        spec["historyServerOptions"] = {"collectorOptions": collector}
    if one_in(draw, 2):
        everywhere = [("parent", "spec", *path) for path in paths(spec)]
        new = ("gcsFaultToleranceOptions", "historyServerOptions")
        hot = [path for path in everywhere if path[2] in new]
        draw(mutations(request, hot, most=1, values=BREAKERS))
    return request
