"""Names of a cluster's children, and the Kubernetes name rules they must follow.

Pod names are deterministic (Metacontroller cannot use ``generateName``): a 5-character suffix
derived from the cluster's uid, the pod's role and an ordinal, in Kubernetes' own name alphabet.
Workers are named as by KubeRay v1.2 and later, ``<cluster>-<group>-worker-<suffix>``; pods named
by earlier metaray versions (``<cluster>-worker-<group>-<suffix>``) are still recognised, never
renamed. As in KubeRay, the part before the suffix is cut to 50 characters, so that a pod's name
is at most 55 characters and its hostname (at most 63) is its name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator

MAX_CLUSTER_NAME = 53
MAX_LABEL = 63
MAX_SUBDOMAIN = 253
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5
MAX_PREFIX = 50
HEAD_ROLE = "head"

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# Dot-separated DNS-1123 labels: a group name also has to fit inside pod names.
POD_NAME_SEGMENT_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_POD_NAME_SEGMENT = re.compile(POD_NAME_SEGMENT_PATTERN)


def is_dns1035_label(name: str, max_length: int = MAX_LABEL) -> bool:
    return len(name) <= max_length and _DNS1035.match(name) is not None


def is_dns1123_label(name: str) -> bool:
    return len(name) <= MAX_LABEL and _DNS1123_LABEL.match(name) is not None


def is_dns1123_subdomain(name: str) -> bool:
    """A name most objects may have (Secrets, ConfigMaps): dot-separated DNS-1123 labels."""
    return 0 < len(name) <= MAX_SUBDOMAIN and all(
        _DNS1123_LABEL.match(part) for part in name.split(".")
    )


def is_label_value(value: str) -> bool:
    return len(value) <= MAX_LABEL and _LABEL_VALUE.match(value) is not None


def is_label_key(key: str) -> bool:
    """A Kubernetes qualified name: ``[prefix/]name``, the prefix a DNS-1123 subdomain."""
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return False
    return 0 < len(name) <= MAX_LABEL and _LABEL_VALUE.match(name) is not None


def is_pod_name_segment(value: str) -> bool:
    return len(value) <= MAX_LABEL and _POD_NAME_SEGMENT.match(value) is not None


def head_service_name(cluster: str) -> str:
    return f"{cluster}-head-svc"


def pod_prefix(cluster: str, group: str | None) -> str:
    """``<cluster>-head-`` for the head, ``<cluster>-<group>-worker-`` for a worker group, cut
    to ``MAX_PREFIX`` characters (KubeRay's rule: the front is kept)."""
    prefix = f"{cluster}-head-" if group is None else f"{cluster}-{group}-worker-"
    return prefix[:MAX_PREFIX]


def legacy_prefix(cluster: str, group: str) -> str:
    """How metaray named workers before following KubeRay v1.2's order."""
    return f"{cluster}-worker-{group}-"


def suffix(uid: str, role: str, ordinal: int) -> str:
    """Five name characters, a pure function of (cluster uid, role, ordinal)."""
    digest = hashlib.sha256(f"{uid}\0{role}\0{ordinal}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(SUFFIX_LENGTH):
        number, index = divmod(number, len(SUFFIX_ALPHABET))
        chars.append(SUFFIX_ALPHABET[index])
    return "".join(chars)


def pod_name(cluster: str, uid: str, group: str | None, ordinal: int) -> str:
    role = HEAD_ROLE if group is None else f"worker/{group}"
    return pod_prefix(cluster, group) + suffix(uid, role, ordinal)


def candidate_names(cluster: str, uid: str, group: str | None) -> Iterator[tuple[int, str]]:
    """Every (ordinal, name) a pod of this role may take, lowest ordinal first."""
    ordinal = 0
    while True:
        yield ordinal, pod_name(cluster, uid, group, ordinal)
        ordinal += 1


def new_pod_names(
    cluster: str, uid: str, group: str | None, count: int, taken: Collection[str]
) -> list[str]:
    """``count`` new names: the lowest ordinals whose names are not ``taken``."""
    names: list[str] = []
    for _, name in candidate_names(cluster, uid, group):
        if len(names) == count:
            break
        if name not in taken and name not in names:
            names.append(name)
    return names


def ordinals(cluster: str, uid: str, group: str | None, names: Collection[str]) -> dict[str, int]:
    """The ordinal of each of ``names`` that metaray generated (under either naming); others
    are absent."""
    found: dict[str, int] = {}
    wanted = set(names)
    prefixes = [pod_prefix(cluster, group)]
    if group is not None:
        prefixes.append(legacy_prefix(cluster, group))
    role = HEAD_ROLE if group is None else f"worker/{group}"
    # New names take the lowest free ordinal, so ours lie low; names still unfound by this
    # bound are not metaray's (a KubeRay pod, say).
    bound = max(4 * len(wanted) + 64, 1024)
    for ordinal in range(bound):
        if len(found) == len(wanted):
            break
        end = suffix(uid, role, ordinal)
        for prefix in prefixes:
            if prefix + end in wanted:
                found[prefix + end] = ordinal
    return found


def replica_name(uid: str, group: str, ordinal: int) -> str:
    """A multi-host replica's name, ``<group>-<suffix>`` as in KubeRay (a label value: the
    group part is cut so that it fits in 63 characters)."""
    head = group[: MAX_LABEL - SUFFIX_LENGTH - 1]
    return f"{head}-{suffix(uid, f'replica/{group}', ordinal)}"


def member_name(cluster: str, uid: str, group: str, replica: str, host: int) -> str:
    """The pod of host ``host`` in multi-host replica ``replica``: a function of the two, so a
    member missing from one answer is asked for again under the same name."""
    return pod_prefix(cluster, group) + suffix(uid, f"worker/{group}/{replica}", host)
