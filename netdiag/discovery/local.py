"""This network namespace's interfaces, addresses and routes, read with the standard library.

RTNETLINK dumps are the source (no iproute2, no scapy); where netlink sockets are unavailable,
/sys/class/net and /proc/net give links, IPv6 addresses and routes, and an ioctl the primary
IPv4 address of each interface. ``snapshot()`` never raises on a host it cannot read: the
failure ends up in ``Snapshot.notes``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

from netdiag.discovery import rtnetlink as rt

RECV_BUFFER = 1 << 18
SOCKET_TIMEOUT = 2.0
PROC_MAX_BYTES = 4 << 20


@dataclass
class InterfaceAddress:
    """One address on an interface, with its prefix length."""

    family: str  # "ipv4" or "ipv6"
    address: str
    prefixlen: int
    scope: str

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_interface(f"{self.address}/{self.prefixlen}").network

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "address": self.address,
            "prefixlen": self.prefixlen,
            "network": str(self.network),
            "scope": self.scope,
        }


@dataclass
class Interface:
    """One interface: name, index, state, MAC, MTU and every address."""

    name: str
    index: int
    up: bool
    operstate: str
    mac: str | None
    mtu: int | None
    loopback: bool = False
    kind: str | None = None
    flags: list[str] = field(default_factory=list)
    addresses: list[InterfaceAddress] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "up" if self.up else "down"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "state": self.state,
            "operstate": self.operstate,
            "mac": self.mac,
            "mtu": self.mtu,
            "loopback": self.loopback,
            "kind": self.kind,
            "flags": self.flags,
            "addresses": [a.to_dict() for a in self.addresses],
        }


@dataclass
class RouteEntry:
    """One route of the main table; ``destination`` is CIDR ("0.0.0.0/0" for the default)."""

    family: str
    destination: str
    gateway: str | None
    device: str | None
    type: str = "unicast"
    protocol: str | None = None
    scope: str | None = None
    metric: int | None = None
    prefsrc: str | None = None

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0")

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "destination": self.destination,
            "default": self.is_default,
            "gateway": self.gateway,
            "device": self.device,
            "type": self.type,
            "protocol": self.protocol,
            "scope": self.scope,
            "metric": self.metric,
            "prefsrc": self.prefsrc,
        }


@dataclass
class Snapshot:
    """Interfaces and routes of the current network namespace, and where they were read from."""

    interfaces: list[Interface]
    routes: list[RouteEntry]
    source: str  # "netlink", "proc" or "none"
    notes: list[str] = field(default_factory=list)

    @property
    def default_routes(self) -> list[RouteEntry]:
        return [r for r in self.routes if r.is_default and r.type == "unicast"]

    def addresses(self) -> list[str]:
        return [a.address for i in self.interfaces for a in i.addresses]

    def macs(self) -> list[str]:
        return [
            i.mac
            for i in self.interfaces
            if i.mac and not i.loopback and i.mac != "00:00:00:00:00:00"
        ]

    def ipv4_subnets(self) -> list[ipaddress.IPv4Network]:
        return attached_ipv4_subnets(self)


_FAMILY = {rt.AF_INET: "ipv4", rt.AF_INET6: "ipv6"}


def assemble(
    links: list[rt.Link], addrs: list[rt.Address], routes: list[rt.Route]
) -> tuple[list[Interface], list[RouteEntry]]:
    """Join parsed netlink records into interfaces (ordered by index) and main-table routes."""
    interfaces: dict[int, Interface] = {}
    for link in sorted(links, key=lambda li: li.index):
        interfaces[link.index] = Interface(
            name=link.name,
            index=link.index,
            up=link.up,
            operstate=link.operstate,
            mac=link.mac,
            mtu=link.mtu,
            loopback=link.loopback,
            kind=link.kind,
            flags=link.flag_names,
        )
    for addr in addrs:
        iface = interfaces.get(addr.index)
        if iface is None:
            continue
        iface.addresses.append(
            InterfaceAddress(_FAMILY[addr.family], addr.address, addr.prefixlen, addr.scope)
        )
    entries: list[RouteEntry] = []
    for route in routes:
        if route.table != rt.RT_TABLE_MAIN:
            continue
        if route.family == rt.AF_INET6 and route.destination.startswith("ff"):
            continue
        device = interfaces[route.oif].name if route.oif in interfaces else None
        entries.append(
            RouteEntry(
                family=_FAMILY[route.family],
                destination=route.destination,
                gateway=route.gateway,
                device=device,
                type=route.type,
                protocol=route.protocol,
                scope=route.scope,
                metric=route.metric,
                prefsrc=route.prefsrc,
            )
        )
    return list(interfaces.values()), entries


def _dump(sock: socket.socket, msg_type: int, seq: int) -> list[rt.Message]:
    sock.send(rt.dump_request(msg_type, seq))
    out: list[rt.Message] = []
    while True:
        data = sock.recv(RECV_BUFFER)
        if not data:
            raise OSError("netlink socket closed during a dump")
        for msg in rt.parse_messages(data):
            if msg.seq != seq:
                continue
            if msg.type == rt.NLMSG_DONE:
                return out
            if msg.type == rt.NLMSG_ERROR:
                errno = rt.parse_error(msg.payload)
                if errno:
                    raise OSError(errno, os.strerror(errno))
                return out
            out.append(msg)
        if len(out) > rt.MAX_MESSAGES:
            raise OSError("netlink dump did not end")


def read_netlink() -> Snapshot:
    """Dump links, addresses and routes over one NETLINK_ROUTE socket; raises OSError."""
    links: list[rt.Link] = []
    addrs: list[rt.Address] = []
    routes: list[rt.Route] = []
    notes: list[str] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(SOCKET_TIMEOUT)
        sock.bind((0, 0))
        for seq, (req, want, parse, sink) in enumerate(
            [
                (rt.RTM_GETLINK, rt.RTM_NEWLINK, rt.parse_link, links),
                (rt.RTM_GETADDR, rt.RTM_NEWADDR, rt.parse_address, addrs),
                (rt.RTM_GETROUTE, rt.RTM_NEWROUTE, rt.parse_route, routes),
            ],
            start=1,
        ):
            for msg in _dump(sock, req, seq):
                if msg.type != want:
                    continue
                try:
                    sink.append(parse(msg.payload))
                except rt.NetlinkParseError as exc:
                    notes.append(f"skipped a netlink record: {exc}")
    interfaces, entries = assemble(links, addrs, routes)
    return Snapshot(interfaces, entries, "netlink", notes)


# --- /proc and /sys fallback -----------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(PROC_MAX_BYTES).decode("ascii", errors="replace")
    except OSError:
        return None


def parse_proc_route(text: str) -> list[tuple[str, str, str | None, int]]:
    """/proc/net/route -> [(device, destination CIDR, gateway or None, metric)]; bad lines skipped."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dst = ipaddress.IPv4Address(struct.pack("<I", int(f[1], 16)))
            gw = ipaddress.IPv4Address(struct.pack("<I", int(f[2], 16)))
            mask = ipaddress.IPv4Address(struct.pack("<I", int(f[7], 16)))
            net = ipaddress.IPv4Network(f"{dst}/{mask}", strict=False)
            metric = int(f[6])
        except (ValueError, struct.error):
            continue
        out.append((f[0], str(net), None if int(gw) == 0 else str(gw), metric))
    return out


