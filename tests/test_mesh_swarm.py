"""netdiag agent and netdiag mesh on a real 3-node Swarm (issue 10, section 4).

examples/swarm/stack.yaml is deployed as printed (settings through its environment variables)
with a 2 s interval, one agent per node, plus a MariaDB (netdiag-mariadb:dev) constrained to
node3 as every agent's ``--target``. Then: the 3x3 matrix from ``netdiag mesh`` in a container
on the overlay, from a node through the published port, from every agent's /api/v1/mesh; the
metrics against the JSON; the page in headless Chromium; node3's VXLAN cut and healed; a
stopped agent. Everything shares the session's Swarm (tests/support/swarm.py) and this module's
stack, removed at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.artifacts import artifacts_dir, record
from tests.support.schemas import netdiag_json, validate
from tests.support.swarm import Swarm
from tests.support.timing import wait_for
from tests.support.tutorial import MARIADB_CMD, MARIADB_IMAGE

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.netns]

REPO = Path(__file__).resolve().parents[1]
STACK_FILE = REPO / "examples/swarm/stack.yaml"
STACK = "ndm"
SERVICE = f"{STACK}_netdiag"
NETWORK = "ndm-net"
PORT = 18100
INTERVAL = 2.0
DB = "ndm-db"
TARGET = f"mysql://{DB}"
TARGET_SHOWN = f"mysql://{DB}:3306"  # as the agents name it: the port made explicit
CLIENT = "ndm-client"
NODES = ("node1", "node2", "node3")
FIGURES = "mesh-swarm-figures.json"


# --- reading the agents -----------------------------------------------------------------------


def get_json(swarm: Swarm, node: str, path: str, timeout: float = 10) -> dict:
    """An agent's JSON through the port published on ``node``, read inside that namespace
    (its /api/v1/* documents validated against docs/schemas/)."""
    doc = json.loads(swarm.http_get(node, f"http://127.0.0.1:{PORT}{path}", timeout))
    return validate(doc) if "schema" in doc else doc


def grid(doc: dict) -> dict[tuple[str, str], str]:
    """(source node, target node) -> state, from an /api/v1/mesh or mesh --json payload."""
    label = {n["key"]: n["label"] for n in doc["nodes"]}
    return {
        (label[row["source"]], label[c["target"]]): c["state"]
        for row in doc["rows"]
        for c in row["cells"]
    }


def target_states(doc: dict) -> dict[str, str]:
    """node -> state of the database target, from a mesh payload."""
    label = {n["key"]: n["label"] for n in doc["nodes"]}
    rows = [t for t in doc["targets"] if t["target"] == TARGET_SHOWN]
    return {label[c["source"]]: c["state"] for row in rows for c in row["cells"]}


def local_peers(doc: dict) -> dict[str, dict]:
    """target node -> peer entry of an /api/v1/local document."""
    return {p["node"]: p for p in doc["peers"]}


def all_up(doc: dict) -> bool:
    g = grid(doc)
    return sorted(g) == [(s, t) for s in NODES for t in NODES] and set(g.values()) == {"up"}


def mesh_in_client(swarm: Swarm, *args: str) -> tuple[int, str]:
    """``netdiag mesh ARGS`` inside a plain container on the overlay (on node1)."""
    r = swarm.docker(1, "exec", CLIENT, "netdiag", "mesh", *args, check=False, timeout=60)
    return r.returncode, r.stdout


# --- the deployment -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mesh(swarm: Swarm) -> Iterator[Swarm]:
    """The example stack (2 s rounds, the database as target), a MariaDB on node3, a client."""
    env = {
        "NETDIAG_IMAGE": swarm.image,
        "NETDIAG_INTERVAL": str(int(INTERVAL)),
        "NETDIAG_PORT": str(PORT),
        "NETDIAG_NETWORK": NETWORK,
        "NETDIAG_HEALTH_INTERVAL": "2s",
        "NETDIAG_TARGETS": f"--target {TARGET}",
    }
    keep = os.environ.get("NETDIAG_SWARM_KEEP") == "1"  # working on the tests: reuse, leave
    try:
        swarm.load_image(MARIADB_IMAGE, nodes=[3])
        swarm.deploy_stack(STACK, STACK_FILE, env)
        if not swarm.tasks(DB):
            swarm.manager_docker(
                "service", "create", "--detach", "--no-resolve-image", "--name", DB,
                "--network", NETWORK, "--endpoint-mode", "dnsrr",
                "--constraint", "node.hostname==node3",
                "--entrypoint", "sh", MARIADB_IMAGE, "-c", MARIADB_CMD,
            )  # fmt: skip
        if swarm.docker(1, "inspect", CLIENT, check=False).returncode:
            swarm.docker(
                1, "run", "-d", "--name", CLIENT, "--network", NETWORK,
                "--entrypoint", "sleep", swarm.image, "infinity",
            )  # fmt: skip
        swarm.wait_tasks(SERVICE, 3, timeout=180)
        swarm.wait_tasks(DB, 1, timeout=180)
        wait_for(
            lambda: (
                all_up(doc := get_json(swarm, "node1", "/api/v1/mesh"))
                and set(target_states(doc).values()) == {"up"}
            ),
            120,
            "3x3 matrix all up with the database reached from every node",
        )
        yield swarm
    finally:
        if not keep:
            swarm.docker(1, "rm", "-f", CLIENT, check=False)
            swarm.rm_service(DB)
            swarm.rm_stack(STACK)


# --- the matrix, all up ---------------------------------------------------------------------------


def test_stack_deploys_as_printed_one_agent_per_node(mesh: Swarm) -> None:
    spec = json.loads(mesh.manager_docker("service", "inspect", SERVICE).stdout)[0]["Spec"]
    assert "Global" in spec["Mode"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == [
        "agent", "--interval", "2", "--target", TARGET,
    ]  # fmt: skip
    health_cmd = spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"]
    assert health_cmd == ["CMD", "netdiag", "check", "http://localhost:8099/ping"]
    limits = spec["TaskTemplate"]["Resources"]["Limits"]
    assert limits["MemoryBytes"] == 64 << 20 and limits["NanoCPUs"] == 250_000_000
    assert sorted(t["Node"] for t in mesh.tasks(SERVICE)) == list(NODES)
    for node in NODES:  # NETDIAG_NODE={{.Node.Hostname}}; the healthcheck passed
        ping = get_json(mesh, node, "/ping")
        assert ping["node"] == node
        ctr = mesh.container_of(SERVICE, node)
        health = mesh.docker(node, "inspect", "-f", "{{json .State.Health}}", ctr).stdout
        state = json.loads(health)
        assert state["Status"] == "healthy", state
        # localhost is 127.0.0.1 and ::1 in the task's /etc/hosts; without IPv6 ::1 is skipped
        assert state["Log"][-1]["Output"].startswith("PASS http://localhost:8099/ping: ok ")
        record(FIGURES, healthcheck_output=state["Log"][-1]["Output"].strip())


def test_mesh_in_a_container_on_the_overlay_shows_3x3_up(mesh: Swarm) -> None:
    code, out = mesh_in_client(mesh, "--json")  # default --agents tasks.netdiag: the alias
    doc = netdiag_json(out, "mesh")
    assert code == 0 and doc["ok"] is True, out
    assert all_up(doc), grid(doc)
    assert target_states(doc) == dict.fromkeys(NODES, "up")
    assert doc["findings"] == []
    code, text = mesh_in_client(mesh)
    assert code == 0
    assert text.splitlines()[2].split() == list(NODES)  # the grid's header row


def test_mesh_from_a_node_through_the_published_port(mesh: Swarm) -> None:
    r = mesh.exec_in_node_ns(
        "node2",
        [sys.executable, "-m", "netdiag", "mesh", "--agents", f"http://127.0.0.1:{PORT}", "--json"],
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert all_up(netdiag_json(r.stdout, "mesh"))


def test_every_agent_serves_the_whole_matrix(mesh: Swarm) -> None:
    for node in NODES:
        doc = get_json(mesh, node, "/api/v1/mesh")
        assert doc["schema"] == "netdiag.mesh/1" and doc["command"] == "mesh"
        assert all_up(doc), (node, grid(doc))
        assert {n["label"] for n in doc["nodes"]} == set(NODES)
        assert all(n["age_s"] is not None and n["age_s"] < 3 * INTERVAL for n in doc["nodes"])


def test_metrics_parse_and_agree_with_the_json(mesh: Swarm) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for node in NODES:

        def same_round(node: str = node) -> tuple[dict, dict] | None:
            local = get_json(mesh, node, "/api/v1/local")
            text = mesh.http_get(node, f"http://127.0.0.1:{PORT}/metrics").decode()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            (stamp,) = families["netdiag_round_timestamp_seconds"].samples
            if abs(stamp.value - local["round"]["started_at"]) > 1e-3:
                return None  # a round ended between the two reads
            return local, families

        local, families = wait_for(same_round, 20, f"{node}: metrics of the JSON's round")
        up = {
            (s.labels["target_node"], s.labels["target_address"]): s.value
            for s in families["netdiag_peer_up"].samples
        }
        assert up == {(p["node"], p["address"]): float(p["up"]) for p in local["peers"]}
        assert set(up.values()) == {1.0}
        assert all(s.labels["source_node"] == node for s in families["netdiag_peer_up"].samples)
        loss = {
            s.labels["target_node"]: s.value
            for s in families["netdiag_peer_udp_loss_ratio"].samples
        }
        assert loss == {p["node"]: p["udp"]["loss"] for p in local["peers"]}
        (target,) = families["netdiag_target_up"].samples
        assert target.labels == {"node": node, "target": TARGET_SHOWN} and target.value == 1.0
        dns = {s.labels["name"]: s.value for s in families["netdiag_dns_lookup_seconds"].samples}
        want = {lk["name"]: lk["elapsed_ms"] / 1000 for lk in local["dns"]["lookups"]}
        assert dns == pytest.approx(want, abs=1e-6)  # the JSON rounds to microseconds
        (agents,) = families["netdiag_dns_agents"].samples
        assert agents.value == len(local["dns"]["peers"]) == 3
        rtt_counts = {
            s.labels["target_node"]: s.value
            for s in families["netdiag_peer_rtt_seconds"].samples
            if s.name == "netdiag_peer_rtt_seconds_count"
        }
        assert set(rtt_counts) == set(NODES) and min(rtt_counts.values()) >= 1
        rounds = [
            s
            for s in families["netdiag_round_duration_seconds"].samples
            if s.name.endswith("_count")
        ]
        assert rounds and rounds[0].value >= local["round"]["number"] - 1


# --- the page ----------------------------------------------------------------------------------


class Cells(HTMLParser):
    """The heatmap's and the targets table's cells from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.targets: dict[str, str] = {}
        self.updates = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.updates = int(a.get("data-updates") or 0)
        if tag == "td" and "cell" in classes:
            self.cells[(a["data-source-node"], a["data-target-node"])] = a["data-state"]
        if tag == "td" and "tcell" in classes:
            self.targets[a["data-source-node"]] = a["data-state"]


def page(mesh: Swarm, shot: str) -> Cells:
    dom = mesh.browse(
        "node1", f"http://127.0.0.1:{PORT}/", artifacts_dir() / shot, settle_ms=int(INTERVAL * 1500)
    )
    cells = Cells()
    cells.feed(dom)
    return cells


def test_page_in_chromium_shows_3x3_all_up(mesh: Swarm) -> None:
    cells = page(mesh, "mesh-all-up.png")
    assert cells.cells == {(s, t): "up" for s in NODES for t in NODES}
    assert cells.targets == dict.fromkeys(NODES, "up")
    assert cells.updates >= 1  # the page's script re-fetched the matrix by itself
    assert (artifacts_dir() / "mesh-all-up.png").stat().st_size > 5000


# --- faults ------------------------------------------------------------------------------------


def round_end(local: dict) -> float:
    return local["round"]["started_at"] + local["round"]["duration_ms"] / 1000


def test_vxlan_cut_on_node3_is_seen_named_and_healed(mesh: Swarm) -> None:
    def column_and_row(want: str):
        """The four cross pairs of node3 in the agents' own reports, when all are ``want``:
        returns (the reports, the wall time the last of them finished its round)."""
        locals_ = {n: get_json(mesh, n, "/api/v1/local") for n in NODES}
        pairs = [
            local_peers(locals_["node1"])["node3"]["state"],
            local_peers(locals_["node2"])["node3"]["state"],
            local_peers(locals_["node3"])["node1"]["state"],
            local_peers(locals_["node3"])["node2"]["state"],
        ]
        if set(pairs) != {want}:
            return None
        return locals_, max(round_end(loc) for loc in locals_.values())

    cut_at = time.time()
    with mesh.cut_vxlan(3):
        locals_, seen_at = wait_for(lambda: column_and_row("down"), 10 * INTERVAL, "cut seen")
        detection = seen_at - cut_at
        # node3 still reaches itself; node1 and node2 still reach each other
        assert local_peers(locals_["node3"])["node3"]["state"] == "up"
        assert local_peers(locals_["node1"])["node2"]["state"] == "up"
        # the database lives on node3: only node3 reaches it now
        assert {n: locals_[n]["targets"][0]["up"] for n in NODES} == {
            "node1": False, "node2": False, "node3": True,
        }  # fmt: skip
        # netdiag mesh on node1's side of the cut: node3's column down, its row unknown, named
        code, out = mesh_in_client(mesh, "--json")
        doc = netdiag_json(out, "mesh")
        g = grid(doc)
        assert code == 1 and doc["ok"] is False
        assert g[("node1", "node3")] == g[("node2", "node3")] == "down"
        assert {g[("node3", t)] for t in NODES} == {"unknown"}  # its report is out of reach
        assert g[("node1", "node2")] == g[("node2", "node1")] == "up"
        culprit = doc["findings"][0]
        assert culprit["kind"] == "node" and culprit["nodes"] == ["node3"], doc["findings"]
        assert "4789/udp" in culprit["message"]
        # the database runs on node3: its timeouts are the cut, not the service
        (db,) = [f for f in doc["findings"] if f["kind"] == "target"]
        assert "node3, which is cut off (above), could not report it" in db["message"], db
        assert "the service itself" not in db["message"]
        code, text = mesh_in_client(mesh)
        assert code == 1 and "node3 unreachable from 2 of 2 peers" in text, text
        # node3's own view, through its published port: its row, itself up
        g3 = grid(get_json(mesh, "node3", "/api/v1/mesh"))
        assert g3[("node3", "node3")] == "up"
        assert g3[("node3", "node1")] == g3[("node3", "node2")] == "down"
        # the page on node1, during the fault
        cells = page(mesh, "mesh-node3-vxlan-cut.png")
        assert cells.cells[("node1", "node3")] == cells.cells[("node2", "node3")] == "down"
        assert {cells.cells[("node3", t)] for t in NODES} == {"unknown"}
        assert {cells.cells[(s, t)] for s in ("node1", "node2") for t in ("node1", "node2")} == {
            "up"
        }
        assert len(cells.cells) == 9
    healed_at = time.time()
    _, back_at = wait_for(lambda: column_and_row("up"), 10 * INTERVAL, "cut healed")
    heal = back_at - healed_at
    wait_for(lambda: all_up(get_json(mesh, "node1", "/api/v1/mesh")), 10 * INTERVAL, "all up")
    record(FIGURES, detect_s=round(detection, 2), heal_s=round(heal, 2), interval_s=INTERVAL)
    # The contract: seen within 3 intervals of the fault, and back within 3 of the fix
    # (measured by the agents' own round ends, not by this test's polling).
    assert detection <= 3 * INTERVAL, detection
    assert heal <= 3 * INTERVAL, heal


def test_stopped_agent_is_reported_not_dropped(mesh: Swarm) -> None:
    before = get_json(mesh, "node1", "/api/v1/mesh")
    node2_key = next(n["key"] for n in before["nodes"] if n["label"] == "node2")
    mesh.manager_docker("node", "update", "--availability", "drain", "node2")
    try:
        # its task stops; node1 and node3 go on showing it (stale, then unknown), never drop it
        def gone_but_shown() -> dict | None:
            doc = get_json(mesh, "node1", "/api/v1/mesh")
            node2 = [n for n in doc["nodes"] if n["key"] == node2_key]
            g = grid(doc)
            if not node2 or node2[0]["reachable"]:
                return None
            return doc if g[("node1", "node2")] != "up" else None

        doc = wait_for(gone_but_shown, 10 * INTERVAL, "node2's agent reported gone")
        g = grid(doc)
        assert len(g) == 9
        assert g[("node1", "node2")] in ("stale", "down", "unknown")
        assert g[("node3", "node2")] in ("stale", "down", "unknown")
        assert {g[("node2", t)] for t in NODES} == {"unknown"}
        code, out = mesh_in_client(mesh, "--json")
        assert code == 1 and len(netdiag_json(out, "mesh")["nodes"]) == 3
    finally:
        mesh.manager_docker("node", "update", "--availability", "active", "node2")
    mesh.wait_tasks(SERVICE, 3, timeout=180)
    # the new task has a new address: the old one is forgotten after a few rounds
    wait_for(
        lambda: all_up(doc := get_json(mesh, "node1", "/api/v1/mesh")) and len(doc["nodes"]) == 3,
        60,
        "all up again with node2's new agent",
        step=1,
    )
