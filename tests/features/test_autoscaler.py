"""The Ray autoscaler: the head's sidecar, its RBAC children, v2, and the scaling conversation.

The conversation test replays what the real Ray autoscaler (KubeRay node provider, Part B 4.4)
does to a RayCluster, and checks the world after every single sync.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.raycluster.autoscaler import START
from tests.features.common import (
    Spec,
    container_named,
    env_of,
    first_sync,
    head_of,
    name_of,
    only,
    pod,
    pods_of,
    problems,
    set_group,
    settle,
    start_script,
    unchanged,
)
from tests.loop import Loop, cluster_spec, group, raycluster
from tests.unit.helpers import head_container, worker_container

HEAD_IMAGE = "rayproject/ray:2.52.0"
RBAC_KINDS = (
    "ServiceAccount.v1",
    "Role.rbac.authorization.k8s.io/v1",
    "RoleBinding.rbac.authorization.k8s.io/v1",
)


def autoscaling(*groups: dict[str, Any], **extra: Any) -> Spec:
    return cluster_spec(*(groups or (group(),)), enableInTreeAutoscaling=True, **extra)


def sidecar(spec: Spec, **parent: Any) -> dict[str, Any]:
    return container_named(head_of(first_sync(spec, **parent)), "autoscaler")


# -- the sidecar ------------------------------------------------------------------------------
def test_sidecar_defaults() -> None:
    head = head_of(first_sync(autoscaling()))
    names = [c["name"] for c in head["spec"]["containers"]]
    assert names == ["ray-head", "autoscaler"]
    side = container_named(head, "autoscaler")
    assert side["image"] == HEAD_IMAGE
    assert side["imagePullPolicy"] == "IfNotPresent"
    assert side["command"] == ["/bin/bash", "-c", "--"]
    assert side["args"] == [
        "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
        "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
    ]
    assert side["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "requests": {"cpu": "500m", "memory": "512Mi"},
    }
    assert side["volumeMounts"] == [{"mountPath": "/tmp/ray", "name": "ray-logs"}]
    assert "securityContext" not in side
    assert "envFrom" not in side


def test_sidecar_env_starts_with_kuberays_variables() -> None:
    env = sidecar(autoscaling())["env"]
    assert env[:4] == [
        {
            "name": "RAY_CLUSTER_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}},
        },
        {
            "name": "RAY_CLUSTER_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "RAY_HEAD_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "KUBERAY_CRD_VER", "value": "v1"},
    ]


def test_sidecar_image_follows_the_head_image() -> None:
    spec = autoscaling()
    head_container(spec)["image"] = "example.com/ray:custom"
    assert sidecar(spec)["image"] == "example.com/ray:custom"


def test_sidecar_overrides_from_autoscaler_options() -> None:
    user_env = [
        {"name": "AUTOSCALER_LOG_LEVEL", "value": "DEBUG"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
    ]
    env_from = [{"configMapRef": {"name": "autoscaler-config"}}]
    mounts = [{"name": "extra", "mountPath": "/etc/extra"}]
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m"}}
    security = {"runAsNonRoot": True, "runAsUser": 1000}
    options = {
        "image": "example.com/autoscaler:1",
        "imagePullPolicy": "Always",
        "command": ["ray"],
        "args": ["kuberay-autoscaler", "--cluster-name", "$(RAY_CLUSTER_NAME)"],
        "env": user_env,
        "envFrom": env_from,
        "volumeMounts": mounts,
        "resources": resources,
        "securityContext": security,
    }
    side = sidecar(autoscaling(autoscalerOptions=options))
    assert side["image"] == "example.com/autoscaler:1"
    assert side["imagePullPolicy"] == "Always"
    assert side["command"] == ["ray"]
    assert side["args"] == ["kuberay-autoscaler", "--cluster-name", "$(RAY_CLUSTER_NAME)"]
    assert [item["name"] for item in side["env"][:4]] == [
        "RAY_CLUSTER_NAME",
        "RAY_CLUSTER_NAMESPACE",
        "RAY_HEAD_POD_NAME",
        "KUBERAY_CRD_VER",
    ]
    assert side["env"][-2:] == user_env
    assert side["envFrom"] == env_from
    assert side["volumeMounts"] == [{"mountPath": "/tmp/ray", "name": "ray-logs"}, *mounts]
    assert side["resources"] == resources
    assert side["securityContext"] == security


@pytest.mark.parametrize(
    ("options", "command", "args"),
    [
        ({"command": ["/usr/bin/env", "bash", "-c"]}, ["/usr/bin/env", "bash", "-c"], [START]),
        (
            {"args": ["ray kuberay-autoscaler --verbose"]},
            None,
            ["ray kuberay-autoscaler --verbose"],
        ),
    ],
)
def test_command_and_args_are_overridden_independently(
    options: dict[str, Any], command: list[str] | None, args: list[str]
) -> None:
    side = sidecar(autoscaling(autoscalerOptions=options))
    assert side["command"] == (command or ["/bin/bash", "-c", "--"])
    assert side["args"] == args


def test_ray_container_shares_the_tmp_ray_log_volume() -> None:
    head = head_of(first_sync(autoscaling()))
    ray = container_named(head, "ray-head")
    logs = [m for m in ray["volumeMounts"] if m["mountPath"] == "/tmp/ray"]
    assert logs == [{"mountPath": "/tmp/ray", "name": "ray-logs"}]
    volumes = [v for v in head["spec"]["volumes"] if v["name"] == "ray-logs"]
    assert volumes == [{"emptyDir": {}, "name": "ray-logs"}]


def test_an_existing_tmp_ray_mount_is_reused() -> None:
    spec = autoscaling()
    head_container(spec)["volumeMounts"] = [{"name": "my-logs", "mountPath": "/tmp/ray"}]
    head_spec = spec["headGroupSpec"]["template"]["spec"]
    head_spec["volumes"] = [{"name": "my-logs", "hostPath": {"path": "/var/log/ray"}}]
    head = head_of(first_sync(spec))
    ray = container_named(head, "ray-head")
    assert [m for m in ray["volumeMounts"] if m["mountPath"] == "/tmp/ray"] == [
        {"name": "my-logs", "mountPath": "/tmp/ray"}
    ]
    assert container_named(head, "autoscaler")["volumeMounts"][0] == {
        "mountPath": "/tmp/ray",
        "name": "my-logs",
    }
    volume_names = [v["name"] for v in head["spec"]["volumes"]]
    assert "ray-logs" not in volume_names
    assert volume_names.count("my-logs") == 1


def test_head_runs_ray_start_without_its_own_monitor() -> None:
    desired = first_sync(autoscaling())
    head_script = start_script(container_named(head_of(desired), "ray-head"))
    assert " --no-monitor" in head_script
    for worker in pods_of(desired, "worker"):
        assert "--no-monitor" not in start_script(worker["spec"]["containers"][0])
    off = first_sync(cluster_spec(group()))
    assert "--no-monitor" not in start_script(container_named(head_of(off), "ray-head"))


def test_head_runs_as_the_clusters_service_account() -> None:
    desired = first_sync(autoscaling(), name="scaler")
    assert head_of(desired)["spec"]["serviceAccountName"] == "scaler"
    for worker in pods_of(desired, "worker"):
        assert "serviceAccountName" not in worker["spec"]


# -- RBAC ------------------------------------------------------------------------------------
def test_rbac_children_are_exactly_what_the_autoscaler_needs() -> None:
    desired = first_sync(autoscaling(), name="scaler", namespace="team-a")
    account = only(desired, "ServiceAccount")
    role = only(desired, "Role")
    binding = only(desired, "RoleBinding")
    for child in (account, role, binding):
        assert child["metadata"]["name"] == "scaler"
        assert child["metadata"]["namespace"] == "team-a"
        assert child["metadata"]["labels"]["ray.io/cluster"] == "scaler"
    assert account["apiVersion"] == "v1"
    assert role["apiVersion"] == binding["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]},
        # In-place pod resize by the v2 autoscaler (KubeRay v1.5+).
        {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]},
        {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "patch"]},
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "scaler", "namespace": "team-a"}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "scaler",
    }
    assert not [c for c in desired.children if c["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_a_user_named_service_account_is_used_and_not_created() -> None:
    spec = autoscaling()
    spec["headGroupSpec"]["template"]["spec"]["serviceAccountName"] = "team-sa"
    desired = first_sync(spec)
    assert head_of(desired)["spec"]["serviceAccountName"] == "team-sa"
    assert [c for c in desired.children if c["kind"] == "ServiceAccount"] == []
    assert only(desired, "RoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": "team-sa", "namespace": "default"}
    ]
    assert only(desired, "Role")["metadata"]["name"] == "demo"


# -- autoscaler v2 ---------------------------------------------------------------------------
def test_v2_enables_autoscaler_v2_and_never_restarts_pods() -> None:
    desired = first_sync(autoscaling(autoscalerOptions={"version": "v2"}))
    head = head_of(desired)
    assert env_of(container_named(head, "ray-head"))["RAY_enable_autoscaler_v2"] == {
        "name": "RAY_enable_autoscaler_v2",
        "value": "true",
    }
    workers = pods_of(desired, "worker")
    assert workers
    for obj in [head, *workers]:
        assert obj["spec"]["restartPolicy"] == "Never"


def test_v1_leaves_the_restart_policy_alone() -> None:
    desired = first_sync(autoscaling(autoscalerOptions={"version": "v1"}))
    for obj in desired.children:
        if obj["kind"] == "Pod":
            assert "restartPolicy" not in obj["spec"]
    ray = container_named(head_of(desired), "ray-head")
    assert env_of(ray).get("RAY_enable_autoscaler_v2", {}).get("value") != "true"


def test_v2_accepts_a_template_that_already_says_never() -> None:
    spec = autoscaling(autoscalerOptions={"version": "v2"})
    spec["workerGroupSpecs"][0]["template"]["spec"]["restartPolicy"] = "Never"
    assert problems(raycluster(spec)) == []


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("worker", "spec.workerGroupSpecs[0].template.spec.restartPolicy"),
        ("head", "spec.headGroupSpec.template.spec.restartPolicy"),
    ],
)
@pytest.mark.parametrize("policy", ["Always", "OnFailure"])
def test_v2_with_another_restart_policy_is_invalid(where: str, path: str, policy: str) -> None:
    spec = autoscaling(autoscalerOptions={"version": "v2"})
    template = (
        spec["workerGroupSpecs"][0]["template"]
        if where == "worker"
        else spec["headGroupSpec"]["template"]
    )
    template["spec"]["restartPolicy"] = policy
    found = problems(raycluster(spec))
    assert [p.path for p in found] == [path]
    desired = first_sync(spec)
    assert desired.status["state"] == "failed"
    assert path in desired.status["reason"]
    assert [c for c in desired.children if c["kind"] == "Pod"] == []


def crash_ray_container(loop: Loop, name: str) -> None:
    """The Ray container exits while the autoscaler sidecar keeps running: phase stays Running."""
    obj = pod(loop, name)
    ray, side = (c["name"] for c in obj["spec"]["containers"])
    obj["status"] |= {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": ray, "ready": False, "state": {"terminated": {"exitCode": 1}}},
            {"name": side, "ready": True, "state": {"running": {}}},
        ],
    }


def test_v2_replaces_a_head_whose_ray_container_has_terminated() -> None:
    """restartPolicy Never: the kubelet will not restart Ray, and the sidecar keeps the pod
    Running, so the head must be replaced (KubeRay master shouldDeletePod, Part B 5.3)."""
    loop = Loop(raycluster(autoscaling(autoscalerOptions={"version": "v2"})))
    settle(loop)
    (head,) = loop.heads()
    workers = loop.workers("workers")
    crash_ray_container(loop, head)
    step = loop.step()
    assert step.deleted == [head]
    (fresh,) = step.created
    assert loop.heads() == [fresh]
    assert loop.workers("workers") == workers


def test_v1_leaves_a_head_with_a_terminated_ray_container_to_the_kubelet() -> None:
    loop = Loop(raycluster(autoscaling()))
    settle(loop)
    (head,) = loop.heads()
    crash_ray_container(loop, head)
    unchanged(loop.step())
    assert loop.heads() == [head]


# -- autoscaling off ------------------------------------------------------------------------
def test_without_autoscaling_there_is_no_sidecar_and_no_rbac() -> None:
    desired = first_sync(cluster_spec(group()))
    head = head_of(desired)
    assert [c["name"] for c in head["spec"]["containers"]] == ["ray-head"]
    assert "serviceAccountName" not in head["spec"]
    kinds = {c["kind"] for c in desired.children}
    assert kinds == {"Pod", "Service"}


def test_turning_autoscaling_off_deletes_the_rbac_children() -> None:
    loop = Loop(raycluster(autoscaling()))
    settle(loop)
    for kind in RBAC_KINDS:
        assert (kind, "demo") in loop.children
    pods_before = loop.pods()

    loop.edit(lambda spec: spec.update(enableInTreeAutoscaling=False))
    step = loop.step()
    for kind in RBAC_KINDS:
        assert (kind, "demo") not in loop.children
    assert step.deleted == ["demo", "demo", "demo"]
    assert step.created == []
    assert loop.pods() == pods_before
    unchanged(loop.step())


# -- the conversation with the real autoscaler ------------------------------------------------
def live_workers(loop: Loop) -> list[str]:
    return loop.workers("workers")


def test_autoscaler_scale_up_then_scale_in_through_workers_to_delete() -> None:
    loop = Loop(raycluster(autoscaling(group(replicas=1, minimum=0, maximum=10))))
    settle(loop)
    assert len(live_workers(loop)) == 1

    # The autoscaler patches replicas to 5.
    loop.edit(set_group("workers", replicas=5))
    step = loop.step()
    assert step.deleted == []
    assert len(step.created) == 4
    assert len(live_workers(loop)) == 5
    settle(loop)
    five = live_workers(loop)
    assert len(five) == 5

    # One JSON patch: replicas 3 and the two victims. The pods keep terminating for a while.
    victims = sorted([five[1], five[3]])
    loop.held.update(victims)
    loop.edit(set_group("workers", replicas=3, scaleStrategy={"workersToDelete": victims}))
    step = loop.step()
    assert step.deleted == victims
    assert step.created == []
    assert loop.terminating() == victims
    survivors = [name for name in five if name not in victims]
    assert live_workers(loop) == survivors

    # The autoscaler sees them terminating, treats them as gone and empties the list.
    loop.edit(set_group("workers", scaleStrategy={"workersToDelete": []}))
    for _ in range(2):
        step = loop.step()
        unchanged(step)
        assert loop.terminating() == victims
        assert live_workers(loop) == survivors
        assert step.desired.status["desiredWorkerReplicas"] == 3

    # They finish terminating and vanish.
    loop.held.clear()
    for _ in range(3):
        step = loop.step()
        unchanged(step)
        assert live_workers(loop) == survivors
        if not loop.terminating():
            break
    assert loop.pods(live=False) == sorted([*survivors, *loop.heads()])

    final = loop.converge()
    unchanged(final)
    assert live_workers(loop) == survivors
    assert len(live_workers(loop)) == 3
    unchanged(loop.step())


def test_terminating_victims_count_for_nothing_when_the_autoscaler_scales_up_again() -> None:
    loop = Loop(raycluster(autoscaling(group(replicas=4))))
    settle(loop)
    four = live_workers(loop)
    victims = four[:2]
    loop.held.update(victims)
    loop.edit(set_group("workers", replicas=2, scaleStrategy={"workersToDelete": victims}))
    assert loop.step().deleted == victims
    loop.edit(set_group("workers", replicas=3, scaleStrategy={"workersToDelete": []}))
    step = loop.step()
    assert step.deleted == []
    assert len(step.created) == 1
    assert not set(step.created) & set(victims)
    assert loop.terminating() == victims
    assert len(live_workers(loop)) == 3


def test_with_autoscaling_lowering_replicas_alone_deletes_nothing() -> None:
    loop = Loop(raycluster(autoscaling(group(replicas=4))))
    settle(loop)
    before = loop.pods()
    loop.edit(set_group("workers", replicas=2))
    for _ in range(3):
        step = loop.step()
        unchanged(step)
        assert loop.pods() == before
        assert loop.terminating() == []
    assert step.desired.status["desiredWorkerReplicas"] == 2


def test_new_workers_never_take_a_listed_name() -> None:
    loop = Loop(raycluster(autoscaling(group(replicas=2))))
    settle(loop)
    listed = name_of(loop, "workers", 2)  # the next free ordinal
    loop.edit(set_group("workers", replicas=3, scaleStrategy={"workersToDelete": [listed]}))
    step = loop.step()
    assert step.deleted == []
    assert len(step.created) == 1
    assert listed not in step.created
    assert pod(loop, step.created[0])["metadata"]["labels"]["ray.io/group"] == "workers"


def test_worker_template_is_untouched_by_the_sidecar() -> None:
    spec = autoscaling(group(replicas=1))
    worker_container(spec)["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    spec["workerGroupSpecs"][0]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    (worker,) = pods_of(first_sync(spec), "worker")
    assert [c["name"] for c in worker["spec"]["containers"]] == ["ray-worker"]
    mounts = [m["mountPath"] for m in worker["spec"]["containers"][0]["volumeMounts"]]
    assert "/tmp/ray" not in mounts
    assert "ray-logs" not in [v["name"] for v in worker["spec"]["volumes"]]
