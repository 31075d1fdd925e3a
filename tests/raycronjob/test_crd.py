"""The RayCronJob CRD admits KubeRay's samples unchanged and refuses what KubeRay refuses; the
RayJobs a RayCronJob creates (the golden renders of its samples) are admitted by the RayJob CRD,
and its status is stored without pruning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.faces.crd import CRDS
from app.raycronjob.spec import parse_raycronjob
from tests.crd.schema_tools import Admission, Schema, nodes, pruned
from tests.golden.render_samples import golden_path
from tests.raycronjob.loop import cron_object

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("ray-cronjob*.yaml"))


def _schema(name: str, version: str = "v1") -> Schema:
    crd = yaml.safe_load((CRDS / name).read_text())
    found: Schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"][
        "openAPIV3Schema"
    ]
    return found


@pytest.fixture(scope="module")
def cron_admission() -> Admission:
    return Admission(_schema("ray.io_raycronjobs.yaml"))


@pytest.fixture(scope="module")
def rayjob_admission() -> Admission:
    return Admission(_schema("ray.io_rayjobs.yaml"))


def test_kuberays_two_samples_are_there() -> None:
    assert [p.name for p in SAMPLES] == [
        "ray-cronjob-timezone.sample.yaml",
        "ray-cronjob.sample.yaml",
    ]


def test_served_as_v1_only_with_kuberays_columns() -> None:
    crd = yaml.safe_load((CRDS / "ray.io_raycronjobs.yaml").read_text())
    [version] = crd["spec"]["versions"]
    assert (
        version["name"] == "v1" and version["storage"] and version["subresources"] == {"status": {}}
    )
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:5] == ["schedule", "timezone", "last schedule", "age", "suspend"]
    assert crd["spec"]["names"]["categories"] == ["all"]


def test_the_schema_is_structural() -> None:
    for path, node in nodes(_schema("ray.io_raycronjobs.yaml")):
        assert "type" in node or "x-kubernetes-int-or-string" in node, path


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_is_admitted_unchanged_and_the_hook_accepts_it(
    cron_admission: Admission, sample: Path
) -> None:
    cron = yaml.safe_load(sample.read_text())
    cron["metadata"]["namespace"] = "default"
    assert cron_admission.errors(cron) == []
    assert pruned(cron_admission.schema, cron) == []
    assert parse_raycronjob(cron).name == cron["metadata"]["name"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_each_rendered_run_is_admitted_by_the_rayjob_crd(
    rayjob_admission: Admission, cron_admission: Admission, sample: Path
) -> None:
    answer = yaml.safe_load(golden_path(sample).read_text())
    assert [c["kind"] for c in answer["children"]] == ["RayJob"]
    for run in answer["children"]:
        assert rayjob_admission.errors(run) == []
        assert pruned(rayjob_admission.schema, run) == []
        assert len(run["metadata"]["name"]) <= 47
    stored = {**cron_object(), "status": {**answer["status"], "observedGeneration": 1}}
    assert pruned(cron_admission.schema, stored) == []
    assert cron_admission.schema_errors(stored) == []


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"metadata": {"name": "c" * 37}}, "at most 36"),
        ({"spec": {"schedule": "TZ=Asia/Taipei 0 0 * * *"}}, "use timeZone field instead"),
        ({"spec": {"schedule": "CRON_TZ=UTC 0 0 * * *"}}, "use timeZone field instead"),
        ({"spec": {"timeZone": ""}}, "timeZone"),
        ({"spec": {"concurrencyPolicy": "Sometimes"}}, "concurrencyPolicy"),
        ({"spec": {"successfulJobsHistoryLimit": -1}}, "successfulJobsHistoryLimit"),
        ({"spec": {"jobTemplate": {"submissionMode": "Batch"}}}, "submissionMode"),
    ],
)
def test_the_crd_refuses_what_the_hook_refuses(
    cron_admission: Admission, change: dict[str, Any], refused: str
) -> None:
    cron = cron_object()
    cron["metadata"] |= change.get("metadata", {})
    for key, value in change.get("spec", {}).items():
        cron["spec"][key] = {**cron["spec"][key], **value} if key == "jobTemplate" else value
    assert any(refused in e for e in cron_admission.errors(cron)), cron_admission.errors(cron)
