"""netdiag path's pure parts: wire parsers (fuzzed), the MTU search plan, targets, usage errors.

Packets for the parsers are built by scapy (the same builder the raw prober uses) and, for
IP_RECVERR, taken from the real kernel on loopback.
"""

from __future__ import annotations

import errno
import socket
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.discovery.icmp import parse_echo_reply
from netdiag.errors import UsageError
from netdiag.path import mtu, wire
from netdiag.path.hops import summarize, tcp_state
from netdiag.path.probers import Answer, Sent, classify_error
from tests.conftest import run_netdiag, usage_error
from tests.support.schemas import netdiag_json

inet = pytest.importorskip("scapy.layers.inet")
IP, ICMP, UDP, TCP = inet.IP, inet.ICMP, inet.UDP, inet.TCP

CLIENT, ROUTER, SERVER = "10.80.9.2", "10.81.9.2", "10.82.9.2"


def icmp_error(icmp_type: int, code: int, probe, **fields) -> bytes:
    """What a router sends back: its IP header, ICMP, our probe's IP header + 8 bytes."""
    quoted = bytes(probe)[:28]
    return bytes(IP(src=ROUTER, dst=CLIENT) / ICMP(type=icmp_type, code=code, **fields) / quoted)


def test_time_exceeded_quoting_each_probe_kind() -> None:
    udp = IP(src=CLIENT, dst=SERVER, id=4242, ttl=1, flags="DF") / UDP(sport=40000, dport=33435)
    msg = wire.parse_icmp_packet(icmp_error(11, 0, udp))
    assert msg is not None and (msg.src, msg.type, msg.code) == (ROUTER, 11, 0)
    assert msg.quoted == wire.Quoted(17, CLIENT, SERVER, 4242, 1, 40000, 33435)

    tcp = IP(src=CLIENT, dst=SERVER, id=7, ttl=2) / TCP(sport=41000, dport=3306, seq=123456789)
    q = wire.parse_icmp_packet(icmp_error(11, 0, tcp)).quoted
    assert (q.protocol, q.sport, q.dport, q.tcp_seq, q.ip_id) == (6, 41000, 3306, 123456789, 7)

    echo = IP(src=CLIENT, dst=SERVER, id=9, ttl=3) / ICMP(type=8, id=0xBEEF, seq=5)
    q = wire.parse_icmp_packet(icmp_error(11, 0, echo)).quoted
    assert (q.protocol, q.icmp_id, q.icmp_seq, q.ttl) == (1, 0xBEEF, 5, 3)


def test_frag_needed_carries_the_next_hop_mtu() -> None:
    big = IP(src=CLIENT, dst=SERVER, id=99, flags="DF") / ICMP() / (b"x" * 1472)
    msg = wire.parse_icmp_packet(icmp_error(3, 4, big, nexthopmtu=1400))
    assert msg is not None and msg.frag_needed and msg.mtu == 1400
    assert msg.quoted is not None and msg.quoted.ip_id == 99


def test_echo_reply_and_tcp_answers() -> None:
    reply = bytes(IP(src=SERVER, dst=CLIENT) / ICMP(type=0, id=77, seq=3) / b"abc")
    msg = wire.parse_icmp_packet(reply)
    assert msg is not None and (msg.echo_id, msg.echo_seq, msg.quoted) == (77, 3, None)
    assert parse_echo_reply(reply[20:]) == (77, 3)
    synack = wire.parse_tcp_packet(
        bytes(IP(src=SERVER, dst=CLIENT) / TCP(sport=3306, dport=41000, flags="SA", ack=1001))
    )
    assert synack is not None and synack.syn_ack and not synack.rst and synack.ack == 1001
    rst = wire.parse_tcp_packet(bytes(IP(src=SERVER, dst=CLIENT) / TCP(flags="RA")))
    assert rst is not None and rst.rst and not rst.syn_ack
    assert wire.parse_tcp_packet(reply) is None and wire.parse_icmp_packet(bytes(rst_ip())) is None


