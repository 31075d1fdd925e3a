"""Run a module as the image would, with only the packages the image installs importable.

    .venv/bin/python -m bench.image_like app.faces.cli serve --port 8080

The development venv holds more than the image (requirements.lock): Ray's and the test tools'
dependencies, among them ``rich`` and ``pygments`` (which httpx imports when present), and
``uvloop``, ``httptools`` and ``websockets`` (which uvicorn picks when present). Each changes
what a server imports and so its memory. This runner refuses every top-level module of an
installed distribution that requirements.lock does not name, then runs the module as
``__main__``: the standard library, metaray and the locked packages import as in the image.
"""

from __future__ import annotations

import compileall
import os
import re
import runpy
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
# The refused modules, computed by the parent process: importlib.metadata costs the measured
# process memory the image would not spend.
REFUSED = "BENCH_NOT_IN_IMAGE"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path = LOCK) -> frozenset[str]:
    """The distributions the image installs (canonical names)."""
    pinned = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), re.MULTILINE)
    return frozenset(_canonical(name) for name in pinned)


def not_in_image(lock: Path = LOCK) -> frozenset[str]:
    """Top-level modules installed here by a distribution the image does not install."""
    import importlib.metadata

    image = locked(lock)
    return frozenset(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if module != "app" and not any(_canonical(d) in image for d in distributions)
    )


class Refuse:
    """Makes the modules it holds look absent, as ``import`` sees an uninstalled package."""

    def __init__(self, modules: frozenset[str]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.modules:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not in the image)")
        return None


def environment() -> dict[str, str]:
    """What a parent adds to the environment of ``python -m bench.image_like``. Also compiles
    metaray's bytecode, as pip does when the image installs the wheel: a module whose bytecode
    is stale (PYTHONDONTWRITEBYTECODE keeps it so) is compiled in the measured process, ~1 MiB
    more RSS."""
    compileall.compile_dir(ROOT / "app", quiet=1)
    return {REFUSED: ",".join(sorted(not_in_image()))}


def main(argv: list[str]) -> None:
    given = os.environ.get(REFUSED)
    refused = frozenset(given.split(",")) if given is not None else not_in_image()
    sys.meta_path.insert(0, Refuse(refused))
    module, *args = argv
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
