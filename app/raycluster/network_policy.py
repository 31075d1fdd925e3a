"""NetworkPolicies (``spec.networkPolicy``): one for the head, one per worker group.

Each policy denies what its mode restricts, then allows all traffic between the cluster's own
pods and whatever the user's rules add. KubeRay adds no DNS rule: under DenyAll and
DenyAllEgress the pods cannot resolve the head's name unless a user rule allows port 53.
metaray says so in a condition (``NetworkPolicyDNSEgress``) and a Warning Event.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from app.core import kinds
from app.core.events import WARNING, Event
from app.core.labels import K8S_JOB_MODE, ORIGINATED_CRD, ORIGINATED_NAME, SUBMISSION_MODE
from app.core.observed import Observed
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.ports import dashboard_listen_port
from app.raycluster.spec import (
    JSONObject,
    NetworkPolicyOptions,
    NetworkPolicyRules,
    WorkerGroupSpec,
)

DNS_CONDITION = "NetworkPolicyDNSEgress"
_DNS_PORTS = (53, "53", "dns", "dns-tcp")


def head_policy_name(cluster: str) -> str:
    return f"{cluster}-head"


def worker_policy_name(cluster: str, group: str) -> str:
    return f"{cluster}-workers-{group}"


def network_policies(cluster: Cluster) -> list[JSONObject]:
    """The head's policy, then each worker group's, in spec order."""
    options = cluster.spec.networkPolicy
    if options is None:
        return []
    policies = [_head(cluster, options)]
    policies += [_worker(cluster, options, group) for group in cluster.spec.workerGroupSpecs]
    return policies


def _head(cluster: Cluster, options: NetworkPolicyOptions) -> JSONObject:
    selector = {lbl.CLUSTER: cluster.name, lbl.NODE_TYPE: lbl.HEAD}
    submitter = _submitter_rule(cluster)
    extra = [] if submitter is None else [submitter]
    return _policy(
        cluster,
        head_policy_name(cluster.name),
        lbl.HEAD_GROUP,
        selector,
        options,
        options.head,
        extra,
    )


def _worker(cluster: Cluster, options: NetworkPolicyOptions, group: WorkerGroupSpec) -> JSONObject:
    selector = {lbl.CLUSTER: cluster.name, lbl.NODE_TYPE: lbl.WORKER, lbl.GROUP: group.groupName}
    return _policy(
        cluster,
        worker_policy_name(cluster.name, group.groupName),
        group.groupName,
        selector,
        options,
        group_rules(options, group.groupName),
        [],
    )


def group_rules(options: NetworkPolicyOptions, group: str) -> NetworkPolicyRules | None:
    """A ``workerGroups`` entry replaces ``worker`` for its group."""
    for entry in options.workerGroups:
        if entry.groupName == group:
            return NetworkPolicyRules(
                ingressRules=entry.ingressRules, egressRules=entry.egressRules
            )
    return options.worker


def _policy(
    cluster: Cluster,
    name: str,
    group: str,
    selector: dict[str, str],
    options: NetworkPolicyOptions,
    rules: NetworkPolicyRules | None,
    extra_ingress: list[JSONObject],
) -> JSONObject:
    own_pods = [{"podSelector": {"matchLabels": {lbl.CLUSTER: cluster.name}}}]
    spec: JSONObject = {"podSelector": {"matchLabels": selector}, "policyTypes": []}
    if options.mode in ("DenyAll", "DenyAllIngress"):
        spec["policyTypes"].append("Ingress")
        user = _normalised(rules.ingressRules if rules else [])
        spec["ingress"] = [{"from": own_pods}, *extra_ingress, *user]
    if options.mode in ("DenyAll", "DenyAllEgress"):
        spec["policyTypes"].append("Egress")
        user = _normalised(rules.egressRules if rules else [])
        spec["egress"] = [{"to": own_pods}, *user]
    labels = {**lbl.cluster_labels(cluster.name, cluster.uid), lbl.GROUP: group}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": cluster.namespace,
            "labels": dict(sorted(labels.items())),
        },
        "spec": spec,
    }


def _normalised(rules: Iterable[JSONObject]) -> list[JSONObject]:
    """A port without a protocol is TCP (the API server's default): written out, so that what
    metaray answers equals what the API server stores and no update is ever needed."""
    result = []
    for rule in rules:
        rule = copy.deepcopy(rule)
        for port in rule.get("ports") or []:
            port.setdefault("protocol", "TCP")
        result.append(rule)
    return result


def _submitter_rule(cluster: Cluster) -> JSONObject | None:
    """A RayJob in K8sJobMode submits from its own pod to the head's dashboard port."""
    owner = cluster.controller
    if cluster.labels.get(SUBMISSION_MODE) != K8S_JOB_MODE or owner is None:
        return None
    api_version, kind, name = owner
    if kind != "RayJob" or not api_version.startswith("ray.io/"):
        return None
    submitter = {ORIGINATED_NAME: name, ORIGINATED_CRD: "RayJob"}
    return {
        "from": [{"podSelector": {"matchLabels": submitter}}],
        "ports": [
            {
                "port": dashboard_listen_port(cluster.spec.headGroupSpec.rayStartParams),
                "protocol": "TCP",
            }
        ],
    }


# -- DNS: beyond KubeRay -------------------------------------------------------------------------


def without_dns(cluster: Cluster) -> list[str]:
    """The policies that restrict egress without any user rule that may allow port 53."""
    options = cluster.spec.networkPolicy
    if options is None or options.mode == "DenyAllIngress":
        return []
    missing = []
    if not _allows_dns(options.head):
        missing.append(head_policy_name(cluster.name))
    for group in cluster.spec.workerGroupSpecs:
        if not _allows_dns(group_rules(options, group.groupName)):
            missing.append(worker_policy_name(cluster.name, group.groupName))
    return missing


def _allows_dns(rules: NetworkPolicyRules | None) -> bool:
    return rules is not None and any(_rule_allows_dns(rule) for rule in rules.egressRules)


def _rule_allows_dns(rule: Mapping[str, Any]) -> bool:
    """Port 53 (or every port) to some peer: metaray cannot tell whether the peer is the
    cluster's DNS, so any such rule counts."""
    ports = rule.get("ports") or []
    if not ports:
        return True
    for port in ports:
        number, end = port.get("port"), port.get("endPort")
        if number is None or number in _DNS_PORTS:
            return True
        if isinstance(number, int) and isinstance(end, int) and number <= 53 <= end:
            return True
    return False


def dns_condition(cluster: Cluster) -> dict[str, tuple[str, str, str]]:
    """``NetworkPolicyDNSEgress``, only while a policy restricts egress."""
    options = cluster.spec.networkPolicy
    if options is None or options.mode == "DenyAllIngress":
        return {}
    missing = without_dns(cluster)
    if missing:
        message = (
            f"NetworkPolicies {', '.join(missing)} deny egress and no egress rule allows port "
            "53: the pods cannot resolve names (add a rule to kube-dns)"
        )
        return {DNS_CONDITION: ("False", "NoDNSEgressRule", message)}
    return {
        DNS_CONDITION: (
            "True",
            "DNSEgressRuleFound",
            "Every NetworkPolicy that denies egress has a rule that may allow DNS (port 53)",
        )
    }


def events(
    cluster: Cluster,
    observed: Observed,
    built: Iterable[Mapping[str, Any]],
    previous: Mapping[str, Any],
) -> list[Event]:
    """Deleted policies (a group or the field removed), and a Warning when DNS turns blocked."""
    found: list[Event] = []
    wanted = {child["metadata"]["name"] for child in built if child["kind"] == "NetworkPolicy"}
    for policy in observed.of_kind(kinds.NETWORK_POLICY):
        if policy.name not in wanted:
            message = f"Deleted NetworkPolicy {cluster.namespace}/{policy.name}"
            found.append(Event("Normal", "DeletedNetworkPolicy", message))
    condition = dns_condition(cluster).get(DNS_CONDITION)
    if condition is not None and condition[0] == "False" and _was_not_false(previous):
        found.append(Event(WARNING, "NetworkPolicyBlocksDNS", condition[2]))
    return found


def _was_not_false(previous: Mapping[str, Any]) -> bool:
    conditions = previous.get("conditions")
    if not isinstance(conditions, list):
        return True
    return not any(
        isinstance(c, Mapping) and c.get("type") == DNS_CONDITION and c.get("status") == "False"
        for c in conditions
    )
