"""ICMP echo to many addresses at once, through a raw socket (NET_RAW) or a ping socket.

The packet builder and reply parser (shared with netdiag.path) are pure functions of bytes;
``ping_many`` sends one echo
per address at a bounded rate and collects replies until a timeout or the deadline.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import time
from collections.abc import Sequence

from netdiag.discovery.pacing import Pacer


def open_icmp_socket() -> tuple[socket.socket, str] | None:
    """A raw ICMP socket (NET_RAW) or a ping socket (ping_group_range); None when neither."""
    for kind, stype in (("raw", socket.SOCK_RAW), ("dgram", socket.SOCK_DGRAM)):
        try:
            sock = socket.socket(socket.AF_INET, stype, socket.IPPROTO_ICMP)
        except OSError:
            continue
        sock.setblocking(False)
        return sock, kind
    return None


ECHO_REPLY, ECHO_REQUEST = 0, 8
SCAN_PAYLOAD = b"netdiag-scan"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = SCAN_PAYLOAD) -> bytes:
    """An ICMP echo request carrying ``payload``; ping sockets replace ``ident`` and ignore the
    checksum given."""
    ident, seq = ident & 0xFFFF, seq & 0xFFFF
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, csum, ident, seq) + payload


def parse_echo_reply(data: bytes, raw: bool = False) -> tuple[int, int] | None:
    """(ident, seq) of an echo reply, or None; raw sockets deliver the IP header too, ping
    sockets the ICMP message alone."""
    if raw:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8 or data[0] != ECHO_REPLY:
        return None
    ident, seq = struct.unpack_from("!HH", data, 4)
    return ident, seq


def ping_many(
    addresses: Sequence[str], timeout: float, rate: float = 0.0, deadline: float | None = None
) -> tuple[dict[str, float], str | None]:
    """Echo each address once; returns ({ip: rtt_ms} of those that replied, socket kind)."""
    opened = open_icmp_socket()
    if opened is None:
        return {}, None
    sock, kind = opened
    raw = kind == "raw"
    ident = os.getpid() & 0xFFFF
    sent: dict[int, tuple[str, float]] = {}
    replies: dict[str, float] = {}
    pacer = Pacer(rate)

    def drain() -> None:
        while True:
            try:
                data, peer = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            parsed = parse_echo_reply(data, raw)
            if not parsed:
                continue
            rid, seq = parsed
            if raw and rid != ident:
                continue
            info = sent.get(seq)
            if info and info[0] == peer[0] and peer[0] not in replies:
                replies[peer[0]] = (time.monotonic() - info[1]) * 1000

    try:
        for seq, address in enumerate(addresses):
            if deadline is not None and time.monotonic() >= deadline:
                break
            pacer.wait()
            seq &= 0xFFFF
            sent[seq] = (address, time.monotonic())
            with contextlib.suppress(OSError):  # EHOSTUNREACH etc: no reply, as for silence
                sock.sendto(echo_request(ident, seq), (address, 0))
            drain()
        end = time.monotonic() + timeout
        if deadline is not None:
            end = min(end, deadline)
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        while len(replies) < len(sent):
            left = end - time.monotonic()
            if left <= 0:
                break
            if sel.select(left):
                drain()
        sel.close()
    finally:
        sock.close()
    return replies, kind
