"""The multi-node Swarm harness itself (tests/support/swarm.py), proven without netdiag's agent.

A global service of plain HTTP servers (python -m http.server in the netdiag image) runs one task
per node on an attachable overlay; checks run inside those task containers (docker exec: a new
container costs 10-20 s of vfs copying) and inside the nodes' namespaces.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support.swarm import BIG_FILE, Swarm, serve_files_command

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.netns]

NET = "harness-ov"
SERVICE = "hweb"
PUBLISHED = 18099
BIG = BIG_FILE
SERVE = serve_files_command(8099)


@pytest.fixture(scope="module")
def web(swarm: Swarm) -> Iterator[dict[str, str]]:
    """The global HTTP service; yields {node hostname: task address on the overlay}."""
    swarm.create_overlay(NET)
    try:
        swarm.manager_docker(
            "service", "create", "--detach", "--no-resolve-image",
            "--name", SERVICE, "--mode", "global", "--network", NET,
            "--env", "NODE={{.Node.Hostname}}",
            "--publish", f"mode=host,target=8099,published={PUBLISHED}",
            "--stop-grace-period", "1s",  # http.server as PID 1 ignores SIGTERM
            "--entrypoint", "sh", swarm.image, "-c", SERVE,
        )  # fmt: skip
        swarm.wait_tasks(SERVICE, 3, timeout=180)
        addrs = {}
        for n in swarm.nodes:
            addrs[n.hostname] = swarm.overlay_ip(n, swarm.container_of(SERVICE, n), NET)
        yield addrs
    finally:
        swarm.rm_service(SERVICE)
        swarm.rm_network(NET)


def fetch(swarm: Swarm, node: int, *urls: str, timeout: float = 5) -> list[dict]:
    """GET each URL from the HTTP task container on ``node``."""
    return swarm.fetch(node, swarm.container_of(SERVICE, node), *urls, timeout=timeout)


def ping_df(swarm: Swarm, addr: str, total: int) -> subprocess.CompletedProcess:
    """Host ping with DF set, ``total`` bytes of IP packet, from node1's task's namespace."""
    ctr = swarm.container_of(SERVICE, 1)
    argv = ["ping", "-n", "-c", "2", "-W", "1", "-M", "do", "-s", str(total - 28), addr]
    return swarm.exec_in_container_ns(1, ctr, argv, check=False, timeout=30)


def url(addr: str, path: str) -> str:
    return f"http://{addr}:8099/{path}"


def test_three_nodes_are_ready_with_their_own_names(swarm: Swarm) -> None:
    assert swarm.ready_nodes() == {"node1", "node2", "node3"}
    roles = swarm.manager_docker(
        "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"
    ).stdout.split("\n")
    assert sorted(r.strip() for r in roles if r.strip()) == ["node1 Leader", "node2", "node3"]
    for n in swarm.nodes:  # every daemon has the image, loaded once this run
        assert swarm.docker(n, "image", "inspect", swarm.image).returncode == 0


def test_global_service_runs_one_task_per_node(swarm: Swarm, web: dict[str, str]) -> None:
    assert sorted(t["Node"] for t in swarm.tasks(SERVICE)) == ["node1", "node2", "node3"]
    assert len(set(web.values())) == 3


def test_tasks_name_gives_every_task_and_http_crosses_nodes(
    swarm: Swarm, web: dict[str, str]
) -> None:
    ctr = swarm.container_of(SERVICE, 1)
    # netdiag dig inside the container asks the node's embedded DNS (127.0.0.11)
    r = swarm.docker(1, "exec", ctr, "netdiag", "dig", "+short", f"tasks.{SERVICE}")
    assert sorted(r.stdout.split()) == sorted(web.values())
    results = fetch(swarm, 1, *(url(a, "node") for a in web.values()))
    assert all(x["ok"] for x in results), results
    assert {x["text"].strip() for x in results} == {"node1", "node2", "node3"}


def test_published_port_answers_in_each_node_namespace(swarm: Swarm, web: dict[str, str]) -> None:
    for n in swarm.nodes:
        body = swarm.http_get(n, f"http://127.0.0.1:{PUBLISHED}/node", timeout=5)
        assert body.decode().strip() == n.hostname


def test_cut_vxlan_isolates_one_node_over_the_overlay_only(
    swarm: Swarm, web: dict[str, str]
) -> None:
    with swarm.cut_vxlan(3):
        from1 = fetch(swarm, 1, url(web["node2"], "node"), url(web["node3"], "node"), timeout=3)
        from3 = fetch(swarm, 3, url(web["node3"], "node"), url(web["node1"], "node"), timeout=3)
        assert swarm.ready_nodes() == {"node1", "node2", "node3"}  # control plane untouched
    assert [x["ok"] for x in from1] == [True, False], from1
    assert [x["ok"] for x in from3] == [True, False], from3  # node3 still reaches itself
    healed = fetch(swarm, 1, url(web["node3"], "node"), timeout=5)
    assert healed[0]["ok"], healed


def test_mtu_black_hole_stalls_large_tcp_while_small_requests_pass(
    swarm: Swarm, web: dict[str, str]
) -> None:
    big, small = url(web["node1"], "big"), url(web["node1"], "node")
    before = fetch(swarm, 3, big, small)
    assert [x["ok"] for x in before] == [True, True] and before[0]["len"] == BIG, before
    limit = swarm.black_hole_limit(1400)
    with swarm.mtu_black_hole(3, mtu=1400):
        during = fetch(swarm, 3, small, big, timeout=8)
        # DF pings from node1's task to node3's: up to the limit pass, above it they vanish
        # with no ICMP error (ping would say "message too long" if one came back)
        fits, too_big = (ping_df(swarm, web["node3"], size) for size in (limit, limit + 1))
        # the other direction: node3's outer packets exceed its own MTU and are fragmented by
        # node3 (Docker's VXLAN does not set DF), so a download from node3's task still works
        reverse = fetch(swarm, 1, url(web["node3"], "big"), timeout=8)
        assert swarm.ready_nodes() == {"node1", "node2", "node3"}
    assert during[0]["ok"] and during[0]["text"].strip() == "node1", during
    assert not during[1]["ok"] and "timed out" in during[1]["error"], during
    assert reverse[0]["ok"] and reverse[0]["len"] == BIG, reverse
    assert fits.returncode == 0, fits.stdout
    assert too_big.returncode == 1 and " 0 received" in too_big.stdout, too_big.stdout
    assert "too long" not in too_big.stdout + too_big.stderr
    after = fetch(swarm, 3, big)
    assert after[0]["ok"] and after[0]["len"] == BIG, after
