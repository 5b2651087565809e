"""Ping every peer at once from one thread: TCP connect, HTTP GET /ping, and a UDP echo.

All peers start together on non-blocking sockets under one selector, each with its own
timeouts (connect within ``timeout``, the /ping answer within ``timeout`` of the request), so a
dead or slow peer never delays another and the thread count does not grow with the peers.
At most ``MAX_RESPONSE`` bytes are read from any peer.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import socket
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from netdiag.mesh import udp_echo
from netdiag.mesh.model import PeerPing, UdpEcho
from netdiag.probes.base import UNREACHABLE_ERRNOS

MAX_RESPONSE = 16 * 1024
AGENT_MARK = "netdiag-agent"  # the /ping document's "agent" field: tells our agent from others
UDP_GAP = 0.01  # seconds between the echo packets to one peer


def _status_of(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in UNREACHABLE_ERRNOS:
        return "unreachable"
    if code == errno.ETIMEDOUT:
        return "timeout"
    return "error"


def parse_ping_answer(data: bytes) -> tuple[str, str, dict]:
    """(status, detail, info) from a whole HTTP answer to GET /ping. Pure."""
    head, sep, body = data.partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0]
    parts = first.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        shown = first[:40].decode("ascii", "replace")
        return "protocol_mismatch", f"not an HTTP answer: {shown!r}", {}
    code = int(parts[1])
    if code != 200:
        return "protocol_mismatch", f"HTTP {code} for /ping: not a netdiag agent", {}
    if not sep:
        return "protocol_mismatch", "HTTP answer cut before its body", {}
    try:
        info = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "protocol_mismatch", "/ping answered with something other than JSON", {}
    if not isinstance(info, dict) or info.get("agent") != AGENT_MARK:
        return "protocol_mismatch", "/ping answered, but not by a netdiag agent", {}
    return "ok", "ok", info


def _complete(data: bytes) -> bool:
    """True once a whole answer is in: the header and Content-Length bytes of body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False


@dataclass
class _Conn:
    address: str
    sock: socket.socket
    started: float
    deadline: float
    round_deadline: float
    timeout: float
    phase: str = "connect"  # connect, response, done
    connected: float | None = None
    sent: float | None = None
    buf: bytearray = field(default_factory=bytearray)


@dataclass
class _Echo:
    """UDP echo bookkeeping for all peers of one round."""

    token: bytes
    schedule: list[tuple[float, str, int]]  # (when, address, seq), in time order
    sent_at: dict[tuple[str, int], float] = field(default_factory=dict)
    rtts: dict[str, list[float]] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    socks: dict[int, socket.socket] = field(default_factory=dict)  # family -> socket


def ping_all(
    addresses: Sequence[str],
    port: int,
    timeout: float,
    deadline: float,
    udp_packets: int = 5,
    request_headers: str = "",
) -> dict[str, PeerPing]:
    """One PeerPing per address; returns by the monotonic ``deadline`` at the latest."""
    start = time.monotonic()
    results: dict[str, PeerPing] = {}
    sel = selectors.DefaultSelector()
    conns: dict[socket.socket, _Conn] = {}
    echo = _Echo(os.urandom(8), [])
    try:
        for address in dict.fromkeys(addresses):
            _open(address, port, timeout, deadline, sel, conns, results, start)
        if udp_packets > 0:
            for i in range(udp_packets):
                echo.schedule += [(start + i * UDP_GAP, a, i) for a in dict.fromkeys(addresses)]
            for address in dict.fromkeys(addresses):
                echo.rtts[address] = []
        udp_end = min(deadline, start + (udp_packets - 1) * UDP_GAP + timeout)
        request = (
            f"GET /ping HTTP/1.1\r\nHost: {{host}}\r\n{request_headers}Connection: close\r\n\r\n"
        )
        _loop(sel, conns, results, echo, port, request, udp_end, udp_packets)
    finally:
        for sock in list(conns):
            _finish(sel, conns, sock)
        for sock in echo.socks.values():
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(sock)
            sock.close()
        sel.close()
    for address in dict.fromkeys(addresses):
        rtts = echo.rtts.get(address, [])
        results[address].udp = UdpEcho(
            sent=echo.sent.get(address, 0),
            received=len(rtts),
            rtt_ms=statistics.median(rtts) * 1000 if rtts else None,
        )
    return results


def _open(
    address: str,
    port: int,
    timeout: float,
    deadline: float,
    sel: selectors.BaseSelector,
    conns: dict[socket.socket, _Conn],
    results: dict[str, PeerPing],
    start: float,
) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex((address, port))
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        results[address] = PeerPing(address, _status_of(code), "connect", os.strerror(code))
        return
    conns[sock] = _Conn(address, sock, start, min(deadline, start + timeout), deadline, timeout)
    sel.register(sock, selectors.EVENT_WRITE)


def _finish(sel: selectors.BaseSelector, conns: dict[socket.socket, _Conn], sock: socket.socket):
    with contextlib.suppress(KeyError, ValueError):
        sel.unregister(sock)
    sock.close()
    return conns.pop(sock)


def _udp_sock(echo: _Echo, family: int, sel: selectors.BaseSelector) -> socket.socket:
    if family not in echo.socks:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        echo.socks[family] = sock
        sel.register(sock, selectors.EVENT_READ)
    return echo.socks[family]


