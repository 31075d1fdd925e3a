"""Nothing a user sees waits for Metacontroller's periodic resync (now 10 minutes): a pod's
change reaches the status, the Events and the metrics in the very sync that the pod's watch
event triggers, and every later sync until the cluster is settled is triggered by a watch
event too (a child the previous answer created or deleted, a pod starting). No RayCluster
answer asks for a timer (``resyncAfterSeconds``): the cluster core decides nothing on time.

The stand-in loop (``tests/loop.py``) syncs when told; ``watch_event`` says when Metacontroller
would sync on its own with ``ignoreStatusChanges: true``: an owned child created, deleted or
changed, or the parent's generation, labels, annotations or deletion changed. The hook's clock
never moves, so no answer here can come from a resync."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from app.hooks.request import decode
from app.raycluster.sync import sync
from tests.loop import Loop, cluster_spec, group
from tests.observability.harness import value
from tests.observability.test_metrics import Hook, ready


def world(loop: Loop) -> tuple[dict[Any, Any], Any]:
    meta = loop.parent["metadata"]
    watched = {k: meta.get(k) for k in ("generation", "labels", "annotations", "deletionTimestamp")}
    return copy.deepcopy(loop.children), watched


def watch_event(before: tuple[dict[Any, Any], Any], loop: Loop) -> bool:
    """Whether a watch event enqueues the parent since ``before`` (not the periodic resync)."""
    return world(loop) != before


def test_a_failed_worker_shows_in_status_events_and_metrics_in_the_sync_its_event_triggers() -> (
    None
):
    hook = Hook()
    loop = ready(hook, cluster_spec(group(replicas=2)))
    raw: list[dict[str, Any]] = []
    post = hook.call()

    def call(content: bytes) -> tuple[int, bytes]:
        status, body = post(content)
        raw.append(orjson.loads(body))
        return status, body

    loop.call = call
    settled = loop.step()
    assert settled.created == [] and settled.deleted == []
    before_status = settled.desired.status
    assert before_status["availableWorkerReplicas"] == 2
    text = hook.scrape()
    failed_before = value(text, "metaray_pods_deleted_total", reason="failed")

    # The kubelet reports a worker Failed: the pod informer sees an update.
    before = world(loop)
    victim = loop.workers("workers")[0]
    loop.finish(victim)
    assert watch_event(before, loop)

    # The one sync that event triggers, at the same instant.
    step = loop.step()
    assert step.deleted == [victim] and len(step.created) == 1
    assert step.desired.status["availableWorkerReplicas"] == 1
    events = sync(*_decoded(step.request)).events  # what the shell posts for that answer
    [replacement] = step.created
    assert any(e.reason == "CreatedWorkerPod" and replacement in e.message for e in events)
    text = hook.scrape()
    assert value(text, "metaray_pods_deleted_total", reason="failed") == failed_before + 1

    # Until the cluster is whole again, every sync has a watch event of its own: a child the
    # previous answer created or deleted, a pod terminating away, the kubelet starting a pod.
    for _ in range(8):
        last = loop.history[-1]
        before = world(loop)
        loop.run_pods()
        if not (last.created or last.deleted or loop.terminating() or watch_event(before, loop)):
            break
        loop.step()
    else:
        raise AssertionError("not settled within 8 event-triggered syncs")
    assert loop.history[-1].desired.status["availableWorkerReplicas"] == 2
    assert all("resyncAfterSeconds" not in answer for answer in raw)


def _decoded(request: dict[str, Any]) -> tuple[Any, Any]:
    decoded = decode(orjson.dumps(request))
    return decoded.parent, decoded.observed
