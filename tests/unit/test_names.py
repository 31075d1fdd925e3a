from __future__ import annotations

import re

import pytest

from app.raycluster.names import (
    MAX_CLUSTER_NAME,
    SUFFIX_ALPHABET,
    head_service_name,
    is_dns1035_label,
    is_label_value,
    new_pod_names,
    ordinals,
    pod_name,
)
from tests.unit.helpers import UID

OTHER_UID = "99999999-1111-2222-3333-444444444444"
SUFFIX = f"[{SUFFIX_ALPHABET}]{{5}}"


def test_suffix_alphabet_is_kubernetes_name_alphabet() -> None:
    assert SUFFIX_ALPHABET == "bcdfghjklmnpqrstvwxz2456789"


@pytest.mark.parametrize("name", ["a", "demo", "ray-cluster-1", "a" * 53])
def test_valid_cluster_names(name: str) -> None:
    assert is_dns1035_label(name, MAX_CLUSTER_NAME)


@pytest.mark.parametrize(
    "name", ["", "Demo", "a" * 54, "1demo", "-demo", "demo-", "de_mo", "de.mo", "de mo"]
)
def test_invalid_cluster_names_are_rejected_not_truncated(name: str) -> None:
    assert not is_dns1035_label(name, MAX_CLUSTER_NAME)


@pytest.mark.parametrize("value", ["", "workers", "GPU_group.v1", "a" * 63, "0"])
def test_valid_label_values(value: str) -> None:
    assert is_label_value(value)


@pytest.mark.parametrize("value", ["a" * 64, "-x", "x-", "a b", "a/b", "_x"])
def test_invalid_label_values(value: str) -> None:
    assert not is_label_value(value)


def test_head_service_name() -> None:
    assert head_service_name("demo") == "demo-head-svc"


@pytest.mark.parametrize(
    ("group", "pattern"),
    [(None, rf"demo-head-{SUFFIX}"), ("gpu-group", rf"demo-gpu-group-worker-{SUFFIX}")],
)
@pytest.mark.parametrize("ordinal", [0, 1, 7, 1000])
def test_pod_name_pattern(group: str | None, pattern: str, ordinal: int) -> None:
    assert re.fullmatch(pattern, pod_name("demo", UID, group, ordinal))


@pytest.mark.parametrize("group", [None, "workers"])
def test_pod_name_is_deterministic(group: str | None) -> None:
    assert pod_name("demo", UID, group, 3) == pod_name("demo", UID, group, 3)


@pytest.mark.parametrize("group", [None, "workers"])
def test_pod_name_depends_on_uid(group: str | None) -> None:
    assert pod_name("demo", UID, group, 0) != pod_name("demo", OTHER_UID, group, 0)


def test_pod_names_of_different_ordinals_differ() -> None:
    names = {pod_name("demo", UID, "workers", ordinal) for ordinal in range(50)}
    assert len(names) == 50


def test_suffix_depends_on_group() -> None:
    a = pod_name("demo", UID, "a", 0).removeprefix("demo-a-worker-")
    b = pod_name("demo", UID, "b", 0).removeprefix("demo-b-worker-")
    assert a != b


@pytest.mark.parametrize("group", [None, "workers"])
def test_new_pod_names_take_lowest_ordinals(group: str | None) -> None:
    expected = [pod_name("demo", UID, group, ordinal) for ordinal in range(3)]
    assert new_pod_names("demo", UID, group, 3, taken=set()) == expected


def test_new_pod_names_skip_taken_names() -> None:
    taken = {pod_name("demo", UID, "workers", 0), pod_name("demo", UID, "workers", 2)}
    names = new_pod_names("demo", UID, "workers", 2, taken=taken)
    assert names == [pod_name("demo", UID, "workers", 1), pod_name("demo", UID, "workers", 3)]


def test_new_pod_names_zero() -> None:
    assert new_pod_names("demo", UID, "workers", 0, taken=set()) == []


def test_ordinals_invert_names() -> None:
    wanted = {pod_name("demo", UID, "workers", ordinal): ordinal for ordinal in (3, 0, 5)}
    assert ordinals("demo", UID, "workers", list(wanted)) == wanted


@pytest.mark.parametrize(
    "foreign",
    [
        "demo-workers-worker-zzzzz",
        pod_name("demo", OTHER_UID, "workers", 0),
        pod_name("demo", UID, "other", 0),
        pod_name("demo", UID, None, 0),
    ],
)
def test_ordinals_leave_out_names_metaray_did_not_generate(foreign: str) -> None:
    ours = pod_name("demo", UID, "workers", 1)
    assert ordinals("demo", UID, "workers", [ours, foreign]) == {ours: 1}


def test_long_names_are_cut_as_kuberay_does_and_stay_a_hostname() -> None:
    cluster, group_name = "c" * 53, "g" * 63
    name = pod_name(cluster, UID, group_name, 0)
    assert len(name) == 55 and name.startswith(f"{cluster}-{group_name}"[:50])
    head = pod_name(cluster, UID, None, 0)
    assert len(head) == 55 and head.startswith(f"{cluster}-head-"[:50])


def test_pods_named_by_earlier_metaray_are_still_recognised() -> None:
    old = "demo-worker-workers-" + pod_name("demo", UID, "workers", 4)[-5:]
    assert ordinals("demo", UID, "workers", [old]) == {old: 4}
