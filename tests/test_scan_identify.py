"""scan names what answers every open port (netdiag.probes.identify) and its text fits 100
columns: real peers on loopback addresses of this test's own (127.77.12.x), no namespace."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from netdiag.deadline import Deadline
from netdiag.discovery import peers as peerchecks
from netdiag.discovery.peers import Peer, PortResult
from netdiag.discovery.scan import NetworkScan, ScanReport
from tests.support import hostile
from tests.support.servers import wait_port

HOST = "127.77.12.1"  # a loopback address of our own: ports 3306 and 80 are ours there


@contextlib.contextmanager
def python_http_on(host: str, port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", host, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/proc",  # an empty listing is enough; never the checkout
    )
    try:
        wait_port(host, port, 20, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def open_peer(ip: str, *ports: int) -> Peer:
    return Peer(ip, ports=[PortResult(p, "open", rtt_ms=0.1) for p in ports], status="ok")


def test_http_on_the_mysql_port_is_a_named_mismatch() -> None:
    python = f"Python/{sys.version.split()[0]}"
    with python_http_on(HOST, 3306), hostile.hostile_peer(hostile.silent, HOST, 80):
        peer = open_peer(HOST, 3306, 80)
        peerchecks.identify_protocols([peer], 5.0, Deadline(30), 4)
    mysql_port, http_port = peer.ports
    assert mysql_port.protocol == "http" and mysql_port.status == "protocol_mismatch"
    assert mysql_port.detail == f"3306 speaks HTTP/1.0 (SimpleHTTP/0.6 {python}), not MySQL"
    assert mysql_port.identity["name"] == "HTTP/1.0" and mysql_port.identified == "identified"
    assert mysql_port.facts["status_code"] == 200  # the facts of what answered, as before
    assert http_port.identified == "silent" and http_port.status == "timeout"
    assert http_port.protocol is None and http_port.detail.startswith("open (silent)")
    assert mysql_port.to_dict()["identity"]["product"] == f"SimpleHTTP/0.6 {python}"


@pytest.mark.slow
def test_silent_port_costs_little_next_to_the_others() -> None:
    """The same peers with and without a silent port, in one run: ≤ 0.5 s more."""
    with (
        python_http_on(HOST, 8080),
        hostile.hostile_peer(hostile.ssh_banner, HOST) as ssh,
        hostile.hostile_peer(hostile.silent, HOST, 5432),
    ):

        def timed(ports: tuple[int, ...]) -> float:
            peers = [open_peer(HOST, *ports)]
            start = time.monotonic()
            peerchecks.identify_protocols(peers, 5.0, Deadline(30), 8)
            return time.monotonic() - start

        without = min(timed((8080, ssh.port)) for _ in range(3))
        with_silent = min(timed((8080, ssh.port, 5432)) for _ in range(3))
    assert with_silent - without <= 0.5, (without, with_silent)


def _report(peers: list[Peer]) -> ScanReport:
    return ScanReport([NetworkScan("lab", ["10.77.1.0/24"], ["sweep"], peers=peers)], {}, {})


def test_text_fits_100_columns_and_wide_keeps_todays_layout() -> None:
    from netdiag.commands.scan import render

    long_name = "getting-started-app-with-a-very-long-compose-project-name-mysql-1"
    peer = open_peer("10.77.1.10", 3306, 80, 8443)
    peer.container = long_name
    peer.names = [long_name, "mysql", "db.todo-app"]
    peer.notes = ["the alias mysql is held by several containers: " + "x" * 120]
    peer.mac, peer.rtt_ms, peer.rtt_via, peer.reachable = "02:42:ac:11:00:02", 0.05, "arp", True
    identities = {
        3306: {"protocol": "mysql", "name": "MariaDB", "version": "10.11.19", "product": None},
        80: {
            "protocol": "http",
            "name": "HTTP/1.0",
            "version": None,
            "product": "SimpleHTTP/0.6 Python/3.11.7 and a long tail of server words",
        },
    }
    for pr in peer.ports:
        pr.identity = identities.get(pr.port)
        pr.identified = "identified" if pr.identity else "silent"
        pr.status = "ok" if pr.identity else "timeout"
    text = render(_report([peer]))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, text
    assert any(ln.startswith("    names: " + long_name[:40]) for ln in lines)
    assert any(ln.startswith("    note: the alias mysql") for ln in lines)
    assert "3306 MariaDB 10.11.19" in text and "8443 open (silent)" in text
    header = next(ln for ln in lines if ln.startswith("IP"))
    assert header.split() == ["IP", "CONTAINER", "STATUS", "RTT", "OPEN"]
    wide = render(_report([peer]), wide=True)
    wide_header = next(ln for ln in wide.splitlines() if ln.lstrip().startswith("IP"))
    assert wide_header.split() == [
        "IP", "NAMES", "CONTAINER", "MAC", "STATUS", "RTT", "OPEN", "NOTES"
    ]  # fmt: skip
    assert long_name in wide and "02:42:ac:11:00:02" in wide


@pytest.mark.parametrize("flag", ["--wide"])
def test_wide_is_an_option(flag: str) -> None:
    from netdiag.commands.scan import build_parser

    assert build_parser().parse_args([flag, "--subnet", "10.77.1.0/24"]).wide is True
