"""scan's pure parts and its loopback-only connect engine."""

from __future__ import annotations

import resource
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netdiag.deadline import Deadline
from netdiag.discovery import peers as peerchecks
from netdiag.discovery.arp import arp_request_template, parse_arp_reply
from netdiag.discovery.connect import connect_many
from netdiag.discovery.icmp import echo_request, parse_echo_reply
from netdiag.discovery.names import short_names
from netdiag.discovery.pacing import fd_budget
from netdiag.discovery.peers import Peer
from netdiag.discovery.scan import NetworkScan, check_subnet, merge_sweep, parse_ports
from netdiag.discovery.sweep import Alive, SweepResult
from netdiag.errors import UsageError
from tests.conftest import run_netdiag, usage_error


def test_arp_template_is_a_who_has_and_a_reply_parses() -> None:
    frame = arp_request_template("02:00:00:00:00:01", "10.77.1.2")
    assert len(frame) == 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01"
    assert parse_arp_reply(frame) is None  # a request is not a reply
    reply = bytearray(frame)
    reply[20:22] = b"\x00\x02"
    reply[22:28] = bytes.fromhex("0a8e0bc5062f")
    reply[28:32] = socket.inet_aton("10.77.1.11")
    assert parse_arp_reply(bytes(reply)) == ("10.77.1.11", "0a:8e:0b:c5:06:2f")


@given(st.binary(max_size=128))
def test_frame_parsers_never_raise(data: bytes) -> None:
    parse_arp_reply(data)
    parse_echo_reply(data, raw=True)
    parse_echo_reply(data, raw=False)


