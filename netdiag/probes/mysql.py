"""MySQL/MariaDB: the server's first packet without credentials, a real login with them.

Without a user the probe reads one bounded packet and classifies it (greeting, ERR, foreign
bytes, silence). With a user it logs in through PyMySQL the way the todo app does, runs
``SELECT VERSION()``, checks the database and optionally a table, and quits cleanly, so a
healthy prober never counts as a connection error in the server's host cache.

Either way the greeting is awaited only as long as a MySQL server takes to send it; a port
that stays silent is then identified beside the probe's connection (identify.instead), so an
HTTP server on 3306 is named at once instead of timing out.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from netdiag.probes import mysql_wire as wire
from netdiag.probes.base import (
    Finding,
    Probe,
    ProbeFailure,
    Watchdog,
    connect,
    recv_exactly,
    recv_some,
)
from netdiag.probes.identify.instead import Instead
from netdiag.probes.settings import MySQLLogin
from netdiag.secrets import redact
from netdiag.status import Status

__all__ = ["MySQLLogin", "MySQLProbe"]


def read_first_packet(sock: socket.socket, deadline: float) -> wire.Handshake | wire.ErrPacket:
    """Read and parse the server's first packet, never more than MAX_FIRST_PACKET + 4 bytes."""
    try:
        header = recv_exactly(sock, wire.HEADER_LEN, deadline, "greeting")
    except ProbeFailure as fail:
        if fail.status is Status.TIMEOUT and not fail.facts.get("seen"):
            fail.detail = (
                "connected, but no MySQL greeting arrived in time "
                "(a MySQL server speaks first; this peer stays silent, e.g. HTTP, or is stuck)"
            )
        elif fail.facts.get("seen"):
            seen = wire.describe_foreign(bytes.fromhex(fail.facts["seen"]))
            fail.detail += f" of the greeting header: {seen}"
        raise
    length, seq = wire.parse_header(header)
    if length > wire.MAX_FIRST_PACKET or seq != 0:
        more = b""
        # a little more text makes a banner recognisable; bounded in size and time
        with contextlib.suppress(ProbeFailure):
            more = recv_some(sock, 124, min(deadline, time.monotonic() + 0.2), "greeting")
        seen = header + more
        if seen[:4].isascii() and all(0x20 <= b < 0x7F for b in seen[:4]):
            what = wire.describe_foreign(seen)
        elif length > wire.MAX_FIRST_PACKET:
            limit = wire.MAX_FIRST_PACKET
            what = f"a header announcing a {length}-byte packet (a greeting is < {limit})"
        else:
            what = f"a packet with sequence id {seq} (a greeting has 0)"
        raise ProbeFailure(
            Status.PROTOCOL_MISMATCH,
            "greeting",
            f"not MySQL: the peer sent {what}",
            {"seen": seen[:64].hex()},
        )
    try:
        payload = recv_exactly(sock, length, deadline, "greeting")
    except ProbeFailure as fail:
        fail.detail = f"{fail.detail} of a {length}-byte greeting packet"
        raise
    try:
        return wire.parse_first_packet(payload)
    except wire.MySQLParseError as exc:
        raise ProbeFailure(
            Status.PROTOCOL_MISMATCH,
            "greeting",
            f"not a MySQL greeting: {exc}; seen {wire.describe_foreign(header + payload)}",
            {"seen": (header + payload)[:64].hex()},
        ) from None


def _peek(sock: socket.socket, count: int, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)
    return sock.recv(count, socket.MSG_PEEK | socket.MSG_WAITALL)


def peek_greeting(sock: socket.socket, deadline: float) -> wire.Handshake:
    """Check the first packet without consuming it, so a driver can then read it itself.

    Anything but a well-formed greeting is read and reported by ``read_first_packet``: the
    driver never meets a hostile peer (it would trust a 16 MB length).
    """
    try:
        head = _peek(sock, wire.HEADER_LEN, deadline)
        if len(head) == wire.HEADER_LEN:
            length, seq = wire.parse_header(head)
            if length <= wire.MAX_FIRST_PACKET and seq == 0:
                data = _peek(sock, wire.HEADER_LEN + length, deadline)
                first = wire.parse_first_frame(data)
                if isinstance(first, wire.Handshake):
                    return first
    except (TimeoutError, OSError, wire.MySQLParseError):
        pass
    # read for real to report it; a moment of grace lets it consume what the peek saw
    first = read_first_packet(sock, max(deadline, time.monotonic() + 0.05))
    if isinstance(first, wire.ErrPacket):
        raise rejected(first, "greeting")
    raise ProbeFailure(Status.ERROR, "greeting", "greeting changed between peek and read")


