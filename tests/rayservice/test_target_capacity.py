"""Serve's target_capacity on the wire: read from Ray's answer, sent with a config, and what
counts as applied."""

from __future__ import annotations

import json

from app.rayservice.serve import (
    Application,
    ApplyServeConfig,
    ServeView,
    applied_capacity,
    running_config,
)
from app.shell.ray.serve import parse_applications

URL = "c-head-svc.default.svc.cluster.local:8265"


def ray_answer(**extra: object) -> bytes:
    app = {"status": "RUNNING", "deployed_app_config": {"name": "a", "import_path": "m:app"}}
    return json.dumps({"applications": {"a": app}, **extra}).encode()


def test_ray_s_target_capacity_is_read_and_garbage_is_not() -> None:
    assert (
        parse_applications(URL, ray_answer(target_capacity=30)) or ServeView(URL)
    ).target_capacity == 30
    for garbage in (None, "30", True):
        view = parse_applications(URL, ray_answer(target_capacity=garbage))
        assert view is not None and view.target_capacity is None


def test_applied_capacity_is_what_ray_runs_at() -> None:
    apps = (("a", Application("RUNNING", deployed={"name": "a"})),)
    assert applied_capacity(ServeView(URL, apps, target_capacity=30.0)) == 30
    assert applied_capacity(ServeView(URL, apps)) == 100  # no target_capacity: every replica
    assert applied_capacity(ServeView(URL, ())) is None  # runs nothing yet
    assert applied_capacity(ServeView(URL, apps, failing_since="2026-01-01T00:00:00Z")) is None
    assert running_config(ServeView(URL, apps)) == {"applications": [{"name": "a"}]}


def test_a_config_goes_with_its_capacity_and_another_capacity_is_another_put() -> None:
    config = json.dumps({"applications": [{"name": "a"}]})
    plain = ApplyServeConfig("c", URL, config)
    at_ten = ApplyServeConfig("c", URL, config, target_capacity=10)
    assert "target_capacity" not in plain.body()
    assert at_ten.body() == {"applications": [{"name": "a"}], "target_capacity": 10}
    assert len({plain.key, at_ten.key, ApplyServeConfig("c", URL, config, 20).key}) == 3
