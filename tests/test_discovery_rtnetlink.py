"""RTNETLINK parsing: recorded dumps from a known namespace, fuzzing, and the live kernel.

tests/data/rtnetlink_ndself.json holds the raw recv() buffers of RTM_GETLINK, RTM_GETADDR and
RTM_GETROUTE dumps taken inside tests/support/netns.SelfNamespace (re-capture: run a dump with
netdiag.discovery.rtnetlink.dump_request in that namespace and store each buffer as hex).
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.discovery import local
from netdiag.discovery import rtnetlink as rt
from tests.support import netns as lab

DATA = json.loads((Path(__file__).parent / "data" / "rtnetlink_ndself.json").read_text())
ORDER = DATA["byteorder"]


def recorded(kind: str) -> list[rt.Message]:
    return [m for buf in DATA[kind] for m in rt.parse_messages(bytes.fromhex(buf), ORDER)]


def test_recorded_links() -> None:
    msgs = recorded("link")
    assert [m.type for m in msgs] == [rt.RTM_NEWLINK, rt.RTM_NEWLINK, rt.NLMSG_DONE]
    lo, veth = (rt.parse_link(m.payload, ORDER) for m in msgs[:2])
    assert (lo.index, lo.name, lo.mtu, lo.loopback, lo.up) == (1, "lo", 65536, True, True)
    assert lo.mac == "00:00:00:00:00:00"
    assert (veth.name, veth.mac, veth.mtu, veth.kind) == ("veth0", lab.MAC, lab.MTU, "veth")
    assert veth.up and not veth.loopback and veth.operstate == "up"
    assert {"UP", "BROADCAST", "MULTICAST", "LOWER_UP"} <= set(veth.flag_names)


def test_recorded_addresses() -> None:
    msgs = [m for m in recorded("addr") if m.type == rt.RTM_NEWADDR]
    got = [
        (a.index, a.family, a.address, a.prefixlen, a.scope)
        for a in (rt.parse_address(m.payload, ORDER) for m in msgs)
    ]
    assert got == [
        (1, rt.AF_INET, "127.0.0.1", 8, "host"),
        (3, rt.AF_INET, lab.ADDR4, 24, "global"),
        (1, rt.AF_INET6, "::1", 128, "host"),
        (3, rt.AF_INET6, lab.ADDR6, 64, "global"),
    ]


def test_recorded_routes_and_main_table() -> None:
    routes = [rt.parse_route(m.payload, ORDER) for m in recorded("route") if m.type == 24]
    links = [rt.parse_link(m.payload, ORDER) for m in recorded("link") if m.type == 16]
    addrs = [rt.parse_address(m.payload, ORDER) for m in recorded("addr") if m.type == 20]
    ifaces, entries = local.assemble(links, addrs, routes)
    assert [i.name for i in ifaces] == ["lo", "veth0"]
    assert [(e.family, e.destination, e.gateway, e.device, e.metric) for e in entries] == [
        ("ipv4", "0.0.0.0/0", lab.GW4, "veth0", None),
        ("ipv4", lab.NET4, None, "veth0", None),
        ("ipv4", lab.STATIC_NET, lab.GW4, "veth0", lab.STATIC_METRIC),
        ("ipv6", lab.NET6, None, "veth0", 256),
        ("ipv6", "::/0", lab.GW6, "veth0", 1024),
    ]
    connected = entries[1]
    assert (connected.protocol, connected.scope, connected.prefsrc) == ("kernel", "link", lab.ADDR4)
    # the local table (local/broadcast routes) is what `ip route` hides too
    assert any(r.table == rt.RT_TABLE_LOCAL and r.type == "local" for r in routes)


def test_dump_request_layout() -> None:
    req = rt.dump_request(rt.RTM_GETROUTE, 7, byteorder="little")
    length, mtype, flags, seq, pid = struct.unpack_from("<IHHII", req)
    assert (length, mtype, flags, seq, pid) == (len(req), rt.RTM_GETROUTE, 0x301, 7, 0)
    assert len(req) == 16 + 12
    assert len(rt.dump_request(rt.RTM_GETLINK, 1)) == 32
    assert len(rt.dump_request(rt.RTM_GETADDR, 1)) == 24
    with pytest.raises(ValueError):
        rt.dump_request(99, 1)


def test_error_message_and_truncation() -> None:
    assert rt.parse_error(struct.pack("<i", -1) + b"\0" * 16, "little") == 1
    with pytest.raises(rt.NetlinkParseError):
        rt.parse_error(b"\x01", "little")
    whole = bytes.fromhex(DATA["link"][0])
    with pytest.raises(rt.NetlinkParseError):
        rt.parse_messages(whole[:-5], ORDER)
    with pytest.raises(rt.NetlinkParseError):  # a declared length shorter than the header
        rt.parse_messages(struct.pack("<IHHII", 8, 16, 0, 0, 0), "little")
    with pytest.raises(rt.NetlinkParseError):  # an attribute running past the payload
        rt.parse_attributes(struct.pack("<HH", 40, 3) + b"abcd", "little")
    bad_prefix = struct.pack("<BBBBI", rt.AF_INET, 33, 0, 0, 1)
    with pytest.raises(rt.NetlinkParseError):
        rt.parse_address(bad_prefix, "little")
    wrong_len = (
        struct.pack("<BBBBI", rt.AF_INET, 24, 0, 0, 1) + struct.pack("<HH", 9, 2) + b"\1" * 5
    )
    with pytest.raises(rt.NetlinkParseError):
        rt.parse_address(wrong_len + b"\0\0\0", "little")


PARSERS = [rt.parse_messages, rt.parse_attributes, rt.parse_link, rt.parse_address, rt.parse_route]


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), which=st.sampled_from(range(len(PARSERS))))
def test_fuzz_any_bytes_parse_or_raise_parse_error(data: bytes, which: int) -> None:
    for order in ("little", "big"):
        with contextlib.suppress(rt.NetlinkParseError):
            PARSERS[which](data, order)


@settings(max_examples=300, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=4000),
    flip=st.integers(min_value=0, max_value=4000),
    value=st.integers(0, 255),
)
def test_fuzz_mutated_recordings(cut: int, flip: int, value: int) -> None:
    """Recorded messages with one byte changed and/or truncated still parse or fail cleanly."""
    for kind, parse in (
        ("link", rt.parse_link),
        ("addr", rt.parse_address),
        ("route", rt.parse_route),
    ):
        for msg in recorded(kind):
            payload = bytearray(msg.payload)
            if payload:
                payload[flip % len(payload)] = value
            with contextlib.suppress(rt.NetlinkParseError):
                parse(bytes(payload[: cut % (len(payload) + 1)]), ORDER)


def test_live_netlink_matches_proc_fallback() -> None:
    """Both readers agree on this namespace's links, IPv4 addresses and IPv4 routes."""
    nl = local.read_netlink()
    proc = local.read_proc()
    assert nl.source == "netlink" and proc.source == "proc"
    assert {i.name: i.mac for i in nl.interfaces} == {i.name: i.mac for i in proc.interfaces}
    assert {i.name: i.index for i in nl.interfaces} == {i.name: i.index for i in proc.interfaces}
    # the ioctl sees only the primary IPv4 address of each interface
    for iface in proc.interfaces:
        nl_iface = next(i for i in nl.interfaces if i.name == iface.name)
        v4 = [(a.address, a.prefixlen) for a in iface.addresses if a.family == "ipv4"]
        assert set(v4) <= {(a.address, a.prefixlen) for a in nl_iface.addresses}
        v6 = {(a.address, a.prefixlen) for a in iface.addresses if a.family == "ipv6"}
        assert v6 == {(a.address, a.prefixlen) for a in nl_iface.addresses if a.family == "ipv6"}
    key = lambda r: (r.destination, r.gateway, r.device)  # noqa: E731
    assert sorted(map(key, (r for r in proc.routes if r.family == "ipv4"))) == sorted(
        map(key, (r for r in nl.routes if r.family == "ipv4"))
    )


