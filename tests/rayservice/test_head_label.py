"""The head pod's ``ray.io/serve`` label follows its Serve proxy's health (KubeRay relabels the
head so that the serve Service sends traffic to it only while its proxy is healthy): the core
asks for a relabel only when the observed label differs from the newest reading, and a reading
no newer than the one the label already follows never flips it back."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.desired import Desired
from app.hooks.request import decode
from app.rayservice import sync as rayservice
from app.rayservice.head_label import READ_AT, ProxyView, SetHeadServeLabel
from tests.rayservice.loop import OPTIONS, RAYCLUSTER, ServiceLoop, rayservice_object

POD = "Pod.v1"
POD_UID = "uid-head-pod"
IP = "10.0.0.7"
T1 = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def at(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def serving_loop(**spec: Any) -> ServiceLoop:
    loop = ServiceLoop(rayservice_object(**spec))
    loop.until(lambda s: s.active is not None and s.pending is None)
    return loop


def head_pod(
    loop: ServiceLoop,
    cluster: str | None = None,
    label: str = "true",
    read_at: str | None = None,
    **changes: Any,
) -> dict[str, Any]:
    name = cluster or loop.active
    assert name is not None
    owner = loop.children[(RAYCLUSTER, name)]["metadata"]["uid"]
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-head-x7k2p",
            "namespace": "default",
            "uid": POD_UID,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                "ray.io/cluster": name,
                "ray.io/node-type": "head",
                "ray.io/originated-from-cr-name": "svc",
                "ray.io/originated-from-crd": "RayService",
                "ray.io/serve": label,
            },
            "annotations": {READ_AT: read_at} if read_at else {},
            "ownerReferences": [
                {"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": name, "uid": owner}
                | {"controller": True}
            ],
        },
        "status": {"phase": "Running", "podIP": IP},
    }
    pod["metadata"].update(changes.pop("metadata", {}))
    pod.update(changes)
    return pod


def sync_with(
    loop: ServiceLoop,
    pods: list[dict[str, Any]],
    proxies: dict[str, ProxyView] | None = None,
    parent: dict[str, Any] | None = None,
) -> Desired:
    request = loop.request(parent)
    request["related"][POD] = {f"default/{p['metadata']['name']}": p for p in pods}
    decoded = decode(orjson.dumps(request), related=True, raycluster=False)
    views = loop.views(request)
    return rayservice.sync(
        decoded.parent, decoded.observed, decoded.related, loop.now, OPTIONS, views, proxies
    )


def labels(desired: Desired) -> list[SetHeadServeLabel]:
    return [i for i in desired.intents if isinstance(i, SetHeadServeLabel)]


def reading(healthy: bool, moment: datetime = T1, url: str = f"{IP}:8000") -> dict[str, ProxyView]:
    return {POD_UID: ProxyView(url, healthy, at(moment))}


def test_a_new_clusters_head_starts_out_of_the_serve_service_and_its_workers_in() -> None:
    """As KubeRay: no serve traffic to a head whose proxy nobody has seen answer yet."""
    loop = serving_loop()
    assert loop.active is not None
    spec = loop.children[(RAYCLUSTER, loop.active)]["spec"]
    head = spec["headGroupSpec"]["template"]["metadata"]["labels"]
    assert head["ray.io/serve"] == "false"
    assert {
        g["template"]["metadata"]["labels"]["ray.io/serve"] for g in spec["workerGroupSpecs"]
    } == {"true"}


def test_the_heads_to_read_are_the_owned_head_pods_at_their_own_ip_and_serve_port() -> None:
    loop = serving_loop()
    request = loop.request()
    request["related"][POD] = {"default/h": head_pod(loop)}
    decoded = decode(orjson.dumps(request), related=True, raycluster=False)
    [target] = rayservice.watched_proxies(decoded.observed, decoded.related).values()
    assert (target.cluster, target.pod_uid, target.url) == (loop.active, POD_UID, f"{IP}:8000")


def test_an_unhealthy_proxy_takes_the_head_out_of_the_serve_service() -> None:
    loop = serving_loop()
    desired = sync_with(loop, [head_pod(loop)], reading(False))
    pod = head_pod(loop)["metadata"]["name"]
    assert labels(desired) == [SetHeadServeLabel("default", pod, POD_UID, "false", at(T1))]
    assert [e.reason for e in desired.events] == ["UpdatedHeadPodServeLabel"]
    # Everything else is the answer without the reading: the label is no child.
    assert desired.children == sync_with(loop, [head_pod(loop)]).children
    assert desired.status == sync_with(loop, [head_pod(loop)]).status


def test_a_healthy_proxy_brings_the_head_back() -> None:
    loop = serving_loop()
    before = at(T1 - timedelta(seconds=3))
    desired = sync_with(loop, [head_pod(loop, label="false", read_at=before)], reading(True))
    assert [(i.value, i.read_at) for i in labels(desired)] == [("true", at(T1))]


def test_a_label_that_already_says_so_is_left_alone() -> None:
    loop = serving_loop()
    assert labels(sync_with(loop, [head_pod(loop, label="true")], reading(True))) == []
    assert labels(sync_with(loop, [head_pod(loop, label="false")], reading(False))) == []
    assert not [e for e in sync_with(loop, [head_pod(loop)], reading(True)).events]


def test_a_stale_view_never_flips_the_label_back() -> None:
    """Another replica's older reading, or a sync replayed with a reading from before the
    label's: the pod records the reading its label follows, and an older one is ignored."""
    loop = serving_loop()
    newer = at(T1 + timedelta(seconds=2))
    pod = head_pod(loop, label="true", read_at=newer)
    assert labels(sync_with(loop, [pod], reading(False, T1))) == []
    assert labels(sync_with(loop, [pod], reading(False, T1 + timedelta(seconds=2)))) == []
    [later] = labels(sync_with(loop, [pod], reading(False, T1 + timedelta(seconds=5))))
    assert later.value == "false"


