"""The netdiag image itself: who it runs as, what raw-socket features it has, what it leaves out.

Guards the Dockerfile: scapy is pruned to what the ARP sweep imports (an ARP sweep as root must
still work), the default user is not root, and the build-only proxy CA never reaches the image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.docker_engine import DockerLab, docker, ensure_dockerd, unique
from tests.support.schemas import netdiag_json
from tests.support.tutorial import NETDIAG_IMAGE, build_images

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.docker]


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[DockerLab, str, str]]:
    ensure_dockerd()
    build_images()
    lab = DockerLab()
    try:
        net = lab.network(internal=True)
        peer = lab.container(net, aliases=("mysql",))
        yield lab, net, lab.ip(peer, net)
    finally:
        lab.cleanup()


def scan(lab: DockerLab, net: str, *docker_args: str) -> dict:
    name = unique("img-scan")
    lab.containers.append(name)
    r = docker(
        "run", "--rm", "--name", name, "--network", net, *docker_args,
        NETDIAG_IMAGE, "scan", "--json", "--timeout", "0.5", check=False,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    return netdiag_json(r.stdout)


def methods(doc: dict) -> list[str]:
    return [m for n in doc["networks"] for s in n["sweeps"] for m in s["methods"]]


def ips(doc: dict) -> set[str]:
    return {p["ip"] for n in doc["networks"] for p in n["peers"]}


def test_runs_as_non_root_by_default() -> None:
    ensure_dockerd()
    build_images()
    r = docker("run", "--rm", "--network", "none", "--entrypoint", "id", NETDIAG_IMAGE)
    assert r.stdout.startswith("uid=10001(netdiag)")


def test_build_ca_stays_out_of_the_image() -> None:
    ensure_dockerd()
    build_images()
    find = 'find / -xdev -name .build-ca.pem -print; echo "PIP_CERT=${PIP_CERT:-}"'
    r = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", NETDIAG_IMAGE, "-c", find)
    assert r.stdout.strip() == "PIP_CERT="
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", NETDIAG_IMAGE).stdout
    assert ".build-ca.pem" not in history


def test_non_root_sweeps_without_arp_and_says_why(lab: tuple[DockerLab, str, str]) -> None:
    docker_lab, net, peer_ip = lab
    for extra in ((), ("--cap-add", "NET_RAW")):  # cap-add gives a non-root process nothing
        doc = scan(docker_lab, net, *extra)
        assert doc["capabilities"]["raw_l2"] is False
        assert any("CAP_NET_RAW" in n for n in doc["capabilities"]["notes"])
        assert "arp" not in methods(doc) and "tcp" in methods(doc)
        assert peer_ip in ips(doc)


def test_root_arp_sweep_works_with_pruned_scapy(lab: tuple[DockerLab, str, str]) -> None:
    docker_lab, net, peer_ip = lab
    doc = scan(docker_lab, net, "--user", "0")
    assert doc["capabilities"] == {"raw_l2": True, "icmp": "raw", "notes": []}
    assert methods(doc) == ["arp"]
    peer = next(p for n in doc["networks"] for p in n["peers"] if p["ip"] == peer_ip)
    assert "arp" in peer["seen_by"] and peer["mac"]


def test_socket_without_its_group_names_the_fix(lab: tuple[DockerLab, str, str]) -> None:
    """The image runs as uid 10001: a mounted socket needs its group. The note names the fix
    the README gives, and the documented read-only mount works once the group is added."""
    _, net, _ = lab
    sock = "/var/run/docker.sock"
    gid = str(os.stat(sock).st_gid)
    mount = ["-v", f"{sock}:{sock}:ro"]
    # one line per note: the note is asserted whole, not as the terminal would wrap it
    run = ["run", "--rm", "--network", net, "-e", "COLUMNS=400", *mount]
    denied = docker(*run, NETDIAG_IMAGE, "self", "--no-dns", check=False)
    assert denied.returncode == 0, denied.stderr
    line = next(ln for ln in denied.stdout.splitlines() if ln.strip().startswith("API"))
    assert f"permission denied on the Docker socket {sock} (group {gid})" in line, line
    assert f"--group-add $(stat -c %g {sock})" in line and "read/write" not in line
    granted = docker(*run, "--group-add", gid, NETDIAG_IMAGE, "self", "--no-dns", check=False)
    line = next(ln for ln in granted.stdout.splitlines() if ln.strip().startswith("API"))
    assert line.split()[1] == f"unix://{sock}:" and "engine" in line, line
