"""Identification parsers: real captures name their server, every prefix of one asks for more,
and no input (hypothesis) makes a parser raise or claim the wrong protocol."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.probes.identify import (
    amqp_wire,
    banners,
    certs,
    http_wire,
    nudges,
    pg_wire,
    resp,
    tls_wire,
)
from netdiag.probes.identify.model import INCOMPLETE, Identity

CAPTURES = json.loads((Path(__file__).parent / "data" / "identify_captures.json").read_text())

# capture -> (protocol, label) as people should read it
EXPECTED = {
    "mariadb_greeting": ("mysql", "MariaDB 10.11.19"),
    "ssh_banner": ("ssh", "SSH (OpenSSH_9.2p1)"),
    "python_http_get": ("http", "HTTP/1.0 (SimpleHTTP/0.6 Python/3.11.7)"),
    "python_http_h2_preface": ("http", "HTTP (an error page without a status line)"),
    "postgres_ssl_n": ("postgres", "PostgreSQL (TLS off)"),
    "redis_pong_hello": ("redis", "Redis 7.0.15"),
    "redis_noauth": ("redis", "Redis (requires AUTH)"),
    "rabbitmq_start": ("amqp", "AMQP 0-9-1 (RabbitMQ 3.10.8)"),
    "rabbitmq_header_reply": ("amqp", "AMQP 0-9-1 (answered with its protocol header)"),
    "openssl_server_hello": ("tls", "TLS 1.3"),
}


def capture(name: str) -> tuple[bytes, str | None]:
    entry = CAPTURES[name]
    return bytes.fromhex(entry["hex"]), entry["nudge"] or None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture_is_named(name: str) -> None:
    data, nudge = capture(name)
    got = nudges.classify(data, nudge)
    assert isinstance(got, Identity), got
    protocol, label = EXPECTED[name]
    assert (got.protocol, got.label) == (protocol, label)
    assert got.detail == f"speaks {label}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_prefix_of_a_capture_asks_for_more(name: str) -> None:
    """What a parser sees when TCP splits the answer: never a wrong verdict, never 'not it'."""
    data, nudge = capture(name)
    if name == "redis_pong_hello":
        data = data  # PONG alone identifies; the HELLO part only adds facts
    for cut in range(1, len(data)):
        got = nudges.classify(data[:cut], nudge)
        if isinstance(got, Identity):
            assert got.protocol == EXPECTED[name][0], (cut, got)
        else:
            assert got is INCOMPLETE, (name, cut, data[:cut])


def test_facts_of_real_captures() -> None:
    maria = nudges.classify(capture("mariadb_greeting")[0], None)
    assert maria.facts["server_version"].startswith("5.5.5-10.11.19-MariaDB")
    assert maria.short == "MariaDB 10.11.19"
    rabbit = nudges.classify(*capture("rabbitmq_start"))
    assert rabbit.facts["product"] == "RabbitMQ" and rabbit.facts["version"] == "3.10.8"
    assert rabbit.facts["platform"].startswith("Erlang/OTP")
    assert "publisher_confirms" in rabbit.facts["capabilities"]
    assert rabbit.facts["mechanisms"] == ["AMQPLAIN", "PLAIN"]
    redis = nudges.classify(*capture("redis_pong_hello"))
    assert (redis.facts["mode"], redis.facts["role"], redis.facts["auth_required"]) == (
        "standalone",
        "master",
        False,
    )
    ssh = nudges.classify(*capture("ssh_banner"))
    assert ssh.facts["comments"].startswith("Debian") and ssh.short == "SSH OpenSSH_9.2p1"
    tls = nudges.classify(*capture("openssl_server_hello"))
    assert tls.facts["cipher"].startswith("TLS_") and tls.facts["hello_retry"] is False


def test_mysql_error_instead_of_greeting() -> None:
    # captures.md: MariaDB 10.11 refusing a host it has no user for
    err = bytes.fromhex(
        "44000000ff6a04486f737420273132372e302e302e3127206973206e6f7420616c6c6f77656420746f"
        "20636f6e6e65637420746f2074686973204d61726961444220736572766572"
    )
    got = banners.mysql(err)
    assert got is not None and got.protocol == "mysql" and got.name == "MariaDB"
    assert got.note.startswith("ERROR 1130: host not allowed")


def test_text_greetings() -> None:
    smtp = banners.server_first(b"220 mail.example ESMTP Postfix (Debian/GNU)\r\n")
    assert (smtp.protocol, smtp.name) == ("smtp", "SMTP")
    ftp = banners.server_first(b"220 (vsFTPd 3.0.3)\r\n")
    assert (ftp.protocol, ftp.product) == ("ftp", "(vsFTPd 3.0.3)")
    plain = banners.server_first(b"220 welcome\r\n", hint="ftp")
    assert plain.protocol == "ftp"
    assert banners.server_first(b"220 welcome\r\n").name == "SMTP or FTP"
    multi = b"220-mail.example ESMTP\r\n220-more\r\n"
    assert banners.server_first(multi) is INCOMPLETE
    assert banners.server_first(multi + b"220 ready\r\n").protocol == "smtp"
    assert banners.server_first(b"+OK Dovecot ready.\r\n").protocol == "pop3"
    assert (
        banners.server_first(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n").protocol == "imap"
    )
    denied = banners.server_first(b"-DENIED Redis is running in protected mode because ...\r\n")
    assert denied.protocol == "redis" and denied.note.startswith("refused: DENIED")
    pre = banners.ssh(b"hello there\r\nSSH-2.0-dropbear_2022.83\r\n")
    assert pre.product == "dropbear_2022.83"
    assert banners.ssh(b"SSH-2.0-OpenSSH_9.2p1", final=True).product == "OpenSSH_9.2p1"
    assert banners.ssh(b"SSH-2.0-OpenSSH_9.2p1") is INCOMPLETE


def test_http1_and_http2() -> None:
    got = http_wire.http1(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nServer: nginx/1.25\r\n\r\n")
    assert got.label == "HTTP/1.1 (nginx/1.25)" and got.facts["location"] == "/x"
    assert http_wire.http1(b"HTTP/1.1 200 OK\r\nServer: x\r\n") is INCOMPLETE
    assert http_wire.http1(b"HTTP/1.1 200 OK\r\nServer: x\r\n", final=True).product == "x"
    assert http_wire.http1(b"HTTP/9 abc\r\n\r\n") is None
    settings_frame = b"\x00\x00\x0c\x04\x00\x00\x00\x00\x00" + struct.pack(
        "!HIHI", 3, 100, 4, 65535
    )
    h2 = http_wire.http2(settings_frame)
    assert h2.name == "HTTP/2" and h2.facts["settings"]["max_concurrent_streams"] == 100
    assert http_wire.http2(settings_frame[:10]) is INCOMPLETE
    goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + struct.pack("!II", 0, 1)
    assert http_wire.http2(goaway).note == "GOAWAY PROTOCOL_ERROR"
    preface = http_wire.h2_preface()
    assert preface.startswith(http_wire.PREFACE) and preface[-9:] == b"\x00\x00\x00\x04" + bytes(5)


def test_postgres_answers() -> None:
    assert pg_wire.ssl_answer(b"S").note == "TLS offered"
    assert pg_wire.ssl_answer(b"NX") is None
    body = b"SFATAL\x00C0A000\x00Munsupported frontend protocol\x00\x00"
    err = b"E" + struct.pack("!i", len(body) + 4) + body
    got = pg_wire.ssl_answer(err)
    assert got.protocol == "postgres" and got.facts["sqlstate"] == "0A000"
    assert pg_wire.ssl_answer(err[:7]) is INCOMPLETE


def test_redis_errors_and_not_redis() -> None:
    assert resp.redis(b"-ERR unknown command 'HELLO'\r\n-ERR x\r\n").note.startswith("ERR")
    assert resp.redis(b"+PONG\r\n", final=True).label == "Redis"
    assert resp.redis(b"+PONG\r\n") is INCOMPLETE  # HELLO's reply may follow
    assert resp.redis(b"+OK Dovecot ready.\r\n") is None
    assert resp.redis(b"-this is not redis\r\n") is None


def test_tls_alert() -> None:
    got = tls_wire.server_hello(b"\x15\x03\x01\x00\x02\x02\x46")
    assert got.protocol == "tls" and got.note == "alert protocol_version"
    assert tls_wire.server_hello(b"\x15\x03\x01\x00\x02\x02") is INCOMPLETE
    assert tls_wire.server_hello(b"\x15\x03\x01\x00\x02\x02\xff") is None


def test_amqp_other_versions() -> None:
    assert amqp_wire.answer(b"AMQP\x03\x01\x00\x00").name == "AMQP 1.0 (SASL)"
    assert amqp_wire.answer(b"AMQP\x09\x09\x09\x09") is None
    assert amqp_wire.answer(b"AMQ") is INCOMPLETE


def test_plan_orders_nudges_by_port_and_scheme() -> None:
    assert nudges.plan(5432) == [["postgres"], ["http", "tls", "redis", "amqp", "http2"]]
    assert nudges.plan(3306, "https")[0] == ["tls"]
    assert nudges.plan(3306) == [list(nudges.ORDER)]  # server-first: no nudge preferred
    assert nudges.plan(12345) == [list(nudges.ORDER)]
    assert nudges.expected(3306) == "mysql" and nudges.expected(80, "redis") == "redis"


# --- certificates -----------------------------------------------------------------------------


def _cert(cn: str, sans: list[str], days: float, self_signed: bool) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    issuer_key = key if self_signed else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = name if self_signed else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_certificate_facts() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    facts = certs.facts(_cert("db", ["db", "*.db.internal"], 3.5, True), "x.db.internal", now)
    assert facts["days_left"] == 3 and facts["self_signed"] and facts["name_matches"]
    assert certs.summary(facts) == "certificate CN=db, self-signed, expires in 3 days"
    wrong = certs.facts(_cert("db", [], 90, False), "other", now)
    assert not wrong["self_signed"] and wrong["name_matches"] is False
    assert "not valid for other" in certs.summary(wrong)
    assert certs.facts(_cert("db", [], -2, False), None, now)["expired"]
    with pytest.raises(ValueError):
        certs.facts(b"\x30\x03\x02\x01\x00")


def test_wildcards_match_one_label() -> None:
    assert certs.dns_name_matches("a.example.com", "*.example.com")
    assert not certs.dns_name_matches("a.b.example.com", "*.example.com")
    assert not certs.dns_name_matches("example.com", "*.example.com")
    assert not certs.dns_name_matches("a.com", "*.com")
    assert certs.names_host("127.0.0.1", "localhost", ["localhost"], ["127.0.0.1"])
    assert not certs.names_host("127.0.0.2", "127.0.0.2", [], [])


# --- fuzzing ----------------------------------------------------------------------------------

PARSERS = [
    banners.mysql,
    banners.ssh,
    banners.pop3,
    banners.imap,
    banners.redis_refusal,
    banners.server_first,
    banners.greeting_220,
    http_wire.http1,
    http_wire.http2,
    resp.redis,
    pg_wire.ssl_answer,
    tls_wire.server_hello,
    amqp_wire.answer,
]

_prefixes = st.sampled_from(
    [
        b"",
        b"SSH-2.0-",
        b"220 ",
        b"HTTP/1.1 200 ",
        b"+PONG\r\n",
        b"-ERR ",
        b"*3\r\n",
        b"E\x00",
        b"\x16\x03\x03",
        b"\x15\x03\x01\x00\x02",
        b"AMQP",
        b"\x01\x00\x00",
        b"\x00\x00\x06\x04",
    ]
    + [bytes.fromhex(v["hex"])[:n] for v in CAPTURES.values() for n in (5, 40)]
)


@settings(max_examples=600, deadline=None)
@given(prefix=_prefixes, tail=st.binary(max_size=300), final=st.booleans())
def test_parsers_never_raise(prefix: bytes, tail: bytes, final: bool) -> None:
    data = prefix + tail
    for parse in PARSERS:
        got = parse(data, final)
        assert got is None or got is INCOMPLETE or isinstance(got, Identity)
        if final:
            assert got is not INCOMPLETE
        if isinstance(got, Identity):
            assert got.label and got.detail.startswith("speaks ")
            json.dumps(got.to_dict())  # facts stay JSON-able
    for nudge in (None, *nudges.NUDGES):
        got = nudges.classify(data, nudge, final)
        assert not (final and got is INCOMPLETE)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=2000))
def test_certificate_parser_refuses_garbage_cleanly(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        certs.facts(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_flipped_bytes_of_captures(noise: bytes) -> None:
    """Captures with bytes overwritten still never crash a parser."""
    for entry in CAPTURES.values():
        data = bytearray(bytes.fromhex(entry["hex"]))
        for i, b in enumerate(noise):
            data[(i * 7919) % len(data)] = b
        nudges.classify(bytes(data), entry["nudge"] or None)
        nudges.classify(bytes(data), entry["nudge"] or None, final=True)


def test_mismatch_lines() -> None:
    from netdiag.probes.identify.mismatch import matches, mismatch_detail

    web = nudges.classify(*capture("python_http_get"))
    assert mismatch_detail("mysql", 3306, web) == (
        "3306 speaks HTTP/1.0 (SimpleHTTP/0.6 Python/3.11.7), not MySQL"
    )
    ssh = nudges.classify(*capture("ssh_banner"))
    assert (
        mismatch_detail("postgres", 5432, ssh) == "5432 speaks SSH (OpenSSH_9.2p1), not PostgreSQL"
    )
    assert matches("http", web) and not matches("https", web) and matches("tcp", ssh)
    assert matches("https", nudges.classify(*capture("openssl_server_hello")))