def test_attached_ipv4_subnets_skip_loopback() -> None:
    snap = local.Snapshot(
        interfaces=[
            local.Interface("lo", 1, True, "unknown", None, 65536, loopback=True,
                            addresses=[local.InterfaceAddress("ipv4", "127.0.0.1", 8, "host")]),
            local.Interface("eth0", 2, True, "up", "02:00:00:00:00:01", 1500, addresses=[
                local.InterfaceAddress("ipv4", "10.78.3.7", 24, "global"),
                local.InterfaceAddress("ipv6", "fd78::7", 64, "global"),
                local.InterfaceAddress("ipv4", "10.78.3.8", 24, "global"),
                local.InterfaceAddress("ipv4", "172.30.0.2", 16, "global"),
            ]),
        ],
        routes=[],
        source="test",
    )  # fmt: skip
    assert [str(n) for n in local.attached_ipv4_subnets(snap)] == ["10.78.3.0/24", "172.30.0.0/16"]
    assert snap.macs() == ["02:00:00:00:00:01"]


def test_proc_parsers_on_recorded_text() -> None:
    route = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "garbage line\n"
    )
    assert local.parse_proc_route(route) == [
        ("eth0", "0.0.0.0/0", "172.17.0.1", 0),
        ("eth0", "172.17.0.0/16", None, 0),
    ]
    if_inet6 = "fd780001000000000000000000000002 03 40 00 80    veth0\nshort\n"
    assert local.parse_proc_if_inet6(if_inet6) == [("veth0", "fd78:1::2", 64, "global")]
    ipv6_route = (
        "fd780001000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001    veth0\n"
        "fd780001000000000000000000000002 80 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000000 00000002 00000000 80200001    veth0\n"
    )
    assert local.parse_proc_ipv6_route(ipv6_route) == [("veth0", "fd78:1::/64", None, 256)]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_proc_parsers_never_raise(text: str) -> None:
    local.parse_proc_route(text)
    local.parse_proc_if_inet6(text)
    local.parse_proc_ipv6_route(text)


def test_snapshot_falls_back_to_proc_when_netlink_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sandbox that forbids AF_NETLINK: the /proc reading is used and says so."""
    expected = local.read_netlink().ipv4_subnets()

    def refuse() -> local.Snapshot:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(local, "read_netlink", refuse)
    snap = local.snapshot()
    assert snap.source == "proc"
    assert snap.notes[0] == "netlink failed ([Errno 1] Operation not permitted); fell back to /proc"
    assert "lo" in [i.name for i in snap.interfaces]
    assert snap.ipv4_subnets() == expected
