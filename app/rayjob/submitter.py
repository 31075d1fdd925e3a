"""The submitter: a Job (K8sJobMode) or a head-pod container (SidecarMode) that runs metaray's
submitter script against the cluster's dashboard, and whose exit code is the Ray job's result.

The entrypoint travels in an environment variable and is handed to Ray as it is: it is never
pasted into a shell line of the submitter (KubeRay's quoting bugs, kuberay#3561, #3802).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from app.raycluster import labels as lbl
from app.raycluster.spec import JSONObject
from app.rayjob import labels as jl
from app.rayjob.names import stopper_job_name, submitter_job_name
from app.rayjob.spec import RayJob

CONTAINER = "ray-job-submitter"
SUCCEEDED_EXIT, FAILED_EXIT, STOPPED_EXIT, NOT_FOUND_EXIT = 0, 64, 65, 66
# KubeRay's default submitter resources.
RESOURCES: JSONObject = {
    "requests": {"cpu": "500m", "memory": "200Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


def submitter_job(
    rayjob: RayJob,
    script: str,
    image: str,
    dashboard: str,
    ray_job_id: str,
    token: list[JSONObject],
) -> JSONObject:
    """The K8sJobMode submitter Job, named like the RayJob (KubeRay's name). ``image``: the
    cluster's head image, for a container that names none; ``dashboard``: the derived address
    (``app.rayjob.address``); ``token``: the variables that give it the cluster's auth token
    (authOptions), if any."""
    template = _template(rayjob, image)
    pod_spec = template["spec"]
    ours = _wire(
        pod_spec["containers"][0], rayjob, script, [*_addressing(dashboard, ray_job_id), *token]
    )
    spec: JSONObject = {"backoffLimit": rayjob.submitter_backoff_limit, "template": template}
    if ours and pod_spec.get("restartPolicy") == "Never":
        spec["podFailurePolicy"] = failure_policy(pod_spec["containers"][0]["name"])
    return _kubernetes_job(rayjob, submitter_job_name(rayjob.name), spec)


def stopper_job(
    rayjob: RayJob,
    script: str,
    image: str,
    dashboard: str,
    ray_job_id: str,
    token: list[JSONObject],
) -> JSONObject:
    """A short Job that stops the Ray job on a cluster the RayJob does not own (finalize)."""
    container: JSONObject = {
        "name": CONTAINER,
        "image": image,
        "resources": copy.deepcopy(RESOURCES),
        "env": [
            *_addressing(dashboard, ray_job_id),
            *token,
            _env("METARAY_SUBMITTER_MODE", "stop"),
        ],
        "command": ["python", "-c", script],
    }
    template = {
        "metadata": {"labels": jl.submitter_labels(rayjob.name)},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }
    return _kubernetes_job(
        rayjob, stopper_job_name(rayjob.name), {"backoffLimit": 1, "template": template}
    )


def sidecar(
    rayjob: RayJob, script: str, image: str, dashboard_port: int, ray_job_id: str
) -> JSONObject:
    """The SidecarMode submitter: a container of the head pod, talking to its own dashboard."""
    return {
        "name": CONTAINER,
        "image": image,
        "resources": copy.deepcopy(RESOURCES),
        "env": _submit_env(rayjob, f"127.0.0.1:{dashboard_port}", ray_job_id),
        "command": ["python", "-c", script],
    }


def failure_policy(container: str) -> JSONObject:
    """A Ray job's own result ends the Job at once; an evicted pod costs no retry."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": container,
                    "operator": "In",
                    "values": [FAILED_EXIT, STOPPED_EXIT, NOT_FOUND_EXIT],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }


def _kubernetes_job(rayjob: RayJob, name: str, spec: JSONObject) -> JSONObject:
    labels = {**jl.submitter_labels(rayjob.name), lbl.CONTROLLER_UID: rayjob.uid}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": rayjob.namespace,
            "labels": dict(sorted(labels.items())),
        },
        "spec": spec,
    }