def parse_proc_if_inet6(text: str) -> list[tuple[str, str, int, str]]:
    """/proc/net/if_inet6 -> [(device, address, prefixlen, scope)]; bad lines skipped."""
    scopes = {0: "global", 0x10: "host", 0x20: "link", 0x40: "site"}
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 6 or len(f[0]) != 32:
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(f[0]))
            prefix = int(f[2], 16)
            scope = int(f[3], 16)
        except ValueError:
            continue
        if prefix <= 128:
            out.append((f[5], str(addr), prefix, scopes.get(scope, str(scope))))
    return out


def parse_proc_ipv6_route(text: str) -> list[tuple[str, str, str | None, int]]:
    """/proc/net/ipv6_route -> [(device, destination CIDR, gateway or None, metric)]."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        try:
            dst = ipaddress.IPv6Address(bytes.fromhex(f[0]))
            net = ipaddress.IPv6Network(f"{dst}/{int(f[1], 16)}", strict=False)
            gw = ipaddress.IPv6Address(bytes.fromhex(f[4]))
            metric = int(f[5], 16)
            flags = int(f[8], 16)
        except ValueError:
            continue
        if f[9] == "lo" or flags & 0x80000000 or net.is_multicast:  # RTF_LOCAL, lo, multicast
            continue
        out.append((f[9], str(net), None if int(gw) == 0 else str(gw), metric))
    return out


def _ipv4_of(name: str) -> tuple[str, int] | None:
    import fcntl

    siocgifaddr, siocgifnetmask = 0x8915, 0x891B
    req = struct.pack("256s", name.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            addr = fcntl.ioctl(s.fileno(), siocgifaddr, req)[20:24]
            mask = fcntl.ioctl(s.fileno(), siocgifnetmask, req)[20:24]
    except OSError:
        return None
    prefix = ipaddress.IPv4Network(f"0.0.0.0/{socket.inet_ntoa(mask)}").prefixlen
    return socket.inet_ntoa(addr), prefix


def read_proc(sys_net: str = "/sys/class/net") -> Snapshot:
    """Links from /sys, addresses from ioctl and /proc/net/if_inet6, routes from /proc/net."""
    interfaces: dict[str, Interface] = {}
    try:
        names = sorted(os.listdir(sys_net))
    except OSError:
        names = []
    for name in names:

        def attr(key: str, name: str = name) -> str | None:
            value = _read(f"{sys_net}/{name}/{key}")
            return value.strip() if value is not None else None

        try:
            index = int(attr("ifindex") or 0)
            flags = int(attr("flags") or "0", 16)
            mtu = int(attr("mtu") or 0) or None
        except ValueError:
            continue
        iface = Interface(
            name=name,
            index=index,
            up=bool(flags & rt.IFF_UP),
            operstate=attr("operstate") or "unknown",
            mac=attr("address") or None,
            mtu=mtu,
            loopback=bool(flags & rt.IFF_LOOPBACK),
            flags=[n for bit, n in rt._FLAG_NAMES if flags & bit],
        )
        v4 = _ipv4_of(name)
        if v4:
            scope = "host" if v4[0].startswith("127.") else "global"
            iface.addresses.append(InterfaceAddress("ipv4", v4[0], v4[1], scope))
        interfaces[name] = iface
    for dev, addr, prefix, scope in parse_proc_if_inet6(_read("/proc/net/if_inet6") or ""):
        if dev in interfaces:
            interfaces[dev].addresses.append(InterfaceAddress("ipv6", addr, prefix, scope))
    routes: list[RouteEntry] = []
    for family, rows in (
        ("ipv4", parse_proc_route(_read("/proc/net/route") or "")),
        ("ipv6", parse_proc_ipv6_route(_read("/proc/net/ipv6_route") or "")),
    ):
        for dev, dst, gw, metric in rows:
            routes.append(RouteEntry(family, dst, gw, dev, metric=metric or None))
    ordered = sorted(interfaces.values(), key=lambda i: i.index)
    return Snapshot(ordered, routes, "proc", ["netlink unavailable: read /proc/net and /sys"])


def snapshot() -> Snapshot:
    """The namespace's interfaces and routes: netlink first, /proc and /sys when it fails."""
    try:
        return read_netlink()
    except (OSError, rt.NetlinkParseError) as exc:
        fallback = read_proc()
        fallback.notes.insert(0, f"netlink failed ({exc}); fell back to /proc")
        if not fallback.interfaces:
            fallback.source = "none"
        return fallback


def attached_ipv4_subnets(snap: Snapshot | None = None) -> list[ipaddress.IPv4Network]:
    """IPv4 networks of this namespace's non-loopback interface addresses, deduplicated."""
    snap = snap or snapshot()
    nets: list[ipaddress.IPv4Network] = []
    for iface in snap.interfaces:
        if iface.loopback:
            continue
        for addr in iface.addresses:
            net = addr.network
            if isinstance(net, ipaddress.IPv4Network) and not net.is_loopback and net not in nets:
                nets.append(net)
    return nets


if __name__ == "__main__":  # a quick look: python -m netdiag.discovery.local
    import json

    snap = snapshot()
    json.dump(
        {
            "source": snap.source,
            "interfaces": [i.to_dict() for i in snap.interfaces],
            "routes": [r.to_dict() for r in snap.routes],
            "notes": snap.notes,
        },
        sys.stdout,
        indent=2,
    )
