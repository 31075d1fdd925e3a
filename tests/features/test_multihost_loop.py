"""Multi-host groups through many syncs, applied as Metacontroller applies answers: labels of a
live pod never change, a replica is replaced and removed as a whole, indices are reused, and an
answer given to an old request (children missing) creates nothing twice."""

from __future__ import annotations

import orjson

from tests.loop import POD, SERVICE, Loop, cluster_spec, group, raycluster

INDEX = "ray.io/worker-group-replica-index"
REPLICA = "ray.io/worker-group-replica-name"
HOST = "ray.io/replica-host-index"


def tpu_loop(replicas: int = 2) -> Loop:
    loop = Loop(raycluster(cluster_spec(group(name="tpu", replicas=replicas, numOfHosts=2))))
    loop.converge()
    loop.run_pods()
    loop.converge()
    return loop


def labels(loop: Loop) -> dict[str, tuple[str, str, str]]:
    found = {}
    for name in loop.workers("tpu"):
        lab = loop.children[(POD, name)]["metadata"]["labels"]
        found[name] = (lab[REPLICA], lab[INDEX], lab[HOST])
    return found


def replicas(loop: Loop) -> dict[str, list[tuple[str, str]]]:
    by: dict[str, list[tuple[str, str]]] = {}
    for replica, index, host in labels(loop).values():
        by.setdefault(replica, []).append((index, host))
    return by


def test_labels_are_stable_and_replicas_complete() -> None:
    loop = tpu_loop()
    before = labels(loop)
    assert len(before) == 4
    assert sorted(sorted(members) for members in replicas(loop).values()) == [
        [("0", "0"), ("0", "1")],
        [("1", "0"), ("1", "1")],
    ]
    assert (SERVICE, "demo-headless") in loop.children
    for _ in range(3):
        step = loop.step()
        assert step.created == [] and step.deleted == []
    assert labels(loop) == before


def test_a_failed_host_replaces_its_replica_under_the_same_index() -> None:
    loop = tpu_loop()
    before = labels(loop)
    victim = sorted(before)[0]
    replica, index, _ = before[victim]
    loop.finish(victim)
    loop.converge()
    loop.run_pods()
    loop.converge()
    after = labels(loop)
    assert not any(r == replica for r, _, _ in after.values())  # the whole replica went
    survivors = {n: v for n, v in before.items() if v[0] != replica}
    assert {n: after[n] for n in survivors} == survivors  # the other replica is untouched
    renewed = [v for n, v in after.items() if n not in survivors]
    assert sorted((i, h) for _, i, h in renewed) == [(index, "0"), (index, "1")]


def test_scale_down_removes_one_whole_replica() -> None:
    loop = tpu_loop(replicas=3)
    before = labels(loop)
    loop.edit(lambda spec: spec["workerGroupSpecs"][0].update(replicas=2))
    step = loop.step()
    gone = [before[name] for name in step.deleted]
    assert len(gone) == 2 and len({replica for replica, _, _ in gone}) == 1
    assert {index for _, index, _ in gone} == {"2"}  # the highest index goes first
    loop.converge()
    indices = sorted(index for members in replicas(loop).values() for index, _ in members)
    assert indices == ["0", "0", "1", "1"]


def test_an_answer_to_a_request_missing_new_pods_creates_the_same_pods() -> None:
    loop = Loop(raycluster(cluster_spec(group(name="tpu", replicas=1, numOfHosts=2))))
    first = loop.step()
    created = [n for n in first.created if "-tpu-worker-" in n]
    assert len(created) == 2
    stale = loop.request()
    # The hook is asked again before the new workers show in the observed children.
    for key in list(stale["children"][POD]):
        if "-tpu-worker-" in key:
            del stale["children"][POD][key]
    _, answer = loop.answer(orjson.dumps(stale))
    again = {
        c["metadata"]["name"]: c["metadata"]["labels"]
        for c in answer["children"]
        if c["kind"] == "Pod"
    }
    for name in created:
        wanted = loop.children[(POD, name)]["metadata"]["labels"]
        assert {k: again[name][k] for k in (INDEX, REPLICA, HOST)} == {
            k: wanted[k] for k in (INDEX, REPLICA, HOST)
        }
