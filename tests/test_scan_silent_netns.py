"""A port that accepts and never speaks costs scan at most half a second: the same lab scanned
with that port silent and with it refusing, in one run (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns_lab import NetnsLab
from tests.support.schemas import netdiag_json

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root"),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[NetnsLab]:
    with NetnsLab(hosts_wanted=12, silent=True) as built:
        yield built


def scan(lab: NetnsLab) -> dict:
    cmd = [*lab.exec_args(True), sys.executable, "-m", "netdiag", "scan"]
    cmd += ["--subnet", lab.subnet, "--ports", "3306,80,5432", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    return netdiag_json(proc.stdout)


def port_of(doc: dict, ip: str, port: int) -> dict:
    peer = next(p for n in doc["networks"] for p in n["peers"] if p["ip"] == ip)
    return next(p for p in peer["ports"] if p["port"] == port)


def test_silent_port_costs_at_most_half_a_second(lab: NetnsLab) -> None:
    silent = lab.host("silent")
    with_silent: list[float] = []
    without: list[float] = []
    for _ in range(2):
        doc = scan(lab)
        with_silent.append(doc["summary"]["elapsed_ms"] / 1000)
        quiet = port_of(doc, silent.ip, 5432)
        assert quiet["state"] == "open" and quiet["identified"] == "silent", quiet
        assert quiet["status"] == "timeout" and quiet["detail"].startswith("open (silent)")
        lab.refuse(silent, 5432)
        try:
            doc = scan(lab)
        finally:
            lab.refuse(silent, 5432, refused=False)
        without.append(doc["summary"]["elapsed_ms"] / 1000)
        assert port_of(doc, silent.ip, 5432)["state"] == "refused"
    maria = port_of(doc, lab.host("mariadb").ip, 3306)
    assert maria["protocol"] == "mysql" and maria["identity"]["name"] == "MariaDB", maria
    # the best of two runs each: the silent port's own cost, not the machine's hiccups
    assert min(with_silent) - min(without) <= 0.5, (with_silent, without)
