"""What answers a probe's port instead of its protocol: the probes' side of identification.

A probe makes one ``Instead`` per attempt. ``await_answer`` waits for the first bytes of the
probe's own protocol (a MySQL greeting, the answer to an SSLRequest or a PING) only as long as
a server of that protocol takes to send them (the identification's adaptive greeting or answer
wait); when they do not come, it nudges the port on connections of its own while the probe's
connection keeps waiting. ``name`` turns a failure into a ``protocol_mismatch`` that names what
answered, from the bytes the probe saw or from a fresh identification:
``3306 speaks HTTP/1.0 (SimpleHTTP/0.6 Python/3.11.7), not MySQL``.

Nothing here waits beyond the attempt's deadline; the engine's reads are bounded (engine.py).
The parsers and the engine load only when a probe meets silence or foreign bytes: a healthy
``check mysql://`` does not pay for them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netdiag.probes.base import ProbeFailure
from netdiag.status import Status

if TYPE_CHECKING:
    import socket

    from netdiag.probes.base import Probe
    from netdiag.probes.identify.model import Identification, Identity

# Below this much time left, no fresh identification is started: it could not finish.
MIN_LEFT = 0.05

SHORT_NAMES = {
    "http": "HTTP",
    "tls": "TLS",
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "amqp": "AMQP",
    "http2": "HTTP/2",
}


def readable(sock: socket.socket, seconds: float) -> bool:
    """True when ``sock`` has bytes (or an end) to read within ``seconds``; never reads."""
    import select

    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(max(0.0, seconds) * 1000))


def classify_seen(seen: bytes, nudge: str | None, hint: str | None) -> Identity | None:
    """Name the bytes a probe got (after sending ``nudge``, or unprompted when None): the
    nudge's own parser, the greetings and HTTP/TLS first, then every other nudge's parser."""
    from netdiag.probes.identify import nudges
    from netdiag.probes.identify.model import Identity

    got = nudges.classify(seen, nudge, final=True, hint=hint)
    if isinstance(got, Identity):
        return got
    for name in nudges.ORDER:
        if name == nudge:
            continue
        found = nudges.NUDGES[name].parse(seen, True)
        if isinstance(found, Identity):
            return found
    return None


def _vague(identity: Identity) -> bool:
    """A guess (a page without a status line), or a TLS alert, which names TLS but not its
    certificate: a fresh identification says more."""
    return not identity.certain or (
        identity.protocol == "tls" and "certificate" not in identity.facts
    )


class Instead:
    """One probe attempt against ``address:port``, expecting ``scheme``, until ``deadline``
    (monotonic); ``host`` is the name asked for (TLS SNI, certificate check), None for an IP.
    ``quiet`` keeps the identification run while the probe's own answer did not come."""

    def __init__(
        self,
        scheme: str,
        address: str,
        port: int,
        deadline: float,
        host: str | None = None,
        source: str | None = None,
    ) -> None:
        self.scheme, self.address, self.port = scheme, address, port
        self.deadline, self.host, self.source = deadline, host, source
        self.quiet: Identification | None = None

    @classmethod
    def of(cls, probe: Probe, address: str, port: int, deadline: float) -> Instead:
        target = probe.target
        host = None if target.host_is_ip else target.host
        return cls(target.scheme, address, port, deadline, host, probe.options.source_address)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    # -- silence on the probe's own connection

    def await_answer(
        self,
        sock: socket.socket,
        rtt: float,
        *,
        sent: str | None,
        step: str,
        reconnect: Callable[[float], socket.socket] | None = None,
    ) -> socket.socket:
        """Wait for ``sock`` to have something to read: as long as a server of the expected
        protocol takes (the greeting wait when nothing was ``sent``, else the answer wait),
        then nudge the port beside it (``nudge_beside``). Returns the connection to go on
        with: ``sock``, or a new one from ``reconnect(seconds)`` when the engine had to release
        ``sock``. Raises ``protocol_mismatch`` naming the peer when another protocol answers."""
        from netdiag.probes.identify.timing import waits

        banner, answer = waits(rtt)
        window = banner if sent is None else answer
        if readable(sock, min(window, self.left())) or self.left() <= 0:
            return sock
        return self.nudge_beside(sock, rtt, step=step, reconnect=reconnect)

    def nudge_beside(
        self,
        sock: socket.socket,
        rtt: float,
        *,
        step: str,
        reconnect: Callable[[float], socket.socket] | None = None,
    ) -> socket.socket:
        """Identify the port on fresh connections while ``sock`` keeps waiting (see
        ``engine.identify(watch=...)``); the outcome stays in ``quiet`` for a later timeout."""
        from netdiag.probes.identify.engine import identify
        from netdiag.probes.identify.mismatch import matches
        from netdiag.probes.identify.model import WATCHED

        left = self.left()
        if left <= MIN_LEFT:
            return sock
        found = identify(
            self.address,
            self.port,
            scheme=self.scheme,
            host=self.host,
            timeout=left,
            source=self.source,
            watch=sock,
            rtt=rtt,
            release=reconnect is not None,
        )
        if found.state == WATCHED:
            return sock
        self.quiet = found
        if found.identity is not None and not matches(self.scheme, found.identity):
            raise self.mismatch(found.identity, step, {})
        if found.released and reconnect is not None:
            with contextlib.suppress(OSError):
                sock.close()
            return reconnect(max(0.001, self.left()))
        return sock

    def quiet_note(self) -> str | None:
        """What the nudges beside a silent connection found, for its timeout's detail."""
        from netdiag.probes.identify.model import CLOSED, IDENTIFIED, SILENT, UNRECOGNISED

        found = self.quiet
        if found is None:
            return None
        if found.state == SILENT:
            shown = [SHORT_NAMES.get(n, n) for n in found.nudges]
            if not shown:
                return None
            listed = ", ".join(shown[:-1]) + (" or " if len(shown) > 1 else "") + shown[-1]
            return f"nor was there an answer to {listed} openings (a silent or stuck peer)"
        if found.state == UNRECOGNISED:
            return found.detail.removeprefix("open, ")
        if found.state == CLOSED:
            return "other protocols' openings were closed without a word"
        if found.state == IDENTIFIED and found.identity is not None:
            # the expected protocol, on another connection: a slow server, not a foreign one
            return f"another connection saw {found.identity.label}: the server is slow"
        return None

    # -- a failure: what answered instead?

    def mismatch(self, identity: Identity, step: str, facts: dict[str, Any]) -> ProbeFailure:
        """``protocol_mismatch`` naming ``identity``; its facts under ``identity``."""
        from netdiag.probes.identify.mismatch import mismatch_detail

        return ProbeFailure(
            Status.PROTOCOL_MISMATCH,
            step,
            mismatch_detail(self.scheme, self.port, identity),
            {**facts, "identity": identity.to_dict()},
        )

    def name(self, fail: ProbeFailure, seen: bytes = b"", nudge: str | None = None) -> ProbeFailure:
        """``fail`` with what answers instead: a timeout of a silent connection gets what the
        nudges beside it found; a ``protocol_mismatch`` names the protocol of the bytes seen
        (``seen``, else ``facts.seen``, after sending ``nudge``), else of a fresh identification
        of the port. A peer that turns out to speak the expected protocol keeps ``fail``."""
        if fail.status is Status.TIMEOUT:
            note = self.quiet_note()
            if note and not fail.facts.get("seen"):
                fail.detail = f"{fail.detail}; {note}"
            return fail
        if fail.status is not Status.PROTOCOL_MISMATCH or "identity" in fail.facts:
            return fail
        from netdiag.probes.identify import nudges
        from netdiag.probes.identify.mismatch import matches

        if not seen and fail.facts.get("seen"):
            with contextlib.suppress(ValueError):
                seen = bytes.fromhex(fail.facts["seen"])
        hint = nudges.expected(self.port, self.scheme)
        identity = classify_seen(seen, nudge, hint) if seen else None
        if (identity is None or _vague(identity)) and self.left() > MIN_LEFT:
            from netdiag.probes.identify.engine import identify

            tls = identity is not None and identity.protocol == "tls"
            stages = [["tls"]] if tls else None
            found = identify(
                self.address,
                self.port,
                scheme=self.scheme,
                host=self.host,
                timeout=self.left(),
                source=self.source,
                stages=stages,
            )
            if found.identity is not None and (identity is None or found.identity.certain):
                identity = found.identity
        if identity is None or matches(self.scheme, identity):
            return fail
        return self.mismatch(identity, fail.step, fail.facts)
