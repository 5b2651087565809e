"""netdiag dig against BIND dig inside a real container's network namespace (Docker's embedded DNS).

Both tools run on the host through ``nsenter -t PID -n``, asking 127.0.0.11 for names the test
created on an --internal network. Docker shuffles the answer order per reply, so answer
sections are compared sorted; everything else must match exactly after masking.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dig_masks import mask
from tests.support.docker_engine import DockerLab

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def sort_answers(text: str) -> list[str]:
    """Masked lines with each ANSWER SECTION's records (or +short lines) sorted."""
    lines = mask(text).splitlines()
    if not any(line.startswith(";") for line in lines):
        return sorted(lines)
    out: list[str] = []
    block: list[str] | None = None
    for line in lines:
        if block is not None:
            if line == "":
                out += [*sorted(block), line]
                block = None
            else:
                block.append(line)
            continue
        out.append(line)
        if line == ";; ANSWER SECTION:":
            block = []
    return out + sorted(block or [])


def nsenter(pid: int, *cmd: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", *cmd],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "HOME": str(home)},
    )


def compare(pid: int, args: list[str], home: Path) -> subprocess.CompletedProcess:
    ref = nsenter(pid, "dig", *args, home=home)
    ours = nsenter(pid, sys.executable, "-m", "netdiag", "dig", *args, home=home)
    assert sort_answers(ours.stdout) == sort_answers(ref.stdout), (ref.stdout, ours.stdout)
    assert ours.stderr.splitlines() == ref.stderr.splitlines()
    assert ours.returncode == ref.returncode == 0
    return ref


def test_embedded_dns_same_as_bind_dig(docker_lab: DockerLab, tmp_path: Path) -> None:
    net = docker_lab.network(internal=True)
    first = docker_lab.container(net, aliases=("mysql",))
    second = docker_lab.container(net, aliases=("mysql",))
    client = docker_lab.container(net, aliases=("web",))
    pid = docker_lab.pid(client)
    first_ip = docker_lab.ip(first, net)
    second_ip = docker_lab.ip(second, net)

    ref = compare(pid, ["@127.0.0.11", "mysql"], tmp_path)
    assert "ANSWER: 2" in ref.stdout and first_ip in ref.stdout and second_ip in ref.stdout
    assert "MSG SIZE  rcvd: 65" in ref.stdout  # Docker does not compress names

    ref = compare(pid, ["@127.0.0.11", "-x", first_ip], tmp_path)
    assert f"PTR\t{first}.{net}." in ref.stdout

    for args in (
        ["@127.0.0.11", "mysql", "+short"],
        ["@127.0.0.11", "mysql", "+noall", "+answer"],
        ["@127.0.0.11", "mysql", "+tcp"],
        ["@127.0.0.11", "mysql", "AAAA"],
        ["@127.0.0.11", "web", first, f"{second}.{net}", "+nocmd"],
        ["@127.0.0.11", "-x", second_ip, "+short"],
        ["@127.0.0.11", "mysql", "+noedns", "+norecurse"],
    ):
        compare(pid, args, tmp_path)


def test_resolv_conf_inside_container(docker_lab: DockerLab, tmp_path: Path) -> None:
    """No @server: both read the host's /etc/resolv.conf, so point netdiag at the namespace's DNS."""
    net = docker_lab.network(internal=True)
    docker_lab.container(net, aliases=("mysql",))
    client = docker_lab.container(net)
    pid = docker_lab.pid(client)
    env = {**os.environ, "HOME": str(tmp_path), "NETDIAG_RESOLVER": "127.0.0.11"}
    ours = subprocess.run(
        [
            "nsenter",
            "-t",
            str(pid),
            "-n",
            sys.executable,
            "-m",
            "netdiag",
            "dig",
            "mysql",
            "+short",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    ref = nsenter(pid, "dig", "@127.0.0.11", "mysql", "+short", home=tmp_path)
    assert ours.returncode == 0
    assert sorted(ours.stdout.splitlines()) == sorted(ref.stdout.splitlines()) != []
