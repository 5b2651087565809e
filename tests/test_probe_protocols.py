"""PostgreSQL, Redis and HTTP probes against real servers; pure parsers; DNS fan-out."""

from __future__ import annotations

import contextlib
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.probes import postgres as pg
from netdiag.probes import redis as rd
from netdiag.probes.http import parse_expected
from netdiag.status import Status
from tests.conftest import run_netdiag
from tests.support.mini_dns import mini_dns
from tests.support.schemas import netdiag_json


def probe_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict]]:
    out = run_netdiag("probe", "--json", *args, env=env)
    assert "Traceback" not in out.stderr
    return out.returncode, netdiag_json(out.stdout)["results"]


# --- pure parsers ---------------------------------------------------------------------------


def test_pg_error_classification() -> None:
    starting = {"S": "FATAL", "C": "57P03", "M": "the database system is starting up"}
    assert pg.classify_error(starting)[0] is Status.REJECTED
    assert "not ready" in pg.classify_error(starting)[1]
    too_many = {"C": "53300", "M": "sorry, too many clients already"}
    assert pg.classify_error(too_many)[0] is Status.REJECTED
    role = {"C": "28000", "M": 'role "netdiag_probe" does not exist'}
    assert pg.classify_error(role)[0] is Status.OK
    hba = {"C": "28000", "M": 'no pg_hba.conf entry for host "127.0.0.2"'}
    assert pg.classify_error(hba) == (Status.REJECTED, f"SQLSTATE 28000: {hba['M']}")


def test_pg_parsers_on_real_layouts() -> None:
    body = b"SFATAL\x00C57P03\x00Mthe database system is starting up\x00\x00"
    assert pg.parse_error_fields(body)["C"] == "57P03"
    assert pg.parse_auth_request(struct.pack("!i", 10) + b"SCRAM-SHA-256\x00\x00") == {
        "auth_code": 10,
        "auth_method": "sasl",
        "sasl_mechanisms": ["SCRAM-SHA-256"],
    }
    with pytest.raises(pg.PostgresParseError):
        pg.parse_message_header(b"E\x7f\xff\xff\xff")


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_pg_and_redis_parsers_total(data: bytes) -> None:
    for parser in (pg.parse_error_fields, pg.parse_auth_request, pg.parse_message_header):
        with contextlib.suppress(pg.PostgresParseError):
            parser(data)
    status, detail, _ = rd.classify_reply(data)
    assert isinstance(status, Status) and isinstance(detail, str)


def test_redis_reply_classification() -> None:
    assert rd.classify_reply(b"+PONG")[0] is Status.OK
    status, detail, facts = rd.classify_reply(b"-NOAUTH Authentication required.")
    assert status is Status.OK and facts["auth_required"] and "requires AUTH" in detail
    status, detail, _ = rd.classify_reply(b"-LOADING Redis is loading the dataset in memory")
    assert status is Status.REJECTED and detail.startswith("not ready")


def test_expect_status_parsing() -> None:
    assert parse_expected(None) == ((200, 399),)
    assert parse_expected(["2xx,404", "500-503"]) == ((200, 299), (404, 404), (500, 503))
    out = run_netdiag("probe", "--expect-status", "abc", "http://127.0.0.1:1/")
    assert out.returncode == 2 and "expect-status" in out.stderr


# --- real servers ---------------------------------------------------------------------------


@pytest.mark.slow
def test_postgres_up_and_tls_off(postgres) -> None:
    rc, (res,) = probe_json(postgres.url)
    assert rc == 0, res
    assert res["status"] == "ok"
    assert res["facts"]["tls_offered"] is False
    assert res["facts"]["auth_method"] == "sasl"
    assert "SCRAM-SHA-256" in res["facts"]["sasl_mechanisms"]


@pytest.mark.slow
def test_postgres_probe_against_mysql_is_mismatch(mariadb) -> None:
    rc, (res,) = probe_json(f"postgres://{mariadb.host}:{mariadb.port}", "--timeout", "2")
    assert rc == 1 and res["status"] == "protocol_mismatch"
    version = mariadb.sql("SELECT VERSION()").strip().split("-")[0]
    assert res["detail"] == f"{mariadb.port} speaks MariaDB {version}, not PostgreSQL"


@pytest.mark.slow
def test_postgres_too_many_clients() -> None:
    from tests.support.servers import start_postgres

    # PostgreSQL refuses new clients with 53300 once max_connections backends exist
    with start_postgres(
        extra_conf=["max_connections=3", "superuser_reserved_connections=0"]
    ) as srv:
        held = []
        try:
            for _ in range(3):
                sock = socket.create_connection((srv.host, srv.port), 3)
                sock.sendall(pg.startup_message("postgres", "postgres"))
                held.append(sock)
            import time

            time.sleep(0.5)
            rc, results = probe_json(srv.url)
        finally:
            for sock in held:
                sock.close()
    (res,) = results
    assert rc == 1
    assert res["status"] == "rejected"
    assert res["facts"]["sqlstate"] == "53300"


@pytest.mark.slow
def test_postgres_not_ready_57p03() -> None:
    from tests.support.servers import start_postgres

    # a standby with hot_standby=off and no primary stays in recovery: 57P03 for every client
    with start_postgres(standby=True) as srv:
        rc, (res,) = probe_json(srv.url)
    assert rc == 1
    assert res["status"] == "rejected"
    assert res["facts"]["sqlstate"] == "57P03"
    assert res["detail"].startswith("not ready")


