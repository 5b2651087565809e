"""Hostile peers: every probe ends within its timeout, with bounded memory and a clear status."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from netdiag.deadline import Deadline
from netdiag.probes import engine
from netdiag.probes.base import ProbeOptions
from netdiag.targets import parse_target
from tests.conftest import run_netdiag
from tests.support import hostile
from tests.support.schemas import netdiag_json
from tests.support.timing import slack

TIMEOUT = 1.5
# Peak Python allocations during one probe (peer threads included): far below the 16 MB a
# hostile peer offers, so nothing it sends beyond a small bound can have been read.
MEMORY_BOUND = 256 * 1024
# In-process bound on one probe: its timeout plus 3 s of slack for a loaded machine, still far
# below the 10 s deadline a peer that holds the probe (silent, drip) would run it into.
TIME_BOUND = TIMEOUT + 3.0
# Cases that wait out the whole timeout are slow (1.5 s each); one silent and one dripping
# MySQL peer stay in the quick tier.
QUICK_WAITS = {("mysql", "silent"), ("mysql", "drip"), ("login", "silent")}


def _tier(scheme: str, behaviour, status: str) -> tuple:
    waits = status == "timeout" or behaviour in (hostile.silent, hostile.drip)
    return () if not waits or (scheme, behaviour.__name__) in QUICK_WAITS else (pytest.mark.slow,)


def probe_in_process(url: str, timeout: float = TIMEOUT):
    """Run the engine here so tracemalloc sees every allocation the probe makes."""
    target = parse_target(url)
    engine.probe_class(target.scheme)  # imports happen before tracing, not inside it
    import http.client  # noqa: F401
    import ssl  # noqa: F401

    # a silent or foreign peer is nudged: the engine loads before tracing too
    import netdiag.probes.identify.engine
    import netdiag.probes.identify.instead  # noqa: F401

    tracemalloc.start()
    try:
        start = time.monotonic()
        (result,) = engine.run([parse_target(url)], ProbeOptions(timeout=timeout), Deadline(10))
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


CASES = [
    # behaviour, scheme, expected status, words expected in the detail
    (hostile.silent, "mysql", "timeout", "no MySQL greeting"),
    (hostile.drip, "mysql", "timeout", "timed out"),
    (hostile.garbage_16mb, "mysql", "protocol_mismatch", "not MySQL"),
    (hostile.huge_packet, "mysql", "protocol_mismatch", "16777215-byte packet"),
    (hostile.close_mid_packet, "mysql", "protocol_mismatch", "peer closed"),
    (hostile.ssh_banner, "mysql", "protocol_mismatch", "speaks SSH (OpenSSH_9.2p1), not MySQL"),
    (hostile.silent, "postgres", "timeout", "no answer to SSLRequest"),
    (hostile.garbage_16mb, "postgres", "protocol_mismatch", "not PostgreSQL"),
    (hostile.drip, "postgres", "protocol_mismatch", "not PostgreSQL"),
    (hostile.silent, "redis", "timeout", "no reply to PING"),
    (hostile.ssh_banner, "redis", "protocol_mismatch", "speaks SSH (OpenSSH_9.2p1), not Redis"),
    (hostile.garbage_16mb, "redis", "protocol_mismatch", "not Redis"),
    (hostile.drip, "redis", "timeout", "incomplete reply"),
    (hostile.silent, "http", "timeout", "no complete HTTP response"),
    (hostile.drip, "http", "timeout", "no complete HTTP response"),
    (hostile.garbage_16mb, "http", "protocol_mismatch", "not HTTP"),
    (hostile.huge_packet, "http", "protocol_mismatch", "not HTTP"),
    (hostile.close_mid_packet, "http", "protocol_mismatch", "not HTTP"),
    (hostile.ssh_banner, "http", "protocol_mismatch", "speaks SSH (OpenSSH_9.2p1), not HTTP"),
]


@pytest.mark.parametrize(
    ("behaviour", "scheme", "status", "words"),
    [pytest.param(*c, marks=_tier(c[1], c[0], c[2])) for c in CASES],
    ids=[f"{c[1]}-{c[0].__name__}" for c in CASES],
)
@pytest.mark.slow
def test_hostile_peer(behaviour, scheme: str, status: str, words: str) -> None:
    with hostile.hostile_peer(behaviour) as peer:
        result, elapsed, peak = probe_in_process(peer.url(scheme))
    assert str(result.status) == status, result
    assert words in result.detail
    assert elapsed < TIME_BOUND
    assert peak < MEMORY_BOUND, f"peak {peak} bytes"


LOGIN_CASES = [
    (hostile.silent, "timeout", "no MySQL greeting"),
    (hostile.drip, "timeout", "of the greeting header"),
    (hostile.garbage_16mb, "protocol_mismatch", "not MySQL"),
    (hostile.huge_packet, "protocol_mismatch", "16777215-byte packet"),
    (hostile.close_mid_packet, "protocol_mismatch", "peer closed"),
    (hostile.ssh_banner, "protocol_mismatch", "speaks SSH (OpenSSH_9.2p1), not MySQL"),
]


@pytest.mark.parametrize(
    ("behaviour", "status", "words"),
    [pytest.param(*c, marks=_tier("login", c[0], c[1])) for c in LOGIN_CASES],
    ids=[c[0].__name__ for c in LOGIN_CASES],
)
@pytest.mark.slow
def test_hostile_peer_in_login_mode(behaviour, status: str, words: str) -> None:
    # the greeting is vetted before PyMySQL sees the socket: the driver never meets the peer
    import pymysql  # noqa: F401  (imported before tracing)

    import netdiag.probes.identify.engine  # noqa: F401
    from netdiag.probes.settings import MySQLLogin

    target = parse_target("mysql://127.0.0.1")
    engine.probe_class("mysql")
    options = ProbeOptions(timeout=TIMEOUT, mysql=MySQLLogin("todo"))
    with hostile.hostile_peer(behaviour) as peer:
        target = parse_target(peer.url("mysql"))
        tracemalloc.start()
        try:
            start = time.monotonic()
            (result,) = engine.run([target], options, Deadline(10))
            elapsed = time.monotonic() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert str(result.status) == status, result
    assert words in result.detail
    assert elapsed < TIME_BOUND
    assert peak < MEMORY_BOUND, f"peak {peak} bytes"


def test_hostile_via_cli_json_is_one_line_not_traceback() -> None:
    with hostile.hostile_peer(hostile.huge_packet) as peer:
        out = run_netdiag("probe", "--json", "--timeout", "1", peer.url("mysql"))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    (res,) = netdiag_json(out.stdout)["results"]
    assert res["status"] == "protocol_mismatch"


@pytest.mark.slow
def test_deadline_caps_many_silent_targets() -> None:
    with hostile.hostile_peer(hostile.silent) as peer:
        start = time.monotonic()
        out = run_netdiag(
            "probe", "--json", "--timeout", "5", "--deadline", "1", *[peer.url("mysql")] * 5
        )
        elapsed = time.monotonic() - start
    assert out.returncode == 1
    assert elapsed < 1.0 + slack()  # 5 x 5 s of attempts cut at the 1 s deadline
    assert {r["status"] for r in netdiag_json(out.stdout)["results"]} == {"timeout"}
