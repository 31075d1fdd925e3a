"""A real Ray head and worker, started from the commands and env metaray generates with token
authentication on: the worker joins with the token, and clients without it are refused.

Ray runs in its own network namespace with only loopback up (no traffic can leave the machine,
and ``--node-ip-address=127.0.0.1`` stays loopback), and in its own PID namespace: ``ray stop
--force`` there sees only this test's Ray, and when the namespace's first process exits the
kernel kills everything left in it. Skipped, saying why, where unshare, ip or Ray is missing.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from app.core.observed import Observed
from app.raycluster.sync import sync
from tests.features.test_auth import observed_with
from tests.loop import cluster_spec, group, raycluster
from tests.realray.nodes import container_env, logs, on_loopback, run_nodes
from tests.realray.sandbox import sandbox

# Counts the live nodes and runs a task pinned to each.
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


def test_a_worker_joins_with_the_token_and_clients_without_it_are_refused() -> None:
    head, worker, token = metaray_pods()
    assert base64.b64decode(token) and len(base64.b64decode(token)) == 32
    secrets = {"demo": {"auth_token": token}}
    nodes = {}
    for role, pod in (("head", head), ("worker", worker)):
        ray = pod["spec"]["containers"][0]
        assert ray["command"] == ["/bin/bash", "-c", "--"]
        env = container_env(ray, secrets)
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == token
        nodes[role] = (on_loopback(ray["args"][0], worker=role == "worker"), env)
    clients = {
        "with_token": ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}, COUNT),
        "without_token": ({}, TRY),
        "wrong_token": ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "x" * 44}, TRY),
    }
    with sandbox() as box:
        results = run_nodes(box, nodes, clients)
        code, out, err = results["with_token"]
        assert code == 0, f"a client with the token failed: {err}\n{logs(box)}"
        alive, cpus, placed = (int(part) for part in out.split())
        assert (alive, cpus) == (2, 2), "the worker joined the head with the token"
        assert placed == 1, "a task pinned to each node ran there"
        for case in ("without_token", "wrong_token"):
            code, out, err = results[case]
            assert code != 0 and "connected" not in out, f"a client {case.replace('_', ' ')} got in"
            assert "Authentication" in err or "InvalidAuthToken" in err, err
        assert results["nodes_running"] == [True, True], logs(box)
