"""`netdiag self` inside a network namespace with known interfaces, routes and resolv.conf."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netns as lab
from tests.support.schemas import netdiag_json

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.netns]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETDIAG_")}
    env.pop("DOCKER_HOST", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_in(ns: lab.SelfNamespace, *args: str, **env: str) -> subprocess.CompletedProcess:
    argv = ns.exec_argv(sys.executable, "-m", "netdiag", "self", *args)
    return subprocess.run(
        argv, capture_output=True, text=True, env=_env(**env), cwd=ROOT, timeout=60
    )


@pytest.fixture
def ns() -> Iterator[lab.SelfNamespace]:
    with lab.SelfNamespace() as space:
        yield space


class DnsInNamespace:
    """tests.support.mini_dns running inside a namespace; ``queries()`` reads what it logged."""

    def __init__(self, netns: str, addr: str, records: list[str]) -> None:
        argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "tests.support.mini_dns"]
        self.proc = subprocess.Popen(
            [*argv, addr, "53", *records], stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), line

    def queries(self) -> list[str]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return [line[len("query ") :] for line in out.splitlines() if line.startswith("query ")]


def test_json_exact(ns: lab.SelfNamespace) -> None:
    res = run_in(ns, "--json", "--no-dns", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    doc = netdiag_json(res.stdout)
    ifaces = doc["interfaces"]
    assert [i["name"] for i in ifaces] == ["lo", "veth0"]
    lo, veth = ifaces
    assert (lo["index"], lo["state"], lo["loopback"], lo["mtu"]) == (1, "up", True, 65536)
    assert [(a["address"], a["prefixlen"], a["scope"]) for a in lo["addresses"]] == [
        ("127.0.0.1", 8, "host"),
        ("::1", 128, "host"),
    ]
    assert (veth["state"], veth["mac"], veth["mtu"], veth["kind"]) == ("up", lab.MAC, 1400, "veth")
    assert veth["index"] > 1 and veth["operstate"] == "up"
    assert veth["addresses"] == [
        {"family": "ipv4", "address": lab.ADDR4, "prefixlen": 24, "network": lab.NET4, "scope": "global"},
        {"family": "ipv6", "address": lab.ADDR6, "prefixlen": 64, "network": lab.NET6, "scope": "global"},
    ]  # fmt: skip
    routes = [
        (r["family"], r["destination"], r["default"], r["gateway"], r["device"], r["metric"])
        for r in doc["routes"]
    ]
    assert routes == [
        ("ipv4", "0.0.0.0/0", True, lab.GW4, "veth0", None),
        ("ipv4", lab.NET4, False, None, "veth0", None),
        ("ipv4", lab.STATIC_NET, False, lab.GW4, "veth0", lab.STATIC_METRIC),
        ("ipv6", lab.NET6, False, None, "veth0", 256),
        ("ipv6", "::/0", True, lab.GW6, "veth0", 1024),
    ]
    assert doc["routes"][1]["prefsrc"] == lab.ADDR4
    assert doc["default_gateways"] == [
        {"family": "ipv4", "gateway": lab.GW4, "device": "veth0"},
        {"family": "ipv6", "gateway": lab.GW6, "device": "veth0"},
    ]
    assert doc["ipv4_subnets"] == [lab.NET4]
    assert doc["interfaces_source"] == "netlink"
    resolver = doc["resolver"]
    assert resolver["path"] == "/etc/resolv.conf"
    assert resolver["nameservers"] == ["127.0.0.11"]
    assert resolver["search"] == ["lab.test", "example.internal"]
    assert (resolver["ndots"], resolver["docker_embedded_dns"], resolver["overridden"]) == (
        0, True, False,
    )  # fmt: skip
    assert resolver["defaults"] == ["timeout", "attempts"]
    assert doc["dns_check"]["performed"] is False
    assert doc["dns_check"]["detail"] == "skipped: --no-dns"
    assert doc["docker"]["reachable"] is False
    assert doc["docker"]["note"] == "no Docker socket at /nonexistent/docker.sock"
    assert doc["notes"] == []


def test_text_is_aligned_and_plain(ns: lab.SelfNamespace) -> None:
    res = run_in(ns, "--no-dns", "--no-docker")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "default gateway  10.78.1.1 via veth0, fd78:1::1 via veth0" in lines
    assert "ipv4 subnets     10.78.1.0/24" in lines
    header = next(line for line in lines if line.strip().startswith("NAME"))
    veth = next(line for line in lines if line.strip().startswith("veth0"))
    assert veth.split() == ["veth0", "up", lab.MAC, "1400", "10.78.1.2/24", "fd78:1::2/64"]
    assert veth.index(lab.MAC) == header.index("MAC")  # columns line up
    assert any(ln.split()[:3] == ["default", "10.78.1.1", "veth0"] for ln in lines)
    ns_line = next(line for line in lines if line.strip().startswith("nameservers"))
    assert "127.0.0.11" in ns_line and "Docker's embedded DNS" in ns_line
    assert "  search       lab.test example.internal" in lines
    assert "  options      ndots:0 timeout:5 (default) attempts:2 (default)" in lines


def test_dns_check_asks_the_embedded_dns_once(ns: lab.SelfNamespace) -> None:
    ptr = "2.1.78.10.in-addr.arpa."
    server = DnsInNamespace(ns.name, "127.0.0.11", [f"{ptr}:PTR:subject.lab.test."])
    res = run_in(ns, "--json", "--no-docker")
    asked = server.queries()
    assert res.returncode == 0, res.stderr
    check = netdiag_json(res.stdout)["dns_check"]
    assert check["performed"] is True
    assert (check["query"], check["server"], check["status"]) == (
        f"PTR {ptr}", "127.0.0.11", "ok",
    )  # fmt: skip
    assert check["answers"] == ["subject.lab.test."]
    assert asked == [f"{ptr} PTR"]


def test_dns_check_skipped_for_a_resolver_off_this_machine(ns: lab.SelfNamespace) -> None:
    """A non-loopback resolver (the peer here) gets no packet at all."""
    server = DnsInNamespace(ns.peer, lab.GW4, ["x.:A:10.78.1.9"])
    res = run_in(ns, "--json", "--no-docker", NETDIAG_RESOLVER=lab.GW4)
    time.sleep(0.3)
    asked = server.queries()
    assert res.returncode == 0, res.stderr
    check = netdiag_json(res.stdout)["dns_check"]
    assert check["performed"] is False
    assert check["detail"].startswith(f"skipped: resolver {lab.GW4} is neither")
    assert netdiag_json(res.stdout)["resolver"]["overridden"] is True
    assert asked == []


def test_no_dns_server_answers(ns: lab.SelfNamespace) -> None:
    """127.0.0.11 with nobody listening: the check reports it and the command still exits 0."""
    res = run_in(ns, "--json", "--no-docker")
    assert res.returncode == 0, res.stderr
    check = netdiag_json(res.stdout)["dns_check"]
    assert check["performed"] is True
    assert (check["status"], check["detail"]) == ("no_reply", "no reply within 2s")
