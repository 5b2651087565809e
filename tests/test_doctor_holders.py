"""doctor checks every holder of a name and names what answers instead of the expected server
(issue 12 §2, §5): a real MariaDB and Python's http.server on loopback addresses of our own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import run_netdiag
from tests.health_peers import resolver_env
from tests.support.mini_dns import MiniDns
from tests.support.schemas import netdiag_json
from tests.support.servers import wait_port

pytestmark = pytest.mark.slow

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
CLEAN = {"MYSQL_HOST": "", "MYSQL_USER": "", "MYSQL_PASSWORD": "", "MYSQL_DB": ""}
IMPOSTOR = "127.77.13.2"  # a loopback address of this test's own


@pytest.fixture
def impostor(mariadb) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Python's http.server on MariaDB's port, at another address: a second holder."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", IMPOSTOR, str(mariadb.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/proc",
    )
    try:
        wait_port(IMPOSTOR, mariadb.port, 20, proc)
        yield f"SimpleHTTP/0.6 Python/{sys.version.split()[0]}"
    finally:
        proc.terminate()
        proc.wait(10)


def doctor(*args: str, env: dict[str, str]) -> tuple[int, dict]:
    out = run_netdiag(
        "doctor", "--json", "--timeout", "2", *args, env={**CLEAN, **NO_DOCKER, **env}
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, netdiag_json(out.stdout)


def step(doc: dict, name: str) -> dict:
    return next(s for s in doc["steps"] if s["name"] == name)


def test_one_of_two_holders_is_no_mysql(tmp_path, mariadb, impostor) -> None:  # type: ignore[no-untyped-def]
    records = {("mysql.", "A"): ["127.0.0.1", IMPOSTOR]}
    with MiniDns("127.0.0.1", 0, records) as dns:
        code, doc = doctor(f"mysql://mysql:{mariadb.port}", env=resolver_env(tmp_path, dns.port))
    assert code == 1
    assert step(doc, "connect")["status"] == "pass"
    greeting = step(doc, "greeting")
    assert greeting["status"] == "fail"
    assert greeting["summary"] == (
        "1 of 2 holders of mysql has no MySQL server: about half of the app's connections will fail"
    )
    assert greeting["notes"] == [
        f"{IMPOSTOR}: protocol_mismatch: {mariadb.port} speaks HTTP/1.0 ({impostor}), not MySQL"
    ]
    assert "remove the alias" in greeting["fix"]
    assert "MariaDB" in greeting["facts"]["holders"]["127.0.0.1"] or greeting["facts"]["holders"]


def test_http_on_the_mysql_port_is_named(mariadb, impostor) -> None:  # type: ignore[no-untyped-def]
    code, doc = doctor(f"mysql://{IMPOSTOR}:{mariadb.port}", env={})
    assert code == 1
    greeting = step(doc, "greeting")
    assert greeting["status"] == "fail"
    assert greeting["summary"] == (
        f"protocol_mismatch: {mariadb.port} speaks HTTP/1.0 ({impostor}), not MySQL"
    )
