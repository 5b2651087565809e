"""PostgreSQL: SSLRequest (TLS offered?), then a StartupMessage with a dummy user.

An authentication request (or the dummy role being unknown) means the server is up and speaks
PostgreSQL; an ErrorResponse's SQLSTATE classifies the rest (see docs/probes.md).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from netdiag.probes.base import Finding, Probe, ProbeFailure, connect, recv_exactly, recv_some
from netdiag.probes.mysql_wire import describe_foreign
from netdiag.status import Status

if TYPE_CHECKING:
    from netdiag.probes.identify.instead import Instead

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
PROTOCOL_3 = 196608
PROBE_USER = "netdiag_probe"
MAX_MESSAGE = 8192  # an auth request or an ErrorResponse before login is far smaller
TERMINATE = b"X\x00\x00\x00\x04"

AUTH_METHODS = {
    0: "ok (trust)",
    2: "kerberos v5",
    3: "cleartext password",
    5: "md5",
    7: "gss",
    9: "sspi",
    10: "sasl",
}

NOT_READY = {
    "57P03": "not accepting connections yet (starting up, recovering or shutting down)",
    "53300": "too many connections",
}


class PostgresParseError(ValueError):
    """Bytes that are not the PostgreSQL backend message expected."""


def startup_message(user: str = PROBE_USER, database: str | None = None) -> bytes:
    """A protocol 3.0 StartupMessage for ``user``."""
    body = struct.pack("!i", PROTOCOL_3) + b"user\x00" + user.encode() + b"\x00"
    if database:
        body += b"database\x00" + database.encode() + b"\x00"
    body += b"application_name\x00netdiag\x00\x00"
    return struct.pack("!i", len(body) + 4) + body


def parse_message_header(header: bytes) -> tuple[str, int]:
    """5 bytes (type, int32 length incl. itself) -> (type, payload length)."""
    if len(header) != 5:
        raise PostgresParseError("message header needs 5 bytes")
    kind = chr(header[0])
    (length,) = struct.unpack("!i", header[1:5])
    if length < 4 or length - 4 > MAX_MESSAGE:
        raise PostgresParseError(f"message {kind!r} announces an impossible length {length}")
    return kind, length - 4


def parse_error_fields(payload: bytes) -> dict[str, str]:
    """An ErrorResponse/NoticeResponse body -> {field code: value} (S, C=SQLSTATE, M, ...)."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != 0:
        code = chr(payload[pos])
        end = payload.find(b"\x00", pos + 1)
        if end < 0:
            raise PostgresParseError("error field is not NUL-terminated")
        fields[code] = payload[pos + 1 : end].decode("utf-8", errors="replace")
        pos = end + 1
    return fields


def parse_auth_request(payload: bytes) -> dict[str, Any]:
    """An AuthenticationRequest body -> {"auth_code", "auth_method"[, "sasl_mechanisms"]}."""
    if len(payload) < 4:
        raise PostgresParseError("authentication request too short")
    (code,) = struct.unpack("!i", payload[:4])
    facts: dict[str, Any] = {"auth_code": code, "auth_method": AUTH_METHODS.get(code, str(code))}
    if code == 10:
        mechs = [m.decode(errors="replace") for m in payload[4:].split(b"\x00") if m]
        facts["sasl_mechanisms"] = mechs
    return facts


def classify_error(fields: dict[str, str]) -> tuple[Status, str]:
    """(status, detail) for an ErrorResponse answering a StartupMessage with a dummy user."""
    state = fields.get("C", "?????")
    message = fields.get("M", "")
    if state == "28000" and "does not exist" in message:
        # the server got as far as looking up our dummy role: it is up and accepting
        return Status.OK, f"up (dummy role refused as expected: {message})"
    if state in NOT_READY:
        return Status.REJECTED, f"not ready: {NOT_READY[state]} (SQLSTATE {state}: {message})"
    return Status.REJECTED, f"SQLSTATE {state}: {message}"


def _read_message(sock: socket.socket, deadline: float, step: str) -> tuple[str, bytes]:
    header = recv_exactly(sock, 5, deadline, step)
    try:
        kind, length = parse_message_header(header)
    except PostgresParseError as exc:
        raise ProbeFailure(
            Status.PROTOCOL_MISMATCH, step, f"not PostgreSQL: {exc}", {"seen": header.hex()}
        ) from None
    return kind, recv_exactly(sock, length, deadline, step)


