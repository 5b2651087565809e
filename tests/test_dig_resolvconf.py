"""No @server: netdiag dig and BIND dig both read /etc/resolv.conf (servers, search, ndots,
timeout, attempts). Each runs in a private mount namespace where a resolv.conf of the test's
own is bind-mounted over /etc/resolv.conf, naming only loopback servers of the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dig_masks import mask
from tests.support.fake_embedded_dns import FakeEmbeddedDNS

ROOT = Path(__file__).resolve().parent.parent
BIND_MOUNT = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEmbeddedDNS]:
    with FakeEmbeddedDNS() as srv:
        yield srv


def with_resolv_conf(resolv: Path, cmd: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETDIAG_")}
    env["HOME"] = str(home)
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", BIND_MOUNT, str(resolv), *cmd],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        env=env,
    )


def assert_same(resolv_text: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(resolv_text)
    ref = with_resolv_conf(resolv, ["dig", *args], tmp_path)
    ours = with_resolv_conf(resolv, [sys.executable, "-m", "netdiag", "dig", *args], tmp_path)
    assert mask(ours.stdout).splitlines() == mask(ref.stdout).splitlines(), (
        ref.stdout,
        ours.stdout,
    )
    assert ours.stderr.splitlines() == ref.stderr.splitlines()
    assert ours.returncode == ref.returncode
    return ref


def test_search_without_search_list(server: FakeEmbeddedDNS, tmp_path: Path) -> None:
    for args in (["nobody", "+search"], ["nobody.x", "+search"], ["mysql", "+search"]):
        assert_same(
            "nameserver 127.0.0.1\noptions ndots:1\n", ["-p", str(server.port), *args], tmp_path
        )


SEARCH = "nameserver 127.0.0.1\nsearch nowhere.test ndnet\noptions ndots:1\n"


@pytest.mark.parametrize(
    "args",
    [
        ["mysql"],
        ["app", "+search"],
        ["app", "+search", "+short"],
        ["db.ndnet", "+search"],
        ["app.ndnet.", "+search"],
        ["nobody", "+search"],
        ["nobody.x", "+search"],
        ["nobody.x.", "+search"],
        ["+ndots=0", "nobody", "+search"],
        ["nobody.x", "+search", "+nostats"],
        ["nobody.x", "+search", "db"],
        ["broken.example.test", "+search"],
        ["+ndots=3", "db.ndnet", "+search"],
        ["+search", "app", "+nosearch"],
        ["-x", "10.213.7.4"],
    ],
)
def test_search_and_servers_from_resolv_conf(
    args: list[str], server: FakeEmbeddedDNS, tmp_path: Path
) -> None:
    assert_same(SEARCH, ["-p", str(server.port), *args], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "args"),
    [
        ("options timeout:1 attempts:1\n", ["mysql"]),
        ("options timeout:1 attempts:2\n", ["mysql", "+short"]),
        ("options timeout:1\n", ["mysql", "+tries=1"]),
        ("options attempts:1\n", ["mysql", "+time=1"]),
    ],
)
def test_timeout_and_attempts_from_resolv_conf(
    options: str, args: list[str], server: FakeEmbeddedDNS, tmp_path: Path
) -> None:
    """A silent first nameserver (127.0.0.2, same port): dig's tries and timeouts per options."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.2", server.port))
        text = f"nameserver 127.0.0.2\nnameserver 127.0.0.1\n{options}"
        ref = assert_same(text, ["-p", str(server.port), *args], tmp_path)
        assert "communications error to 127.0.0.2#" in ref.stdout
