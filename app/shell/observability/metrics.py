"""metaray's Prometheus metrics: what each answer did, how long it took, Events posted.

Each app has its own registry (two apps in one process, as in tests, do not share series).
With ``PROMETHEUS_MULTIPROC_DIR`` set (several uvicorn workers), prometheus_client keeps
counters and histograms in per-process files there and /metrics merges every worker's.
"""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from app.shell.observability import job_gauges, service_gauges
from app.shell.observability.cluster_gauges import ClusterGauges, series_of
from app.shell.observability.job_gauges import JobGauges
from app.shell.observability.service_gauges import ServiceGauges
from app.shell.observability.summary import RAYCLUSTER, RAYCRONJOB, RAYJOB, RAYSERVICE, Answer

CLUSTER_HOOKS = ("sync", "finalize")
RAYJOB_HOOKS = ("rayjob_sync", "rayjob_finalize")
HOOKS = (*CLUSTER_HOOKS, *RAYJOB_HOOKS)
CHILD_KINDS = (
    "Pod",
    "Service",
    "Ingress",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Job",
    "RayCluster",
)
# What a RayJob answer deletes: its RayCluster (retry, suspend, teardown), its submitter Job.
DELETED_CHILD_KINDS = ("RayCluster", "Job")
DELETE_REASONS = (
    "workers_to_delete",
    "failed",
    "surplus",
    "suspended",
    "group_removed",
    "template_changed",
    "cluster_deleted",
    "other",
)
EVENT_OUTCOMES = ("created", "patched", "rejected", "unreachable")
# DeleteSelf (app/shell/kube/janitor.py): deleted; not_found (404) and conflict (409: the uid
# precondition failed, a RayJob of the same name was recreated) are done as well; rejected
# (another HTTP error), unreachable and dropped (queue full or shut down) will be asked again.
DELETION_OUTCOMES = ("deleted", "not_found", "conflict", "rejected", "unreachable", "dropped")
LABEL_OUTCOMES = ("patched", *DELETION_OUTCOMES[1:])
# Decoding a small request takes ~100 us, a 1,000-pod one ~100 ms: start well below 1 ms.
SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
PODS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# Buckets for the instrumentator's per-handler request latency (its default is 0.1, 0.5, 1).
HTTP_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)


@dataclass(frozen=True, slots=True)
class Timings:
    decode: float
    compute: float
    encode: float


