"""netdiag check and the checks file, against real loopback peers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.checks.spec import SpecError, parse
from tests.conftest import run_netdiag, usage_error
from tests.health_peers import closed_port, full_backlog, listener, resolver_env
from tests.support.mini_dns import MiniDns
from tests.support.schemas import netdiag_json

# --- exit codes: 0 or 1, never 2 ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--bogus", "tcp://127.0.0.1:1"],
        ["tcp://127.0.0.1"],  # tcp needs a port
        ["ftp://x:21"],
        ["--timeout", "abc", "tcp://127.0.0.1:1"],
        ["--timeout", "-1", "tcp://127.0.0.1:1"],
        ["-f", "/nonexistent/checks.toml"],
        ["mysql://u:pw@127.0.0.1"],
        ["--cert-days", "7", "http://127.0.0.1:1/"],  # https:// only
        ["--cert-days", "0", "https://127.0.0.1:1/"],
        ["--cert-days", "soon", "https://127.0.0.1:1/"],
    ],
)
def test_usage_errors_exit_1_with_one_line(args):
    """Exit 1, never 2; a usage error gives the usage line and the reason, others one line."""
    out = run_netdiag("check", *args)
    assert out.returncode == 1, out
    if out.stderr.startswith("usage: "):
        usage_error(out.stderr, "check")
    else:
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("netdiag check"), out.stderr
    assert "Traceback" not in out.stderr
    assert "pw" not in out.stderr.replace("password", "")


def test_help_exits_0():
    out = run_netdiag("check", "-h")
    assert out.returncode == 0 and "--junit" in out.stdout


def test_ok_and_refused_one_line_each():
    port = closed_port()
    with listener() as up:
        out = run_netdiag("check", f"tcp://127.0.0.1:{up}")
        assert out.returncode == 0, out
        assert out.stdout.startswith(f"PASS tcp://127.0.0.1:{up}: ok 127.0.0.1:{up}")
        both = run_netdiag("check", f"tcp://127.0.0.1:{up}", f"127.0.0.1:{port}")
    assert both.returncode == 1
    lines = both.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(f"FAIL tcp://127.0.0.1:{port}: refused 127.0.0.1:{port}")


def test_quiet_prints_only_failures():
    port = closed_port()
    with listener() as up:
        out = run_netdiag("check", "-q", f"tcp://127.0.0.1:{up}", f"tcp://127.0.0.1:{port}")
        ok = run_netdiag("check", "--quiet", f"tcp://127.0.0.1:{up}")
    assert out.returncode == 1 and out.stdout.splitlines() == [
        f"FAIL tcp://127.0.0.1:{port}: refused 127.0.0.1:{port} connection refused"
    ]
    assert ok.returncode == 0 and ok.stdout == ""


@pytest.mark.slow
def test_timeout_on_full_backlog_respects_timeout():
    with full_backlog() as port:
        out = run_netdiag("check", "--timeout", "0.5", "--json", f"tcp://127.0.0.1:{port}")
    assert out.returncode == 1
    doc = netdiag_json(out.stdout)
    assert doc["checks"][0]["status"] == "timeout"
    # in-process time: 0.5 s asked; the default 3 s would exceed this bound, which leaves
    # 2 s of slack for a loaded machine
    assert doc["elapsed_ms"] < 2500


def test_deadline_caps_everything():
    with full_backlog() as port:
        out = run_netdiag("check", "--timeout", "5", "--deadline", "0.4", f"127.0.0.1:{port}")
    assert out.returncode == 1 and ": timeout " in out.stdout


def test_output_fits_docker_health_log():
    ports = [closed_port() for _ in range(12)]
    out = run_netdiag("check", *(f"tcp://127.0.0.1:{p}" for p in ports))
    assert out.returncode == 1
    assert len(out.stdout.encode()) < 4096
    assert all(len(line) <= 200 for line in out.stdout.splitlines())


def test_import_cost_stays_small():
    heavy = ("tomllib", "docker", "scapy", "pymysql", "tabulate", "dns")
    code = (
        "import sys; from netdiag.cli import main; rc = main(['check', sys.argv[1]]); "
        f"print(rc, sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    with listener() as up:
        out = subprocess.run(
            [sys.executable, "-c", code, f"tcp://127.0.0.1:{up}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    # the tcp probe itself is loaded (in a worker thread), nothing heavy is
    assert out.stdout.splitlines()[-1] == "0 []", out.stdout + out.stderr


# --- checks file: every status ----------------------------------------------------------------


@pytest.fixture
def dns_server(tmp_path):
    records = {
        ("web.test.", "A"): ["127.0.0.1"],
        ("two.test.", "A"): ["127.0.0.1", "127.0.0.2"],
    }
    with MiniDns("127.0.0.1", 0, records) as server:
        yield resolver_env(tmp_path, server.port)


def write(tmp_path, text: str) -> str:
    path = tmp_path / "checks.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.slow
def test_checks_file_every_network_status(tmp_path, dns_server):
    refused = closed_port()
    with listener() as up, full_backlog() as stuck:
        path = write(
            tmp_path,
            f"""