def test_echo_request_checksum_and_reply_parse() -> None:
    req = echo_request(0x1234, 7)
    total = sum(int.from_bytes(req[i : i + 2], "big") for i in range(0, len(req), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF
    reply = b"\x00" + req[1:]
    assert parse_echo_reply(reply, raw=False) == (0x1234, 7)
    assert parse_echo_reply(bytes([0x45]) + bytes(19) + reply, raw=True) == (0x1234, 7)


def test_parse_ports() -> None:
    assert parse_ports("80, 443,8000-8002") == (80, 443, 8000, 8001, 8002)
    for bad in ("", "x", "0", "70000", "10-5", "1-9000"):
        with pytest.raises(UsageError):
            parse_ports(bad)


def test_safety_rules_for_subnets() -> None:
    assert check_subnet("10.77.3.7/24", force=False) == "10.77.3.0/24"
    assert check_subnet("172.21.0.0/16", force=False) == "172.21.0.0/16"
    with pytest.raises(UsageError, match="--force"):
        check_subnet("10.0.0.0/15", force=False)
    with pytest.raises(UsageError, match="public"):
        check_subnet("8.8.8.0/24", force=False)
    assert check_subnet("8.8.8.0/24", force=True) == "8.8.8.0/24"
    with pytest.raises(UsageError, match="larger than /12"):
        check_subnet("0.0.0.0/0", force=True)
    with pytest.raises(UsageError, match=r"larger than /12 \(1,048,576 addresses\)"):
        check_subnet("127.0.0.0/8", force=True)
    assert check_subnet("10.16.0.0/12", force=True) == "10.16.0.0/12"
    with pytest.raises(UsageError):
        check_subnet("fd00::/64", force=True)
    with pytest.raises(UsageError):
        check_subnet("not-a-net", force=False)


def test_short_names() -> None:
    assert short_names("db.todo-app.") == ["db.todo-app", "db"]
    assert short_names("db") == ["db"]


def test_connect_many_open_refused_and_window_on_loopback() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    open_port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        pairs = [("127.0.0.1", open_port), ("127.0.0.1", closed_port)] * 1 + [
            (f"127.0.{i // 200}.{i % 200 + 2}", closed_port) for i in range(300)
        ]
        out = connect_many(pairs, timeout=1.0, concurrency=8)
        assert out[("127.0.0.1", open_port)].state == "open"
        assert out[("127.0.0.1", closed_port)].state == "refused"
        assert len(out) == len(set(pairs))
        assert all(o.state == "refused" for (ip, _), o in out.items() if ip != "127.0.0.1")
    finally:
        listener.close()


def test_fd_budget_respects_rlimit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    try:
        assert 1 <= fd_budget(1000) <= 128 - 48
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(
    "args",
    [
        ["--ports", "http"],
        ["--subnet", "8.8.8.0/24"],
        ["--subnet", "10.0.0.0/12"],
        ["--subnet", "fd00::/64", "--force"],
        ["--subnet", "127.0.0.0/8", "--force"],  # too large even with --force: the limit named
        ["--subnet", "10.0.0.0/8", "--force"],
        ["--concurrency", "0"],
        ["--timeout", "-1"],
        ["--bogus"],
    ],
)
def test_usage_errors_exit_2_with_usage_and_reason(args: list[str]) -> None:
    """Refused before any packet: the safety rules are checked while parsing."""
    proc = run_netdiag("scan", *args, "--no-docker")
    assert proc.returncode == 2
    assert proc.stdout == ""
    usage_error(proc.stderr, "scan")


def test_sweep_answers_prefer_ip_level_rtt() -> None:
    alive = Alive("10.77.0.2")
    alive.saw("arp", 0.05, "02:00:00:00:00:02")
    assert (alive.rtt_ms, alive.rtt_via, alive.answered_ip) == (0.05, "arp", False)
    alive.saw("icmp", 0.4)
    alive.saw("tcp", 0.9)
    assert (alive.rtt_ms, alive.rtt_via, alive.answered_ip) == (0.4, "icmp", True)
    alive.saw("tcp", 0.2)
    assert (alive.rtt_ms, alive.rtt_via, alive.mac) == (0.2, "tcp/80", "02:00:00:00:00:02")


def test_scan_keeps_the_sweeps_rtt_and_pings_only_peers_it_did_not_hear(monkeypatch) -> None:
    """The merge copies the sweep's RTT into the peer; the checks then send no second echo to
    a peer the sweep heard over ICMP or TCP (loopback peers; the spy only records)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    alive = Alive("127.0.0.1")
    alive.saw("tcp", 0.123)
    result = SweepResult("127.0.0.0/29", "lo", ["tcp"], {"127.0.0.1": alive}, 6, 6, True,
                         "127.0.0.6", 1.0)  # fmt: skip
    ns = NetworkScan("127.0.0.0/29", ["127.0.0.0/29"], [])
    ns.peers = [Peer(ip="127.0.0.2", seen_by=["arp"], rtt_ms=0.01, rtt_via="arp"),
                Peer(ip="127.0.0.3", container="c3", state="running", seen_by=["docker"])]  # fmt: skip
    merge_sweep(ns, "127.0.0.0/29", result)
    heard = next(p for p in ns.peers if p.ip == "127.0.0.1")
    assert (heard.rtt_ms, heard.rtt_via, heard.seen_by) == (0.123, "tcp/80", ["tcp"])
    pinged: list[str] = []
    real = peerchecks.ping_many

    def spy(addresses, *args, **kwargs):
        pinged.extend(addresses)
        return real(addresses, *args, **kwargs)

    monkeypatch.setattr(peerchecks, "ping_many", spy)
    try:
        peerchecks.check_reachability_and_ports(ns.peers, [port], 1.0, Deadline(10), 8, 0)
    finally:
        listener.close()
    assert sorted(pinged) == ["127.0.0.2", "127.0.0.3"]
    assert (heard.rtt_ms, heard.rtt_via, heard.reachable) == (0.123, "tcp/80", True)
    for ip in ("127.0.0.2", "127.0.0.3"):  # answered the echo, or the port's RST
        peer = next(p for p in ns.peers if p.ip == ip)
        assert peer.reachable and peer.rtt_via in ("icmp", f"tcp/{port}"), peer


def test_open_column_and_header_say_each_thing_once() -> None:
    """OPEN lists open ports only: an identification that failed is not "3306/tcp (timeout)",
    which reads as a closed port (the note says why); a range scanned by name is said once."""
    from netdiag.commands.scan import _header, _port_text
    from netdiag.discovery.peers import PortResult

    failed = PortResult(3306, "open", status="timeout", detail="x", identified="failed")
    assert _port_text(failed) == "3306 open"
    assert _port_text(PortResult(5432, "open", identified="silent")) == "5432 open (silent)"
    assert _header(NetworkScan("10.9.0.0/24", ["10.9.0.0/24"], ["sweep"])) == (
        "network 10.9.0.0/24  [sweep]"
    )
    docker_net = NetworkScan("todo", ["172.20.0.0/16"], ["docker", "sweep"], internal=True)
    assert _header(docker_net) == "network todo  172.20.0.0/16  [docker+sweep]  internal"
