"""TLS as pure functions of bytes: the server's first record, a ServerHello (version, cipher
suite) or an alert (level, description).

The ClientHello itself comes from Python's ssl module (see ``engine``); this module only reads.
"""

from __future__ import annotations

from netdiag.probes.identify.model import INCOMPLETE, Identity, _Incomplete

Parsed = Identity | None | _Incomplete

RECORD_HEADER = 5
HANDSHAKE = 22
ALERT = 21
SERVER_HELLO = 2
EXT_SUPPORTED_VERSIONS = 43
MAX_RECORD = 16384 + 2048  # RFC 8446 5.2: TLSCiphertext.length <= 2^14 + 256 (+ slack)
# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest (still TLS 1.3).
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}

CIPHER_SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    0x009C: "AES128-GCM-SHA256",
    0x009D: "AES256-GCM-SHA384",
    0x002F: "AES128-SHA",
    0x0035: "AES256-SHA",
    0xC013: "ECDHE-RSA-AES128-SHA",
    0xC014: "ECDHE-RSA-AES256-SHA",
    0x009E: "DHE-RSA-AES128-GCM-SHA256",
    0x009F: "DHE-RSA-AES256-GCM-SHA384",
}

ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}


def _record_header(data: bytes) -> tuple[int, int, int] | None:
    """(content type, record version, length) when plausible, else None."""
    kind, major, minor = data[0], data[1], data[2]
    length = int.from_bytes(data[3:5], "big")
    if kind not in (HANDSHAKE, ALERT) or major != 3 or minor > 4:
        return None
    if length == 0 or length > MAX_RECORD:
        return None
    return kind, (major << 8) | minor, length


def _extensions(body: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    at = 0
    while at + 4 <= len(body):
        ext, size = (
            int.from_bytes(body[at : at + 2], "big"),
            int.from_bytes(body[at + 2 : at + 4], "big"),
        )
        found[ext] = body[at + 4 : at + 4 + size]
        at += 4 + size
    return found


def _server_hello(msg: bytes) -> Identity | None:
    """A ServerHello body (after the 4-byte handshake header)."""
    if len(msg) < 2 + 32 + 1:
        return None
    legacy = int.from_bytes(msg[:2], "big")
    if legacy not in VERSIONS:
        return None
    random = msg[2:34]
    sid_len = msg[34]
    at = 35 + sid_len
    if sid_len > 32 or len(msg) < at + 3:
        return None
    suite = int.from_bytes(msg[at : at + 2], "big")
    at += 3  # cipher suite, compression method
    version = legacy
    if len(msg) >= at + 2:
        ext_len = int.from_bytes(msg[at : at + 2], "big")
        exts = _extensions(msg[at + 2 : at + 2 + ext_len])
        chosen = exts.get(EXT_SUPPORTED_VERSIONS)
        if chosen is not None and len(chosen) == 2:
            version = int.from_bytes(chosen, "big")
    name = VERSIONS.get(version, f"TLS 0x{version:04x}")
    cipher = CIPHER_SUITES.get(suite, f"0x{suite:04x}")
    facts = {
        "tls_version": name,
        "cipher": cipher,
        "cipher_suite": f"0x{suite:04x}",
        "hello_retry": random == HRR_RANDOM,
    }
    return Identity("tls", name, facts=facts)


def server_hello(data: bytes, final: bool = False) -> Parsed:
    """The first record of a TLS server: a ServerHello, or an alert refusing the hello."""
    if len(data) < RECORD_HEADER:
        if not data or data[0] not in (HANDSHAKE, ALERT) or (len(data) > 1 and data[1] != 3):
            return None
        return None if final else INCOMPLETE
    header = _record_header(data)
    if header is None:
        return None
    kind, record_version, length = header
    fragment = data[RECORD_HEADER : RECORD_HEADER + length]
    if kind == ALERT:
        if length != 2:
            return None
        if len(fragment) < 2:
            return None if final else INCOMPLETE
        level, code = fragment[0], fragment[1]
        if level not in (1, 2) or code not in ALERTS:
            return None
        description = ALERTS[code]
        return Identity(
            "tls",
            "TLS",
            note=f"alert {description}",
            facts={
                "alert": description,
                "alert_level": "fatal" if level == 2 else "warning",
                "record_version": VERSIONS.get(record_version),
            },
        )
    if len(fragment) < 4:
        return None if final else INCOMPLETE
    if fragment[0] != SERVER_HELLO:
        return None
    size = int.from_bytes(fragment[1:4], "big")
    if size < 38 or size > length - 4:
        return None
    if len(fragment) < 4 + size:
        return None if final else INCOMPLETE
    return _server_hello(fragment[4 : 4 + size])
