"""What to send a port that stays silent, and how to read the answer.

A nudge is the first message of a client-first protocol; ``plan(port, scheme)`` orders them so
that the one the port or the expected scheme calls for goes first, alone, and the others follow
together only when it did not identify the peer. ``classify(data, nudge)`` names what answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netdiag.probes.identify import amqp_wire, banners, http_wire, pg_wire, resp, tls_wire
from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete

Parsed = Identity | None | _Incomplete
Parser = Callable[[bytes, bool], Parsed]


@dataclass(frozen=True)
class Nudge:
    """One client-first opening: ``name`` (also the protocol it tests), what people call it,
    the parser of its answer. ``payload`` is None for TLS (the ssl module writes the hello)."""

    name: str
    shown: str
    payload: Callable[[str | None], bytes] | None
    parse: Parser


NUDGES: dict[str, Nudge] = {
    n.name: n
    for n in (
        Nudge("http", "an HTTP request", http_wire.request, http_wire.http1),
        Nudge("tls", "a TLS ClientHello", None, tls_wire.server_hello),
        Nudge(
            "postgres",
            "a PostgreSQL SSLRequest",
            lambda _h: pg_wire.SSL_REQUEST,
            pg_wire.ssl_answer,
        ),
        Nudge("redis", "a Redis PING", lambda _h: resp.PING + resp.HELLO, resp.redis),
        Nudge("amqp", "the AMQP header", lambda _h: amqp_wire.PROTOCOL_HEADER, amqp_wire.answer),
        Nudge("http2", "the HTTP/2 preface", lambda _h: http_wire.h2_preface(), http_wire.http2),
    )
}
ORDER = ("http", "tls", "postgres", "redis", "amqp", "http2")

# Protocols whose server speaks first: nothing is sent to them, ever, before their banner wait
# is over (a MySQL server counts any unexpected bytes as a handshake error towards
# max_connect_errors, see docs/probes.md).
SERVER_FIRST = {"mysql", "ssh", "smtp", "ftp", "pop3", "imap"}

PORT_PROTOCOLS: dict[int, str] = {
    21: "ftp",
    22: "ssh",
    25: "smtp",
    80: "http",
    110: "pop3",
    143: "imap",
    443: "tls",
    465: "tls",
    587: "smtp",
    636: "tls",
    993: "tls",
    995: "tls",
    2222: "ssh",
    3000: "http",
    3306: "mysql",
    5000: "http",
    5432: "postgres",
    5671: "tls",
    5672: "amqp",
    6379: "redis",
    6443: "tls",
    8000: "http",
    8008: "http",
    8080: "http",
    8443: "tls",
    8888: "http",
    9090: "http",
    9200: "http",
    9443: "tls",
    15672: "http",
    50051: "http2",
}

SCHEME_PROTOCOLS = {
    "mysql": "mysql",
    "postgres": "postgres",
    "postgresql": "postgres",
    "redis": "redis",
    "http": "http",
    "https": "tls",
    "amqp": "amqp",
    "amqps": "tls",
    "ssh": "ssh",
}


def expected(port: int, scheme: str | None = None) -> str | None:
    """The protocol a scheme (first) or a well-known port calls for; None for plain TCP."""
    if scheme and scheme in SCHEME_PROTOCOLS:
        return SCHEME_PROTOCOLS[scheme]
    return PORT_PROTOCOLS.get(port)


def plan(port: int, scheme: str | None = None) -> list[list[str]]:
    """Stages of nudges: the expected client-first one alone, then all the others at once."""
    want = expected(port, scheme)
    if want in NUDGES:
        return [[want], [n for n in ORDER if n != want]]
    return [list(ORDER)]


def classify(
    data: bytes, nudge: str | None, final: bool = False, hint: str | None = None
) -> Parsed:
    """Name what ``data`` (the answer to ``nudge``, or a greeting when None) comes from.

    The nudge's own parser goes first, then the server-first greetings (a slow banner can
    arrive after a nudge), then an HTTP/1 error or a TLS alert, which any nudge can provoke.
    """
    parsers: list[Parser] = []
    if nudge is not None:
        parsers.append(NUDGES[nudge].parse)
    parsers.append(lambda d, f: banners.server_first(d, f, hint))
    for extra in (http_wire.http1, tls_wire.server_hello):
        if extra not in parsers:
            parsers.append(extra)
    pending = False
    for parse in parsers:
        got = parse(data, final)
        if isinstance(got, Identity):
            return got
        pending = pending or got is INCOMPLETE
    return INCOMPLETE if pending else None
