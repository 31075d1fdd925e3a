"""Mutual TLS between Ray processes: ``tlsOptions.enabled`` with cert-manager."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core import kinds
from tests.features import cert_manager
from tests.features.common import Spec, children_of, env_of, first_sync, problems
from tests.loop import CERTIFICATE, ISSUER, POD, Loop, cluster_spec, group, raycluster
from tests.unit.helpers import head_container, worker_container

TLS_ENV = {
    "RAY_USE_TLS": "1",
    "RAY_TLS_SERVER_CERT": "/etc/ray/tls/tls.crt",
    "RAY_TLS_SERVER_KEY": "/etc/ray/tls/tls.key",
    "RAY_TLS_CA_CERT": "/etc/ray/tls/ca.crt",
}
MOUNT = {"mountPath": "/etc/ray/tls", "name": "ray-tls", "readOnly": True}


def with_tls(**extra: Any) -> Spec:
    return cluster_spec(group(replicas=2), tlsOptions={"enabled": True}, **extra)


def by_name(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in children}


def ready_loop(spec: Spec) -> Loop:
    """A cluster whose certificates cert-manager has issued, with its pods running."""
    loop = Loop(raycluster(spec))
    loop.step()
    loop.issue_certificates()
    loop.converge()
    loop.run_pods()
    loop.converge()
    return loop


def test_first_answer_is_the_pki_and_no_pod() -> None:
    desired = first_sync(with_tls())
    assert children_of(desired, "Pod") == []
    issuers = by_name(children_of(desired, "Issuer"))
    certificates = by_name(children_of(desired, "Certificate"))
    assert sorted(issuers) == ["ray-ca-issuer-demo", "ray-selfsigned-issuer-demo"]
    assert issuers["ray-selfsigned-issuer-demo"]["spec"] == {"selfSigned": {}}
    assert issuers["ray-ca-issuer-demo"]["spec"] == {
        "ca": {"secretName": "demo-ca-secret-0f0f0f0f"}
    }
    ca = certificates["ray-ca-certificate-demo"]["spec"]
    assert ca["isCA"] is True and ca["commonName"] == "ray-ca-demo"
    assert ca["privateKey"] == {"algorithm": "RSA", "size": 4096}
    assert (ca["duration"], ca["renewBefore"]) == ("87600h", "720h")
    assert ca["issuerRef"]["name"] == "ray-selfsigned-issuer-demo"
    head = certificates["ray-head-cert-demo"]["spec"]
    assert head["secretName"] == "ray-head-secret-demo"
    assert head["dnsNames"] == ["localhost", "demo-head-svc.default.svc.cluster.local"]
    assert head["usages"] == ["digital signature", "key encipherment", "server auth", "client auth"]
    assert (head["duration"], head["renewBefore"]) == ("2160h", "360h")
    assert head["issuerRef"] == {
        "name": "ray-ca-issuer-demo",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    worker = certificates["ray-worker-cert-demo"]["spec"]
    assert worker["secretName"] == "ray-worker-secret-demo" and worker["dnsNames"] == ["localhost"]
    for obj in [*issuers.values(), *certificates.values()]:
        assert obj["metadata"]["labels"]["ray.io/cluster"] == "demo"
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "kuberay"
        assert cert_manager.errors(obj) == [], obj["metadata"]["name"]


def test_no_pod_until_every_certificate_is_ready() -> None:
    loop = Loop(raycluster(with_tls()))
    loop.step()
    for _ in range(3):
        step = loop.step()
        assert loop.pods() == []
        [waiting] = [e for e in step.desired.events if e.reason == "MTLSCertsNotReady"]
        assert "ray-head-cert-demo" in waiting.message
    loop.issue_certificates()
    step = loop.step()
    assert (
        len([n for n in step.created if n.startswith(("demo-head-", "demo-workers-worker-"))]) == 3
    )


def test_pod_ips_become_san_entries_and_pods_are_wired() -> None:
    loop = ready_loop(with_tls())
    head_cert = loop.children[(CERTIFICATE, "ray-head-cert-demo")]["spec"]
    worker_cert = loop.children[(CERTIFICATE, "ray-worker-cert-demo")]["spec"]
    head_ip = [loop.children[(POD, n)]["status"]["podIP"] for n in loop.heads()]
    worker_ips = sorted(loop.children[(POD, n)]["status"]["podIP"] for n in loop.workers("workers"))
    # 127.0.0.1 first: Ray's processes in a pod reach each other over loopback.
    assert head_cert["ipAddresses"] == ["127.0.0.1", *head_ip]
    assert worker_cert["ipAddresses"] == ["127.0.0.1", *worker_ips]
    events = [e for step in loop.history for e in step.desired.events]
    assert "MTLSCertificatesUpdated" in {e.reason for e in events}
    [worker_name] = loop.workers("workers")[:1]
    pod = loop.children[(POD, worker_name)]["spec"]
    assert {"name": "ray-tls", "secret": {"secretName": "ray-worker-secret-demo"}} in pod["volumes"]
    init = [c["name"] for c in pod["initContainers"]]
    assert init == ["wait-for-tls-ip-san", "wait-gcs-ready"]
    wait = pod["initContainers"][0]
    assert wait["resources"] == {
        "limits": {"cpu": "50m", "memory": "64Mi"},
        "requests": {"cpu": "50m", "memory": "64Mi"},
    }
    # Like every init container, it is told where the head is (KubeRay v1.7).
    assert wait["env"] == [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "FQ_RAY_IP", "value": "demo-head-svc.default.svc.cluster.local"},
        {"name": "RAY_IP", "value": "demo-head-svc"},
    ]
    assert MOUNT in wait["volumeMounts"]
    assert wait["command"] == ["sh", "-c"]
    assert 'grep -Eq "IP Address:${POD_IP}(,|$)"' in wait["args"][0]
    for container in (pod["containers"][0], pod["initContainers"][1]):
        env = {k: v.get("value") for k, v in env_of(container).items()}
        assert {k: env.get(k) for k in TLS_ENV} == TLS_ENV
        assert MOUNT in container["volumeMounts"]
    head_pod = loop.children[(POD, loop.heads()[0])]["spec"]
    assert {"name": "ray-tls", "secret": {"secretName": "ray-head-secret-demo"}} in head_pod[
        "volumes"
    ]


def test_the_answer_settles_once_ips_are_in() -> None:
    loop = ready_loop(with_tls())
    first = loop.step()
    second = loop.step()
    assert (first.created, first.deleted, second.created, second.deleted) == ([], [], [], [])
    assert json.dumps(second.desired.children, default=dict) == json.dumps(
        first.desired.children, default=dict
    )


def test_turning_tls_off_removes_exactly_the_pki() -> None:
    loop = ready_loop(with_tls())
    before = set(loop.children)
    loop.edit(lambda spec: spec.pop("tlsOptions"))
    step = loop.step()
    assert set(loop.children) == {k for k in before if k[0] not in (ISSUER, CERTIFICATE)}
    assert len(step.deleted) == 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: head_container(s).update(env=[{"name": "RAY_USE_TLS", "value": "0"}]),
            "cannot set RAY_USE_TLS environment variable in head Pod when tlsOptions is set - "
            "the operator manages TLS configuration automatically",
        ),
        (
            lambda s: worker_container(s).update(
                volumeMounts=[{"name": "certs", "mountPath": "/etc/ray/tls"}]
            ),
            "cannot mount a volume named ray-tls or at /etc/ray/tls in worker group 'workers' Pod",
        ),
        (
            lambda s: s.update(
                autoscalerOptions={"env": [{"name": "RAY_TLS_CA_CERT", "value": "x"}]}
            ),
            "cannot set RAY_TLS_CA_CERT environment variable in autoscalerOptions",
        ),
    ],
)
def test_the_tls_variables_and_mount_are_metarays(edit: Any, message: str) -> None:
    spec = with_tls()
    edit(spec)
    assert any(message in str(problem) for problem in problems(raycluster(spec)))


def test_without_the_mtls_registration_tls_is_an_invalid_spec() -> None:
    loop = Loop(raycluster(with_tls()), registered=kinds.MANAGED - kinds.OPTIONAL)
    step = loop.step()
    assert (step.created, step.deleted) == ([], [])
    assert step.desired.status["state"] == "failed"
    assert "config/mtls/" in step.desired.status["reason"]
    # The same cluster without TLS is fine there.
    plain = Loop(raycluster(cluster_spec(group())), registered=kinds.MANAGED - kinds.OPTIONAL)
    assert plain.step().created
