"""netdiag check against real MariaDB and HTTP servers: every status in one checks file."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import run_netdiag
from tests.health_peers import closed_port, full_backlog, resolver_env
from tests.support.mini_dns import MiniDns
from tests.support.schemas import netdiag_json
from tests.support.servers import TODO_DB, TODO_PASSWORD, TODO_TABLE, TODO_USER

pytestmark = pytest.mark.slow


def test_checks_file_using_every_status(tmp_path, mariadb, http_server):
    refused = closed_port()
    secret = tmp_path / "pw"
    secret.write_text(TODO_PASSWORD + "\n")
    junit = tmp_path / "junit.xml"
    with full_backlog() as stuck, MiniDns("127.0.0.1", 0, {}) as dns:
        path = tmp_path / "checks.toml"
        path.write_text(
            f"""
[defaults]
timeout = 1
deadline = 8

[checks.db]
target = "{mariadb.url}"

[checks.db-login]
target = "{mariadb.url}"
user = "{TODO_USER}"
password_env = "TODO_PW"
database = "{TODO_DB}"
table = "{TODO_TABLE}"

[checks.wrong-password]
target = "{mariadb.url}"
user = "{TODO_USER}"
password_env = "WRONG_PW"
expect = "rejected"

[checks.no-such-table]
target = "{mariadb.url}"
user = "{TODO_USER}"
password_env = "TODO_PW"
database = "{TODO_DB}"
table = "nope"
expect = "rejected"

[checks.web]
target = "{http_server.url("/health")}"
http_status = 200

[checks.web-error]
target = "{http_server.url("/error")}"
http_status = "2xx"
expect = "rejected"

[checks.http-at-mysql-port]
target = "http://127.0.0.1:{mariadb.port}/"
expect = "protocol_mismatch"

[checks.closed]
target = "tcp://127.0.0.1:{refused}"
expect = "refused"

[checks.stuck]
target = "tcp://127.0.0.1:{stuck}"
expect = "timeout"

[checks.no-name]
target = "mysql://nosuch.test"
expect = "dns_failed"

[checks.unreadable-secret]
target = "{mariadb.url}"
user = "{TODO_USER}"
password_env = "GONE_PW"
expect = "error"
"""
        )
        env = {
            **resolver_env(tmp_path, dns.port),
            "TODO_PW_FILE": str(secret),
            "WRONG_PW": "not-the-password",
            "GONE_PW_FILE": str(tmp_path / "missing"),
        }
        out = run_netdiag("check", "-f", str(path), "--json", "--junit", str(junit), env=env)
        text = run_netdiag("check", "-f", str(path), env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = netdiag_json(out.stdout)
    got = {c["name"]: c["status"] for c in doc["checks"]}
    assert got == {
        "db": "ok",
        "db-login": "ok",
        "wrong-password": "rejected",
        "no-such-table": "rejected",
        "web": "ok",
        "web-error": "rejected",
        "http-at-mysql-port": "protocol_mismatch",
        "closed": "refused",
        "stuck": "timeout",
        "no-name": "dns_failed",
        "unreadable-secret": "error",
    }
    assert all(c["passed"] for c in doc["checks"])
    by_name = {c["name"]: c for c in doc["checks"]}
    assert "1045" in by_name["wrong-password"]["detail"]
    assert "1146" in by_name["no-such-table"]["detail"]
    assert "cannot read secret file" in by_name["unreadable-secret"]["detail"]
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 11
    assert len(text.stdout.encode()) < 4096
    xml = junit.read_text()
    for blob in (out.stdout, out.stderr, text.stdout, text.stderr, xml):
        assert TODO_PASSWORD not in blob and "not-the-password" not in blob
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("11", "0")


def test_mismatched_expectations_fail(tmp_path, mariadb):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[checks.db]\ntarget = "{mariadb.url}"\nexpect = "rejected"\n'
        f'[checks.pw]\ntarget = "{mariadb.url}"\nuser = "{TODO_USER}"\npassword_env = "X"\n'
    )
    out = run_netdiag("check", "-f", str(path), env={"X": "wrong"})
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("FAIL db ") and ": ok (expected rejected)" in lines[0]
    assert lines[1].startswith("FAIL pw ") and "rejected" in lines[1] and "1045" in lines[1]


def test_greeting_check_does_not_load_pymysql(mariadb):
    code = (
        "import sys; from netdiag.cli import main; rc = main(['check', sys.argv[1]]); "
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pymysql', 'docker', 'scapy', 'tabulate') or m == 'netdiag.probes.mysql'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, mariadb.url], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.splitlines()[-1] == "0 ['netdiag.probes.mysql']", out.stdout + out.stderr


def test_bare_mysql_means_mysql_host(mariadb):
    out = run_netdiag("check", "mysql", env={"MYSQL_HOST": f"127.0.0.1:{mariadb.port}"})
    assert out.returncode == 0, out
    assert out.stdout.startswith(f"PASS mysql://127.0.0.1:{mariadb.port}: ok ")
    assert "MariaDB" in out.stdout
    missing = run_netdiag("check", "mysql", env={"MYSQL_HOST": ""})
    assert missing.returncode == 1 and "MYSQL_HOST" in missing.stderr


def test_check_uses_the_apps_mysql_environment(tmp_path, mariadb):
    """Like probe: MYSQL_USER/MYSQL_PASSWORD_FILE/MYSQL_DB turn a mysql target into a login."""
    secret = tmp_path / "pw"
    secret.write_text(TODO_PASSWORD + "\n")
    env = {"MYSQL_USER": TODO_USER, "MYSQL_PASSWORD_FILE": str(secret), "MYSQL_DB": TODO_DB}
    good = run_netdiag("check", "--json", mariadb.url, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    facts = netdiag_json(good.stdout)["checks"][0]["results"][0]["facts"]
    assert facts["user"] == TODO_USER and facts["database"] == TODO_DB
    secret.write_text("not-the-password\n")
    bad = run_netdiag("check", mariadb.url, env=env)
    assert bad.returncode == 1
    assert "1045" in bad.stdout
    assert TODO_PASSWORD not in good.stdout + good.stderr + bad.stdout + bad.stderr
    plain = run_netdiag("check", mariadb.url)  # no MYSQL_USER: the greeting is enough
    assert plain.returncode == 0, plain.stdout


def test_check_login_flags(tmp_path, mariadb):
    """--user/--password-file/--database/--table apply to TARGET arguments, as in probe."""
    secret = tmp_path / "pw"
    secret.write_text(TODO_PASSWORD + "\n")
    flags = ["--user", TODO_USER, "--password-file", str(secret), "--database", TODO_DB]
    env = {"MYSQL_USER": "", "MYSQL_PASSWORD": "", "MYSQL_PASSWORD_FILE": "", "MYSQL_DB": ""}
    good = run_netdiag("check", mariadb.url, *flags, "--table", TODO_TABLE, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"logged in as {TODO_USER}, database {TODO_DB}, table {TODO_TABLE}" in good.stdout
    bad = run_netdiag("check", mariadb.url, *flags, "--table", "nope", env=env)
    assert bad.returncode == 1 and "1146" in bad.stdout
    assert TODO_PASSWORD not in good.stdout + good.stderr + bad.stdout + bad.stderr