def rst_ip():
    return IP(src=SERVER, dst=CLIENT) / TCP(flags="R")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_parsers_never_raise_on_any_bytes(data: bytes) -> None:
    wire.parse_icmp_packet(data)
    wire.parse_tcp_packet(data)
    wire.parse_quoted(data)
    wire.parse_extended_error(data)
    parse_echo_reply(data)
    wire.rx_timestamp([(wire.SOL_SOCKET, wire.SO_TIMESTAMPNS, data)])
    wire.recverr([(wire.SOL_IP, wire.IP_RECVERR, data)])


@settings(max_examples=300)
@given(st.integers(0, 55), st.integers(0, 255), st.integers(1, 56))
def test_parsers_survive_mangled_real_packets(pos: int, value: int, cut: int) -> None:
    probe = IP(src=CLIENT, dst=SERVER, id=5, ttl=1) / UDP(sport=1, dport=2)
    packet = bytearray(icmp_error(3, 4, probe, nexthopmtu=1400))
    packet[pos] = value
    for data in (bytes(packet), bytes(packet[:cut])):
        msg = wire.parse_icmp_packet(data)
        assert msg is None or isinstance(msg, wire.IcmpMessage)


def test_extended_error_struct_and_offender() -> None:
    sa = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + socket.inet_aton(ROUTER)
    data = struct.pack("=IBBBBII", errno.EHOSTUNREACH, 2, 11, 0, 0, 0, 0) + sa + bytes(8)
    ee = wire.parse_extended_error(data)
    assert ee == wire.ExtendedError(errno.EHOSTUNREACH, 2, 11, 0, 0, 0, ROUTER)
    hop = classify_error(ee, SERVER, 1.5)
    assert (hop.kind, hop.address) == ("time_exceeded", ROUTER)
    frag = struct.pack("=IBBBBII", errno.EMSGSIZE, 2, 3, 4, 0, 1400, 0) + sa
    a = classify_error(wire.parse_extended_error(frag), SERVER, 1.0)
    assert (a.kind, a.mtu, a.address) == ("frag_needed", 1400, ROUTER)
    local = struct.pack("=IBBBBII", errno.EMSGSIZE, 1, 0, 0, 0, 1500, 0) + bytes(16)
    a = classify_error(wire.parse_extended_error(local), SERVER, 1.0)
    assert (a.kind, a.mtu, a.address) == ("local_error", 1500, None)
    assert wire.parse_extended_error(data[:10]) is None


