"""The label and annotation keys metaray puts on what it creates: KubeRay's, so its tooling,
the Ray autoscaler and users' selectors keep working. One place for every key that more than one
core reads or writes."""

from __future__ import annotations

# Every Ray pod and every child of a RayCluster.
CLUSTER = "ray.io/cluster"
NODE_TYPE = "ray.io/node-type"
GROUP = "ray.io/group"
IDENTIFIER = "ray.io/identifier"
IS_RAY_NODE = "ray.io/is-ray-node"
APP_NAME = "app.kubernetes.io/name"
CREATED_BY = "app.kubernetes.io/created-by"
CONTROLLER_UID = "controller-uid"

HEAD = "head"
WORKER = "worker"
HEAD_GROUP = "headgroup"
APP_NAME_VALUE = "kuberay"
CREATED_BY_VALUE = "kuberay-operator"

# What ties a RayCluster or a submitter Job to the RayJob that made it.
ORIGINATED_NAME = "ray.io/originated-from-cr-name"
ORIGINATED_CRD = "ray.io/originated-from-crd"
SUBMISSION_MODE = "ray.io/job-submission-mode"
RAYJOB_CRD = "RayJob"
K8S_JOB_MODE = "K8sJobMode"
