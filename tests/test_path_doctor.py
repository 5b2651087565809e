"""doctor's mtu step and ``self --mtu`` on the routed lab (tests/support/path_lab.py).

client → router1 → router2 → server, router2's egress at MTU 1400. doctor runs in the client
namespace against the server's TCP listener (``tcp://server.pathlab:PORT``, the name answered by
the lab's DNS), with and without CAP_NET_RAW: variant (a) warns with the path MTU and the hop
that lowered it, variant (b) fails naming the black hole, its size and the fix (a real TCP
transfer through it stalls in the same test), and with router2 at 1500 the step is one PASS
line. ``self --mtu`` measures the path MTU to the client's default gateway (router1): the full
1500, then a black hole on the link itself when router1's end of it is made smaller — and sends
nothing at all without ``--mtu``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.path_lab import BIG_RESPONSE, PathLab, sh
from tests.support.schemas import netdiag_json
from tests.support.servers import have

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root"),
]
PRIVILEGE = pytest.mark.parametrize("net_raw", [True, False], ids=["raw", "no-net-raw"])
METHOD = {True: "raw", False: "unprivileged"}


@pytest.fixture(scope="module")
def lab() -> Iterator[PathLab]:
    for tool in ("iptables", "setpriv"):
        if not have(tool):
            pytest.skip(f"needs {tool} (scripts/test installs it)")
    with PathLab() as built:
        yield built


@pytest.fixture
def variant(lab: PathLab) -> Iterator[PathLab]:
    """Each test starts from (a) and leaves the lab in (a), whatever happens."""
    lab.black_hole(False)
    try:
        yield lab
    finally:
        lab.black_hole(False)
        lab.set_mtu(1400)
        sh("ip", "-n", lab.ns("r1"), "link", "set", "eth0", "mtu", "1500")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETDIAG_", "MYSQL_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # no Docker in the lab: step skips
    env["COLUMNS"] = "100"
    return env


def netdiag(lab: PathLab, *args: str, net_raw: bool = True) -> subprocess.CompletedProcess:
    """``python -m netdiag ARGS`` in the client namespace."""
    cmd = [*lab.exec_args(net_raw), sys.executable, "-m", "netdiag", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def doctor(lab: PathLab, *args: str, net_raw: bool = True) -> tuple[int, dict, dict]:
    """(exit code, document, the mtu step) of doctor --json against the server's listener."""
    proc = netdiag(lab, "doctor", f"tcp://server.pathlab:{lab.port}", "--json", *args,
                   net_raw=net_raw)  # fmt: skip
    doc = netdiag_json(proc.stdout, "doctor")
    return proc.returncode, doc, next(s for s in doc["steps"] if s["name"] == "mtu")


