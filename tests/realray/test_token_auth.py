"""A real Ray head and worker, started from the commands and env metaray generates with token
authentication on: the worker joins with the token, and clients without it are refused.

Ray runs in its own network namespace with only loopback up (no traffic can leave the machine,
and ``--node-ip-address=127.0.0.1`` stays loopback), and in its own PID namespace: ``ray stop
--force`` there sees only this test's Ray, and when the namespace's first process exits the
kernel kills everything left in it. Skipped, saying why, where unshare, ip or Ray is missing.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.observed import Observed
from app.raycluster.sync import sync
from tests.features.test_auth import observed_with
from tests.loop import cluster_spec, group, raycluster

BIN = Path(sys.executable).parent
RAY = BIN / "ray"
HEAD_FQDN = "demo-head-svc.default.svc.cluster.local"
DEADLINE_SECONDS = 150  # the whole run inside the namespace; it usually takes 20-40 s

# Runs as the first process of the namespaces: starts both nodes, checks, always cleans up.
DRIVER = r'''
import json, os, signal, subprocess, sys, time
plan = json.load(open(sys.argv[1]))
results = {}
nodes = []
timings = []
begin = time.monotonic()

def client(env, code):
    """A client process, started now and awaited later: the three run at the same time."""
    full = {**plan["base_env"], **env}
    return subprocess.Popen([plan["python"], "-c", code], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def outcome(process, timeout=120):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    timings.append(round(time.monotonic() - begin, 1))
    return process.returncode, out[-2000:], err[-4000:]

COUNT = """
import ray, time
ray.init(address="127.0.0.1:6379", log_to_driver=False)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= 2:
        break
    time.sleep(1)
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
@ray.remote(num_cpus=1)
def where():
    return ray.get_runtime_context().get_node_id()
ids = [n["NodeID"] for n in alive]
ran = ray.get([where.options(scheduling_strategy=On(i, soft=False)).remote() for i in ids])
print(len(alive), int(ray.cluster_resources().get("CPU", 0)), int(ran == ids))
"""
TRY = "import ray; ray.init(address='127.0.0.1:6379', log_to_driver=False); print('connected')"
try:
    for role in ("head", "worker"):
        node = plan[role]
        log = open(os.path.join(plan["tmp"], role + ".log"), "w")
        env = {**plan["base_env"], **node["env"]}
        nodes.append(subprocess.Popen(["/bin/bash", "-c", "--", node["script"]], env=env,
                                      stdout=log, stderr=subprocess.STDOUT))
        if role == "head":
            import socket
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", 6379)) == 0:
                        break
                time.sleep(0.5)
    wrong = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "x" * 44}
    clients = {
        "with_token": client(plan["token_env"], COUNT),
        "without_token": client({}, TRY),
        "wrong_token": client(wrong, TRY),
    }
    for name, process in clients.items():
        results[name] = outcome(process)
    results["nodes_running"] = [node.poll() is None for node in nodes]
    results["seconds"] = [round(time.monotonic() - begin, 1), *timings]
finally:
    subprocess.run([plan["ray"], "stop", "--force"], env=plan["base_env"],
                   capture_output=True, timeout=60)
    print(json.dumps(results))
    sys.stdout.flush()
    # PID 1 of the namespace: everything left dies with it.
'''


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux namespaces"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (util-linux / iproute2) to isolate Ray on loopback"
    if not RAY.exists() or importlib.util.find_spec("ray") is None:
        return "needs Ray: pip install 'ray[default]>=2.52' (the dev extra has it)"
    probe = subprocess.run(
        ["unshare", "-n", "-p", "-f", "--mount-proc", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return "cannot create network and PID namespaces here (needs root or user namespaces)"
    return None


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """Ray's unix sockets live under its temp dir: keep the path short (108-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix="wt12ray-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def metaray_pods() -> tuple[dict[str, Any], dict[str, Any], str]:
    """The head and worker pods metaray answers once its token Secret exists, and the token."""
    spec = cluster_spec(group(replicas=1), rayVersion="2.52.0")
    spec["authOptions"] = {"mode": "token"}
    first = sync(raycluster(spec), Observed(), entropy=os.urandom(32))
    [secret] = [c for c in first.children if c["kind"] == "Secret"]
    second = sync(raycluster(spec), observed_with(secret))
    pods = {
        p["metadata"]["labels"]["ray.io/node-type"]: p
        for p in second.children
        if p["kind"] == "Pod"
    }
    return pods["head"], pods["worker"], secret["stringData"]["auth_token"]


