"""Per-RayJob gauges with KubeRay's names, computed from the RayJob answers this process gave.

- ``kuberay_job_info{name,namespace,uid}`` = 1;
- ``kuberay_job_deployment_status{...,deployment_status}`` = 1: the answer's jobDeploymentStatus;
- ``kuberay_job_execution_duration_seconds{...,job_deployment_status,retry_count}``: set when an
  answer moves the status from a non-terminal one to Complete, Failed or Retrying (KubeRay's
  rule), to the answer's ``endTime`` (else the shell's now) minus ``startTime``; ``retry_count``
  is ``status.failed`` before the move. Each such series stays until the RayJob goes, so a job
  retried once and then complete shows two (Retrying/0 and Complete/1), as in KubeRay.

The series expire and are shared between uvicorn workers exactly like the per-cluster gauges
(``cluster_gauges.py``): a finalize that releases the RayJob removes them, no answer for
the horizon (an hour by default) expires them. A duration was seen by one worker only (the one that
answered the move), so when workers' rows are merged, the durations of all of them are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from app.shell.observability.cluster_gauges import GaugeTable
from app.shell.observability.summary import Identity

INFO = "kuberay_job_info"
DEPLOYMENT_STATUS = "kuberay_job_deployment_status"
DURATION = "kuberay_job_execution_duration_seconds"
TERMINAL = ("Complete", "Failed")
TIMED = (*TERMINAL, "Retrying")
_FILE_PREFIX = "metaray_jobs_"

Duration = tuple[str, int, float]  # job_deployment_status, retry_count, seconds


@dataclass(frozen=True, slots=True)
class JobSeries:
    name: str
    namespace: str
    uid: str
    deployment_status: str = ""
    durations: tuple[Duration, ...] = ()
    seen: float = 0.0
    gone: bool = False  # a tombstone: the RayJob was finalized

    def with_durations(self, older: JobSeries | None) -> JobSeries:
        """These durations over ``older``'s (a newer one of the same labels wins)."""
        if older is None or not older.durations:
            return self
        mine = {(status, retries) for status, retries, _ in self.durations}
        kept = tuple(d for d in older.durations if (d[0], d[1]) not in mine)
        return replace(self, durations=tuple(sorted((*kept, *self.durations))))


def series_of(parent: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> JobSeries:
    """The gauges' values for one RayJob answer: ``parent`` as sent, ``status`` as answered."""
    job = Identity.of(parent)
    state = _text(status.get("jobDeploymentStatus"))
    previous = parent.get("status")
    previous = previous if isinstance(previous, Mapping) else {}
    before = _text(previous.get("jobDeploymentStatus"))
    durations: tuple[Duration, ...] = ()
    if state in TIMED and before != state and before not in TERMINAL:
        started = _time(status.get("startTime")) or _time(previous.get("startTime"))
        ended = (_time(status.get("endTime")) if state in TERMINAL else None) or now
        if started is not None:
            retries = previous.get("failed")
            retries = retries if isinstance(retries, int) and not isinstance(retries, bool) else 0
            durations = ((state, retries, (ended - started).total_seconds()),)
    return JobSeries(job.name, job.namespace, job.uid, state, durations, seen=now.timestamp())


class JobGauges(GaugeTable[JobSeries]):
    prefix = _FILE_PREFIX

    def observe(self, series: JobSeries) -> None:
        """A RayJob's durations stay from one answer to the next: only a move sets one."""
        super().observe(series.with_durations(self.table.get(series.uid)))

    def tombstone(self, uid: str, now: float) -> JobSeries:
        return JobSeries("", "", uid, seen=now, gone=True)

    def load(self, record: Any) -> JobSeries:
        durations = tuple((str(s), int(r), float(v)) for s, r, v in record.pop("durations", ()))
        return JobSeries(**record, durations=durations)

    def combine(self, newer: JobSeries, older: JobSeries) -> JobSeries:
        return newer if newer.gone or older.gone else newer.with_durations(older)

    def families(self, live: list[JobSeries]) -> Iterator[Metric]:
        ids = ["name", "namespace", "uid"]
        info = GaugeMetricFamily(INFO, "Metadata of each RayJob", labels=ids)
        deployment = GaugeMetricFamily(
            DEPLOYMENT_STATUS,
            "1 for each RayJob's current jobDeploymentStatus",
            labels=[*ids, "deployment_status"],
        )
        duration = GaugeMetricFamily(
            DURATION,
            "Seconds from a RayJob's startTime to its move to Complete, Failed or Retrying",
            labels=[*ids, "job_deployment_status", "retry_count"],
        )
        for s in live:
            labels = [s.name, s.namespace, s.uid]
            info.add_metric(labels, 1)
            deployment.add_metric([*labels, s.deployment_status], 1)
            for state, retries, seconds in s.durations:
                duration.add_metric([*labels, state, str(retries)], seconds)
        yield from (info, deployment, duration)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
