"""Embedded GCS fault tolerance: ``gcsFaultToleranceOptions.backend: rocksdb`` and ``storage``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.features.common import Spec, children_of, env_of, first_sync, head_of, problems
from tests.loop import POD, Loop, cluster_spec, group, raycluster
from tests.unit.helpers import head_container

PVC = "PersistentVolumeClaim.v1"


def with_rocksdb(**storage: Any) -> Spec:
    options: dict[str, Any] = {"backend": "rocksdb"}
    if storage:
        options["storage"] = storage
    return cluster_spec(group(), gcsFaultToleranceOptions=options)


def test_the_claim_and_the_heads_volume() -> None:
    desired = first_sync(with_rocksdb(size="5Gi", storageClassName="fast", subPath="gcs"))
    [claim] = children_of(desired, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "demo-gcs-pvc"
    assert claim["metadata"]["labels"]["ray.io/cluster"] == "demo"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast",
    }
    head = head_of(desired)
    ray = head["spec"]["containers"][0]
    assert {"mountPath": "/data/gcs", "name": "gcs-storage", "subPath": "gcs"} in ray[
        "volumeMounts"
    ]
    volume = {"name": "gcs-storage", "persistentVolumeClaim": {"claimName": "demo-gcs-pvc"}}
    assert volume in head["spec"]["volumes"]
    env = env_of(ray)
    assert env["RAY_gcs_storage"]["value"] == "rocksdb"
    assert env["RAY_gcs_storage_path"]["value"] == "/data/gcs"
    assert "RAY_REDIS_ADDRESS" not in env and "RAY_external_storage_namespace" not in env
    assert "ray.io/external-storage-namespace" not in head["metadata"]["annotations"]
    assert head["metadata"]["annotations"]["ray.io/ft-enabled"] == "true"
    worker = next(p for p in children_of(desired, "Pod") if p is not head)
    assert env_of(worker["spec"]["containers"][0])["RAY_gcs_rpc_server_reconnect_timeout_s"]


def test_defaults_and_the_users_claim() -> None:
    [claim] = children_of(first_sync(with_rocksdb()), "PersistentVolumeClaim")
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    desired = first_sync(with_rocksdb(claimName="my-gcs"))
    assert children_of(desired, "PersistentVolumeClaim") == []
    claim_ref = {"claimName": "my-gcs"}
    assert {"name": "gcs-storage", "persistentVolumeClaim": claim_ref} in head_of(desired)["spec"][
        "volumes"
    ]


def test_the_claim_is_never_resized_and_outlives_the_option() -> None:
    loop = Loop(raycluster(with_rocksdb()))
    loop.converge()
    loop.edit(lambda spec: spec["gcsFaultToleranceOptions"].update(storage={"size": "9Gi"}))
    step = loop.step()
    assert loop.children[(PVC, "demo-gcs-pvc")]["spec"]["resources"]["requests"] == {
        "storage": "1Gi"
    }
    assert [e.type for e in step.desired.events if e.reason == "GCSStorageClaimDrift"] == [
        "Warning"
    ]
    loop.edit(lambda spec: spec.pop("gcsFaultToleranceOptions"))
    step = loop.step()
    assert "demo-gcs-pvc" not in step.deleted  # the cluster's GCS state: kept
    assert (PVC, "demo-gcs-pvc") in loop.children


def test_finalize_releases_a_rocksdb_cluster_at_once() -> None:
    from app.core.observed import Observed
    from app.raycluster.sync import finalize

    assert finalize(raycluster(with_rocksdb()), Observed()).finalized is True


def test_head_restart_keeps_the_claim() -> None:
    loop = Loop(raycluster(with_rocksdb()))
    loop.converge()
    loop.run_pods()
    [head] = loop.heads()
    loop.finish(head)
    loop.converge()
    [new_head] = loop.heads()
    assert new_head != head
    volumes = loop.children[(POD, new_head)]["spec"]["volumes"]
    assert {
        "name": "gcs-storage",
        "persistentVolumeClaim": {"claimName": "demo-gcs-pvc"},
    } in volumes


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s["gcsFaultToleranceOptions"].update(redisAddress="redis:6379"),
            "cannot set GcsFaultToleranceOptions.RedisAddress when backend is 'rocksdb'",
        ),
        (
            lambda s: s["gcsFaultToleranceOptions"].update(
                storage={"claimName": "x", "size": "1Gi"}
            ),
            "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, "
            "storageClassName, and accessModes",
        ),
        (
            lambda s: s["gcsFaultToleranceOptions"].update(
                backend="redis", redisAddress="r:6379", storage={"size": "1Gi"}
            ),
            "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis'",
        ),
        (
            lambda s: s["gcsFaultToleranceOptions"].update(storage={"deletionPolicy": "Retain"}),
            "Retain is not supported",
        ),
        (
            lambda s: head_container(s).update(env=[{"name": "RAY_gcs_storage", "value": "x"}]),
            "cannot set RAY_gcs_storage with the 'rocksdb' backend",
        ),
        (
            lambda s: head_container(s).update(
                volumeMounts=[{"name": "data", "mountPath": "/data/gcs"}]
            ),
            "cannot mount a volume named gcs-storage or at /data/gcs",
        ),
    ],
)
def test_invalid_embedded_storage(edit: Any, message: str) -> None:
    spec = with_rocksdb()
    edit(spec)
    assert any(message in str(problem) for problem in problems(raycluster(spec)))
