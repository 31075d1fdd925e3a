"""A real Ray head for tests, on loopback only.

A bash script runs inside network, PID and mount namespaces of its own (`unshare -n -p -f
--mount-proc`) with only loopback up, so no packet can leave the machine (Ray would otherwise
advertise the machine's routable address) and `ray stop --force` sees only this test's
processes; when the namespace's first process ends, the kernel ends the rest. The script starts
with ``PRELUDE`` (loopback up, the venv on PATH, no inherited Ray settings, `ray stop --force`
on exit), starts a head with ``RAY_HEAD`` and waits for it, writes what the tests read into
``$OUT`` and touches ``$OUT/done`` last. Where namespaces, `ip` or Ray are missing the test is
skipped with a message saying which.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

PRELUDE = r"""
set -u
ip link set lo up || { echo "ip link set lo up failed in the netns" >"$OUT/skip"; exit 0; }
touch "$OUT/entered"
export PATH="$VENV_BIN:$PATH" RAY_USAGE_STATS_ENABLED=0
unset RAY_ADDRESS RAY_API_SERVER_ADDRESS RAY_AUTH_MODE RAY_AUTH_TOKEN
trap 'ray stop --force >/dev/null 2>&1' EXIT
"""

# One CPU, a small object store, the dashboard on 127.0.0.1:8265; its log in $OUT/ray-start.log.
RAY_HEAD = r"""ray start --head --node-ip-address=127.0.0.1 \
  --dashboard-host=127.0.0.1 --dashboard-port=8265 --port=6379 --num-cpus=1 \
  --object-store-memory=100000000 --disable-usage-stats --include-dashboard=true \
  --temp-dir="$TMPD/ray" >"$OUT/ray-start.log" 2>&1 \
  || { echo "ray start failed (see the log below)" >"$OUT/skip"; exit 0; }"""


def venv_bin() -> Path:
    """The venv's bin directory (ray, python); skips the test where something is missing."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is missing: it is needed to run Ray in a loopback-only netns")
    bin_dir = Path(sys.executable).parent
    ray = bin_dir / "ray"
    if not ray.exists():
        pytest.skip(f"{ray} is missing: install the dev extra (ray[default]) to run this test")
    return bin_dir


class Sandbox:
    """A temporary directory (``tmpd``) with the output directory ``out`` in it."""

    def __init__(self, tmpd: Path, bin_dir: Path) -> None:
        self.tmpd = tmpd
        self.bin_dir = bin_dir
        self.out = tmpd / "out"
        self.out.mkdir()
        self.seconds = 0.0

    def write(self, name: str, text: str) -> Path:
        path = self.tmpd / name
        path.write_text(text)
        return path

    def run(self, script: str, env: Mapping[str, str], timeout: float) -> float:
        """Run the script in the namespaces; its seconds. Skips when the namespaces cannot be
        made or the script wrote ``$OUT/skip``; fails when it did not touch ``$OUT/done``."""
        path = self.write("run.sh", script)
        full_env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.tmpd),
            "LANG": "C.UTF-8",
            "OUT": str(self.out),
            "TMPD": str(self.tmpd),
            "VENV_BIN": str(self.bin_dir),
            **env,
        }
        argv = ["unshare", "-n", "-p", "-f", "--mount-proc", "bash", str(path)]
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the real-Ray run took over {timeout:g} s; files: {sorted(self.out.iterdir())}"
            )
        self.seconds = time.monotonic() - started
        if not (self.out / "entered").exists():
            pytest.skip(
                "cannot create network/PID namespaces (`unshare -n -p -f --mount-proc` needs "
                f"root or CAP_SYS_ADMIN): {done.stderr.strip()[:300]}"
            )
        if (self.out / "skip").exists():
            pytest.skip(f"{(self.out / 'skip').read_text().strip()}: {self.debug()}")
        assert (self.out / "done").exists(), (
            f"{done.returncode} {done.stderr[-2000:]} {self.debug()}"
        )
        return self.seconds

    def debug(self) -> str:
        log = self.out / "ray-start.log"
        return log.read_text()[-2000:] if log.exists() else "(no ray start log)"


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    """Skips unless a real Ray can run; removes everything afterwards."""
    bin_dir = venv_bin()
    # Short: Ray's unix socket paths under --temp-dir must stay below 108 bytes.
    tmpd = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))
    try:
        yield Sandbox(tmpd, bin_dir)
    finally:
        shutil.rmtree(tmpd, ignore_errors=True)
