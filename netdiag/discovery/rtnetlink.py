"""RTNETLINK wire format: build dump requests and parse link, address and route messages.

Every parser is a pure function of bytes: it returns a value or raises ``NetlinkParseError``
(a ``ValueError``), never another exception. Netlink uses the host's byte order; the parsers
take it as ``byteorder`` so recorded captures stay portable.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from dataclasses import dataclass

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP = 0x300

AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000
_FLAG_NAMES = [
    (IFF_UP, "UP"),
    (IFF_BROADCAST, "BROADCAST"),
    (IFF_LOOPBACK, "LOOPBACK"),
    (IFF_POINTOPOINT, "POINTOPOINT"),
    (IFF_RUNNING, "RUNNING"),
    (IFF_NOARP, "NOARP"),
    (IFF_PROMISC, "PROMISC"),
    (IFF_MULTICAST, "MULTICAST"),
    (IFF_LOWER_UP, "LOWER_UP"),
]

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
OPERSTATES = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"]

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_FLAGS = 8

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_TABLE = 15

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
ROUTE_TYPES = {
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
}
PROTOCOLS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    16: "dhcp",
    186: "bgp",
}
SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

_HDR = 16  # struct nlmsghdr
MAX_MESSAGES = 100_000


class NetlinkParseError(ValueError):
    """The bytes are not a well-formed netlink message of the expected kind."""


@dataclass(frozen=True)
class Message:
    """One netlink message: header fields and the payload after the 16-byte header."""

    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes


@dataclass
class Link:
    """One interface as RTM_NEWLINK describes it."""

    index: int
    name: str
    flags: int
    mtu: int | None = None
    mac: str | None = None
    operstate: str = "unknown"
    kind: str | None = None  # veth, bridge, ... from IFLA_LINKINFO
    master: int | None = None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def loopback(self) -> bool:
        return bool(self.flags & IFF_LOOPBACK)

    @property
    def flag_names(self) -> list[str]:
        return [name for bit, name in _FLAG_NAMES if self.flags & bit]


@dataclass
class Address:
    """One interface address as RTM_NEWADDR describes it."""

    index: int
    family: int
    address: str
    prefixlen: int
    scope: str
    label: str | None = None
    flags: int = 0

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(f"{self.address}/{self.prefixlen}")


@dataclass
class Route:
    """One route as RTM_NEWROUTE describes it; ``destination`` is a network in CIDR form."""

    family: int
    destination: str
    gateway: str | None
    oif: int | None
    table: int
    type: str
    protocol: str
    scope: str
    metric: int | None = None
    prefsrc: str | None = None

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0")


def _order(byteorder: str) -> str:
    if byteorder not in ("little", "big"):
        raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")
    return "<" if byteorder == "little" else ">"


def _align(n: int) -> int:
    return (n + 3) & ~3


def dump_request(
    msg_type: int, seq: int, family: int = AF_UNSPEC, byteorder: str = sys.byteorder
) -> bytes:
    """A NLM_F_DUMP request for links, addresses or routes, with the full family header."""
    o = _order(byteorder)
    if msg_type == RTM_GETLINK:
        body = struct.pack(o + "BxHiII", family, 0, 0, 0, 0)
    elif msg_type == RTM_GETADDR:
        body = struct.pack(o + "BBBBI", family, 0, 0, 0, 0)
    elif msg_type == RTM_GETROUTE:
        body = struct.pack(o + "BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0)
    else:
        raise ValueError(f"not a dump request type: {msg_type}")
    header = struct.pack(
        o + "IHHII", _HDR + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def parse_messages(data: bytes, byteorder: str = sys.byteorder) -> list[Message]:
    """Split a buffer from recv() into netlink messages; a short or overlong one is an error."""
    o = _order(byteorder)
    out: list[Message] = []
    pos = 0
    while pos + _HDR <= len(data):
        length, mtype, flags, seq, pid = struct.unpack_from(o + "IHHII", data, pos)
        if length < _HDR or pos + length > len(data):
            raise NetlinkParseError(f"netlink message length {length} at offset {pos} is invalid")
        out.append(Message(mtype, flags, seq, pid, bytes(data[pos + _HDR : pos + length])))
        if len(out) > MAX_MESSAGES:
            raise NetlinkParseError("too many netlink messages in one buffer")
        pos += _align(length)
    if pos < len(data) and any(data[pos:]):
        raise NetlinkParseError(f"{len(data) - pos} trailing bytes after the last message")
    return out


def parse_error(payload: bytes, byteorder: str = sys.byteorder) -> int:
    """The errno carried by an NLMSG_ERROR message (0 means an acknowledgement)."""
    if len(payload) < 4:
        raise NetlinkParseError("NLMSG_ERROR payload shorter than 4 bytes")
    (code,) = struct.unpack_from(_order(byteorder) + "i", payload, 0)
    return -code


def parse_attributes(data: bytes, byteorder: str = sys.byteorder) -> dict[int, bytes]:
    """rtattr TLVs -> {type: value}; the nested/byte-order flag bits are masked off."""
    o = _order(byteorder)
    attrs: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        length, atype = struct.unpack_from(o + "HH", data, pos)
        if length < 4 or pos + length > len(data):
            raise NetlinkParseError(f"attribute length {length} at offset {pos} is invalid")
        attrs.setdefault(atype & 0x3FFF, bytes(data[pos + 4 : pos + length]))
        pos += _align(length)
    return attrs


def _ip(family: int, raw: bytes) -> str:
    if family == AF_INET and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if family == AF_INET6 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    raise NetlinkParseError(f"address of {len(raw)} bytes does not fit family {family}")


def _u32(raw: bytes, o: str, what: str) -> int:
    if len(raw) < 4:
        raise NetlinkParseError(f"{what} attribute shorter than 4 bytes")
    return struct.unpack_from(o + "I", raw, 0)[0]


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _mac(raw: bytes) -> str | None:
    if not raw:
        return None
    return ":".join(f"{b:02x}" for b in raw)


def parse_link(payload: bytes, byteorder: str = sys.byteorder) -> Link:
    """An RTM_NEWLINK payload (ifinfomsg + attributes) -> Link."""
    o = _order(byteorder)
    if len(payload) < 16:
        raise NetlinkParseError("ifinfomsg shorter than 16 bytes")
    _family, _type, index, flags, _change = struct.unpack_from(o + "BxHiII", payload, 0)
    attrs = parse_attributes(payload[16:], byteorder)
    name = _text(attrs[IFLA_IFNAME]) if IFLA_IFNAME in attrs else f"if{index}"
    link = Link(index=index, name=name, flags=flags)
    if IFLA_MTU in attrs:
        link.mtu = _u32(attrs[IFLA_MTU], o, "IFLA_MTU")
    if IFLA_ADDRESS in attrs:
        link.mac = _mac(attrs[IFLA_ADDRESS])
    if attrs.get(IFLA_OPERSTATE):
        state = attrs[IFLA_OPERSTATE][0]
        link.operstate = OPERSTATES[state] if state < len(OPERSTATES) else str(state)
    if IFLA_MASTER in attrs:
        link.master = _u32(attrs[IFLA_MASTER], o, "IFLA_MASTER")
    if IFLA_LINKINFO in attrs:
        info = parse_attributes(attrs[IFLA_LINKINFO], byteorder)
        if IFLA_INFO_KIND in info:
            link.kind = _text(info[IFLA_INFO_KIND]) or None
    return link


def parse_address(payload: bytes, byteorder: str = sys.byteorder) -> Address:
    """An RTM_NEWADDR payload (ifaddrmsg + attributes) -> Address."""
    o = _order(byteorder)
    if len(payload) < 8:
        raise NetlinkParseError("ifaddrmsg shorter than 8 bytes")
    family, prefixlen, flags, scope, index = struct.unpack_from(o + "BBBBI", payload, 0)
    if family not in (AF_INET, AF_INET6):
        raise NetlinkParseError(f"address family {family} is neither IPv4 nor IPv6")
    if prefixlen > (32 if family == AF_INET else 128):
        raise NetlinkParseError(f"prefix length {prefixlen} too long for family {family}")
    attrs = parse_attributes(payload[8:], byteorder)
    # For IPv4 IFA_LOCAL is our address and IFA_ADDRESS the peer on point-to-point links.
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if raw is None:
        raise NetlinkParseError("address message without IFA_LOCAL or IFA_ADDRESS")
    if IFA_FLAGS in attrs:
        flags = _u32(attrs[IFA_FLAGS], o, "IFA_FLAGS")
    label = _text(attrs[IFA_LABEL]) if IFA_LABEL in attrs else None
    return Address(
        index=index,
        family=family,
        address=_ip(family, raw),
        prefixlen=prefixlen,
        scope=SCOPES.get(scope, str(scope)),
        label=label,
        flags=flags,
    )


def parse_route(payload: bytes, byteorder: str = sys.byteorder) -> Route:
    """An RTM_NEWROUTE payload (rtmsg + attributes) -> Route."""
    o = _order(byteorder)
    if len(payload) < 12:
        raise NetlinkParseError("rtmsg shorter than 12 bytes")
    family, dst_len, _src_len, _tos, table, proto, scope, rtype, _flags = struct.unpack_from(
        o + "BBBBBBBBI", payload, 0
    )
    if family not in (AF_INET, AF_INET6):
        raise NetlinkParseError(f"route family {family} is neither IPv4 nor IPv6")
    if dst_len > (32 if family == AF_INET else 128):
        raise NetlinkParseError(f"destination length {dst_len} too long for family {family}")
    attrs = parse_attributes(payload[12:], byteorder)
    if RTA_TABLE in attrs:
        table = _u32(attrs[RTA_TABLE], o, "RTA_TABLE")
    if RTA_DST in attrs:
        dst = _ip(family, attrs[RTA_DST])
    else:
        dst = "0.0.0.0" if family == AF_INET else "::"
    try:
        network = ipaddress.ip_network(f"{dst}/{dst_len}", strict=False)
    except ValueError as exc:  # unreachable after the checks above, kept as a contract guard
        raise NetlinkParseError(str(exc)) from None
    return Route(
        family=family,
        destination=str(network),
        gateway=_ip(family, attrs[RTA_GATEWAY]) if RTA_GATEWAY in attrs else None,
        oif=_u32(attrs[RTA_OIF], o, "RTA_OIF") if RTA_OIF in attrs else None,
        table=table,
        type=ROUTE_TYPES.get(rtype, str(rtype)),
        protocol=PROTOCOLS.get(proto, str(proto)),
        scope=SCOPES.get(scope, str(scope)),
        metric=_u32(attrs[RTA_PRIORITY], o, "RTA_PRIORITY") if RTA_PRIORITY in attrs else None,
        prefsrc=_ip(family, attrs[RTA_PREFSRC]) if RTA_PREFSRC in attrs else None,
    )
