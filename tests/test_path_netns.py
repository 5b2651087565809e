"""netdiag path on a routed lab of four namespaces, against traceroute and tracepath.

tests/support/path_lab.py builds client → router1 → router2 → server with router2's egress at
MTU 1400. Variant (a): ICMP errors flow; (b): router2 drops its "fragmentation needed" — a black
hole, proven by a real TCP transfer that stalls; (c): router1 drops UDP and ICMP to the server
and TCP to all ports but one. netdiag runs inside the client namespace with and without
CAP_NET_RAW; the reference tools run on the same lab in the same test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.path_lab import BIG_RESPONSE, PathLab
from tests.support.schemas import netdiag_json
from tests.support.servers import have

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root"),
]
PRIVILEGE = pytest.mark.parametrize("net_raw", [True, False], ids=["raw", "no-net-raw"])


@pytest.fixture(scope="module")
def lab() -> Iterator[PathLab]:
    for tool in ("traceroute", "tracepath", "iptables", "setpriv"):
        if not have(tool):
            pytest.skip(f"needs {tool} (scripts/test installs it)")
    with PathLab() as built:
        yield built


@pytest.fixture
def variant(lab: PathLab) -> Iterator[PathLab]:
    """Each test starts from (a) and leaves the lab in (a), whatever happens."""
    lab.black_hole(False)
    lab.filter_to_server(None)
    try:
        yield lab
    finally:
        lab.black_hole(False)
        lab.filter_to_server(None)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETDIAG_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def netdiag_path(
    lab: PathLab, *args: str, net_raw: bool = True
) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [*lab.exec_args(net_raw), sys.executable, "-m", "netdiag", "path", *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, time.monotonic() - start


def path_json(lab: PathLab, *args: str, net_raw: bool = True) -> tuple[int, dict]:
    proc, _ = netdiag_path(lab, lab.server, "--json", *args, net_raw=net_raw)
    return proc.returncode, netdiag_json(proc.stdout, "path")


def traceroute(lab: PathLab, *flags: str) -> list[str | None]:
    """traceroute -n's first address per hop (None for a line of stars)."""
    out = subprocess.run(
        [*lab.exec_args(), "traceroute", "-n", "-w", "1", "-m", "8", *flags, lab.server],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    hops: list[str | None] = []
    for line in out.splitlines()[1:]:
        m = re.match(r"\s*\d+\s+(\S+)", line)
        if m:
            hops.append(None if m.group(1) == "*" else m.group(1))
    while hops and hops[-1] is None:
        hops.pop()
    return hops


def tracepath(lab: PathLab, seconds: float = 20) -> tuple[int | None, str]:
    """tracepath -n's final path MTU (None if it gave none within ``seconds``) and its output."""
    proc = subprocess.run(
        ["timeout", str(seconds), *lab.exec_args(), "stdbuf", "-oL", "tracepath", "-n",
         lab.server], capture_output=True, text=True, timeout=seconds + 30,
    )  # fmt: skip
    m = re.search(r"Resume: pmtu (\d+)", proc.stdout)
    return (int(m.group(1)) if m else None), proc.stdout


def addresses(doc: dict) -> list[str | None]:
    return [h["address"] for h in doc["hops"]]


MODES = {"icmp": ["-I"], "udp": [], "tcp": ["-T", "-p", "8080"]}


@PRIVILEGE
@pytest.mark.parametrize("proto", list(MODES))
def test_a_hops_match_traceroute_and_pmtu_matches_tracepath(
    variant: PathLab, proto: str, net_raw: bool
) -> None:
    lab = variant
    reference = traceroute(lab, *MODES[proto])
    pmtu, _ = tracepath(lab)
    extra = ["--proto", proto] + (["--port", str(lab.port)] if proto == "tcp" else [])
    code, doc = path_json(lab, *extra, net_raw=net_raw)

    assert reference == lab.hops, reference
    assert addresses(doc) == reference
    assert code == 0 and doc["ok"] is True and doc["reached"] is True
    assert [h["name"] for h in doc["hops"]] == [lab.names()[a] for a in lab.hops]
    for hop in doc["hops"]:
        assert (hop["sent"], hop["received"], hop["loss"]) == (3, 3, 0.0), hop
        rtt = hop["rtt_ms"]
        assert 0 <= rtt["min"] <= rtt["avg"] <= rtt["max"] < 1000
    assert doc["hops"][-1]["target"] is True
    assert doc["privilege"]["method"] == ("raw" if net_raw else "unprivileged")
    if proto == "tcp":
        assert doc["tcp_state"] == "open"

    m = doc["mtu"]
    assert pmtu == 1400
    if proto == "tcp" and not net_raw:
        # connect() cannot size a SYN; ICMP echo (a ping socket) measures the path instead
        assert m["protocol"] == "icmp"
        assert any("connect" in g for g in doc["privilege"]["gave_up"])
    assert (m["pmtu"], m["status"], m["interface_mtu"]) == (pmtu, "lower", 1500)
    assert m["frag_needed_seen"] is True and m["black_hole"] is False
    assert (m["lowered_hop"], m["lowered_at"]) == (2, lab.addr("r2"))
    assert m["probes"] <= 3  # the full size, then the size router2's ICMP named
    assert any("fragmentation needed" in v and "hop 2" in v for v in doc["verdicts"])


def test_a_text_output_and_a_transfer_that_completes(variant: PathLab) -> None:
    lab = variant
    proc, _ = netdiag_path(lab, lab.server)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"path to {lab.server}: ICMP echo, 3 probe(s) per hop, raw")
    for ttl, address in enumerate(lab.hops, 1):
        row = next(ln for ln in lines if ln.split()[:2] == [str(ttl), address])
        assert lab.names()[address] in row and " 0%" in row
    assert f"reached {lab.server} in 3 hop(s)" in lines
    assert any(ln.startswith("path MTU 1400 < eth0 MTU 1500") for ln in lines)
    assert max(len(ln) for ln in lines) <= 100
    lab.flush_pmtu()
    assert lab.transfer() == BIG_RESPONSE  # ICMP flows: TCP learns 1400 and finishes


