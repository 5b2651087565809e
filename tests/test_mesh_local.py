"""Real agents on loopback (127.0.88.x) with a DNS server of the test's own: the round, the
endpoints, metrics against JSON, stale peers, `netdiag mesh`, the page in headless Chromium,
secrets. Multi-host faults (a DROP rule) are in test_mesh_netns.py."""

from __future__ import annotations

import json
import re
import select
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from netdiag.report import ENVELOPE_KEYS
from tests.support.mesh_lab import NET, LoopbackMesh, chromium_dom, http_get
from tests.support.schemas import validate
from tests.support.timing import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab():
    # 1 s per step: the test's own DNS server shares this busy process; a missed lookup would
    # show as a (true) finding and make the "all up" assertions flaky.
    with LoopbackMesh(3, interval=1.5, timeout=1.0) as lab:
        wait_for(
            lambda: all(lab.local(i)["dns"]["agree"] is True for i in (1, 2, 3)),
            20,
            "every agent to have seen every peer's view",
        )
        yield lab


def _peer_states(doc):
    return {p["node"]: p["state"] for p in doc["peers"]}


def test_round_finds_every_peer_through_dns(lab):
    # A round in which every peer's latest round had resolved its peers (on a loaded machine
    # a lookup may time out now and then; that round's /ping then carries no peer view).
    doc = wait_for(
        lambda: (d := lab.local(1)) and all(p["peer_view"] for p in d["peers"]) and d,
        20,
        "a round where every peer reports its view",
    )
    validate(doc, "agent")
    assert list(doc)[:5] == list(ENVELOPE_KEYS)
    assert doc["schema"] == "netdiag.agent/1" and doc["command"] == "agent" and doc["ok"] is True
    assert doc["agent"]["node"] == "node1" and doc["agent"]["address"] == f"{NET}1"
    assert _peer_states(doc) == {"node1": "up", "node2": "up", "node3": "up"}
    for p in doc["peers"]:
        assert p["udp"]["sent"] == 5 and p["udp"]["loss"] == 0.0
        assert p["rtt_ms"] > 0 and p["connect_ms"] > 0 and p["in_dns"] is True
        assert p["peer_view"]["count"] == 3
    names = [lk["name"] for lk in doc["dns"]["lookups"]]
    assert names == ["tasks.netdiag", "netdiag"]
    assert doc["dns"]["agree"] is True and doc["dns"]["peers"] == lab.addresses
    assert doc["round"]["age_s"] < 5


def test_ping_is_small_and_says_who(lab):
    status, body = http_get(lab.url(2, "/ping"))
    info = json.loads(body)
    assert status == 200 and len(body) < 512
    assert info["agent"] == "netdiag-agent" and info["node"] == "node2"
    assert info["address"] == f"{NET}2" and info["peers"]["count"] == 3


def test_mesh_endpoint_is_the_whole_matrix(lab):
    doc = wait_for(lambda: (d := lab.mesh(3)) and d["ok"] and d, 20, "an all-up matrix")
    validate(doc, "mesh")
    assert doc["command"] == "mesh" and doc["ok"] is True
    assert [n["label"] for n in doc["nodes"]] == ["node1", "node2", "node3"]
    cells = [c for row in doc["rows"] for c in row["cells"]]
    assert len(cells) == 9 and {c["state"] for c in cells} == {"up"}
    assert all(c["age_s"] is not None and c["age_s"] < 10 for c in cells)
    assert doc["findings"] == []


def test_metrics_agree_with_the_json(lab):
    from prometheus_client.parser import text_string_to_metric_families

    # One round's JSON and metrics: read both until they are of the same round.
    def same_round():
        text = lab.get(1, "/metrics").decode()
        doc = lab.local(1)
        again = lab.get(1, "/metrics").decode()
        return (
            (text, doc)
            if text.split("netdiag_round_timestamp")[1] == again.split("netdiag_round_timestamp")[1]
            else None
        )

    text, doc = wait_for(same_round, 20, "a stable round")
    fam = {f.name: f for f in text_string_to_metric_families(text)}
    up = {s.labels["target_address"]: s.value for s in fam["netdiag_peer_up"].samples}
    assert up == {p["address"]: float(p["up"]) for p in doc["peers"]}
    for s in fam["netdiag_peer_up"].samples:
        assert s.labels["source_node"] == "node1"
    loss = {s.labels["target_address"]: s.value for s in fam["netdiag_peer_udp_loss_ratio"].samples}
    assert loss == {p["address"]: p["udp"]["loss"] for p in doc["peers"]}
    dns = {s.labels["name"]: s.value for s in fam["netdiag_dns_lookup_seconds"].samples}
    assert dns == {
        lk["name"]: pytest.approx(lk["elapsed_ms"] / 1000, abs=1e-3) for lk in doc["dns"]["lookups"]
    }
    counts = [s for s in fam["netdiag_peer_rtt_seconds"].samples if s.name.endswith("_count")]
    assert len(counts) == 3 and all(s.value >= 1 for s in counts)
    rounds = [s for s in fam["netdiag_round_duration_seconds"].samples if s.name.endswith("_count")]
    assert rounds[0].value >= doc["round"]["number"] - 1
    assert "process_resident_memory_bytes" in fam