def test_no_reading_no_relabel() -> None:
    """A head never read yet (or read at an address it no longer has) keeps its label."""
    loop = serving_loop()
    assert labels(sync_with(loop, [head_pod(loop)], {})) == []
    moved = reading(False, url="10.0.0.99:8000")
    assert labels(sync_with(loop, [head_pod(loop)], moved)) == []


def test_exclude_head_pod_from_serve_svc_keeps_the_head_out_without_a_reading() -> None:
    loop = serving_loop(excludeHeadPodFromServeSvc=True)
    [wish] = labels(sync_with(loop, [head_pod(loop, label="true")], {}))
    assert (wish.value, wish.read_at) == ("false", "")
    assert labels(sync_with(loop, [head_pod(loop, label="false")], reading(True))) == []


def test_only_heads_the_clusters_own_are_read_or_relabelled() -> None:
    loop = serving_loop()
    stranger = head_pod(loop, metadata={"ownerReferences": []})
    other_uid = head_pod(loop)
    other_uid["metadata"]["ownerReferences"][0]["uid"] = "uid-someone-else"
    named = head_pod(loop, status={"phase": "Running", "podIP": "evil.example.com"})
    for pod in (stranger, other_uid, named):
        request = loop.request()
        request["related"][POD] = {"default/h": pod}
        decoded = decode(orjson.dumps(request), related=True, raycluster=False)
        assert rayservice.watched_proxies(decoded.observed, decoded.related) == {}
        assert labels(sync_with(loop, [pod], reading(False))) == []


def test_a_retiring_clusters_head_is_not_relabelled() -> None:
    loop = serving_loop()
    first = loop.active
    spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    spec["rayVersion"] = "2.53.0"
    loop.edit(rayClusterConfig=spec)
    loop.until(lambda s: s.active != first and first in s.clusters())
    assert labels(sync_with(loop, [head_pod(loop, cluster=first)], reading(False))) == []


def test_a_missing_or_terminating_head_changes_nothing_else() -> None:
    loop = serving_loop()
    gone = head_pod(loop, metadata={"deletionTimestamp": "2026-01-01T00:04:00Z"})
    plain = sync_with(loop, [])
    for desired in (sync_with(loop, [], reading(False)), sync_with(loop, [gone], reading(False))):
        assert labels(desired) == []
        assert (desired.children, desired.status) == (plain.children, plain.status)


def test_the_customize_hook_asks_for_the_head_pods() -> None:
    rules = rayservice.customize(rayservice_object())["relatedResources"]
    [pods] = [r for r in rules if r["resource"] == "pods"]
    assert pods["namespace"] == "default"
    assert pods["labelSelector"]["matchLabels"] == {
        "ray.io/originated-from-cr-name": "svc",
        "ray.io/originated-from-crd": "RayService",
        "ray.io/node-type": "head",
    }


READINGS = st.lists(st.booleans(), min_size=1, max_size=6)
_SERVING: list[ServiceLoop] = []


def _shared_loop() -> ServiceLoop:
    """One settled RayService for every example (the syncs below do not change it)."""
    if not _SERVING:
        _SERVING.append(serving_loop())
    return _SERVING[0]


@settings(max_examples=60, deadline=None)
@given(READINGS, st.data())
def test_readings_in_any_order_never_move_the_label_back_and_the_newest_settles_it(
    healths: list[bool], data: st.DataObject
) -> None:
    """Readings delivered late, out of order and repeated (stale replays, other replicas),
    each sync's wish carried out on the pod: the label only ever follows a reading newer than
    the one it followed, and once the newest reading is read again, it says what that says."""
    loop = _shared_loop()
    readings = [(T1 + timedelta(seconds=i), h) for i, h in enumerate(healths)]
    order = data.draw(st.lists(st.sampled_from(readings), max_size=12))
    label, recorded = "true", None
    followed: list[datetime] = []
    for moment, healthy in [*order, readings[-1]]:
        pod = head_pod(loop, label=label, read_at=recorded)
        for wish in labels(sync_with(loop, [pod], reading(healthy, moment))):
            label, recorded = wish.value, wish.read_at
            followed.append(moment)
    assert followed == sorted(set(followed)), "a label followed an older reading"
    assert label == ("true" if readings[-1][1] else "false")
