"""The identification engine against real peers on loopback (MariaDB, PostgreSQL, Redis,
Python's http.server, OpenSSH, RabbitMQ, openssl s_server) and hostile ones (silent, drips,
floods, hang-ups): each is named, nothing waits longer than its budget."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from netdiag.probes.identify import engine
from netdiag.probes.identify.model import CLOSED, FAILED, IDENTIFIED, SILENT, UNRECOGNISED
from tests.support import hostile
from tests.support import identify_peers as peers
from tests.support.servers import free_port, have

# Generous slack on top of the engine's own budget: a loaded 2-core host can stall a thread
# for a few hundred ms; the point is "the budget, not the timeout", which is 10 s here.
SLACK = 1.0
TIMEOUT = 10.0


def budget(result: engine.Identification, stages: int) -> float:
    """The most an identification may take: banner wait plus one answer wait per stage, plus
    the completion window of a first answer, for the RTT this connect measured."""
    banner, answer = engine.waits((result.connect_ms or 0) / 1000)
    return banner + (stages + engine.COMPLETE_FACTOR) * answer + SLACK


def ident(address: str, port: int, **kw) -> engine.Identification:  # type: ignore[no-untyped-def]
    kw.setdefault("timeout", TIMEOUT)
    return engine.identify(address, port, **kw)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["valid", "expiring", "self_signed", "wrong_name"])
def tls_server(request, cert_files) -> Iterator[tuple[str, peers.Listening]]:  # type: ignore[no-untyped-def]
    if not have("openssl"):
        pytest.skip("needs openssl")
    with peers.start_tls_server(cert_files[request.param]) as server:
        yield request.param, server


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[peers.Listening]:
    if not have(peers.RABBITMQ_SERVER, "epmd"):
        pytest.skip("needs rabbitmq-server (installed by scripts/test)")
    with peers.start_rabbitmq() as server:
        yield server


# --- real servers ----------------------------------------------------------------------------


@pytest.mark.slow
def test_mariadb_is_named_and_left_politely(mariadb) -> None:  # type: ignore[no-untyped-def]
    denied = int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Access_denied_errors'").split()[1])
    result = ident(mariadb.host, mariadb.port)
    assert result.state == IDENTIFIED, result.detail
    version = mariadb.sql("SELECT VERSION()").strip().split("-")[0]
    assert result.detail == f"speaks MariaDB {version}"
    assert result.nudges == []  # a server that speaks first is never sent a nudge
    # the dummy login arrived (an auth error, never a handshake error: docs/probes.md)
    after = int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Access_denied_errors'").split()[1])
    assert after == denied + 1
    # expecting another protocol does not change what MariaDB is called, nor nudge it
    for scheme in ("postgres", "redis", "http", "https"):
        other = ident(mariadb.host, mariadb.port, scheme=scheme)
        assert (other.detail, other.nudges) == (result.detail, [])


@pytest.mark.slow
def test_postgres_answers_the_ssl_request(postgres) -> None:  # type: ignore[no-untyped-def]
    result = ident(postgres.host, postgres.port, scheme="postgres")
    assert result.state == IDENTIFIED
    assert result.detail == "speaks PostgreSQL (TLS off)"
    assert result.nudges == ["postgres"]  # the expected nudge went alone, first
    for scheme in (None, "mysql", "redis", "http"):
        assert ident(postgres.host, postgres.port, scheme=scheme).identity.protocol == "postgres"


def test_redis_version_and_auth(redis_server, redis_auth) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    version = out.split("v=")[1].split()[0]
    result = ident(redis_server.host, redis_server.port)
    assert result.detail == f"speaks Redis {version}"
    assert result.identity.facts["role"] == "master"
    locked = ident(redis_auth.host, redis_auth.port, scheme="mysql")
    assert locked.detail == "speaks Redis (requires AUTH)"


@pytest.mark.slow
def test_python_http_server(python_http) -> None:  # type: ignore[no-untyped-def]
    server = python_http.info["server"]
    for scheme in (None, "http", "mysql", "postgres", "redis", "https"):
        result = ident(python_http.host, python_http.port, scheme=scheme)
        assert result.detail == f"speaks HTTP/1.0 ({server})", scheme
    assert ident(python_http.host, python_http.port, scheme="http").nudges == ["http"]


def test_openssh(sshd) -> None:  # type: ignore[no-untyped-def]
    result = ident(sshd.host, sshd.port, scheme="mysql")
    assert result.state == IDENTIFIED and result.identity.protocol == "ssh"
    product = result.identity.product
    assert product.startswith(sshd.info["version"].split(",")[0])  # sshd -V: "OpenSSH_9.2, ..."
    assert result.detail == f"speaks SSH ({product})" and result.nudges == []


def test_tls_certificates(tls_server) -> None:  # type: ignore[no-untyped-def]
    kind, server = tls_server
    result = ident(server.host, server.port, scheme="https", host="localhost")
    assert result.state == IDENTIFIED, result.detail
    facts = result.identity.facts
    cert = facts["certificate"]
    assert result.identity.name == "TLS 1.3" and facts["cipher"].startswith("TLS_")
    assert cert["subject_cn"] == server.info["cn"]
    assert cert["self_signed"] is (kind == "self_signed")
    assert cert["name_matches"] is (kind != "wrong_name")
    assert cert["issuer_cn"] == ("localhost" if kind == "self_signed" else "netdiag test CA")
    expected_days = 3 if kind == "expiring" else 89
    assert cert["days_left"] == expected_days
    note = result.identity.note
    assert note.startswith(f"certificate CN={server.info['cn']}")
    assert ("self-signed" in note) is (kind == "self_signed")
    assert ("not valid for localhost" in note) is (kind == "wrong_name")
    assert ("expires in 3 days" in note) is (kind == "expiring")
    # by address, no name: the certificate is still read, no name is checked
    bare = ident(server.host, server.port, scheme="https")
    assert bare.identity.facts["certificate"]["subject_cn"] == server.info["cn"]
    assert "name_matches" not in bare.identity.facts["certificate"]


@pytest.mark.slow
def test_rabbitmq(rabbitmq) -> None:  # type: ignore[no-untyped-def]
    version = rabbitmq.info["version"]
    result = ident(rabbitmq.host, rabbitmq.port, scheme="amqp")
    assert result.detail == f"speaks AMQP 0-9-1 (RabbitMQ {version})"
    assert result.identity.facts["platform"].startswith("Erlang/OTP")
    assert result.nudges == ["amqp"]
    assert ident(rabbitmq.host, rabbitmq.port).identity.protocol == "amqp"  # unknown port


# --- hostile peers ---------------------------------------------------------------------------


@pytest.mark.slow
def test_silent_port_does_not_hold_the_caller() -> None:
    with hostile.hostile_peer(hostile.silent) as peer:
        result = ident(peer.host, peer.port)
        expected = ident(peer.host, peer.port, scheme="postgres")
    assert result.state == SILENT and result.detail.startswith("open (silent): no greeting")
    assert result.nudges == list(engine.nudges.ORDER)
    assert result.elapsed_ms / 1000 < budget(result, 1) < TIMEOUT / 2
    # an expected protocol adds one stage: its nudge first, alone
    assert expected.state == SILENT and expected.nudges[0] == "postgres"
    assert expected.elapsed_ms / 1000 < budget(expected, 2)


def test_greeting_drip_is_cut_at_its_window() -> None:
    with hostile.hostile_peer(hostile.drip) as peer:
        result = ident(peer.host, peer.port)
    assert result.state == UNRECOGNISED and result.seen.startswith(b"d")
    assert result.nudges == []  # it spoke first: never nudged
    assert result.elapsed_ms / 1000 < budget(result, 0)


@pytest.mark.parametrize("timeout", [0.25, TIMEOUT])
def test_tls_drip_never_outlives_the_deadline(timeout: float) -> None:
    with hostile.hostile_peer(peers.tls_drip) as peer:
        result = engine.identify(peer.host, peer.port, scheme="https", timeout=timeout)
    assert result.state == UNRECOGNISED and result.seen.startswith(b"\x16")
    # the hard deadline covers the handshake; 0.3 s for the farewell-free return on a busy host
    assert result.elapsed_ms / 1000 < min(timeout + 0.3, budget(result, 1))


def test_flood_is_read_within_bounds() -> None:
    with hostile.hostile_peer(hostile.garbage_16mb) as peer:
        result = ident(peer.host, peer.port)
    assert result.state == UNRECOGNISED and len(result.seen) <= 64
    assert result.elapsed_ms / 1000 < budget(result, 0)


def test_hang_up_and_refused() -> None:
    def hang_up(conn: socket.socket, stop: threading.Event) -> None:
        conn.close()

    with hostile.hostile_peer(hang_up) as peer:
        result = ident(peer.host, peer.port)
    assert result.state == CLOSED and result.nudges == []
    closed = ident("127.0.0.1", free_port())
    assert (closed.state, closed.status, closed.open) == (FAILED, "refused", False)


def test_ssh_banner_from_a_fake_is_named_fast() -> None:
    with hostile.hostile_peer(hostile.ssh_banner) as peer:
        result = ident(peer.host, peer.port, scheme="mysql")
    assert result.detail == "speaks SSH (OpenSSH_9.2p1)"
    banner, _ = engine.waits(result.connect_ms / 1000)
    assert result.elapsed_ms / 1000 < banner + SLACK  # named on arrival, not at the wait's end


def test_many_ports_at_once_cost_one_budget(redis_server, python_http) -> None:  # type: ignore[no-untyped-def]
    with (
        hostile.hostile_peer(hostile.silent) as quiet,
        hostile.hostile_peer(hostile.ssh_banner) as ssh,
    ):
        pairs = [
            (quiet.host, quiet.port),
            (ssh.host, ssh.port),
            (redis_server.host, redis_server.port),
            (python_http.host, python_http.port),
        ]
        found, took = peers.time_it(engine.identify_many, pairs, TIMEOUT, 8)
    states = [found[p].state for p in pairs]
    assert states == [SILENT, IDENTIFIED, IDENTIFIED, IDENTIFIED]
    assert [found[p].identity.protocol for p in pairs[1:]] == ["ssh", "redis", "http"]
    # concurrent: the silent port's budget is the whole run's, not added to the others'
    assert took < budget(found[pairs[0]], 1)


@pytest.mark.slow
def test_no_socket_outlives_an_identification(python_http) -> None:  # type: ignore[no-untyped-def]
    import gc

    def client_sockets(ports: set[int]) -> list[socket.socket]:
        """Open sockets of this process connected *to* one of ``ports`` (not the servers')."""
        found = []
        for obj in gc.get_objects():
            if isinstance(obj, socket.socket) and obj.fileno() >= 0:
                try:
                    if obj.getpeername()[1] in ports and obj.getsockname()[1] not in ports:
                        found.append(obj)
                except OSError:
                    continue
        return found

    with hostile.hostile_peer(hostile.silent) as quiet, hostile.hostile_peer(hostile.drip) as drip:
        ports = {quiet.port, drip.port, python_http.port}
        for _ in range(2):
            for peer in (quiet, drip, python_http):
                ident(peer.host, peer.port)
        assert client_sockets(ports) == []
