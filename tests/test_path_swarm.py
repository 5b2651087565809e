"""netdiag path, doctor's mtu step and self --mtu across a real multi-node Swarm's overlay.

The session's Swarm (tests/support/swarm.py: three dockerd hosts in namespaces, one overlay
over a lab bridge) runs, on an attachable overlay of this module's own, a global service of
small HTTP servers in the netdiag image (one task per node) and one "database" task on node3
(an HTTP server too, ``--endpoint-mode dnsrr`` so that its name is its task's address). netdiag
runs inside node1's task with ``docker exec``: as the image's own user (uid 10001, no NET_RAW:
the unprivileged way) and with ``--user 0`` (root, Docker's default NET_RAW: raw sockets).

- Across the overlay the path MTU is the overlay's 1450 (VXLAN takes 50 of the underlay's
  1500): netdiag path agrees with tracepath run in the same container's namespace, doctor's
  mtu step is one PASS line, self --mtu shows the overlay interface beside the gateway's path.
- ``swarm.mtu_black_hole(3)`` gives node3's underlay interface MTU 1400 while the rest of the
  segment stays 1500 (offloads off): overlay packets to node3 above 1354 bytes vanish with no
  ICMP. A real 4 MB transfer towards node3 stalls while a short request passes, and doctor,
  from node1's task, fails at its mtu step naming the black hole, its size and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.schemas import netdiag_json
from tests.support.swarm import Swarm, serve_files_command

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.netns]

NET = "ndpath-ov"
WEB = "ndpath-web"
DB = "ndpath-db"
PORT = 8099
SERVE = serve_files_command(PORT)
OVERLAY_MTU = 1450
PRIVILEGE = pytest.mark.parametrize("net_raw", [True, False], ids=["raw", "no-net-raw"])
METHOD = {True: "raw", False: "unprivileged"}


def _service(swarm: Swarm, name: str, *extra: str) -> None:
    swarm.manager_docker(
        "service", "create", "--detach", "--no-resolve-image", "--name", name,
        "--network", NET, "--env", "NODE={{.Node.Hostname}}", "--stop-grace-period", "1s",
        *extra, "--entrypoint", "sh", swarm.image, "-c", SERVE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def overlay(swarm: Swarm) -> Iterator[dict[str, str]]:
    """{node1, node2, node3: the web task's overlay address, db: the database task's}."""
    swarm.create_overlay(NET)
    try:
        _service(swarm, WEB, "--mode", "global")
        _service(swarm, DB, "--endpoint-mode", "dnsrr", "--constraint", "node.hostname==node3")
        swarm.wait_tasks(WEB, 3, timeout=180)
        swarm.wait_tasks(DB, 1, timeout=180)
        addrs = {
            n.hostname: swarm.overlay_ip(n, swarm.container_of(WEB, n), NET) for n in swarm.nodes
        }
        addrs["db"] = swarm.overlay_ip(3, swarm.container_of(DB, 3), NET)
        yield addrs
    finally:
        swarm.rm_service(WEB)
        swarm.rm_service(DB)
        swarm.rm_network(NET)


def netdiag_in(swarm: Swarm, node: int, *args: str, net_raw: bool) -> tuple[int, str]:
    """``netdiag ARGS`` inside the web task on ``node`` (root with NET_RAW, or the image's user)."""
    user = ["--user", "0"] if net_raw else []
    ctr = swarm.container_of(WEB, node)
    r = swarm.docker(node, "exec", "-e", "COLUMNS=100", *user, ctr, "netdiag", *args,
                     check=False, timeout=90)  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout


def fetch(swarm: Swarm, node: int, *urls: str, timeout: float = 5) -> list[dict]:
    return swarm.fetch(node, swarm.container_of(WEB, node), *urls, timeout=timeout)


def tracepath_pmtu(swarm: Swarm, node: int, address: str) -> int | None:
    """tracepath -n's path MTU from the web task's namespace on ``node`` (host tracepath)."""
    argv = ["timeout", "20", "tracepath", "-n", address]
    out = swarm.exec_in_container_ns(node, swarm.container_of(WEB, node), argv, check=False)
    m = re.search(r"Resume: pmtu (\d+)", out.stdout)
    return int(m.group(1)) if m else None


def mtu_step(doc: dict) -> dict:
    return next(s for s in doc["steps"] if s["name"] == "mtu")


@PRIVILEGE
def test_overlay_path_mtu_is_1450_as_tracepath_says(
    swarm: Swarm, overlay: dict[str, str], net_raw: bool
) -> None:
    target = overlay["node3"]
    code, out = netdiag_in(swarm, 1, "path", target, "--json", net_raw=net_raw)
    doc = netdiag_json(out, "path")
    assert code == 0 and doc["reached"] is True, out
    assert [h["address"] for h in doc["hops"]] == [target]  # an overlay is one L2 hop
    assert doc["privilege"]["method"] == METHOD[net_raw]
    m = doc["mtu"]
    assert (m["status"], m["pmtu"], m["interface_mtu"]) == ("ok", OVERLAY_MTU, OVERLAY_MTU), m
    assert tracepath_pmtu(swarm, 1, target) == OVERLAY_MTU


@PRIVILEGE
def test_doctor_mtu_step_passes_across_the_overlay_in_one_line(
    swarm: Swarm, overlay: dict[str, str], net_raw: bool
) -> None:
    code, out = netdiag_in(swarm, 1, "doctor", f"tcp://{DB}:{PORT}", "--json", net_raw=net_raw)
    doc = netdiag_json(out, "doctor")
    assert code == 0, out
    step = mtu_step(doc)
    assert step["status"] == "pass", step
    iface = step["facts"]["interface"]
    how = f"{METHOD[net_raw]} sockets"
    assert step["summary"] == f"path MTU 1450 = {iface} MTU: a full-size DF echo came back ({how})"
    assert (step["facts"]["address"], step["facts"]["probes"]) == (overlay["db"], 2)
    code, text = netdiag_in(swarm, 1, "doctor", f"tcp://{DB}:{PORT}", net_raw=net_raw)
    assert code == 0
    lines = [ln for ln in text.splitlines() if ln.split()[1:2] == ["mtu"]]
    assert lines == [f" 6 mtu          PASS  {step['summary']}"]


def test_self_mtu_in_a_task_shows_the_overlay_beside_the_gateway(
    swarm: Swarm, overlay: dict[str, str]
) -> None:
    """A task's default route leaves by docker_gwbridge (1500); the overlay has no gateway."""
    code, out = netdiag_in(swarm, 1, "self", "--mtu", "--no-dns", "--no-docker", "--json",
                           net_raw=False)  # fmt: skip
    doc = netdiag_json(out, "self")
    assert code == 0
    by_name = {i["name"]: i for i in doc["interfaces"]}
    overlay_if = next(
        n
        for n, i in by_name.items()
        if any(a["address"] == overlay["node1"] for a in i["addresses"])
    )
    assert by_name[overlay_if]["mtu"] == OVERLAY_MTU
    [gw] = doc["path_mtu"]
    assert gw["device"] != overlay_if
    assert (gw["status"], gw["pmtu"]) == ("ok", by_name[gw["device"]]["mtu"]), gw
    _, text = netdiag_in(swarm, 1, "self", "--mtu", "--no-dns", "--no-docker", net_raw=False)
    row = next(ln for ln in text.splitlines() if ln.split()[:1] == [overlay_if])
    assert row.split()[3:5] == [str(OVERLAY_MTU), "-"], row


@PRIVILEGE
def test_overlay_black_hole_found_by_doctor_from_a_container(
    swarm: Swarm, overlay: dict[str, str], net_raw: bool
) -> None:
    limit = swarm.black_hole_limit(1400)  # 1354: 1400 + 4 bytes of veth slack - 50 of VXLAN
    with swarm.mtu_black_hole(3, mtu=1400):
        if net_raw:  # the proof, once: towards node3 big transfers stall, small ones pass
            big = f"http://{overlay['node1']}:{PORT}/big"
            small = f"http://{overlay['node1']}:{PORT}/node"
            got = fetch(swarm, 3, small, big, timeout=8)
            assert got[0]["ok"] and not got[1]["ok"] and "timed out" in got[1]["error"], got
        code, out = netdiag_in(swarm, 1, "doctor", f"tcp://{DB}:{PORT}", "--json",
                               net_raw=net_raw)  # fmt: skip
        text_code, text = netdiag_in(swarm, 1, "doctor", f"tcp://{DB}:{PORT}", net_raw=net_raw)
    doc = netdiag_json(out, "doctor")
    assert code == 1 and doc["failed_step"] == "mtu", out
    steps = {s["name"]: s["status"] for s in doc["steps"]}
    assert steps["connect"] == "pass"  # small packets pass: the connection opens
    step = mtu_step(doc)
    f = step["facts"]
    assert (f["status"], f["pmtu"], f["black_hole"], f["frag_needed_seen"]) == (
        "black_hole", limit, True, False)  # fmt: skip
    assert (f["interface_mtu"], f["method"], f["address"]) == (
        OVERLAY_MTU, METHOD[net_raw], overlay["db"])  # fmt: skip
    assert step["summary"].startswith(f"MTU black hole: packets above {limit} bytes")
    assert f"com.docker.network.driver.mtu={limit}" in doc["fix"]
    assert "ICMP type 3 code 4" in doc["fix"]
    assert text_code == 1 and text.splitlines()[-1] == "result: FAIL at mtu"
    assert max(len(ln) for ln in text.splitlines()) <= 100