version = 1
[defaults]
timeout = 0.5
deadline = 5

[checks.web]
target = "tcp://web.test:{up}"
addresses = 1

[checks.closed]
target = "tcp://127.0.0.1:{refused}"
expect = "refused"

[checks.stuck]
target = "tcp://127.0.0.1:{stuck}"
expect = "timeout"

[checks.nobody]
target = "dns://nosuch.test"
expect = "dns_failed"

[checks.pair]
target = "dns://two.test"
addresses = 2
""",
        )
        out = run_netdiag("check", "-f", path, "--json", env=dns_server)
        text = run_netdiag("check", "-f", path, env=dns_server)
    assert out.returncode == 0, out
    doc = netdiag_json(out.stdout)
    got = {c["name"]: (c["status"], c["passed"]) for c in doc["checks"]}
    assert got == {
        "web": ("ok", True),
        "closed": ("refused", True),
        "stuck": ("timeout", True),
        "nobody": ("dns_failed", True),
        "pair": ("ok", True),
    }
    assert doc["ok"] is True and doc["passed"] == 5 and doc["failed"] == 0
    assert "NXDOMAIN" in next(c for c in doc["checks"] if c["name"] == "nobody")["detail"]
    assert text.returncode == 0
    assert [line.split()[0] for line in text.stdout.splitlines()] == ["PASS"] * 5
    assert "closed tcp://127.0.0.1" in text.stdout and "(expected refused)" in text.stdout


def test_checks_file_failures_and_junit(tmp_path, dns_server):
    refused = closed_port()
    junit = tmp_path / "out.xml"
    with listener() as up:
        path = write(
            tmp_path,
            f"""
[checks.web]
target = "tcp://127.0.0.1:{up}"

[checks.db]
target = "tcp://127.0.0.1:{refused}"
description = "the app's database"

[checks.must-refuse]
target = "tcp://127.0.0.1:{up}"
expect = "refused"

