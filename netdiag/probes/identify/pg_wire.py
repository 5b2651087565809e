"""PostgreSQL's answer to an SSLRequest, as a pure function of bytes.

A PostgreSQL server (and pgbouncer) answers the 8-byte SSLRequest with one byte: ``S`` (TLS
offered) or ``N`` (TLS off), and then waits; very old servers and some poolers answer with an
ErrorResponse instead. Nothing else answers that way.
"""

from __future__ import annotations

from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete
from netdiag.probes.postgres import (
    SSL_REQUEST,
    PostgresParseError,
    parse_error_fields,
    parse_message_header,
)

Parsed = Identity | None | _Incomplete

__all__ = ["SSL_REQUEST", "ssl_answer"]


def ssl_answer(data: bytes, final: bool = False) -> Parsed:
    """``S``/``N`` alone, or an ErrorResponse with severity and message."""
    if data in (b"S", b"N"):
        offered = data == b"S"
        return Identity(
            "postgres",
            "PostgreSQL",
            note="TLS offered" if offered else "TLS off",
            facts={"tls_offered": offered},
        )
    if not data.startswith(b"E"):
        return None
    if len(data) < 5:
        return None if final else INCOMPLETE
    try:
        _, length = parse_message_header(data[:5])
    except PostgresParseError:
        return None
    if len(data) < 5 + length:
        return None if final else INCOMPLETE
    try:
        fields = parse_error_fields(data[5 : 5 + length])
    except PostgresParseError:
        return None
    if not ({"S", "V"} & fields.keys()) or "M" not in fields:
        return None
    message = fields["M"][:100]
    return Identity(
        "postgres",
        "PostgreSQL",
        note=f"error: {message}",
        facts={"sqlstate": fields.get("C"), "error_message": message, "severity": fields.get("S")},
    )
