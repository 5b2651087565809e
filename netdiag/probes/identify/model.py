"""The result types of identification: what answered a port (Identity) and how it went.

A parser returns an ``Identity`` (this is the protocol), ``None`` (these bytes are not it) or
``INCOMPLETE`` (a valid start of it: more bytes are needed). With ``final=True`` a parser
never returns INCOMPLETE: it names what the bytes so far allow, or returns None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final


class _Incomplete:
    """The bytes so far are a valid start of the protocol; more are needed to decide."""

    _instance: _Incomplete | None = None

    def __new__(cls) -> _Incomplete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INCOMPLETE"

    def __bool__(self) -> bool:
        return False


INCOMPLETE: Final = _Incomplete()


@dataclass(frozen=True)
class Identity:
    """What answered: ``protocol`` is a stable id (mysql, postgres, redis, http, http2, ssh,
    smtp, ftp, pop3, imap, tls, amqp), ``name`` what people call it (MariaDB, HTTP/1.0, TLS
    1.3), ``product`` the server software when it says so; ``facts`` go to JSON as they are."""

    protocol: str
    name: str
    product: str | None = None
    version: str | None = None
    facts: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    note: str | None = None  # a short remark for people: "requires AUTH", "TLS offered"
    # False for a guess another answer should beat (an HTML page without a status line)
    certain: bool = field(default=True, compare=False)

    @property
    def label(self) -> str:
        """``HTTP/1.0 (SimpleHTTP/0.6 Python/3.11.7)``, ``SSH (OpenSSH_9.2p1)``, ``Redis 7.0.15``."""
        head = f"{self.name} {self.version}" if self.version else self.name
        inner = ", ".join(p for p in (self.product, self.note) if p)
        return f"{head} ({inner})" if inner else head

    @property
    def detail(self) -> str:
        """One line for people: ``speaks SSH (OpenSSH_9.2p1)``."""
        return f"speaks {self.label}"

    @property
    def short(self) -> str:
        """A table cell: ``MariaDB 10.11.19``, ``HTTP/1.0 SimpleHTTP/0.6``, ``SSH OpenSSH_9.2p1``."""
        if self.version:
            return f"{self.name} {self.version}"
        if self.product:
            product = self.product if len(self.product) <= 16 else self.product.split(" ", 1)[0]
            return f"{self.name} {product[:24]}"
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "name": self.name,
            "product": self.product,
            "version": self.version,
            "note": self.note,
            "detail": self.detail,
            "certain": self.certain,
            "facts": self.facts,
        }


# Identification.state values
IDENTIFIED = "identified"
SILENT = "silent"  # connected; nothing came back to the banner wait or to any nudge
UNRECOGNISED = "unrecognised"  # bytes came back that no parser knows
CLOSED = "closed"  # the peer closed every connection without sending anything
FAILED = "failed"  # the first connect failed (refused, timeout, unreachable, error)
# only with ``identify(watch=sock)``: the caller's own connection got its answer first
WATCHED = "watched"


@dataclass
class Identification:
    """The outcome of identifying one ``address:port``.

    ``state`` is one of identified/silent/unrecognised/closed/failed (and watched, see
    ``engine.identify``); ``status`` the connect's
    status (from the shared vocabulary) when the connect failed; ``nudges`` the nudges sent;
    ``seen`` the first bytes of an unrecognised answer; times in milliseconds.
    """

    address: str
    port: int
    state: str
    detail: str
    identity: Identity | None = None
    status: str | None = None
    connect_ms: float | None = None
    elapsed_ms: float = 0.0
    nudges: list[str] = field(default_factory=list)
    seen: bytes = b""
    # only with ``identify(watch=sock)``: the engine shut the caller's connection down so that
    # a server that serves one connection at a time could answer the nudges queued behind it
    released: bool = False

    @property
    def open(self) -> bool:
        return self.state != FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "state": self.state,
            "detail": self.detail,
            "identity": self.identity.to_dict() if self.identity else None,
            "status": self.status,
            "connect_ms": None if self.connect_ms is None else round(self.connect_ms, 3),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "nudges": self.nudges,
            "seen": self.seen[:64].hex() or None,
        }
