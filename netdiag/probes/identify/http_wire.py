"""HTTP as pure functions of bytes: the request and preface netdiag sends, and the answers that
name an HTTP/1.x server (status line, ``Server`` header) or an HTTP/2 one (SETTINGS frame).
"""

from __future__ import annotations

import re
import struct

from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete

Parsed = Identity | None | _Incomplete

# The status line and headers of a reply: enough to find Server; the body is never read.
MAX_HEAD = 8192
USER_AGENT = "netdiag-identify"

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9
FRAME_SETTINGS = 0x4
FRAME_GOAWAY = 0x7
# SETTINGS_MAX_FRAME_SIZE may not exceed 2^24-1; a first SETTINGS frame carries a handful of
# 6-byte entries, so anything announcing more is not one.
MAX_SETTINGS_LEN = 6 * 32
SETTINGS_NAMES = {
    1: "header_table_size",
    2: "enable_push",
    3: "max_concurrent_streams",
    4: "initial_window_size",
    5: "max_frame_size",
    6: "max_header_list_size",
    8: "enable_connect_protocol",
    9: "no_rfc7540_priorities",
}
H2_ERRORS = {
    0: "NO_ERROR",
    1: "PROTOCOL_ERROR",
    2: "INTERNAL_ERROR",
    3: "FLOW_CONTROL_ERROR",
    5: "STREAM_CLOSED",
    6: "FRAME_SIZE_ERROR",
    7: "REFUSED_STREAM",
    11: "ENHANCE_YOUR_CALM",
    13: "HTTP_1_1_REQUIRED",
}

_STATUS_LINE = re.compile(rb"^HTTP/(\d)(?:\.(\d))? (\d{3})(?: ([^\r\n]*))?$")


def request(host: str | None, path: str = "/") -> bytes:
    """A plain ``GET`` that any HTTP/1.x server answers (``Connection: close``)."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host or 'localhost'}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii", errors="replace")


def h2_preface() -> bytes:
    """The HTTP/2 connection preface with an empty SETTINGS frame (prior knowledge, h2c)."""
    # length 0, type SETTINGS, no flags, stream 0
    return PREFACE + b"\x00\x00\x00" + bytes([FRAME_SETTINGS, 0]) + b"\x00" * 4


def _header_value(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1")[:120] or None
    return None


def _bare_page(data: bytes, final: bool) -> Parsed:
    """An error page with no status line: what Python's http.server sends, HTTP/0.9 style, to
    a request line it cannot parse (the HTTP/2 preface)."""
    head = data[:15].lower()
    for start in (b"<!doctype html", b"<html"):
        if head.startswith(start):
            return Identity(
                "http", "HTTP", note="an error page without a status line", certain=False
            )
        if start.startswith(head):
            return None if final else INCOMPLETE
    return None


def http1(data: bytes, final: bool = False) -> Parsed:
    """An HTTP/1.x reply: ``HTTP/1.0 200 OK`` and its ``Server`` header."""
    if not data.startswith(b"HTTP/"):
        if data and b"HTTP/".startswith(data[:5]):
            return None if final else INCOMPLETE
        return _bare_page(data, final)
    end = data.find(b"\n")
    if end < 0:
        return None if final or len(data) >= MAX_HEAD else INCOMPLETE
    match = _STATUS_LINE.match(data[:end].rstrip(b"\r"))
    if not match:
        return None
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = data.find(b"\n\n")
    if head_end < 0 and not final and len(data) < MAX_HEAD:
        return INCOMPLETE
    head = data[: head_end if head_end >= 0 else MAX_HEAD]
    major, minor, code, reason = match.groups()
    version = f"{major.decode()}.{minor.decode()}" if minor else major.decode()
    server = _header_value(head, b"server")
    facts = {
        "http_version": version,
        "status_code": int(code),
        "reason": (reason or b"").decode("latin-1")[:80],
        "server": server,
    }
    location = _header_value(head, b"location")
    if location:
        facts["location"] = location
    return Identity("http", f"HTTP/{version}", product=server, facts=facts)


def _frame_header(data: bytes) -> tuple[int, int, int, int]:
    length = int.from_bytes(data[:3], "big")
    kind, flags = data[3], data[4]
    stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
    return length, kind, flags, stream


def http2(data: bytes, final: bool = False) -> Parsed:
    """The server's first HTTP/2 frame: SETTINGS (or GOAWAY) on stream 0."""
    if len(data) < FRAME_HEADER:
        # a SETTINGS frame header starts with a length below 2^16 and type 4 at byte 3
        return INCOMPLETE if data and data[0] == 0 and not final else None
    length, kind, flags, stream = _frame_header(data)
    if stream != 0 or kind not in (FRAME_SETTINGS, FRAME_GOAWAY):
        return None
    if kind == FRAME_SETTINGS and (length % 6 or length > MAX_SETTINGS_LEN or flags & ~0x1):
        return None
    if kind == FRAME_GOAWAY and not 8 <= length <= 1024:
        return None
    body = data[FRAME_HEADER : FRAME_HEADER + length]
    if len(body) < length:
        return None if final else INCOMPLETE
    facts: dict[str, object] = {"http_version": "2"}
    note = None
    if kind == FRAME_SETTINGS:
        settings = {}
        for at in range(0, length, 6):
            ident, value = struct.unpack("!HI", body[at : at + 6])
            settings[SETTINGS_NAMES.get(ident, str(ident))] = value
        facts["settings"] = settings
    else:
        code = int.from_bytes(body[4:8], "big")
        facts["goaway"] = H2_ERRORS.get(code, str(code))
        note = f"GOAWAY {facts['goaway']}"
    return Identity("http2", "HTTP/2", note=note, facts=facts)
