"""The dispatcher: help, unknown commands, one-line failures."""

import pytest

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


def test_internal_error_is_one_line_exit_3(monkeypatch, capsys) -> None:
    from netdiag import cli

    monkeypatch.setitem(cli.COMMANDS, "boom", ("tests.support.boom_command", "a bug"))
    monkeypatch.delenv("NETDIAG_DEBUG", raising=False)
    assert cli.main(["boom", "x"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "RuntimeError: boom: x" in err
    assert "Traceback" not in err

    monkeypatch.setenv("NETDIAG_DEBUG", "1")
    assert cli.main(["boom", "y"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith("boom: y")


def test_envelope_keys_come_first() -> None:
    from netdiag import __version__
    from netdiag.report import ENVELOPE_KEYS, envelope

    doc = envelope("probe", True, 12.3456, {"results": []})
    assert list(doc)[:5] == list(ENVELOPE_KEYS)
    assert doc["schema"] == "netdiag.probe/1" and doc["version"] == __version__
    assert doc["elapsed_ms"] == 12.346 and doc["results"] == []
    with pytest.raises(ValueError):
        envelope("probe", True, 1.0, {"ok": 1})


# Every command, in process through the dispatcher, with a bug injected into a core function
# each of them calls (the Deadline every command builds; dig's resolv.conf reader): one line on
# stderr naming it, no traceback, the command's internal-error code; the traceback only with
# NETDIAG_DEBUG=1.
INTERNAL = [
    (["probe", "tcp://127.0.0.1:1"], 3),
    (["scan", "--no-docker", "--subnet", "127.0.0.0/30"], 3),
    (["self", "--no-dns", "--no-docker"], 3),
    (["doctor", "tcp://127.0.0.1:1"], 3),
    (["wait", "tcp://127.0.0.1:1"], 3),
    (["check", "tcp://127.0.0.1:1"], 1),  # HEALTHCHECK reads 0/1 only
    (["dig", "@127.0.0.1", "-p", "1", "mysql"], 10),  # BIND dig's internal error
    (["path", "127.0.0.1"], 3),
]


def _inject_bug(monkeypatch) -> None:
    from netdiag.deadline import Deadline
    from netdiag.dns import resolvconf

    def bug(*args, **kwargs):
        raise RuntimeError("injected bug")

    monkeypatch.setattr(Deadline, "__init__", bug)
    monkeypatch.setattr(resolvconf, "load", bug)


@pytest.mark.parametrize(("argv", "code"), INTERNAL, ids=[a[0] for a, _ in INTERNAL])
def test_internal_error_exit_code_per_command(monkeypatch, capsys, argv, code) -> None:
    from netdiag import cli

    _inject_bug(monkeypatch)
    monkeypatch.delenv("NETDIAG_DEBUG", raising=False)
    assert cli.main(argv) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"netdiag {argv[0]}: internal error") and "RuntimeError: injected" in err

    monkeypatch.setenv("NETDIAG_DEBUG", "1")
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "injected bug" in err