def step_lines(text: str, name: str) -> list[str]:
    """The text lines of one doctor step: its own line and the note/fix lines under it."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[1:2] == [name])
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return lines[start:end]


@PRIVILEGE
def test_a_mtu_step_warns_with_the_path_mtu_and_the_hop(variant: PathLab, net_raw: bool) -> None:
    lab = variant
    code, doc, mtu = doctor(lab, net_raw=net_raw)
    assert code == 0 and doc["failed_step"] is None, mtu
    names = [s["name"] for s in doc["steps"]]
    assert names.index("mtu") == names.index("connect") + 1
    assert [s["status"] for s in doc["steps"]][names.index("connect")] == "pass"
    assert mtu["status"] == "warn", mtu
    assert mtu["summary"].startswith("path MTU 1400 < eth0 MTU 1500: lowered at hop 2")
    assert lab.addr("r2") in mtu["summary"] and "router2.pathlab" in mtu["summary"]
    assert 'ICMP "fragmentation needed"' in mtu["summary"] and mtu["fix"] is None
    f = mtu["facts"]
    assert (f["status"], f["pmtu"], f["interface_mtu"], f["method"]) == (
        "lower", 1400, 1500, METHOD[net_raw])  # fmt: skip
    assert f["frag_needed_seen"] is True and f["black_hole"] is False
    assert (f["lowered_hop"], f["lowered_at"]) == (2, lab.addr("r2"))
    assert f["first_probe"] == "frag_needed" and f["full_search"] is True
    assert f["hops"] == lab.hops
    assert any(f"{METHOD[net_raw]} sockets" in n for n in mtu["notes"])


@PRIVILEGE
def test_b_mtu_step_fails_naming_the_black_hole_its_size_and_the_fix(
    variant: PathLab, net_raw: bool
) -> None:
    lab = variant
    lab.black_hole(True)
    if net_raw:  # the proof that the lab is a black hole, not only that netdiag says so
        assert lab.transfer(timeout=3) < BIG_RESPONSE, "the transfer completed: no black hole"
        lab.flush_pmtu()
    code, doc, mtu = doctor(lab, net_raw=net_raw)
    assert code == 1 and doc["failed_step"] == "mtu", mtu
    assert doc["not_checked"] == ["greeting", "credentials", "database"]
    assert mtu["status"] == "fail"
    assert mtu["summary"].startswith("MTU black hole: packets above 1400 bytes")
    assert "hop 2" in mtu["summary"] and "big transfers stall" in mtu["summary"]
    f = mtu["facts"]
    assert (f["status"], f["pmtu"], f["black_hole"], f["frag_needed_seen"]) == (
        "black_hole", 1400, True, False)  # fmt: skip
    assert (f["lowered_hop"], f["method"], f["first_probe"]) == (2, METHOD[net_raw], "silent")
    assert doc["fix"] == mtu["fix"]
    assert "com.docker.network.driver.mtu=1400" in mtu["fix"]
    assert "ICMP type 3 code 4" in mtu["fix"] and lab.addr("r2") in mtu["fix"]

    text = netdiag(lab, "doctor", f"tcp://server.pathlab:{lab.port}", net_raw=net_raw)
    assert text.returncode == 1
    lines = step_lines(text.stdout, "mtu")
    assert lines[0].split()[1:4] == ["mtu", "FAIL", "MTU"], lines
    said = " ".join(" ".join(lines).split())
    assert "fix: set the network's MTU to 1400 (docker network create -o com.docker" in said
    assert text.stdout.splitlines()[-1] == "result: FAIL at mtu"
    assert max(len(ln) for ln in text.stdout.splitlines()) <= 100


@PRIVILEGE
def test_full_path_is_one_pass_line_after_two_probes(variant: PathLab, net_raw: bool) -> None:
    lab = variant
    lab.set_mtu(1500)
    code, _, mtu = doctor(lab, net_raw=net_raw)
    assert code == 0 and mtu["status"] == "pass", mtu
    how = f"{METHOD[net_raw]} sockets"
    assert mtu["summary"] == f"path MTU 1500 = eth0 MTU: a full-size DF echo came back ({how})"
    assert mtu["notes"] == [] and mtu["fix"] is None
    f = mtu["facts"]
    assert (f["pmtu"], f["probes"], f["full_search"], f["first_probe"]) == (1500, 2, False, "reply")
    text = netdiag(lab, "doctor", f"tcp://server.pathlab:{lab.port}", net_raw=net_raw)
    assert text.returncode == 0
    assert step_lines(text.stdout, "mtu") == [f" 6 mtu          PASS  {mtu['summary']}"]


def test_the_step_keeps_doctors_timeout(variant: PathLab) -> None:
    """--timeout bounds the step: the search through the black hole is cut and says so."""
    lab = variant
    lab.black_hole(True)
    # no NET_RAW: the raw way first imports scapy (0.3-0.6 s), which no timeout can cut short
    code, _, mtu = doctor(lab, "--timeout", "0.4", net_raw=False)
    assert code == 0 and mtu["status"] == "skip", mtu
    assert "time given (0.4 s) ran out" in mtu["summary"]
    # the probes never wait past the step's end; the margin is for a loaded 2-core machine
    assert mtu["elapsed_ms"] < 400 + 400, mtu["elapsed_ms"]
    # and the same search with the default 3 s finds the black hole
    lab.flush_pmtu()
    code, _, mtu = doctor(lab, net_raw=False)
    assert code == 1 and mtu["facts"]["pmtu"] == 1400


def _gateway_packets(lab: PathLab) -> int:
    """Packets the client sent to its gateway, counted by a rule in the client's OUTPUT chain."""
    out = sh("ip", "netns", "exec", lab.client, "iptables", "-nvxL", "OUTPUT").stdout
    row = next(ln for ln in out.splitlines() if lab.addr("r1") in ln)
    return int(row.split()[0])


