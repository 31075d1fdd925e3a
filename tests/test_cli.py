"""The ``metaray`` command line: ``render`` previews a cluster offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.faces.cli import main
from tests.golden.render_samples import SAMPLES


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_prints_children_and_status_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render(capsys, str(SAMPLES / "ray-cluster.heterogeneous.yaml"))
    assert code == 0
    document = yaml.safe_load(out)
    pods = [c for c in document["children"] if c["kind"] == "Pod"]
    groups = sorted(p["metadata"]["labels"]["ray.io/group"] for p in pods)
    assert groups == ["headgroup", "medium-group", "small-group", "small-group", "small-group"]
    assert document["status"]["desiredWorkerReplicas"] == 4
    assert "&id" not in out, "no YAML anchors in what a person reads"


def test_render_with_observed_pods_keeps_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, first, _ = render(capsys, str(SAMPLES / "ray-cluster.mini.yaml"))
    head = next(c for c in yaml.safe_load(first)["children"] if c["kind"] == "Pod")
    head["status"] = {"phase": "Running", "podIP": "10.1.2.3"}
    observed = tmp_path / "observed.yaml"
    observed.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [head]}))
    code, out, _ = render(
        capsys, str(SAMPLES / "ray-cluster.mini.yaml"), "--observed", str(observed)
    )
    assert code == 0
    document = yaml.safe_load(out)
    names = [c["metadata"]["name"] for c in document["children"] if c["kind"] == "Pod"]
    assert names == [head["metadata"]["name"]]
    assert document["status"]["head"]["podIP"] == "10.1.2.3"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: ConfigMap\n", "expected exactly one RayCluster"),
        ("a: [unclosed\n", "cannot read"),
    ],
)
def test_render_rejects_what_is_not_one_raycluster(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(content)
    code, out, err = render(capsys, str(manifest))
    assert code == 2
    assert out == ""
    assert message in err


def test_render_of_an_invalid_spec_shows_the_failed_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.yaml"
    cluster = yaml.safe_load((SAMPLES / "ray-cluster.mini.yaml").read_text())
    cluster["spec"]["headGroupSpec"]["rayStartParams"] = {"num-cpus": "1\nrm -rf /"}
    manifest.write_text(yaml.safe_dump(cluster))
    code, out, _ = render(capsys, str(manifest))
    document = yaml.safe_load(out)
    assert code == 0
    assert document["children"] == []
    assert document["status"]["state"] == "failed"
    assert "spec.headGroupSpec.rayStartParams.num-cpus" in document["status"]["reason"]


def test_serve_needs_no_arguments() -> None:
    from app.faces.cli import _parser

    args = _parser().parse_args(["serve"])
    assert (args.host, args.port) == ("0.0.0.0", 8080)


def test_render_shows_a_rayjob_as_it_runs_once_its_cluster_is_ready(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = render(capsys, str(SAMPLES / "ray-job.shutdown.yaml"))
    assert code == 0
    document = yaml.safe_load(out)
    kinds = sorted(c["kind"] for c in document["children"])
    assert kinds == ["Job", "RayCluster", "Service"]
    assert document["status"]["jobDeploymentStatus"] == "Running"
    cluster = next(c for c in document["children"] if c["kind"] == "RayCluster")
    assert cluster["metadata"]["name"] == document["status"]["rayClusterName"]
