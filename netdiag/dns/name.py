"""Names DNS can carry: the pure check made before any query (a usage error, nothing sent),
and the one test that tells an IP literal from a name.

Kept apart from ``lookup`` (sockets, the resolver) so that target parsing can use it on the
start-up path of a health check without importing either.
"""

from __future__ import annotations

import ipaddress

from netdiag.errors import UsageError

MAX_LABEL = 63
MAX_NAME = 255  # bytes in wire form, the final root label included


class BadName(UsageError):
    """The name cannot be put in a DNS query (a label over 63 bytes, over 255 bytes, an
    empty label): the caller's input is wrong, and nothing was sent."""


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address (nothing to resolve), not a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def shorten(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def check_name(name: str) -> None:
    """Raise ``BadName`` unless ``name`` can be asked of DNS: labels of 1-63 bytes and at
    most 255 bytes in wire form (an IP literal passes; a final dot is allowed)."""
    text = name[:-1] if name.endswith(".") else name
    if not text:
        if name == ".":
            return
        raise BadName("empty name")
    wire = 1
    for label in text.split("."):
        size = len(label.encode("utf-8", "surrogateescape"))
        if size == 0:
            raise BadName(f"invalid DNS name {shorten(name)!r}: empty label")
        if size > MAX_LABEL:
            raise BadName(
                f"invalid DNS name {shorten(name)!r}: a label of {size} bytes "
                f"(DNS allows {MAX_LABEL})"
            )
        wire += 1 + size
    if wire > MAX_NAME:
        raise BadName(
            f"invalid DNS name {shorten(name)!r}: {wire} bytes in DNS form (DNS allows {MAX_NAME})"
        )
