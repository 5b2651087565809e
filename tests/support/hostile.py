"""Hostile and broken peers for the probe tests: TCP servers on 127.0.0.1 that misbehave.

``hostile_peer(behaviour)`` listens on an ephemeral loopback port, runs ``behaviour(conn,
stop)`` in a thread for every accepted connection, and closes everything on exit. ``stop`` is a
threading.Event set when the context ends, so behaviours that wait return promptly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Behaviour = Callable[[socket.socket, threading.Event], None]


@dataclass
class Peer:
    host: str
    port: int
    sent: list[int] = field(default_factory=list)  # bytes handed to the kernel per connection

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.host}:{self.port}"


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept and never send anything."""
    stop.wait(60)


def drip(
    conn: socket.socket, stop: threading.Event, data: bytes = b"\x64\x00\x00\x00\x0a5.5"
) -> None:
    """Send a plausible greeting start one byte a second, forever."""
    i = 0
    while not stop.wait(1.0 if i else 0):
        try:
            conn.sendall(data[i % len(data) : i % len(data) + 1])
        except OSError:
            return
        i += 1


def _flood(conn: socket.socket, stop: threading.Event, prefix: bytes, total: int) -> int:
    conn.settimeout(1.0)
    sent = 0
    chunk = os.urandom(64 * 1024)
    try:
        conn.sendall(prefix)
        sent = len(prefix)
        while sent < total and not stop.is_set():
            try:
                sent += conn.send(chunk[: total - sent])
            except TimeoutError:
                continue
    except OSError:
        pass
    return sent


def garbage_16mb(conn: socket.socket, stop: threading.Event) -> None:
    """Send 16 MB of random bytes."""
    _flood(conn, stop, b"", 16 * 1024 * 1024)


def huge_packet(conn: socket.socket, stop: threading.Event) -> None:
    """Announce a 0xFFFFFF-byte MySQL packet (sequence 0) and start sending it."""
    _flood(conn, stop, b"\xff\xff\xff\x00\x0a", 0xFFFFFF + 4)


def close_mid_packet(conn: socket.socket, stop: threading.Event) -> None:
    """Announce a 100-byte greeting, send 20 bytes of it, close."""
    conn.sendall(b"\x64\x00\x00\x00\x0a5.5.5-10.11.19-Mar")


def ssh_banner(conn: socket.socket, stop: threading.Event) -> None:
    """Greet like an SSH server, then wait for the client."""
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    stop.wait(30)


# --- peers whose text carries terminal control characters (issue 14 item 5) -----------------
# ESC sequences (clear screen, set the window title, colour), BEL, a bare CR and a newline that
# would forge a second line, "FAKE: ok", if a renderer printed them as they are.
CONTROL_TEXT = b"\x1b[2J\x1b]0;pwned\x07 busy\rFAKE: ok\nPASS forged"
CONTROL_LINE = CONTROL_TEXT.replace(b"\n", b" ")  # for protocols that end a reply at \n


def _read_some(conn: socket.socket, stop: threading.Event, size: int = 4096) -> bytes:
    conn.settimeout(2.0)
    try:
        return conn.recv(size)
    except OSError:
        return b""


def mysql_err_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """ERROR 1130 instead of a greeting, its message full of control characters."""
    payload = b"\xff" + (1130).to_bytes(2, "little") + b"Host " + CONTROL_TEXT
    conn.sendall(len(payload).to_bytes(3, "little") + b"\x00" + payload)


def postgres_error_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """No TLS, then an ErrorResponse to the startup whose message has control characters."""
    _read_some(conn, stop, 8)  # SSLRequest
    conn.sendall(b"N")
    _read_some(conn, stop)  # StartupMessage
    fields = b"SFATAL\x00C28000\x00M" + CONTROL_TEXT + b"\x00\x00"
    conn.sendall(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)


def redis_err_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """-ERR to PING, the error text full of control characters (up to the CRLF)."""
    _read_some(conn, stop)
    conn.sendall(b"-ERR " + CONTROL_LINE + b"\r\n")


def http_reason_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """503 with a reason phrase full of control characters."""
    _read_some(conn, stop)
    conn.sendall(b"HTTP/1.1 503 " + CONTROL_LINE + b"\r\nContent-Length: 0\r\n\r\n")


@contextlib.contextmanager
def hostile_peer(behaviour: Behaviour, host: str = "127.0.0.1") -> Iterator[Peer]:
    """Serve ``behaviour`` on an ephemeral port of ``host`` until the context exits."""
    stop = threading.Event()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(16)
    listener.settimeout(0.2)
    peer = Peer(host, listener.getsockname()[1])
    conns: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        try:
            behaviour(conn, stop)
        except OSError:
            pass
        finally:
            conn.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            conns.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
