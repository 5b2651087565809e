"""TCP outcomes told apart, in a network namespace of the test's own (no packet leaves it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.schemas import netdiag_json
from tests.support.servers import have

pytestmark = [pytest.mark.slow, pytest.mark.netns]


@pytest.fixture
def lab_ns() -> Iterator[str]:
    """Loopback; a veth link 10.79.0.1/24 whose .2 has a fixed neighbour MAC nobody owns (a SYN
    to it vanishes); an unreachable route for 10.79.1.0/24; no route for anything else."""
    if os.geteuid() != 0 or not have("ip"):
        pytest.skip("needs root and iproute2")
    ns = f"ndprobes-t{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        for cmd in (
            "link set lo up",
            "link add ndp0 type veth peer name ndp1",
            "addr add 10.79.0.1/24 dev ndp0",
            "link set ndp0 up",
            "link set ndp1 up",
            "neigh add 10.79.0.2 lladdr 02:00:5e:00:79:02 dev ndp0 nud permanent",
            "route add unreachable 10.79.1.0/24",
        ):
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True, capture_output=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_refused_timeout_unreachable(lab_ns: str) -> None:
    targets = {
        "tcp://127.0.0.1:9": "refused",
        "tcp://10.79.0.2:80": "timeout",  # on-link, but no host owns the MAC: no answer
        "tcp://10.79.1.1:80": "unreachable",  # EHOSTUNREACH from an unreachable route
        "tcp://10.80.0.1:80": "unreachable",  # ENETUNREACH: no route at all
    }
    out = subprocess.run(
        ["ip", "netns", "exec", lab_ns, sys.executable, "-m", "netdiag", "probe", "--json",
         "--timeout", "1", *targets],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 1
    results = netdiag_json(out.stdout)["results"]
    assert {r["target"]: r["status"] for r in results} == targets
    by_target = {r["target"]: r for r in results}
    assert by_target["tcp://10.79.0.2:80"]["elapsed_ms"] >= 900
    assert "unreachable" in by_target["tcp://10.80.0.1:80"]["detail"].lower()
