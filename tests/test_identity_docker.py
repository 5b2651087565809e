"""self, scan and doctor name the same container and networks: one ``identify_self``.

Each case runs the three commands with ``docker exec`` in ONE real container (busybox running
this very interpreter, read-only) against the real dockerd, and compares the ``identity`` each
prints with the ground truth from ``docker inspect``:

- the socket mounted: the container's id (mountinfo) and its MAC agree;
- the same container, no socket: the local evidence alone (id from mountinfo, subnets);
- the socket mounted, but only the hostname to go on: own /etc/hostname, /etc/hosts and
  /etc/resolv.conf files (no container path in mountinfo), a private cgroup namespace (no id in
  /proc/self/cgroup) and ``--network none`` (no MAC or address to match).
Networks are --internal, so no name lookup leaves the lab.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_engine import DockerLab, docker, host_python_mounts
from tests.support.schemas import netdiag_json

pytestmark = [pytest.mark.slow, pytest.mark.docker]
SOCKET = "/var/run/docker.sock"


def run_three(container: str, *env: str) -> dict[str, dict]:
    """self, scan and doctor in ``container``; their JSON documents by command."""
    flags = [x for e in env for x in ("-e", e)]
    base = ["exec", *flags, container, sys.executable, "-m", "netdiag"]
    runs = {
        "self": ["self", "--json", "--no-dns"],
        "scan": ["scan", "--json", "--ports", "80", "--timeout", "0.5", "--deadline", "20"],
        "doctor": ["doctor", "--json", "--timeout", "1", "tcp://127.0.0.1:9"],
    }
    docs = {}
    for command, args in runs.items():
        out = docker(*base, *args, check=False, timeout=90)
        assert "Traceback" not in out.stderr, out.stderr
        assert out.returncode in (0, 1), (command, out.returncode, out.stderr)
        docs[command] = netdiag_json(out.stdout, command)
    return docs


def identities(docs: dict[str, dict]) -> dict[str, dict]:
    doctor = next(s for s in docs["doctor"]["steps"] if s["name"] == "docker")
    return {
        "self": docs["self"]["identity"],
        "scan": docs["scan"]["identity"],
        "doctor": doctor["facts"]["identity"],
    }


@pytest.fixture
def app(docker_lab: DockerLab) -> dict[str, str]:
    net = docker_lab.network()
    extra = (*host_python_mounts(), "-v", f"{SOCKET}:{SOCKET}:ro")
    name = docker_lab.container(net, aliases=("app",), extra=extra)
    docker_lab.container(net, aliases=("web",), command=("httpd", "-f", "-p", "80"))
    subnet = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", net)
    cid = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    return {"net": net, "name": name, "id": cid, "subnet": subnet.stdout.strip()}


def test_same_container_and_networks_with_the_socket(app: dict[str, str]) -> None:
    docs = run_three(app["name"])
    ids = identities(docs)
    assert ids["self"] == ids["scan"] == ids["doctor"], ids
    me = ids["self"]
    assert (me["container_id"], me["name"], me["networks"]) == (
        app["id"],
        app["name"],
        [app["net"]],
    )
    assert me["method"] == "container_id" and "mac" in me["evidence"]
    assert me["subnets"] == [app["subnet"]]
    # and what each command did with it
    assert [c["name"] for c in docs["self"]["docker"]["containers"]] == [app["name"]]
    assert [n["name"] for n in docs["self"]["docker"]["networks"]] == [app["net"]]
    assert [n["name"] for n in docs["scan"]["networks"]] == [app["net"]]
    docker_step = next(s for s in docs["doctor"]["steps"] if s["name"] == "docker")
    assert docker_step["facts"]["own_container"] == app["name"]


def test_same_container_without_the_socket(app: dict[str, str]) -> None:
    docs = run_three(app["name"], "DOCKER_HOST=unix:///nonexistent.sock")
    ids = identities(docs)
    assert ids["self"] == ids["scan"] == ids["doctor"], ids
    me = ids["self"]
    assert (me["container_id"], me["name"], me["method"]) == (app["id"], None, None)
    assert me["in_container"] is True and me["evidence"] == ["mountinfo"]
    assert (me["networks"], me["subnets"]) == ([], [app["subnet"]])
    assert [n["subnets"] for n in docs["scan"]["networks"]] == [[app["subnet"]]]
    assert docs["self"]["container"]["id"] == app["id"]


@pytest.fixture
def files() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ndcd-ident-", dir="/tmp"))
    (path / "hostname").write_text("app\n")
    (path / "hosts").write_text("127.0.0.1 localhost\n")
    (path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_same_container_found_only_by_its_hostname(docker_lab: DockerLab, files: Path) -> None:
    mounts = [x for f in ("hostname", "hosts", "resolv.conf")
              for x in ("-v", f"{files / f}:/etc/{f}:ro")]  # fmt: skip
    extra = (*host_python_mounts(), "-v", f"{SOCKET}:{SOCKET}:ro", "--cgroupns", "private", *mounts)
    name = docker_lab.container("none", extra=extra)
    cid = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    docs = run_three(name)
    ids = identities(docs)
    assert ids["self"] == ids["scan"] == ids["doctor"], ids
    me = ids["self"]
    assert (me["container_id"], me["name"], me["method"]) == (cid, name, "hostname")
    assert me["networks"] == ["none"]
    assert docs["self"]["container"]["source"] == "hostname"  # nothing else gave it away
    assert docs["scan"]["networks"] == []  # network none: nothing to sweep, nothing else
