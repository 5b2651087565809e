"""netdiag path from inside the netdiag image, between two containers on one bridge network.

One hop (the peer itself), path MTU 1500 = eth0's MTU, the peer's name from Docker's embedded
DNS (PTR ``name.network``), with and without NET_RAW: the image's default non-root user and
root without NET_RAW probe with ping sockets and connect(); root with Docker's default
capabilities sends raw packets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.docker_engine import docker, ensure_busybox_image, ensure_dockerd
from tests.support.schemas import netdiag_json
from tests.support.tutorial import NETDIAG_IMAGE, build_images

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.docker]

USERS = {
    "non-root": (),
    "root": ("--user", "0"),
    "root-no-net-raw": ("--user", "0", "--cap-drop", "NET_RAW"),
}


@pytest.fixture(scope="module")
def bridge() -> Iterator[tuple[str, str, str]]:
    """(network, peer name, peer address): an --internal bridge, a peer serving HTTP on 8080."""
    ensure_dockerd()
    build_images()
    tag = uuid.uuid4().hex[:8]
    net, peer = f"ndpath-net-{tag}", f"ndpath-peer-{tag}"
    try:
        docker("network", "create", "--internal", net)
        docker("run", "-d", "--name", peer, "--network", net, ensure_busybox_image(),
               "httpd", "-f", "-p", "8080")  # fmt: skip
        fmt = f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}'
        yield net, peer, docker("inspect", "-f", fmt, peer).stdout.strip()
    finally:
        docker("rm", "-f", peer, check=False)
        docker("network", "rm", net, check=False)


def path(net: str, user: str, *args: str) -> tuple[int, dict]:
    name = f"ndpath-run-{uuid.uuid4().hex[:8]}"
    try:
        r = docker(
            "run", "--rm", "--name", name, "--network", net, *USERS[user], NETDIAG_IMAGE,
            "path", *args, "--json", check=False, timeout=120,
        )  # fmt: skip
    finally:
        docker("rm", "-f", name, check=False)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, netdiag_json(r.stdout, "path")


@pytest.mark.parametrize("user", list(USERS))
def test_one_hop_pmtu_1500_from_the_image(bridge: tuple[str, str, str], user: str) -> None:
    net, peer, peer_ip = bridge
    code, doc = path(net, user, peer)
    assert code == 0 and doc["ok"] is True, doc
    assert doc["privilege"]["method"] == ("raw" if user == "root" else "unprivileged")
    assert doc["proto"] == "icmp"  # Docker's ping_group_range lets non-root use ping sockets
    [hop] = doc["hops"]
    assert (hop["address"], hop["target"], hop["loss"]) == (peer_ip, True, 0.0)
    assert hop["name"] == f"{peer}.{net}"
    m = doc["mtu"]
    assert (m["status"], m["pmtu"], m["interface"], m["interface_mtu"]) == (
        "ok",
        1500,
        "eth0",
        1500,
    )
    assert m["probes"] == 1 and not m["black_hole"]


@pytest.mark.parametrize("user", list(USERS))
def test_tcp_to_the_peer_port_from_the_image(bridge: tuple[str, str, str], user: str) -> None:
    net, peer, peer_ip = bridge
    code, doc = path(net, user, f"{peer}:8080")
    assert code == 0, doc
    assert (doc["proto"], doc["port"], doc["tcp_state"]) == ("tcp", 8080, "open")
    assert [h["address"] for h in doc["hops"]] == [peer_ip]
    assert doc["mtu"]["pmtu"] == 1500
    gave_up = " ".join(doc["privilege"]["gave_up"])
    if user == "root":
        assert doc["mtu"]["protocol"] == "tcp" and not gave_up
    else:
        assert "connect()" in gave_up and doc["mtu"]["protocol"] == "icmp"
    code, doc = path(net, user, peer, "--proto", "tcp", "--port", "8081")
    assert code == 0 and doc["tcp_state"] == "closed"
