"""`netdiag self` inside a real container's network namespace, against a real dockerd."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_proxy import ApiProxy
from tests.support.docker_engine import DockerLab, docker, host_python_mounts
from tests.support.schemas import netdiag_json

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ndself-") as d:
        yield Path(d)


def nsenter_self(pid: int, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run netdiag self in the container's network namespace only (python is not in busybox)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("NETDIAG_")}
    full.pop("DOCKER_HOST", None)
    full.update(PYTHONPATH=str(ROOT), **env)
    argv = ["nsenter", "-t", str(pid), "-n", sys.executable, "-m", "netdiag", "self", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=full, cwd=ROOT, timeout=60)


@pytest.fixture
def lab_container(docker_lab: DockerLab) -> dict[str, str]:
    net = docker_lab.network()
    other = docker_lab.network()
    name = docker_lab.container(net, aliases=("db",))
    docker_lab.container(other)  # a container elsewhere that must not appear
    fmt = '{{.Id}} {{(index .NetworkSettings.Networks "' + net + '").MacAddress}}'
    cid, mac = docker("inspect", "-f", fmt, name).stdout.split()
    return {
        "net": net,
        "other": other,
        "name": name,
        "id": cid,
        "mac": mac,
        "ip": docker_lab.ip(name, net),
        "pid": str(docker_lab.pid(name)),
    }


def test_inside_a_container_namespace(lab_container: dict[str, str], workdir: Path) -> None:
    c = lab_container
    resolv = workdir / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.11\noptions ndots:0\n")  # what Docker gives it
    proxy = ApiProxy(workdir / "docker.sock")
    try:
        res = nsenter_self(
            int(c["pid"]),
            "--json",
            NETDIAG_RESOLV_CONF=str(resolv),
            DOCKER_HOST=f"unix://{workdir / 'docker.sock'}",
        )
    finally:
        proxy.close()
    assert res.returncode == 0, res.stderr
    doc = netdiag_json(res.stdout)
    eth0 = next(i for i in doc["interfaces"] if i["name"] == "eth0")
    assert eth0["mac"] == c["mac"]
    assert [a["address"] for a in eth0["addresses"] if a["family"] == "ipv4"] == [c["ip"]]
    subnet = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", c["net"])
    assert doc["ipv4_subnets"] == [subnet.stdout.strip()]
    # dockerd 20.10 installs a default route via the network's gateway even on --internal
    gateway = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", c["net"])
    assert doc["default_gateways"] == [
        {"family": "ipv4", "gateway": gateway.stdout.strip(), "device": "eth0"}
    ]
    # the embedded DNS answers the PTR of our own address with name.network.
    check = doc["dns_check"]
    assert check["performed"] and check["status"] == "ok", check
    assert check["answers"] == [f"{c['name']}.{c['net']}."]
    assert doc["resolver"]["docker_embedded_dns"] is True
    # through the API: which container this is, and its networks only
    api = doc["docker"]
    assert api["reachable"] and api["note"] is None
    assert api["identified_by"] == "mac"
    assert [(x["name"], x["id"]) for x in api["containers"]] == [(c["name"], c["id"])]
    assert [n["name"] for n in api["networks"]] == [c["net"]]
    att = api["networks"][0]["attachment"]
    assert (att["ipv4"], att["mac"]) == (c["ip"], c["mac"])
    assert "db" in att["aliases"]
    assert api["networks"][0]["internal"] is True
    # read-only: every request that reached the daemon was a GET
    assert proxy.requests, "the proxy saw no request"
    assert {m for m, _ in proxy.requests} == {"GET"}, proxy.requests


def test_text_inside_a_container_namespace(lab_container: dict[str, str]) -> None:
    c = lab_container
    res = nsenter_self(int(c["pid"]), "--no-dns")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert f"  this is      {c['name']} ({c['id'][:12]}), matched by mac" in lines
    row = next(line for line in lines if line.strip().startswith(c["net"]))
    assert row.split()[:6] == [c["net"], "bridge", row.split()[2], "yes", c["ip"], c["mac"]]
    assert "db" in row.split()[6].split(",")
    assert not any(c["other"] in line for line in lines)


def test_docker_socket_missing(lab_container: dict[str, str]) -> None:
    res = nsenter_self(
        int(lab_container["pid"]), "--json", "--no-dns", DOCKER_HOST="unix:///nonexistent"
    )
    assert res.returncode == 0, res.stderr
    api = netdiag_json(res.stdout)["docker"]
    assert (api["reachable"], api["note"]) == (False, "no Docker socket at /nonexistent")
    text = nsenter_self(int(lab_container["pid"]), "--no-dns", DOCKER_HOST="unix:///nonexistent")
    assert text.returncode == 0 and text.stderr == ""
    assert (
        "  API          not reachable: no Docker socket at /nonexistent" in text.stdout.splitlines()
    )


def test_host_view_lists_daemon_networks(lab_container: dict[str, str]) -> None:
    """On the host (no container matches) the daemon's networks are listed, bridge marked local."""
    res = subprocess.run(
        [sys.executable, "-m", "netdiag", "self", "--json", "--no-dns"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    api = netdiag_json(res.stdout)["docker"]
    assert api["reachable"] and api["containers"] == [] and api["identified_by"] is None
    names = {n["name"]: n for n in api["networks"]}
    assert {lab_container["net"], lab_container["other"], "bridge"} <= set(names)
    docker0 = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True
    )
    assert names["bridge"]["local_address"] == docker0.stdout.split()[3].split("/")[0]
    lab_net = names[lab_container["net"]]
    assert lab_net["attachment"] is None
    assert lab_net["local_address"] == lab_net["gateways"][0]  # the network's bridge on the host


def run_in_container(lab: DockerLab, net: str, *args: str, socket: bool) -> tuple[str, str, str]:
    """Run netdiag self as a container's own process; returns (name, exit code, stdout)."""
    extra = host_python_mounts()
    if socket:
        extra += ["-v", "/var/run/docker.sock:/var/run/docker.sock:ro"]
    command = (sys.executable, "-m", "netdiag", "self", *args)
    name = lab.container(net, aliases=("app",), command=command, extra=tuple(extra))
    code = docker("wait", name, timeout=60).stdout.strip()
    out = docker("logs", name)
    assert out.stderr == "", out.stderr
    return name, code, out.stdout


def test_inside_a_real_container(docker_lab: DockerLab) -> None:
    """The container's own mount, cgroup and network namespaces, Docker's resolv.conf."""
    net = docker_lab.network()
    name, code, out = run_in_container(docker_lab, net, "--json", socket=True)
    assert code == "0"
    doc = netdiag_json(out)
    cid = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    assert doc["container"] == {
        "in_container": True, "id": cid, "short_id": cid[:12], "source": "mountinfo",
        "markers": doc["container"]["markers"],
    }  # fmt: skip
    assert doc["hostname"] == cid[:12]
    resolver = doc["resolver"]
    assert (resolver["path"], resolver["nameservers"], resolver["docker_embedded_dns"]) == (
        "/etc/resolv.conf", ["127.0.0.11"], True,
    )  # fmt: skip
    assert doc["dns_check"]["answers"] == [f"{name}.{net}."]
    api = doc["docker"]
    assert api["identified_by"] == "container_id"
    assert [c["name"] for c in api["containers"]] == [name]
    (network,) = api["networks"]
    assert network["name"] == net and "app" in network["attachment"]["aliases"]
    eth0 = next(i for i in doc["interfaces"] if i["name"] == "eth0")  # the container exited:
    assert network["attachment"]["ipv4"] == eth0["addresses"][0]["address"]  # compare to itself
    assert network["attachment"]["mac"] == eth0["mac"]


def test_inside_a_real_container_without_socket(docker_lab: DockerLab) -> None:
    net = docker_lab.network()
    _, code, out = run_in_container(docker_lab, net, "--no-dns", socket=False)
    assert code == "0"
    lines = out.splitlines()
    assert "  API          not reachable: no Docker socket at /var/run/docker.sock" in lines
    assert lines[1].startswith("container        in a container, id ")
