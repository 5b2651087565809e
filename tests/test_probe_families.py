"""A name that lists an address of a family this host cannot use: Docker's /etc/hosts maps
``localhost`` to 127.0.0.1 *and* ::1 even in a container without IPv6, where a connect to ::1
fails at once with EADDRNOTAVAIL. ``netdiag check http://localhost:PORT/ping`` (the agent's
HEALTHCHECK in examples/swarm/stack.yaml) must pass when 127.0.0.1 answers.

Each case runs in a fresh network namespace and mount namespace (``unshare -n -m``) with such a
hosts file bound over /etc/hosts and an HTTP server on its loopback; IPv6 is disabled there
with ``sysctl net.ipv6.conf.all.disable_ipv6=1``, as Docker does. No packet leaves it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.schemas import validate

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"
    ),
]

ROOT = Path(__file__).resolve().parents[1]
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"

# Runs as root inside `unshare -n -m`: the namespace's setup, an HTTP server on 127.0.0.1 (none
# on ::1), then netdiag as a user runs it; prints what each run gave as one JSON object.
DRIVER = r"""
import http.server, json, subprocess, sys, threading
hosts, ipv6, serve = sys.argv[1], sys.argv[2] == "on", sys.argv[3] == "serve"
subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
if not ipv6:
    subprocess.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], check=True)

class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ping)
port = srv.server_address[1]
if serve:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
else:
    srv.server_close()  # nothing listens: every address fails
url = f"http://localhost:{port}/ping"
out = {}
for name, argv in {
    "check": ["check", url],
    "probe": ["probe", "--json", url],
    "wait": ["wait", "-t", "1.5", "-q", url],
}.items():
    r = subprocess.run([sys.executable, "-m", "netdiag", *argv], capture_output=True, text=True,
                       timeout=60)
    out[name] = {"code": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
print(json.dumps(out))
"""


def run_case(ipv6: bool, serve: bool = True) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ndswarm-hosts-"))
    try:
        hosts = tmp / "hosts"
        hosts.write_text(HOSTS)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env = {k: v for k, v in env.items() if not k.startswith(("NETDIAG_", "MYSQL_"))}
        r = subprocess.run(
            ["unshare", "-n", "-m", sys.executable, "-c", DRIVER, str(hosts),
             "on" if ipv6 else "off", "serve" if serve else "closed"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_localhost_passes_without_ipv6_and_says_what_it_skipped() -> None:
    got = run_case(ipv6=False)
    check = got["check"]
    assert check["code"] == 0, check
    assert check["stdout"].startswith("PASS http://localhost:")
    assert "skipped: no IPv6 on this host" in check["stdout"]
    probe = got["probe"]
    doc = validate(json.loads(probe["stdout"]), "probe")
    assert probe["code"] == 0 and doc["ok"] is True
    (result,) = doc["results"]  # one row: the address that answered
    assert result["address"].startswith("127.0.0.1:") and result["status"] == "ok"
    (skipped,) = result["facts"]["skipped"]
    assert skipped["address"].startswith("[::1]:")
    assert skipped["reason"] == "no IPv6 on this host"
    assert "Cannot assign requested address" in skipped["detail"]
    assert got["wait"]["code"] == 0, got["wait"]


@pytest.mark.slow  # a control, 3 s with wait's timeout: the quick tier keeps the main case
def test_nothing_answering_still_fails_with_every_address_shown() -> None:
    got = run_case(ipv6=False, serve=False)
    assert got["check"]["code"] == 1
    doc = validate(json.loads(got["probe"]["stdout"]), "probe")
    assert got["probe"]["code"] == 1
    statuses = {r["address"].rsplit(":", 1)[0]: r["status"] for r in doc["results"]}
    assert statuses["127.0.0.1"] == "refused" and "[::1]" in statuses
    assert got["wait"]["code"] == 124


@pytest.mark.slow  # a control
def test_with_ipv6_a_refusing_1_is_a_real_failure() -> None:
    """IPv6 works here, so ::1 refusing is the service's fault (it listens on IPv4 only)."""
    got = run_case(ipv6=True)
    assert got["check"]["code"] == 1 and "refused" in got["check"]["stdout"]
    doc = validate(json.loads(got["probe"]["stdout"]), "probe")
    statuses = {r["address"].rsplit(":", 1)[0]: r["status"] for r in doc["results"]}
    assert statuses == {"127.0.0.1": "ok", "[::1]": "refused"}
    assert not any("skipped" in r["facts"] for r in doc["results"])
