from __future__ import annotations

import pytest

from app.raycluster.labels import head_selector, head_service_labels, pod_labels
from tests.unit.helpers import UID

PROTECTED = ("ray.io/cluster", "ray.io/node-type", "ray.io/group")


@pytest.mark.parametrize(
    ("group", "node_type", "group_label"),
    [(None, "head", "headgroup"), ("gpu", "worker", "gpu")],
)
def test_kuberay_labels(group: str | None, node_type: str, group_label: str) -> None:
    labels = pod_labels("demo", UID, group, {}, {})
    assert labels["ray.io/is-ray-node"] == "yes"
    assert labels["ray.io/cluster"] == "demo"
    assert labels["ray.io/node-type"] == node_type
    assert labels["ray.io/group"] == group_label
    assert labels["ray.io/identifier"] == f"demo-{node_type}"
    assert labels["app.kubernetes.io/name"] == "kuberay"
    assert labels["app.kubernetes.io/created-by"] == "kuberay-operator"
    assert labels["controller-uid"] == UID


@pytest.mark.parametrize("group", [None, "gpu"])
def test_template_labels_add_and_override_unprotected(group: str | None) -> None:
    template = {
        "team": "ml",
        "app.kubernetes.io/name": "my-app",
        "ray.io/identifier": "custom",
        "ray.io/is-ray-node": "no",
    }
    labels = pod_labels("demo", UID, group, template, {})
    assert {key: labels[key] for key in template} == template


@pytest.mark.parametrize("source", ["template", "group"])
@pytest.mark.parametrize("key", PROTECTED)
def test_protected_labels_never_overridden(source: str, key: str) -> None:
    user = {key: "intruder"}
    template, group_labels = (user, {}) if source == "template" else ({}, user)
    labels = pod_labels("demo", UID, "gpu", template, group_labels)
    assert labels[key] == {"ray.io/cluster": "demo", "ray.io/node-type": "worker"}.get(key, "gpu")


def test_group_labels_win_over_template_labels() -> None:
    labels = pod_labels("demo", UID, "gpu", {"zone": "a"}, {"zone": "b"})
    assert labels["zone"] == "b"


@pytest.mark.parametrize("source", ["template", "group"])
def test_controller_uid_is_always_the_parent_uid(source: str) -> None:
    user = {"controller-uid": "someone-else"}
    template, group_labels = (user, {}) if source == "template" else ({}, user)
    assert pod_labels("demo", UID, None, template, group_labels)["controller-uid"] == UID


def test_labels_are_sorted_for_stable_bytes() -> None:
    labels = pod_labels("demo", UID, "gpu", {"zzz": "1", "aaa": "2"}, {})
    assert list(labels) == sorted(labels)


def test_head_service_labels_follow_app_name() -> None:
    labels = head_service_labels("demo", UID, "my-app")
    assert labels["app.kubernetes.io/name"] == "my-app"
    assert labels["ray.io/cluster"] == "demo"
    assert labels["ray.io/node-type"] == "head"
    assert labels["ray.io/identifier"] == "demo-head"
    assert labels["app.kubernetes.io/created-by"] == "kuberay-operator"


def test_head_selector_uses_only_protected_labels() -> None:
    selector = head_selector("demo")
    assert selector == {"ray.io/cluster": "demo", "ray.io/node-type": "head"}
    head = pod_labels("demo", UID, None, {"app.kubernetes.io/name": "x"}, {})
    worker = pod_labels("demo", UID, "gpu", {}, {})
    assert selector.items() <= head.items()
    assert not selector.items() <= worker.items()
