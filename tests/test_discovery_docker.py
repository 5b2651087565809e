"""The one Docker layer: recorded documents, broken sockets, and a real dockerd."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netdiag.discovery import docker as d
from netdiag.discovery.container import ContainerInfo
from tests.support.docker_engine import DockerLab, docker, unique

# GET /networks/{id} and the Networks part of GET /containers/{id}/json, dockerd 20.10.24.
NETWORK_DOC = {
    "Name": "ndtest-net-probe",
    "Id": "31ddd33920b2b32c8f7e80e4aa47e971e773b630d3973f030dd28d063bdc25c5",
    "Scope": "local",
    "Driver": "bridge",
    "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "172.28.0.0/16", "Gateway": "172.28.0.1"}]},
    "Internal": True,
    "Containers": {
        "73f52dac9feda333e4f5bd3b5041d21719e50347f2a3dccfd7fd6242a6c79d11": {
            "Name": "ndtest-ctr-probe",
            "EndpointID": "3f5e0b9c949d3879ae08e725afda6197446876aace8fd845402ee5496f3d539b",
            "MacAddress": "02:42:AC:1C:00:02",
            "IPv4Address": "172.28.0.2/16",
            "IPv6Address": "",
        }
    },
}  # fmt: skip
CONTAINER_DOC = {
    "Id": "73f52dac9feda333e4f5bd3b5041d21719e50347f2a3dccfd7fd6242a6c79d11",
    "Name": "/ndtest-ctr-probe",
    "State": {"Status": "running"},
    "Config": {"Hostname": "73f52dac9fed", "Image": "netdiag-test-busybox:1"},
    "NetworkSettings": {
        "Networks": {
            "ndtest-net-probe": {
                "Aliases": ["db", "73f52dac9fed"],
                "NetworkID": NETWORK_DOC["Id"],
                "Gateway": "172.28.0.1",
                "IPAddress": "172.28.0.2",
                "IPPrefixLen": 16,
                "MacAddress": "02:42:ac:1c:00:02",
            }
        }
    },
}


def recorded_view() -> d.DockerView:
    engine = d.Engine("20.10.24", "1.41", "linux", "amd64", "unix:///var/run/docker.sock")
    return d.DockerView(
        engine.host,
        engine,
        [d.network_from_api(NETWORK_DOC)],
        [d.container_from_api(CONTAINER_DOC)],
    )


def test_network_from_api_and_its_members() -> None:
    net = d.network_from_api(NETWORK_DOC)
    assert (net.name, net.driver, net.internal) == ("ndtest-net-probe", "bridge", True)
    assert (net.subnets, net.gateways) == (["172.28.0.0/16"], ["172.28.0.1"])
    ((ctr, ep),) = recorded_view().members(net)
    assert (ctr.id, ctr.name) == (CONTAINER_DOC["Id"], "ndtest-ctr-probe")
    assert (ep.ipv4, ep.prefixlen, ep.ipv6, ep.mac) == ("172.28.0.2", 16, None, "02:42:ac:1c:00:02")
    assert ctr.names_on(net) == ["ndtest-ctr-probe", "db", "73f52dac9fed"]


def test_container_from_api_with_and_without_dns_names() -> None:
    ctr = d.container_from_api(CONTAINER_DOC)
    assert (ctr.name, ctr.hostname, ctr.state) == ("ndtest-ctr-probe", "73f52dac9fed", "running")
    (att,) = ctr.endpoints
    assert (att.network, att.ipv4, att.prefixlen, att.mac) == (
        "ndtest-net-probe", "172.28.0.2", 16, "02:42:ac:1c:00:02",
    )  # fmt: skip
    assert att.aliases == ["db", "73f52dac9fed"] and att.dns_names is None
    newer = {**CONTAINER_DOC, "NetworkSettings": {"Networks": {"n": {"DNSNames": ["web", "db"]}}}}
    assert d.container_from_api(newer).endpoints[0].dns_names == ["web", "db"]
    assert d.container_from_api({}).endpoints == []


def test_holding_prefers_mac_then_address() -> None:
    view = recorded_view()
    (ctr,) = view.containers
    assert view.holding(["10.0.0.1"], ["02:42:AC:1C:00:02"]) == ("mac", [ctr])
    assert view.holding(["172.28.0.2"], []) == ("address", [ctr])
    assert view.holding(["172.28.0.1"], ["02:42:00:00:00:01"]) == ("", [])


# --- broken and hostile sockets (peers written here) -----------------------------------------


def _connect_note(host: str, timeout: float = 0.5) -> tuple[str, bool, float]:
    """connect() in a fresh interpreter: the note, whether docker got imported, the time."""
    code = (
        "import sys, time; from netdiag.discovery import docker as d; t=time.monotonic(); "
        f"r = d.load({{'DOCKER_HOST': {host!r}}}, timeout={timeout}); "
        "e = time.monotonic() - t; "
        "print(r.note if not r else 'CONNECTED'); print('docker' in sys.modules); print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    note, imported, elapsed = out.stdout.splitlines()
    return note, imported == "True", float(elapsed)


def test_missing_socket_is_a_note_without_importing_the_sdk() -> None:
    note, imported, _ = _connect_note("unix:///nonexistent/docker.sock")
    assert note == "no Docker socket at /nonexistent/docker.sock"
    assert not imported


def test_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    path.write_text("")
    note, imported, _ = _connect_note(f"unix://{path}")
    assert note == f"{path} is not a socket" and not imported


def test_refused_socket(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening: connect() is refused
        note, _, _ = _connect_note(f"unix://{path}")
    assert note == f"connection refused by the Docker API at unix://{path}"


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A socket that accepts connections and never answers (a hung daemon)."""
    path = tmp_path / "docker.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(8)
    try:
        yield path
    finally:
        srv.close()


