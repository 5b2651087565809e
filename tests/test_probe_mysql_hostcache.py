"""MariaDB's host cache for real: greeting-only probes get a host blocked (1129); netdiag's
default dummy login and credential logins do not.

MariaDB only caches hosts it resolved by name, and never 127.0.0.1, so the server runs without
skip-name-resolve inside a namespace of its own whose /etc/netns hosts file names 127.0.0.2 and
127.0.0.3 (``ip netns exec`` mounts it over /etc/hosts): no lookup leaves the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.schemas import netdiag_json
from tests.support.servers import MARIADB_SETUP, TODO_PASSWORD, have, start_mariadb

pytestmark = [pytest.mark.slow, pytest.mark.netns]

MAX_CONNECT_ERRORS = 3


@pytest.fixture
def hostcache_mariadb() -> Iterator[tuple[str, object]]:
    if os.geteuid() != 0 or not have("ip", "mariadbd"):
        pytest.skip("needs root, iproute2 and mariadbd")
    ns = f"ndprobes-hc{os.getpid() % 10000}"
    etc = Path("/etc/netns") / ns
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text("127.0.0.1 localhost\n127.0.0.2 prober2\n127.0.0.3 prober3\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # nothing listens: fails fast
        setup = (
            MARIADB_SETUP + f"CREATE USER 'todo'@'%' IDENTIFIED BY '{TODO_PASSWORD}';"
            "GRANT ALL ON todos.* TO 'todo'@'%';"
        )
        with start_mariadb(
            netns=ns,
            skip_name_resolve=False,
            extra_args=[f"--max-connect-errors={MAX_CONNECT_ERRORS}", "--performance-schema=ON"],
            setup_sql=setup,
        ) as server:
            yield ns, server
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def probe(ns: str, source: str, *args: str, password: str | None = None) -> dict:
    env = {**os.environ, "MYSQL_PASSWORD": password or ""}
    for key in ("MYSQL_USER", "MYSQL_PASSWORD_FILE", "MYSQL_DB", "MYSQL_HOST"):
        env.pop(key, None)
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "netdiag", "probe", "--json",
         "mysql://127.0.0.1:3306", "--source", source, *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    return netdiag_json(out.stdout)["results"][0]


def connect_errors(server, ip: str) -> int:
    out = server.sql(
        f"SELECT SUM_CONNECT_ERRORS FROM performance_schema.host_cache WHERE IP = '{ip}'"
    ).strip()
    return int(out or 0)


def test_greeting_only_probes_get_the_host_blocked(hostcache_mariadb) -> None:
    ns, server = hostcache_mariadb
    for i in range(MAX_CONNECT_ERRORS):
        assert probe(ns, "127.0.0.2", "--greeting-only")["status"] == "ok"
        assert connect_errors(server, "127.0.0.2") == i + 1
    blocked = probe(ns, "127.0.0.2", "--greeting-only")
    assert blocked["status"] == "rejected"
    assert blocked["facts"]["error_code"] == 1129
    assert "flush-hosts" in blocked["detail"]


def test_dummy_login_and_real_logins_never_accumulate(hostcache_mariadb) -> None:
    ns, server = hostcache_mariadb
    for _ in range(MAX_CONNECT_ERRORS * 2):
        res = probe(ns, "127.0.0.3")
        assert res["status"] == "ok", res
        assert res["facts"]["dummy_login"] == "refused as expected (ERROR 1045)"
    assert connect_errors(server, "127.0.0.3") == 0
    # a real login after some greeting-only probes resets the count
    for _ in range(MAX_CONNECT_ERRORS - 1):
        probe(ns, "127.0.0.3", "--greeting-only")
    assert connect_errors(server, "127.0.0.3") == MAX_CONNECT_ERRORS - 1
    ok = probe(ns, "127.0.0.3", "--user", "todo", password=TODO_PASSWORD)
    assert ok["status"] == "ok", ok
    assert connect_errors(server, "127.0.0.3") == 0
