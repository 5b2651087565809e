"""Replay the seed tutorial on a real dockerd with the real netdiag image.

Each step runs ``docker run --rm --network todo-app netdiag:dev ...`` exactly as a user would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dig_masks import mask
from tests.support.docker_engine import ensure_dockerd
from tests.support.tutorial import DB_PASSWORD, TodoApp, build_images, sql

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.docker]


@pytest.fixture(scope="module")
def app() -> Iterator[TodoApp]:
    ensure_dockerd()
    build_images()
    todo = TodoApp()
    try:
        todo.start()
        yield todo
    finally:
        todo.cleanup()


def bind_dig(app: TodoApp, *args: str) -> subprocess.CompletedProcess:
    """BIND dig run on the host inside the MySQL container's network namespace."""
    cmd = ["nsenter", "-t", str(app.pid(app.mysql)), "-n", "dig", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def test_dig_mysql_matches_bind_dig(app: TodoApp) -> None:
    ours = app.netdiag("dig", "@127.0.0.11", "mysql")
    theirs = bind_dig(app, "@127.0.0.11", "mysql")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert mask(ours.stdout).splitlines() == mask(theirs.stdout).splitlines()
    answer = [ln for ln in ours.stdout.splitlines() if "\tA\t" in ln]
    assert len(answer) == 1 and answer[0].endswith(app.ip(app.mysql))


def test_dig_default_resolver_is_embedded_dns(app: TodoApp) -> None:
    short = app.netdiag("dig", "+short", "mysql")
    assert short.returncode == 0, short.stderr
    assert short.stdout.split() == [app.ip(app.mysql)]
    full = app.netdiag("dig", "mysql")
    assert ";; SERVER: 127.0.0.11#53(127.0.0.11) (UDP)" in full.stdout


def test_dig_reverse_names_container_and_network(app: TodoApp) -> None:
    r = app.netdiag("dig", "+short", "-x", app.ip(app.mysql))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{app.mysql}.{app.network}."


def test_probe_version_equals_select_version(app: TodoApp) -> None:
    r = app.netdiag("probe", "--json", "mysql://mysql")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    results = doc["results"] if isinstance(doc, dict) else doc
    assert len(results) == 1
    assert results[0]["status"] == "ok"
    assert results[0]["address"] == f"{app.ip(app.mysql)}:3306"
    assert results[0]["facts"]["version"] == sql(app.mysql, "SELECT VERSION()")
    assert results[0]["facts"]["flavor"] == "MariaDB"


def test_probe_with_the_apps_environment(app: TodoApp, tmp_path: Path) -> None:
    secret = tmp_path / "mysql-password"
    secret.write_text(DB_PASSWORD + "\n")
    secret.chmod(0o644)
    env = ["-e", "MYSQL_HOST=mysql", "-e", "MYSQL_USER=todo", "-e", "MYSQL_DB=todos"]
    mount = ["-v", f"{secret}:/run/secrets/mysql-password:ro"]
    env += ["-e", "MYSQL_PASSWORD_FILE=/run/secrets/mysql-password"]
    for extra in ((), ("--json",)):
        r = app.netdiag(
            "probe", *extra, "--table", "todo_items", "mysql", docker_args=(*env, *mount)
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert DB_PASSWORD not in r.stdout + r.stderr
    result = json.loads(r.stdout)
    results = result["results"] if isinstance(result, dict) else result
    assert results[0]["status"] == "ok"
    assert results[0]["facts"]["database"] == "todos"
    assert results[0]["facts"]["table"] == "todo_items"
