"""A small in-memory stand-in for Metacontroller, to drive metaray through many syncs.

It applies answers the way Metacontroller v4.17 does: it deletes every observed child left out
of the answer, creates every desired child it does not observe (adding the ``controller-uid``
label, an owner reference and the last-applied annotation), never updates pods (``OnDelete``),
updates Services, NetworkPolicies, Issuers and Certificates in place, never updates Secrets
(``OnDelete``; the API server turns their ``stringData`` into base64 ``data``), and writes the
returned status. cert-manager is played by ``issue_certificates``.
Deleted pods can linger with a ``deletionTimestamp`` for a step, as real ones do while they
terminate.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.core import kinds
from app.core.desired import Desired
from app.hooks.request import LAST_APPLIED, decode
from app.hooks.response import encode
from app.raycluster.sync import sync

POD = "Pod.v1"
SERVICE = "Service.v1"
SECRET = "Secret.v1"
NETWORK_POLICY = "NetworkPolicy.networking.k8s.io/v1"
ISSUER = "Issuer.cert-manager.io/v1"
CERTIFICATE = "Certificate.cert-manager.io/v1"
IN_PLACE = (SERVICE, NETWORK_POLICY, ISSUER, CERTIFICATE)
START = datetime(2026, 1, 1, tzinfo=UTC)


def raycluster(
    spec: dict[str, Any],
    name: str = "demo",
    namespace: str = "default",
    uid: str = "0f0f0f0f-1111-2222-3333-444444444444",
    api_version: str = "ray.io/v1",
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "RayCluster",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
    }


def container(
    name: str = "ray", cpu: str = "1", memory: str = "2Gi", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "image": "rayproject/ray:2.52.0",
        "resources": {
            "limits": {"cpu": cpu, "memory": memory},
            "requests": {"cpu": cpu, "memory": memory},
        },
        **extra,
    }


def group(
    name: str = "workers",
    replicas: int | None = 1,
    minimum: int = 0,
    maximum: int = 10,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "groupName": name,
        "minReplicas": minimum,
        "maxReplicas": maximum,
        "rayStartParams": {},
        "template": {"spec": {"containers": [container("ray-worker")]}},
        **extra,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return spec


def cluster_spec(*groups: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "rayVersion": "2.52.0",
        "headGroupSpec": {
            "rayStartParams": {},
            "template": {
                "spec": {
                    "containers": [
                        container(
                            "ray-head",
                            ports=[
                                {"containerPort": 6379, "name": "gcs-server"},
                                {"containerPort": 8265, "name": "dashboard"},
                                {"containerPort": 10001, "name": "client"},
                            ],
                        )
                    ]
                }
            },
        },
        "workerGroupSpecs": list(groups),
        **extra,
    }


@dataclass
class Step:
    """One sync: what was asked, what was answered, and what the loop did with it."""

    request: dict[str, Any]
    desired: Desired
    created: list[str]
    deleted: list[str]


@dataclass
class Loop:
    parent: dict[str, Any]
    hook_version: str = "v2"
    linger: bool = True
    call: Callable[[bytes], tuple[int, bytes]] | None = None
    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    now: datetime = START
    history: list[Step] = field(default_factory=list)
    # Pods that stay terminating (a finalizer, a long grace period) until taken out of here.
    held: set[str] = field(default_factory=set)
    # The child types the CompositeController registers (with config/components/mtls).
    registered: frozenset[str] = kinds.MANAGED
    _serial: int = 0
    _draws: int = 0

    def entropy(self) -> bytes:
        """Different "random" bytes on every call, as the shell's are: a token that changed
        between syncs would show up."""
        self._draws += 1
        return hashlib.sha256(f"entropy-{self._draws}".encode()).digest()

    # -- what Metacontroller sends ---------------------------------------------------------
    def request(self) -> dict[str, Any]:
        # Like Metacontroller, a key for every registered child type, even without children.
        grouped: dict[str, dict[str, Any]] = {kind: {} for kind in sorted(self.registered)}
        namespace = self.parent["metadata"]["namespace"]
        for (kind, name), obj in sorted(self.children.items()):
            key = f"{namespace}/{name}" if self.hook_version == "v2" else name
            grouped.setdefault(kind, {})[key] = obj
        return {
            "controller": {
                "apiVersion": "metacontroller.k8s.io/v1alpha1",
                "kind": "CompositeController",
                "metadata": {"name": "metaray"},
            },
            "parent": self.parent,
            "children": grouped,
            "related": {},
            "finalizing": False,
        }

    def answer(self, body: bytes) -> tuple[Desired | None, dict[str, Any]]:
        if self.call is not None:
            status, raw = self.call(body)
            assert status == 200, raw
            return None, orjson.loads(raw)
        request = decode(body)
        desired = sync(request.parent, request.observed, entropy=self.entropy())
        return desired, orjson.loads(encode(desired))

    # -- one sync, applied -----------------------------------------------------------------
    def step(self) -> Step:
        self.now += timedelta(seconds=1)
        self._vanish_terminated()
        request = self.request()
        desired, answer = self.answer(orjson.dumps(request))
        wanted = {
            (f"{c['kind']}.{c['apiVersion']}", c["metadata"]["name"]): c for c in answer["children"]
        }
        deleted = [
            name
            for key, name in list(self.children)
            if (key, name) not in wanted and self._delete((key, name))
        ]
        created = []
        for key, child in wanted.items():
            if key not in self.children:
                self._create(key, child)
                created.append(key[1])
            elif key[0] in IN_PLACE:
                self._update_in_place(key, child)
        self.parent = {
            **self.parent,
            "status": {
                **answer["status"],
                "observedGeneration": self.parent["metadata"]["generation"],
            },
        }
        step = Step(
            request,
            desired or Desired(answer["children"], answer["status"]),
            sorted(created),
            sorted(deleted),
        )
        self.history.append(step)
        return step

    def converge(self, max_steps: int = 12) -> Step:
        """Sync until an answer creates and deletes nothing and nothing is terminating."""
        for _ in range(max_steps):
            step = self.step()
            if not step.created and not step.deleted and not self.terminating():
                return step
        raise AssertionError(f"no fixpoint within {max_steps} syncs")

    # -- the world changing ----------------------------------------------------------------
    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        parent = copy.deepcopy(self.parent)
        change(parent["spec"])
        parent["metadata"]["generation"] += 1
        self.parent = parent

    def run_pods(self, ready: bool = True, only: Collection[str] | None = None) -> None:
        """The kubelet starts every pending pod (or only those named in ``only``)."""
        for (kind, name), obj in self.children.items():
            if only is not None and name not in only:
                continue
            if kind == POD and obj["status"]["phase"] == "Pending" and not _terminating(obj):
                self._serial += 1
                obj["status"] = {
                    "phase": "Running",
                    "podIP": f"10.0.0.{self._serial}",
                    "startTime": self.stamp(),
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True" if ready else "False",
                            "lastTransitionTime": self.stamp(),
                        }
                    ],
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "ready": ready,
                            "state": {"running": {"startedAt": self.stamp()}},
                        }
                        for c in obj["spec"]["containers"]
                    ],
                }

    def issue_certificates(self) -> None:
        """cert-manager issues every Certificate: Ready, at its current generation."""
        for (kind, _), obj in self.children.items():
            if kind == CERTIFICATE:
                obj["status"] = {
                    "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": self.stamp()}
                    ]
                }

    def finish(self, name: str, phase: str = "Failed") -> None:
        obj = self.children[(POD, name)]
        obj["status"] = {
            **obj["status"],
            "phase": phase,
            "reason": "Error",
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": self.stamp()}
            ],
        }

    # -- queries ---------------------------------------------------------------------------
    def pods(self, group: str | None = None, *, live: bool = True) -> list[str]:
        names = []
        for (kind, name), obj in self.children.items():
            labels = obj["metadata"].get("labels", {})
            if kind != POD or (live and _terminating(obj)):
                continue
            if group is None or labels.get("ray.io/group") == group:
                names.append(name)
        return sorted(names)

    def workers(self, group: str) -> list[str]:
        return [
            n
            for n in self.pods(group)
            if self.children[(POD, n)]["metadata"]["labels"].get("ray.io/node-type") == "worker"
        ]

    def heads(self) -> list[str]:
        return self.pods("headgroup")

    def terminating(self) -> list[str]:
        return sorted(n for (k, n), o in self.children.items() if k == POD and _terminating(o))

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- how Metacontroller and the API server treat children -------------------------------
    def _create(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        uid = self.parent["metadata"]["uid"]
        obj = copy.deepcopy(desired)
        meta = obj["metadata"]
        meta.setdefault("labels", {}).setdefault("controller-uid", uid)
        meta.setdefault("namespace", self.parent["metadata"]["namespace"])
        last_applied = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        meta.setdefault("annotations", {})[LAST_APPLIED] = last_applied
        self._serial += 1
        meta |= {
            "uid": f"child-{self._serial}",
            "resourceVersion": str(self._serial),
            "creationTimestamp": self.stamp(),
            "ownerReferences": [
                {
                    "apiVersion": self.parent["apiVersion"],
                    "kind": "RayCluster",
                    "name": self.parent["metadata"]["name"],
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "metacontroller",
                    "operation": "Update",
                    "time": self.stamp(),
                    "fieldsV1": {"f:metadata": {}},
                }
            ],
        }
        if key[0] == POD:
            obj["spec"] |= {
                "restartPolicy": obj["spec"].get("restartPolicy", "Always"),
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
            }
            obj["status"] = {"phase": "Pending", "qosClass": "Guaranteed"}
        elif key[0] == SERVICE:
            spec = obj["spec"]
            spec.setdefault("clusterIP", f"10.96.0.{self._serial % 250}")
            for port in spec.get("ports", []):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port["port"])
            obj["status"] = {"loadBalancer": {}}
        elif key[0] == SECRET:
            string_data = obj.pop("stringData", {})
            obj["data"] = {
                **obj.get("data", {}),
                **{k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()},
            }
        self.children[key] = obj

    def _update_in_place(self, key: tuple[str, str], desired: dict[str, Any]) -> None:
        obj = self.children[key]
        applied = json.loads(obj["metadata"]["annotations"][LAST_APPLIED])
        wanted = copy.deepcopy(desired)
        wanted["metadata"].setdefault("labels", {}).setdefault(
            "controller-uid", self.parent["metadata"]["uid"]
        )
        if applied == wanted:
            return
        # A field left out of the new answer goes (three-way merge); a Service keeps what the
        # API server set (clusterIP, ...).
        server_set = obj["spec"] if key[0] == SERVICE else {}
        obj["spec"] = {**server_set, **wanted["spec"]}
        obj["metadata"]["labels"] = wanted["metadata"]["labels"]
        obj["metadata"]["annotations"] = {
            **wanted["metadata"].get("annotations", {}),
            LAST_APPLIED: json.dumps(wanted, sort_keys=True, separators=(",", ":")),
        }

    def _delete(self, key: tuple[str, str]) -> bool:
        obj = self.children[key]
        if _terminating(obj):
            return False
        if self.linger and key[0] == POD:
            obj["metadata"]["deletionTimestamp"] = self.stamp()
        else:
            del self.children[key]
        return True

    def _vanish_terminated(self) -> None:
        for key in [k for k, o in self.children.items() if _terminating(o)]:
            if key[1] not in self.held:
                del self.children[key]


def _terminating(obj: dict[str, Any]) -> bool:
    return "deletionTimestamp" in obj["metadata"]