def container_env(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The env the kubelet would give the Ray container: values, and Secret keys resolved.
    (Downward-API fields are left out: nothing in this test reads them.)"""
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def on_loopback(script: str, *, worker: bool) -> str:
    """The generated script, with what a pod network gives and one machine does not: the head
    Service's name resolves to loopback, and the second node takes its own agent ports."""
    replaced = script.replace(f"--address={HEAD_FQDN}:", "--address=127.0.0.1:")
    if worker:
        replaced = replaced.replace(
            "--dashboard-agent-listen-port=52365", "--dashboard-agent-listen-port=52366"
        )
        replaced = replaced.replace("--metrics-export-port=8080", "--metrics-export-port=8081")
    replaced = replaced.replace("ray start", "ray start --node-ip-address=127.0.0.1", 1)
    assert replaced.count("127.0.0.1") == (2 if worker else 1), replaced
    return replaced


def test_a_worker_joins_with_the_token_and_clients_without_it_are_refused(
    short_tmp: Path,
) -> None:
    reason = _why_not()
    if reason is not None:
        pytest.skip(f"real Ray token-auth test skipped: {reason}")
    head, worker, token = metaray_pods()
    assert base64.b64decode(token) and len(base64.b64decode(token)) == 32
    secrets = {"demo": {"auth_token": token}}
    nodes = {}
    for role, pod in (("head", head), ("worker", worker)):
        ray = pod["spec"]["containers"][0]
        assert ray["command"] == ["/bin/bash", "-c", "--"]
        env = container_env(ray, secrets)
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == token
        nodes[role] = {"script": on_loopback(ray["args"][0], worker=role == "worker"), "env": env}
    home = short_tmp / "home"
    home.mkdir()
    plan = {
        **nodes,
        "tmp": str(short_tmp),
        "python": sys.executable,
        "ray": str(RAY),
        # A clean environment: no token from the caller, no ~/.ray/auth_token, no usage stats.
        "base_env": {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "RAY_TMPDIR": str(short_tmp),
            "RAY_USAGE_STATS_ENABLED": "0",
        },
        "token_env": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
    }
    (short_tmp / "plan.json").write_text(json.dumps(plan))
    (short_tmp / "driver.py").write_text(DRIVER)
    driver, plan_file = short_tmp / "driver.py", short_tmp / "plan.json"
    inner = f"ip link set lo up && exec {sys.executable} {driver} {plan_file}"
    try:
        done = subprocess.run(
            ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", inner],
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Ray did not finish within {DEADLINE_SECONDS} s:\n{_logs(short_tmp)}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"no results (exit {done.returncode}): {done.stderr[-3000:]}\n{_logs(short_tmp)}"
    results = json.loads(lines[-1])
    code, out, err = results["with_token"]
    assert code == 0, f"a client with the token failed: {err}\n{_logs(short_tmp)}"
    alive, cpus, placed = (int(part) for part in out.split())
    assert (alive, cpus) == (2, 2), "the worker joined the head with the token"
    assert placed == 1, "a task pinned to each node ran there"
    for case in ("without_token", "wrong_token"):
        code, out, err = results[case]
        assert code != 0 and "connected" not in out, f"a client {case.replace('_', ' ')} got in"
        assert "Authentication" in err or "InvalidAuthToken" in err, err
    assert results["nodes_running"] == [True, True], _logs(short_tmp)


def _logs(tmp: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(tmp.glob("*.log"))
    )
