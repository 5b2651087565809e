"""One width rule for every command (report.py): $COLUMNS, else the terminal, else 100."""

from __future__ import annotations

import io

import pytest

from netdiag import report
from tests.conftest import run_netdiag
from tests.health_peers import closed_port
from tests.support import hostile

ENV = {"MYSQL_HOST": "", "MYSQL_USER": "", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
LONG = "MariaDB 10.11.19-MariaDB-0+deb12u1, no TLS, auth mysql_native_password; " * 2


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_terminal_width_rule(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    assert report.terminal_width(io.StringIO()) == 72
    monkeypatch.setenv("COLUMNS", "junk")
    assert report.terminal_width(io.StringIO()) == 100  # not a terminal
    monkeypatch.delenv("COLUMNS")
    assert report.terminal_width(io.StringIO()) == 100


@pytest.mark.parametrize("width", [120, 100, 80, 60])
def test_table_fits_wraps_and_folds(width: int) -> None:
    rows = [["mysql://db:3306", "10.0.0.3:3306", "ok", "2.4 ms", LONG], ["a", "b", "c", "d", "e"]]
    text = report.table(rows, ["TARGET", "ADDRESS", "STATUS", "TIME", "DETAIL"], width, fold=4)
    assert widest(text) <= width, text
    words = " ".join(text.split())
    assert "mysql_native_password;" in words  # every word is still there, none cut
    folded = "DETAIL" not in text.splitlines()[0]
    assert folded == (width - len("mysql://db:3306  10.0.0.3:3306  STATUS  2.4 ms  ") < 36)
    if folded:
        assert text.splitlines()[3].startswith(report.FOLD_INDENT + "MariaDB")


def test_table_keeps_columns_that_must_not_wrap() -> None:
    rows = [["10.0.0.2", "a-long-name " * 6, "stopped (exited)"]]
    text = report.table(rows, ["IP", "NAMES", "STATUS"], 50, narrow=(1,))
    assert "stopped (exited)" in text and widest(text) <= 50


def test_wrap_indented_aligns_continuations() -> None:
    lines = report.wrap_indented("word " * 40, "  fix:  ", "        ", 60)
    assert lines[0].startswith("  fix:  word") and all(len(x) <= 60 for x in lines)
    assert all(x.startswith("        word") for x in lines[1:])


def test_probe_and_doctor_fit_100_columns_when_not_a_terminal() -> None:
    closed = closed_port()
    with hostile.hostile_peer(hostile.http_reason_with_controls) as peer:
        probe = run_netdiag("probe", peer.url("http"), f"tcp://127.0.0.1:{closed}", env=ENV)
        narrow = run_netdiag("probe", peer.url("http"), env={**ENV, "COLUMNS": "60"})
    doctor = run_netdiag("doctor", f"tcp://127.0.0.1:{closed}", env=ENV)
    assert probe.returncode == 1 and widest(probe.stdout) <= 100, probe.stdout
    assert narrow.returncode == 1 and widest(narrow.stdout) <= 60, narrow.stdout
    assert narrow.stdout.splitlines()[2].startswith("http://")
    assert doctor.returncode == 1 and widest(doctor.stdout) <= 100, doctor.stdout
    assert any("fix:" in line for line in doctor.stdout.splitlines())


def test_wrap_indented_continuations_fit_under_a_longer_prefix() -> None:
    from netdiag.report import wrap_indented

    text = "sweep 192.168.160.0/20 stopped: an empty block: Docker hands out addresses " * 3
    lines = wrap_indented(text, "", "    ", width=100)
    assert len(lines) > 2 and max(len(line) for line in lines) <= 100
    assert all(line.startswith("    ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == text.strip()


def test_wrap_indented_first_line_uses_its_own_room() -> None:
    from netdiag.report import wrap_indented

    text = "x" * 60 + " " + "y" * 39  # 100 characters: one line after an empty first prefix
    assert wrap_indented(text, "", "    ", width=100) == [text]
    assert wrap_indented(text, "note: ", "      ", width=100) == [
        "note: " + "x" * 60,
        "      " + "y" * 39,
    ]
