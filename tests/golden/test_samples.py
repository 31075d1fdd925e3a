"""Each sample's full answer (children and status) matches its reviewed golden file.

After a deliberate change of output, regenerate with ``python -m tests.golden.render_samples``
and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden.render_samples import golden_path, rendered, samples


def test_there_are_samples_to_check() -> None:
    names = {sample.name for sample in samples()}
    assert {"ray-cluster.mini.yaml", "ray-cluster.heterogeneous.yaml"} <= names


@pytest.mark.parametrize("sample", samples(), ids=lambda path: path.name)
def test_sample_renders_as_golden(sample: Path) -> None:
    assert rendered(sample) == golden_path(sample).read_text()
