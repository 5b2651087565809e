"""Probe settings are built in one place (netdiag.probes.settings) from target, flags and the
app's environment; the app's MYSQL_* variables are read by one function (netdiag.appenv)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from netdiag.probes.settings import ProbeFlags, mysql_login, options_for
from netdiag.targets import expand_target, parse_target
from tests.conftest import run_netdiag

ROOT = Path(__file__).resolve().parent.parent / "netdiag"


def test_flag_then_url_then_environment(tmp_path) -> None:
    env = {"MYSQL_USER": "env-user", "MYSQL_DB": "env_db", "MYSQL_PASSWORD": "env-pw"}
    target = parse_target("mysql://url-user@db/url_db")
    login = mysql_login(target, ProbeFlags(user="flag-user", database="flag_db"), env)
    assert (login.user, login.database) == ("flag-user", "flag_db")
    login = mysql_login(target, ProbeFlags(), env)
    assert (login.user, login.database) == ("url-user", "url_db")
    login = mysql_login(parse_target("mysql://db"), ProbeFlags(), env)
    assert (login.user, login.database) == ("env-user", "env_db")
    assert login.password is not None and login.password.reveal() == "env-pw"
    assert login.password_from == "MYSQL_PASSWORD"
    pw = tmp_path / "pw"
    pw.write_text("file-pw\n")
    login = mysql_login(parse_target("mysql://db"), ProbeFlags(password_file=str(pw)), env)
    assert login.password is not None and login.password.reveal() == "file-pw"
    assert login.password_from == "--password-file"


def test_password_is_read_only_for_a_login(tmp_path) -> None:
    env = {"MYSQL_PASSWORD_FILE": str(tmp_path / "absent")}
    login = mysql_login(parse_target("mysql://db"), ProbeFlags(), env)  # no user: no read
    assert login.user is None and login.password is None
    nothing = mysql_login(parse_target("mysql://db"), ProbeFlags(), {"MYSQL_USER": "todo"})
    assert nothing.password is None and nothing.password_from is None
    assert nothing.password_wanted_from == "MYSQL_PASSWORD_FILE or MYSQL_PASSWORD"


def test_checks_file_entry_uses_the_environment_only_when_it_asks_for_a_login() -> None:
    env = {"MYSQL_USER": "todo", "MYSQL_PASSWORD": "pw", "OTHER_PW": "other"}
    greeting = mysql_login(parse_target("mysql://db"), ProbeFlags(app_env=False), env)
    assert greeting.user is None
    login = mysql_login(parse_target("mysql://db"), ProbeFlags(password_env="OTHER_PW"), env)
    assert login.user == "todo" and login.password_from == "OTHER_PW"


def test_options_per_scheme() -> None:
    flags = ProbeFlags(expect_status=("2xx",), insecure=True, user="u")
    http = options_for(parse_target("https://web/"), flags, timeout=1.5, source_address="::1")
    assert http.http is not None and http.http.insecure and http.http.expected == ((200, 299),)
    assert http.mysql is None and http.timeout == 1.5 and http.source_address == "::1"
    mysql = options_for(parse_target("mysql://db"), flags, environ={})
    assert mysql.mysql is not None and mysql.mysql.user == "u" and mysql.http is None
    tcp = options_for(parse_target("tcp://db:1"), flags, environ={})
    assert tcp.mysql is None and tcp.http is None


def test_bare_mysql_is_mysql_host(tmp_path) -> None:
    host = tmp_path / "host"
    host.write_text("db:3307\n")
    assert str(expand_target("mysql", {"MYSQL_HOST_FILE": str(host)})) == "mysql://db:3307"
    assert str(expand_target("mysql://", {"MYSQL_HOST": "db"})) == "mysql://db:3306"
    assert str(expand_target("tcp://db:1", {})) == "tcp://db:1"


# --- structure: one reader of MYSQL_*, no command imports another -------------------------

# what the four copies before netdiag.appenv looked like: env_value("MYSQL_USER", ...),
# environ.get("MYSQL_PASSWORD_FILE"), os.getenv("MYSQL_DB")
ENV_READ = re.compile(r"""(\.get\(|getenv\(|env_value\(|\[)\s*f?["']MYSQL_""")


def test_only_appenv_reads_the_apps_variables() -> None:
    readers = sorted(
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ENV_READ.search(p.read_text())
    )
    assert readers == [], readers
    secret_files = sorted(
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if "read_secret_file(" in p.read_text()
    )
    # appenv for *_FILE, settings for --password-file, secrets defines it
    assert secret_files == ["appenv.py", "probes/settings.py", "secrets.py"], secret_files


def test_no_command_imports_another() -> None:
    for path in (ROOT / "commands").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            bad = [n for n in names if n.startswith("netdiag.commands")]
            assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("command", ["probe", "check", "wait", "doctor"])
def test_login_flags_on_every_command(command: str) -> None:
    out = run_netdiag(command, "-h")
    assert out.returncode == 0, out
    for flag in ("--user", "--password-file", "--database", "--table"):
        assert flag in out.stdout, (command, flag)
