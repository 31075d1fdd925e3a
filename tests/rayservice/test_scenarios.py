"""A RayService's life through many syncs: first deploy, Serve config changes, blue/green
cluster upgrades, reverts, stuck and lying clusters, suspend, restarts and stale replays."""

from __future__ import annotations

import copy
from datetime import timedelta

import orjson

from app.rayservice.serve import ApplyServeConfig
from tests.rayservice.loop import (
    RAYCLUSTER,
    SERVE_CONFIG,
    SERVICE,
    ServiceLoop,
    rayservice_object,
    serve_cluster_spec,
)


def deployed() -> ServiceLoop:
    loop = ServiceLoop(rayservice_object())
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    return loop


def new_image(loop: ServiceLoop, image: str = "rayproject/ray:2.53.0") -> None:
    spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image
    loop.edit(rayClusterConfig=spec)


def test_first_deploy_names_the_cluster_first_then_creates_it_and_serves_once_running() -> None:
    loop = ServiceLoop(rayservice_object())
    first = loop.step()
    assert first.created == []  # the name goes to status first
    name = loop.pending
    assert name is not None and name.startswith("svc-") and len(name) == 9
    assert loop.step().created == [f"RayCluster/{name}"]
    loop.until(lambda s: s.active == name)
    assert loop.selector() == name and loop.selector("svc-head-svc") == name
    assert loop.world.serves[name].puts == 1
    loop.step()
    ready = loop.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("True", "NonZeroServeEndpoints")
    assert loop.status["serviceStatus"] == "Running"
    apps = loop.status["activeServiceStatus"]["applicationStatuses"]
    assert apps["fruit"]["status"] == "RUNNING"
    assert apps["fruit"]["serveDeploymentStatuses"] == {"Ingress": {"status": "HEALTHY"}}
    assert "rayClusterStatus" in loop.status["activeServiceStatus"]


def test_a_quiet_rayservice_is_a_fixpoint_with_a_byte_identical_status() -> None:
    loop = deployed()
    loop.run(2)
    before = loop.history[-1].answer
    loop.run(3)
    assert orjson.dumps(loop.history[-1].answer) == orjson.dumps(before)
    assert all(s.created == [] and s.deleted == [] for s in loop.history[-3:])
    assert all(s.desired.intents == () for s in loop.history[-3:])


def test_a_serve_config_change_is_applied_to_the_active_cluster_without_a_new_one() -> None:
    loop = deployed()
    active = loop.active
    loop.edit(serveConfigV2=SERVE_CONFIG.replace("price: 3", "price: 4"))
    step = loop.step()
    [intent] = step.desired.intents
    assert isinstance(intent, ApplyServeConfig) and intent.cluster == active
    assert intent.body()["applications"][0]["deployments"][0]["user_config"] == {"price": 4}
    loop.run(5)
    assert loop.clusters() == [active] and loop.pending is None
    assert loop.world.serves[active].puts == 2  # applied once, not on every sync


