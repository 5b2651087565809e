"""The Probe shape, its typed outcome and failure, and the socket helpers every protocol shares.

A probe checks one address of one target. It returns a ``Finding`` (a one-line summary and the
protocol facts) on success and raises ``ProbeFailure(status, step, detail)`` otherwise, so a
failure always says which step broke.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netdiag.probes.settings import ProbeOptions
from netdiag.status import Status
from netdiag.targets import Target

__all__ = ["Finding", "Probe", "ProbeFailure", "ProbeOptions", "Watchdog", "connect"]

UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


class ProbeFailure(Exception):
    """A probe step failed: ``status`` from the shared vocabulary, ``step`` names the step."""

    def __init__(
        self, status: Status, step: str, detail: str, facts: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.step = step
        self.detail = detail
        self.facts = facts or {}


@dataclass
class Finding:
    """What a probe found at an address that answered as it should: ``summary`` is the
    one-line detail of the result, ``facts`` the protocol findings (stable JSON keys)."""

    summary: str
    facts: dict[str, Any] = field(default_factory=dict)


class Probe(ABC):
    """One protocol checker: ``identity()`` names it, ``check()`` probes one address."""

    scheme: ClassVar[str]
    # False for probes whose check ends at the TCP connect or before it (tcp, dns): doctor
    # has no protocol step to run for them.
    speaks: ClassVar[bool] = True

    def __init__(self, target: Target, options: ProbeOptions) -> None:
        self.target = target
        self.options = options

    def identity(self) -> str:
        return str(self.target)

    @abstractmethod
    def check(self, address: str, port: int, timeout: float) -> Finding:
        """Probe ``address:port`` within ``timeout`` s; return a Finding or raise ProbeFailure."""


def connect(address: str, port: int, timeout: float, source: str | None = None) -> socket.socket:
    """TCP connect (from ``source`` when given), telling refused, timeout and unreachable apart."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(max(timeout, 0.001))
    try:
        if source:
            # an address only: a name here would go to the machine's resolver (settings
            # resolves --source first, by netdiag's rules)
            sock.bind((str(ipaddress.ip_address(source)), 0))
        sock.connect((address, port))
    except TimeoutError:
        sock.close()
        raise ProbeFailure(
            Status.TIMEOUT, "connect", f"no answer to SYN within {timeout:g}s"
        ) from None
    except ConnectionRefusedError:
        sock.close()
        raise ProbeFailure(Status.REFUSED, "connect", "connection refused") from None
    except ValueError:
        sock.close()
        raise ProbeFailure(
            Status.ERROR, "connect", f"source {source!r} is not an address"
        ) from None
    except OSError as exc:
        sock.close()
        if exc.errno in UNREACHABLE_ERRNOS:
            raise ProbeFailure(Status.UNREACHABLE, "connect", exc.strerror or str(exc)) from None
        raise ProbeFailure(Status.ERROR, "connect", exc.strerror or str(exc)) from None
    return sock


def recv_exactly(sock: socket.socket, count: int, deadline: float, step: str) -> bytes:
    """Read exactly ``count`` bytes before the monotonic ``deadline``; never more."""
    chunks: list[bytes] = []
    got = 0
    while got < count:
        left = deadline - time.monotonic()
        if left <= 0:
            seen = b"".join(chunks)
            raise ProbeFailure(
                Status.TIMEOUT,
                step,
                f"timed out after {got} of {count} bytes",
                {"seen": seen[:64].hex()},
            )
        sock.settimeout(left)
        try:
            chunk = sock.recv(count - got)
        except TimeoutError:
            continue
        except ConnectionResetError:
            raise ProbeFailure(Status.PROTOCOL_MISMATCH, step, "connection reset by peer") from None
        except OSError as exc:
            raise ProbeFailure(Status.ERROR, step, exc.strerror or str(exc)) from None
        if not chunk:
            seen = b"".join(chunks)
            detail = f"peer closed after {got} bytes" if got else "peer closed without sending"
            raise ProbeFailure(Status.PROTOCOL_MISMATCH, step, detail, {"seen": seen[:64].hex()})
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_some(sock: socket.socket, limit: int, deadline: float, step: str) -> bytes:
    """Read what arrives first (at most ``limit`` bytes) before ``deadline``."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProbeFailure(Status.TIMEOUT, step, "timed out before the peer sent anything")
    sock.settimeout(left)
    try:
        data = sock.recv(limit)
    except TimeoutError:
        raise ProbeFailure(Status.TIMEOUT, step, f"peer sent nothing within {left:.3g}s") from None
    except ConnectionResetError:
        raise ProbeFailure(Status.PROTOCOL_MISMATCH, step, "connection reset by peer") from None
    except OSError as exc:
        raise ProbeFailure(Status.ERROR, step, exc.strerror or str(exc)) from None
    if not data:
        raise ProbeFailure(Status.PROTOCOL_MISMATCH, step, "peer closed without sending")
    return data


class Watchdog:
    """Shut the connection of ``sock`` down at the monotonic ``deadline`` so code that sets
    per-read timeouts (a driver, http.client, a TLS layer) cannot outlive it; ``fired`` tells
    whether it did.

    It holds a duplicate of the socket's descriptor: ``ssl.wrap_socket`` detaches the socket
    object it is given, and a shutdown on either descriptor ends reads on both, handshake
    included.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        import threading

        self.fired = False
        self._dup: socket.socket | None = sock.dup()
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if self._dup is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                self._dup.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            if self._dup is not None:
                self._dup.close()
                self._dup = None
