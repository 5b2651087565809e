"""`netdiag probe mysql://...` against a real MariaDB started by the suite."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

import pytest

from tests.conftest import run_netdiag
from tests.support.schemas import netdiag_json
from tests.support.servers import TODO_PASSWORD, start_mariadb
from tests.support.timing import slack

pytestmark = pytest.mark.slow

NO_MYSQL_ENV = {
    k: ""
    for k in (
        "MYSQL_HOST",
        "MYSQL_USER",
        "MYSQL_PASSWORD",
        "MYSQL_DB",
        "MYSQL_HOST_FILE",
        "MYSQL_USER_FILE",
        "MYSQL_PASSWORD_FILE",
        "MYSQL_DB_FILE",
    )
}


def probe_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict], str]:
    out = run_netdiag("probe", "--json", *args, env={**NO_MYSQL_ENV, **(env or {})})
    doc = netdiag_json(out.stdout)
    assert doc["summary"]["total"] == len(doc["results"])
    return out.returncode, doc["results"], out.stderr


def test_greeting_without_credentials(mariadb) -> None:
    rc, results, _ = probe_json(mariadb.url)
    assert rc == 0
    (res,) = results
    assert res["status"] == "ok"
    facts = res["facts"]
    assert facts["flavor"] == "MariaDB"
    assert facts["server_version"].startswith("5.5.5-10.")
    assert not facts["version"].startswith("5.5.5-")
    assert facts["tls_offered"] is False
    assert facts["auth_plugin"] == "mysql_native_password"
    assert facts["mariadb_capabilities"].startswith("0x")
    assert "MariaDB 10." in res["detail"]
    assert res["facts"]["dummy_login"] == "refused as expected (ERROR 1045)"


def test_greeting_only(mariadb) -> None:
    rc, (res,), _ = probe_json(mariadb.url, "--greeting-only")
    assert rc == 0 and res["status"] == "ok"
    assert "dummy_login" not in res["facts"]


def test_table_output_and_exit_code(mariadb) -> None:
    out = run_netdiag("probe", mariadb.url, "tcp://127.0.0.1:1", env=NO_MYSQL_ENV)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "ADDRESS", "STATUS", "TIME", "DETAIL"]
    assert any(" ok " in line and mariadb.url in line for line in lines)
    assert any(" refused " in line for line in lines)


def test_1130_host_not_allowed(mariadb) -> None:
    # skip-name-resolve and grants only for 127.0.0.1: a client at 127.0.0.2 has none
    rc, (res,), _ = probe_json(mariadb.url, "--source", "127.0.0.2")
    assert rc == 1
    assert res["status"] == "rejected"
    assert res["facts"]["error_code"] == 1130
    assert "127.0.0.2" in res["detail"] and "1130" in res["detail"]


def test_1040_too_many_connections() -> None:
    # 10 is MariaDB's minimum; one more connection is kept for SUPER (extra_max_connections)
    with start_mariadb(extra_args=["--max-connections=10"]) as server, ExitStack() as stack:
        for _ in range(11):
            sock = stack.enter_context(socket.create_connection((server.host, server.port), 3))
            sock.recv(1024)
        rc, (res,), _ = probe_json(server.url)
        assert rc == 1
        assert res["status"] == "rejected"
        assert res["facts"]["error_code"] == 1040
        assert "too many connections" in res["detail"].lower()


def test_login_database_and_table(mariadb) -> None:
    rc, (res,), _ = probe_json(
        mariadb.url, "--user", "nopass", "--database", "todos", "--table", "todo_items"
    )
    assert rc == 0, res
    assert res["status"] == "ok"
    assert res["facts"]["version"].startswith("10.")
    assert res["facts"]["table"] == "todo_items"


def test_login_with_app_environment(mariadb, tmp_path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(TODO_PASSWORD + "\n")
    env = {
        "MYSQL_HOST": f"{mariadb.host}:{mariadb.port}",
        "MYSQL_USER": "todo",
        "MYSQL_PASSWORD": "wrong-one-the-file-wins",
        "MYSQL_PASSWORD_FILE": str(pw),
        "MYSQL_DB": "todos",
    }
    rc, (res,), _ = probe_json("mysql", "--table", "todo_items", env=env)
    assert rc == 0, res
    assert res["facts"]["user"] == "todo" and res["facts"]["database"] == "todos"


def test_1045_wrong_password(mariadb) -> None:
    env = {"MYSQL_USER": "todo", "MYSQL_PASSWORD": "not-the-password"}
    rc, (res,), _ = probe_json(mariadb.url, env=env)
    assert rc == 1
    assert res["status"] == "rejected" and res["facts"]["error_code"] == 1045
    assert res["step"] == "login"


def test_1049_unknown_database(mariadb) -> None:
    rc, (res,), _ = probe_json(mariadb.url, "--user", "nopass", "--database", "no_such_db")
    assert rc == 1
    assert res["status"] == "rejected" and res["facts"]["error_code"] == 1049


def test_missing_table(mariadb) -> None:
    rc, (res,), _ = probe_json(
        mariadb.url, "--user", "nopass", "--database", "todos", "--table", "nope"
    )
    assert rc == 1
    assert res["status"] == "rejected" and res["facts"]["error_code"] == 1146
    assert res["step"] == "table"


def test_bare_mysql_needs_host() -> None:
    out = run_netdiag("probe", "mysql", env=NO_MYSQL_ENV)
    assert out.returncode == 2
    assert "MYSQL_HOST" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("mode", ["file", "env", "flag"])
def test_secret_never_appears(mariadb, tmp_path, mode: str) -> None:
    secret = "Zq9-netdiag-UNIQUE-secret-4711"
    env = {"MYSQL_HOST": f"{mariadb.host}:{mariadb.port}", "MYSQL_USER": "todo"}
    flags: list[str] = []
    (tmp_path / "pw").write_text(secret + "\n")
    if mode == "file":
        env["MYSQL_PASSWORD_FILE"] = str(tmp_path / "pw")
    elif mode == "flag":
        flags = ["--password-file", str(tmp_path / "pw")]
    else:
        env["MYSQL_PASSWORD"] = secret
    outputs = []
    for extra in ([], ["--json"], ["--database", "todos", "--table", "missing"], ["--bogus"]):
        out = run_netdiag("probe", "mysql", *flags, *extra, env={**NO_MYSQL_ENV, **env})
        outputs += [out.stdout, out.stderr]
        if extra != ["--bogus"]:
            assert out.returncode == 1  # wrong password: rejected 1045
    # also a refused port and an unresolvable path of the login code
    out = run_netdiag("probe", "mysql://127.0.0.1:1", *flags, env={**NO_MYSQL_ENV, **env})
    outputs += [out.stdout, out.stderr]
    blob = "\n".join(outputs)
    assert "1045" in blob
    assert secret not in blob
    assert secret[:12] not in blob


def test_not_mysql_http_server_on_port(http_server) -> None:
    start = time.monotonic()
    rc, (res,), _ = probe_json(f"mysql://{http_server.host}:{http_server.port}", "--timeout", "1")
    assert time.monotonic() - start < 1.0 + slack()  # --timeout 1, not the 10 s deadline
    assert rc == 1
    # named once the greeting wait is over, not after --timeout (issue 12 §2)
    assert res["status"] == "protocol_mismatch" and res["step"] == "greeting"
    assert res["detail"].startswith(f"{http_server.port} speaks HTTP/1.")
    assert res["detail"].endswith(", not MySQL")
    assert res["facts"]["identity"]["protocol"] == "http"


def test_not_mysql_redis_answers_as_mismatch_for_redis_probe(mariadb) -> None:
    # the other way round: a redis:// probe against MariaDB's port sees a MySQL greeting
    rc, (res,), _ = probe_json(f"redis://{mariadb.host}:{mariadb.port}", "--timeout", "2")
    assert rc == 1
    assert res["status"] == "protocol_mismatch"


def test_table_without_a_user_is_an_error_not_ok(mariadb) -> None:
    """--table (or --database) asks for a login; with nobody to log in as it is not skipped."""
    for flag in (["--table", "todo_items"], ["--database", "todos"]):
        rc, (res,), _ = probe_json(mariadb.url, *flag)
        assert rc == 1, res
        assert res["status"] == "error" and res["step"] == "login"
        assert "needs a login" in res["detail"] and "--user" in res["detail"]


def test_no_password_configured_is_said_so(mariadb) -> None:
    """Issue 13 item 7: no MYSQL_PASSWORD(_FILE) at all is not reported as a wrong password."""
    rc, (res,), _ = probe_json(mariadb.url, env={"MYSQL_USER": "todo"})
    assert rc == 1 and res["facts"]["error_code"] == 1045
    assert "no password was configured" in res["detail"]
    assert "MYSQL_PASSWORD_FILE or MYSQL_PASSWORD" in res["detail"]
    assert res["facts"]["password_configured"] is False
    wrong, (bad,), _ = probe_json(mariadb.url, env={"MYSQL_USER": "todo", "MYSQL_PASSWORD": "x"})
    assert wrong == 1 and "no password" not in bad["detail"]
