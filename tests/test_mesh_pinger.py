"""The pinger and the JSON fetcher against real and hostile peers on loopback (in-process).

Quick: every case is bounded by a sub-second timeout. Time bounds are compared with the
timeout given in the same call, generously (a loaded 2-core machine), never with wall clock
constants alone.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from netdiag.deadline import Deadline
from netdiag.mesh import udp_echo
from netdiag.mesh.gather import FetchError, fetch_json, gather_local
from netdiag.mesh.pinger import MAX_RESPONSE, ping_all
from tests.support.hostile import drip, garbage_16mb, hostile_peer, silent, ssh_banner
from tests.support.servers import free_port

TIMEOUT = 0.4


class _PingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    body = json.dumps({"agent": "netdiag-agent", "node": "fake1"}).encode()

    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/api/v1/local":
            doc = {"command": "agent", "agent": {"node": "fake1"}, "peers": []}
            data = json.dumps(doc).encode()
        else:
            data = self.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def agent_like():
    """An HTTP /ping and a UDP echo on one port of 127.0.0.1, as an agent serves them."""
    port = free_port()
    http = ThreadingHTTPServer(("127.0.0.1", port), _PingHandler)
    echo = udp_echo.EchoServer("127.0.0.1", port).start()
    t = threading.Thread(target=http.serve_forever, args=(0.1,), daemon=True)
    t.start()
    try:
        yield port
    finally:
        http.shutdown()
        http.server_close()
        echo.stop()


def _one(port: int, timeout: float = TIMEOUT, udp: int = 3):
    start = time.monotonic()
    got = ping_all(["127.0.0.1"], port, timeout, time.monotonic() + 5, udp)["127.0.0.1"]
    return got, time.monotonic() - start


def test_a_real_agent_answers_tcp_http_and_udp(agent_like):
    got, _ = _one(agent_like)
    assert got.status == "ok" and got.info["node"] == "fake1"
    assert got.connect_ms is not None and got.rtt_ms is not None
    assert (got.udp.sent, got.udp.received, got.udp.loss) == (3, 3, 0.0)


def test_refused_port():
    got, _ = _one(free_port())
    assert (got.status, got.step) == ("refused", "connect")
    assert got.udp.loss == 1.0


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [(silent, "timeout"), (drip, "timeout"), (ssh_banner, "protocol_mismatch")],
)
def test_hostile_peers_are_bounded_in_time(behaviour, status):
    with hostile_peer(behaviour) as peer:
        got, took = _one(peer.port)
    assert got.status == status and got.step == "response"
    # connect + answer window, each TIMEOUT; generous for a loaded machine
    assert took < 2 * TIMEOUT + 2


def test_a_flood_is_cut_at_the_limit():
    with hostile_peer(garbage_16mb) as peer:
        got, _ = _one(peer.port)
    assert got.status == "protocol_mismatch"
    assert str(MAX_RESPONSE) in got.detail or "not an HTTP answer" in got.detail


def test_many_peers_share_one_window(agent_like):
    """Silent peers next to an agent: all start together, so the round lasts one timeout (not
    one per silent peer) and the agent's answer is measured as if they were not there."""
    silent_socks = []
    for host in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        s = socket.socket()
        s.bind((host, agent_like))
        s.listen(4)
        silent_socks.append(s)
    try:
        start = time.monotonic()
        res = ping_all(
            ["127.0.0.3", "127.0.0.1", "127.0.0.4", "127.0.0.5"],
            agent_like,
            TIMEOUT,
            time.monotonic() + 5,
            2,
        )
        took = time.monotonic() - start
    finally:
        for s in silent_socks:
            s.close()
    assert res["127.0.0.1"].ok and res["127.0.0.1"].udp.loss == 0.0
    assert {res[a].status for a in ("127.0.0.3", "127.0.0.4", "127.0.0.5")} == {"timeout"}
    assert res["127.0.0.1"].rtt_ms < TIMEOUT * 1000
    # one window of connect + answer (2 timeouts); one silent peer after another: 6 or more
    assert took < 5 * TIMEOUT


def test_round_deadline_caps_every_step():
    with hostile_peer(silent) as peer:
        start = time.monotonic()
        got = ping_all(["127.0.0.1"], peer.port, 10.0, time.monotonic() + 0.3, 1)["127.0.0.1"]
        took = time.monotonic() - start
    assert got.status == "timeout" and took < 10.0 / 2  # the 0.3 s deadline won, not 10 s


@pytest.mark.slow
def test_udp_echo_ignores_junk_and_replies():
    server = udp_echo.EchoServer("127.0.0.1", 0).start()
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        s.sendto(b"x" * 64, ("127.0.0.1", server.port))
        s.sendto(udp_echo.encode(udp_echo.REPLY, 1, b"abcdefgh"), ("127.0.0.1", server.port))
        s.sendto(udp_echo.encode(udp_echo.REQUEST, 9, b"abcdefgh"), ("127.0.0.1", server.port))
        data, _ = s.recvfrom(100)
        assert udp_echo.decode(data) == (udp_echo.REPLY, 9, b"abcdefgh")
        with pytest.raises(TimeoutError):
            s.recvfrom(100)
        s.close()
    finally:
        server.stop()


@pytest.mark.parametrize("behaviour", [silent, drip, garbage_16mb, ssh_banner])
def test_fetch_json_from_hostile_peers(behaviour):
    with hostile_peer(behaviour) as peer:
        start = time.monotonic()
        with pytest.raises(FetchError):
            fetch_json(peer.host, peer.port, "/api/v1/local", 0.5, 4096)
        assert time.monotonic() - start < 0.5 + 2


def test_gather_mixes_answers_and_failures(agent_like):
    dead = free_port()

    def fetch(address, port, timeout):
        from netdiag.mesh.gather import _fetch_local

        return _fetch_local(address, agent_like if address == "127.0.0.1" else dead, timeout)

    got = gather_local(["127.0.0.1", "127.0.0.2"], 0, 0.5, Deadline(3), fetch=fetch)
    by = {f.address: f for f in got}
    assert by["127.0.0.1"].doc is not None and by["127.0.0.1"].status == "ok"
    assert by["127.0.0.2"].doc is None and by["127.0.0.2"].status == "refused"
