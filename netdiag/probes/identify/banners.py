"""Server-first greetings as pure functions of bytes: MySQL/MariaDB (greeting or ERR), SSH,
``220`` banners (SMTP, FTP), POP3, IMAP, and the errors Redis sends before any command.

Each parser takes the bytes read so far and returns an Identity, None or INCOMPLETE (see
``model``); none raises on any input.
"""

from __future__ import annotations

import re

from netdiag.probes import mysql_wire as wire
from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete

Parsed = Identity | None | _Incomplete

# RFC 4253 4.2: the identification line is at most 255 bytes with CRLF; servers may send other
# lines before it, so a few more lines are allowed before giving up.
SSH_MAX = 1024
# SMTP/FTP/POP3/IMAP greetings are one line, a multi-line 220 a few; more is not a greeting.
TEXT_MAX = 1024

_SMTP_WORDS = re.compile(rb"\b(E?SMTP|Postfix|Exim|Sendmail|mail|MTA)\b", re.IGNORECASE)
_FTP_WORDS = re.compile(rb"\b(FTP|FileZilla|vsFTPd|ProFTPD|Pure-FTPd)", re.IGNORECASE)


def _text(raw: bytes, limit: int = 120) -> str:
    return raw[:limit].decode("utf-8", errors="replace").strip()


def _printable(raw: bytes) -> bool:
    return all(0x20 <= b < 0x7F or b in (0x09,) for b in raw)


def _is_prefix(data: bytes, *words: bytes) -> bool:
    return any(len(data) < len(w) and w.startswith(data) for w in words)


def mysql(data: bytes, final: bool = False) -> Parsed:
    """A MySQL/MariaDB greeting, or the ERR packet a server sends instead (1130, 1040, ...)."""
    if len(data) < wire.HEADER_LEN:
        # any 1-3 bytes could start a header; only a complete one can rule MySQL in
        return None if final or not data else INCOMPLETE
    length, seq = wire.parse_header(data[: wire.HEADER_LEN])
    if seq != 0 or length == 0 or length > wire.MAX_FIRST_PACKET:
        return None
    if len(data) > wire.HEADER_LEN and data[wire.HEADER_LEN] not in (10, 0xFF):
        return None
    if len(data) < wire.HEADER_LEN + length:
        return None if final else INCOMPLETE
    try:
        first = wire.parse_first_frame(data)
    except wire.MySQLParseError:
        return None
    if isinstance(first, wire.ErrPacket):
        flavor = "MariaDB" if "mariadb" in first.message.lower() else "MySQL"
        what = first.meaning or first.message
        return Identity(
            "mysql",
            flavor,
            note=f"ERROR {first.code}: {what}"[:100],
            facts={**first.to_facts(), "greeting": False},
        )
    short = re.match(r"\d+(\.\d+)*", first.version)
    return Identity(
        "mysql",
        first.flavor,
        version=short.group(0) if short else first.version[:20],
        facts={**first.to_facts(), "greeting": True},
    )


