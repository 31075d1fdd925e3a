"""A real Ray head and worker, started from the pods metaray generates, inside a ``Sandbox``.

The Ray container's generated script and env (Secret keys resolved as the kubelet would) run as
they are, with only what one machine cannot give rewritten (``on_loopback``). A driver, the
namespace's first process, starts both nodes, waits for the head's GCS port, runs the test's
clients at the same time and prints their outcomes as JSON; ``ray stop --force`` always runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from tests.realray.sandbox import PRELUDE, Sandbox

HEAD_FQDN = "demo-head-svc.default.svc.cluster.local"
GCS_PORT = 6379

DRIVER = r"""
import json, os, socket, subprocess, sys, time
plan = json.load(open(sys.argv[1]))
results, nodes, begin = {}, [], time.monotonic()
try:
    for role in ("head", "worker"):
        node = plan[role]
        log = open(os.path.join(plan["tmp"], role + ".log"), "w")
        nodes.append(subprocess.Popen(["/bin/bash", "-c", "--", node["script"]],
                                      env={**plan["base_env"], **node["env"]},
                                      stdout=log, stderr=subprocess.STDOUT))
        if role == "head":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", plan["gcs_port"])) == 0:
                        break
                time.sleep(0.5)
    # The clients run at the same time; each is awaited in turn.
    running = {
        name: subprocess.Popen([plan["python"], "-c", client["code"]],
                               env={**plan["base_env"], **client["env"]},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, client in plan["clients"].items()
    }
    for name, process in running.items():
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results[name] = [process.returncode, out[-2000:], err[-4000:]]
    results["nodes_running"] = [node.poll() is None for node in nodes]
    results["seconds"] = round(time.monotonic() - begin, 1)
finally:
    subprocess.run(["ray", "stop", "--force"], env=plan["base_env"], capture_output=True,
                   timeout=60)
    print(json.dumps(results))
"""


def container_env(
    container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The env the kubelet would give the container: values, and Secret keys resolved.
    (Downward-API fields are left out: nothing these tests read needs them.)"""
    env = {}
    for item in container.get("env", []):
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


def run_nodes(
    box: Sandbox,
    nodes: Mapping[str, tuple[str, Mapping[str, str]]],
    clients: Mapping[str, tuple[Mapping[str, str], str]],
    *,
    timeout: float = 150,
) -> dict[str, Any]:
    """Start ``nodes`` (role -> (script, env)) and run ``clients`` (name -> (env, code));
    each client's [exit code, stdout tail, stderr tail], ``nodes_running`` and ``seconds``."""
    home = box.tmpd / "home"
    home.mkdir()
    plan = {
        **{role: {"script": script, "env": dict(env)} for role, (script, env) in nodes.items()},
        "clients": {
            name: {"env": dict(env), "code": code} for name, (env, code) in clients.items()
        },
        "tmp": str(box.tmpd),
        "python": sys.executable,
        "gcs_port": GCS_PORT,
        # A clean environment: no token from the caller, no ~/.ray, no usage stats.
        "base_env": {
            "PATH": f"{box.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "RAY_TMPDIR": str(box.tmpd),
            "RAY_USAGE_STATS_ENABLED": "0",
        },
    }
    plan_file = box.write("plan.json", json.dumps(plan))
    driver = box.write("driver.py", DRIVER)
    script = PRELUDE + f'python "{driver}" "{plan_file}" >"$OUT/results.json"\ntouch "$OUT/done"\n'
    box.run(script, {}, timeout)
    return dict(json.loads((box.out / "results.json").read_text()))


def logs(box: Sandbox) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(box.tmpd.glob("*.log"))
    )
