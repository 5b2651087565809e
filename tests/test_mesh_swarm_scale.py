"""30 netdiag agents (replicated mode) across the 3-node Swarm: every round finishes within the
interval and the mesh is 30 x 30 (issue 10, section 4, scale).

Reads happen inside one agent's container (docker exec): the agents' addresses are overlay
addresses, reachable only from the overlay.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.artifacts import record
from tests.support.schemas import netdiag_json
from tests.support.swarm import Swarm
from tests.support.timing import wait_for
from tests.test_mesh_swarm import FIGURES

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.netns, pytest.mark.timeout(600)]

SERVICE = "ndscale"
NETWORK = "ndscale-net"
REPLICAS = 30
INTERVAL = 5.0
# Every agent's /api/v1/local, fetched concurrently from inside the overlay: one JSON list.
LOCALS = """
import json, socket, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
addrs = socket.gethostbyname_ex(sys.argv[1])[2]
def get(a):
    try:
        d = json.loads(urllib.request.urlopen(f"http://{a}:8099/api/v1/local", timeout=5).read())
    except Exception as e:
        return {"address": a, "error": str(e)}
    return {"address": a, "node": d["agent"]["node"], "round": d["round"]["number"],
            "duration_ms": d["round"]["duration_ms"], "peers": len(d["peers"]),
            "up": sum(p["state"] == "up" for p in d["peers"])}
with ThreadPoolExecutor(16) as pool:
    print(json.dumps(list(pool.map(get, addrs))))
"""


@pytest.fixture(scope="module")
def scale(swarm: Swarm) -> Iterator[tuple[Swarm, str]]:
    """The replicated service; yields (swarm, an agent container on node1 to run reads in)."""
    swarm.create_overlay(NETWORK)
    try:
        swarm.manager_docker(
            "service", "create", "--detach", "--no-resolve-image",
            "--name", SERVICE, "--replicas", str(REPLICAS), "--network", NETWORK,
            "--env", "NETDIAG_NODE={{.Node.Hostname}}", "--env", f"NETDIAG_SERVICE={SERVICE}",
            swarm.image, "agent", "--interval", str(INTERVAL),
        )  # fmt: skip
        swarm.wait_tasks(SERVICE, REPLICAS, timeout=400)
        yield swarm, swarm.container_of(SERVICE, 1)
    finally:
        swarm.rm_service(SERVICE, wait=120)
        swarm.rm_network(NETWORK)


def locals_(swarm: Swarm, ctr: str) -> list[dict]:
    r = swarm.docker(1, "exec", ctr, "python3", "-c", LOCALS, f"tasks.{SERVICE}", timeout=60)
    return json.loads(r.stdout)


def test_every_round_of_30_agents_finishes_within_the_interval(
    scale: tuple[Swarm, str],
) -> None:
    swarm, ctr = scale

    def settled() -> list[dict] | None:
        got = locals_(swarm, ctr)
        done = len(got) == REPLICAS and all(
            x.get("peers") == REPLICAS and x.get("up") == REPLICAS and x["round"] >= 2 for x in got
        )
        return got if done else None

    got = wait_for(settled, 20 * INTERVAL, "30 agents each seeing 30 peers up", step=2)
    spread = Counter(x["node"] for x in got)
    assert set(spread) == {"node1", "node2", "node3"}, spread
    slowest = max(x["duration_ms"] for x in got)
    record(FIGURES, scale_round_max_ms=slowest, scale_interval_s=INTERVAL)
    assert slowest < INTERVAL * 1000, got


def test_mesh_of_30_agents_is_30_by_30_all_up(scale: tuple[Swarm, str]) -> None:
    swarm, ctr = scale
    r = swarm.docker(
        1, "exec", ctr, "netdiag", "mesh", "--agents", f"tasks.{SERVICE}", "--json",
        check=False, timeout=60,
    )  # fmt: skip
    doc = netdiag_json(r.stdout, "mesh")
    assert r.returncode == 0, doc["summary"]
    assert len(doc["nodes"]) == REPLICAS
    assert [len(row["cells"]) for row in doc["rows"]] == [REPLICAS] * REPLICAS
    assert doc["summary"]["up"] == REPLICAS * REPLICAS
    record(FIGURES, scale_mesh_elapsed_ms=doc["elapsed_ms"])
    # one agent's own /api/v1/mesh: the same 30 x 30
    get = (
        "import urllib.request, sys; "
        "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8099/api/v1/mesh', "
        "timeout=30).read().decode())"
    )
    served = netdiag_json(
        swarm.docker(1, "exec", ctr, "python3", "-c", get, timeout=60).stdout, "mesh"
    )
    assert sum(len(row["cells"]) for row in served["rows"]) == REPLICAS * REPLICAS
    assert served["summary"]["up"] == REPLICAS * REPLICAS
    # the text form numbers 30 columns and still fits 100 columns
    text = swarm.docker(
        1, "exec", ctr, "netdiag", "mesh", "--agents", f"tasks.{SERVICE}", check=False
    ).stdout
    assert max(len(line) for line in text.splitlines()) <= 100
