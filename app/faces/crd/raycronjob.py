"""The RayCronJob CustomResourceDefinition, from its spec model (``app/raycronjob/spec.py``).

``jobTemplate`` embeds the RayJob spec schema itself, so a run's spec is checked when the
RayCronJob is written, not when the run is created. Served as ``ray.io/v1`` only (as KubeRay).
"""

from __future__ import annotations

from app.faces.crd.raycluster import ROOT_RULES
from app.faces.crd.rayjob import rayjob_spec_schema
from app.faces.crd.schema import CRDS, GROUP, JSONSchema, KubernetesTypes, Resource, header
from app.faces.crd.walker import SpecWalker, Tables
from app.raycronjob.schedule import TZ_MESSAGE
from app.raycronjob.spec import MAX_RAYCRONJOB_NAME, RayCronJobSpec

KIND = "RayCronJob"
PLURAL = "raycronjobs"

DESCRIPTIONS: dict[str, str] = {
    KIND: "RayJobs on a cron schedule. Managed by metaray through Metacontroller.",
    "RayCronJobSpec": "The desired schedule and the RayJob each run is made from.",
    "RayCronJobSpec.schedule": "When runs start: five cron fields (minute hour day-of-month "
    "month day-of-week), a descriptor such as @daily, or @every <duration>.",
    "RayCronJobSpec.timeZone": "The IANA time zone the schedule is read in (default UTC).",
    "RayCronJobSpec.suspend": "Start no new runs while true; runs already started go on.",
    "RayCronJobSpec.jobTemplate": "The spec of every RayJob the schedule creates.",
    "RayCronJobSpec.jobMetadata": "Labels and annotations put on every RayJob (a Kueue queue "
    "name, for instance).",
    "JobMetadata.labels": "Labels of each RayJob.",
    "JobMetadata.annotations": "Annotations of each RayJob.",
    "RayCronJobSpec.concurrencyPolicy": "When a run is due while another is active: Allow "
    "(both run), Forbid (wait until none is active) or Replace (start it, then delete the "
    "earlier ones).",
    "RayCronJobSpec.startingDeadlineSeconds": "A due run that cannot start within this many "
    "seconds of its time is skipped (default: no deadline).",
    "RayCronJobSpec.successfulJobsHistoryLimit": "Completed RayJobs to keep (default: all).",
    "RayCronJobSpec.failedJobsHistoryLimit": "Failed RayJobs to keep (default: all).",
}

CONSTRAINTS: dict[str, JSONSchema] = {
    "RayCronJobSpec.schedule": {
        "minLength": 1,
        "x-kubernetes-validations": [{"rule": "!self.contains('TZ')", "message": TZ_MESSAGE}],
    },
    "RayCronJobSpec.timeZone": {"minLength": 1},
}

TABLES = Tables(
    kind=KIND,
    embedded={"RayCronJobSpec.jobTemplate": rayjob_spec_schema},
    constraints=CONSTRAINTS,
    object_rules={},
    descriptions=DESCRIPTIONS,
    # KubeRay's CRD has no default for suspend: a RayCronJob stores only what its author wrote.
    without_default=frozenset({"RayCronJobSpec.suspend"}),
)

ROOT: list[JSONSchema] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_RAYCRONJOB_NAME}",
        "message": f"metadata.name must be at most {MAX_RAYCRONJOB_NAME} characters (each "
        "RayJob it creates adds 11)",
    },
    ROOT_RULES[1],
]

PRINTER_COLUMNS: list[JSONSchema] = [
    {"name": "schedule", "type": "string", "jsonPath": ".spec.schedule"},
    {"name": "timezone", "type": "string", "jsonPath": ".spec.timeZone"},
    {"name": "last schedule", "type": "date", "jsonPath": ".status.lastScheduleTime"},
    {"name": "age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
    {"name": "concurrency", "type": "string", "jsonPath": ".spec.concurrencyPolicy", "priority": 1},
]


def spec_schema(types: KubernetesTypes) -> JSONSchema:
    return SpecWalker(RayCronJobSpec.model_json_schema(), types, TABLES).spec()


def status_schema(types: KubernetesTypes) -> JSONSchema:
    def time(description: str) -> JSONSchema:
        return {"type": "string", "format": "date-time", "description": description}

    def string(description: str) -> JSONSchema:
        return {"type": "string", "description": description}

    return {
        "type": "object",
        "description": "The runs as observed.",
        "properties": {
            "lastScheduleTime": time("The scheduled time of the newest run created."),
            "pendingScheduleTime": time(
                "A scheduled time whose run is decided and about to be created."
            ),
            "lastSuccessfulTime": time("When the newest successful run completed."),
            "active": {
                "type": "array",
                "description": "The RayJobs still running.",
                "x-kubernetes-list-type": "atomic",
                "items": {
                    "type": "object",
                    "properties": {
                        "apiVersion": string("ray.io/v1."),
                        "kind": string("RayJob."),
                        "name": string("The RayJob's name."),
                        "namespace": string("The RayJob's namespace."),
                    },
                },
            },
            "message": string("Why the spec cannot be acted on; absent when it can."),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation this status describes (set by "
                "Metacontroller).",
            },
        },
    }


RAYCRONJOB = Resource(
    kind=KIND,
    plural=PLURAL,
    output=CRDS / f"{GROUP}_{PLURAL}.yaml",
    header=header(KIND, "app/raycronjob/spec.py"),
    description=DESCRIPTIONS[KIND],
    spec=spec_schema,
    status=status_schema,
    root_rules=ROOT,
    printer_columns=PRINTER_COLUMNS,
    versions=("v1",),
)
