"""Fuzzing the sync and finalize hooks: hostile requests must never cost a child.

``INPUTS`` counts every generated input each fuzz test feeds the hook; ``conftest.py`` prints
the total at the end of the run.
"""

from __future__ import annotations

from collections import Counter

INPUTS: Counter[str] = Counter()


def count(test: str, inputs: int = 1) -> None:
    INPUTS[test] += inputs
