"""Identify what answers ``address:port``: listen for a greeting, then nudge, within a deadline.

``identify(address, port, scheme=..., timeout=...)`` connects once and listens for a
server-first greeting (MySQL, SSH, SMTP, ...) for a wait that adapts to the connect's round
trip; when none comes it sends the nudges of ``nudges.plan`` (the expected protocol alone, then
the others together, each on a connection of its own) and stops at the first answer that
identifies the peer. A peer silent through all of it is reported ``silent`` after
banner wait + one answer wait per stage, not after ``timeout``. Every read is bounded in bytes,
and the whole run, TLS handshake included, ends by ``timeout`` (one selector loop, no blocking
call but the first connect, which has the same deadline).

A probe that met silence on its own connection passes it as ``watch``: the engine then nudges
on fresh connections only, never reads or writes the watched one, and stops as soon as it
becomes readable (state ``watched``: the probe's own answer came after all).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import time
import warnings
from typing import Any

from netdiag.dns.name import is_ip_literal
from netdiag.probes import mysql_wire
from netdiag.probes.base import ProbeFailure, connect
from netdiag.probes.identify import certs, nudges, resp
from netdiag.probes.identify.model import (
    CLOSED,
    FAILED,
    IDENTIFIED,
    SILENT,
    UNRECOGNISED,
    WATCHED,
    Identification,
    Identity,
)
from netdiag.probes.identify.timing import COMPLETE_FACTOR, waits

MAX_ANSWER = 16 * 1024  # bytes kept per connection for the parsers
MAX_TLS = 64 * 1024  # bytes fed to a TLS handshake (certificate chains run to ~10 KB)
RECV_CHUNK = 4096

# The selector's data for a watched connection (identify(watch=...)): not a channel.
_WATCH = object()

FAREWELL = {
    "smtp": b"QUIT\r\n",
    "ftp": b"QUIT\r\n",
    "smtp-or-ftp": b"QUIT\r\n",
    "pop3": b"QUIT\r\n",
    "imap": b"a1 LOGOUT\r\n",
    "redis": resp.QUIT,
}


class _TLS:
    """A client handshake driven through memory buffers, so the caller's loop owns the socket
    and its deadline; the certificate is read but never verified (identification, not trust)."""

    def __init__(self, sni: str | None) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        # old servers should be named too, not refused: allow every version and cipher
        with contextlib.suppress(ValueError, ssl.SSLError), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=sni)
        self.done = False
        self.error: str | None = None
        self.fed = 0

    def step(self) -> bytes:
        """Run the handshake as far as the bytes fed allow; return what to send."""
        if not self.done and self.error is None:
            try:
                self.obj.do_handshake()
                self.done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                self.error = str(exc.reason or exc)
        return self.outgoing.read()

    def feed(self, data: bytes) -> bytes:
        if self.done or self.error is not None:
            return b""
        self.fed += len(data)
        if self.fed > MAX_TLS:
            self.error = f"more than {MAX_TLS} bytes before the handshake ended"
            return b""
        self.incoming.write(data)
        return self.step()

    def facts(self, host: str | None) -> dict[str, Any]:
        return certs.session(self.obj, host)


class _Channel:
    """One connection: the first one listens for a greeting (``nudge`` None) or any of them
    carries one nudge; ``buf`` keeps at most MAX_ANSWER bytes of the answer."""

    def __init__(self, nudge: str | None, sock: socket.socket, connecting: bool) -> None:
        self.nudge = nudge
        self.sock = sock
        self.connecting = connecting
        self.out = bytearray()
        self.buf = bytearray()
        self.first_at: float | None = None
        self.window_end = float("inf")
        self.eof = False
        self.error: str | None = None
        self.done = False
        self.found: Identity | None = None
        self.tls: _TLS | None = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _open(address: str, port: int, source: str | None) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    if source:
        sock.bind((source, 0))
    code = sock.connect_ex((address, port))
    if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
        sock.close()
        raise OSError(code, errno.errorcode.get(code, str(code)))
    return sock


def _start_nudge(ch: _Channel, host: str | None) -> None:
    nudge = nudges.NUDGES[ch.nudge or ""]
    if nudge.payload is None:  # TLS: the ssl module writes the ClientHello
        ch.tls = _TLS(host if host and not is_ip_literal(host) else None)
        ch.out += ch.tls.step()
    else:
        ch.out += nudge.payload(host)


class _Run:
    """The state of one identification: channels, stages, the selector; ``loop()`` runs it."""

    def __init__(
        self,
        address: str,
        port: int,
        scheme: str | None,
        host: str | None,
        source: str | None,
        hard: float,
        banner: float,
        answer: float,
        stages: list[list[str]],
    ) -> None:
        self.address, self.port, self.host, self.source = address, port, host, source
        self.hint = nudges.expected(port, scheme)
        self.hard, self.banner, self.answer = hard, banner, answer
        self.stages = stages
        self.stage = 0
        self.sent: list[str] = []
        self.channels: list[_Channel] = []
        self.sel = selectors.DefaultSelector()
        self.next_stage_at: float | None = None
        self.winner: _Channel | None = None
        self.guess: _Channel | None = None
        self.spoke_first = False
        # the connection that listens for a greeting; None when a caller's is watched instead
        self.listener: _Channel | None = None
        self.watch: socket.socket | None = None
        self.watched = False  # the watched connection became readable
        self.released = False  # the watched connection was shut down (see release)
        self.may_release = True

    # -- channels
    def add(self, ch: _Channel) -> None:
        self.channels.append(ch)
        self.sel.register(ch.sock, self._events(ch), ch)

    @staticmethod
    def _events(ch: _Channel) -> int:
        if ch.connecting or ch.out:
            return selectors.EVENT_WRITE | (0 if ch.connecting else selectors.EVENT_READ)
        return selectors.EVENT_READ

    def update(self, ch: _Channel) -> None:
        if ch.done:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(ch.sock)
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.modify(ch.sock, self._events(ch), ch)

    def finish(self, ch: _Channel, now: float) -> None:
        """Close the books on a channel: a last, final parse of whatever it got."""
        if ch.done:
            return
        ch.done = True
        if ch.found is None and ch.buf:
            got = nudges.classify(bytes(ch.buf), ch.nudge, final=True, hint=self.hint)
            if isinstance(got, Identity):
                ch.found = got
        if ch.found is not None:
            self.win(ch)
        self.update(ch)
        if ch is not self.winner and ch is not self.guess:
            # a server that handles one connection at a time must see this one end
            ch.close()

    def win(self, ch: _Channel) -> None:
        found = ch.found
        assert found is not None
        if ch.tls is not None and found.protocol == "tls":
            facts = {**found.facts}
            if ch.tls.done:
                facts.update(ch.tls.facts(self.host))
            elif ch.tls.error:
                facts["handshake_error"] = ch.tls.error
            else:
                facts["handshake_error"] = "handshake not completed in time"
            note = found.note
            if "certificate" in facts:
                note = certs.summary(facts["certificate"])
            name = found.name
            if isinstance(facts.get("tls_version"), str) and facts["tls_version"].startswith(
                "TLSv"
            ):
                name = "TLS " + facts["tls_version"][4:]
            found = Identity("tls", name, found.product, found.version, facts, note)
            ch.found = found
        if not found.certain:
            # a guess: keep it unless a sure answer comes while the others still wait
            self.guess = self.guess or ch
        elif self.winner is None:
            self.winner = ch

    # -- stages
    def start_stage(self, now: float) -> None:
        names = self.stages[self.stage]
        self.stage += 1
        self.next_stage_at = now + self.answer if self.stage < len(self.stages) else None
        listener = self.listener
        reuse = (
            listener is not None
            and listener.nudge is None
            and not listener.done
            and not listener.buf
            and self.hint not in nudges.SERVER_FIRST
        )
        for name in names:
            self.sent.append(name)
            if reuse:
                reuse = False
                listener.nudge = name
                listener.window_end = min(self.hard, now + self.answer)
                _start_nudge(listener, self.host)
                self.update(listener)
                continue
            try:
                sock = _open(self.address, self.port, self.source)
            except OSError:
                continue
            ch = _Channel(name, sock, connecting=True)
            ch.window_end = min(self.hard, now + self.answer)
            self.add(ch)
        if listener is not None and listener.nudge is None and not listener.done:
            # a slow greeting still counts: keep listening as long as the nudges wait
            listener.window_end = min(self.hard, now + self.answer)

    # -- events
    def on_writable(self, ch: _Channel, now: float) -> None:
        if ch.connecting:
            code = ch.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            ch.connecting = False
            if code:
                ch.error = errno.errorcode.get(code, str(code))
                self.finish(ch, now)
                return
            ch.window_end = min(self.hard, now + self.answer)
            _start_nudge(ch, self.host)
        if ch.out:
            try:
                sent = ch.sock.send(ch.out)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                ch.error = exc.strerror or str(exc)
                self.finish(ch, now)
                return
            del ch.out[:sent]
        self.update(ch)

    def on_readable(self, ch: _Channel, now: float) -> None:
        room = MAX_ANSWER - len(ch.buf) if ch.tls is None else MAX_TLS
        try:
            data = ch.sock.recv(max(1, min(RECV_CHUNK, room)))
        except BlockingIOError:
            return
        except OSError as exc:  # a reset ends the answer like a close does
            ch.error = exc.strerror or str(exc)
            ch.eof = True
            self.finish(ch, now)
            return
        if not data:
            ch.eof = True
            self.finish(ch, now)
            return
        if ch.first_at is None:
            ch.first_at = now
            ch.window_end = min(self.hard, now + COMPLETE_FACTOR * self.answer)
            if ch is self.listener and ch.nudge is None:
                self.spoke_first = True
        if len(ch.buf) < MAX_ANSWER:
            ch.buf += data[: MAX_ANSWER - len(ch.buf)]
        if ch.tls is not None:
            ch.out += ch.tls.feed(data)
        if ch.found is None:
            got = nudges.classify(bytes(ch.buf), ch.nudge, hint=self.hint)
            if isinstance(got, Identity):
                ch.found = got
        if ch.found is not None and not (
            ch.tls is not None
            and ch.found.protocol == "tls"
            and not ch.tls.done
            and not ch.tls.error
        ):
            self.finish(ch, now)
            return
        if ch.tls is None and len(ch.buf) >= MAX_ANSWER:
            self.finish(ch, now)
            return
        self.update(ch)

    # -- a watched connection
    def should_release(self, now: float) -> bool:
        """The first nudge's window is over, every nudge connected and none heard a thing,
        while the watched connection stays silent: a server that serves one connection at a
        time (openssl s_server) may be holding the nudges in its backlog behind the watched
        one."""
        if self.watch is None or self.released or not self.may_release:
            return False
        if self.next_stage_at is not None:
            return False
        waiting = [ch for ch in self.channels if not ch.done]
        if not waiting or any(ch.buf or ch.eof or ch.error for ch in self.channels):
            return False
        return all(not ch.connecting for ch in waiting) and now >= min(
            ch.window_end for ch in waiting
        )

    def release(self, now: float) -> None:
        """Shut the watched connection down and give the silent nudges one more answer wait."""
        assert self.watch is not None
        self.released = True
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(self.watch)
        with contextlib.suppress(OSError):
            self.watch.shutdown(socket.SHUT_RDWR)
        for ch in self.channels:
            if not ch.done:
                ch.window_end = min(self.hard, now + self.answer)

    # -- the loop
    def loop(self) -> None:
        while self.winner is None and not self.watched:
            now = time.monotonic()
            if now >= self.hard:
                break
            listener = self.listener
            hung_up = (
                listener is not None
                and listener.nudge is None
                and listener.eof
                and not listener.buf
            )
            if self.spoke_first or hung_up:
                # a server that speaks first is never nudged: its greeting decides alone; one
                # that hangs up at once (docker-proxy without a backend) would hang up again
                self.next_stage_at = None
                self.stage = len(self.stages)
            elif self.next_stage_at is not None and (
                now >= self.next_stage_at or all(ch.done for ch in self.channels)
            ):
                self.start_stage(now)  # when due, or at once when every answer is in
            if self.should_release(now):
                self.release(now)
            for ch in self.channels:
                if not ch.done and now >= ch.window_end:
                    self.finish(ch, now)
            if self.winner is not None:
                break
            if self.next_stage_at is None and all(ch.done for ch in self.channels):
                break
            ends = [ch.window_end for ch in self.channels if not ch.done]
            if self.next_stage_at is not None:
                ends.append(self.next_stage_at)
            wake = min([self.hard, *ends])
            for key, events in self.sel.select(max(0.0, wake - time.monotonic())):
                if key.data is _WATCH:
                    self.watched = True
                    break
                ch = key.data
                if ch.done:
                    continue
                now = time.monotonic()
                if events & selectors.EVENT_WRITE:
                    self.on_writable(ch, now)
                if not ch.done and not ch.connecting and events & selectors.EVENT_READ:
                    self.on_readable(ch, now)
                if self.winner is not None:
                    break
        now = time.monotonic()
        for ch in self.channels:
            if self.watched or self.winner is not None:
                break
            if not ch.done and ch.buf:
                self.finish(ch, now)  # the deadline came: name what the bytes so far allow

    def close(self) -> None:
        if self.winner is None and not self.watched:
            self.winner = self.guess
        for ch in self.channels:
            if ch is not self.winner:
                ch.close()
        self.sel.close()  # never closes the watched connection: it is the caller's


def _farewell(ch: _Channel, found: Identity, deadline: float) -> None:
    """End politely so a server keeps no grudge: a MySQL greeting gets a dummy login (an auth
    error, never a connect error: see docs/probes.md), text protocols QUIT, Redis QUIT."""
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            return
        ch.sock.setblocking(True)
        ch.sock.settimeout(left)
        if found.protocol == "mysql" and found.facts.get("greeting"):
            greeting = mysql_wire.parse_first_frame(bytes(ch.buf))
            if isinstance(greeting, mysql_wire.Handshake):
                ch.sock.sendall(mysql_wire.dummy_login(greeting))
                ch.sock.recv(1024)  # the server's ERR; read so it is not reset mid-write
        elif found.protocol in FAREWELL:
            ch.sock.sendall(FAREWELL[found.protocol])
    except (OSError, mysql_wire.MySQLParseError):
        pass
    finally:
        ch.close()


def _describe_silence(run: _Run, cut: bool) -> str:
    shown = [nudges.NUDGES[n].shown for n in run.sent]
    answer = f"no answer to {', '.join(shown)} within {run.answer * 1000:.0f} ms"
    if run.listener is None:  # a watched connection: the caller listened for the greeting
        what = answer if shown else "no nudge sent"
    else:
        what = f"no greeting within {run.banner * 1000:.0f} ms"
        if shown:
            what += f" and {answer}"
    if cut:
        what += " (the deadline came first)"
    return f"open (silent): {what}"


def identify(
    address: str,
    port: int,
    *,
    scheme: str | None = None,
    host: str | None = None,
    timeout: float = 3.0,
    source: str | None = None,
    stages: list[list[str]] | None = None,
    watch: socket.socket | None = None,
    rtt: float | None = None,
    release: bool = True,
) -> Identification:
    """Name what answers ``address:port`` within ``timeout`` seconds; never raises for a peer.

    ``scheme`` (mysql, postgres, http, https, ...) and the port choose the nudges and their
    order; ``host`` is the name asked for (TLS SNI, certificate name check, HTTP Host);
    ``stages`` overrides the nudge plan (``[]``: only listen for a greeting).

    ``watch``: a connection of the caller's to the same port that has heard nothing so far
    (``rtt``: its connect time). The nudges start at once on connections of their own (by
    default every nudge but the one ``scheme`` calls for, which the caller sent); the engine
    returns ``watched`` as soon as ``watch`` becomes readable, and never reads, writes or
    closes it. When every nudge stays silent through its window, the engine shuts ``watch``
    down (``released``) and gives the nudges one more answer wait: a server that serves one
    connection at a time (openssl s_server) answers them only once the caller's is gone;
    ``release=False`` keeps it (the caller cannot start over on a new connection).
    """
    start = time.monotonic()
    hard = start + max(0.0, timeout)
    if watch is None:
        try:
            sock = connect(address, port, max(0.001, timeout), source)
        except ProbeFailure as fail:
            return Identification(
                address,
                port,
                FAILED,
                fail.detail,
                status=str(fail.status),
                elapsed_ms=(time.monotonic() - start) * 1000,
            )
        connected = time.monotonic()
        rtt = connected - start
    else:
        connected, rtt = start, rtt or 0.0
    banner, answer = waits(rtt)
    if stages is not None:
        plan = stages
    elif watch is not None:
        own = nudges.expected(port, scheme)
        plan = [[n for n in nudges.ORDER if n != own]]
    else:
        plan = nudges.plan(port, scheme)
    run = _Run(address, port, scheme, host, source, hard, banner, answer, plan)
    if watch is None:
        sock.setblocking(False)
        listener = _Channel(None, sock, connecting=False)
        listener.window_end = min(hard, connected + banner)
        run.add(listener)
        run.listener = listener
        run.next_stage_at = listener.window_end if plan else None
    else:
        run.watch, run.may_release = watch, release
        run.sel.register(watch, selectors.EVENT_READ, _WATCH)
        run.next_stage_at = start if plan else None
    try:
        run.loop()
    finally:
        run.close()
    elapsed = lambda: (time.monotonic() - start) * 1000  # noqa: E731
    result = Identification(address, port, SILENT, "", connect_ms=rtt * 1000, nudges=list(run.sent))
    result.released = run.released
    if run.watched and (run.winner is None or run.winner.found is None):
        result.state, result.detail = WATCHED, "the watched connection got its answer first"
        result.elapsed_ms = elapsed()
        return result
    if run.winner is not None and run.winner.found is not None:
        found = run.winner.found
        _farewell(run.winner, found, min(hard, time.monotonic() + answer))
        result.state, result.identity, result.detail = IDENTIFIED, found, found.detail
        result.elapsed_ms = elapsed()
        return result
    cut = time.monotonic() >= hard
    talkers = [ch for ch in run.channels if ch.buf]
    if talkers:
        ch = talkers[0]
        result.state, result.seen = UNRECOGNISED, bytes(ch.buf[:64])
        to = "as its greeting" if ch.nudge is None else f"to {nudges.NUDGES[ch.nudge].shown}"
        result.detail = (
            f"open, unrecognised: the peer sent {mysql_wire.describe_foreign(bytes(ch.buf))} {to}"
        )
        if cut and not ch.eof:
            result.detail += " (incomplete when the deadline came)"
    elif run.channels and all(ch.eof or ch.error for ch in run.channels):
        result.state = CLOSED
        result.detail = "open, but the peer closed the connection without a word"
    else:
        result.detail = _describe_silence(run, cut)
    result.elapsed_ms = elapsed()
    return result


def identify_many(
    pairs: list[tuple[str, int]],
    timeout: float,
    workers: int,
    schemes: dict[int, str] | None = None,
) -> dict[tuple[str, int], Identification]:
    """Identify every ``(address, port)`` concurrently, at most ``workers`` at once (each holds
    up to 1 + len(nudges.ORDER) sockets), each within ``timeout``; keyed by the pair."""
    from concurrent.futures import ThreadPoolExecutor

    schemes = schemes or {}
    if not pairs:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pairs)))) as pool:
        found = pool.map(
            lambda pair: identify(pair[0], pair[1], scheme=schemes.get(pair[1]), timeout=timeout),
            pairs,
        )
        return dict(zip(pairs, found, strict=True))
