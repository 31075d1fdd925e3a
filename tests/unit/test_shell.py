"""rayStartParams values stay one inert word in the ray start command."""

from __future__ import annotations

import pytest

from app.raycluster.problems import InvalidSpec
from app.raycluster.shell import shell_word_problem
from app.raycluster.spec import parse_spec
from tests.loop import cluster_spec, group, raycluster

SAFE = [
    "1",
    "0.0.0.0",
    "$REDIS_PASSWORD",
    "${REDIS_PASSWORD}",
    "'{\"CPU\": 1}'",
    '\'"{\\"Custom1\\": 1, \\"Custom2\\": 5}"\'',
    '"quoted words"',
    "'$(not run)'",
    "a\\ b",
    "redis:6379",
    "/tmp/ray,/data",
]
UNSAFE = [
    ("a b", "white space"),
    ("1;rm -rf /", "';'"),
    ("x&&y", "'&'"),
    ("x|y", "'|'"),
    ("x>y", "'>'"),
    ("$(id)", "'$'"),
    ('"$(id)"', "'$'"),
    ("`id`", "backquote"),
    ('"`id`"', "backquote"),
    ("*", "'*'"),
    ("{a,b}", "'{'"),
    ("'open", "unbalanced"),
    ('"open', "unbalanced"),
    ("end\\", "backslash"),
    ("line\nbreak", "newline"),
    ("nul\0", "NUL"),
]


@pytest.mark.parametrize("value", SAFE)
def test_values_users_write_today_are_accepted(value: str) -> None:
    assert shell_word_problem(value) is None


@pytest.mark.parametrize(("value", "reason"), UNSAFE)
def test_values_that_would_escape_the_command_are_refused(value: str, reason: str) -> None:
    problem = shell_word_problem(value)
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize(("value", "reason"), UNSAFE[:4])
def test_the_spec_names_the_flag_that_would_escape(value: str, reason: str) -> None:
    spec = cluster_spec(group())
    spec["workerGroupSpecs"][0]["rayStartParams"] = {"num-cpus": value}
    with pytest.raises(InvalidSpec) as error:
        parse_spec(raycluster(spec))
    assert "spec.workerGroupSpecs[0].rayStartParams.num-cpus" in str(error.value)
    assert reason in str(error.value)


@pytest.mark.parametrize("field", ["labels", "resources"])
def test_group_labels_and_resource_names_must_be_plain_words(field: str) -> None:
    spec = cluster_spec(group())
    spec["workerGroupSpecs"][0][field] = {"x'; rm -rf /; '": "1"}
    with pytest.raises(InvalidSpec, match=rf"spec\.workerGroupSpecs\[0\]\.{field}"):
        parse_spec(raycluster(spec))
