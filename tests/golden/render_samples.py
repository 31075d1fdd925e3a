"""Render every sample to its golden file: ``python -m tests.golden.render_samples``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.faces.render import render, to_yaml
from app.raycluster.cluster import Options
from app.rayjob.options import Options as RayJobOptions
from app.submitter import source

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).parent / "expected"
# RayJob status times: a fixed moment, so that the golden files do not move.
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Fixed "random" bytes, so a token Secret renders the same every time (never a real token).
ENTROPY = bytes(range(32))


def samples() -> list[Path]:
    return sorted(SAMPLES.glob("*.yaml"))


def rendered(sample: Path) -> str:
    job_options = RayJobOptions(submitter_script=source())
    return to_yaml(render(sample, None, Options(), job_options, now=NOW, entropy=ENTROPY))


def golden_path(sample: Path) -> Path:
    return GOLDEN / sample.name


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for sample in samples():
        golden_path(sample).write_text(rendered(sample))
        print(f"wrote {golden_path(sample).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
