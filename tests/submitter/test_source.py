"""The submitter script is written as small parts and shipped as ONE text: `source()` joins them
into a script that runs on its own, with nothing of the parts' imports of each other left."""

from __future__ import annotations

import ast
import subprocess
from importlib import resources

import pytest
from ruff.__main__ import find_ruff_bin

import app.submitter
from app.submitter import PARTS, join, source

MAX_PART_LINES = 300


def _parts() -> list[str]:
    package = resources.files(app.submitter)
    return [package.joinpath(part).read_text(encoding="utf-8") for part in PARTS]


def _defined(text: str) -> set[str]:
    """The names a module's top level defines (functions, classes, assignments)."""
    names: set[str] = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_the_script_compiles_and_imports_nothing_of_metaray() -> None:
    script = source()
    compile(script, "ray_job_submitter.py", "exec")
    for node in ast.walk(ast.parse(script)):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0
            assert (node.module or "").split(".")[0] != "app", ast.unparse(node)
        elif isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] != "app" for a in node.names), ast.unparse(node)
    assert script.count("from __future__ import annotations") == 1


def test_every_part_is_small_and_all_of_its_code_is_in_the_script() -> None:
    script = _defined(source())
    for name, text in zip(PARTS, _parts(), strict=True):
        assert len(text.splitlines()) <= MAX_PART_LINES, name
        assert _defined(text) <= script, name
    # The first part opens the script: its docstring is the script's.
    assert ast.get_docstring(ast.parse(source())) == ast.get_docstring(ast.parse(_parts()[0]))


def test_the_joined_script_is_clean_python() -> None:
    """Its merged imports are exactly what its code uses (none missing, none unused, sorted),
    and no name is undefined: what a linter would say of a script written as one file."""
    done = subprocess.run(
        [find_ruff_bin(), "check", "--isolated", "--select", "F,I", "--stdin-filename", "s.py"],
        input=source(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("parts", "problem"),
    [
        (['"""Doc."""\nx = 1\nimport os\n'], "import after the first statement"),
        (['"""Doc."""\nfrom app.core import time\n'], "nothing of metaray"),
        (['"""Doc."""\nfrom .config import say\n'], "nothing of metaray"),
        (['"""Doc."""\nimport os as system\n'], "under their own names"),
        (["x = 1\n"], "docstring"),
    ],
)
def test_parts_the_joining_cannot_keep_whole_are_refused(parts: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        join(parts)


def test_joining_drops_only_the_parts_imports_of_each_other() -> None:
    first = '"""The script."""\n\nfrom __future__ import annotations\n\nimport os\n\nA = os.sep\n'
    second = (
        '"""Part two."""\n\nfrom __future__ import annotations\n\nimport sys\n'
        "from typing import Any\n\nfrom app.submitter.config import A\n\n\nB: Any = (A, sys.argv)\n"
    )
    assert join([first, second]) == (
        '"""The script."""\n\nfrom __future__ import annotations\n\n'
        "import os\nimport sys\nfrom typing import Any\n\n"
        "A = os.sep\n\n\nB: Any = (A, sys.argv)\n"
    )