class PostgresProbe(Probe):
    scheme = "postgres"

    def check(self, address: str, port: int, timeout: float) -> Finding:
        from netdiag.probes.identify.instead import Instead

        deadline = time.monotonic() + timeout
        instead = Instead.of(self, address, port, deadline)
        held: list[socket.socket] = []
        try:
            return self._check(address, port, timeout, instead, held)
        except ProbeFailure as fail:
            if fail.step not in ("ssl_request", "startup"):
                raise
            for sock in held:  # before naming: a server that serves one at a time can answer
                sock.close()
            seen = bytes.fromhex(fail.facts.get("seen", ""))
            named = instead.name(fail, seen, "postgres" if fail.step == "ssl_request" else None)
            if "seen" in named.facts:
                named.facts["seen"] = named.facts["seen"][:128]  # 64 bytes, as documented
            raise named from None

    def _check(
        self,
        address: str,
        port: int,
        timeout: float,
        instead: Instead,
        held: list[socket.socket],
    ) -> Finding:
        deadline = instead.deadline
        source = self.options.source_address
        facts: dict[str, Any] = {}

        def ssl_request(left: float) -> socket.socket:
            sock = connect(address, port, left, source)
            held.append(sock)
            sock.sendall(SSL_REQUEST)
            return sock

        start = time.monotonic()
        sock = ssl_request(timeout)
        try:
            # PostgreSQL answers at once: silence beyond the answer wait is identified beside
            sock = instead.await_answer(
                sock,
                time.monotonic() - start,
                sent="postgres",
                step="ssl_request",
                reconnect=ssl_request,
            )
            try:
                answer = recv_exactly(sock, 1, deadline, "ssl_request")
            except ProbeFailure as fail:
                if fail.status is Status.TIMEOUT:
                    fail.detail = (
                        f"no answer to SSLRequest within {timeout:g}s "
                        "(PostgreSQL answers at once: the peer is silent or stuck)"
                    )
                raise
            if answer not in (b"S", b"N"):
                seen = answer
                # a little more makes the peer recognisable; bounded in size and time
                with contextlib.suppress(ProbeFailure):
                    seen += recv_some(sock, 255, min(deadline, time.monotonic() + 0.2), "peek")
                raise ProbeFailure(
                    Status.PROTOCOL_MISMATCH,
                    "ssl_request",
                    f"not PostgreSQL: SSLRequest answered with {describe_foreign(seen)}",
                    # all of it (<= 256 bytes) for naming the peer; check() keeps 64
                    {"seen": seen.hex()},
                )
            facts["tls_offered"] = answer == b"S"
            if answer == b"S":  # TLS would start now; use a fresh connection for the startup
                sock.close()
                left = max(0.001, deadline - time.monotonic())
                sock = connect(address, port, left, source)
                held.append(sock)
            sock.sendall(startup_message())
            kind, payload = _read_message(sock, deadline, "startup")
            try:
                if kind == "R":
                    facts.update(parse_auth_request(payload))
                    summary = (
                        f"up, TLS {'offered' if facts['tls_offered'] else 'off'}, "
                        f"auth {facts['auth_method']}"
                    )
                    return Finding(summary, facts)
                if kind == "E":
                    fields = parse_error_fields(payload)
                    facts.update(
                        {
                            "sqlstate": fields.get("C"),
                            "error_message": fields.get("M"),
                            "severity": fields.get("S"),
                        }
                    )
                    status, detail = classify_error(fields)
                    if status is Status.OK:
                        return Finding(detail, facts)
                    raise ProbeFailure(status, "startup", detail, facts)
            except PostgresParseError as exc:
                raise ProbeFailure(
                    Status.PROTOCOL_MISMATCH, "startup", f"not PostgreSQL: {exc}"
                ) from None
            raise ProbeFailure(
                Status.PROTOCOL_MISMATCH, "startup", f"unexpected message {kind!r} after startup"
            )
        finally:
            with contextlib.suppress(OSError):
                sock.sendall(TERMINATE)
            sock.close()
