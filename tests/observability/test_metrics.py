"""GET /metrics: what each answer did, per-cluster gauges with KubeRay's names, several
workers, and the Prometheus and Grafana files that read them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client import values

from app.hooks.request import decode
from app.raycluster.sync import sync
from app.shell.http.app import create_app
from app.shell.observability.metrics import DELETE_REASONS, Metrics, Timings
from app.shell.observability.summary import summarize
from app.shell.settings import Settings
from tests.fixtures import capture
from tests.http.client import HookClient
from tests.loop import Loop, cluster_spec, container, group, raycluster
from tests.observability.harness import (
    Clock,
    body,
    finalize_request,
    samples,
    series,
    value,
)

ROOT = Path(__file__).resolve().parents[2]
MONITORS = ROOT / "config" / "prometheus"
DASHBOARD = ROOT / "config" / "grafana" / "metaray-dashboard.json"
UID = "0f0f0f0f-1111-2222-3333-444444444444"
ID = {"name": "demo", "namespace": "default", "uid": UID}
JSON = {"Content-Type": "application/json"}


class Hook:
    """The app over HTTP, as Metacontroller calls it, with a clock the test moves."""

    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.app = create_app(Settings(**settings), clock=self.clock)
        self.client = HookClient(self.app)

    def call(self, path: str = "/sync") -> Callable[[bytes], tuple[int, bytes]]:
        def post(content: bytes) -> tuple[int, bytes]:
            response = self.client.post(path, content=content, headers=JSON)
            return response.status_code, response.content

        return post

    def post(self, path: str, request: dict[str, Any]) -> Any:
        status, content = self.call(path)(body(request))
        assert status == 200, content
        return orjson.loads(content)

    def loop(self, spec: dict[str, Any], **parent: Any) -> Loop:
        return Loop(raycluster(spec, **parent), call=self.call())

    def scrape(self) -> str:
        response = self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return response.text


def ready(hook: Hook, spec: dict[str, Any] | None = None, **parent: Any) -> Loop:
    loop = hook.loop(spec or cluster_spec(group(replicas=2)), **parent)
    loop.converge()
    loop.run_pods()
    loop.converge()
    return loop


# -- counters and histograms ------------------------------------------------------------------


def test_a_first_sync_counts_the_children_it_creates_by_kind() -> None:
    hook = Hook()
    hook.loop(cluster_spec(group(replicas=2))).step()
    text = hook.scrape()
    assert value(text, "metaray_children_created_total", kind="Pod") == 3
    assert value(text, "metaray_children_created_total", kind="Service") == 1
    assert value(text, "metaray_children_created_total", kind="Ingress") == 0


def workers_to_delete(loop: Loop) -> None:
    victim = loop.workers("workers")[0]
    loop.edit(
        lambda s: s["workerGroupSpecs"][0].update(scaleStrategy={"workersToDelete": [victim]})
    )


def surplus(loop: Loop) -> None:
    loop.edit(lambda s: s["workerGroupSpecs"][0].update(replicas=1))


def suspended(loop: Loop) -> None:
    loop.edit(lambda s: s.update(suspend=True))


def group_removed(loop: Loop) -> None:
    loop.edit(lambda s: s.update(workerGroupSpecs=[]))


def template_changed(loop: Loop) -> None:
    def change(spec: dict[str, Any]) -> None:
        template = spec["workerGroupSpecs"][0]["template"]["spec"]
        template["containers"] = [container("ray-worker", image="rayproject/ray:2.53.0")]

    loop.edit(change)


CHANGES: dict[str, tuple[Callable[[Loop], None], int]] = {
    "workers_to_delete": (workers_to_delete, 1),
    "failed": (lambda loop: loop.finish(loop.workers("workers")[0]), 1),
    "surplus": (surplus, 1),
    "suspended": (suspended, 3),
    "group_removed": (group_removed, 2),
    "template_changed": (template_changed, 1),
}


@pytest.mark.parametrize("reason", list(CHANGES))
def test_deleted_pods_are_counted_by_reason(reason: str) -> None:
    hook = Hook()
    spec = cluster_spec(group(replicas=2), upgradeStrategy={"type": "Recreate"})
    loop = ready(hook, spec)
    before = hook.scrape()
    change, expected = CHANGES[reason]
    change(loop)
    step = loop.step()
    after = hook.scrape()

    assert len(step.deleted) == expected
    for label in DELETE_REASONS:
        moved = value(after, "metaray_pods_deleted_total", reason=label) or 0
        moved -= value(before, "metaray_pods_deleted_total", reason=label) or 0
        assert moved == (expected if label == reason else 0), label


def test_finalize_counts_the_pods_of_a_deleted_cluster() -> None:
    hook = Hook()
    spec = cluster_spec(group(replicas=1), gcsFaultToleranceOptions={"redisAddress": "r:6379"})
    loop = ready(hook, spec)
    answer = hook.post("/finalize", finalize_request(loop.parent, loop.request()["children"]))
    assert answer["finalized"] is False, "waits for the head to go before cleaning Redis"
    text = hook.scrape()
    assert value(text, "metaray_pods_deleted_total", reason="cluster_deleted") == 2


def test_histograms_count_every_answer_and_its_pods() -> None:
    hook = Hook()
    loop = ready(hook)
    text = hook.scrape()
    syncs = len(loop.history)
    observed = sum(len(step.request["children"].get("Pod.v1", {})) for step in loop.history)
    assert value(text, "metaray_sync_pods_count", hook="sync") == syncs
    assert value(text, "metaray_sync_pods_sum", hook="sync") == observed
    for stage in ("decode", "compute", "encode"):
        assert value(text, f"metaray_sync_{stage}_seconds_count", hook="sync") == syncs
        assert 0 < (value(text, f"metaray_sync_{stage}_seconds_sum", hook="sync") or 0) < syncs
    assert value(text, "metaray_sync_pods_count", hook="finalize") == 0


def test_requests_stay_instrumented_per_handler() -> None:
    hook = Hook()
    hook.post("/sync", capture("sync-a-first"))
    text = hook.scrape()
    assert value(text, "http_requests_total", handler="/sync", method="POST", status="2xx") == 1
    assert value(text, "http_request_duration_seconds_count", handler="/sync", method="POST") == 1


# -- per-cluster gauges -----------------------------------------------------------------------


def test_per_cluster_gauges_have_kuberays_names_and_values() -> None:
    hook = Hook()
    loop = hook.loop(cluster_spec(group(replicas=2)))
    loop.step()
    text = hook.scrape()
    assert value(text, "kuberay_cluster_info", **ID, owner_kind="None") == 1
    assert series(text, "kuberay_cluster_condition_provisioned") == [ID | {"condition": "false"}]
    assert series(text, "kuberay_cluster_provisioned_duration_seconds") == []

    loop.converge()
    loop.run_pods()
    step = loop.converge()
    text = hook.scrape()
    assert series(text, "kuberay_cluster_condition_provisioned") == [ID | {"condition": "true"}]
    [condition] = [
        c for c in step.desired.status["conditions"] if c["type"].endswith("Provisioned")
    ]
    created = datetime.fromisoformat(loop.parent["metadata"]["creationTimestamp"])
    took = (datetime.fromisoformat(condition["lastTransitionTime"]) - created).total_seconds()
    assert took > 0
    assert value(text, "kuberay_cluster_provisioned_duration_seconds", **ID) == took


def test_a_cluster_owned_by_a_rayjob_says_so() -> None:
    hook = Hook()
    loop = hook.loop(cluster_spec(group()))
    loop.parent["metadata"]["ownerReferences"] = [
        {"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "j", "uid": "u", "controller": True}
    ]
    loop.step()
    assert value(hook.scrape(), "kuberay_cluster_info", **ID, owner_kind="RayJob") == 1


def test_per_cluster_gauges_disappear_when_finalize_releases_the_cluster() -> None:
    hook = Hook()
    loop = ready(hook)
    assert series(hook.scrape(), "kuberay_cluster_info")
    answer = hook.post("/finalize", finalize_request(loop.parent, loop.request()["children"]))
    assert answer["finalized"] is True
    text = hook.scrape()
    for name in ("info", "condition_provisioned", "provisioned_duration_seconds"):
        assert series(text, f"kuberay_cluster_{name}") == [], name


def resync_period(registration: str) -> int:
    document = yaml.safe_load((ROOT / "metacontroller" / registration).read_text())
    return int(document["spec"]["resyncPeriodSeconds"])


@pytest.mark.parametrize(
    "registration", ["compositecontroller.yaml", "rayjob-compositecontroller.yaml"]
)
def test_an_idle_parent_keeps_its_series_across_resyncs_and_loses_them_past_the_horizon(
    registration: str,
) -> None:
    """Between two resyncs of an idle cluster no answer refreshes its series: they must not
    blink out then (a dashboard would show the cluster gone), yet a replica no longer asked
    about it must stop reporting it. The default horizon holds two resync periods and more."""
    period = resync_period(registration)
    hook = Hook()
    horizon = Settings().gauge_horizon_seconds
    assert horizon >= 2 * period
    hook.loop(cluster_spec(group())).step()
    hook.clock.advance(2 * period)
    assert series(hook.scrape(), "kuberay_cluster_info"), "two resyncs missed: still there"
    hook.clock.advance(horizon - 2 * period)
    assert series(hook.scrape(), "kuberay_cluster_info"), "still within the horizon"
    hook.clock.advance(1)
    assert series(hook.scrape(), "kuberay_cluster_info") == []


def test_the_gauge_horizon_is_a_setting() -> None:
    hook = Hook(gauge_horizon_seconds=90)
    hook.loop(cluster_spec(group())).step()
    hook.clock.advance(90)
    assert series(hook.scrape(), "kuberay_cluster_info")
    hook.clock.advance(1)
    assert series(hook.scrape(), "kuberay_cluster_info") == []
    env = Settings.from_env({"METARAY_GAUGE_HORIZON_SECONDS": "7200"})
    assert env.gauge_horizon_seconds == 7200


def test_metrics_exposes_every_metaray_metric() -> None:
    hook = Hook()
    ready(hook)
    names = {name for name, _ in samples(hook.scrape())}
    assert {
        "metaray_sync_pods_bucket",
        "metaray_sync_decode_seconds_bucket",
        "metaray_sync_compute_seconds_bucket",
        "metaray_sync_encode_seconds_bucket",
        "metaray_children_created_total",
        "metaray_pods_deleted_total",
        "metaray_events_posted_total",
        "metaray_events_dropped_total",
        "kuberay_cluster_info",
        "kuberay_cluster_condition_provisioned",
        "kuberay_cluster_provisioned_duration_seconds",
        "http_requests_total",
        "process_resident_memory_bytes",
    } <= names
    assert not any(name.endswith("_created") for name in names), "no _created series"


# -- several uvicorn workers ------------------------------------------------------------------


@pytest.fixture
def multiproc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """PROMETHEUS_MULTIPROC_DIR set, and a way to act as worker process ``pid``."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    def become(pid: int) -> None:
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))

    yield become
    values.close_all_multiprocess_files()


