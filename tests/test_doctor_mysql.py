"""netdiag doctor's protocol, credential and database steps against a real MariaDB."""

from __future__ import annotations

import pytest

from tests.conftest import run_netdiag
from tests.health_peers import banner_peer
from tests.support.schemas import netdiag_json
from tests.support.servers import TODO_DB, TODO_PASSWORD, TODO_TABLE, TODO_USER

pytestmark = pytest.mark.slow
BASE = {
    "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    "MYSQL_HOST": "",
    "MYSQL_USER": "",
    "MYSQL_PASSWORD": "",
    "MYSQL_PASSWORD_FILE": "",
    "MYSQL_DB": "",
}


def doctor(*args: str, **env: str) -> tuple[int, dict, str]:
    out = run_netdiag("doctor", "--json", "--timeout", "2", *args, env={**BASE, **env})
    assert "Traceback" not in out.stderr, out.stderr
    assert TODO_PASSWORD not in out.stdout + out.stderr
    return out.returncode, netdiag_json(out.stdout), out.stdout


def st(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for s in doc["steps"]}


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "mysql_password"
    path.write_text(TODO_PASSWORD + "\n")
    return str(path)


def test_everything_passes_with_the_apps_env(mariadb, secret):
    code, doc, raw = doctor(
        "--table",
        TODO_TABLE,
        MYSQL_HOST=f"127.0.0.1:{mariadb.port}",
        MYSQL_USER=TODO_USER,
        MYSQL_PASSWORD_FILE=secret,
        MYSQL_DB=TODO_DB,
    )
    assert code == 0, raw
    s = st(doc)
    statuses = [x["status"] for x in doc["steps"]]
    assert statuses[0] in ("pass", "warn")  # warn: this host's resolver is not 127.0.0.11
    # docker: no API here; mtu: 127.0.0.1 is this host, no path to measure
    assert statuses[1:] == ["pass", "skip", "pass", "pass", "skip", "pass", "pass", "pass"], raw
    assert "MariaDB" in s["greeting"]["summary"]
    assert s["credentials"]["facts"]["password_from"] == "MYSQL_PASSWORD_FILE"
    assert s["database"]["summary"] == f"database {TODO_DB}, table {TODO_TABLE} exist"
    assert doc["failed_step"] is None and doc["not_checked"] == []


def test_without_credentials_the_login_steps_skip(mariadb):
    code, doc, _ = doctor(f"127.0.0.1:{mariadb.port}")
    assert code == 0
    s = st(doc)
    assert s["greeting"]["status"] == "pass"
    assert s["credentials"]["status"] == "skip" and "MYSQL_USER" in s["credentials"]["summary"]
    assert s["database"]["status"] == "skip"


def test_wrong_password(mariadb):
    code, doc, _ = doctor(
        f"127.0.0.1:{mariadb.port}", MYSQL_USER=TODO_USER, MYSQL_PASSWORD="wrong-one"
    )
    assert code == 1 and doc["failed_step"] == "credentials"
    s = st(doc)
    assert s["credentials"]["facts"]["error_code"] == 1045
    assert "MYSQL_PASSWORD" in doc["fix"] and "volume" in doc["fix"]
    assert doc["not_checked"] == ["database"]


def test_unreadable_secret_file(mariadb, tmp_path):
    code, doc, _ = doctor(
        f"127.0.0.1:{mariadb.port}",
        MYSQL_USER=TODO_USER,
        MYSQL_PASSWORD_FILE=str(tmp_path / "absent"),
    )
    assert code == 1 and doc["failed_step"] == "credentials"
    assert "cannot read secret file" in st(doc)["credentials"]["summary"]
    assert "MYSQL_PASSWORD_FILE" in doc["fix"]


def test_unknown_database(mariadb):
    code, doc, _ = doctor(f"127.0.0.1:{mariadb.port}", MYSQL_USER="nopass", MYSQL_DB="no_such_db")
    assert code == 1 and doc["failed_step"] == "database"
    assert st(doc)["database"]["facts"]["error_code"] == 1049
    assert "MYSQL_DATABASE=no_such_db" in doc["fix"]


def test_database_not_granted(mariadb, secret):
    code, doc, _ = doctor(
        f"127.0.0.1:{mariadb.port}",
        MYSQL_USER=TODO_USER,
        MYSQL_PASSWORD_FILE=secret,
        MYSQL_DB="mysql",
    )
    assert code == 1 and doc["failed_step"] == "database"
    assert st(doc)["database"]["facts"]["error_code"] == 1044
    assert doc["fix"] == f"GRANT ALL ON mysql.* TO '{TODO_USER}'@'%'"


def test_missing_table(mariadb, secret):
    code, doc, _ = doctor(
        f"mysql://127.0.0.1:{mariadb.port}/{TODO_DB}",
        "--table",
        "todo_items_v2",
        MYSQL_USER=TODO_USER,
        MYSQL_PASSWORD_FILE=secret,
    )
    assert code == 1 and doc["failed_step"] == "database"
    assert st(doc)["database"]["facts"]["error_code"] == 1146


def test_protocol_mismatch_at_the_greeting():
    with banner_peer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") as port:
        code, doc, _ = doctor(f"127.0.0.1:{port}")
    assert code == 1 and doc["failed_step"] == "greeting"
    greeting = st(doc)["greeting"]
    assert greeting["facts"]["status"] == "protocol_mismatch"
    assert "SSH" in greeting["summary"]
    assert doc["not_checked"] == ["credentials", "database"]


def test_http_server_is_named_at_the_greeting(http_server):
    """An HTTP server never greets: instead of a bare timeout, doctor says what it is."""
    code, doc, _ = doctor(f"127.0.0.1:{http_server.port}")
    assert code == 1 and doc["failed_step"] == "greeting"
    greeting = st(doc)["greeting"]
    assert greeting["facts"]["status"] == "protocol_mismatch"
    assert f"{http_server.port} speaks HTTP/1.1 (BaseHTTP/0.6" in greeting["summary"]
    assert greeting["summary"].endswith(", not MySQL")


def test_login_flags_like_probe(mariadb, secret):
    """doctor takes the same --user/--password-file/--database/--table as probe, check, wait."""
    code, doc, raw = doctor(
        f"127.0.0.1:{mariadb.port}",
        "--user",
        TODO_USER,
        "--password-file",
        secret,
        "--database",
        TODO_DB,
        "--table",
        TODO_TABLE,
    )
    assert code == 0, raw
    s = st(doc)
    assert s["credentials"]["facts"]["password_from"] == "--password-file"
    assert s["database"]["summary"] == f"database {TODO_DB}, table {TODO_TABLE} exist"


def test_no_password_configured(mariadb):
    """Issue 13 item 7: say that no password was configured and where it would come from."""
    code, doc, _ = doctor(f"127.0.0.1:{mariadb.port}", MYSQL_USER=TODO_USER)
    assert code == 1 and doc["failed_step"] == "credentials"
    assert "no password was configured" in st(doc)["credentials"]["summary"]
    assert doc["fix"].startswith(f"no password was configured for {TODO_USER}")
    assert "MYSQL_PASSWORD_FILE or MYSQL_PASSWORD" in doc["fix"]
    assert "compare" not in doc["fix"]
