"""netdiag scan without the Docker socket, in a lab of network namespaces built per module.

The scanner runs inside the lab's scanner namespace, once with raw sockets (ARP sweep) and
once with CAP_NET_RAW dropped (TCP connect + ICMP ping-socket sweep).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns_lab import NetnsLab
from tests.support.schemas import netdiag_json
from tests.support.timing import slack

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root"),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[NetnsLab]:
    with NetnsLab(hosts_wanted=22) as built:
        yield built


def scan_in_lab(
    lab: NetnsLab, *args: str, net_raw: bool = True, shell_prefix: str = ""
) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [*lab.exec_args(net_raw), sys.executable, "-m", "netdiag", "scan", *args]
    if shell_prefix:
        quoted = " ".join(f"'{c}'" for c in cmd)
        cmd = ["sh", "-c", f"{shell_prefix} && exec {quoted}"]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=90, cwd=ROOT, env={**os.environ}
    )
    return proc, time.monotonic() - start


def peers_by_ip(doc: dict) -> dict[str, dict]:
    return {p["ip"]: p for n in doc["networks"] for p in n["peers"]}


@pytest.mark.parametrize("net_raw", [True, False], ids=["raw-arp", "no-net-raw"])
def test_lab_scan_finds_hosts_names_ports(lab: NetnsLab, net_raw: bool) -> None:
    proc, took = scan_in_lab(lab, "--subnet", lab.subnet, "--json", net_raw=net_raw)
    assert proc.returncode == 1, proc.stderr  # the DROP host is unreachable
    doc = netdiag_json(proc.stdout)
    sweep = doc["networks"][0]["sweeps"][0]
    if net_raw:
        assert sweep["methods"] == ["arp"]
        assert doc["capabilities"]["raw_l2"] is True
    else:
        assert "arp" not in sweep["methods"] and "tcp" in sweep["methods"]
        assert "icmp" in sweep["methods"]  # the lab allows ping sockets
        assert doc["capabilities"]["raw_l2"] is False
    assert sweep["complete"] and sweep["swept"] == 253
    # a /24 in seconds (a serial sweep of 253 addresses would take minutes); the reference
    # run measures this machine's load now
    assert took < 5 + slack(), f"a /24 took {took:.1f}s"

    peers = peers_by_ip(doc)
    # every lab host found, with its DNS names checked forward; empty addresses absent
    for h in lab.hosts:
        peer = peers[h.ip]
        assert f"{h.name}.ndscan" in peer["names"] and h.name in peer["names"], peer
        assert peer["mac"], peer
        checks = {c["name"]: c for c in peer["dns"]}
        assert checks[h.name]["resolves_here"] and not checks[h.name]["shared"]
        open_ports = {p["port"] for p in peer["ports"] if p["state"] == "open"}
        if h.role == "drop":
            assert peer["reachable"] is False and peer["status"] == "timeout"
            assert open_ports == set()
            assert any("filtered" in n for n in peer["notes"])
        else:
            assert peer["reachable"] is True and peer["status"] == "ok", peer
            assert open_ports == set(h.ports), (h, peer["ports"])
    for ip in lab.empty:
        assert ip not in peers
    assert lab.scanner_ip not in peers  # ourselves
    gateway = peers[lab.gateway]  # the default route goes via it: a gateway, never a name
    assert gateway["gateway"] is True and gateway["names"] == [] and gateway["ptr"] == []
    assert not any("DNS does not know" in n for n in gateway["notes"]), gateway
    assert set(peers) == {h.ip for h in lab.hosts} | {lab.gateway}

    # the real MariaDB: identified as MySQL once the mysql probe exists, open port regardless
    maria = peers[lab.host("mariadb").ip]
    port = next(p for p in maria["ports"] if p["port"] == 3306)
    assert port["state"] == "open"
    from netdiag.probes.engine import REGISTRY

    if "mysql" in REGISTRY:
        assert port["protocol"] == "mysql", port
        assert "MariaDB" in json.dumps(port["facts"]) or "1130" in port["detail"], port


def test_lab_scan_table_and_summary(lab: NetnsLab) -> None:
    proc, _ = scan_in_lab(lab, "--subnet", lab.subnet, "--ports", "80,3306")
    assert proc.returncode == 1
    assert proc.stderr == ""  # no progress when stderr is not a terminal
    out = proc.stdout
    assert f"network {lab.subnet}  [sweep]" in out.splitlines()  # the range said once
    assert "names: (gateway)" in out and "DNS does not know" not in out  # a gateway has no name
    assert "/tcp (" not in out, out  # OPEN lists open ports only, no "3306/tcp (timeout)"
    assert "h3.ndscan" in out and "80 HTTP/1.0 ndscan-lab" in out
    assert max(len(line) for line in out.splitlines()) <= 100, out
    drop = lab.host("drop")
    line = next(ln for ln in out.splitlines() if ln.startswith(drop.ip + " "))
    assert "timeout" in line
    assert f"{len(lab.hosts) + 1} peer(s): {len(lab.hosts)} reachable, 1 unreachable" in out


def test_lab_scan_under_low_fd_limit(lab: NetnsLab) -> None:
    """ulimit -n 256 and 22 hosts x 13 ports: connects are windowed, nothing fails for fds."""
    proc, took = scan_in_lab(
        lab, "--subnet", lab.subnet, "--json", net_raw=False, shell_prefix="ulimit -n 256"
    )
    assert proc.returncode == 1, proc.stderr
    doc = netdiag_json(proc.stdout)
    peers = peers_by_ip(doc)
    states = {p["state"] for peer in peers.values() for p in peer["ports"]}
    assert "error" not in states
    assert len(peers) == len(lab.hosts) + 1
    assert took < 9 + slack()


def test_lab_scan_all_reachable_exit_zero(lab: NetnsLab) -> None:
    """A range holding only reachable hosts exits 0 (10.77.X.12/30: hosts .13 and .14)."""
    octet = lab.octet
    proc, _ = scan_in_lab(lab, "--subnet", f"10.77.{octet}.12/30", "--json")
    doc = netdiag_json(proc.stdout)
    assert proc.returncode == 0, doc
    assert {p["ip"] for n in doc["networks"] for p in n["peers"]} == {
        f"10.77.{octet}.13",
        f"10.77.{octet}.14",
    }
    assert doc["ok"] is True


def test_lab_scan_default_scope_without_socket(lab: NetnsLab) -> None:
    """No API, no --subnet: inside a container the attached subnet only; on a host, refuse."""
    from netdiag.discovery.container import detect

    proc, _ = scan_in_lab(lab, "--no-docker", "--json")
    assert "Traceback" not in proc.stderr
    if detect().in_container:
        doc = netdiag_json(proc.stdout)
        assert [n["subnets"] for n in doc["networks"]] == [[lab.subnet]]
        assert doc["networks"][0]["sweeps"][0]["complete"]
    else:
        assert proc.returncode == 1 and proc.stdout == ""
        assert "--subnet" in proc.stderr


def test_lab_scan_quiet_lists_only_the_unreachable(lab: NetnsLab) -> None:
    """-q: the unreachable peer's row and the summary line; nothing when all are reachable."""
    proc, _ = scan_in_lab(lab, "--subnet", lab.subnet, "-q")
    assert proc.returncode == 1, proc.stderr
    drop = lab.host("drop")
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("10.")]
    assert [r.split()[0] for r in rows] == [drop.ip], proc.stdout
    assert "unreachable" in proc.stdout.splitlines()[-1]
    octet = lab.octet
    calm, _ = scan_in_lab(lab, "--subnet", f"10.77.{octet}.12/30", "-q")
    assert (calm.returncode, calm.stdout) == (0, ""), calm.stdout + calm.stderr


def test_lab_scan_keeps_the_global_deadline(lab: NetnsLab) -> None:
    proc, took = scan_in_lab(lab, "--subnet", lab.subnet, "--deadline", "0.4", "--json")
    assert proc.returncode == 1
    doc = netdiag_json(proc.stdout)
    # in-process: the 0.4 s deadline, not the 30 s default; 1.6 s of slack for a loaded machine
    assert doc["summary"]["elapsed_ms"] < 2000, doc["summary"]
    assert took < 0.4 + slack()
    assert any("deadline" in n for n in doc["notes"])


def test_lab_scan_progress_only_on_a_terminal(lab: NetnsLab) -> None:
    import pty

    master, slave = pty.openpty()
    cmd = [*lab.exec_args(), sys.executable, "-m", "netdiag", "scan", "--subnet", lab.subnet]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, timeout=60)
    os.close(slave)
    try:
        progress = os.read(master, 65536).decode()
    finally:
        os.close(master)
    assert f"netdiag scan: {lab.subnet}: swept 253/253" in progress
    assert "netdiag scan:" not in proc.stdout.decode()