def test_a_cluster_change_is_blue_green_and_the_old_cluster_goes_only_after_the_delay() -> None:
    loop = deployed()
    old = loop.active
    new_image(loop)
    loop.step()
    new = loop.pending
    assert new is not None and new != old
    assert loop.condition("UpgradeInProgress")["status"] == "True"
    loop.until(lambda s: s.active == new)
    cut_over = loop.now
    assert loop.selector() == new and loop.selector("svc-head-svc") == new
    # Traffic moved only once the new cluster ran every application of the config.
    assert loop.world.running(new)
    assert loop.clusters() == sorted([old, new])
    deadline = next(e for e in loop.status["rayClustersToDelete"] if e["name"] == old)
    assert deadline["deleteAfter"] == (cut_over + timedelta(seconds=60)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    loop.until(lambda s: old not in s.clusters(), max_steps=80)
    assert (loop.now - cut_over).total_seconds() >= 60
    assert loop.clusters() == [new]
    loop.run(2)
    assert "rayClustersToDelete" not in loop.status


def test_an_old_cluster_is_never_deleted_before_the_cut_over() -> None:
    loop = deployed()
    old = loop.active
    loop.edit(rayClusterDeletionDelaySeconds=0)
    new_image(loop)
    for _ in range(12):
        step = loop.step()
        if old in step.deleted:
            assert loop.selector() != old
            break
        assert old in loop.clusters()
    else:
        raise AssertionError("the old cluster was never deleted")


def test_a_revert_while_the_new_cluster_is_unready_cancels_the_upgrade() -> None:
    loop = deployed()
    old = loop.active
    original = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    loop.world.deploy_steps = 50
    new_image(loop)
    loop.run(3)
    pending = loop.pending
    assert pending is not None and pending in loop.clusters()
    loop.edit(rayClusterConfig=original)
    loop.step()
    assert loop.pending is None and loop.active == old
    assert loop.condition("UpgradeInProgress")["reason"] == "NoPendingCluster"
    loop.until(lambda s: pending not in s.clusters(), max_steps=80)
    assert loop.clusters() == [old] and loop.selector() == old  # no third cluster


def test_a_pending_cluster_that_never_gets_ready_leaves_the_active_one_serving() -> None:
    loop = deployed()
    old = loop.active
    new_image(loop)
    loop.step()
    loop.world.never_ready.add(loop.pending or "")
    loop.run(40)
    assert loop.active == old and loop.selector() == old
    assert loop.condition("Ready")["status"] == "True"
    assert loop.condition("UpgradeInProgress")["status"] == "True"
    assert len(loop.clusters()) == 2


def test_a_failing_dashboard_blocks_the_cut_over_and_a_lying_one_gets_the_config_again() -> None:
    loop = deployed()
    old = loop.active
    new_image(loop)
    loop.run(2)
    new = loop.pending
    assert new is not None
    loop.world.failing.add(new)
    loop.run(10)
    assert loop.active == old and loop.selector() == old
    loop.world.failing.discard(new)
    loop.world.liars.add(new)  # "RUNNING", but not the config asked for
    step = loop.step()
    assert [i.cluster for i in step.desired.intents] == [new]
    loop.run(5)
    assert loop.active == old
    loop.world.liars.discard(new)
    loop.until(lambda s: s.active == new)


def test_upgrade_strategy_none_keeps_serving_and_says_what_it_waits_for() -> None:
    loop = ServiceLoop(rayservice_object(upgradeStrategy={"type": "None"}))
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    active = loop.active
    new_image(loop)
    loop.run(5)
    assert loop.clusters() == [active] and loop.pending is None
    waiting = loop.condition("UpgradeInProgress")
    assert waiting["reason"] == "UpgradeStrategyNone"
    assert active in waiting["message"]


def test_appended_worker_group_updates_the_live_cluster_in_place() -> None:
    loop = deployed()
    active = loop.active
    live = loop.children[(RAYCLUSTER, active)]
    live["spec"]["workerGroupSpecs"][0]["replicas"] = 5  # the autoscaler's
    applied = orjson.loads(
        live["metadata"]["annotations"]["metacontroller.k8s.io/last-applied-configuration"]
    )
    applied["spec"]["workerGroupSpecs"][0]["replicas"] = 5
    live["metadata"]["annotations"]["metacontroller.k8s.io/last-applied-configuration"] = (
        orjson.dumps(applied).decode()
    )
    spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    extra = copy.deepcopy(spec["workerGroupSpecs"][0])
    extra["groupName"] = "gpu"
    spec["workerGroupSpecs"].append(extra)
    loop.edit(rayClusterConfig=spec)
    loop.run(3)
    assert loop.clusters() == [active] and loop.pending is None
    groups = loop.children[(RAYCLUSTER, active)]["spec"]["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["workers", "gpu"]
    assert groups[0]["replicas"] == 5


def test_suspend_deletes_everything_and_resume_starts_again() -> None:
    loop = deployed()
    loop.edit(suspend=True)
    loop.step()
    assert loop.condition("Suspending")["status"] == "True"
    loop.until(
        lambda s: (
            s.condition("Suspended")["status"] == "True"
            if any(c["type"] == "Suspended" for c in s.status.get("conditions", []))
            else False
        )
    )
    loop.run(1)
    assert loop.clusters(live=False) == [] and (SERVICE, "svc-serve-svc") not in loop.children
    loop.edit(suspend=False)
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    assert loop.condition("Suspended")["reason"] == "RayServiceResumed"


def test_metaray_restarting_mid_upgrade_reapplies_nothing_and_finishes() -> None:
    loop = deployed()
    new_image(loop)
    loop.run(4)
    new = loop.pending
    puts = list(loop.world.puts)
    # A new process: no memory at all; the next syncs see only the parent, children and Ray.
    restarted = ServiceLoop(loop.parent, world=loop.world, children=loop.children, now=loop.now)
    restarted.run(2)
    assert loop.world.puts == puts
    restarted.until(lambda s: s.active == new)


def test_a_stale_parent_never_creates_a_second_pending_cluster_nor_deletes() -> None:
    loop = deployed()
    old = loop.active
    stale = copy.deepcopy(loop.parent)
    new_image(loop)
    loop.run(3)
    pending = loop.pending
    assert sorted(loop.clusters()) == sorted([old, pending])
    # Replays of the parent as it was before the change: nothing created, nothing deleted.
    for _ in range(3):
        step = loop.step(parent=stale, write_status=False)
        assert step.created == [] and step.deleted == []
    # And the stale answer written back: the fresh parent adopts the pending cluster again.
    loop.step(parent=stale)
    assert loop.step().created == []
    assert loop.pending == pending


def test_an_invalid_spec_keeps_every_child_and_says_why() -> None:
    loop = deployed()
    children = sorted(loop.children)
    loop.edit(upgradeStrategy={"type": "Blue"})
    step = loop.step()
    assert step.deleted == [] and sorted(loop.children) == children
    ready = loop.condition("Ready")
    assert ready["reason"] == "ValidationFailed"
    assert "Spec.UpgradeStrategy.Type value Blue is invalid" in ready["message"]
    assert [e.reason for e in step.desired.events] == ["InvalidRayServiceSpec"]


def test_serve_ports_come_from_the_head_container() -> None:
    spec = serve_cluster_spec()
    ports = spec["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    ports[-1] = {"containerPort": 9000, "name": "serve"}
    loop = ServiceLoop(rayservice_object(rayClusterConfig=spec))
    loop.until(lambda s: (SERVICE, "svc-serve-svc") in s.children)
    assert loop.children[(SERVICE, "svc-serve-svc")]["spec"]["ports"] == [
        {"name": "serve", "port": 9000}
    ]


def test_a_stale_parent_after_the_cut_over_never_sends_traffic_back_to_a_sick_old_cluster() -> None:
    loop = deployed()
    old = loop.active
    before = copy.deepcopy(loop.parent)  # old cluster active, no upgrade yet
    new_image(loop)
    loop.until(lambda s: s.active not in (None, old))
    new = loop.active
    loop.world.sick.add(old or "")
    step = loop.step(parent=before)
    assert loop.selector() == new and loop.selector("svc-head-svc") == new
    assert step.deleted == []


def test_workers_take_serve_traffic_only_while_their_proxy_is_healthy() -> None:
    """KubeRay's worker readiness for RayService clusters: raylet and Serve proxy, on the
    head's serve port; a user's own probe wins; the head is not gated on its proxy (its
    readiness gates the Serve config itself)."""
    spec = serve_cluster_spec()
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"][-1]["containerPort"] = 9000
    own = copy.deepcopy(spec["workerGroupSpecs"][0])
    own["groupName"] = "own"
    own["template"]["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 1}}
    spec["workerGroupSpecs"].append(own)
    loop = ServiceLoop(rayservice_object(rayClusterConfig=spec))
    loop.run(2)
    cluster = loop.children[(RAYCLUSTER, loop.pending or "")]
    groups = cluster["spec"]["workerGroupSpecs"]
    probe = groups[0]["template"]["spec"]["containers"][0]["readinessProbe"]
    script = probe["exec"]["command"][-1]
    assert "localhost:9000/-/healthz" in script and "local_raylet_healthz" in script
    assert probe["failureThreshold"] == 1
    assert groups[1]["template"]["spec"]["containers"][0]["readinessProbe"] == {
        "tcpSocket": {"port": 1}
    }
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in head


def test_a_stale_status_written_back_after_a_cut_over_never_loses_the_serving_cluster() -> None:
    """A→B, back to A (adopted and cut over to again), then a parent from before that second
    cut-over is synced and its answer written (a stale parent's): its status names B active and
    lists A for deletion while the Services send every request to A. A keeps the traffic and
    stays active; B, serving nothing, is the one retired; the next change builds a third
    cluster beside A."""
    loop = ServiceLoop(rayservice_object(rayClusterDeletionDelaySeconds=0))
    loop.until(lambda s: s.active is not None)
    first = loop.active
    new_image(loop)
    loop.until(lambda s: s.active not in (None, first))
    second = loop.active
    new_image(loop, "rayproject/ray:2.52.0")  # back to the first cluster's spec
    stale = copy.deepcopy(loop.parent)  # B active, A listed for deletion
    loop.until(lambda s: s.active == first)
    step = loop.step(parent=stale)  # its answer's status written over the newer one
    assert step.deleted == [] and loop.selector() == first
    assert (loop.active, loop.pending) == (first, None)
    assert [e["name"] for e in loop.status["rayClustersToDelete"]] == [second]
    new_image(loop, "rayproject/ray:2.54.0")
    step = loop.step()
    third = loop.pending
    assert loop.active == first and third not in (None, first, second)
    assert step.deleted == [second]  # its delay (0 s) is over
    step = loop.step()
    assert step.created == [f"RayCluster/{third}"] and loop.selector() == first
    loop.until(lambda s: s.active == third)
    assert loop.selector() == third