def template_image(rayjob: RayJob) -> str:
    """The image of the first container of the user's submitter template, if it names one."""
    template = rayjob.spec.submitterPodTemplate
    spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    image = first.get("image") if isinstance(first, Mapping) else None
    return image if isinstance(image, str) else ""


def _template(rayjob: RayJob, image: str) -> JSONObject:
    """The user's submitter template (restartPolicy Never unless it says otherwise; its first
    container given ``image`` if it names none), or KubeRay's default: one container of
    ``image``."""
    if rayjob.spec.submitterPodTemplate is not None:
        template: JSONObject = copy.deepcopy(rayjob.spec.submitterPodTemplate)
        template.setdefault("spec", {}).setdefault("restartPolicy", "Never")
        containers = template["spec"].get("containers") or [{"name": CONTAINER}]
        template["spec"]["containers"] = containers
        if not containers[0].get("image"):
            containers[0]["image"] = image
    else:
        template = {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": CONTAINER,
                        "image": image,
                        "resources": RESOURCES,
                    }
                ],
            }
        }
        template = copy.deepcopy(template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **jl.submitter_labels(rayjob.name)}
    return template


def _wire(container: JSONObject, rayjob: RayJob, script: str, target: list[JSONObject]) -> bool:
    """Give the submitter container its ``target`` (address, job id, token) and (unless it
    brings its own command) metaray's script and the job's settings. True when the script is
    metaray's. The target overrides a variable of the same name in the user's template: the
    token must never go to an address other than the derived one."""
    ours = not container.get("command")
    wanted = [*target, *_rayjob_env(rayjob)] if ours else target
    targeted = {e["name"] for e in target}
    users = [
        e
        for e in container.get("env") or []
        if not (isinstance(e, Mapping) and e.get("name") in targeted)
    ]
    present = {e.get("name") for e in users if isinstance(e, Mapping)}
    container["env"] = [*users, *(e for e in wanted if e["name"] not in present)]
    if ours:
        container["command"] = ["python", "-c", script]
        container.pop("args", None)
    return ours


def _addressing(dashboard: str, ray_job_id: str) -> list[JSONObject]:
    return [
        _env("PYTHONUNBUFFERED", "1"),
        _env("RAY_DASHBOARD_ADDRESS", dashboard),
        _env("RAY_JOB_SUBMISSION_ID", ray_job_id),
    ]


def _submit_env(rayjob: RayJob, dashboard: str, ray_job_id: str) -> list[JSONObject]:
    return [*_addressing(dashboard, ray_job_id), *_rayjob_env(rayjob)]


def _rayjob_env(rayjob: RayJob) -> list[JSONObject]:
    """The job's own settings, for metaray's script."""
    spec = rayjob.spec
    env = [_env("METARAY_ENTRYPOINT", (spec.entrypoint or "").strip())]
    optional: list[tuple[str, Any]] = [
        ("METARAY_RUNTIME_ENV_JSON", rayjob.runtime_env),
        ("METARAY_METADATA_JSON", spec.metadata or None),
        ("METARAY_ENTRYPOINT_NUM_CPUS", spec.entrypointNumCpus or None),
        ("METARAY_ENTRYPOINT_NUM_GPUS", spec.entrypointNumGpus or None),
        ("METARAY_ENTRYPOINT_RESOURCES", rayjob.entrypoint_resources),
    ]
    for name, value in optional:
        if value is not None:
            env.append(_env(name, json.dumps(value, sort_keys=True, separators=(",", ":"))))
    return env


def _env(name: str, value: str) -> JSONObject:
    return {"name": name, "value": value}


def head_image(cluster_spec: Any) -> str:
    """The head's Ray image in a cluster's raw spec: the submitter needs the same Ray."""
    head = cluster_spec.get("headGroupSpec") if isinstance(cluster_spec, Mapping) else None
    template = head.get("template") if isinstance(head, Mapping) else None
    pod_spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    image = first.get("image") if isinstance(first, Mapping) else None
    return image if isinstance(image, str) else ""