def read_reply(sock: socket.socket, deadline: float, step: str) -> bytes:
    """One bounded packet after the greeting (its payload)."""
    header = recv_exactly(sock, wire.HEADER_LEN, deadline, step)
    length, _ = wire.parse_header(header)
    if length > wire.MAX_FIRST_PACKET:
        raise ProbeFailure(
            Status.PROTOCOL_MISMATCH, step, f"reply announces {length} bytes: not MySQL"
        )
    return recv_exactly(sock, length, deadline, step)


# Answers to a login as a user that does not exist which mean "the server works".
EXPECTED_DUMMY_ERRORS = {1045, 1698}


def dummy_login(sock: socket.socket, greeting: wire.Handshake, deadline: float) -> str:
    """Finish the handshake as a non-existent user with no password; return what happened.

    A connection that ends during the handshake counts as a connect error in the server's host
    cache (error 1129 after max_connect_errors); a failed login counts as an authentication
    error, which never blocks the host. Measured on MariaDB 10.11: see docs/probes.md.
    """
    step = "dummy_login"
    switched = False
    try:
        sock.sendall(wire.dummy_login(greeting))
        while True:
            try:
                kind, err = wire.parse_login_reply(read_reply(sock, deadline, step))
            except wire.MySQLParseError as exc:
                raise ProbeFailure(Status.PROTOCOL_MISMATCH, step, str(exc)) from None
            if kind == "err" and err is not None:
                if err.code in EXPECTED_DUMMY_ERRORS:
                    return f"refused as expected (ERROR {err.code})"
                raise rejected(err, step)
            if kind == "ok":
                with contextlib.suppress(OSError):
                    sock.sendall(wire.COM_QUIT)
                return "accepted (the server allows anonymous logins)"
            if kind == "auth_switch":
                if switched:  # a server switches once; a second switch is a loop, no verdict
                    raise ProbeFailure(
                        Status.PROTOCOL_MISMATCH,
                        step,
                        "the server asked to switch authentication again after a switch: "
                        "no verdict on a login (not a MySQL server's behaviour)",
                    )
                switched = True
                sock.sendall(wire.frame(b"", 3))  # empty password for the requested plugin
                continue
            # more authentication data (caching_sha2_password): it speaks MySQL; stop here
            return "the server asked for more authentication data (no verdict needed)"
    except OSError as exc:
        raise ProbeFailure(Status.ERROR, step, exc.strerror or str(exc)) from None