def _loop(
    sel: selectors.BaseSelector,
    conns: dict[socket.socket, _Conn],
    results: dict[str, PeerPing],
    echo: _Echo,
    port: int,
    request: str,
    udp_end: float,
    udp_packets: int,
) -> None:
    while True:
        now = time.monotonic()
        while echo.schedule and echo.schedule[0][0] <= now:
            _, address, seq = echo.schedule.pop(0)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = _udp_sock(echo, family, sel)
            with contextlib.suppress(OSError):
                sock.sendto(udp_echo.encode(udp_echo.REQUEST, seq, echo.token), (address, port))
                echo.sent_at[(address, seq)] = time.monotonic()
                echo.sent[address] = echo.sent.get(address, 0) + 1
        echo_done = not echo.schedule and (
            now >= udp_end or all(len(r) >= udp_packets for r in echo.rtts.values())
        )
        for sock, conn in list(conns.items()):
            if now >= conn.deadline:
                _finish(sel, conns, sock)
                waited = conn.deadline - (conn.sent or conn.started)
                if conn.phase == "connect":
                    detail = f"no answer to SYN within {waited:.3g}s"
                    results[conn.address] = PeerPing(conn.address, "timeout", "connect", detail)
                else:
                    results[conn.address] = PeerPing(
                        conn.address,
                        "timeout",
                        "response",
                        f"connected, but no /ping answer within {waited:.3g}s",
                        _ms_between(conn.started, conn.connected),
                    )
        if not conns and echo_done:
            return
        wake = [c.deadline for c in conns.values()]
        if echo.schedule:
            wake.append(echo.schedule[0][0])
        elif not echo_done:
            wake.append(udp_end)
        wait = max(0.0, min(wake) - time.monotonic()) if wake else 0.0
        for key, _ in sel.select(wait):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock in conns:
                _step(sel, conns, results, conns[sock], port, request)
            else:
                _read_echoes(sock, echo)


def _ms_between(a: float, b: float | None) -> float | None:
    return None if b is None else (b - a) * 1000


def _step(
    sel: selectors.BaseSelector,
    conns: dict[socket.socket, _Conn],
    results: dict[str, PeerPing],
    conn: _Conn,
    port: int,
    request: str,
) -> None:
    sock = conn.sock
    now = time.monotonic()
    if conn.phase == "connect":
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            _finish(sel, conns, sock)
            results[conn.address] = PeerPing(
                conn.address, _status_of(code), "connect", os.strerror(code)
            )
            return
        conn.connected = now
        host = f"[{conn.address}]:{port}" if ":" in conn.address else f"{conn.address}:{port}"
        try:
            sock.send(request.replace("{host}", host).encode())
        except OSError as exc:
            _finish(sel, conns, sock)
            results[conn.address] = PeerPing(
                conn.address, "error", "request", exc.strerror or str(exc)
            )
            return
        conn.sent = time.monotonic()
        conn.phase = "response"
        conn.deadline = min(conn.round_deadline, conn.sent + conn.timeout)
        sel.modify(sock, selectors.EVENT_READ)
        return
    try:
        chunk = sock.recv(MAX_RESPONSE + 1 - len(conn.buf))
    except BlockingIOError:
        return
    except OSError as exc:
        _finish(sel, conns, sock)
        results[conn.address] = PeerPing(
            conn.address,
            "error",
            "response",
            exc.strerror or str(exc),
            _ms_between(conn.started, conn.connected),
        )
        return
    conn.buf += chunk
    if len(conn.buf) > MAX_RESPONSE:
        _finish(sel, conns, sock)
        results[conn.address] = PeerPing(
            conn.address,
            "protocol_mismatch",
            "response",
            f"/ping answer larger than {MAX_RESPONSE} bytes",
            _ms_between(conn.started, conn.connected),
        )
        return
    # Something that does not start like an HTTP answer (an SSH banner...) will not become one.
    foreign = len(conn.buf) >= 5 and not conn.buf.startswith(b"HTTP/")
    if chunk and not foreign and not _complete(bytes(conn.buf)):
        return
    done = time.monotonic()
    _finish(sel, conns, sock)
    status, detail, info = parse_ping_answer(bytes(conn.buf))
    results[conn.address] = PeerPing(
        conn.address,
        status,
        None if status == "ok" else "response",
        detail,
        _ms_between(conn.started, conn.connected),
        _ms_between(conn.sent or done, done),
        info,
    )


def _read_echoes(sock: socket.socket, echo: _Echo) -> None:
    for _ in range(256):  # drain what is queued, bounded
        try:
            data, peer = sock.recvfrom(udp_echo.PACKET_SIZE + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # an ICMP error queued on the socket: that packet is lost, go on
            continue
        now = time.monotonic()
        decoded = udp_echo.decode(data)
        if decoded is None or decoded[0] != udp_echo.REPLY or decoded[2] != echo.token:
            continue
        key = (peer[0], decoded[1])
        sent = echo.sent_at.pop(key, None)  # pop: a duplicated reply counts once
        if sent is not None and peer[0] in echo.rtts:
            echo.rtts[peer[0]].append(now - sent)
