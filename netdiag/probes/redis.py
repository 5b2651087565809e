"""Redis: ``PING`` and its one-line reply (+PONG ok, -NOAUTH up but needs auth, -LOADING ...)."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from netdiag.probes.base import Finding, Probe, ProbeFailure, connect, recv_some
from netdiag.probes.mysql_wire import describe_foreign
from netdiag.status import Status

PING = b"*1\r\n$4\r\nPING\r\n"
QUIT = b"*1\r\n$4\r\nQUIT\r\n"
MAX_REPLY = 512


def classify_reply(line: bytes) -> tuple[Status, str, dict[str, Any]]:
    """A RESP reply line to PING -> (status, detail, facts); pure."""
    text = line.decode("utf-8", errors="replace").strip()
    if line.startswith(b"+PONG"):
        return Status.OK, "PONG", {"auth_required": False}
    if line.startswith(b"-NOAUTH"):
        return Status.OK, f"up, requires AUTH ({text[1:]})", {"auth_required": True}
    if line.startswith(b"-LOADING"):
        return Status.REJECTED, f"not ready: {text[1:]}", {"loading": True}
    if line.startswith(b"-") and all(0x20 <= b < 0x7F for b in line[:80]):
        return Status.REJECTED, f"error reply: {text[1:]}", {"error_reply": text[1:]}
    if line[:1] in (b"+", b":", b"$", b"*") and all(0x20 <= b < 0x7F for b in line[:80]):
        return Status.PROTOCOL_MISMATCH, f"unexpected RESP reply to PING: {text[:60]!r}", {}
    return Status.PROTOCOL_MISMATCH, f"not Redis: the peer sent {describe_foreign(line)}", {}


class RedisProbe(Probe):
    scheme = "redis"

    def check(self, address: str, port: int, timeout: float) -> Finding:
        from netdiag.probes.identify.instead import Instead

        deadline = time.monotonic() + timeout
        instead = Instead.of(self, address, port, deadline)
        source = self.options.source_address
        held: list[socket.socket] = []

        def ping(left: float) -> socket.socket:
            sock = connect(address, port, left, source)
            held.append(sock)
            sock.sendall(PING)
            return sock

        data = b""
        try:
            start = time.monotonic()
            sock = ping(timeout)
            # Redis answers at once: silence beyond the answer wait is identified beside
            sock = instead.await_answer(
                sock, time.monotonic() - start, sent="redis", step="ping", reconnect=ping
            )
            while b"\r\n" not in data and len(data) < MAX_REPLY:
                try:
                    data += recv_some(sock, MAX_REPLY - len(data), deadline, "ping")
                except ProbeFailure as fail:
                    if data and fail.status is Status.TIMEOUT:
                        fail.detail = (
                            f"incomplete reply to PING: {len(data)} bytes and no line end in time"
                        )
                        fail.facts["seen"] = data[:64].hex()
                    elif not data and fail.status is Status.TIMEOUT:
                        fail.detail = f"no reply to PING within {timeout:g}s"
                    elif data:  # closed or reset mid-reply: what came is still evidence
                        fail.detail = f"{fail.detail} after {describe_foreign(data)}"
                        fail.facts["seen"] = data[:64].hex()
                    raise
            status, detail, facts = classify_reply(data.split(b"\r\n", 1)[0])
            facts["reply"] = data.split(b"\r\n", 1)[0][:80].decode("utf-8", errors="replace")
            if status is not Status.OK:
                raise ProbeFailure(status, "ping", detail, facts)
            with contextlib.suppress(OSError):
                sock.sendall(QUIT)
            return Finding(detail, facts)
        except ProbeFailure as fail:
            if fail.step != "ping":
                raise
            for sock in held:  # before naming: a server that serves one at a time can answer
                sock.close()
            raise instead.name(fail, data, "redis") from None
        finally:
            for sock in held:
                sock.close()
