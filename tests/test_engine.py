"""The probe engine with the TCP probe against real loopback sockets."""

import socket
import time

from netdiag.deadline import Deadline
from netdiag.probes.base import ProbeOptions
from netdiag.probes.engine import run
from netdiag.status import Status
from netdiag.targets import parse_target


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_open_and_refused() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        targets = [
            parse_target(f"127.0.0.1:{port}"),
            parse_target(f"tcp://127.0.0.1:{_closed_port()}"),
        ]
        results = run(targets, ProbeOptions(timeout=2), Deadline(5))
    finally:
        listener.close()
    assert [r.status for r in results] == [Status.OK, Status.REFUSED]
    assert results[0].address == f"127.0.0.1:{port}"
    assert results[0].facts["connect_ms"] >= 0
    assert results[1].step == "connect"


def test_deadline_bounds_everything() -> None:
    # A full backlog on a listener that never accepts makes further SYNs go unanswered.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        start = time.monotonic()
        results = run([parse_target(f"127.0.0.1:{port}")], ProbeOptions(timeout=10), Deadline(0.5))
        took = time.monotonic() - start
    finally:
        for s in fillers:
            s.close()
        listener.close()
    # the 0.5 s deadline cut the 10 s attempt: half of that is seconds of slack for a busy machine
    assert took < 5
    assert results[0].status is Status.TIMEOUT


def test_unknown_scheme_reported_not_raised() -> None:
    from netdiag.targets import Target

    results = run([Target("gopher", "127.0.0.1", 70)], ProbeOptions(), Deadline(2))
    assert results[0].status is Status.ERROR and results[0].step == "setup"
    assert "no probe for scheme 'gopher'" in results[0].detail


def test_dns_is_a_probe_like_the_others() -> None:
    """dns:// goes through the registry: one ok result per address, no port, nothing sent."""
    results = run([parse_target("dns://127.0.0.1")], ProbeOptions(), Deadline(2))
    assert [(r.status, r.address, r.step) for r in results] == [(Status.OK, "127.0.0.1", None)]
    assert results[0].detail == "127.0.0.1 resolves to 127.0.0.1"
    assert results[0].target == "dns://127.0.0.1"
