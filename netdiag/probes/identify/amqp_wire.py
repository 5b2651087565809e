"""AMQP as pure functions of bytes: the protocol header netdiag sends, and the broker's answer,
either ``connection.start`` (AMQP 0-9-1: product, version, platform from server-properties) or
its own protocol header (a broker of another AMQP version says which one it speaks).
"""

from __future__ import annotations

import struct
from typing import Any

from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete

Parsed = Identity | None | _Incomplete

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1
FRAME_END = 0xCE
# AMQP 0-9-1 4.2.3: before tuning, no frame may exceed frame-min-size (4096 octets); RabbitMQ's
# connection.start is ~500 bytes.
MAX_START_FRAME = 4096
CONNECTION_START = (10, 10)
MAX_DEPTH = 4

# The protocol id / version in a header reply -> what the broker speaks.
HEADER_VERSIONS = {
    (0, 0, 9, 1): "AMQP 0-9-1",
    (1, 1, 0, 9): "AMQP 0-9",
    (1, 1, 0, 8): "AMQP 0-8",
    (1, 1, 0, 10): "AMQP 0-10",
    (0, 1, 0, 0): "AMQP 1.0",
    (2, 1, 0, 0): "AMQP 1.0 (TLS)",
    (3, 1, 0, 0): "AMQP 1.0 (SASL)",
}


class _Bad(Exception):
    """Not the structure expected."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise _Bad
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def shortstr(self) -> str:
        return self.take(self.unpack("!B")).decode("utf-8", errors="replace")

    def longstr(self) -> str:
        return self.take(self.unpack("!I")).decode("utf-8", errors="replace")


# Field value types: RabbitMQ's reading of 0-9-1 (the one every broker in use follows).
_FIXED = {
    b"t": "!B",
    b"b": "!b",
    b"B": "!B",
    b"s": "!h",
    b"u": "!H",
    b"I": "!i",
    b"i": "!I",
    b"l": "!q",
    b"L": "!Q",
    b"f": "!f",
    b"d": "!d",
    b"T": "!Q",
}


def _value(r: _Reader, depth: int) -> Any:
    kind = r.take(1)
    if kind in _FIXED:
        value = r.unpack(_FIXED[kind])
        return bool(value) if kind == b"t" else value
    if kind == b"S":
        return r.longstr()
    if kind == b"x":
        return r.take(r.unpack("!I")).hex()
    if kind == b"D":
        scale, raw = r.unpack("!B"), r.unpack("!i")
        return raw / (10**scale)
    if kind == b"V":
        return None
    if kind == b"F":
        return _table(r, depth + 1)
    if kind == b"A":
        end = r.unpack("!I") + r.pos
        items = []
        while r.pos < end:
            items.append(_value(r, depth + 1))
        if r.pos != end:
            raise _Bad
        return items
    raise _Bad


def _table(r: _Reader, depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _Bad
    size = r.unpack("!I")
    inner = _Reader(r.take(size))
    table: dict[str, Any] = {}
    while inner.pos < len(inner.data):
        key = inner.shortstr()
        table[key] = _value(inner, depth)
    return table


def parse_start(payload: bytes) -> dict[str, Any]:
    """A connection.start method payload -> its fields; raises ValueError when it is not."""
    r = _Reader(payload)
    try:
        if (r.unpack("!H"), r.unpack("!H")) != CONNECTION_START:
            raise _Bad
        major, minor = r.unpack("!B"), r.unpack("!B")
        properties = _table(r)
        mechanisms = r.longstr()
        locales = r.longstr()
    except (_Bad, struct.error, RecursionError):
        raise ValueError("not an AMQP connection.start") from None
    return {
        # the 0-9-1 header was accepted: the revision is 1 (connection.start has no field for it)
        "version": "0-9-1" if (major, minor) == (0, 9) else f"{major}-{minor}",
        "server_properties": properties,
        "mechanisms": mechanisms.split(),
        "locales": locales.split(),
    }


def _printable(value: Any, limit: int = 80) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def answer(data: bytes, final: bool = False) -> Parsed:
    """The broker's reply to the 0-9-1 protocol header."""
    if len(data) < 8:
        if data and (b"AMQP".startswith(data[:4]) or data[:1] == bytes([FRAME_METHOD])):
            return None if final else INCOMPLETE
        return None
    if data.startswith(b"AMQP"):
        spoken = HEADER_VERSIONS.get(tuple(data[4:8]))
        if spoken is None:
            return None
        return Identity(
            "amqp",
            spoken,
            note="answered with its protocol header",
            facts={"header_reply": data[:8].hex()},
        )
    if data[0] != FRAME_METHOD or data[1:3] != b"\x00\x00":
        return None
    size = int.from_bytes(data[3:7], "big")
    if size < 4 or size > MAX_START_FRAME:
        return None
    if len(data) < 7 + size + 1:
        return None if final else INCOMPLETE
    if data[7 + size] != FRAME_END:
        return None
    try:
        start = parse_start(data[7 : 7 + size])
    except ValueError:
        return None
    props = start["server_properties"]
    product = _printable(props.get("product"), 40)
    version = _printable(props.get("version"), 20)
    facts = {
        "amqp_version": start["version"],
        "product": product,
        "version": version,
        "platform": _printable(props.get("platform")),
        "cluster_name": _printable(props.get("cluster_name")),
        "mechanisms": start["mechanisms"][:8],
        "capabilities": sorted(
            k for k, v in (props.get("capabilities") or {}).items() if v is True
        )[:32]
        if isinstance(props.get("capabilities"), dict)
        else [],
    }
    shown = " ".join(p for p in (product, version) if p) or None
    return Identity("amqp", f"AMQP {start['version']}", product=shown, facts=facts)
