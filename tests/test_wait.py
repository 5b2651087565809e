"""netdiag wait against real loopback listeners that come, go, or never appear."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import NETDIAG, run_netdiag, usage_error
from tests.health_peers import closed_port, full_backlog, listener
from tests.support.schemas import netdiag_json
from tests.support.timing import quick_run, slack

INTERVAL = 0.25  # wait's default --interval: the longest pause between attempts


def prompt_bound(reference: float) -> float:
    """How soon after a change wait must have exited: one pause, plus twice the time a quick
    netdiag process took in the same test (start-up and scheduling on this machine, now)."""
    return INTERVAL + 2 * reference


def start_wait(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*NETDIAG, "wait", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def exited_at(proc: subprocess.Popen, limit: float = 30) -> float:
    """Monotonic time at which the process exited (polled every 2 ms)."""
    end = time.monotonic() + limit
    while proc.poll() is None:
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("netdiag wait did not exit")
        time.sleep(0.002)
    return time.monotonic()


def delayed_listener(port: int, delay: float, hold: float = 5.0) -> tuple[threading.Thread, dict]:
    """Listen on ``port`` after ``delay`` s; ``info["listen_at"]`` records the listen() moment."""
    info: dict = {}

    def run() -> None:
        time.sleep(delay)
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(16)
        info["listen_at"] = time.monotonic()
        time.sleep(hold)
        srv.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, info


@pytest.mark.slow
def test_notices_a_late_service_promptly():
    latencies = []
    reference = quick_run()
    for _ in range(3):
        port = closed_port()
        proc = start_wait(f"tcp://127.0.0.1:{port}", "--timeout", "20")
        thread, info = delayed_listener(port, random.uniform(1.0, 2.0), hold=3)
        done = exited_at(proc)
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        latencies.append(done - info["listen_at"])
        assert "ready after" in err and "refused" in err
        assert out == ""
        thread.join()
    # default --interval 0.25: the pause before an attempt never exceeds it
    assert max(latencies) < prompt_bound(reference), (latencies, reference)


@pytest.mark.slow
def test_never_up_exits_124_without_running_cmd(tmp_path):
    marker = tmp_path / "ran"
    port = closed_port()
    start = time.monotonic()
    out = run_netdiag(
        "wait", f"tcp://127.0.0.1:{port}", "--timeout", "1", "--", "touch", str(marker)
    )
    elapsed = time.monotonic() - start
    assert out.returncode == 124, out
    assert not marker.exists()
    assert 1.0 <= elapsed < 1.0 + slack()
    assert "timeout after 1s" in out.stderr and "not running touch" in out.stderr


@pytest.mark.slow
def test_deadline_beats_a_long_attempt_timeout():
    with full_backlog() as port:
        start = time.monotonic()
        out = run_netdiag("wait", f"127.0.0.1:{port}", "--timeout", "1", "--attempt-timeout", "30")
        elapsed = time.monotonic() - start
    assert out.returncode == 124
    assert elapsed < 1.0 + slack()  # the 30 s attempt was cut at the 1 s total


def test_runs_cmd_by_exec_and_returns_its_code(tmp_path):
    with listener() as port:
        proc = start_wait(
            f"tcp://127.0.0.1:{port}",
            "--",
            "sh",
            "-c",
            'echo "pid=$$ args=$1"; exit 7',
            "sh",
            "x y",
        )
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err
    # exec: the command runs as the very process that was started as netdiag wait
    assert out == f"pid={proc.pid} args=x y\n"


def test_cmd_not_found_is_127():
    with listener() as port:
        out = run_netdiag("wait", f"127.0.0.1:{port}", "--", "/nonexistent/cmd")
    assert out.returncode == 127 and "command not found" in out.stderr


@pytest.mark.slow
def test_all_targets_in_parallel():
    reference = quick_run()
    a, b = closed_port(), closed_port()
    start = time.monotonic()
    proc = start_wait(f"127.0.0.1:{a}", f"127.0.0.1:{b}", "--timeout", "10", "--json")
    t1, _ = delayed_listener(a, 0.6, hold=3)
    t2, _ = delayed_listener(b, 1.2, hold=3)
    out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, err
    assert elapsed < 1.2 + slack(reference)  # not 0.6 + 1.2 one after the other
    doc = netdiag_json(out)
    assert doc["ready"] is True and doc["timed_out"] is False
    after = [t["ready_after_ms"] / 1000 for t in doc["targets"]]
    # each was seen within one pause of its listener: 0.6 s apart, as the listeners were
    assert abs((after[1] - after[0]) - 0.6) < prompt_bound(reference), (after, reference)
    assert all(t["status"] == "ok" for t in doc["targets"])
    t1.join()
    t2.join()


@pytest.mark.slow
def test_one_missing_target_times_out_the_whole_wait():
    with listener() as up:
        out = run_netdiag(
            "wait", f"127.0.0.1:{up}", f"127.0.0.1:{closed_port()}", "--timeout", "1", "--json"
        )
    assert out.returncode == 124
    doc = netdiag_json(out.stdout)
    assert [t["ready"] for t in doc["targets"]] == [True, False]
    assert doc["targets"][1]["status"] == "refused"


@pytest.mark.slow
def test_invert_waits_until_gone():
    reference = quick_run()
    port = closed_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    proc = start_wait(f"tcp://127.0.0.1:{port}", "--invert", "--timeout", "10")
    time.sleep(0.8)
    assert proc.poll() is None  # still there: still waiting
    srv.close()
    closed_at = time.monotonic()
    done = exited_at(proc)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert done - closed_at < prompt_bound(reference)
    assert "gone after" in err


def test_invert_times_out_while_still_there(tmp_path):
    marker = tmp_path / "ran"
    with listener() as port:
        out = run_netdiag(
            "wait", f"127.0.0.1:{port}", "--invert", "--timeout", "0.6", "--", "touch", str(marker)
        )
    assert out.returncode == 124 and not marker.exists()
    assert "still there" in out.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--timeout", "1"],
        ["127.0.0.1:1", "--"],
        ["127.0.0.1:1", "--timeout", "soon"],
        ["127.0.0.1:1", "--interval", "0"],
        ["nohost"],
    ],
)
def test_usage_errors_exit_2(args):
    out = run_netdiag("wait", *args)
    assert out.returncode == 2, out
    usage_error(out.stderr, "wait")


def test_json_on_stdout_progress_on_stderr():
    with listener() as port:
        out = run_netdiag("wait", f"127.0.0.1:{port}", "--json")
    assert out.returncode == 0
    doc = netdiag_json(out.stdout)
    assert doc["targets"][0]["attempts"] == 1 and doc["invert"] is False
    assert "ready after" in out.stderr
    quiet = run_netdiag("wait", f"127.0.0.1:{closed_port()}", "-q", "--timeout", "0.3")
    assert quiet.returncode == 124 and quiet.stderr.count("\n") == 1  # only the timeout line


def test_json_is_flushed_before_exec():
    with listener() as port:
        out = run_netdiag(
            "wait", f"127.0.0.1:{port}", "--json", "--", sys.executable, "-c", "print('cmd')"
        )
    assert out.returncode == 0
    doc_text, _, rest = out.stdout.rpartition("}\n")
    assert netdiag_json(doc_text + "}")["ready"] is True and rest == "cmd\n"


@pytest.mark.slow
def test_waits_for_a_name_to_appear(tmp_path):
    """Docker's DNS knows a service only once its container runs: wait for dns:// too."""
    from tests.health_peers import resolver_env
    from tests.support.mini_dns import MiniDns

    reference = quick_run()

    with MiniDns("127.0.0.1", 0, {}) as dns:
        proc = subprocess.Popen(
            [*NETDIAG, "wait", "dns://late.test", "--timeout", "10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **resolver_env(tmp_path, dns.port)},
        )
        time.sleep(0.8)
        assert proc.poll() is None
        dns.records[("late.test.", "A")] = ["127.0.0.1"]
        added = time.monotonic()
        done = exited_at(proc)
        _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert done - added < prompt_bound(reference)
    assert "dns_failed" in err and "resolves to 127.0.0.1" in err


@pytest.mark.slow
def test_waits_for_a_real_mariadb_greeting(tmp_path):
    from tests.support.servers import have, start_mariadb

    if not have("mariadbd", "mariadb-install-db", "mariadb"):
        pytest.skip("needs mariadb-server")
    reference = quick_run()
    port = closed_port()
    marker = tmp_path / "started"
    proc = start_wait(f"mysql://127.0.0.1:{port}", "--timeout", "90", "--", "touch", str(marker))
    time.sleep(0.5)
    assert proc.poll() is None and not marker.exists()
    # the last --port wins: mariadbd listens where netdiag is already waiting
    with start_mariadb(extra_args=(f"--port={port}",)):
        ready = time.monotonic()
        done = exited_at(proc, limit=30)
        _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert marker.exists()
    assert done - ready < prompt_bound(reference)
    assert "MariaDB" in err


NO_APP_ENV = {
    f"MYSQL_{k}{f}": "" for k in ("HOST", "USER", "PASSWORD", "DB") for f in ("", "_FILE")
}


@pytest.mark.slow
def test_waits_for_the_apps_own_login(mariadb, tmp_path):
    """Ready means the app's login works: a wrong password is not ready (124), as for check."""
    from tests.support.servers import TODO_DB, TODO_PASSWORD, TODO_TABLE, TODO_USER

    secret = tmp_path / "pw"
    secret.write_text(TODO_PASSWORD + "\n")
    marker = tmp_path / "started"
    app = {**NO_APP_ENV, "MYSQL_USER": TODO_USER, "MYSQL_DB": TODO_DB}
    wrong = run_netdiag(
        "wait", mariadb.url, "--timeout", "1.5", "--json", "--", "touch", str(marker),
        env={**app, "MYSQL_PASSWORD": "not-the-password"},
    )  # fmt: skip
    assert wrong.returncode == 124, wrong
    assert not marker.exists()
    (state,) = netdiag_json(wrong.stdout, "wait")["targets"]
    assert state["status"] == "rejected" and "1045" in state["detail"]
    assert "1045" in wrong.stderr  # the progress line says why it is not ready

    right = run_netdiag(
        "wait", mariadb.url, "--timeout", "10", "--json", "--", "touch", str(marker),
        env={**app, "MYSQL_PASSWORD_FILE": str(secret)},
    )  # fmt: skip
    assert right.returncode == 0, right
    assert marker.exists()
    doc_text = right.stdout
    (state,) = netdiag_json(doc_text, "wait")["targets"]
    assert state["detail"].startswith(f"logged in as {TODO_USER}, database {TODO_DB}")

    # the same login from flags, with a table; a missing table is not ready either
    flags = ["--user", TODO_USER, "--password-file", str(secret), "--database", TODO_DB]
    ok = run_netdiag("wait", mariadb.url, *flags, "--table", TODO_TABLE, env=NO_APP_ENV)
    assert ok.returncode == 0, ok
    missing = run_netdiag(
        "wait", mariadb.url, *flags, "--table", "nope", "--timeout", "1", env=NO_APP_ENV
    )
    assert missing.returncode == 124 and "1146" in missing.stderr
    for out in (wrong, right, ok, missing):
        assert TODO_PASSWORD not in out.stdout + out.stderr
