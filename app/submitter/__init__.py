"""metaray's Ray job submitter script, shipped as text.

The submitter is ONE self-contained script (standard library and Ray only) that a submitter Job,
a SidecarMode container or a stop Job runs as `python -c "<source()>"` in the stock
rayproject/ray image. It is written as the parts in `PARTS`, so that each stays small; `source()`
joins them into that script: the first part's docstring (the script's: the environment it reads
and its exit codes), one `from __future__` line, the parts' standard library imports merged, then
each part's code after its imports, in order. The imports of one part from another
(`from app.submitter.<part> import ...`) exist for linters and type checkers only: in the
script those names are globals of the same module, so they are left out. The RayJob core does
not import this package: the shell reads `source()` and hands it over as a value.
"""

import ast
from importlib import resources

SUCCEEDED_EXIT = 0
FAILED_EXIT = 64
STOPPED_EXIT = 65
NOT_FOUND_EXIT = 66
ERROR_EXIT = 1

# In the order they run in the script: a part uses only names of the parts before it (and its
# own) at import time.
PARTS = ("config.py", "dashboard_client.py", "runs.py")
_FUTURE = "from __future__ import annotations"


def source() -> str:
    """The submitter script's text, joined from its parts as shipped in the package."""
    package = resources.files(__name__)
    return join([package.joinpath(part).read_text(encoding="utf-8") for part in PARTS])


def join(parts: list[str]) -> str:
    """One script of the parts' texts (see the module's docstring); ValueError where a part is
    not shaped so that the joined script means what the parts do."""
    docstring = ""
    plain: set[str] = set()
    named: dict[str, set[str]] = {}
    bodies = []
    for index, text in enumerate(parts):
        lines = text.splitlines(keepends=True)
        nodes = ast.parse(text).body
        header_end = 0  # the last line of the part's docstring and imports
        for position, node in enumerate(nodes):
            if position == 0 and _is_docstring(node):
                if index == 0:
                    docstring = "".join(lines[: node.end_lineno]).rstrip("\n")
            elif isinstance(node, ast.Import):
                plain.update(_plain_names(node))
            elif isinstance(node, ast.ImportFrom):
                if not _internal(node):
                    named.setdefault(str(node.module), set()).update(_from_names(node))
            else:
                _check_body(nodes[position:], index)
                break
            header_end = node.end_lineno or header_end
        bodies.append("".join(lines[header_end:]).strip("\n"))
    if not docstring:
        raise ValueError(f"{PARTS[0]} opens the script: it needs the script's docstring")
    imports = [f"import {module}" for module in sorted(plain)]
    imports += [f"from {m} import {', '.join(sorted(names))}" for m, names in sorted(named.items())]
    head = f"{docstring}\n\n{_FUTURE}\n\n" + "\n".join(imports)
    return head + "\n\n" + "\n\n\n".join(bodies) + "\n"


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _plain_names(node: ast.Import) -> list[str]:
    if any(alias.asname for alias in node.names):
        raise ValueError("the submitter's parts import modules under their own names only")
    return [alias.name for alias in node.names]


def _from_names(node: ast.ImportFrom) -> list[str]:
    if any(alias.asname for alias in node.names):
        raise ValueError("the submitter's parts import names under their own names only")
    return [alias.name for alias in node.names]


def _internal(node: ast.ImportFrom) -> bool:
    """``from __future__`` (the script has its own) and the parts' imports of each other."""
    module = node.module or ""
    if module == "__future__":
        return True
    if node.level or module.split(".")[0] == "app":
        if node.level or not module.startswith(__name__ + "."):
            raise ValueError(f"the submitter imports nothing of metaray but its parts: {module}")
        return True
    return False


def _check_body(nodes: list[ast.stmt], index: int) -> None:
    """Imports belong in a part's header, where the joining sees them."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            raise ValueError(f"{PARTS[index]}: a module-level import after the first statement")
