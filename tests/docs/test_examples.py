"""The README and docs/ cannot drift from the code: every command a user can run offline is run.

In a ``sh`` block, each ``metaray render …`` line is run through the CLI in-process, and each
``curl … localhost:8080 …`` line against a server this module starts. Blocks fenced ``sh cluster``
need a Kubernetes cluster and are not run. Every relative link must name a file that exists.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from app.faces.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```", re.M | re.S)
RENDER = re.compile(r"^(?:\.venv/bin/)?metaray render (.*)$")
CURL = re.compile(r"^curl .*localhost:8080")


def commands(page: Path) -> Iterator[str]:
    """The lines of a page's offline ``sh`` blocks, continuations joined, comments dropped."""
    for language, rest, body in FENCE.findall(page.read_text()):
        if language != "sh" or rest.strip():
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                yield line


def examples() -> list[tuple[str, str]]:
    return [
        (page.relative_to(ROOT).as_posix(), line)
        for page in PAGES
        for line in commands(page)
        if RENDER.match(line) or CURL.match(line)
    ]


EXAMPLES = examples()


def test_the_front_page_is_a_front_page() -> None:
    assert (ROOT / "README.md").stat().st_size <= 12 * 1024
    # The two commands open it: the first code block.
    first = FENCE.search((ROOT / "README.md").read_text())
    assert first is not None
    assert [line.split()[0] for line in first.group(3).splitlines()] == [
        "scripts/serve",
        "scripts/test",
    ]


def test_every_offline_example_is_found() -> None:
    # A change of the page format must not make the examples below silently vanish.
    renders = [line for _, line in EXAMPLES if RENDER.match(line)]
    curls = [line for _, line in EXAMPLES if CURL.match(line)]
    assert len(renders) >= 3 and len(curls) >= 1


@pytest.mark.parametrize(("page", "line"), [e for e in EXAMPLES if RENDER.match(e[1])])
def test_render_example(
    page: str, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    match = RENDER.match(line)
    assert match is not None
    monkeypatch.chdir(ROOT)
    assert cli(["render", *shlex.split(match.group(1))]) == 0, f"{page}: {line}"
    answers = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    # What the hook would answer: children that are real objects, and a status.
    assert answers, f"{page}: {line} printed nothing"
    for answer in answers:
        assert answer["children"] and "status" in answer, f"{page}: {line}"
        assert all(c["kind"] and c["metadata"]["name"] for c in answer["children"])


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "app.faces.cli", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize(("page", "line"), [e for e in EXAMPLES if CURL.match(e[1])])
def test_curl_example(page: str, line: str, server: int) -> None:
    command = line.replace("localhost:8080", f"127.0.0.1:{server}")
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"{page}: {line}: {done.stderr!r}"
    answer = orjson.loads(done.stdout)
    assert answer["children"] and "status" in answer, f"{page}: {line}"


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    missing = [
        target
        for target in LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert not missing, f"{page.name} links to missing files: {missing}"
