"""Three agents on three 'hosts' (network namespaces on a bridge), each with its own DNS:
a real DROP rule cuts one node, a node's DNS forgets another, an agent dies. The Swarm
versions of these (real VXLAN) are the swarm engineer's tests/e2e/test_swarm_mesh.py."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from tests.support.mesh_lab import chromium_dom
from tests.support.mesh_netns import NetnsMesh
from tests.support.netns_lab import netns_exec
from tests.support.schemas import validate

pytestmark = [pytest.mark.slow, pytest.mark.netns]
INTERVAL = 1.0

if os.geteuid() != 0 or not shutil.which("iptables"):
    pytest.skip("needs root and iptables", allow_module_level=True)


def states(doc, addr_of):
    """{(source node, target node): state} of an /api/v1/mesh document."""
    label = {n["key"]: n["label"] for n in doc["nodes"]}
    return {
        (label[c["source"]], label[c["target"]]): c["state"]
        for row in doc["rows"]
        for c in row["cells"]
    }


@pytest.fixture(scope="module")
def lab():
    with NetnsMesh(3, interval=INTERVAL, timeout=0.8) as lab:
        lab.wait(
            lambda: all(lab.local(i)["dns"]["agree"] is True for i in (1, 2, 3)), 30, "agreement"
        )
        yield lab


def test_every_agent_sees_the_full_mesh(lab):
    for i in (1, 2, 3):
        doc = lab.mesh(i)
        assert doc["ok"] is True, doc["findings"]
        assert len(doc["rows"]) == 3 and all(len(r["cells"]) == 3 for r in doc["rows"])
        # listening on 0.0.0.0, each agent found its own task address among the DNS answer
        assert [n["key"] for n in doc["nodes"]] == [lab.addr(j) for j in (1, 2, 3)]
    out = lab.netdiag(2, "mesh")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("3 agents (3 answered), 9 pairs: 9 up")


def test_cut_node_is_down_named_and_heals(lab):
    lab.cut(3)
    try:
        start = time.monotonic()
        doc = lab.wait(
            lambda: (
                (d := lab.mesh(1))
                and states(d, lab.addr)[("node1", "node3")] == "down"
                and states(d, lab.addr)[("node2", "node3")] == "down"
                and d
            ),
            3 * INTERVAL + 5,  # the bound (3 intervals) plus a loaded machine's slack
            "pairs to node3 down",
        )
        detected = time.monotonic() - start
        validate(doc, "mesh")
        s = states(doc, lab.addr)
        assert s[("node1", "node2")] == "up" and s[("node2", "node1")] == "up"
        assert {s[("node3", t)] for t in ("node1", "node2", "node3")} == {"unknown"}
        # node3's own view: itself up, the others down
        own = lab.wait(
            lambda: (
                (d := lab.local(3))
                and {p["node"]: p["state"] for p in d["peers"]}.get("node1") == "down"
                and d
            ),
            3 * INTERVAL + 5,
            "node3's own round",
        )
        assert {p["node"]: p["state"] for p in own["peers"]} == {
            "node1": "down",
            "node2": "down",
            "node3": "up",
        }
        out = lab.netdiag(1, "mesh")
        assert out.returncode == 1
        assert "error: node3 unreachable from 2 of 2 peers" in out.stdout
        assert "4789/udp" in out.stdout
        print(f"fault detected after {detected:.1f}s (interval {INTERVAL}s)")
    finally:
        lab.heal(3)
    lab.wait(lambda: lab.mesh(1)["ok"] is True, 3 * INTERVAL + 5, "all up again")
    out = lab.netdiag(1, "mesh", "--json")
    assert out.returncode == 0, out.stdout


def test_page_shows_the_fault_in_chromium(lab, tmp_path):
    def dom() -> str:
        url = f"http://{lab.addr(1)}:8099/"
        return chromium_dom(url, tmp_path / "profile", prefix=netns_exec(lab.ns(1))).stdout

    def cells(text: str) -> dict[tuple[str, str], str]:
        found = re.findall(
            r'data-source-node="([^"]+)" data-target-node="([^"]+)" data-state="(\w+)"', text
        )
        return {(s, t): st for s, t, st in found}

    before = cells(dom())
    assert len(before) == 9 and set(before.values()) == {"up"}
    lab.cut(3)
    try:
        lab.wait(lambda: lab.mesh(1)["ok"] is False, 3 * INTERVAL + 5, "the fault")
        time.sleep(1.1)  # past the page's one-second cache of the matrix
        after = cells(dom())
    finally:
        lab.heal(3)
    assert after[("node1", "node3")] == "down" and after[("node1", "node2")] == "up"
    assert after[("node3", "node3")] == "unknown"
    lab.wait(lambda: lab.mesh(1)["ok"] is True, 3 * INTERVAL + 5, "all up again")


def test_dns_disagreement_and_stale_peer(lab):
    lab.set_tasks(2, [1, 2])  # node2's DNS forgets node3, which still runs
    try:
        doc = lab.wait(
            lambda: (
                (d := lab.mesh(1))
                and any(f["kind"] == "dns" for f in d["findings"])
                and any(f["kind"] == "stale" for f in d["findings"])
                and d
            ),
            3 * INTERVAL + 5,
            "a DNS finding",
        )
        messages = [f["message"] for f in doc["findings"]]
        assert "node2's DNS lists 2 agents, the others 3 (missing node3)" in messages
        assert any("vanished from the DNS of node2 but still answers" in m for m in messages)
        assert states(doc, lab.addr)[("node2", "node3")] == "stale"
        out = lab.netdiag(3, "mesh")
        assert out.returncode == 1
        assert "node2's DNS lists 2 agents, the others 3 (missing node3)" in out.stdout
    finally:
        lab.set_tasks(2, [1, 2, 3])
    lab.wait(lambda: lab.mesh(1)["ok"] is True, 3 * INTERVAL + 5, "agreement again")


def test_killed_agent_is_refused_then_stale_then_unknown(lab):
    both_down = lambda d: (  # noqa: E731 - both peers' rounds saw it (they run unsynchronised)
        states(d, lab.addr)[("node1", "node3")] == states(d, lab.addr)[("node2", "node3")] == "down"
    )
    lab.kill(3)
    try:
        doc = lab.wait(
            lambda: (d := lab.mesh(1)) and both_down(d) and d, 3 * INTERVAL + 5, "node3 down"
        )
        assert any(
            "node3 refuses connections from 2 of 2 peers" in f["message"] for f in doc["findings"]
        ), doc["findings"]
    finally:
        lab.start_agent(3)
    lab.wait(lambda: lab.mesh(1)["ok"] is True, 30, "node3 back")
    # Swarm drops an ended task from every node's DNS. Here the record goes first, while the
    # agent still answers (stale for as long as it does), then the agent: its pairs stay stale
    # for STALE_ROUNDS, then turn unknown, its row and column kept.
    try:
        for i in (1, 2):
            lab.set_tasks(i, [1, 2])
        lab.wait(
            lambda: states(lab.mesh(1), lab.addr).get(("node1", "node3")) == "stale",
            3 * INTERVAL + 5,
            "stale",
        )
        lab.kill(3)
        doc = lab.wait(
            lambda: (
                (d := lab.mesh(1))
                and {v for (s, t), v in states(d, lab.addr).items() if "node3" in (s, t)}
                == {"unknown"}
                and d
            ),
            6 * INTERVAL + 5,
            "node3 unknown",
        )
        assert len(doc["rows"]) == 3  # still a row, not dropped
    finally:
        for i in (1, 2, 3):
            lab.set_tasks(i, [1, 2, 3])
        if 3 not in lab.procs:  # killed above (else it still runs)
            lab.start_agent(3)
    lab.wait(lambda: lab.mesh(1)["ok"] is True, 30, "node3 back")