def rejected(err: wire.ErrPacket, step: str) -> ProbeFailure:
    meaning = f" ({err.meaning})" if err.meaning else ""
    detail = f"ERROR {err.code}{meaning}: {err.message}"
    return ProbeFailure(Status.REJECTED, step, detail, err.to_facts())


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class MySQLProbe(Probe):
    scheme = "mysql"

    def login(self) -> MySQLLogin:
        return self.options.mysql or MySQLLogin()

    def check(self, address: str, port: int, timeout: float) -> Finding:
        login = self.login()
        if not login.user and (login.table or login.database):
            what = "table" if login.table else "database"
            # never an "ok" that silently skipped what was asked
            raise ProbeFailure(
                Status.ERROR,
                "login",
                f"checking a {what} needs a login: give --user (or MYSQL_USER, or "
                "mysql://USER@HOST)",
            )
        deadline = time.monotonic() + timeout
        instead = Instead.of(self, address, port, deadline)
        try:
            if login.user:
                return self._login_check(address, port, timeout, login, instead)
            return self._greeting_check(address, port, instead)
        except ProbeFailure as fail:
            if fail.step != "greeting":
                raise
            # the connection is closed by now: a server that serves one at a time can answer
            raise instead.name(fail) from None

    def _connect(self, address: str, port: int, instead: Instead) -> socket.socket:
        """Connect, then wait for the greeting only as long as a MySQL server takes to send
        it; a silent port is nudged beside it (identify.instead)."""
        source = self.options.source_address
        start = time.monotonic()
        sock = connect(address, port, max(0.001, instead.left()), source)
        try:
            return instead.await_answer(
                sock,
                time.monotonic() - start,
                sent=None,
                step="greeting",
                reconnect=lambda left: connect(address, port, left, source),
            )
        except BaseException:
            _close(sock)
            raise

    def _greeting_check(self, address: str, port: int, instead: Instead) -> Finding:
        deadline = instead.deadline
        sock = self._connect(address, port, instead)
        try:
            first = read_first_packet(sock, deadline)
            if isinstance(first, wire.ErrPacket):
                raise rejected(first, "greeting")
            facts = first.to_facts()
            if not self.login().greeting_only:
                facts["dummy_login"] = dummy_login(sock, first, deadline)
        finally:
            _close(sock)
        tls = "TLS offered" if first.tls_offered else "no TLS"
        return Finding(f"{first.flavor} {first.version}, {tls}, auth {first.auth_plugin}", facts)

    def _login_check(
        self, address: str, port: int, timeout: float, login: MySQLLogin, instead: Instead
    ) -> Finding:
        import pymysql

        from netdiag.probes import mysql_driver as driver

        deadline = instead.deadline
        secret = login.password
        step = "connect"
        sock = self._connect(address, port, instead)
        # as PyMySQL does for its own sockets: without it Nagle + delayed ACK stall each query
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        left = max(0.001, deadline - time.monotonic())
        conn = driver.GuardedConnection(
            user=login.user,
            password=secret.reveal() if secret else "",
            host=address,
            port=port,
            database=login.database,
            connect_timeout=max(1, int(left + 0.999)),
            read_timeout=left,
            write_timeout=left,
            defer_connect=True,
            program_name="netdiag",
            # plain like the todo app's driver; PyMySQL's default "preferred TLS" also costs
            # ~15 ms of CPU per connection building a CA context
            ssl_disabled=True,
        )
        facts: dict[str, Any] = {}
        watchdog = Watchdog(sock, deadline)  # the driver's timeouts are per read, not overall
        try:
            step = "greeting"
            facts.update(peek_greeting(sock, deadline).to_facts())
            watchdog.__enter__()
            facts.update({"user": login.user, "database": login.database})
            step = "login"
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            conn.connect(sock)
            facts["server_version"] = conn.get_server_info()
            with conn.cursor() as cur:
                step = "query"
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
                version = str(row[0]) if row else ""
                facts["version"] = version
                facts["flavor"] = "MariaDB" if "mariadb" in version.lower() else "MySQL"
                if login.table:
                    step = "table"
                    facts["table"] = login.table
                    quoted = login.table.replace("`", "``")
                    cur.execute(f"SELECT 1 FROM `{quoted}` LIMIT 0")
                    cur.fetchall()
            step = "quit"
            conn.close()  # COM_QUIT: a clean end, never counted as a connection error
            if watchdog.fired:  # cut short at the deadline: no verdict, whatever was read
                raise OSError("cut at the deadline")
        except ProbeFailure:
            raise
        except driver.OversizedReply as exc:
            raise ProbeFailure(
                Status.PROTOCOL_MISMATCH, step, f"not a MySQL answer: {exc}"
            ) from None
        except driver.CleartextRefused as exc:
            raise ProbeFailure(
                Status.ERROR,
                step,
                f"the server asks for the password in clear text ({exc.plugin}) on a "
                "connection without TLS: refused, the password was not sent (the mysql client "
                "refuses it too without --enable-cleartext-plugin)",
                {**facts, "auth_plugin_requested": exc.plugin, "cleartext_refused": True},
            ) from None
        except (pymysql.err.MySQLError, OSError) as exc:
            if watchdog.fired:
                raise ProbeFailure(
                    Status.TIMEOUT, step, f"{step} not finished within {timeout:g}s"
                ) from None
            if isinstance(exc, OSError):
                detail = redact(exc.strerror or str(exc), secret)
                raise ProbeFailure(Status.ERROR, step, detail) from None
            raise self._failure(exc, step, login, deadline) from None
        except Exception as exc:  # a driver bug: report it, but never with the password in it
            detail = redact(f"internal error: {type(exc).__name__}: {exc}", secret)
            raise ProbeFailure(Status.ERROR, step, detail) from None
        finally:
            watchdog.__exit__()
            if conn.open:
                try:
                    conn.close()
                except Exception:
                    _close(sock)
            else:
                _close(sock)
        where = f", database {login.database}" if login.database else ""
        table = f", table {login.table}" if login.table else ""
        return Finding(f"logged in as {login.user}{where}{table}: {facts['version']}", facts)

    @staticmethod
    def _failure(exc: Exception, step: str, login: MySQLLogin, deadline: float) -> ProbeFailure:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = redact(str(exc.args[1]) if len(exc.args) > 1 else str(exc), login.password)
        if code is not None and code < 2000:  # a server error code (client codes are 2xxx)
            err = wire.ErrPacket(code, message, None, wire.KNOWN_ERRORS.get(code))
            failure = rejected(err, step)
            if code == 1045 and not login.password:
                # not a wrong password: there was none to send
                empty = f", {login.password_from} is empty" if login.password_from else ""
                failure.detail += (
                    f"; no password was configured{empty} (it would come from "
                    f"{login.password_wanted_from})"
                )
                failure.facts["password_configured"] = False
            return failure
        if time.monotonic() >= deadline - 0.01 or "timed out" in message:
            return ProbeFailure(Status.TIMEOUT, step, f"timed out during {step}: {message}")
        if code in (2013, 2006):  # lost connection / gone away while logging in
            return ProbeFailure(
                Status.PROTOCOL_MISMATCH, step, f"connection lost during {step}: {message}"
            )
        return ProbeFailure(Status.ERROR, step, f"{step} failed: {message}")
