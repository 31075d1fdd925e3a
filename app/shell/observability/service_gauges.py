"""Per-RayService gauges with KubeRay's names, computed from the RayService answers this
process gave (KubeRay computes them at scrape time from the RayServices it lists; metaray has
no list, so the latest answer stands for it):

- ``kuberay_service_info{name,namespace,uid}`` = 1;
- ``kuberay_service_condition_ready{name,namespace,uid,condition}`` = 1, ``condition`` "true"
  when the answer's Ready condition is True, else "false";
- ``kuberay_service_condition_upgrade_in_progress{...,condition}`` = 1, the same for
  UpgradeInProgress.

The rows expire and are shared between uvicorn workers like the per-cluster gauges
(``cluster_gauges.py``): no answer for ``horizon_seconds`` removes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from app.shell.observability.cluster_gauges import GaugeTable
from app.shell.observability.summary import Identity

INFO = "kuberay_service_info"
READY = "kuberay_service_condition_ready"
UPGRADING = "kuberay_service_condition_upgrade_in_progress"
_FILE_PREFIX = "metaray_services_"


@dataclass(frozen=True, slots=True)
class ServiceSeries:
    name: str
    namespace: str
    uid: str
    ready: bool = False
    upgrading: bool = False
    seen: float = 0.0
    gone: bool = False


def series_of(parent: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> ServiceSeries:
    """The gauges' values for one RayService answer: ``parent`` as sent, ``status`` as answered."""
    service = Identity.of(parent)
    return ServiceSeries(
        service.name,
        service.namespace,
        service.uid,
        ready=_is_true(status, "Ready"),
        upgrading=_is_true(status, "UpgradeInProgress"),
        seen=now.timestamp(),
    )


class ServiceGauges(GaugeTable[ServiceSeries]):
    prefix = _FILE_PREFIX

    def tombstone(self, uid: str, now: float) -> ServiceSeries:
        return ServiceSeries("", "", uid, seen=now, gone=True)

    def load(self, record: Any) -> ServiceSeries:
        return ServiceSeries(**record)

    def families(self, live: list[ServiceSeries]) -> Iterator[Metric]:
        ids = ["name", "namespace", "uid"]
        info = GaugeMetricFamily(INFO, "Metadata of each RayService", labels=ids)
        ready = GaugeMetricFamily(
            READY,
            "1 with condition=true|false: whether the RayService is Ready",
            labels=[*ids, "condition"],
        )
        upgrading = GaugeMetricFamily(
            UPGRADING,
            "1 with condition=true|false: whether the RayService is upgrading its cluster",
            labels=[*ids, "condition"],
        )
        for s in live:
            labels = [s.name, s.namespace, s.uid]
            info.add_metric(labels, 1)
            ready.add_metric([*labels, str(s.ready).lower()], 1)
            upgrading.add_metric([*labels, str(s.upgrading).lower()], 1)
        yield from (info, ready, upgrading)


def _is_true(status: Mapping[str, Any], kind: str) -> bool:
    conditions = status.get("conditions")
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == kind and c.get("status") == "True"
        for c in conditions
    )
