"""Per-cluster gauges with KubeRay's names, that disappear when their cluster does.

A series goes when a finalize answer releases its cluster, or when no answer has refreshed it
for ``ttl`` seconds (twice Metacontroller's resync period: a cluster deleted without a finalize
call, or now answered by another replica). Expiry is checked when Prometheus scrapes.

prometheus_client cannot remove a labelled series in multiprocess mode, so these gauges are not
prometheus_client metrics but a collector over a table. With several uvicorn workers, each
worker keeps its table in ``<PROMETHEUS_MULTIPROC_DIR>/metaray_clusters_<pid>.json`` and a
scrape merges every worker's file: per cluster the newest observation wins, and a newer
"finalized" tombstone hides older observations from other workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.summary import Identity

INFO = "kuberay_cluster_info"
CONDITION = "kuberay_cluster_condition_provisioned"
DURATION = "kuberay_cluster_provisioned_duration_seconds"
PROVISIONED = "RayClusterProvisioned"
_FILE_PREFIX = "metaray_clusters_"
# Observations are rewritten to the shared file at least this often even when unchanged, so
# that another worker's scrape does not expire a cluster this worker keeps answering.
FLUSH_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ClusterSeries:
    name: str
    namespace: str
    uid: str
    owner_kind: str = "None"
    provisioned: bool = False
    provisioned_seconds: float | None = None
    seen: float = 0.0
    gone: bool = False  # a tombstone: the cluster was finalized

    def same_values(self, other: ClusterSeries | None) -> bool:
        return other is not None and replace(other, seen=self.seen) == self


def series_of(parent: Mapping[str, Any], status: Mapping[str, Any], now: float) -> ClusterSeries:
    """The gauges' values for one answer: its status's RayClusterProvisioned condition."""
    cluster = Identity.of(parent)
    meta = parent.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    condition = _condition(status, PROVISIONED)
    provisioned = condition.get("status") == "True"
    since = _seconds_between(meta.get("creationTimestamp"), condition.get("lastTransitionTime"))
    return ClusterSeries(
        cluster.name,
        cluster.namespace,
        cluster.uid,
        owner_kind=_owner_kind(meta),
        provisioned=provisioned,
        provisioned_seconds=since if provisioned else None,
        seen=now,
    )


class ClusterGauges(Collector):
    """Only touched from the event loop (the /metrics route is async): no lock needed."""

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float],
        directory: str | None = None,
        process_id: Callable[[], int] = os.getpid,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.directory = Path(directory) if directory else None
        self.process_id = process_id
        self.table: dict[str, ClusterSeries] = {}
        self.flushed = float("-inf")

    def observe(self, series: ClusterSeries) -> None:
        if not series.uid:
            return
        changed = not series.same_values(self.table.get(series.uid))
        self.table[series.uid] = series
        self._share(force=changed)

    def forget(self, uid: str) -> None:
        """The cluster is gone: a tombstone, so that other workers' copies are hidden too."""
        if uid:
            self.table[uid] = ClusterSeries("", "", uid, seen=self.clock(), gone=True)
            self._share(force=True)

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        self.table = {uid: s for uid, s in self.table.items() if now - s.seen <= self.ttl}
        live = [s for s in self._merged().values() if not s.gone and now - s.seen <= self.ttl]
        yield from _families(sorted(live, key=lambda s: (s.namespace, s.name, s.uid)))

    def _merged(self) -> dict[str, ClusterSeries]:
        newest = dict(self.table)
        for series in self._others():
            mine = newest.get(series.uid)
            if mine is None or (series.seen, series.gone) > (mine.seen, mine.gone):
                newest[series.uid] = series
        return newest

    def _share(self, *, force: bool) -> None:
        now = self.clock()
        if self.directory is None or not (force or now - self.flushed >= FLUSH_SECONDS):
            return
        path = self.directory / f"{_FILE_PREFIX}{self.process_id()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps([asdict(s) for s in self.table.values()]))
        os.replace(temporary, path)  # readers never see a half-written file
        self.flushed = now

    def _others(self) -> Iterator[ClusterSeries]:
        if self.directory is None:
            return
        mine = f"{_FILE_PREFIX}{self.process_id()}.json"
        for path in sorted(self.directory.glob(f"{_FILE_PREFIX}*.json")):
            if path.name == mine:
                continue
            try:
                found = [ClusterSeries(**record) for record in orjson.loads(path.read_bytes())]
            except (OSError, ValueError, TypeError):
                continue  # a file that just went away, or one another version wrote
            yield from found


def _families(live: list[ClusterSeries]) -> Iterator[Metric]:
    ids = ["name", "namespace", "uid"]
    info = GaugeMetricFamily(INFO, "Metadata of each RayCluster", labels=[*ids, "owner_kind"])
    condition = GaugeMetricFamily(
        CONDITION,
        "1 for each RayCluster's current RayClusterProvisioned status",
        labels=[*ids, "condition"],
    )
    duration = GaugeMetricFamily(
        DURATION, "Seconds from creation to RayClusterProvisioned turning True", labels=ids
    )
    for s in live:
        labels = [s.name, s.namespace, s.uid]
        info.add_metric([*labels, s.owner_kind], 1)
        condition.add_metric([*labels, "true" if s.provisioned else "false"], 1)
        if s.provisioned_seconds is not None:
            duration.add_metric(labels, s.provisioned_seconds)
    yield from (info, condition, duration)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    conditions = status.get("conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return {}


def _owner_kind(meta: Mapping[str, Any]) -> str:
    """The controlling owner's kind (RayJob, RayService), "None" for a standalone cluster."""
    owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, Mapping)]
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else {})
    kind = owner.get("kind")
    return kind if isinstance(kind, str) and kind else "None"


def _seconds_between(start: Any, end: Any) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None
