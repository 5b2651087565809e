"""The credential login against hostile MySQL peers of our own (issue 14 §2, §3, §16): every
read after the login is bounded, the password never goes out in clear, a server that loops
auth switches gets no "ok". Each ends in time with a small, measured peak of allocations."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from netdiag.deadline import Deadline
from netdiag.probes import engine
from netdiag.probes.settings import MySQLLogin, ProbeOptions
from netdiag.secrets import Secret
from netdiag.targets import parse_target
from tests.conftest import run_netdiag
from tests.support import hostile

SECRET = "Zq9-hostile-PW-8c1d"
TIMEOUT = 3.0
# Peak Python allocations for one probe, the hostile peer's thread included: a peer that
# offers 256 MB (or endless rows) must not get more than the read budget (256 KiB) in.
MEMORY_BOUND = 1024 * 1024


def probe(behaviour, login: MySQLLogin | None) -> tuple:
    import pymysql  # noqa: F401  (imported before tracing)

    from netdiag.probes import mysql_driver  # noqa: F401

    engine.probe_class("mysql")
    with hostile.hostile_peer(behaviour) as peer:
        target = parse_target(peer.url("mysql"))
        tracemalloc.start()
        try:
            start = time.monotonic()
            (result,) = engine.run(
                [target], ProbeOptions(timeout=TIMEOUT, mysql=login), Deadline(10)
            )
            elapsed = time.monotonic() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return result, elapsed, peak


def app_login() -> MySQLLogin:
    return MySQLLogin("todo", Secret(SECRET), "todos", password_from="MYSQL_PASSWORD")


def secret_forms(text: str) -> list[str]:
    raw = SECRET.encode()
    return [f for f in (SECRET, SECRET.upper(), raw.hex(), SECRET[:8]) if f in text]


@pytest.mark.parametrize(
    "answer", [hostile.huge_row, hostile.endless_rows], ids=["huge_row", "endless_rows"]
)
def test_reads_after_login_are_bounded(answer) -> None:
    result, elapsed, peak = probe(hostile.mysql_server(on_query=answer), app_login())
    assert str(result.status) == "protocol_mismatch", result
    assert result.step == "query" and "not a MySQL answer" in result.detail
    assert elapsed < TIMEOUT + 1.0
    assert peak < MEMORY_BOUND, f"peak {peak} bytes"


@pytest.mark.parametrize("plugin", [b"mysql_clear_password", b"dialog"])
def test_cleartext_password_is_refused_without_tls(plugin: bytes) -> None:
    received: list[bytes] = []
    result, elapsed, peak = probe(hostile.auth_switch(plugin, received), app_login())
    assert str(result.status) == "error" and result.step == "login", result
    assert "in clear text" in result.detail and "refused" in result.detail
    assert result.facts["cleartext_refused"] is True
    assert result.facts["auth_plugin_requested"] == plugin.decode()
    assert all(SECRET.encode() not in r for r in received), received
    assert not secret_forms(json.dumps(result.to_dict()))
    assert elapsed < TIMEOUT + 1.0 and peak < MEMORY_BOUND


@pytest.mark.slow
def test_cleartext_refusal_via_the_command_line() -> None:
    received: list[bytes] = []
    with hostile.hostile_peer(hostile.auth_switch(b"mysql_clear_password", received)) as peer:
        env = {"MYSQL_USER": "todo", "MYSQL_PASSWORD": SECRET, "MYSQL_PASSWORD_FILE": ""}
        outs = [run_netdiag(c, *a, peer.url("mysql"), env=env) for c, a in
                (("probe", ["--json"]), ("check", []), ("wait", ["--timeout", "1"]))]  # fmt: skip
    assert [o.returncode for o in outs] == [1, 1, 124]
    assert "in clear text" in outs[0].stdout and "in clear text" in outs[1].stdout
    assert all(SECRET.encode() not in r for r in received)
    for out in outs:
        assert not secret_forms(out.stdout + out.stderr)


def test_native_password_echo_carries_no_password() -> None:
    """Control: the scrambled answer is all a server can echo; it is reported as 1045."""
    received: list[bytes] = []
    result, _, _ = probe(hostile.auth_switch(b"mysql_native_password", received), app_login())
    assert str(result.status) == "rejected" and result.facts["error_code"] == 1045
    assert received and all(SECRET.encode() not in r for r in received)
    assert not secret_forms(result.detail)


def test_auth_switch_loop_is_no_ok() -> None:
    loop = hostile.mysql_server(on_login=hostile.auth_switch_loop)
    dummy, elapsed, peak = probe(loop, None)  # no user: the greeting and a dummy login
    assert str(dummy.status) == "protocol_mismatch", dummy
    assert dummy.step == "dummy_login" and "switch authentication again" in dummy.detail
    assert elapsed < TIMEOUT + 1.0 and peak < MEMORY_BOUND
    login, elapsed, peak = probe(loop, app_login())
    assert str(login.status) == "error" and "multiple auth switch" in login.detail, login
    assert elapsed < TIMEOUT + 1.0 and peak < MEMORY_BOUND
