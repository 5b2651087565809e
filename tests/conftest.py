"""Fixtures shared by every test module. Real peers are started here, on demand."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.artifacts import artifacts_dir
from tests.support.docker_engine import DockerLab, ensure_dockerd

NETDIAG = [sys.executable, "-m", "netdiag"]


def run_netdiag(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the real command line in a child process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*NETDIAG, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        input=input,
    )


def usage_error(stderr: str, command: str) -> str:
    """Assert ``stderr`` is a usage error (the command's usage line, then one line naming the
    reason, never a traceback) and return the reason."""
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert lines[0].startswith(f"usage: netdiag {command} "), stderr
    prefix = f"netdiag {command}: error: "
    assert lines[1].startswith(prefix), stderr
    return lines[1][len(prefix) :]


def pytest_terminal_summary(terminalreporter) -> None:
    """How many real --json documents were validated against each schema (docs/schemas/)."""
    from tests.support.schemas import VALIDATED

    if VALIDATED:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(VALIDATED.items()))
        terminalreporter.write_line(f"JSON documents validated against docs/schemas: {counts}")


@pytest.fixture(scope="session")
def dockerd() -> None:
    """A running dockerd (started when missing)."""
    ensure_dockerd()


@pytest.fixture
def docker_lab(dockerd: None) -> Iterator[DockerLab]:
    """Networks and containers for one test, removed by name afterwards even on failure."""
    lab = DockerLab()
    try:
        yield lab
    finally:
        lab.cleanup()


# --- real protocol peers on loopback (tests/support/servers.py) ------------------------------


def _need(*programs: str) -> None:
    from tests.support.servers import have

    if not have(*programs):
        pytest.skip(f"needs {', '.join(programs)} (installed by scripts/test)")


@pytest.fixture(scope="session")
def mariadb():
    """MariaDB on 127.0.0.1 and 127.0.0.2 (one port), skip-name-resolve, users todo/nopass,
    database todos with table todo_items (see tests/support/servers.py)."""
    _need("mariadbd", "mariadb-install-db", "mariadb")
    from tests.support.servers import start_mariadb

    with start_mariadb(addresses=("127.0.0.1", "127.0.0.2")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres():
    """PostgreSQL 15 on 127.0.0.1, scram-sha-256 for TCP clients."""
    from tests.support.servers import PG_BIN, start_postgres

    _need(str(PG_BIN / "initdb"), "setpriv")
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():
    """redis-server on 127.0.0.1 without a password."""
    _need("redis-server")
    from tests.support.servers import start_redis

    with start_redis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_auth():
    """redis-server on 127.0.0.1 with requirepass."""
    _need("redis-server")
    from tests.support.servers import start_redis

    with start_redis(password="redis-Pa55-test") as server:
        yield server


@pytest.fixture
def http_server():
    """A threaded HTTP server on 127.0.0.1: / and /health 200, /redirect 302, /error 500."""
    from tests.support.servers import start_http

    with start_http() as server:
        yield server


@pytest.fixture(scope="session")
def sshd():
    """OpenSSH's sshd on a loopback port of the test's own (tests/support/identify_peers.py)."""
    from tests.support import identify_peers as peers

    _need(peers.SSHD, "ssh-keygen")
    with peers.start_sshd() as server:
        yield server


@pytest.fixture(scope="session")
def python_http():
    """Python's own ``http.server`` on loopback: SimpleHTTP/0.6, HTTP/1.0."""
    from tests.support import identify_peers as peers

    with peers.start_python_http() as server:
        yield server


@pytest.fixture(scope="session")
def cert_files():
    """Certificates the tests make, by kind: valid, expiring, self_signed, wrong_name."""
    import tempfile
    from pathlib import Path

    from tests.support import identify_peers as peers

    with tempfile.TemporaryDirectory(prefix=peers.PREFIX + "certs-") as tmp:
        yield peers.make_certs(Path(tmp))


# --- a real 3-node Docker Swarm (tests/support/swarm.py) -------------------------------------


@pytest.fixture(scope="session")
def swarm(dockerd: None):
    """Three dockerd hosts in namespaces joined into one Swarm, the netdiag image loaded on each:
    brought up once per test run (on first use), torn down at the end even on failure.
    NETDIAG_SWARM_KEEP=1 (while working on these tests) reuses a Swarm left up and leaves it."""
    import json
    import shutil

    from tests.support.swarm import running_swarm
    from tests.support.tutorial import build_images

    if os.geteuid() != 0:
        pytest.skip("the Swarm lab needs root (namespaces, dockerd)")
    missing = [
        p for p in ("ip", "unshare", "iptables", "ethtool", "dockerd") if not shutil.which(p)
    ]
    if missing:
        pytest.skip(f"the Swarm lab needs {', '.join(missing)} (installed by scripts/test)")
    build_images()
    record = artifacts_dir() / "swarm-timings.json"
    with running_swarm(keep=os.environ.get("NETDIAG_SWARM_KEEP") == "1") as lab:
        record.write_text(json.dumps({"bringup_seconds": lab.bringup_seconds, **lab.timings}))
        yield lab
    record.write_text(json.dumps({"bringup_seconds": lab.bringup_seconds, **lab.timings}) + "\n")