@PRIVILEGE
def test_b_black_hole_named_with_its_size_and_a_transfer_stalls(
    variant: PathLab, net_raw: bool
) -> None:
    lab = variant
    lab.black_hole(True)
    if net_raw:  # the proof, once: a real transfer stalls and tracepath gives no result
        got = lab.transfer(timeout=4)
        assert got < BIG_RESPONSE, "the transfer completed: the lab is not a black hole"
        pmtu, out = tracepath(lab, seconds=8)
        assert pmtu is None and "pmtu 1400" not in out and "no reply" in out, out
        lab.flush_pmtu()
    code, doc = path_json(lab, net_raw=net_raw)
    assert code == 1 and doc["ok"] is False and doc["reached"] is True
    assert addresses(doc) == lab.hops
    m = doc["mtu"]
    assert (m["status"], m["pmtu"], m["black_hole"], m["frag_needed_seen"]) == (
        "black_hole", 1400, True, False)  # fmt: skip
    assert (m["lowered_hop"], m["lowered_at"]) == (2, lab.addr("r2"))
    black = [v for v in doc["verdicts"] if v.startswith("MTU black hole")]
    assert len(black) == 1 and "above 1400 bytes" in black[0] and "hop 2" in black[0]
    fix = next(v for v in doc["verdicts"] if v.startswith("fix:"))
    assert "com.docker.network.driver.mtu=1400" in fix and "ICMP type 3 code 4" in fix
    proc, _ = netdiag_path(lab, lab.server, net_raw=net_raw)
    assert proc.returncode == 1
    assert sum(1 for ln in proc.stdout.splitlines() if ln.startswith("MTU black hole")) == 1