class Metrics:
    def __init__(
        self,
        *,
        horizon_seconds: float = 3600.0,
        directory: str | None = None,
        clock: Callable[[], float] = time.time,
        process_id: Callable[[], int] = os.getpid,
    ) -> None:
        self.directory = directory
        self.clock = clock
        # The `_created` timestamp series double every counter's output for no PromQL use.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry()
        if directory is None:  # process metrics make no sense merged across workers
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                registry.register(collector)
        self.pods = _histogram(
            "metaray_sync_pods", "Observed pods per hook request", PODS, registry, CLUSTER_HOOKS
        )
        self.decode = _histogram(
            "metaray_sync_decode_seconds", "Decoding a request", SECONDS, registry
        )
        self.compute = _histogram(
            "metaray_sync_compute_seconds", "Computing the answer (the core)", SECONDS, registry
        )
        self.encode = _histogram(
            "metaray_sync_encode_seconds", "Encoding the answer", SECONDS, registry
        )
        self.created = _counter(
            "metaray_children_created",
            "Children answered that were not observed",
            "kind",
            CHILD_KINDS,
            registry,
        )
        self.deleted = _counter(
            "metaray_pods_deleted",
            "Live pods left out of an answer (deleted)",
            "reason",
            DELETE_REASONS,
            registry,
        )
        self.children_deleted = _counter(
            "metaray_children_deleted",
            "Live children other than pods left out of a RayJob answer (deleted)",
            "kind",
            DELETED_CHILD_KINDS,
            registry,
        )
        self.rayjob_deletions = _counter(
            "metaray_rayjob_deletions",
            "RayJobs deleted for their DeleteSelf policy, by outcome",
            "outcome",
            DELETION_OUTCOMES,
            registry,
        )
        self.head_labels = _counter(
            "metaray_head_serve_labels",
            "ray.io/serve label patches of RayService head pods, by outcome",
            "outcome",
            LABEL_OUTCOMES,
            registry,
        )
        self.events_posted = _counter(
            "metaray_events_posted",
            "Kubernetes Events sent to the API server",
            "outcome",
            EVENT_OUTCOMES,
            registry,
        )
        self.cache_hits = _counter(
            "metaray_answer_cache_hits",
            "Answers served from the cache of identical requests (no decode, no compute)",
            "hook",
            CLUSTER_HOOKS,  # RayJob answers depend on the clock: never cached
            registry,
        )
        self.events_dropped = Counter(
            "metaray_events_dropped", "Events not sent: the queue was full", registry=registry
        )
        # A parent's series go when a finalize releases it, or ``horizon_seconds`` after the
        # last answer about it (settings.py says why that long).
        self.clusters = ClusterGauges(horizon_seconds, clock, directory, process_id)
        registry.register(self.clusters)
        self.jobs = JobGauges(horizon_seconds, clock, directory, process_id)
        registry.register(self.jobs)
        self.services = ServiceGauges(horizon_seconds, clock, directory, process_id)
        registry.register(self.services)

    def record(self, answer: Answer, timings: Timings | None) -> None:
        """What an answer did; ``timings`` is None when it came from the answer cache."""
        if answer.kind == RAYCLUSTER:  # the other kinds' children are no pods
            self.pods.labels(answer.hook).observe(answer.observed_pods)
        if timings is None:
            self.cache_hits.labels(answer.hook).inc()
        else:
            self.decode.labels(answer.hook).observe(timings.decode)
            self.compute.labels(answer.hook).observe(timings.compute)
            self.encode.labels(answer.hook).observe(timings.encode)
        if not (answer.created or answer.deleted or answer.deleted_children):
            return  # a steady resync (most answers): nothing to count
        for kind, count in Tally(kind for kind, _ in answer.created).items():
            self.created.labels(kind).inc(count)
        for reason, count in Tally(reason for _, reason in answer.deleted).items():
            self.deleted.labels(reason).inc(count)
        for kind, count in Tally(kind for kind, _ in answer.deleted_children).items():
            self.children_deleted.labels(kind).inc(count)

    def gauges(self, answer: Answer, parent: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """The per-parent gauges of the answer's kind: RayCluster's, RayJob's or RayService's (a
        RayCronJob has none: its runs are RayJobs, with their own)."""
        if answer.kind == RAYCRONJOB:
            return
        if answer.kind == RAYJOB:
            self.job(answer, parent, status)
        elif answer.kind == RAYSERVICE:
            now = datetime.fromtimestamp(self.clock(), UTC)
            self.services.observe(service_gauges.series_of(parent, status, now))
        else:
            self.cluster(answer, parent, status)

    def cluster(self, answer: Answer, parent: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Per-cluster gauges: refreshed by every answer, dropped once a finalize releases it."""
        if answer.finalized:
            self.clusters.forget(answer.cluster.uid)
        else:
            self.clusters.observe(series_of(parent, status, self.clock()))

    def job(self, answer: Answer, parent: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Per-RayJob gauges: refreshed by every answer, dropped once a finalize releases it."""
        if answer.finalized:
            self.jobs.forget(answer.cluster.uid)
        else:
            now = datetime.fromtimestamp(self.clock(), UTC)
            self.jobs.observe(job_gauges.series_of(parent, status, now))

    def deletion(self, outcome: str) -> None:
        self.rayjob_deletions.labels(outcome).inc()

    def head_label(self, outcome: str) -> None:
        self.head_labels.labels(outcome).inc()

    def posted(self, outcome: str) -> None:
        self.events_posted.labels(outcome).inc()

    def dropped(self, count: int = 1) -> None:
        self.events_dropped.inc(count)

    def exposition(self) -> bytes:
        if self.directory is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.directory)  # type: ignore[no-untyped-call]
        merged.register(self.clusters)
        merged.register(self.jobs)
        merged.register(self.services)
        return generate_latest(merged)


def _histogram(
    name: str,
    doc: str,
    buckets: tuple[float, ...],
    registry: CollectorRegistry,
    hooks: tuple[str, ...] = HOOKS,
) -> Histogram:
    histogram = Histogram(name, doc, ["hook"], buckets=buckets, registry=registry)
    for hook in hooks:
        histogram.labels(hook)  # present (at 0) from the start: rate() needs a first sample
    return histogram


def _counter(
    name: str, doc: str, label: str, values: tuple[str, ...], registry: CollectorRegistry
) -> Counter:
    counter = Counter(name, doc, [label], registry=registry)
    for value in values:
        counter.labels(value)
    return counter


DASHBOARD_CALLS = ("get", "submit", "stop")
DASHBOARD_OUTCOMES = ("ok", "not_found", "error", "timeout")
# A dashboard answers in milliseconds; the client gives up after its timeout (2 s by default).
DASHBOARD_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)


class DashboardMetrics:
    """The Ray dashboard client's requests and watches (``app.shell.ray.poller.Dashboards``), in the
    app's registry: ``DashboardMetrics(metrics.registry)``. Counters and the histogram follow
    the multiprocess mode like the others; the gauge is summed over live workers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "metaray_dashboard_requests",
            "Requests to Ray dashboards, by call and outcome",
            ["call", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "metaray_dashboard_request_seconds",
            "Ray dashboard request latency",
            ["call"],
            buckets=DASHBOARD_SECONDS,
            registry=registry,
        )
        for call in DASHBOARD_CALLS:
            self.seconds.labels(call)
            for outcome in DASHBOARD_OUTCOMES:
                self.requests.labels(call, outcome)
        self.watched_jobs = Gauge(
            "metaray_dashboard_watched_jobs",
            "Ray jobs whose dashboard is polled",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.watches_refused = Counter(
            "metaray_dashboard_watches_refused",
            "Ray jobs not watched: the client watches its maximum already",
            registry=registry,
        )

    def request(self, call: str, outcome: str, seconds: float) -> None:
        self.requests.labels(call, outcome).inc()
        self.seconds.labels(call).observe(seconds)

    def watched(self, count: int) -> None:
        self.watched_jobs.set(count)

    def refused(self) -> None:
        self.watches_refused.inc()
