"""MySQL/MariaDB wire format, as pure functions of bytes: packet framing, the server's first
packet (HandshakeV10 greeting or ERR), and a description of foreign bytes.

Every parser returns a result or raises ``MySQLParseError``; no other exception escapes.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field
from typing import Any

HEADER_LEN = 4
# A greeting is ~100 bytes and an ERR before the greeting carries a short message; anything
# announcing more than this is not a first packet and is refused without reading it.
MAX_FIRST_PACKET = 1024

# Capability flags (protocol::CapabilityFlags); bit 0 is CLIENT_MYSQL, which MariaDB clears.
CLIENT_MYSQL = 1 << 0
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_SSL = 1 << 11
CLIENT_SECURE_CONNECTION = 1 << 15
CLIENT_PLUGIN_AUTH = 1 << 19
CLIENT_CONNECT_ATTRS = 1 << 20
CLIENT_DEPRECATE_EOF = 1 << 24

CAPABILITY_NAMES = {
    0: "CLIENT_MYSQL",
    1: "CLIENT_FOUND_ROWS",
    2: "CLIENT_LONG_FLAG",
    3: "CLIENT_CONNECT_WITH_DB",
    4: "CLIENT_NO_SCHEMA",
    5: "CLIENT_COMPRESS",
    6: "CLIENT_ODBC",
    7: "CLIENT_LOCAL_FILES",
    8: "CLIENT_IGNORE_SPACE",
    9: "CLIENT_PROTOCOL_41",
    10: "CLIENT_INTERACTIVE",
    11: "CLIENT_SSL",
    12: "CLIENT_IGNORE_SIGPIPE",
    13: "CLIENT_TRANSACTIONS",
    14: "CLIENT_RESERVED",
    15: "CLIENT_SECURE_CONNECTION",
    16: "CLIENT_MULTI_STATEMENTS",
    17: "CLIENT_MULTI_RESULTS",
    18: "CLIENT_PS_MULTI_RESULTS",
    19: "CLIENT_PLUGIN_AUTH",
    20: "CLIENT_CONNECT_ATTRS",
    21: "CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA",
    22: "CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS",
    23: "CLIENT_SESSION_TRACK",
    24: "CLIENT_DEPRECATE_EOF",
    25: "CLIENT_OPTIONAL_RESULTSET_METADATA",
    26: "CLIENT_ZSTD_COMPRESSION_ALGORITHM",
    27: "CLIENT_QUERY_ATTRIBUTES",
    29: "CLIENT_CAPABILITY_EXTENSION",
    30: "CLIENT_SSL_VERIFY_SERVER_CERT",
    31: "CLIENT_REMEMBER_OPTIONS",
}

MARIADB_CAPABILITY_NAMES = {
    0: "MARIADB_CLIENT_PROGRESS",
    1: "MARIADB_CLIENT_COM_MULTI",
    2: "MARIADB_CLIENT_STMT_BULK_OPERATIONS",
    3: "MARIADB_CLIENT_EXTENDED_TYPE_INFO",
    4: "MARIADB_CLIENT_CACHE_METADATA",
    5: "MARIADB_CLIENT_BULK_UNIT_RESULTS",
}

MARIADB_VERSION_PREFIX = "5.5.5-"

# Codes a server sends instead of the greeting, with what they mean for the prober.
KNOWN_ERRORS = {
    1040: "too many connections",
    1129: "host blocked after too many connection errors (max_connect_errors)",
    1130: "host not allowed to connect",
    1044: "access denied to database",
    1045: "access denied",
    1049: "unknown database",
    1146: "table does not exist",
}


class MySQLParseError(ValueError):
    """Bytes that are not the MySQL packet they were expected to be; ``str()`` says why."""


@dataclass
class Handshake:
    """A parsed HandshakeV10 greeting."""

    protocol_version: int
    server_version: str  # as the server sent it
    version: str  # MariaDB's "5.5.5-" replication prefix removed
    flavor: str  # "MariaDB" or "MySQL"
    connection_id: int
    capabilities: int
    charset: int | None
    status_flags: int | None
    auth_plugin: str | None
    auth_data_len: int
    mariadb_capabilities: int | None = None

    @property
    def tls_offered(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)

    def capability_names(self) -> list[str]:
        return [n for bit, n in CAPABILITY_NAMES.items() if self.capabilities & (1 << bit)]

    def to_facts(self) -> dict[str, Any]:
        """Facts for a ProbeResult; stable JSON keys (see docs/probes.md)."""
        facts = asdict(self)
        facts["tls_offered"] = self.tls_offered
        facts["capabilities"] = f"0x{self.capabilities:08x}"
        facts["capability_names"] = self.capability_names()
        if self.status_flags is not None:
            facts["status_flags"] = f"0x{self.status_flags:04x}"
        if self.mariadb_capabilities is not None:
            facts["mariadb_capabilities"] = f"0x{self.mariadb_capabilities:08x}"
            facts["mariadb_capability_names"] = [
                n
                for bit, n in MARIADB_CAPABILITY_NAMES.items()
                if self.mariadb_capabilities & (1 << bit)
            ]
        return facts


@dataclass
class ErrPacket:
    """A parsed ERR packet: code, optional SQLSTATE, message."""

    code: int
    message: str
    sqlstate: str | None = None
    meaning: str | None = field(default=None)

    def to_facts(self) -> dict[str, Any]:
        return {"error_code": self.code, "sqlstate": self.sqlstate, "error_message": self.message}


def parse_header(header: bytes) -> tuple[int, int]:
    """The 4-byte packet header -> (payload length, sequence id)."""
    if len(header) != HEADER_LEN:
        raise MySQLParseError(f"packet header needs 4 bytes, got {len(header)}")
    return int.from_bytes(header[:3], "little"), header[3]


def split_packet(data: bytes, limit: int = MAX_FIRST_PACKET) -> tuple[int, bytes, bytes]:
    """One framed packet from the front of ``data`` -> (sequence id, payload, rest).

    A length above ``limit`` is refused from the header alone, so the caller never reads it.
    """
    length, seq = parse_header(data[:HEADER_LEN])
    if length > limit:
        raise MySQLParseError(f"packet announces {length} bytes, more than the {limit} allowed")
    payload = data[HEADER_LEN : HEADER_LEN + length]
    if len(payload) < length:
        raise MySQLParseError(f"truncated packet: {len(payload)} of {length} payload bytes")
    return seq, payload, data[HEADER_LEN + length :]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, count: int, what: str) -> bytes:
        if self.left() < count:
            raise MySQLParseError(f"greeting ends inside {what}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int_le(self, count: int, what: str) -> int:
        return int.from_bytes(self.take(count, what), "little")

    def cstring(self, what: str, required: bool = True) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            if required:
                raise MySQLParseError(f"{what} is not NUL-terminated")
            end = len(self.data)  # some servers omit the final NUL of the plugin name
            text = self.data[self.pos : end]
            self.pos = end
            return text
        text = self.data[self.pos : end]
        self.pos = end + 1
        return text


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def flavor_of(server_version: str, capabilities: int) -> tuple[str, str]:
    """(flavour, version without MariaDB's "5.5.5-" prefix)."""
    version = server_version
    mariadb = "mariadb" in version.lower() or not capabilities & CLIENT_MYSQL
    if version.startswith(MARIADB_VERSION_PREFIX):
        version = version[len(MARIADB_VERSION_PREFIX) :]
        mariadb = True
    return ("MariaDB" if mariadb else "MySQL"), version


def parse_handshake(payload: bytes) -> Handshake:
    """A HandshakeV10 payload (header removed) -> Handshake."""
    if not payload:
        raise MySQLParseError("empty greeting")
    if payload[0] != 10:
        raise MySQLParseError(f"protocol version {payload[0]} is not 10 (HandshakeV10)")
    r = _Reader(payload)
    r.pos = 1
    raw_version = r.cstring("server version")
    if not raw_version or any(b < 0x20 or b > 0x7E for b in raw_version):
        raise MySQLParseError("server version is empty or not printable")
    server_version = _text(raw_version)
    connection_id = r.int_le(4, "connection id")
    r.take(8, "auth data")
    r.take(1, "filler")
    capabilities = r.int_le(2, "capability flags")
    charset = status = plugin = mariadb_caps = None
    auth_len = 8
    if r.left():
        charset = r.int_le(1, "character set")
        status = r.int_le(2, "status flags")
        capabilities |= r.int_le(2, "upper capability flags") << 16
        declared = r.int_le(1, "auth data length")
        r.take(6, "reserved bytes")
        extended = r.int_le(4, "MariaDB capabilities")
        if not capabilities & CLIENT_MYSQL:
            mariadb_caps = extended
        if capabilities & CLIENT_SECURE_CONNECTION:
            part2 = max(13, declared - 8)
            r.take(part2, "auth data part 2")
            auth_len += part2
        if capabilities & CLIENT_PLUGIN_AUTH:
            plugin = _text(r.cstring("auth plugin name", required=False)) or None
    flavor, version = flavor_of(server_version, capabilities)
    return Handshake(
        protocol_version=10,
        server_version=server_version,
        version=version,
        flavor=flavor,
        connection_id=connection_id,
        capabilities=capabilities,
        charset=charset,
        status_flags=status,
        auth_plugin=plugin,
        auth_data_len=auth_len,
        mariadb_capabilities=mariadb_caps,
    )


def parse_err(payload: bytes) -> ErrPacket:
    """An ERR payload (0xFF, code, optional ``#SQLSTATE``, message) -> ErrPacket."""
    if len(payload) < 3 or payload[0] != 0xFF:
        raise MySQLParseError("not an ERR packet")
    code = int.from_bytes(payload[1:3], "little")
    rest = payload[3:]
    sqlstate = None
    if rest[:1] == b"#":
        if len(rest) < 6:
            raise MySQLParseError("ERR packet ends inside its SQLSTATE")
        sqlstate = rest[1:6].decode("ascii", errors="replace")
        rest = rest[6:]
    return ErrPacket(code, _text(rest), sqlstate, KNOWN_ERRORS.get(code))


def parse_first_packet(payload: bytes) -> Handshake | ErrPacket:
    """What a server sends first: a greeting or an ERR in its place."""
    if payload[:1] == b"\xff":
        return parse_err(payload)
    return parse_handshake(payload)


def parse_first_frame(data: bytes) -> Handshake | ErrPacket:
    """Framed bytes (header + payload) of the first packet -> greeting or ERR."""
    seq, payload, _ = split_packet(data)
    if seq != 0:
        raise MySQLParseError(f"first packet has sequence id {seq}, not 0")
    return parse_first_packet(payload)


_PRINTABLE = set(string.printable.encode()) - set(b"\x0b\x0c")


def describe_foreign(data: bytes, limit: int = 60) -> str:
    """Name what a peer sent: a MySQL greeting, an SSH banner, an HTTP reply, text, or hex."""
    try:
        first = parse_first_frame(data[: HEADER_LEN + MAX_FIRST_PACKET])
    except MySQLParseError:
        pass
    else:
        if isinstance(first, Handshake):
            return f"a {first.flavor} greeting (version {first.version})"
        return f"a MySQL error packet (ERROR {first.code})"
    if data.startswith(b"SSH-"):
        line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
        return f"an SSH banner {_text(line[:limit])!r}"
    if data.startswith(b"HTTP/"):
        line = data.split(b"\r\n", 1)[0]
        return f"an HTTP response {_text(line[:limit])!r}"
    if data and all(b in _PRINTABLE for b in data[:limit]):
        return f"text {_text(data[:limit]).strip()!r}"
    return f"bytes {data[:16].hex()}" + ("..." if len(data) > 16 else "")


# --- the polite end of an anonymous probe: a login as a user that does not exist ----------

PROBE_USER = "netdiag_probe"
COM_QUIT = b"\x01\x00\x00\x00\x01"  # length 1, sequence 0, command 0x01
_CLIENT_FLAGS = CLIENT_MYSQL | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
UTF8MB4_GENERAL_CI = 45


def frame(payload: bytes, seq: int) -> bytes:
    """``payload`` framed as one packet with sequence id ``seq``."""
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def dummy_login(greeting: Handshake, user: str = PROBE_USER) -> bytes:
    """A framed HandshakeResponse41 for ``user`` with an empty password (sequence 1).

    Servers count it as an authentication error, not a handshake (connect) error, so it never
    moves the client's host towards max_connect_errors; see docs/probes.md.
    """
    plugin = (greeting.auth_plugin or "mysql_native_password").encode()
    payload = (
        _CLIENT_FLAGS.to_bytes(4, "little")
        + (16 * 1024 * 1024).to_bytes(4, "little")
        + bytes([UTF8MB4_GENERAL_CI])
        + bytes(23)
        + user.encode()
        + b"\x00"
        + b"\x00"  # auth response: length 0
        + plugin
        + b"\x00"
    )
    return frame(payload, 1)


def parse_login_reply(payload: bytes) -> tuple[str, ErrPacket | None]:
    """The server's answer to a login -> ("ok" | "err" | "auth_switch" | "auth_more", ERR)."""
    if not payload:
        raise MySQLParseError("empty reply to the login")
    kind = payload[0]
    if kind == 0xFF:
        return "err", parse_err(payload)
    if kind == 0x00:
        return "ok", None
    if kind == 0xFE:
        return "auth_switch", None
    if kind == 0x01:
        return "auth_more", None
    raise MySQLParseError(f"unexpected reply 0x{kind:02x} to the login")