@PRIVILEGE
def test_self_mtu_next_to_each_interface_and_nothing_sent_without_it(
    variant: PathLab, net_raw: bool
) -> None:
    lab = variant
    ipt = ["ip", "netns", "exec", lab.client, "iptables"]
    sh(*ipt, "-I", "OUTPUT", "-d", lab.addr("r1"))
    try:
        before = _gateway_packets(lab)
        doc = netdiag_json(netdiag(lab, "self", "--no-dns", "--json", net_raw=net_raw).stdout)
        assert doc["path_mtu"] is None and _gateway_packets(lab) == before
        plain = netdiag(lab, "self", "--no-dns", net_raw=net_raw).stdout
        assert "PATH MTU" not in plain and _gateway_packets(lab) == before

        doc = netdiag_json(
            netdiag(lab, "self", "--mtu", "--no-dns", "--json", net_raw=net_raw).stdout, "self"
        )
        assert _gateway_packets(lab) - before == 2  # the full-size probe and the small one
        [gw] = doc["path_mtu"]
        assert (gw["device"], gw["address"], gw["status"]) == ("eth0", lab.addr("r1"), "ok")
        assert (gw["pmtu"], gw["interface_mtu"], gw["method"]) == (1500, 1500, METHOD[net_raw])
        text = netdiag(lab, "self", "--mtu", "--no-dns", net_raw=net_raw).stdout
        header = next(ln for ln in text.splitlines() if ln.split()[:1] == ["NAME"])
        assert header.split()[3:6] == ["MTU", "PATH", "MTU"], header
        row = next(ln for ln in text.splitlines() if ln.split()[:1] == ["eth0"])
        assert row.split()[3:5] == ["1500", "1500"], row
        assert f"path MTU to gateway {lab.addr('r1')} via eth0: 1500, the full eth0 MTU" in text
    finally:
        sh(*ipt, "-D", "OUTPUT", "-d", lab.addr("r1"), check=False)


@PRIVILEGE
def test_self_mtu_finds_a_black_hole_on_the_link_to_the_gateway(
    variant: PathLab, net_raw: bool
) -> None:
    """router1's end of the client's link at 1400, the client's at 1500: frames the client
    sends full-size are dropped by the veth, no ICMP (nothing routes them): a black hole."""
    lab = variant
    sh("ip", "-n", lab.ns("r1"), "link", "set", "eth0", "mtu", "1400")
    lab.flush_pmtu()
    proc = netdiag(lab, "self", "--mtu", "--no-dns", "--json", net_raw=net_raw)
    assert proc.returncode == 0  # self reports, it never judges
    [gw] = netdiag_json(proc.stdout, "self")["path_mtu"]
    assert (gw["status"], gw["black_hole"], gw["interface_mtu"]) == ("black_hole", True, 1500)
    # a veth passes frames up to its MTU plus 4 bytes of VLAN slack: the kernel's, not ours
    assert 1400 <= gw["pmtu"] <= 1404, gw
    assert gw["verdict"].startswith(f"MTU black hole: packets above {gw['pmtu']} bytes")
    assert f"com.docker.network.driver.mtu={gw['pmtu']}" in gw["fix"]
    text = netdiag(lab, "self", "--mtu", "--no-dns", net_raw=net_raw).stdout
    row = next(ln for ln in text.splitlines() if ln.split()[:1] == ["eth0"])
    assert re.search(rf"1500\s+{gw['pmtu']} \(black hole\)", row), row
    assert any(ln.strip().startswith("fix: set the network's MTU") for ln in text.splitlines())
    assert max(len(ln) for ln in text.splitlines()) <= 100
