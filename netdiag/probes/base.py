"""The Probe shape, its typed outcome and failure, and the socket helpers every protocol shares.

A probe checks one address of one target. It returns a ``Finding`` (a one-line summary and the
protocol facts) on success and raises ``ProbeFailure(status, step, detail)`` otherwise, so a
failure always says which step broke.
"""

from __future__ import annotations

import contextlib
import errno
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from netdiag.probes.settings import ProbeOptions
from netdiag.records import field, record
from netdiag.status import Status
from netdiag.targets import Target

if TYPE_CHECKING:
    import socket

__all__ = ["Finding", "Probe", "ProbeFailure", "ProbeOptions", "Watchdog", "connect", "handshake"]

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


@record
class Finding:
    """What a probe found at an address that answered as it should: ``summary`` is the
    one-line detail of the result, ``facts`` the protocol findings (stable JSON keys),
    ``warnings`` what holds but will not for long (a certificate about to expire)."""

    summary: str
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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


def _connect_failure(exc: OSError, timeout: float) -> ProbeFailure:
    """A failed connect in the shared vocabulary: timeout, refused, unreachable or error."""
    if isinstance(exc, TimeoutError):
        return ProbeFailure(Status.TIMEOUT, "connect", f"no answer to SYN within {timeout:g}s")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Status.REFUSED, "connect", "connection refused")
    if exc.errno in UNREACHABLE_ERRNOS:
        return ProbeFailure(Status.UNREACHABLE, "connect", exc.strerror or str(exc))
    return ProbeFailure(Status.ERROR, "connect", exc.strerror or str(exc))


def _open(module: Any, address: str, port: int, timeout: float, source: str | None) -> Any:
    if source:
        # an address only: a name here would go to the machine's resolver (settings resolves
        # --source first, by netdiag's rules)
        import ipaddress

        try:
            source = str(ipaddress.ip_address(source))
        except ValueError:
            raise ProbeFailure(
                Status.ERROR, "connect", f"source {source!r} is not an address"
            ) from None
    family = module.AF_INET6 if ":" in address else module.AF_INET
    sock = module.socket(family, module.SOCK_STREAM)
    sock.settimeout(max(timeout, 0.001))
    try:
        if source:
            sock.bind((source, 0))
        sock.connect((address, port))
    except OSError as exc:
        sock.close()
        raise _connect_failure(exc, timeout) from None
    return sock


def connect(address: str, port: int, timeout: float, source: str | None = None) -> socket.socket:
    """TCP connect (from ``source`` when given), telling refused, timeout and unreachable apart."""
    import socket

    return _open(socket, address, port, timeout, source)


def handshake(address: str, port: int, timeout: float, source: str | None = None) -> None:
    """The TCP handshake alone, then close: all a tcp:// probe needs. Failures as ``connect``.

    It uses ``_socket``, the C module under ``socket`` (``socket.socket`` is its subclass):
    importing ``socket`` itself (its enum classes, selectors) costs more than the rest of a
    ``netdiag check tcp://`` health check (bench/startup).
    """
    import _socket

    _open(_socket, address, port, timeout, source).close()


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
        import socket

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
