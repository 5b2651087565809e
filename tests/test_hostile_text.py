"""A peer's text cannot drive the terminal or forge output (issue 14 item 5).

Hostile peers of our own on loopback (tests/support/hostile.py) answer with ESC sequences, BEL,
a bare CR and a newline followed by "PASS forged" in a MySQL ERR, a PostgreSQL ErrorResponse,
a Redis -ERR and an HTTP reason phrase. Every human output (probe's table, check's lines, the
--junit file, wait's progress, doctor's steps) shows them escaped; JSON keeps the exact text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_netdiag
from tests.support import hostile
from tests.support.schemas import netdiag_json

ENV = {
    "MYSQL_HOST": "", "MYSQL_USER": "", "MYSQL_PASSWORD": "", "MYSQL_DB": "",
    "DOCKER_HOST": "unix:///nonexistent/docker.sock",
}  # fmt: skip
PEERS = [
    (hostile.mysql_err_with_controls, "mysql"),
    (hostile.postgres_error_with_controls, "postgres"),
    (hostile.redis_err_with_controls, "redis"),
    (hostile.http_reason_with_controls, "http"),
]
IDS = [scheme for _, scheme in PEERS]


def assert_clean(text: str, lines: int | None = None) -> None:
    """No control character but the newlines that end lines; no forged line."""
    bad = sorted({hex(ord(c)) for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F})
    assert not bad, (bad, text)
    assert not any(line.startswith(("PASS forged", "FAKE")) for line in text.splitlines()), text
    if lines is not None:
        assert len(text.splitlines()) == lines, text


@pytest.mark.parametrize(("behaviour", "scheme"), PEERS, ids=IDS)
def test_check_lines_and_junit_escape_peer_text(behaviour, scheme: str, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    with hostile.hostile_peer(behaviour) as peer:
        out = run_netdiag("check", "--junit", str(junit), peer.url(scheme), env=ENV)
    assert out.returncode == 1
    assert_clean(out.stdout, lines=1)
    assert out.stdout.startswith("FAIL ")
    failure = ET.parse(junit).find(".//failure")  # well-formed XML
    assert failure is not None
    assert_clean(failure.get("message", "") + "\n" + (failure.text or ""))
    if scheme != "redis":  # redis: a non-printable -ERR is "not Redis", shown as hex
        assert "\\x1b[2J" in out.stdout and "\\x1b[2J" in failure.get("message", "")


@pytest.mark.parametrize(("behaviour", "scheme"), PEERS, ids=IDS)
def test_probe_table_escapes_and_json_keeps_the_exact_text(behaviour, scheme: str) -> None:
    with hostile.hostile_peer(behaviour) as peer:
        table = run_netdiag("probe", peer.url(scheme), env=ENV)
        doc = run_netdiag("probe", "--json", peer.url(scheme), env=ENV)
    assert table.returncode == 1
    assert_clean(table.stdout)
    (result,) = netdiag_json(doc.stdout, "probe")["results"]
    raw = result["detail"] + repr(result["facts"])
    assert "\x1b[2J" in raw or "1b5b324a" in raw  # the peer's bytes, exactly (or as hex)


@pytest.mark.slow
def test_wait_progress_and_doctor_steps_escape_peer_text() -> None:
    with hostile.hostile_peer(hostile.mysql_err_with_controls) as peer:
        wait = run_netdiag("wait", "--timeout", "0.5", peer.url("mysql"), env=ENV)
        doctor = run_netdiag("doctor", peer.url("mysql"), env=ENV)
    assert wait.returncode == 124
    assert_clean(wait.stderr)
    assert "\\x1b[2J" in wait.stderr
    assert doctor.returncode == 1
    assert_clean(doctor.stdout)
    assert "\\x1b[2J" in doctor.stdout and "result: FAIL at greeting" in doctor.stdout