def test_recverr_from_the_real_kernel_on_loopback() -> None:
    """UDP to a closed loopback port: the kernel queues port unreachable with its offender."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, wire.IP_RECVERR, 1)
        sock.setsockopt(socket.SOL_SOCKET, wire.SO_TIMESTAMPNS, 1)
        sock.connect(("127.0.0.1", port))
        sent = time.time()
        sock.send(b"x")
        end = time.monotonic() + 2
        while True:
            try:
                _, anc, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
                break
            except BlockingIOError:
                assert time.monotonic() < end
                time.sleep(0.01)
    ee = wire.recverr(anc)
    assert ee is not None and ee.from_icmp
    assert (ee.errno, ee.type, ee.code, ee.offender) == (errno.ECONNREFUSED, 3, 3, "127.0.0.1")
    stamp = wire.rx_timestamp(anc)
    assert stamp is not None and abs(stamp - sent) < 1
    assert classify_error(ee, "127.0.0.1", 0.1).kind == "reply"  # the target's port unreachable


# ---------------------------------------------------------------- the MTU search plan


def simulate(pmtu: int, icmp: bool, top: int = 1500, lose: frozenset[int] = frozenset()):
    """Run ``plan`` against a model path; ``lose`` sizes vanish once (random loss)."""
    ev = mtu.Evidence({60})
    sizes, rounds, probes, lost = [top], 0, 0, set()
    while sizes:
        rounds += 1
        probes += len(sizes)
        for size in sizes:
            if size in lose and size not in lost:
                lost.add(size)
                ev.silent[size] += 1
            elif size <= pmtu:
                ev.passed.add(size)
            elif icmp:
                ev.frag[size] = (pmtu, ROUTER)
            else:
                ev.silent[size] += 1
        sizes = mtu.plan(ev, top)
        assert rounds < 10
    return ev, rounds, probes


def test_plan_follows_frag_needed_in_two_probes() -> None:
    ev, rounds, probes = simulate(1400, icmp=True)
    assert (ev.lo(), rounds, probes) == (1400, 2, 2)
    assert ev.covering(ev.hi()) == (1400, ROUTER)


def test_plan_finds_a_black_hole_in_three_rounds() -> None:
    ev, rounds, _ = simulate(1400, icmp=False)
    assert ev.lo() == 1400 and ev.hi() == 1401 and ev.confirmed(1401)
    assert rounds == 3


def test_plan_survives_a_lost_probe() -> None:
    ev, _, _ = simulate(1450, icmp=False, lose=frozenset({1500, 1450, 1460}))
    assert ev.lo() == 1450


@settings(max_examples=300, deadline=None)
@given(st.integers(577, 1500), st.booleans())
def test_plan_converges_on_any_path_mtu(pmtu: int, icmp: bool) -> None:
    ev, rounds, _ = simulate(pmtu, icmp)
    assert ev.lo() == pmtu
    if icmp:
        assert rounds <= 2
    else:
        assert rounds <= (4 if pmtu >= 1280 else 7)


def test_plan_probe_counts_for_a_plateau_black_hole() -> None:
    """1500 vanishes; 12 plateaus and 1500 again; 1401, 1402 and two more: 18 probes."""
    _, rounds, probes = simulate(1400, icmp=False)
    assert (rounds, probes) == (3, 18)


def test_plan_is_done_when_the_full_size_passes() -> None:
    assert simulate(1500, icmp=False)[1:] == (1, 1)
    assert mtu.plan(mtu.Evidence(), 1500) == []  # nothing passed: nothing to search from


# ---------------------------------------------------------------- hops and targets


def sent(ttl: int, kind: str | None, address: str | None = None, rtt: float = 1.0, **kw) -> Sent:
    s = Sent(ttl, ttl, 60, 0.0)
    if kind:
        s.answer = Answer(kind, address, rtt, **kw)
    return s


def test_summarize_a_hop() -> None:
    hop = summarize(2, [sent(2, "time_exceeded", ROUTER, 1.0), sent(2, None),
                        sent(2, "time_exceeded", ROUTER, 3.0)], SERVER)  # fmt: skip
    assert (hop.address, hop.sent, hop.received, round(hop.loss, 3)) == (ROUTER, 3, 2, 0.333)
    assert hop.rtt() == (1.0, 2.0, 3.0) and not hop.is_target
    end = summarize(3, [sent(3, "reply", SERVER, state="open", detail="SYN-ACK")], SERVER)
    assert end.is_target and tcp_state([hop, end], True) == "open"
    closed = summarize(3, [sent(3, "reply", SERVER, state="closed", detail="RST")], SERVER)
    assert tcp_state([closed], True) == "closed" and tcp_state([hop], False) == "filtered"


@pytest.mark.parametrize(
    ("text", "proto", "port", "want"),
    [
        ("db", None, None, ("db", "icmp", None, None)),
        ("10.1.2.3", "udp", None, ("10.1.2.3", "udp", None, None)),
        ("mysql://mysql", None, None, ("mysql", "tcp", 3306, "mysql")),
        ("postgres://pg", None, 6000, ("pg", "tcp", 6000, "postgres")),
        ("db:8080", None, None, ("db", "tcp", 8080, "tcp")),
        ("db", "tcp", None, ("db", "tcp", 80, None)),
        ("mysql://mysql", "icmp", None, ("mysql", "icmp", None, "mysql")),
    ],
)
def test_path_targets(text: str, proto: str | None, port: int | None, want: tuple) -> None:
    from netdiag.commands.path import parse_path_target

    assert parse_path_target(text, proto, port) == want


@pytest.mark.parametrize("text", ["", "mysql://", "[::1]:80", "ftp://x", "db:99999"])
def test_bad_path_targets(text: str) -> None:
    from netdiag.commands.path import parse_path_target

    with pytest.raises(UsageError):
        parse_path_target(text, None, None)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["x", "--proto", "sctp"],
        ["x", "--probes", "0"],
        ["x", "--max-hops", "300"],
        ["x", "--port", "0"],
        ["x", "--timeout", "-1"],
        ["[::1]"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    r = run_netdiag("path", *args)
    assert r.returncode == 2, r
    assert r.stdout == "" and usage_error(r.stderr, "path")


def test_unknown_name_exits_1_with_one_line() -> None:
    from tests.support.mini_dns import mini_dns

    with mini_dns({}) as server:
        r = run_netdiag("path", "nosuch.test", env={"NETDIAG_RESOLVER": server})
        assert r.returncode == 1
        assert r.stderr.count("\n") == 1 and "NXDOMAIN" in r.stderr
        r = run_netdiag("path", "nosuch.test", "--json", env={"NETDIAG_RESOLVER": server})
    doc = netdiag_json(r.stdout, "path")
    assert r.returncode == 1 and doc["ok"] is False
    assert (doc["ended"], doc["address"], doc["hops"]) == ("dns_failed", None, [])
    assert "NXDOMAIN" in doc["ended_detail"]


def test_loopback_is_one_hop_at_full_size() -> None:
    """Loopback only: one hop, the path MTU is the largest IPv4 packet (lo's MTU is 65536)."""
    r = run_netdiag("path", "127.0.0.1", "--no-dns", "--json", timeout=60)
    doc = netdiag_json(r.stdout, "path")
    assert r.returncode == 0 and doc["ok"] is True, r.stderr
    assert doc["command"] == "path" and doc["schema"] == "netdiag.path/1"
    assert [h["address"] for h in doc["hops"]] == ["127.0.0.1"] and doc["hops"][0]["target"]
    m = doc["mtu"]
    assert (m["status"], m["pmtu"], m["interface"], m["probes"]) == ("ok", 65535, "lo", 1)


def test_help_has_exit_codes_and_seconds() -> None:
    out = run_netdiag("path", "-h")
    assert out.returncode == 0 and "Exit:" in out.stdout
    assert "3 internal error" in " ".join(out.stdout.split()) and "TIMEOUT" not in out.stdout
    assert all(len(line) <= 100 for line in out.stdout.splitlines())


def test_quiet_prints_nothing_when_all_is_well() -> None:
    r = run_netdiag("path", "127.0.0.1", "--no-dns", "-q", timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


# --- netdiag.path.check: doctor's mtu step and self --mtu, the parts that send nothing --------


def test_check_mtu_sends_nothing_to_this_hosts_own_addresses() -> None:
    from netdiag.deadline import Deadline
    from netdiag.path.check import check_mtu

    for address in ("127.0.0.1", "127.0.0.2"):
        found = check_mtu(address, Deadline(1))
        assert (found.status, found.first, found.probes, found.privilege) == (
            "local", None, 0, None)  # fmt: skip
        assert found.verdict() == f"{address} is this host's own address: no path to measure"
        assert found.fix() is None and found.to_dict()["method"] is None
    six = check_mtu("::1", Deadline(1))
    assert six.status == "unknown" and "IPv4 only" in six.verdict()


def test_black_hole_fix_names_the_network_when_docker_told_us() -> None:
    from netdiag.path.check import docker_fix

    generic = docker_fix(1354, None)
    assert "docker network create -o com.docker.network.driver.mtu=1354" in generic
    assert generic.endswith("(fragmentation needed) through on the path")
    named = docker_fix(1400, "hop 2 10.81.9.2 (router2)", "todo-app")
    assert named.startswith(
        "recreate the network todo-app with -o com.docker.network.driver.mtu=1400"
    )
    assert named.endswith("through at hop 2 10.81.9.2 (router2)")
