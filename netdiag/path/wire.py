"""ICMP errors, TCP answers and IP_RECVERR ancillary data, parsed from bytes (pure, fuzzable).

A raw socket hands over whole IPv4 packets: ``parse_icmp_packet`` reads an ICMP message and the
start of the probe it quotes (time exceeded, destination unreachable, fragmentation needed with
its next-hop MTU), ``parse_tcp_packet`` a SYN-ACK or RST. Without raw sockets the kernel reports
the same ICMP errors on the probe's own socket (``IP_RECVERR``): ``parse_extended_error`` reads
that ``struct sock_extended_err`` and the offender's address. Every function returns None for
bytes it cannot make sense of; none raises. Echo requests and replies are
netdiag.discovery.icmp's, shared with scan's sweep.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_TIME_EXCEEDED = 11
UNREACH_PORT = 3
UNREACH_FRAG_NEEDED = 4
UNREACH_NAMES = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    5: "source route failed",
    6: "destination network unknown",
    7: "destination host unknown",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}

SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
IP_RECVERR = 11  # <linux/in.h>; Python's socket module does not export it
SOL_IP = 0
SOL_SOCKET = 1
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; also SCM_TIMESTAMPNS
_TIMESPEC = struct.Struct("=qq")
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err, native byte order

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


@dataclass(frozen=True)
class Quoted:
    """The start of the datagram an ICMP error quotes: our probe as the router saw it."""

    protocol: int
    src: str
    dst: str
    ip_id: int
    ttl: int
    sport: int | None = None  # UDP and TCP
    dport: int | None = None
    icmp_id: int | None = None  # ICMP echo
    icmp_seq: int | None = None
    tcp_seq: int | None = None


@dataclass(frozen=True)
class IcmpMessage:
    """One ICMP message: who sent it, type and code, what it quotes or echoes."""

    src: str
    dst: str
    type: int
    code: int
    mtu: int | None = None  # next-hop MTU of a "fragmentation needed" (0 from old routers)
    echo_id: int | None = None
    echo_seq: int | None = None
    quoted: Quoted | None = None

    @property
    def frag_needed(self) -> bool:
        return self.type == ICMP_DEST_UNREACH and self.code == UNREACH_FRAG_NEEDED


@dataclass(frozen=True)
class TcpSegment:
    """The header fields of an incoming TCP segment that answer a SYN probe."""

    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int

    @property
    def syn_ack(self) -> bool:
        return self.flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK

    @property
    def rst(self) -> bool:
        return bool(self.flags & TCP_RST)


@dataclass(frozen=True)
class ExtendedError:
    """``struct sock_extended_err`` from an IP_RECVERR control message, plus the offender."""

    errno: int
    origin: int
    type: int
    code: int
    info: int  # the next-hop MTU for EMSGSIZE
    data: int
    offender: str | None

    @property
    def from_icmp(self) -> bool:
        return self.origin == SO_EE_ORIGIN_ICMP


def _ipv4_header(data: bytes) -> tuple[int, int, str, str, int, int] | None:
    """(header length, protocol, src, dst, ip id, ttl) of an IPv4 header, or None."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    if ihl < 20 or len(data) < ihl:
        return None
    ip_id = struct.unpack_from("!H", data, 4)[0]
    ttl, proto = data[8], data[9]
    return ihl, proto, socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), ip_id, ttl


def parse_quoted(data: bytes) -> Quoted | None:
    """The quoted probe inside an ICMP error: IP header and at least 8 bytes of its payload."""
    head = _ipv4_header(data)
    if head is None:
        return None
    ihl, proto, src, dst, ip_id, ttl = head
    rest = data[ihl:]
    if proto in (socket.IPPROTO_UDP, socket.IPPROTO_TCP) and len(rest) >= 4:
        sport, dport = struct.unpack_from("!HH", rest)
        tcp_seq = None
        if proto == socket.IPPROTO_TCP and len(rest) >= 8:
            tcp_seq = struct.unpack_from("!I", rest, 4)[0]
        return Quoted(proto, src, dst, ip_id, ttl, sport, dport, tcp_seq=tcp_seq)
    if proto == socket.IPPROTO_ICMP and len(rest) >= 8:
        icmp_id, icmp_seq = struct.unpack_from("!HH", rest, 4)
        return Quoted(proto, src, dst, ip_id, ttl, icmp_id=icmp_id, icmp_seq=icmp_seq)
    return Quoted(proto, src, dst, ip_id, ttl)


def parse_icmp_packet(data: bytes) -> IcmpMessage | None:
    """An IPv4 packet carrying ICMP, as a raw ICMP socket delivers it (IP header first)."""
    head = _ipv4_header(data)
    if head is None or head[1] != socket.IPPROTO_ICMP:
        return None
    ihl, _, src, dst, _, _ = head
    icmp = data[ihl:]
    if len(icmp) < 8:
        return None
    icmp_type, code = icmp[0], icmp[1]
    if icmp_type == ICMP_ECHO_REPLY:
        echo_id, echo_seq = struct.unpack_from("!HH", icmp, 4)
        return IcmpMessage(src, dst, icmp_type, code, echo_id=echo_id, echo_seq=echo_seq)
    if icmp_type not in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED):
        return IcmpMessage(src, dst, icmp_type, code)
    mtu = None
    if icmp_type == ICMP_DEST_UNREACH and code == UNREACH_FRAG_NEEDED:
        mtu = struct.unpack_from("!H", icmp, 6)[0]
    return IcmpMessage(src, dst, icmp_type, code, mtu=mtu, quoted=parse_quoted(icmp[8:]))


def parse_tcp_packet(data: bytes) -> TcpSegment | None:
    """An IPv4 packet carrying TCP, as a raw TCP socket delivers it."""
    head = _ipv4_header(data)
    if head is None or head[1] != socket.IPPROTO_TCP:
        return None
    ihl, _, src, dst, _, _ = head
    tcp = data[ihl:]
    if len(tcp) < 14:
        return None
    sport, dport, seq, ack = struct.unpack_from("!HHII", tcp)
    return TcpSegment(src, dst, sport, dport, seq, ack, tcp[13])


def parse_extended_error(data: bytes) -> ExtendedError | None:
    """The IP_RECVERR control message's data: sock_extended_err, then a sockaddr_in."""
    if len(data) < _EXTENDED_ERR.size:
        return None
    errno_, origin, etype, code, _, info, edata = _EXTENDED_ERR.unpack_from(data)
    offender = None
    sa = data[_EXTENDED_ERR.size :]
    if len(sa) >= 8 and struct.unpack_from("=H", sa)[0] == socket.AF_INET:
        offender = socket.inet_ntoa(sa[4:8])
    return ExtendedError(errno_, origin, etype, code, info, edata, offender)


def recverr(ancdata: list[tuple[int, int, bytes]]) -> ExtendedError | None:
    """The first IP_RECVERR record among ``recvmsg`` ancillary data, or None."""
    for level, kind, data in ancdata:
        if level == SOL_IP and kind == IP_RECVERR:
            return parse_extended_error(data)
    return None


def rx_timestamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time (SCM_TIMESTAMPNS, seconds since the epoch), or None."""
    for level, kind, data in ancdata:
        if level == SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return None


PAD = b"netdiag-path-"


def padding(size: int) -> bytes:
    """``size`` bytes of probe payload (``PAD`` repeated), what every path probe carries."""
    return (PAD * (size // len(PAD) + 1))[: max(0, size)]
