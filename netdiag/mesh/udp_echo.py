"""The agents' UDP echo: fixed 64-byte packets, answered on the agent's HTTP port number.

Wire (pure functions): ``NDUE`` magic, version 1, kind (0 request, 1 reply), a 16-bit sequence
number, an 8-byte token chosen by the sender, zero padding to 64 bytes. The server answers only
well-formed requests, with a reply of the same size: it amplifies nothing and echoes no
arbitrary bytes.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

MAGIC = b"NDUE"
VERSION = 1
REQUEST, REPLY = 0, 1
PACKET_SIZE = 64
_HEAD = struct.Struct("!4sBBH8s")


def encode(kind: int, seq: int, token: bytes) -> bytes:
    """One packet of PACKET_SIZE bytes."""
    if len(token) != 8:
        raise ValueError("token must be 8 bytes")
    head = _HEAD.pack(MAGIC, VERSION, kind, seq & 0xFFFF, token)
    return head + bytes(PACKET_SIZE - len(head))


def decode(data: bytes) -> tuple[int, int, bytes] | None:
    """(kind, seq, token) of a well-formed packet, else None."""
    if len(data) != PACKET_SIZE:
        return None
    magic, version, kind, seq, token = _HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION or kind not in (REQUEST, REPLY):
        return None
    return kind, seq, token


def reply_to(data: bytes) -> bytes | None:
    """The reply to a request packet, or None for anything else (replies included: no loops)."""
    decoded = decode(data)
    if decoded is None or decoded[0] != REQUEST:
        return None
    _, seq, token = decoded
    return encode(REPLY, seq, token)


class EchoServer:
    """Answer echo requests on ``(host, port)`` in one daemon thread until ``stop()``."""

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.5)
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="udp-echo", daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(PACKET_SIZE + 1)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            out = reply_to(data)
            if out is not None:
                with contextlib.suppress(OSError):
                    self.sock.sendto(out, peer)
                    self.answered += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
