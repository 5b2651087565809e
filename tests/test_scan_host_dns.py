"""scan on a Docker host never asks the host's resolver for container names (issue 13 item 9).

The "host" is a network namespace of the test's own: it sees the real Docker socket (the file
system is shared) but has no link to the Docker network, and its resolv.conf
(/etc/netns/NAME/resolv.conf, bind-mounted by ``ip netns exec``) points at a DNS server of the
test's own on its loopback that records every question. Container names live in the embedded
DNS, which only answers inside the network: the recorder must hear nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_engine import DockerLab
from tests.support.schemas import netdiag_json

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.docker,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root"),
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETDIAG_", "DOCKER_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


class RecordingHost:
    """A namespace with lo only, a resolv.conf naming 127.0.0.1, and a recorder on :53 there."""

    def __init__(self) -> None:
        self.name = f"ndcd-host-{uuid.uuid4().hex[:6]}"
        self.etc = Path("/etc/netns") / self.name
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self.etc.mkdir(parents=True)
        (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\nsearch lab.test\n")
        argv = ["ip", "netns", "exec", self.name, sys.executable, "-m", "tests.support.mini_dns"]
        self.server = subprocess.Popen(
            [*argv, "127.0.0.1", "53"], stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT
        )
        assert self.server.stdout is not None
        assert self.server.stdout.readline().startswith("ready")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        argv = ["ip", "netns", "exec", self.name, sys.executable, "-m", "netdiag", *args]
        return subprocess.run(
            argv, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=90
        )

    def queries(self) -> list[str]:
        self.server.terminate()
        out, _ = self.server.communicate(timeout=10)
        return [line[len("query ") :] for line in out.splitlines() if line.startswith("query ")]

    def close(self) -> None:
        if self.server.poll() is None:
            self.server.kill()
            self.server.wait(10)
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


@pytest.fixture
def host() -> Iterator[RecordingHost]:
    made = RecordingHost()
    try:
        yield made
    finally:
        made.close()


def test_host_side_scan_sends_no_container_name_to_the_host_resolver(
    docker_lab: DockerLab, host: RecordingHost
) -> None:
    net = docker_lab.network(internal=True)
    web = docker_lab.container(net, aliases=("web",), command=("httpd", "-f", "-p", "80"))
    db = docker_lab.container(net, aliases=("mysql",))
    proc = host.run("scan", "--network", net, "--json", "--timeout", "0.5", "--deadline", "15")
    text = host.run("scan", "--network", net, "--timeout", "0.5", "--deadline", "15")
    asked = host.queries()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert asked == [], asked  # no container name (and nothing else) reached the host resolver
    doc = netdiag_json(proc.stdout)
    assert doc["identity"]["container_id"] is None  # a host, as far as Docker can tell
    (network,) = doc["networks"]
    assert network["name"] == net and network["dns_checked"] is False
    peers = {p["container"]: p for p in network["peers"]}
    assert {web, "web"} <= set(peers[web]["names"]) and {db, "mysql"} <= set(peers[db]["names"])
    assert all(p["dns"] == [] and p["ptr"] == [] for p in peers.values())
    assert not any("does not resolve" in n for p in peers.values() for n in p["notes"])
    assert any(f"--network {net} netdiag scan" in n for n in network["notes"]), network["notes"]
    assert "resolve only inside the network" in " ".join(text.stdout.split())  # wrapped text
