"""A real Ray head and worker under mutual TLS, with certificates made as cert-manager would
make them from metaray's Certificate specs (their SANs and usages), started from the commands
and env metaray generates.

The network namespace has loopback only, with two more addresses on it standing in for the pod
IPs (10.77.0.1 the head, 10.77.0.2 the worker), and the head Service's FQDN resolving to the
head (a bind-mounted /etc/hosts in the mount namespace). The worker joins the head by its FQDN,
and a client in the head pod connects as metaray's RAY_ADDRESS says, to 127.0.0.1: that works
only because the head certificate names 127.0.0.1, which the run without it shows. A client
without TLS is refused. Skipped, saying why, where namespaces, ip or Ray are missing.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.features.test_tls import ready_loop, with_tls
from tests.loop import CERTIFICATE, POD, group
from tests.realray.nodes import container_env
from tests.realray.sandbox import sandbox

HEAD_IP, WORKER_IP = "10.77.0.1", "10.77.0.2"
HEAD_FQDN = "demo-head-svc.default.svc.cluster.local"
DEADLINE_SECONDS = 300

DRIVER = r'''
import json, os, socket, subprocess, sys, time
plan = json.load(open(sys.argv[1]))
results = {}
nodes = []

def run(env, code, timeout):
    p = subprocess.Popen([plan["python"], "-c", code], env={**plan["base_env"], **env},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out[-2000:], err[-3000:]

COUNT = """
import ray, time
deadline = time.monotonic() + 60
while True:  # the head may still be registering itself on a loaded machine
    try:
        ray.init(log_to_driver=False)
        break
    except ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(2)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and len([n for n in ray.nodes() if n["Alive"]]) < 2:
    time.sleep(1)
