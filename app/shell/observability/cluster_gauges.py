"""Per-cluster gauges with KubeRay's names, that disappear when their cluster does.

``GaugeTable`` is the mechanism, shared with the per-RayJob gauges (``job_gauges.py``).

A series goes when a finalize answer releases its cluster, or when no answer has refreshed it
for ``ttl`` seconds (the horizon, an hour by default: several resync periods, so an idle
cluster never blinks out, and finite, for a cluster deleted without a finalize call or now
answered by another replica). It does not lean on the resync for anything else: a pod change
reaches the gauges in the sync its watch event triggers. Expiry is checked when Prometheus
scrapes.

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
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import orjson
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.shell.observability.summary import Identity

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


class Series(Protocol):
    """One parent's row in a ``GaugeTable``: a frozen dataclass, a tombstone once ``gone``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def uid(self) -> str: ...

    @property
    def seen(self) -> float: ...

    @property
    def gone(self) -> bool: ...


S = TypeVar("S", bound=Series)


class GaugeTable(Collector, Generic[S]):
    """Per-parent gauges over a table of rows, shared between workers through files.

    Subclasses say how a row is stored, merged and shown. Only touched from the event loop
    (the /metrics route is async): no lock needed.
    """

    prefix: ClassVar[str] = _FILE_PREFIX

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
        self.table: dict[str, S] = {}
        self.flushed = float("-inf")

    # -- what a subclass defines --------------------------------------------------------------

    def tombstone(self, uid: str, now: float) -> S:
        raise NotImplementedError

    def load(self, record: Any) -> S:
        raise NotImplementedError

    def families(self, live: list[S]) -> Iterator[Metric]:
        raise NotImplementedError

    def same_values(self, new: S, old: S | None) -> bool:
        """Whether ``new`` only refreshes ``old`` (then the shared file need not be rewritten
        at once)."""
        return old is not None and replace(old, seen=new.seen) == new

    def combine(self, newer: S, older: S) -> S:
        """Two workers' rows of one parent: the newer wins."""
        return newer

    # -- the table ----------------------------------------------------------------------------

    def observe(self, series: S) -> None:
        if not series.uid:
            return
        changed = not self.same_values(series, self.table.get(series.uid))
        self.table[series.uid] = series
        self._share(force=changed)

    def forget(self, uid: str) -> None:
        """The parent is gone: a tombstone, so that other workers' copies are hidden too."""
        if uid:
            self.table[uid] = self.tombstone(uid, self.clock())
            self._share(force=True)

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        self.table = {uid: s for uid, s in self.table.items() if now - s.seen <= self.ttl}
        live = [s for s in self._merged().values() if not s.gone and now - s.seen <= self.ttl]
        yield from self.families(sorted(live, key=_order))

    def _merged(self) -> dict[str, S]:
        newest = dict(self.table)
        for series in self._others():
            mine = newest.get(series.uid)
            if mine is None:
                newest[series.uid] = series
            elif (series.seen, series.gone) > (mine.seen, mine.gone):
                newest[series.uid] = self.combine(series, mine)
            else:
                newest[series.uid] = self.combine(mine, series)
        return newest

    def _share(self, *, force: bool) -> None:
        now = self.clock()
        if self.directory is None or not (force or now - self.flushed >= FLUSH_SECONDS):
            return
        path = self.directory / f"{self.prefix}{self.process_id()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps([asdict(s) for s in self.table.values()]))
        os.replace(temporary, path)  # readers never see a half-written file
        self.flushed = now

    def _others(self) -> Iterator[S]:
        if self.directory is None:
            return
        mine = f"{self.prefix}{self.process_id()}.json"
        for path in sorted(self.directory.glob(f"{self.prefix}*.json")):
            if path.name == mine:
                continue
            try:
                found = [self.load(record) for record in orjson.loads(path.read_bytes())]
            except (OSError, ValueError, TypeError):
                continue  # a file that just went away, or one another version wrote
            yield from found


def _order(series: Any) -> tuple[str, str, str]:
    return (series.namespace, series.name, series.uid)


class ClusterGauges(GaugeTable[ClusterSeries]):
    prefix = _FILE_PREFIX

    def tombstone(self, uid: str, now: float) -> ClusterSeries:
        return ClusterSeries("", "", uid, seen=now, gone=True)

    def load(self, record: Any) -> ClusterSeries:
        return ClusterSeries(**record)

    def families(self, live: list[ClusterSeries]) -> Iterator[Metric]:
        return _families(live)


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
