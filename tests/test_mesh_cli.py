"""agent and mesh keep the flag contract (docs/reference.md#options): usage errors with the usage
line, -q, --json through the envelope and its schema, --once --deadline, the width rule.

Quick tier: two real agents on loopback (127.0.88.x) with a DNS server of the test's own; no
packet leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import run_netdiag, usage_error
from tests.health_peers import closed_port
from tests.support.mesh_lab import NET, LoopbackMesh
from tests.support.schemas import netdiag_json
from tests.support.timing import wait_for


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["agent", "--json"], "--json goes with --once"),
        (["agent", "--deadline", "3"], "--deadline goes with --once"),
        (["agent", "--once", "--interval", "0.1"], "--interval must be at least"),
        (["agent", "--once", "--listen", "nowhere:1"], "must be an IP address"),
        (["agent", "--once", "--peers", "a" * 64], "a label of 64 bytes"),
        (["agent", "--once", "--target", "dns://x"], "resolve-only"),
        (
            ["agent", "--once", "--target", "tcp://127.0.0.1:1", "--expect-status", "200"],
            "http:// and https://",
        ),
        (["agent", "--timeout", "0"], "--timeout"),
        (["mesh", "--port", "0"], "--port"),
        (["mesh", "--agents", "https://h:8099"], "plain http://"),
        (["mesh", "--agents", "x" * 64], "a label of 64 bytes"),
        (["mesh", "--deadline", "-1"], "--deadline"),
    ],
)
def test_usage_errors_print_the_usage_line(argv: list[str], reason: str) -> None:
    out = run_netdiag(*argv, timeout=20)
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert reason in usage_error(out.stderr, argv[0])


def test_help_states_exit_codes() -> None:
    for command in ("agent", "mesh"):
        out = run_netdiag(command, "-h")
        assert out.returncode == 0 and "Exit:" in out.stdout
        assert "3 internal error" in " ".join(out.stdout.split())
        assert "TIMEOUT" not in out.stdout and "DEADLINE" not in out.stdout


@pytest.fixture(scope="module")
def lab():
    # node2 runs with -q: it logs nothing while every peer is up
    with LoopbackMesh(2, interval=0.5, timeout=1.0, args=lambda i: ["-q"] * (i == 2)) as lab:
        wait_for(lambda: lab.mesh(1)["ok"], 20, "an all-up 2x2 matrix")
        yield lab


def test_mesh_text_quiet_and_json(lab) -> None:
    port = str(lab.port)
    text = lab.netdiag("mesh", "--port", port, env={"COLUMNS": "60"})
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("2 agents (2 answered), 4 pairs: 4 up")
    assert max(len(x) for x in lines) <= 60, text.stdout
    quiet = lab.netdiag("mesh", "--port", port, "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    both = lab.netdiag("mesh", "--port", port, "-q", "--json")  # --json wins over -q
    doc = netdiag_json(both.stdout, "mesh")
    assert both.returncode == 0 and doc["ok"] is True and doc["error"] is None
    assert doc["via"] == "tasks.netdiag" and doc["summary"]["up"] == 4
    by_url = lab.netdiag("mesh", "--agents", lab.url(2, ""), "--json")
    assert netdiag_json(by_url.stdout, "mesh")["summary"]["up"] == 4


def test_mesh_with_no_agent_answering(lab) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    out = lab.netdiag("mesh", "--agents", url, "-q", "--timeout", "1", "--deadline", "2")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("netdiag mesh: http://127.0.0.1:") and "refused" in out.stderr
    doc = netdiag_json(lab.netdiag("mesh", "--agents", url, "--json").stdout, "mesh")
    assert doc["ok"] is False and doc["nodes"] == [] and "refused" in doc["error"]


@pytest.mark.slow
def test_agent_once_text_quiet_json_and_deadline(lab) -> None:
    from tests.support.mesh_lab import free_common_port

    listen = f"{NET}1:{free_common_port([f'{NET}1'])}"
    once = ["agent", "--once", "--listen", listen, "--node", "probe1", "--timeout", "0.3"]
    # the lab's agents listen on another port: they refuse, only this agent answers itself
    text = lab.netdiag(*once, env={"COLUMNS": "70"})
    assert text.returncode == 1 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert lines[0].startswith("probe1 (127.0.88.1) round 1 in ")
    assert "1 of 2 peers up; tasks.netdiag lists 2 agents" in " ".join(text.stdout.split())
    assert max(len(x) for x in lines) <= 70, text.stdout
    quiet = lab.netdiag(*once, "-q")
    assert quiet.returncode == 1
    rows = quiet.stdout.split("\n\n")[1].splitlines()[2:]  # the peers not up, no more
    assert len(rows) == 1 and f"{NET}2" in rows[0] and "down" in rows[0], quiet.stdout
    doc = netdiag_json(lab.netdiag(*once, "--json", "-q").stdout, "agent")
    assert doc["ok"] is False and {p["status"] for p in doc["peers"]} == {"ok", "refused"}
    # --deadline bounds the round: a target that never answers costs at most that
    from tests.health_peers import full_backlog

    with full_backlog() as silent:
        bounded = lab.netdiag(
            *once[:-2], "--json", "--deadline", "1.5", "--timeout", "10",
            "--target", f"tcp://127.0.0.1:{silent}",
        )  # fmt: skip
    doc = netdiag_json(bounded.stdout, "agent")
    assert doc["targets"][0]["status"] == "timeout"
    assert doc["round"]["duration_ms"] < 1500 + 1000  # the deadline, plus a loaded machine


def test_quiet_agent_logs_only_failures(lab) -> None:
    wait_for(lambda: lab.local(2)["round"]["number"] >= 3, 20, "node2's third round")
    assert "listening on" in lab.log(1) and "first round" in lab.log(1)
    # node2 (-q) may have started before node1 listened: that first round is a failure and is
    # logged; node1 coming up afterwards is not, nor is the start line
    for line in lab.log(2).splitlines():
        assert "first round, 1 of 2 peers up" in line or "-> down" in line, lab.log(2)


# --- an agent named in --agents http://NAME:PORT: netdiag's resolver, never the machine's --------


def _record_request(heads: list[bytes]):  # type: ignore[no-untyped-def]
    """A peer that notes the request head it gets (up to 4 KiB) and answers 404."""

    def behaviour(conn, stop) -> None:  # type: ignore[no-untyped-def]
        conn.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 4096:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        heads.append(head)
        conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    return behaviour


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
def test_agents_url_name_is_resolved_by_netdiag_not_the_machine() -> None:
    """In a namespace of our own whose resolv.conf names a decoy DNS server: a real agent there
    is asked through ``http://agent.test:8099``, the name answered by NETDIAG_RESOLVER's server;
    the decoy hears nothing (nor from the agent), and the request still says Host: agent.test."""
    from tests.support import hostile
    from tests.support.mesh_lab import agent_env, stop_processes
    from tests.support.netns_lab import decoy_resolver_namespace, in_netns

    loop = ["127.0.0.1"]
    records = {
        ("tasks.netdiag.", "A"): loop,
        ("netdiag.", "A"): loop,
        ("agent.test.", "A"): loop,
        ("recorder.test.", "A"): loop,
    }
    heads: list[bytes] = []
    with decoy_resolver_namespace("ndmeshdns", records) as lab:
        env = agent_env(lab.env)
        run = ["ip", "netns", "exec", lab.ns, sys.executable, "-m", "netdiag"]
        agent = ["agent", "--listen", "127.0.0.1:8099", "--interval", "0.5", "--node", "solo"]
        procs = {1: subprocess.Popen([*run, *agent], env=env, stdout=subprocess.DEVNULL)}
        recorder = hostile.hostile_peer(_record_request(heads))
        peer = in_netns(lab.ns, recorder.__enter__)
        try:

            def mesh(url: str) -> subprocess.CompletedProcess:
                argv = [*run, "mesh", "--agents", url, "--json", "--deadline", "5"]
                return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

            def all_up() -> subprocess.CompletedProcess | None:
                out = mesh("http://agent.test:8099")
                return out if out.returncode == 0 else None

            out = wait_for(all_up, 30, "the agent's 1x1 matrix through agent.test")
            gone = mesh("http://nowhere.test:8099")
            told = mesh(f"http://recorder.test:{peer.port}")
        finally:
            recorder.__exit__(None, None, None)
            stop_processes(procs)
        asked_decoy, asked_ours = list(lab.decoy.queries), list(lab.ours.queries)
    assert asked_decoy == [], asked_decoy
    doc = netdiag_json(out.stdout, "mesh")
    assert doc["ok"] is True and doc["via"] == "http://agent.test:8099", doc
    assert doc["summary"]["up"] == 1 and [n["node"] for n in doc["nodes"]] == ["solo"], doc
    assert gone.returncode == 1, gone
    assert netdiag_json(gone.stdout, "mesh")["error"].startswith("nowhere.test did not resolve")
    assert told.returncode == 1 and "HTTP 404" in netdiag_json(told.stdout, "mesh")["error"]
    assert heads and f"Host: recorder.test:{peer.port}\r\n".encode() in heads[0], heads
    for name in ("agent.test. A", "nowhere.test. A", "recorder.test. A"):
        assert name in asked_ours, asked_ours
