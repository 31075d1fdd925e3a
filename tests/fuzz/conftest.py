"""Prints how many inputs the fuzz tests generated in this run."""

from __future__ import annotations

import pytest

from tests.fuzz import INPUTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(f"fuzz inputs: {sum(INPUTS.values())}")
    for test, inputs in sorted(INPUTS.items()):
        terminalreporter.write_line(f"  {test}: {inputs}")
