"""The MySQL wire parser against real captures and arbitrary bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.probes import mysql_wire as wire

# /work/shared/reference/captures.md: MariaDB 10.11.19 greeting and its ERR 1130
GREETING = bytes.fromhex(
    "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531000500000078417755"
    "234e3e2c00fef7080200ff81150000000000001d0000006022242f5e6b2368653f4d45006d7973716c5f6e61746976"
    "655f70617373776f726400"
)
ERR_1130 = bytes.fromhex(
    "44000000ff6a04486f737420273132372e302e302e3127206973206e6f7420616c6c6f77656420746f20636f6e6e"
    "65637420746f2074686973204d61726961444220736572766572"
)


def test_real_mariadb_greeting() -> None:
    hs = wire.parse_first_frame(GREETING)
    assert isinstance(hs, wire.Handshake)
    assert hs.protocol_version == 10
    assert hs.server_version == "5.5.5-10.11.19-MariaDB-0+deb12u1"
    assert hs.version == "10.11.19-MariaDB-0+deb12u1"
    assert hs.flavor == "MariaDB"
    assert hs.connection_id == 5
    assert hs.capabilities == 0x81FFF7FE
    assert not hs.tls_offered
    assert hs.charset == 8
    assert hs.status_flags == 0x0002
    assert hs.mariadb_capabilities == 0x1D
    assert hs.auth_plugin == "mysql_native_password"
    facts = hs.to_facts()
    assert facts["capabilities"] == "0x81fff7fe" and facts["tls_offered"] is False
    assert "CLIENT_MYSQL" not in facts["capability_names"]


def test_mysql_flavour_and_tls_bit() -> None:
    payload = bytearray(GREETING[4:])
    version_end = payload.index(0, 1)
    caps_at = version_end + 1 + 4 + 8 + 1
    payload[caps_at : caps_at + 2] = (0xF7FE | wire.CLIENT_MYSQL | wire.CLIENT_SSL).to_bytes(
        2, "little"
    )
    mysql = b"8.0.36\x00"
    payload = payload[:1] + mysql + payload[version_end + 1 :]
    hs = wire.parse_handshake(bytes(payload))
    assert hs.flavor == "MySQL" and hs.version == "8.0.36"
    assert hs.tls_offered
    assert hs.mariadb_capabilities is None


def test_real_err_1130_without_sqlstate() -> None:
    err = wire.parse_first_frame(ERR_1130)
    assert isinstance(err, wire.ErrPacket)
    assert err.code == 1130 and err.sqlstate is None
    assert err.message == "Host '127.0.0.1' is not allowed to connect to this MariaDB server"


def test_err_with_sqlstate() -> None:
    err = wire.parse_err(b"\xff\x10\x04#08004Too many connections")
    assert (err.code, err.sqlstate, err.message) == (1040, "08004", "Too many connections")
    assert err.meaning == "too many connections"


def test_oversized_length_refused_from_header_alone() -> None:
    with pytest.raises(wire.MySQLParseError, match="16777215"):
        wire.split_packet(b"\xff\xff\xff\x00")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01", GREETING[:-30], GREETING[:4] + b"\x09" + GREETING[5:], ERR_1130[:6]],
)
def test_broken_frames_raise_parse_error(data: bytes) -> None:
    with pytest.raises(wire.MySQLParseError):
        wire.parse_first_frame(data)


def test_dummy_login_packet_layout() -> None:
    hs = wire.parse_first_frame(GREETING)
    assert isinstance(hs, wire.Handshake)
    packet = wire.dummy_login(hs)
    seq, payload, rest = wire.split_packet(packet)
    assert (seq, rest) == (1, b"")
    flags = int.from_bytes(payload[:4], "little")
    assert flags & wire.CLIENT_PROTOCOL_41 and flags & wire.CLIENT_PLUGIN_AUTH
    assert payload[32:].split(b"\x00")[:3] == [b"netdiag_probe", b"", b"mysql_native_password"]


def test_describe_foreign() -> None:
    assert "SSH banner" in wire.describe_foreign(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    assert "HTTP response" in wire.describe_foreign(b"HTTP/1.1 400 Bad Request\r\n")
    assert wire.describe_foreign(b"\x00\x01\x02").startswith("bytes 000102")
    assert wire.describe_foreign(GREETING + b"more") == (
        "a MariaDB greeting (version 10.11.19-MariaDB-0+deb12u1)"
    )


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_parse_error(data: bytes) -> None:
    for parser in (wire.parse_first_frame, wire.parse_first_packet, wire.parse_handshake):
        try:
            result = parser(data)
        except wire.MySQLParseError:
            continue
        assert isinstance(result, wire.Handshake | wire.ErrPacket)
        if isinstance(result, wire.Handshake):
            result.to_facts()
    assert isinstance(wire.describe_foreign(data), str)
    with contextlib.suppress(wire.MySQLParseError):
        assert wire.parse_login_reply(data)[0] in {"ok", "err", "auth_switch", "auth_more"}


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=120))
def test_mutated_greetings_parse_or_parse_error(index: int, tail: bytes) -> None:
    data = GREETING[: index % len(GREETING)] + tail
    with contextlib.suppress(wire.MySQLParseError):
        wire.parse_first_frame(data)