def answer(metrics: Metrics, name: str, hook: str = "sync") -> None:
    request = decode(body(capture(name)))
    desired = sync(request.parent, request.observed)
    summary = summarize(hook, request, desired)
    metrics.record(summary, Timings(0.001, 0.002, 0.0005))
    metrics.cluster(summary, request.parent, desired.status)


def test_two_workers_registries_merge_in_one_scrape(
    tmp_path: Path, multiproc: Callable[[int], None]
) -> None:
    now = [1_000_000.0]
    workers = {}
    for pid, capture_name in ((101, "sync-a-first"), (102, "sync-c-all-running")):
        multiproc(pid)
        workers[pid] = Metrics(
            directory=str(tmp_path), clock=lambda: now[0], process_id=lambda p=pid: p
        )
        answer(workers[pid], capture_name)
        now[0] += 10

    for metrics in workers.values():  # either worker's scrape shows both workers' work
        text = metrics.exposition().decode()
        assert value(text, "metaray_sync_pods_count", hook="sync") == 2
        assert value(text, "metaray_children_created_total", kind="Pod") == 2
        uid = "a4055b9f-a261-4dec-bcf5-514a6655169b"
        identity = {"name": "raycluster-kuberay", "namespace": "default", "uid": uid}
        # The newest observation (worker 102: all running) wins over worker 101's.
        assert series(text, "kuberay_cluster_condition_provisioned") == [
            identity | {"condition": "true"}
        ]

    request = decode(body(capture("sync-c-all-running")))
    workers[102].clusters.forget(request.parent["metadata"]["uid"])
    assert series(workers[101].exposition().decode(), "kuberay_cluster_info") == [], (
        "a finalize answered by one worker hides every worker's series"
    )


