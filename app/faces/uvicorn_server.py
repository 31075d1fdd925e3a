"""uvicorn's ``Config`` and ``Server`` without uvicorn's command line.

Why: ``uvicorn/__init__.py`` imports ``uvicorn.main`` (the ``uvicorn`` command) to re-export
``run`` and ``main``, and with it click: ~1.5 MiB of a hook's idle memory that serving never
uses, since ``metaray serve`` builds ``Config`` and ``Server`` itself. Any ``import
uvicorn.<submodule>`` runs that ``__init__`` first, so there is no import of the server alone.

How: when uvicorn is not imported yet, the package is registered from its own spec without
running its ``__init__``; its submodules then import as usual. The first access to an attribute
of the bare package (``uvicorn.run``, ``uvicorn.__version__``...) runs the real ``__init__`` at
once, so code that needs the full package still gets it. ``tests/http/test_serving_imports.py``
checks this against the installed uvicorn.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

PACKAGE = "uvicorn"


def _register_bare_package() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {PACKAGE!r}")
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)

    def complete(name: str) -> Any:
        """Module ``__getattr__``: run the real ``__init__`` now, then answer."""
        del package.__dict__["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = complete
    sys.modules[PACKAGE] = package


_register_bare_package()

from uvicorn.config import Config  # noqa: E402  (after the bare package is registered)
from uvicorn.server import Server  # noqa: E402

__all__ = ["Config", "Server"]