def test_netdiag_mesh_by_name_and_by_url(lab):
    out = lab.netdiag("mesh", "--port", str(lab.port))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("3 agents (3 answered), 9 pairs: 9 up, 0 down")
    assert re.match(r"\s+node1\s+node2\s+node3$", lines[2])
    assert max(len(x) for x in lines) <= 100
    out = lab.netdiag("mesh", "--agents", lab.url(2, ""), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    validate(doc, "mesh")
    assert list(doc)[:5] == list(ENVELOPE_KEYS) and doc["via"] == f"http://{NET}2:{lab.port}"
    assert doc["summary"]["up"] == 9 and doc["error"] is None


def test_netdiag_mesh_usage_and_no_agents(lab):
    assert lab.netdiag("mesh", "--agents", "https://x").returncode == 2
    assert lab.netdiag("mesh", "--bogus").returncode == 2
    out = lab.netdiag("mesh", "--agents", "tasks.nothing-here", "--timeout", "0.5")
    assert out.returncode == 1 and "did not resolve" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = lab.netdiag("mesh", "--agents", f"http://{NET}77:{lab.port}", "--deadline", "2")
    assert out.returncode == 1 and "refused" in out.stderr


def test_page_in_headless_chromium(lab, tmp_path):
    out = chromium_dom(lab.url(1, "/"), tmp_path / "profile", settle_ms=4000)
    dom = out.stdout
    assert "<table" in dom, out.stderr[-2000:]
    cells = re.findall(
        r'<td class="cell[^"]*" data-source="([^"]+)" data-target="([^"]+)"'
        r'[^>]*data-state="(\w+)"',
        dom,
    )
    assert len(cells) == 9 and {s for *_, s in cells} == {"up"}
    assert re.search(r'data-updates="[1-9]', dom), "the page's script refreshed the matrix"
    for asset in ("/static/mesh.css", "/static/mesh.js"):
        status, body = http_get(lab.url(1, asset))
        assert status == 200 and body
    assert not re.search(r'(src|href)="(https?:)?//', dom)


def test_server_is_read_only_and_bounded(lab):
    status, _ = http_get(lab.url(1, "/nope"))
    assert status == 404
    with socket.create_connection((f"{NET}1", lab.port), timeout=5) as s:
        s.sendall(b"POST /ping HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        assert s.recv(64).split()[1] in (b"501", b"405", b"413")
    with socket.create_connection((f"{NET}1", lab.port), timeout=5) as s:
        s.sendall(b"GET /ping HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello")
        assert s.recv(64).split()[1] == b"413"
    # 16 handlers at most: idle connections beyond that get a 503 at once, and /ping still
    # answers once they go. The lab's other agents poll node1 too, so which 4 of the 20 are
    # refused depends on when their requests hold a slot: count the answers, not the positions.
    idle = [socket.create_connection((f"{NET}1", lab.port), timeout=5) for _ in range(20)]
    try:
        ready: list[socket.socket] = []
        until = time.monotonic() + 4  # a held slot is released after SOCKET_TIMEOUT (5 s)
        while len(ready) < 4 and time.monotonic() < until:
            time.sleep(0.1)
            ready = select.select(idle, [], [], 0)[0]
        answers = [s.recv(64) for s in ready]
        assert len(answers) >= 4
        assert all(a.startswith(b"HTTP/1.0 503") for a in answers), answers
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: http_get(lab.url(1, "/ping"))[0] == 200, 10, "/ping after the flood")


def test_killed_agent_goes_stale_then_unknown_and_its_series_go():
    with LoopbackMesh(3, interval=0.6, timeout=0.3) as lab:
        # node1 must have seen node3 answer: only a peer that answered is kept as stale (a
        # slow start under load let node3 die before it ever answered, and it was dropped)
        wait_for(
            lambda: [p["state"] for p in lab.local(1)["peers"]] == ["up"] * 3, 20, "3 peers up"
        )
        lab.kill(3)
        lab.set_tasks([1, 2])  # Swarm removes an ended task from tasks.<service>
        gone = f"{NET}3"

        def state_of_3():
            return {p["address"]: p for p in lab.local(1)["peers"]}.get(gone)

        seen = wait_for(lambda: (p := state_of_3()) and p["state"] == "stale" and p, 20, "stale")
        assert seen["in_dns"] is False
        assert gone in lab.get(1, "/metrics").decode()
        wait_for(lambda: state_of_3() is None, 20, "node3 dropped from node1's round")
        text = lab.get(1, "/metrics").decode()
        assert gone not in text and 'target_node="node3"' not in text

        def column_of_3(doc):
            return {c["state"] for r in doc["rows"] for c in r["cells"] if c["target"] == gone}

        # node2's rounds are not in step with node1's: wait until it dropped node3 too.
        doc = wait_for(
            lambda: (d := lab.mesh(1)) and column_of_3(d) == {"unknown"} and d,
            10,
            "node3's column unknown",
        )
        assert [n["label"] for n in doc["nodes"]] == ["node1", "node2", "node3"]
        row3 = next(r for r in doc["rows"] if r["source"] == gone)
        assert {c["state"] for c in row3["cells"]} == {"unknown"}
        assert doc["ok"] is False
        validate(doc, "mesh")
        assert "dropped peer node3" in lab.log(1)


def test_a_silent_peer_delays_no_one():
    """One 'agent' in DNS accepts and never answers: it times out, the others stay fast."""
    with LoopbackMesh(2, interval=1.0, timeout=0.8) as lab:
        silent = socket.socket()
        silent.bind((f"{NET}9", lab.port))
        silent.listen(8)
        try:
            lab.set_tasks([1, 2])
            lab.records[("tasks.netdiag.", "A")].append(f"{NET}9")

            def round_with_silent():
                doc = lab.local(1)
                peers = {p["address"]: p for p in doc["peers"]}
                return doc if f"{NET}9" in peers else None

            doc = wait_for(round_with_silent, 20, "a round with the silent peer")
            peers = {p["address"]: p for p in doc["peers"]}
            bad = peers[f"{NET}9"]
            assert bad["state"] == "down" and bad["status"] == "timeout"
            assert bad["step"] == "response" and bad["udp"]["loss"] == 1.0
            for good in (f"{NET}1", f"{NET}2"):
                # measured in the same round as the 0.8 s timeout of the silent one
                assert peers[good]["state"] == "up" and peers[good]["rtt_ms"] < 400
            # The round ends with the silent peer's timeout, not a multiple of it.
            assert doc["round"]["duration_ms"] < 0.8 * 1000 * 2
        finally:
            silent.close()


def test_secrets_never_shown(mariadb):
    from tests.support.servers import TODO_PASSWORD, TODO_USER

    tmp = Path(tempfile.mkdtemp(prefix="ndmesh-secret-"))
    try:
        (tmp / "good").write_text(TODO_PASSWORD + "\n")
        wrong = "Wr0ng-" + "s3cret-" * 3
        (tmp / "bad").write_text(wrong)
        target = f"mysql://{mariadb.host}:{mariadb.port}"

        def env(i):
            return {
                "MYSQL_USER": TODO_USER,
                "MYSQL_PASSWORD_FILE": str(tmp / ("good" if i == 1 else "bad")),
            }

        with LoopbackMesh(
            2, interval=1.0, timeout=1.0, args=lambda i: ["--target", target], env=env
        ) as lab:
            doc = wait_for(
                lambda: (
                    (d := lab.mesh(1))
                    and all(c["state"] != "unknown" for t in d["targets"] for c in t["cells"])
                    and d
                ),
                30,
                "both agents' target results",
            )
            states = [c["state"] for c in doc["targets"][0]["cells"]]
            assert states == ["up", "down"]
            assert doc["targets"][0]["cells"][1]["status"] == "rejected"
            texts = [
                json.dumps(doc),
                json.dumps(lab.local(2)),
                lab.get(1, "/metrics").decode(),
                lab.get(2, "/metrics").decode(),
                lab.get(1, "/").decode(),
                lab.netdiag("mesh", "--port", str(lab.port)).stdout,
                lab.log(1) + lab.log(2),
            ]
            for proc in lab.procs.values():
                texts.append(
                    Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
                )
                texts.append(
                    Path(f"/proc/{proc.pid}/environ")
                    .read_bytes()
                    .decode(errors="replace")
                    .replace(str(tmp), "")
                )
            for text in texts:
                assert TODO_PASSWORD not in text and wrong not in text
            out = lab.netdiag("mesh", "--port", str(lab.port))
            assert out.returncode == 1 and "reachable from node1 but not from node2" in out.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_agent_stops_on_sigterm_promptly():
    with LoopbackMesh(1, interval=5.0) as lab:
        proc = lab.procs[1]
        start = time.monotonic()
        proc.terminate()
        assert proc.wait(10) == 0
        assert time.monotonic() - start < 8  # the round thread waits on an event, not a sleep
        lab.procs.clear()


def test_agent_once_prints_one_round(lab):
    # Another port: the running agents keep theirs. Its peers are the lab's agents.
    from tests.support.mesh_lab import free_common_port

    port = free_common_port([f"{NET}1"])
    out = lab.netdiag("agent", "--once", "--json", "--listen", f"{NET}1:{port}", "--node", "probe1")
    doc = json.loads(out.stdout)
    validate(doc, "agent")
    assert doc["command"] == "agent" and doc["agent"]["node"] == "probe1"
    # The lab's agents listen on another port: they refuse, only this one answers itself.
    statuses = {p["address"]: p["status"] for p in doc["peers"]}
    assert statuses == {f"{NET}1": "ok", f"{NET}2": "refused", f"{NET}3": "refused"}
    assert out.returncode == 1
    assert doc["round"]["number"] == 1


def test_bad_listen_and_port_in_use(lab):
    out = lab.netdiag("agent", "--listen", "nowhere:1")
    assert out.returncode == 2 and "IP address" in out.stderr
    out = lab.netdiag("agent", "--listen", f"{NET}1:{lab.port}")
    assert out.returncode == 1 and "cannot listen" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