@pytest.mark.slow
def test_redis_pong(redis_server) -> None:
    rc, (res,) = probe_json(redis_server.url)
    assert rc == 0 and res["status"] == "ok" and res["detail"] == "PONG"
    assert res["facts"]["auth_required"] is False


@pytest.mark.slow
def test_redis_noauth(redis_auth) -> None:
    rc, (res,) = probe_json(redis_auth.url)
    assert rc == 0 and res["status"] == "ok"
    assert res["facts"]["auth_required"] is True
    assert "NOAUTH" in res["detail"]


def test_http_statuses(http_server) -> None:
    rc, results = probe_json(
        http_server.url("/"),
        http_server.url("/nope"),
        http_server.url("/redirect"),
        http_server.url("/big"),
    )
    ok, missing, redirect, big = results
    assert rc == 1
    assert ok["status"] == "ok" and ok["facts"]["status_code"] == 200
    assert ok["facts"]["response_ms"] > 0
    assert missing["status"] == "rejected" and missing["facts"]["status_code"] == 404
    assert redirect["status"] == "ok" and redirect["facts"]["status_code"] == 302
    assert redirect["facts"]["location"] == "/health" and "/health" in redirect["detail"]
    assert big["facts"]["body_bytes_read"] == 64 * 1024  # bounded, not 4 MB
    assert "/health" not in http_server.requests  # the redirect was reported, not followed


def test_http_follow_redirects_and_expect(http_server) -> None:
    rc, (res,) = probe_json(http_server.url("/redirect"), "--follow-redirects")
    assert rc == 0 and res["facts"]["status_code"] == 200
    assert res["facts"]["redirects"] == ["/health"]
    rc, (res,) = probe_json(http_server.url("/redirect"), "--expect-status", "200")
    assert rc == 1 and res["status"] == "rejected"
    rc, (res,) = probe_json(http_server.url("/error"), "--expect-status", "5xx")
    assert rc == 0 and res["status"] == "ok"


def test_http_query_is_sent_as_given(http_server) -> None:
    """An encoded '&' and repeated keys survive: the query is sent exactly as written."""
    query = "q=a%26b&tag=1&tag=2&empty=&x=%2F%20"
    rc, (res,) = probe_json(http_server.url(f"/health?{query}"))
    assert rc == 0, res
    assert http_server.request_lines == [f"GET /health?{query} HTTP/1.1"]
    assert res["target"] == f"http://127.0.0.1:{http_server.port}/health?{query}"
    assert res["facts"]["path"] == f"/health?{query}"


def test_https_against_plain_http_is_mismatch(http_server) -> None:
    rc, (res,) = probe_json(f"https://127.0.0.1:{http_server.port}/", "--timeout", "2")
    assert rc == 1 and res["status"] == "protocol_mismatch" and res["step"] == "tls"


# --- DNS: every address of a name, and why a name failed -----------------------------------


def test_name_with_two_addresses_gives_two_results() -> None:
    listeners = []
    for addr in ("127.0.0.1", "127.0.0.2"):
        sock = socket.socket()
        sock.bind((addr, 0 if not listeners else listeners[0].getsockname()[1]))
        sock.listen(4)
        listeners.append(sock)
    port = listeners[0].getsockname()[1]
    try:
        with mini_dns({"mysql.test.": ["127.0.0.1", "127.0.0.2"]}) as server:
            rc, results = probe_json(f"tcp://mysql.test:{port}", env={"NETDIAG_RESOLVER": server})
    finally:
        for sock in listeners:
            sock.close()
    assert rc == 0
    assert sorted(r["address"] for r in results) == [f"127.0.0.1:{port}", f"127.0.0.2:{port}"]
    assert {r["status"] for r in results} == {"ok"}


@pytest.mark.slow
def test_name_with_two_mariadb_addresses(mariadb) -> None:
    with mini_dns({"mysql.": ["127.0.0.1", "127.0.0.2"]}) as server:
        rc, results = probe_json(f"mysql://mysql:{mariadb.port}", env={"NETDIAG_RESOLVER": server})
    assert rc == 0
    assert len(results) == 2
    assert {r["facts"]["flavor"] for r in results} == {"MariaDB"}


@pytest.mark.slow
def test_nxdomain_and_no_reply_differ() -> None:
    with mini_dns({}) as nx_server, mini_dns(silent=True) as silent_server:
        _, (nx,) = probe_json(
            "mysql://nothere.test",
            env={"NETDIAG_RESOLVER": nx_server, "NETDIAG_RESOLV_CONF": "/dev/null"},
        )
        _, (mute,) = probe_json(
            "mysql://nothere.test",
            "--timeout",
            "1",
            env={"NETDIAG_RESOLVER": silent_server, "NETDIAG_RESOLV_CONF": "/dev/null"},
        )
    assert nx["status"] == mute["status"] == "dns_failed"
    assert nx["facts"]["dns_error"] == "nxdomain" and "NXDOMAIN" in nx["detail"]
    assert mute["facts"]["dns_error"] == "no_reply" and "no reply" in mute["detail"]