@PRIVILEGE
def test_c_filtered_udp_and_icmp_stop_at_hop_1_tcp_gets_through(
    variant: PathLab, net_raw: bool
) -> None:
    lab = variant
    lab.filter_to_server(lab.port)
    for proto in ("udp", "icmp"):
        reference = traceroute(lab, *MODES[proto])
        code, doc = path_json(lab, "--proto", proto, net_raw=net_raw)
        assert reference == [lab.addr("r1")]
        assert [a for a in addresses(doc) if a] == reference
        assert code == 1 and doc["reached"] is False and doc["ended"] == "gap"
        assert doc["mtu"]["pmtu"] is None
    reference = traceroute(lab, "-T", "-p", str(lab.port))
    code, doc = path_json(lab, "--proto", "tcp", "--port", str(lab.port), net_raw=net_raw)
    assert reference == lab.hops and addresses(doc) == reference
    assert code == 0 and doc["tcp_state"] == "open"
    if net_raw:  # SYN probes with a payload still measure the path: router2 answers them
        assert (doc["mtu"]["protocol"], doc["mtu"]["pmtu"]) == ("tcp", 1400)
    else:
        assert doc["mtu"]["pmtu"] is None
        assert "raw sockets" in doc["mtu"]["notes"][0]
    code, doc = path_json(lab, "--proto", "tcp", "--port", str(lab.closed_port), net_raw=net_raw)
    assert code == 1 and doc["tcp_state"] == "filtered"


def test_without_ping_sockets_icmp_falls_back_to_udp(variant: PathLab) -> None:
    lab = variant
    sysctl = [*lab.exec_args(), "sysctl", "-qw"]
    subprocess.run([*sysctl, "net.ipv4.ping_group_range=1 0"], check=True)
    try:
        code, doc = path_json(lab, net_raw=False)
    finally:
        subprocess.run([*sysctl, "net.ipv4.ping_group_range=0 2147483647"], check=True)
    assert code == 0 and doc["proto"] == "udp" and addresses(doc) == lab.hops
    assert any("ping_group_range" in g for g in doc["privilege"]["gave_up"])
    assert (doc["mtu"]["protocol"], doc["mtu"]["pmtu"]) == ("udp", 1400)


def test_closed_port_and_url_target(variant: PathLab) -> None:
    lab = variant
    code, doc = path_json(lab, "--proto", "tcp", "--port", str(lab.closed_port))
    assert code == 0 and doc["tcp_state"] == "closed" and doc["reached"] is True
    proc, _ = netdiag_path(lab, f"http://server.pathlab:{lab.port}/", "--json")
    doc = netdiag_json(proc.stdout, "path")
    assert (doc["proto"], doc["port"], doc["address"]) == ("tcp", lab.port, lab.server)
    assert doc["tcp_state"] == "open"


def test_deadline_is_kept(variant: PathLab) -> None:
    """A filtered path would wait for every silent TTL: --deadline cuts it short."""
    lab = variant
    lab.filter_to_server(lab.port)
    proc, _ = netdiag_path(
        lab, lab.server, "--proto", "udp", "--timeout", "5", "--deadline", "0.5", "--json"
    )
    doc = netdiag_json(proc.stdout, "path")
    assert proc.returncode == 1 and doc["reached"] is False
    # the probing stops at 0.5 s; the rest is interpreter start and imports on a busy machine
    assert doc["elapsed_ms"] < 1500, doc["elapsed_ms"]


def test_unreachable_network_and_no_route(variant: PathLab) -> None:
    """router1 knows no route to 10.99.0.1 and says so; router1 itself cannot send at all."""
    lab = variant
    # router1's "network unreachable" shares the per-peer token bucket of its ICMP errors
    # (net.ipv4.route.error_cost, one a second, global): with icmp_ratelimit=0 every time
    # exceeded it sent the client in the tests before empties it, so let a second refill it
    time.sleep(1.5)
    proc, _ = netdiag_path(lab, "10.99.0.1", "--no-dns", "--json")
    doc = netdiag_json(proc.stdout, "path")
    assert proc.returncode == 1 and doc["ended"] == "unreachable", doc["hops"]
    assert addresses(doc) == [lab.addr("r1")] and doc["hops"][0]["answer"] == "unreachable"
    assert doc["verdicts"][0] == f"not reached: network unreachable from {lab.addr('r1')}"
    cmd = [*lab.exec_args(ns=lab.ns("r1")), sys.executable, "-m", "netdiag", "path",
           "10.99.0.1", "--no-dns"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())
    assert proc.returncode == 1, proc.stderr
    assert "not reached: Network is unreachable (no route from here)" in proc.stdout
