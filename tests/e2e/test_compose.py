"""examples/todo-app/compose.yaml: valid for Debian's docker-compose, and it really works.

The bring-up substitutes local images (netdiag-mariadb:dev for mysql:8.0, a netdiag container
for the Node app) through the compose file's image variables and tests/e2e/compose/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.docker_engine import docker, ensure_dockerd
from tests.support.tutorial import MARIADB_IMAGE, NETDIAG_IMAGE, REPO, build_images

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.docker]

EXAMPLE = REPO / "examples/todo-app"
OVERRIDE = Path(__file__).parent / "compose"
# The image under test; NETDIAG_COMPOSE_IMAGE lets a developer try another build of netdiag.
IMAGE = os.environ.get("NETDIAG_COMPOSE_IMAGE", NETDIAG_IMAGE)
PASSWORD = "compose-Secret-4b1d07"


def compose(
    project: Path, name: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    files = ["-f", str(project / "compose.yaml")]
    if (project / "compose.test.yaml").exists():
        files += ["-f", str(project / "compose.test.yaml")]
    return subprocess.run(
        ["docker-compose", "--no-ansi", "-p", name, *files, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=project,
    )


def parse_time(stamp: str) -> datetime:
    """Docker's RFC 3339 times carry nanoseconds; datetime takes microseconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    frac = (frac.split("+")[0].split("-")[0] + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{frac}")


def test_example_is_valid_for_docker_compose() -> None:
    r = compose(EXAMPLE, "ndtest-config", "config")
    assert r.returncode == 0, r.stderr
    r = compose(EXAMPLE, "ndtest-config", "config", "--services")
    assert sorted(r.stdout.split()) == ["app", "db-ready", "mysql"]
    r = compose(EXAMPLE, "ndtest-config", "config", env={"NETDIAG_IMAGE": "x/netdiag:1"})
    assert "image: x/netdiag:1" in r.stdout
    assert "condition: service_healthy" in r.stdout
    assert "- netdiag\n      - check" in r.stdout


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    ensure_dockerd()
    build_images()
    if docker("run", "--rm", IMAGE, "check", "-h", check=False).returncode != 0:
        pytest.skip(f"{IMAGE} has no `netdiag check` yet")
    for f in ("compose.yaml", "netdiag-checks.toml"):
        shutil.copy(EXAMPLE / f, tmp_path)
    for f in OVERRIDE.iterdir():
        shutil.copy(f, tmp_path)
    (tmp_path / "secrets").mkdir()
    for name, value in (("mysql_root_password", "root-" + PASSWORD), ("mysql_password", PASSWORD)):
        path = tmp_path / "secrets" / f"{name}.txt"
        path.write_text(value)
        path.chmod(0o644)  # the netdiag user (uid 10001) reads it through the bind mount
    name = f"ndtest-compose-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp_path, name
    finally:
        r = compose(tmp_path, name, "down", "-v", "--remove-orphans", "-t", "2", timeout=120)
        assert r.returncode == 0, r.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compose_up_app_starts_after_netdiag_healthcheck(project: tuple[Path, str]) -> None:
    path, name = project
    env = {
        "MYSQL_IMAGE": MARIADB_IMAGE,
        "NETDIAG_IMAGE": IMAGE,
        "APP_IMAGE": IMAGE,
        "APP_PORT": str(free_port()),
    }
    r = compose(path, name, "config", env=env)
    assert r.returncode == 0, r.stderr
    assert "internal: true" in r.stdout
    # up -d returns once db-ready is healthy and the app has been started after it
    up = compose(path, name, "up", "-d", env=env, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    app, ready, mysql = (f"{name}_{svc}_1" for svc in ("app", "db-ready", "mysql"))
    end = time.monotonic() + 60
    while docker("inspect", "-f", "{{.State.Status}}", app).stdout.strip() != "exited":
        assert time.monotonic() < end, "the app stand-in did not finish"
        time.sleep(0.5)
    state = json.loads(docker("inspect", "-f", "{{json .State}}", app).stdout)
    logs = docker("logs", app)
    assert state["ExitCode"] == 0, logs.stdout + logs.stderr
    assert "ok" in logs.stdout and "todo_items" in logs.stdout
    health = json.loads(docker("inspect", "-f", "{{json .State.Health}}", ready).stdout)
    assert health["Status"] == "healthy"
    first_ok = min(parse_time(h["End"]) for h in health["Log"] if h["ExitCode"] == 0)
    assert parse_time(state["StartedAt"]) >= first_ok
    # what the health check checks: one holder of the name, and the app's login
    r = docker("exec", ready, "netdiag", "check", "-f", "/etc/netdiag/checks.toml", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS mysql-name" in r.stdout and "PASS todo-login" in r.stdout
    assert "logged in as todo" in r.stdout
    # the check's output lands in docker inspect: the password must not
    everything = logs.stdout + logs.stderr + json.dumps(health) + up.stdout + up.stderr + r.stdout
    assert PASSWORD not in everything
    # the health check really tracks the database: stop it and the next check fails
    docker("stop", "-t", "2", mysql)
    stopped = datetime.utcnow()
    end = time.monotonic() + 30
    while True:
        log = json.loads(docker("inspect", "-f", "{{json .State.Health.Log}}", ready).stdout)
        after = [h for h in log if parse_time(h["Start"]) > stopped]
        if after:
            break
        assert time.monotonic() < end, "no health check ran after the database stopped"
        time.sleep(1)
    assert after[0]["ExitCode"] == 1, after[0]
    assert "FAIL" in after[0]["Output"] and PASSWORD not in after[0]["Output"]