print(len([n for n in ray.nodes() if n["Alive"]]))
"""
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
                    if s.connect_ex((plan["head_ip"], 6379)) == 0:
                        break
                time.sleep(0.5)
    results["in_head_pod"] = run(plan["head"]["env"], COUNT, plan["client_seconds"])
    plain = {k: v for k, v in plan["head"]["env"].items() if not k.startswith("RAY_TLS")}
    if not plan["try_plain"]:
        raise SystemExit
    plain["RAY_USE_TLS"] = "0"
    TRY = "import ray; ray.init(log_to_driver=False); print('connected')"
    results["without_tls"] = run(plain, TRY, 40)
finally:
    results["nodes_running"] = [n.poll() is None for n in nodes]
    subprocess.run([plan["ray"], "stop", "--force"], env=plan["base_env"], capture_output=True,
                   timeout=60)
    print(json.dumps(results))
    sys.stdout.flush()
'''


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(obj: Any) -> bytes:
    if isinstance(obj, rsa.RSAPrivateKey):
        return obj.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    return bytes(obj.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def make_ca(spec: dict[str, Any]) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The CA as cert-manager issues ``ray-ca-certificate-<c>``: its usages from the spec."""
    usages = set(spec["usages"])
    key = _key()
    name = spec["commonName"]
    cert = (
        _builder(name, _name(name), key)
        .add_extension(x509.BasicConstraints(ca=spec["isCA"], path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature="digital signature" in usages,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign="cert sign" in usages,
                crl_sign="crl sign" in usages,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(
    spec: dict[str, Any], ips: list[str], ca: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    usages = set(spec["usages"])
    key = _key()
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in spec["dnsNames"]]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    purposes = [ExtendedKeyUsageOID.SERVER_AUTH] if "server auth" in usages else []
    purposes += [ExtendedKeyUsageOID.CLIENT_AUTH] if "client auth" in usages else []
    cert = (
        _builder(spec["dnsNames"][0], ca[1].subject, key)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature="digital signature" in usages,
                content_commitment=False,
                key_encipherment="key encipherment" in usages,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca[0], hashes.SHA256())
    )
    return key, cert


def metaray_objects() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The pods and Certificate specs of a one-worker TLS cluster whose PKI is issued."""
    loop = ready_loop(with_tls(rayVersion="2.52.0") | {"workerGroupSpecs": [group(replicas=1)]})
    certs = {
        name: obj["spec"] for (kind, name), obj in loop.children.items() if kind == CERTIFICATE
    }
    pods = {
        obj["metadata"]["labels"]["ray.io/node-type"]: obj
        for (kind, _), obj in loop.children.items()
        if kind == POD
    }
    return pods, certs


def sandbox_ips(spec: dict[str, Any], pod_ip: str, keep_loopback: bool) -> list[str]:
    """The spec's IP SANs, its pod IPs (the loop's) standing for this sandbox's pod IP."""
    ips = [ip for ip in spec["ipAddresses"] if ip == "127.0.0.1" and keep_loopback]
    return [*ips, pod_ip]


def node_script(args: str, ip: str, worker: bool) -> str:
    script = args.replace("ray start", f"ray start --node-ip-address={ip}", 1)
    if worker:
        script = script.replace(
            "--dashboard-agent-listen-port=52365", "--dashboard-agent-listen-port=52366"
        )
        script = script.replace("--metrics-export-port=8080", "--metrics-export-port=8081")
    return script


def _logs(tmp: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(tmp.glob("*.log"))
    )


def _namespaces_or_skip() -> None:
    probe = subprocess.run(
        ["unshare", "-n", "-p", "-f", "--mount-proc", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(
            "real Ray mTLS test skipped: cannot create network, PID and mount namespaces here "
            "(needs root or user namespaces)"
        )


def run_cluster(keep_loopback: bool, client_seconds: int) -> dict[str, Any]:
    with sandbox() as box:  # skips where unshare, ip or Ray are missing
        _namespaces_or_skip()
        return _run(box.tmpd, box.bin_dir, keep_loopback, client_seconds)


def _run(tmp: Path, bin_dir: Path, keep_loopback: bool, client_seconds: int) -> dict[str, Any]:
    pods, certs = metaray_objects()
    ca = make_ca(certs["ray-ca-certificate-demo"])
    nodes = {}
    for role, ip in (("head", HEAD_IP), ("worker", WORKER_IP)):
        spec = certs[f"ray-{role}-cert-demo"]
        assert spec["ipAddresses"][0] == "127.0.0.1"
        key, cert = make_leaf(spec, sandbox_ips(spec, ip, keep_loopback), ca)
        tls = tmp / role
        tls.mkdir()
        (tls / "tls.key").write_bytes(_pem(key))
        (tls / "tls.crt").write_bytes(_pem(cert))
        (tls / "ca.crt").write_bytes(_pem(ca[1]))
        ray = pods[role]["spec"]["containers"][0]
        env = container_env(ray, {})
        assert env["RAY_USE_TLS"] == "1"
        for var in ("RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT"):
            env[var] = env[var].replace("/etc/ray/tls", str(tls))  # the Secret's mount
        nodes[role] = {"script": node_script(ray["args"][0], ip, role == "worker"), "env": env}
    assert nodes["head"]["env"]["RAY_ADDRESS"] == "127.0.0.1:6379"  # what a head-pod client uses
    home = tmp / "home"
    home.mkdir()
    (tmp / "hosts").write_text(f"127.0.0.1 localhost\n{HEAD_IP} {HEAD_FQDN}\n")
    plan = {
        **nodes,
        "tmp": str(tmp),
        "head_ip": HEAD_IP,
        "client_seconds": client_seconds,
        "try_plain": keep_loopback,
        "python": sys.executable,
        "ray": str(bin_dir / "ray"),
        "base_env": {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "RAY_TMPDIR": str(tmp),
            "RAY_USAGE_STATS_ENABLED": "0",
        },
    }
    (tmp / "plan.json").write_text(json.dumps(plan))
    (tmp / "driver.py").write_text(DRIVER)
    inner = (
        f"ip link set lo up && ip addr add {HEAD_IP}/32 dev lo && ip addr add {WORKER_IP}/32 dev lo"
        f" && mount --bind {tmp / 'hosts'} /etc/hosts"
        f" && exec {sys.executable} {tmp / 'driver.py'} {tmp / 'plan.json'}"
    )
    try:
        done = subprocess.run(
            ["unshare", "-n", "-p", "-f", "-m", "--mount-proc", "sh", "-c", inner],
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Ray did not finish within {DEADLINE_SECONDS} s:\n{_logs(tmp)}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"no results (exit {done.returncode}): {done.stderr[-3000:]}\n{_logs(tmp)}"
    results: dict[str, Any] = json.loads(lines[-1])
    results["logs"] = _logs(tmp)
    return results


def test_head_and_worker_talk_under_mtls_with_metarays_sans() -> None:
    results = run_cluster(keep_loopback=True, client_seconds=150)
    code, out, err = results["in_head_pod"]
    assert code == 0 and out.split()[-1] == "2", f"{err}\n{results['logs']}"
    code, out, _ = results["without_tls"]
    assert code != 0 and "connected" not in out, "a client without TLS got in"
    assert results["nodes_running"] == [True, True], results["logs"]


def test_without_the_loopback_san_a_client_in_the_head_pod_is_refused() -> None:
    results = run_cluster(keep_loopback=False, client_seconds=45)
    code, out, err = results["in_head_pod"]
    assert code != 0 and out.split()[-1:] != ["2"], "127.0.0.1 was not needed after all"
    assert "Failed to connect to GCS at address 127.0.0.1:6379" in err, err
    assert results["nodes_running"][0], f"the head itself stopped: {results['logs']}"
