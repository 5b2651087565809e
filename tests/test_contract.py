"""The one flag contract (docs/reference.md#options): -q, --timeout/--deadline, usage errors.

Real loopback listeners and closed ports; nothing leaves the machine.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_netdiag, usage_error
from tests.health_peers import closed_port, listener
from tests.support.schemas import netdiag_json

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
CLEAN = {"MYSQL_HOST": "", "MYSQL_USER": "", "MYSQL_PASSWORD": "", "MYSQL_DB": ""}


def test_quiet_prints_only_what_failed_probe() -> None:
    closed = closed_port()
    with listener() as up:
        good = run_netdiag("probe", "-q", f"tcp://127.0.0.1:{up}")
        mixed = run_netdiag("probe", "--quiet", f"tcp://127.0.0.1:{up}", f"127.0.0.1:{closed}")
        both = run_netdiag("probe", "-q", "--json", f"tcp://127.0.0.1:{up}")
    assert (good.returncode, good.stdout, good.stderr) == (0, "", "")
    assert mixed.returncode == 1
    rows = mixed.stdout.splitlines()[2:]  # header and rule, then only the failing row
    assert len(rows) == 1 and f"127.0.0.1:{closed}" in rows[0] and "refused" in rows[0]
    assert netdiag_json(both.stdout, "probe")["ok"] is True  # --json wins over -q


def test_quiet_doctor_prints_the_failing_step_and_fix_only() -> None:
    closed = closed_port()
    with listener() as up:
        good = run_netdiag("doctor", "-q", f"tcp://127.0.0.1:{up}", env={**CLEAN, **NO_DOCKER})
    bad = run_netdiag("doctor", "-q", f"tcp://127.0.0.1:{closed}", env={**CLEAN, **NO_DOCKER})
    assert (good.returncode, good.stdout) == (0, "")
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[0].split()[1:3] == ["connect", "FAIL"] and "PASS" not in bad.stdout
    assert any("fix:" in line for line in lines) and lines[-1] == "result: FAIL at connect"


def test_quiet_wait_prints_nothing_when_all_is_well() -> None:
    # scan -q is tested in its lab (tests/test_scan_netns.py): scan never runs on the host
    with listener() as up:
        wait = run_netdiag("wait", "-q", f"tcp://127.0.0.1:{up}")
    assert (wait.returncode, wait.stdout, wait.stderr) == (0, "", "")


@pytest.mark.slow
def test_wait_takes_deadline_as_its_timeout() -> None:
    port = closed_port()
    same = run_netdiag("wait", "-q", f"127.0.0.1:{port}", "--deadline", "0.3")
    assert same.returncode == 124 and "timeout after 0.3s" in same.stderr
    both = run_netdiag("wait", f"127.0.0.1:{port}", "--timeout", "0.3", "--deadline", "0.3")
    assert both.returncode == 124
    differ = run_netdiag("wait", f"127.0.0.1:{port}", "--timeout", "1", "--deadline", "2")
    assert differ.returncode == 2 and "--deadline is wait's --timeout" in usage_error(
        differ.stderr, "wait"
    )
    assert " S " in run_netdiag("wait", "-h").stdout.replace("\n", " ")


def test_self_takes_timeout_and_deadline() -> None:
    out = run_netdiag(
        "self", "--json", "--no-dns", "--timeout", "0.5", "--deadline", "3", env=NO_DOCKER
    )
    assert out.returncode == 0, out.stderr
    assert netdiag_json(out.stdout, "self")["ok"] is True
    assert "--deadline" in usage_error(run_netdiag("self", "--deadline", "0").stderr, "self")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["probe", "--expect-status", "200", "tcp://127.0.0.1:1"], "http:// and https://"),
        (["probe", "--greeting-only", "--user", "app", "mysql://127.0.0.1:1"], "--greeting-only"),
        (["doctor", "--table", "t", "tcp://127.0.0.1:1"], "--table needs a mysql://"),
        (["scan", "--network", "todo-app", "--no-docker"], "--network needs the Docker API"),
        (["probe", "ftp://x:21"], "unknown scheme"),
    ],
    ids=["expect-status", "greeting-only", "doctor-table", "network-no-docker", "scheme"],
)
def test_conflicting_flags_are_usage_errors(argv: list[str], reason: str) -> None:
    out = run_netdiag(*argv, env={**CLEAN, **NO_DOCKER})
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert reason in usage_error(out.stderr, argv[0])


# --- help: enough for a pip user who has no docs/ ---------------------------------------------


def test_top_help_points_to_command_help() -> None:
    out = run_netdiag("-h")
    assert out.returncode == 0 and "netdiag COMMAND -h" in out.stdout
    assert "in the source tree" not in out.stdout


@pytest.mark.parametrize("command", ["probe", "scan", "self", "check", "wait", "doctor"])
def test_command_help_has_exit_codes_and_seconds_metavars(command: str) -> None:
    out = run_netdiag(command, "-h")
    assert out.returncode == 0 and "Exit:" in out.stdout
    assert "TIMEOUT" not in out.stdout and "DEADLINE" not in out.stdout  # seconds are S
    if command != "check":
        assert "3 internal error" in " ".join(out.stdout.split())


def test_dig_help_lists_every_implemented_option() -> None:
    """Every option docs/dig.md calls implemented or accepted is in `dig -h`, as in BIND."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "dig.md").read_text()
    section = text.split("### Options", 1)[1].split("Known to dig but not implemented", 1)[0]
    words = set(re.findall(r"`\+(?:\[no\])?([a-z]+)", section))
    out = run_netdiag("dig", "-h")
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith("Usage:  dig [@global-server]")
    missing = {w for w in words if w not in out.stdout}
    assert not missing, missing
    for flag in ("-4", "-6", "-c class", "-f filename", "-p port", "-q name", "-t type", "-x"):
        assert flag in out.stdout
    assert all(len(line) <= 100 for line in out.stdout.splitlines())


def test_check_reads_a_checks_file_from_stdin() -> None:
    spec = '[checks.closed]\ntarget = "tcp://127.0.0.1:1"\nexpect = "refused"\n'
    out = run_netdiag("check", "-f", "-", input=spec)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PASS closed tcp://127.0.0.1:1: refused (expected refused)")