def ssh(data: bytes, final: bool = False) -> Parsed:
    """An SSH identification line: ``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3``."""
    if _is_prefix(data, b"SSH-"):
        return None if final else INCOMPLETE
    head = data[:SSH_MAX]
    if head.startswith(b"SSH-"):
        at = 0
    else:  # RFC 4253 lets a server send other lines first
        at = head.find(b"\nSSH-") + 1
        if at == 0:
            return None
    end = head.find(b"\n", at)
    if end < 0 and not final and len(data) < SSH_MAX:
        return INCOMPLETE
    line = head[at : end if end >= 0 else len(head)].rstrip(b"\r")
    if not _printable(line):
        return None
    head_text, _, comments = _text(line, 255).partition(" ")
    parts = head_text.split("-", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        return None
    return Identity(
        "ssh",
        "SSH",
        product=parts[2],
        facts={"banner": _text(line, 255), "protocol_version": parts[1], "comments": comments},
    )


def _lines(data: bytes, final: bool) -> list[bytes] | None:
    """Complete CRLF/LF lines of a text greeting, or None when more bytes are needed."""
    if b"\n" not in data:
        return None if (not final and len(data) < TEXT_MAX) else [data]
    return [line.rstrip(b"\r") for line in data[:TEXT_MAX].split(b"\n") if line.strip()]


def greeting_220(data: bytes, final: bool = False, hint: str | None = None) -> Parsed:
    """An SMTP or FTP ``220`` greeting (multi-line ``220-`` too); ``hint`` (smtp/ftp, from the
    port) decides when the text does not."""
    if _is_prefix(data, b"220 ", b"220-"):
        return None if final else INCOMPLETE
    if not data.startswith((b"220 ", b"220-")):
        return None
    lines = _lines(data, final)
    if lines is None:
        return INCOMPLETE
    last_seen = any(ln.startswith(b"220 ") for ln in lines)
    if data.startswith(b"220-") and not final and not last_seen and len(data) < TEXT_MAX:
        return INCOMPLETE
    if not all(_printable(ln) for ln in lines[:1]):
        return None
    text = _text(lines[0][4:])
    whole = b" ".join(lines)
    if _FTP_WORDS.search(whole):
        protocol = "ftp"
    elif _SMTP_WORDS.search(whole):
        protocol = "smtp"
    else:
        protocol = hint if hint in ("smtp", "ftp") else "smtp-or-ftp"
    name = {"ftp": "FTP", "smtp": "SMTP"}.get(protocol, "SMTP or FTP")
    return Identity(protocol, name, product=text[:60] or None, facts={"banner": text})


def _status_line(
    data: bytes, final: bool, starts: tuple[bytes, ...], skip: int, protocol: str, name: str
) -> Parsed:
    """A one-line greeting starting with one of ``starts``: ``skip`` bytes of status, then the
    server's own words (its product, as far as a banner tells)."""
    if _is_prefix(data, *starts):
        return None if final else INCOMPLETE
    if not data.startswith(starts):
        return None
    lines = _lines(data, final)
    if lines is None:
        return INCOMPLETE
    if not _printable(lines[0]):
        return None
    text = _text(lines[0][skip:])
    return Identity(protocol, name, product=text[:60] or None, facts={"banner": text})


def pop3(data: bytes, final: bool = False) -> Parsed:
    """A POP3 greeting ``+OK ...`` (server-first only: after a Redis PING ``+`` means RESP)."""
    return _status_line(data, final, (b"+OK",), 3, "pop3", "POP3")


def imap(data: bytes, final: bool = False) -> Parsed:
    """An IMAP greeting ``* OK ...`` or ``* PREAUTH ...``."""
    return _status_line(data, final, (b"* OK", b"* PREAUTH", b"* BYE"), 2, "imap", "IMAP")


# Redis speaks first only to refuse: protected mode, or maxclients reached.
_REDIS_GREETING_ERRORS = (b"-DENIED Redis", b"-ERR max number of clients reached")


def redis_refusal(data: bytes, final: bool = False) -> Parsed:
    """The error line Redis sends before any command (protected mode, max clients)."""
    if _is_prefix(data, *_REDIS_GREETING_ERRORS):
        return None if final else INCOMPLETE
    if not data.startswith(_REDIS_GREETING_ERRORS):
        return None
    lines = _lines(data, final)
    if lines is None:
        return INCOMPLETE
    text = _text(lines[0][1:], 100)
    return Identity("redis", "Redis", note=f"refused: {text}"[:100], facts={"error_reply": text})


def server_first(data: bytes, final: bool = False, hint: str | None = None) -> Parsed:
    """Any greeting a server sends before the client says anything."""
    pending = False
    for parse in (mysql, ssh, pop3, imap, redis_refusal):
        got = parse(data, final)
        if isinstance(got, Identity):
            return got
        pending = pending or got is INCOMPLETE
    got = greeting_220(data, final, hint)
    if isinstance(got, Identity):
        return got
    return INCOMPLETE if pending or got is INCOMPLETE else None
