"""netdiag scan against a real dockerd, run inside a test container's network namespace.

``nsenter -t PID -n`` puts the host's python in the container's network namespace; the
resolver is pointed at 127.0.0.11 there (Docker's embedded DNS), so no query leaves the lab.
Networks are --internal; everything is named ndtest-... and removed by the fixture.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_netdiag, usage_error
from tests.support.docker_engine import DockerLab, docker
from tests.support.schemas import netdiag_json

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="nsenter needs root"),
]


def low_block(subnet: str) -> str:
    """The lowest /24 of a Docker network, where its addresses are handed out."""
    return f"{ipaddress.ip_network(subnet).network_address}/24"


def scan_from(
    pid: int, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    cmd = ["nsenter", "-t", str(pid), "-n", *prefix, sys.executable, "-m", "netdiag", "scan"]
    full_env = {**os.environ, "NETDIAG_RESOLVER": "127.0.0.11", **(env or {})}
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=full_env
    )


@pytest.fixture
def todo(docker_lab: DockerLab) -> dict:
    """An internal network like the tutorial's, with a mistake: two containers hold `mysql`."""
    lab = docker_lab
    net = lab.network(internal=True)
    other = lab.network(internal=True)
    web = lab.container(
        net, aliases=("web", "app"), command=("httpd", "-f", "-p", "80"), extra=("--expose", "80")
    )
    db1 = lab.container(net, aliases=("mysql",), command=("httpd", "-f", "-p", "3306"))
    db2 = lab.container(net, aliases=("mysql",), command=("httpd", "-f", "-p", "3306"))
    stopped = lab.container(net, aliases=("old",))
    docker("stop", "-t", "0", stopped)
    outsider = lab.container(other, aliases=("hidden",))
    scanner = lab.container(net)
    subnet = docker(
        "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", net
    ).stdout.strip()
    return {
        "net": net,
        "subnet": subnet,
        "web": web,
        "db1": db1,
        "db2": db2,
        "stopped": stopped,
        "outsider": outsider,
        "outsider_ip": lab.ip(outsider, other),
        "scanner": scanner,
        "pid": lab.pid(scanner),
        "ips": {c: lab.ip(c, net) for c in (web, db1, db2, scanner)},
    }


def test_scan_with_docker_api_from_inside_container(todo: dict) -> None:
    proc = scan_from(todo["pid"], "--json")
    assert "Traceback" not in proc.stderr
    doc = netdiag_json(proc.stdout)
    assert doc["docker"]["used"] is True
    assert [n["name"] for n in doc["networks"]] == [todo["net"]]  # only ours, not `other`
    net = doc["networks"][0]
    assert net["internal"] is True and "docker" in net["source"]
    assert todo["ips"][todo["scanner"]] in net["self_addresses"]
    by_name = {p["container"]: p for p in net["peers"] if p["container"]}
    assert todo["outsider"] not in by_name
    assert all(p["ip"] != todo["outsider_ip"] for p in net["peers"])
    assert todo["scanner"] not in by_name

    web = by_name[todo["web"]]
    assert web["ip"] == todo["ips"][todo["web"]] and web["mac"]
    assert {"web", "app", todo["web"]} <= set(web["names"])
    assert web["exposed_ports"] == [80]
    assert web["reachable"] is True and web["status"] == "ok"
    assert [p["port"] for p in web["ports"] if p["state"] == "open"] == [80]
    http = next(p for p in web["ports"] if p["port"] == 80)
    assert http["protocol"] == "http" and http["facts"]["status_code"] in (200, 404), http
    checks = {c["name"]: c for c in web["dns"]}
    assert checks["web"]["resolves_here"] and not checks["web"]["shared"]

    for db in ("db1", "db2"):
        peer = by_name[todo[db]]
        mysql = next(c for c in peer["dns"] if c["name"] == "mysql")
        assert mysql["shared"] is True
        assert sorted(mysql["addresses"]) == sorted(
            [todo["ips"][todo["db1"]], todo["ips"][todo["db2"]]]
        )
        assert any("held by several containers" in n for n in peer["notes"])
        port = next(p for p in peer["ports"] if p["port"] == 3306)
        # something answers 3306, but it is no MySQL (busybox httpd): scan names what it is
        assert port["state"] == "open" and port["protocol"] == "http", port
        assert port["status"] == "protocol_mismatch", port
        assert port["detail"].startswith("3306 speaks HTTP/1."), port
        assert port["detail"].endswith(", not MySQL"), port

    old = by_name[todo["stopped"]]
    assert old["state"] == "exited" and old["ip"] is None and old["reachable"] is None
    assert doc["summary"]["stopped"] == 1
    # every running container answered; the exit code follows every discovered peer
    unreachable = [p for p in net["peers"] if p["reachable"] is False]
    assert proc.returncode == (1 if unreachable else 0), unreachable


