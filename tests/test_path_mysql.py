"""netdiag path to a real MariaDB never moves the client towards a host-cache block (1129).

Without NET_RAW a TCP probe that reaches the port is a full connection; dropped during the
handshake it would count as a connect error (docs/probes.md measures it). netdiag ends each one
with the greeting and a dummy login, as ``netdiag probe`` does; with NET_RAW its SYNs are
half-open and MariaDB never sees them. The server runs without skip-name-resolve in a
namespace of its own whose hosts file names the client address (no lookup leaves it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.schemas import netdiag_json
from tests.support.servers import MARIADB_SETUP, TODO_PASSWORD, have, start_mariadb

pytestmark = [pytest.mark.slow, pytest.mark.netns]
ROOT = Path(__file__).resolve().parent.parent
ADDRESS = "10.83.0.2"
MAX_CONNECT_ERRORS = 3


@pytest.fixture
def mariadb_ns() -> Iterator[tuple[str, object]]:
    if os.geteuid() != 0 or not have("ip", "mariadbd", "setpriv"):
        pytest.skip("needs root, iproute2, setpriv and mariadbd")
    ns = f"ndpath-my-{uuid.uuid4().hex[:6]}"
    etc = Path("/etc/netns") / ns
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        for cmd in ("link set lo up", "link add v0 type veth peer name v1",
                    f"addr add {ADDRESS}/24 dev v0", "link set v0 up", "link set v1 up"):  # fmt: skip
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True, capture_output=True)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{ADDRESS} pathclient\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # nothing listens there
        with start_mariadb(
            addresses=(ADDRESS,),
            netns=ns,
            skip_name_resolve=False,
            extra_args=[f"--max-connect-errors={MAX_CONNECT_ERRORS}", "--performance-schema=ON"],
            # a user for any host, so the server greets the client instead of refusing it (1130)
            setup_sql=MARIADB_SETUP + f"CREATE USER 'todo'@'%' IDENTIFIED BY '{TODO_PASSWORD}';",
        ) as server:
            yield ns, server
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def path(ns: str, net_raw: bool) -> dict:
    caps = [] if net_raw else ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"]
    out = subprocess.run(
        ["ip", "netns", "exec", ns, *caps, sys.executable, "-m", "netdiag", "path",
         f"mysql://{ADDRESS}", "--json", "--no-dns"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert "Traceback" not in out.stderr and out.stdout, out.stderr
    return netdiag_json(out.stdout, "path")


def host_cache(server) -> tuple[int, int]:
    """(SUM_CONNECT_ERRORS, COUNT_AUTHENTICATION_ERRORS) for the client address."""
    row = server.sql(
        "SELECT SUM_CONNECT_ERRORS, COUNT_AUTHENTICATION_ERRORS FROM "
        f"performance_schema.host_cache WHERE IP = '{ADDRESS}'"
    ).split()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def bare_connect(ns: str) -> None:
    """What a connect()-based traceroute does at the last hop: connect, then reset. Measured
    here: a reset before the greeting left is not counted, one after it (0.3 s) is."""
    code = (
        f"import socket, struct, time; s = socket.create_connection(('{ADDRESS}', 3306)); "
        "time.sleep(0.3); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, "
        "struct.pack('ii', 1, 0)); s.close()"
    )
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=True)


def test_path_to_mysql_never_counts_as_a_connect_error(mariadb_ns) -> None:
    ns, server = mariadb_ns
    bare_connect(ns)  # the hazard is real here: one bare connect counts
    deadline = time.monotonic() + 5
    while host_cache(server)[0] != 1:
        assert time.monotonic() < deadline, host_cache(server)
        time.sleep(0.1)
    for _ in range(2):  # 6 connections, twice max_connect_errors
        doc = path(ns, net_raw=False)
        assert doc["reached"] is True and doc["tcp_state"] == "open", doc
        assert any("dummy MySQL login" in n for n in doc["notes"])
    errors, auth = host_cache(server)
    assert errors == 1 and auth >= 2 * MAX_CONNECT_ERRORS  # they reached MariaDB, politely
    doc = path(ns, net_raw=True)  # half-open SYNs: MariaDB sees nothing
    assert doc["tcp_state"] == "open" and doc["privilege"]["method"] == "raw"
    assert host_cache(server) == (1, auth)
