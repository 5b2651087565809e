"""The dispatcher: help, unknown commands, one-line failures."""

from tests.conftest import run_netdiag


def test_help_lists_commands() -> None:
    r = run_netdiag("--help")
    assert r.returncode == 0
    assert "dig" in r.stdout and "self" in r.stdout


def test_no_args_is_usage() -> None:
    r = run_netdiag()
    assert r.returncode == 2


def test_unknown_command() -> None:
    r = run_netdiag("frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr
    assert "Traceback" not in r.stderr


def test_version() -> None:
    r = run_netdiag("--version")
    assert r.returncode == 0 and r.stdout.startswith("netdiag ")