[checks.single]
target = "dns://two.test"
addresses = 1
""",
        )
        out = run_netdiag("check", "-f", path, "--junit", str(junit), env=dns_server)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["PASS", "FAIL", "FAIL", "FAIL"]
    assert "resolves to 2 addresses, expected exactly 1" in lines[3]
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("4", "3")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["web", "db", "must-refuse", "single"]
    assert cases["web"].find("failure") is None
    failure = cases["db"].find("failure")
    assert failure is not None and failure.get("type") == "refused"
    assert "connection refused" in (failure.text or "")
    assert cases["must-refuse"].find("failure").get("type") == "ok"  # type: ignore[union-attr]
    props = {p.get("name"): p.get("value") for p in cases["db"].iter("property")}
    assert props == {"target": f"tcp://127.0.0.1:{refused}", "expect": "ok", "status": "refused"}


def test_targets_and_file_together(tmp_path):
    with listener() as up:
        path = write(tmp_path, f'[checks.a]\ntarget = "127.0.0.1:{up}"\n')
        out = run_netdiag("check", "-f", path, f"tcp://127.0.0.1:{up}")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2


# --- checks file: strict validation, errors name line and key ---------------------------------

INVALID = [
    ('[checks.a]\ntarget = "tcp://x:1"\nexpect = "fine"\n', 3, "checks.a.expect"),
    ('[checks.a]\ntarget = "tcp://x:1"\n\n[checks.b]\ntargte = "x:1"\n', 5, "checks.b.targte"),
    ('[checks.a]\ntarget = "mysql://db"\npassword = "hunter2"\n', 3, "checks.a.password"),
    ('[checks.a]\ntarget = "tcp://x"\n', 2, "checks.a.target"),
    ('[checks.a]\ndescription = "no target"\n', 1, "checks.a"),
    ('[checks.a]\ntarget = "tcp://x:1"\ntimeout = "3s"\n', 3, "checks.a.timeout"),
    ('[checks.a]\ntarget = "tcp://x:1"\ntimeout = 0\n', 3, "checks.a.timeout"),
    ('[checks.a]\ntarget = "tcp://x:1"\naddresses = 0\n', 3, "checks.a.addresses"),
    ('[checks.a]\ntarget = "tcp://x:1"\nhttp_status = 200\n', 3, "checks.a.http_status"),
    ('[checks.a]\ntarget = "http://x"\nhttp_status = "2yy"\n', 3, "checks.a.http_status"),
    ('[checks.a]\ntarget = "http://x"\ndatabase = "todos"\n', 3, "checks.a.database"),
    ('[checks.a]\ntarget = "mysql://x"\ntable = "t"\n', 3, "checks.a.table"),
    ('[checks.a]\ntarget = "mysql://x"\npassword_env = "not a var"\n', 3, "checks.a.password_env"),
    ('[defaults]\ntimeout = 1\nretries = 3\n[checks.a]\ntarget = "x:1"\n', 3, "defaults.retries"),
    ('version = 2\n[checks.a]\ntarget = "x:1"\n', 1, "version"),
    ('[check.a]\ntarget = "x:1"\n', 1, "check"),
    ("version = 1\n", None, "checks"),
    ('[checks."bad name"]\ntarget = "x:1"\n', 1, "checks.bad name"),
    ('checks = "x"\n', 1, "checks"),
    ('[checks.a]\ntarget = "http://x"\ncert_days = 7\n', 3, "checks.a.cert_days"),
    ('[checks.a]\ntarget = "https://x"\ncert_days = 0\n', 3, "checks.a.cert_days"),
    ('[checks.a]\ntarget = "https://x"\ncert_days = "7"\n', 3, "checks.a.cert_days"),
    ('[checks.a]\ntarget = "https://x"\ncert_days = true\n', 3, "checks.a.cert_days"),
    ('[checks.a]\ntarget = "https://x"\ncert_days = 7.5\n', 3, "checks.a.cert_days"),
]


@pytest.mark.parametrize(("text", "line", "key"), INVALID)
def test_invalid_files_name_line_and_key(text, line, key):
    with pytest.raises(SpecError) as info:
        parse(text, "c.toml")
    message = str(info.value)
    prefix = f"c.toml:{line}: " if line else "c.toml: "
    assert message.startswith(f"{prefix}{key}: "), message
    assert "hunter2" not in message


def test_toml_syntax_error_names_line_and_column():
    with pytest.raises(SpecError) as info:
        parse('[checks.a]\ntarget = "x:1"\nexpect = ok\n', "c.toml")
    assert str(info.value).startswith("c.toml:3:"), info.value
    assert "invalid TOML" in str(info.value)


def test_invalid_file_via_cli_exits_1(tmp_path):
    path = write(tmp_path, '[checks.web]\ntarget = "tcp://x:1"\n\nexpect = "up"\n')
    out = run_netdiag("check", "-f", path)
    assert out.returncode == 1
    assert out.stderr.strip().startswith(f"netdiag check: {path}:4: checks.web.expect: ")


def test_valid_file_parses_everything():
    spec = parse(
        """
