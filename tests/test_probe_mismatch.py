"""A target whose port speaks another protocol is a ``protocol_mismatch`` naming it (issue 12
§2): every pair of expected scheme (mysql, postgres, redis, http, https) and real peer on
loopback (MariaDB, PostgreSQL, Redis, Python's http.server, OpenSSH's sshd, openssl s_server),
through ``probe``; spot checks through ``check`` and ``wait`` (not ready, 124)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from netdiag.deadline import Deadline
from netdiag.probes import engine
from netdiag.probes.settings import MySQLLogin, ProbeOptions
from netdiag.targets import parse_target
from tests.conftest import run_netdiag
from tests.support import hostile
from tests.support import identify_peers as peers
from tests.support.schemas import netdiag_json
from tests.support.servers import have

SCHEMES = ("mysql", "postgres", "redis", "http", "https")
EXPECTED = {
    "mysql": "MySQL",
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "http": "HTTP",
    "https": "HTTPS",
}
TIMEOUT = "5"
# A named mismatch comes after the greeting or answer wait and one round of nudges (~0.3 s on
# loopback), never after --timeout 5: half of it leaves room for a loaded 2-core host.
NAMED_WITHIN_MS = 2500


@pytest.fixture(scope="module")
def tls_server(cert_files) -> Iterator[peers.Listening]:  # type: ignore[no-untyped-def]
    if not have("openssl"):
        pytest.skip("needs openssl")
    with peers.start_tls_server(cert_files["valid"]) as server:
        yield server


def probe(
    host: str, port: int, schemes: tuple[str, ...], env: dict[str, str] | None = None
) -> dict[str, dict]:
    """One ``probe --json`` run with a target per scheme; results by scheme."""
    urls = [f"{s}://{host}:{port}" + ("/" if s.startswith("http") else "") for s in schemes]
    out = run_netdiag("probe", "--json", "--timeout", TIMEOUT, *urls, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    doc = netdiag_json(out.stdout)
    assert out.returncode == (0 if doc["ok"] else 1)
    return {r["target"].split(":", 1)[0]: r for r in doc["results"]}


def assert_named(results: dict[str, dict], port: int, label: str, protocol: str) -> None:
    for scheme, result in results.items():
        detail = f"{port} speaks {label}, not {EXPECTED[scheme]}"
        assert (result["status"], result["detail"]) == ("protocol_mismatch", detail), result
        assert result["facts"]["identity"]["protocol"] == protocol
        assert result["elapsed_ms"] < NAMED_WITHIN_MS, result


def others(own: str | None) -> tuple[str, ...]:
    return tuple(s for s in SCHEMES if s != own)


# --- probe: every pair -----------------------------------------------------------------------


def test_python_http_server_named_by_every_other_probe(python_http) -> None:  # type: ignore[no-untyped-def]
    results = probe(python_http.host, python_http.port, SCHEMES)
    assert results.pop("http")["status"] == "ok"
    assert_named(results, python_http.port, f"HTTP/1.0 ({python_http.info['server']})", "http")


@pytest.mark.slow
def test_sshd_named_by_every_probe(sshd) -> None:  # type: ignore[no-untyped-def]
    results = probe(sshd.host, sshd.port, SCHEMES)
    product = results["mysql"]["facts"]["identity"]["product"]  # from the banner: OpenSSH_9.2p1
    assert product.startswith(sshd.info["version"].split(",")[0])  # sshd -V: "OpenSSH_9.2, ..."
    assert_named(results, sshd.port, f"SSH ({product})", "ssh")


@pytest.mark.slow
def test_mariadb_named_by_every_other_probe(mariadb) -> None:  # type: ignore[no-untyped-def]
    version = mariadb.sql("SELECT VERSION()").strip().split("-")[0]
    results = probe(mariadb.host, mariadb.port, SCHEMES)
    assert results.pop("mysql")["status"] == "ok"
    assert_named(results, mariadb.port, f"MariaDB {version}", "mysql")


@pytest.mark.slow
def test_postgres_named_by_every_other_probe(postgres) -> None:  # type: ignore[no-untyped-def]
    results = probe(postgres.host, postgres.port, SCHEMES)
    assert results.pop("postgres")["status"] == "ok"
    assert_named(results, postgres.port, "PostgreSQL (TLS off)", "postgres")


@pytest.mark.slow
def test_redis_named_by_every_other_probe(redis_server) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    version = out.split("v=")[1].split()[0]
    results = probe(redis_server.host, redis_server.port, SCHEMES)
    assert results.pop("redis")["status"] == "ok"
    assert_named(results, redis_server.port, f"Redis {version}", "redis")


@pytest.mark.slow
@pytest.mark.parametrize("scheme", SCHEMES)
def test_tls_server_named_by_every_other_probe(tls_server, cert_files, scheme: str) -> None:  # type: ignore[no-untyped-def]
    # s_server serves one connection at a time: one probe per run, one run after the other.
    # The mysql:// probe holds that one connection while it waits for a greeting: its nudges
    # are answered only once the engine releases it (identify(watch=..., release=True)).
    env = {"SSL_CERT_FILE": str(cert_files["valid"].cert.parent / "ca.pem")}  # the test CA
    results = probe(tls_server.host, tls_server.port, (scheme,), env=env)
    if scheme == "https":
        assert results["https"]["status"] == "ok", results
        return
    assert_named(results, tls_server.port, "TLS 1.3 (certificate CN=localhost)", "tls")


# --- check and wait get the same through the one engine ---------------------------------------


@pytest.mark.slow
def test_check_names_what_answers(python_http, sshd, redis_server) -> None:  # type: ignore[no-untyped-def]
    targets = [
        f"mysql://{python_http.host}:{python_http.port}",
        f"postgres://{sshd.host}:{sshd.port}",
        f"https://{redis_server.host}:{redis_server.port}/",
    ]
    out = run_netdiag("check", "--json", "--timeout", TIMEOUT, *targets)
    assert out.returncode == 1, out
    doc = netdiag_json(out.stdout)
    details = [c["detail"] for c in doc["checks"]]
    assert [c["status"] for c in doc["checks"]] == ["protocol_mismatch"] * 3
    assert (
        details[0]
        == f"{python_http.port} speaks HTTP/1.0 ({python_http.info['server']}), not MySQL"
    )
    assert details[1].startswith(f"{sshd.port} speaks SSH (OpenSSH_") and details[1].endswith(
        ", not PostgreSQL"
    )
    assert details[2].startswith(f"{redis_server.port} speaks Redis ") and details[2].endswith(
        ", not HTTPS"
    )
    text = run_netdiag("check", "--timeout", TIMEOUT, targets[0])
    assert text.returncode == 1
    assert text.stdout.startswith(f"FAIL {targets[0]}: protocol_mismatch ")
    assert text.stdout.rstrip().endswith(details[0])


@pytest.mark.slow
@pytest.mark.parametrize("pair", ["mysql-http", "postgres-redis"])
def test_wait_is_not_ready_and_says_why(pair: str, python_http, redis_server) -> None:  # type: ignore[no-untyped-def]
    scheme, peer = pair.split("-")
    server = python_http if peer == "http" else redis_server
    target = f"{scheme}://{server.host}:{server.port}"
    start = time.monotonic()
    out = run_netdiag("wait", "--json", "--timeout", "2", target)
    took = time.monotonic() - start
    assert out.returncode == 124, out
    assert took < 2 + 5  # its 2 s, plus a loaded host's interpreter start and exit
    (state,) = netdiag_json(out.stdout)["targets"]
    assert state["ready"] is False and state["status"] == "protocol_mismatch"
    name = "HTTP/1.0" if peer == "http" else "Redis"
    assert state["detail"].startswith(f"{server.port} speaks {name}")
    assert state["detail"].endswith(f", not {EXPECTED[scheme]}")
    # the progress line on stderr says it too, and the last line why it gave up
    assert f"protocol_mismatch: {state['detail']} (still waiting)" in out.stderr
    assert out.stderr.rstrip().endswith(f"{target} not ready")


# --- a slow server of the expected protocol is not a foreign one ---------------------------


def late_greeting(delay: float) -> hostile.Behaviour:
    """A MariaDB greeting (the captured one) after ``delay`` seconds: a slow, not a foreign,
    server (a reverse DNS lookup before the greeting does this to MySQL)."""

    def behaviour(conn, stop) -> None:  # type: ignore[no-untyped-def]
        if not stop.wait(delay):
            conn.sendall(hostile.MARIADB_GREETING)
            stop.wait(5)

    return behaviour


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.8])
def test_a_late_greeting_is_still_mysql(delay: float) -> None:
    # 0.3 s: after the greeting wait, while the nudges wait beside it (watched);
    # 0.8 s: after the nudges too, so the engine released the connection and the probe waits
    # for the greeting on a new one
    options = ProbeOptions(timeout=3.0, mysql=MySQLLogin(greeting_only=True))
    with hostile.hostile_peer(late_greeting(delay)) as peer:
        (result,) = engine.run([parse_target(peer.url("mysql"))], options, Deadline(10))
    assert str(result.status) == "ok", result
    assert result.detail.startswith("MariaDB 10.11.19")
    assert result.elapsed_ms / 1000 >= delay


@pytest.mark.slow
def test_a_silent_port_still_times_out_and_says_what_was_tried() -> None:
    with hostile.hostile_peer(hostile.silent) as peer:
        (result,) = engine.run(
            [parse_target(peer.url("mysql"))], ProbeOptions(timeout=1.0), Deadline(10)
        )
    assert str(result.status) == "timeout"
    assert result.detail.startswith("connected, but no MySQL greeting arrived in time")
    assert result.detail.endswith(
        "nor was there an answer to HTTP, TLS, PostgreSQL, Redis, AMQP or HTTP/2 openings "
        "(a silent or stuck peer)"
    )