def test_slow_socket_times_out(silent_socket: Path) -> None:
    note, _, elapsed = _connect_note(f"unix://{silent_socket}", timeout=0.5)
    assert note == f"Docker API at unix://{silent_socket} did not answer within 0.5s"
    assert elapsed < 3  # in-process, 0.5 s asked: 2.5 s of slack for a loaded machine


def test_garbage_answer(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(8)

    def serve() -> None:
        for _ in range(4):
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 9\r\n\r\nnot json!")

    threading.Thread(target=serve, daemon=True).start()
    try:
        note, _, _ = _connect_note(f"unix://{path}")
    finally:
        srv.close()
    assert note.startswith(f"Docker API at unix://{path} ")
    assert "\n" not in note


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory under /tmp that any user may traverse (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="ndself-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_permission_denied(open_dir: Path) -> None:
    """An unprivileged user and a root-only socket: a note, not an exception."""
    path = open_dir / "docker.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)
    os.chmod(path, 0o600)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, ask, report through the pipe
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = d.load({"DOCKER_HOST": f"unix://{path}"}, timeout=0.5)
            os.write(write_end, repr(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as fh:
        got = fh.read()
    srv.close()
    expected = d.Unavailable(
        f"permission denied on the Docker socket {path} (group 0): give netdiag that group, "
        f"e.g. docker run --group-add $(stat -c %g {path}) -v {path}:{path}:ro ..."
    )
    assert got == repr(expected)


# --- a real dockerd --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.docker
def test_read_only_guard_refuses_writes(dockerd: None) -> None:
    client = d.connect(timeout=5)
    assert not isinstance(client, d.Unavailable), client
    name = unique("net")
    try:
        with pytest.raises(d.ReadOnlyViolation, match="read-only: refused POST"):
            client.request("POST", f"/networks/create?name={name}")
        assert docker("network", "inspect", name, check=False).returncode != 0
    finally:
        docker("network", "rm", name, check=False)


def evidence(
    cid: str | None = None,
    addresses: tuple[str, ...] = (),
    macs: tuple[str, ...] = (),
    hostname: str = "vm",
) -> d.LocalEvidence:
    info = ContainerInfo(cid is not None, cid, "mountinfo" if cid else None)
    return d.LocalEvidence(hostname, info, list(addresses), list(macs), [])


@pytest.mark.slow
@pytest.mark.docker
def test_real_engine_networks_and_identification(docker_lab: DockerLab) -> None:
    net = docker_lab.network()
    other = docker_lab.network()
    ctr = docker_lab.container(net, aliases=("db", "mysql"))
    stranger = docker_lab.container(other)
    fmt = f'{{{{.Id}}}} {{{{(index .NetworkSettings.Networks "{net}").MacAddress}}}}'
    cid, mac = docker("inspect", "-f", fmt, ctr).stdout.split()
    ip = docker_lab.ip(ctr, net)

    view = d.load(timeout=5)
    assert isinstance(view, d.DockerView), view
    server = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    assert view.engine.version == server

    mine = view.network(net)
    assert mine is not None and mine.internal
    assert [(c.name, e.ipv4, e.mac) for c, e in view.members(mine)] == [(ctr, ip, mac)]

    found = view.container(ctr)
    assert found is not None and found.id == cid
    (att,) = found.endpoints
    assert (att.network, att.ipv4, att.mac) == (net, ip, mac)
    assert {"db", "mysql"} <= set(att.aliases)

    by_id = d.identify_self(view, evidence(cid))
    by_mac = d.identify_self(view, evidence(None, ("198.51.100.99",), (mac.upper(),)))
    by_ip = d.identify_self(view, evidence(None, (ip,)))
    by_host = d.identify_self(view, evidence(hostname=cid[:12]))
    nobody = d.identify_self(view, evidence(None, ("198.51.100.99",), ("02:00:00:00:00:99",)))
    for ident, method in [
        (by_id, "container_id"),
        (by_mac, "mac"),
        (by_ip, "address"),
        (by_host, "hostname"),
    ]:
        assert (ident.method, ident.name, ident.networks) == (method, ctr, [net])
        assert ident.container_id == cid
    assert nobody.container is None and nobody.method is None
    assert stranger != by_mac.name
    # in one container's network namespace while running in another: the network decides
    shared = d.identify_self(view, evidence(view.container(stranger).id, (), (mac,)))  # type: ignore[union-attr]
    assert (shared.name, shared.method, shared.runner.name) == (ctr, "mac", stranger)  # type: ignore[union-attr]
    assert "network namespace of" in shared.notes[0]


def test_connect_timeout_is_bounded_overall(silent_socket: Path) -> None:
    start = time.monotonic()
    got = d.load({"DOCKER_HOST": f"unix://{silent_socket}"}, timeout=0.3)
    assert isinstance(got, d.Unavailable)
    # in-process, 0.3 s asked (connect plus the version request): 1.4 s of slack for load
    assert time.monotonic() - start < 2


def test_throwaway_is_netdiags_own_rm_container_only() -> None:
    """docker run --rm ... netdiag: throw-away; an app's --rm container we exec into: not."""
    cid = CONTAINER_DOC["Id"]
    for cmd, expected in (
        (["netdiag", "doctor", "mysql"], True),
        (["node", "src/index.js"], False),
    ):
        doc = {**CONTAINER_DOC, "HostConfig": {"AutoRemove": True},
               "Config": {**CONTAINER_DOC["Config"], "Cmd": cmd}}  # fmt: skip
        view = recorded_view()
        view.containers = [d.container_from_api(doc)]
        assert d.identify_self(view, evidence(cid)).throwaway is expected, cmd
        assert d.identify_self(view, evidence(None, (), ("02:42:ac:1c:00:02",))).throwaway is False