version = 1
[defaults]
timeout = 2
deadline = 20
[checks.db]
target = "mysql://mysql:3306"
user = "todo"
password_env = "MYSQL_PASSWORD"
database = "todos"
table = "todo_items"
addresses = 1
[checks.web]
target = "http://web:3000/"
http_status = [200, "3xx", "401-403"]
[checks.denied]
target = "mysql://mysql"
expect = "rejected"
timeout = 1.5
[checks.tls]
target = "https://web/"
cert_days = 7
"""
    )
    assert (spec.timeout, spec.deadline) == (2.0, 20.0)
    db, web, denied, tls = spec.checks
    assert tls.cert_days == 7 and tls.to_dict()["cert_days"] == 7 and web.cert_days is None
    assert db.needs_login and (db.database, db.table, db.addresses) == ("todos", "todo_items", 1)
    assert db.line == 6 and web.line == 13
    assert web.http_status == ["200", "3xx", "401-403"]
    assert str(denied.expect) == "rejected" and denied.timeout == 1.5 and not denied.needs_login


def test_address_count_is_per_result_ipv6_too():
    from netdiag.checks.run import judge
    from netdiag.checks.spec import Check
    from netdiag.result import ProbeResult
    from netdiag.status import Status
    from netdiag.targets import parse_target

    check = Check("v6", parse_target("dns://db.test"), addresses=2)
    results = [
        ProbeResult("dns://db.test", a, Status.OK, 1.0, "resolves") for a in ("fd00::2", "fd00::3")
    ]
    assert judge(check, results, 1.0).passed
    check.addresses = 1
    outcome = judge(check, results, 1.0)
    assert not outcome.passed and outcome.problems == [
        "db.test resolves to 2 addresses, expected exactly 1"
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_checks_file_or_a_spec_error(text):
    try:
        spec = parse(text, "f.toml")
    except SpecError as exc:
        assert str(exc).startswith("f.toml")
    else:
        assert spec.checks


KEYS = st.sampled_from(
    [
        "target",
        "expect",
        "timeout",
        "addresses",
        "http_status",
        "user",
        "database",
        "table",
        "password",
        "description",
        "bogus",
    ]
)
VALUES = st.one_of(
    st.integers(-5, 700),
    st.text(max_size=20),
    st.booleans(),
    st.floats(allow_nan=True),
    st.lists(st.integers(100, 600), max_size=3),
    st.sampled_from(["ok", "rejected", "tcp://x:1", "mysql://db", "http://w/", "2xx"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_structured_garbage_is_rejected_cleanly(table):
    import tomllib

    lines = ["[checks.c]"]
    for key, value in table.items():
        if isinstance(value, float) and value != value:
            rendered = "nan"
        elif isinstance(value, bool):
            rendered = str(value).lower()
        elif isinstance(value, str):
            rendered = '"' + value.encode("unicode_escape").decode().replace('"', '\\\\"') + '"'
        else:
            rendered = repr(value)
        lines.append(f"{key} = {rendered}")
    text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    try:
        parse(text, "f.toml")
    except SpecError as exc:
        message = str(exc)
        assert message.startswith("f.toml:"), message


@pytest.mark.slow
def test_interrupt_exits_1_not_130():
    """^C during a check (e.g. docker stop while the HEALTHCHECK runs) still exits 0 or 1."""
    with full_backlog() as stuck:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netdiag", "check", "--timeout", "4", "--deadline", "8",
             f"tcp://127.0.0.1:{stuck}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, (out, err)
    assert "interrupted" in err and "Traceback" not in err