def test_scan_table_names_the_shared_alias(todo: dict) -> None:
    proc = scan_from(todo["pid"], "--ports", "80,3306")
    assert "Traceback" not in proc.stderr
    assert f"network {todo['net']}" in proc.stdout
    assert "held by several containers" in proc.stdout
    assert "stopped (exited)" in proc.stdout


def test_scan_docker_socket_missing_notes_and_sweeps(todo: dict) -> None:
    block = low_block(todo["subnet"])  # the low /24, where Docker assigns
    proc = scan_from(
        todo["pid"], "--subnet", block, "--json", env={"DOCKER_HOST": "unix:///nonexistent"}
    )
    doc = netdiag_json(proc.stdout)
    assert doc["docker"]["used"] is False and "no Docker socket" in doc["docker"]["note"]
    ips = {p["ip"]: p for n in doc["networks"] for p in n["peers"]}
    for c in (todo["web"], todo["db1"], todo["db2"]):
        peer = ips[todo["ips"][c]]
        # the embedded DNS names them by PTR: name.network
        assert f"{c}.{todo['net']}" in peer["names"], peer
        assert peer["reachable"] is True
    assert todo["outsider_ip"] not in ips or todo["outsider_ip"] in todo["ips"].values()


def test_scan_docker_socket_permission_denied_is_one_line(todo: dict) -> None:
    """A socket this process may not open (mode 000, CAP_DAC_OVERRIDE dropped) -> a note."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "docker.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(1)
        os.chmod(path, 0)
        try:
            block = low_block(todo["subnet"])
            drop = "-dac_override,-dac_read_search"
            proc = scan_from(
                todo["pid"],
                "--subnet",
                block,
                env={"DOCKER_HOST": f"unix://{path}"},
                prefix=("setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}"),
            )
        finally:
            server.close()
    notes = [ln for ln in proc.stderr.splitlines() if "Docker API" in ln]
    assert len(notes) == 1 and "permission denied" in notes[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert todo["ips"][todo["web"]] in proc.stdout  # the scan went on without the API


def test_scan_network_option_needs_api(todo: dict) -> None:
    proc = scan_from(
        todo["pid"], "--network", todo["net"], env={"DOCKER_HOST": "unix:///nonexistent"}
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "--subnet" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_second_sweep_still_reaches_everyone(todo: dict) -> None:
    """ARP requests carry this namespace's own MAC (not /sys's, which nsenter leaves as the
    host's): a wrong one would poison the peers' caches and the next scan would see timeouts."""
    block = low_block(todo["subnet"])
    for _ in range(2):
        proc = scan_from(todo["pid"], "--no-docker", "--subnet", block, "--json")
        peers = {p["ip"]: p for n in netdiag_json(proc.stdout)["networks"] for p in n["peers"]}
        for c in (todo["web"], todo["db1"], todo["db2"]):
            assert peers[todo["ips"][c]]["reachable"] is True, peers[todo["ips"][c]]


SWEEP_SNIPPET = """
import json, sys
from netdiag.discovery.attached import attached, for_subnet
from netdiag.discovery.sweep import SweepPlan, sweep
subnet = sys.argv[1]
link = for_subnet(subnet, attached())
plan = SweepPlan(subnet, link.interface, link.address, stop_on_gap=True, skip=frozenset([link.address]))
print(json.dumps({**sweep(plan).to_dict(), "ips": sorted(sweep(plan).alive)}))
"""


def test_sweep_of_a_docker_network_stops_after_the_used_low_end(todo: dict) -> None:
    """Docker's default pools give /16 (or /20) networks; the sweep covers the low end only."""
    cmd = ["nsenter", "-t", str(todo["pid"]), "-n", sys.executable, "-c", SWEEP_SNIPPET]
    proc = subprocess.run(
        [*cmd, todo["subnet"]], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    result = json.loads(proc.stdout)
    # in-process: the low end of a /16 (512 addresses) in seconds, not the minutes a whole /16
    # would take; 10 s is generous slack for a loaded machine
    assert result["elapsed_ms"] < 10000, result
    assert result["methods"] == ["arp"]
    for c in (todo["web"], todo["db1"], todo["db2"]):
        assert todo["ips"][c] in result["ips"]
    if result["total"] > 512:
        assert result["complete"] is False and result["swept"] == 512
        assert "empty block" in " ".join(result["notes"])


def test_scan_network_from_the_host(docker_lab: DockerLab) -> None:
    """On the host: --network picks the network; the sweep runs on its bridge. Names are the
    API's and are not checked (the resolver is a dead loopback port all the same)."""
    net = docker_lab.network(internal=True)
    other = docker_lab.network(internal=True)
    web = docker_lab.container(net, aliases=("web",), command=("httpd", "-f", "-p", "80"))
    docker_lab.container(other)
    proc = run_netdiag("scan", "--network", net, "--json", env={"NETDIAG_RESOLVER": "127.0.0.1#9"})
    doc = netdiag_json(proc.stdout)
    assert [n["name"] for n in doc["networks"]] == [net]
    peers = doc["networks"][0]["peers"]
    assert [p["container"] for p in peers] == [web]
    assert peers[0]["reachable"] is True and peers[0]["ip"] == docker_lab.ip(web, net)
    assert any(p["port"] == 80 and p["state"] == "open" for p in peers[0]["ports"])
    assert doc["networks"][0]["dns_checked"] is False
    assert web in peers[0]["names"] and "web" in peers[0]["names"] and peers[0]["dns"] == []
    assert any("resolve only inside the network" in n for n in doc["networks"][0]["notes"])
    assert proc.returncode == 0


def test_network_and_subnet_that_disagree_are_usage_errors(docker_lab: DockerLab) -> None:
    """Refused before any packet: a --subnet outside the --network, a misspelt --network."""
    net = docker_lab.network(internal=True, subnet="10.213.96.0/24")
    outside = run_netdiag("scan", "--network", net, "--subnet", "10.213.97.0/24")
    assert outside.returncode == 2 and outside.stdout == ""
    assert "is not in --network" in usage_error(outside.stderr, "scan")
    assert "10.213.96.0/24" in outside.stderr
    typo = run_netdiag("scan", "--network", net[:-1] + "x")
    assert typo.returncode == 2 and f"did you mean {net}?" in usage_error(typo.stderr, "scan")


def test_scan_flags_a_listed_container_that_does_not_answer(docker_lab: DockerLab) -> None:
    """Docker lists it with an address, but its link is down: unreachable, exit 1."""
    net = docker_lab.network(internal=True)
    dead = docker_lab.container(
        net,
        command=("sh", "-c", "ip link set eth0 down && sleep 3600"),
        extra=("--cap-add", "NET_ADMIN"),
    )
    scanner = docker_lab.container(net)
    proc = scan_from(docker_lab.pid(scanner), "--json", "--ports", "80")
    doc = netdiag_json(proc.stdout)
    peer = next(p for n in doc["networks"] for p in n["peers"] if p["container"] == dead)
    assert peer["reachable"] is False and peer["status"] in ("timeout", "unreachable")
    assert any("did not answer the sweep" in n for n in peer["notes"])
    assert not any("filtered" in n for n in peer["notes"])
    assert proc.returncode == 1 and doc["ok"] is False
