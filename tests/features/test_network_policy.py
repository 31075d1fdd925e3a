"""NetworkPolicies: ``spec.networkPolicy`` (mode, head, worker, workerGroups)."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.desired import Desired
from app.core.observed import Observed
from app.raycluster.sync import sync
from tests.features.common import Spec, children_of, first_sync, problems, settle
from tests.loop import NETWORK_POLICY, POD, Loop, cluster_spec, group, raycluster

OWN_PODS = [{"podSelector": {"matchLabels": {"ray.io/cluster": "demo"}}}]
KUBE_DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}],
}


def with_policy(groups: tuple[str, ...] = ("cpu", "gpu"), **options: Any) -> Spec:
    spec = cluster_spec(*[group(name) for name in groups])
    spec["networkPolicy"] = options
    return spec


def policies(desired: Desired) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in children_of(desired, "NetworkPolicy")}


def test_head_and_one_policy_per_group_with_kuberays_selectors_and_labels() -> None:
    found = policies(first_sync(with_policy()))
    assert sorted(found) == ["demo-head", "demo-workers-cpu", "demo-workers-gpu"]
    head, cpu = found["demo-head"], found["demo-workers-cpu"]
    assert head["apiVersion"] == "networking.k8s.io/v1"
    assert head["metadata"]["namespace"] == "default"
    assert head["metadata"]["labels"] == {
        "app.kubernetes.io/created-by": "kuberay-operator",
        "app.kubernetes.io/name": "kuberay",
        "controller-uid": "0f0f0f0f-1111-2222-3333-444444444444",
        "ray.io/cluster": "demo",
        "ray.io/group": "headgroup",
    }
    assert head["spec"] == {
        "podSelector": {"matchLabels": {"ray.io/cluster": "demo", "ray.io/node-type": "head"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": OWN_PODS}],
        "egress": [{"to": OWN_PODS}],
    }
    assert cpu["spec"]["podSelector"] == {
        "matchLabels": {
            "ray.io/cluster": "demo",
            "ray.io/node-type": "worker",
            "ray.io/group": "cpu",
        }
    }
    assert cpu["metadata"]["labels"]["ray.io/group"] == "cpu"


@pytest.mark.parametrize(
    ("mode", "types"),
    [
        ("DenyAllIngress", ["Ingress"]),
        ("DenyAllEgress", ["Egress"]),
        ("DenyAll", ["Ingress", "Egress"]),
    ],
)
def test_mode_picks_the_policy_types(mode: str, types: list[str]) -> None:
    for policy in policies(first_sync(with_policy(mode=mode))).values():
        assert policy["spec"]["policyTypes"] == types
        assert ("ingress" in policy["spec"]) == ("Ingress" in types)
        assert ("egress" in policy["spec"]) == ("Egress" in types)


def test_user_rules_are_appended_with_tcp_for_a_missing_protocol() -> None:
    ingress = {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 8265}]}
    spec = with_policy(head={"ingressRules": [ingress], "egressRules": [KUBE_DNS]})
    head = policies(first_sync(spec))["demo-head"]["spec"]
    assert head["ingress"] == [
        {"from": OWN_PODS},
        {
            "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
            "ports": [{"port": 8265, "protocol": "TCP"}],
        },
    ]
    assert head["egress"][1]["ports"] == [
        {"port": 53, "protocol": "UDP"},
        {"port": 53, "protocol": "TCP"},
    ]
    assert spec["networkPolicy"]["head"]["ingressRules"][0]["ports"] == [{"port": 8265}]


def test_a_worker_groups_entry_replaces_worker_for_that_group() -> None:
    everyone = {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}
    only_gpu = {"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}]}
    spec = with_policy(
        worker={"egressRules": [everyone]},
        workerGroups=[{"groupName": "gpu", "egressRules": [only_gpu]}],
    )
    found = policies(first_sync(spec))
    assert found["demo-workers-cpu"]["spec"]["egress"] == [{"to": OWN_PODS}, everyone]
    assert found["demo-workers-gpu"]["spec"]["egress"] == [{"to": OWN_PODS}, only_gpu]
    assert found["demo-head"]["spec"]["egress"] == [{"to": OWN_PODS}]


def rayjob_cluster(spec: Spec, *, label: bool = True, kind: str = "RayJob") -> dict[str, Any]:
    parent = raycluster(spec)
    if label:
        parent["metadata"]["labels"] = {"ray.io/job-submission-mode": "K8sJobMode"}
    parent["metadata"]["ownerReferences"] = [
        {"apiVersion": "ray.io/v1", "kind": kind, "name": "my-job", "uid": "u", "controller": True}
    ]
    return parent


def test_a_rayjobs_submitter_may_reach_the_dashboard_port() -> None:
    spec = with_policy()
    spec["headGroupSpec"]["rayStartParams"] = {"dashboard-port": "8300"}
    head = policies(sync(rayjob_cluster(spec), Observed()))["demo-head"]["spec"]
    assert head["ingress"][1] == {
        "from": [
            {
                "podSelector": {
                    "matchLabels": {
                        "ray.io/originated-from-cr-name": "my-job",
                        "ray.io/originated-from-crd": "RayJob",
                    }
                }
            }
        ],
        "ports": [{"port": 8300, "protocol": "TCP"}],
    }


@pytest.mark.parametrize(("label", "kind"), [(False, "RayJob"), (True, "RayService")])
def test_no_submitter_rule_without_k8s_job_mode_and_a_rayjob_owner(label: bool, kind: str) -> None:
    parent = rayjob_cluster(with_policy(), label=label, kind=kind)
    head = policies(sync(parent, Observed()))["demo-head"]["spec"]
    assert head["ingress"] == [{"from": OWN_PODS}]


@pytest.mark.parametrize(
    ("options", "groups", "message"),
    [
        (
            {"mode": "DenyAllEgress", "head": {"ingressRules": [{}]}},
            ("cpu",),
            'networkPolicy.head.ingressRules cannot be set when mode is "DenyAllEgress" '
            "(ingress is not restricted)",
        ),
        (
            {"mode": "DenyAllIngress", "worker": {"egressRules": [{}]}},
            ("cpu",),
            'networkPolicy.worker.egressRules cannot be set when mode is "DenyAllIngress" '
            "(egress is not restricted)",
        ),
        (
            {"workerGroups": [{"groupName": "tpu"}]},
            ("cpu",),
            "networkPolicy.workerGroups['tpu'] does not match any group name in workerGroupSpecs",
        ),
        (
            {},
            ("cpu.large",),
            "worker group name 'cpu.large' must be a valid DNS1123 label when networkPolicy is "
            "enabled (it is embedded in the NetworkPolicy name)",
        ),
        ({"head": {"egressRules": [{"ports": "53"}]}}, ("cpu",), "must be a list"),
    ],
)
def test_invalid_policies(options: dict[str, Any], groups: tuple[str, ...], message: str) -> None:
    found = problems(raycluster(with_policy(groups, **options)))
    assert any(message in str(problem) for problem in found), found


# -- DNS: beyond KubeRay ---------------------------------------------------------------------


def dns_condition(desired: Desired) -> dict[str, Any] | None:
    found = [c for c in desired.status["conditions"] if c["type"] == "NetworkPolicyDNSEgress"]
    return found[0] if found else None


def test_deny_all_without_dns_is_a_condition_and_one_warning() -> None:
    loop = Loop(raycluster(with_policy()))
    step = loop.step()
    condition = dns_condition(step.desired)
    assert condition is not None and condition["status"] == "False"
    assert condition["reason"] == "NoDNSEgressRule"
    assert "demo-head, demo-workers-cpu, demo-workers-gpu" in condition["message"]
    warnings = [e for e in step.desired.events if e.reason == "NetworkPolicyBlocksDNS"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    again = loop.step()
    assert not [e for e in again.desired.events if e.reason == "NetworkPolicyBlocksDNS"]


def test_a_dns_rule_everywhere_satisfies_the_condition() -> None:
    spec = with_policy(head={"egressRules": [KUBE_DNS]}, worker={"egressRules": [KUBE_DNS]})
    condition = dns_condition(first_sync(spec))
    assert condition is not None and condition["status"] == "True"


def test_no_dns_condition_when_egress_is_not_restricted() -> None:
    assert dns_condition(first_sync(with_policy(mode="DenyAllIngress"))) is None
    assert dns_condition(first_sync(cluster_spec(group()))) is None


# -- stories ----------------------------------------------------------------------------------


def test_removing_a_group_removes_its_policy_and_removing_the_field_removes_all() -> None:
    loop = Loop(raycluster(with_policy()))
    settle(loop)
    pods_before = set(loop.pods())
    loop.edit(lambda spec: spec.update(workerGroupSpecs=spec["workerGroupSpecs"][:1]))
    step = loop.step()
    assert "demo-workers-gpu" in step.deleted
    assert {(NETWORK_POLICY, "demo-head"), (NETWORK_POLICY, "demo-workers-cpu")} <= set(
        loop.children
    )
    assert [e.message for e in step.desired.events if e.reason == "DeletedNetworkPolicy"] == [
        "Deleted NetworkPolicy default/demo-workers-gpu"
    ]
    loop.converge()
    kept = set(loop.pods())
    loop.edit(lambda spec: spec.pop("networkPolicy"))
    step = loop.step()
    assert sorted(step.deleted) == ["demo-head", "demo-workers-cpu"]
    assert set(loop.pods()) == kept and kept <= pods_before
    assert not [k for k in loop.children if k[0] == NETWORK_POLICY]
    assert all(k[0] != POD or k[1] in kept for k in loop.children)


def test_changed_rules_update_the_policy_in_place_and_settle() -> None:
    loop = Loop(raycluster(with_policy()))
    settle(loop)
    loop.edit(lambda spec: spec["networkPolicy"].update(head={"egressRules": [KUBE_DNS]}))
    step = loop.step()
    assert (step.created, step.deleted) == ([], [])
    head = loop.children[(NETWORK_POLICY, "demo-head")]
    assert head["spec"]["egress"][1]["to"] == KUBE_DNS["to"]
    assert loop.step().desired.children == step.desired.children
