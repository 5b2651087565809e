"""Redis (RESP) as pure functions of bytes: the PING + HELLO nudge and what answers it.

``+PONG`` (or an error such as ``-NOAUTH``) names Redis; the reply to ``HELLO`` (Redis 6 and
later, when no AUTH is needed) adds the server's name, version, mode and role.
"""

from __future__ import annotations

from typing import Any

from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete

Parsed = Identity | None | _Incomplete

PING = b"*1\r\n$4\r\nPING\r\n"
HELLO = b"*1\r\n$5\r\nHELLO\r\n"
QUIT = b"*1\r\n$4\r\nQUIT\r\n"
MAX_REPLY = 4096  # HELLO's map is ~150 bytes; nothing legitimate is near this
MAX_DEPTH = 3
MAX_ITEMS = 64


class _Short(Exception):
    """The value is not complete yet."""


class _Bad(Exception):
    """Not RESP."""


def _line(data: bytes, at: int) -> tuple[bytes, int]:
    end = data.find(b"\r\n", at)
    if end < 0:
        if len(data) - at > 512:
            raise _Bad
        raise _Short
    return data[at:end], end + 2


def _int(raw: bytes) -> int:
    if not raw or len(raw) > 12 or not raw.lstrip(b"-").isdigit():
        raise _Bad
    return int(raw)


def parse_value(data: bytes, at: int = 0, depth: int = 0) -> tuple[Any, int]:
    """One RESP2/RESP3 value from ``data[at:]`` -> (value, next position).

    Errors come back as ``("error", text)``; raises _Short (more bytes needed) or _Bad.
    """
    if at >= len(data):
        raise _Short
    kind = data[at : at + 1]
    line, nxt = _line(data, at + 1)
    if kind in (b"+", b"-"):
        if any(b < 0x20 or b > 0x7E for b in line):
            raise _Bad
        text = line.decode("ascii")
        return (("error", text) if kind == b"-" else text), nxt
    if kind == b":":
        return _int(line), nxt
    if kind in (b"$", b"="):
        size = _int(line)
        if size < 0:
            return None, nxt
        if size > MAX_REPLY:
            raise _Bad
        if len(data) < nxt + size + 2:
            raise _Short
        if data[nxt + size : nxt + size + 2] != b"\r\n":
            raise _Bad
        return data[nxt : nxt + size].decode("utf-8", errors="replace"), nxt + size + 2
    if kind in (b"*", b"%", b"~"):
        count = _int(line)
        if count < 0:
            return None, nxt
        if depth >= MAX_DEPTH or count > MAX_ITEMS:
            raise _Bad
        items = []
        for _ in range(count * (2 if kind == b"%" else 1)):
            item, nxt = parse_value(data, nxt, depth + 1)
            items.append(item)
        return items, nxt
    if kind == b"_":
        return None, nxt
    raise _Bad


def _error_text(value: Any) -> str | None:
    if isinstance(value, tuple) and value and value[0] == "error":
        return value[1]
    return None


def _looks_like_redis_error(text: str) -> bool:
    word = text.split(" ", 1)[0]
    return word.isupper() and word.isalpha()


def redis(data: bytes, final: bool = False) -> Parsed:
    """The replies to ``PING`` then ``HELLO``: PONG or an error names Redis; HELLO adds facts."""
    if not data:
        return None
    if data[:1] not in (b"+", b"-"):
        return None
    try:
        first, at = parse_value(data)
    except _Short:
        return None if final or len(data) >= MAX_REPLY else INCOMPLETE
    except _Bad:
        return None
    error = _error_text(first)
    if error is None and first != "PONG":
        return None
    if error is not None and not _looks_like_redis_error(error):
        return None
    facts: dict[str, Any] = {"reply": first if error is None else f"-{error}"}
    hello: Any = None
    try:
        hello, _ = parse_value(data, at)
    except _Short:
        if not final and len(data) < MAX_REPLY:
            return INCOMPLETE
    except _Bad:
        pass
    name, version, note = "Redis", None, None
    if error is not None:
        facts["error_reply"] = error
        code = error.split(" ", 1)[0]
        note = "requires AUTH" if code in ("NOAUTH", "WRONGPASS") else error[:80]
        facts["auth_required"] = code in ("NOAUTH", "WRONGPASS")
    else:
        facts["auth_required"] = False
    if isinstance(hello, list) and len(hello) % 2 == 0:
        info = {str(k): v for k, v in zip(hello[::2], hello[1::2], strict=True)}
        for key in ("server", "version", "mode", "role", "proto"):
            if key in info and isinstance(info[key], str | int):
                facts[key] = info[key]
        server = str(info.get("server", "redis"))
        name = "Redis" if server.lower() == "redis" else server.capitalize()[:20]
        version = str(info["version"])[:20] if "version" in info else None
    elif _error_text(hello) and note is None:
        facts["hello_error"] = _error_text(hello)
    return Identity("redis", name, version=version, note=note, facts=facts)