def test_the_app_serves_merged_metrics_in_multiprocess_mode(
    tmp_path: Path, multiproc: Callable[[int], None]
) -> None:
    apps = []
    for pid in (201, 202):
        multiproc(pid)
        client = HookClient(create_app(Settings(metrics_dir=str(tmp_path))))
        client.post("/sync", content=body(capture("sync-a-first")), headers=JSON)
        apps.append(client)
    text = apps[0].get("/metrics").text
    assert value(text, "http_requests_total", handler="/sync", method="POST", status="2xx") == 2
    assert value(text, "metaray_children_created_total", kind="Service") == 2
    assert len(series(text, "kuberay_cluster_info")) == 1


# -- Prometheus and Grafana files -------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def test_the_servicemonitor_scrapes_the_metaray_service() -> None:
    kustomization = load(ROOT / "metacontroller" / "kustomization.yaml")
    service = load(ROOT / "metacontroller" / "service.yaml")
    labels = kustomization["labels"][0]["pairs"] | service["metadata"].get("labels", {})
    monitor = load(MONITORS / "servicemonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    )
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["namespaceSelector"] == {"matchNames": [kustomization["namespace"]]}
    [endpoint] = spec["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def prometheus_label(name: str) -> str:
    """How Prometheus names a Kubernetes label in service discovery."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def test_the_podmonitor_selects_ray_head_and_worker_pods_by_their_metrics_port() -> None:
    monitor = load(MONITORS / "podmonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    spec = monitor["spec"]
    desired = sync(raycluster(cluster_spec(group(replicas=1))), decode(b'{"parent": {}}').observed)
    pods = [child for child in desired.children if child["kind"] == "Pod"]
    assert {pod["metadata"]["labels"]["ray.io/node-type"] for pod in pods} == {"head", "worker"}
    [endpoint] = spec["podMetricsEndpoints"]
    for pod in pods:
        labels = pod["metadata"]["labels"]
        for rule in spec["selector"]["matchExpressions"]:
            present = rule["key"] in labels
            assert (
                present and labels[rule["key"]] in rule["values"]
                if rule["operator"] == "In"
                else present
            )
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert endpoint["port"] in ports
    relabel = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert relabel["ray_io_cluster"] == [prometheus_label("ray.io/cluster")]
    assert spec["namespaceSelector"] == {"any": True}


def test_the_prometheus_kustomization_lists_both_monitors() -> None:
    assert load(MONITORS / "kustomization.yaml")["resources"] == [
        "servicemonitor.yaml",
        "podmonitor.yaml",
    ]


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and"}
PROMQL_WORDS |= {"or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if not expr[match.end() :].lstrip().startswith("(") and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def test_the_grafana_dashboard_is_valid_and_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    titles = " ".join(panel["title"] for panel in panels).lower()
    for topic in ("latency", "pods per sync", "decode", "created", "deleted", "events"):
        assert topic in titles
    assert "provisioned" in titles and "provision" in titles

    hook = Hook()
    loop = ready(hook)
    hook.post("/finalize", finalize_request(loop.parent, {}))
    ready(hook, uid="another")  # a provisioned cluster, so every per-cluster gauge exists
    exposed = {name for name, _ in samples(hook.scrape())}
    used = set()
    for panel in panels:
        assert panel["targets"] and all(t["refId"] and t["expr"] for t in panel["targets"])
        used |= {name for target in panel["targets"] for name in metric_names(target["expr"])}
    assert {"metaray_sync_pods_bucket", "kuberay_cluster_provisioned_duration_seconds"} <= used
    assert used <= exposed, f"not in /metrics: {sorted(used - exposed)}"
