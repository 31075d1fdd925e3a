"""Hypothesis over hostile RayCronJobs over HTTP: specs of the wrong shapes, statuses a user
hand-edited, runs with unreadable annotations and states, any clock. Never a 500 (Metacontroller
would keep retrying, and an internal fault must be the hook's bug, not the input's); an invalid
spec answers every observed run; a valid one never drops an active run unless a newer run made
under Replace is there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.raycluster.problems import InvalidSpec
from app.raycronjob.runs import REPLACES, SCHEDULED
from app.raycronjob.spec import parse_raycronjob
from tests.raycronjob.http import Hook
from tests.raycronjob.loop import START, cron_object, request

HOOK = Hook()
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["1970-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "9999-12-31T23:59:59Z"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
times = st.one_of(
    st.sampled_from(["2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z", "2025-12-31T23:59:00Z"]),
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2400, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    json_values,
)
spec_fields = st.fixed_dictionaries(
    {},
    optional={
        "schedule": st.sampled_from(
            ["* * * * *", "@every 20s", "@every 0s", "0 0 30 2 *", "TZ=UTC * * * * *", "61 * * * *"]
        )
        | json_values,
        "timeZone": st.sampled_from(["Asia/Taipei", "../../etc/passwd", "", "Nowhere/City"])
        | json_values,
        "suspend": json_values,
        "jobTemplate": json_values,
        "jobMetadata": json_values,
        "concurrencyPolicy": st.sampled_from(["Allow", "Forbid", "Replace"]) | json_values,
        "startingDeadlineSeconds": json_values,
        "successfulJobsHistoryLimit": st.integers(-1, 2) | json_values,
        "failedJobsHistoryLimit": st.integers(-1, 2) | json_values,
    },
)
statuses = (
    st.dictionaries(
        st.sampled_from(
            ["lastScheduleTime", "pendingScheduleTime", "lastSuccessfulTime", "active", "message"]
        ),
        times,
        max_size=5,
    )
    | json_values
)


@st.composite
def runs(draw: st.DrawFn, index: int) -> dict[str, Any]:
    annotations = draw(
        st.dictionaries(
            st.sampled_from([SCHEDULED, REPLACES, "x"]),
            st.text(max_size=4) | times.filter(lambda t: isinstance(t, str)),
            max_size=3,
        )
    )
    status = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "jobDeploymentStatus": st.sampled_from(["Running", "Complete", "Failed", ""])
                | json_values,
                "endTime": times,
            },
        )
    )
    metadata: dict[str, Any] = {
        "name": f"nightly-{index}",
        "namespace": "default",
        "annotations": annotations,
    }
    if draw(st.booleans()):
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": metadata,
        "spec": {},
        "status": status,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=spec_fields,
    status=statuses,
    children=st.integers(0, 4).flatmap(lambda n: st.tuples(*[runs(i) for i in range(n)])),
    seconds=st.integers(-3600, 10**9),
)
def test_never_a_500_and_never_a_run_lost_on_an_invalid_spec(
    fields: dict[str, Any], status: Any, children: tuple[dict[str, Any], ...], seconds: int
) -> None:
    parent = cron_object()
    parent["spec"].update(fields)
    parent["status"] = status
    observed = {c["metadata"]["name"]: c for c in children}
    HOOK.now = START + timedelta(seconds=seconds)
    response = HOOK.post(request(parent, observed))
    assert response.status_code == 200, response.text
    answered = {c["metadata"]["name"] for c in response.json()["children"]}
    try:
        parse_raycronjob(parent)
    except InvalidSpec:
        assert set(observed) <= answered
        return
    for name, run in observed.items():
        state = run["status"].get("jobDeploymentStatus")
        active = state not in ("Complete", "Failed") and "deletionTimestamp" not in run["metadata"]
        replaced = any(
            o["metadata"]["annotations"].get(REPLACES) == "true" for o in observed.values()
        )
        if active and not replaced:
            assert name in answered, f"active run {name} dropped"
