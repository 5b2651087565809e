"""Replay the seed tutorial on a real dockerd with the real netdiag image.

Each step runs ``docker run --rm --network todo-app netdiag ...`` exactly as a user would.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dig_masks import mask
from tests.support.docker_engine import docker, ensure_dockerd, unique
from tests.support.schemas import netdiag_json
from tests.support.tutorial import DB_PASSWORD, NETDIAG_IMAGE, TodoApp, build_images, sql

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
    doc = netdiag_json(r.stdout)
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
    result = netdiag_json(r.stdout)
    results = result["results"] if isinstance(result, dict) else result
    assert results[0]["status"] == "ok"
    assert results[0]["facts"]["database"] == "todos"
    assert results[0]["facts"]["table"] == "todo_items"


SOCKET = "/var/run/docker.sock"


def socket_args() -> tuple[str, ...]:
    """Mount the Docker socket read-only and let the image's non-root user read it."""
    gid = str(Path(SOCKET).stat().st_gid)
    return ("-v", f"{SOCKET}:{SOCKET}:ro", "--group-add", gid)


def busybox(app: TodoApp, name: str, network: str, *extra: str) -> str:
    from tests.support.docker_engine import ensure_busybox_image

    app.containers.append(name)
    docker_run = ["run", "-d", "--name", name, "--network", network, *extra]
    docker(*docker_run, ensure_busybox_image(), "sleep", "3600")
    return name


def scan_peers(doc: dict) -> dict[str, dict]:
    return {p["container"]: p for net in doc["networks"] for p in net["peers"] if p["container"]}


@pytest.fixture(scope="module")
def web(app: TodoApp) -> str:
    """A stand-in for the todo app's container on the same network."""
    return busybox(app, unique("web"), app.network, "--network-alias", "web")


@pytest.mark.parametrize("with_socket", [True, False], ids=["socket", "no-socket"])
def test_scan_lists_both_containers(app: TodoApp, web: str, with_socket: bool) -> None:
    extra = socket_args() if with_socket else ()
    r = app.netdiag("scan", "--json", docker_args=extra)
    doc = netdiag_json(r.stdout)
    assert doc["docker"]["used"] is with_socket, doc["docker"]
    peers = {p["ip"]: p for net in doc["networks"] for p in net["peers"]}
    mysql_peer = peers[app.ip(app.mysql)]
    web_peer = peers[app.ip(web)]
    # Without the API the names come from PTR (name.network); with it, aliases too.
    assert f"{app.mysql}.{app.network}" in " ".join(mysql_peer["names"])
    assert f"{web}.{app.network}" in " ".join(web_peer["names"])
    if with_socket:
        assert mysql_peer["container"] == app.mysql and web_peer["container"] == web
        assert "mysql" in mysql_peer["names"] and "web" in web_peer["names"]
    mysql_ports = {p["port"]: p for p in mysql_peer["ports"]}
    assert mysql_ports[3306]["protocol"] == "mysql"
    assert mysql_ports[3306]["facts"]["version"] == sql(app.mysql, "SELECT VERSION()")
    assert mysql_peer["reachable"] and web_peer["reachable"]
    assert r.returncode == 0, r.stderr


def test_check_as_healthcheck(app: TodoApp) -> None:
    db = unique("db")
    app.start_mysql(db, aliases=("healthdb",))
    app.wait_mysql(db)
    probe = unique("health")
    app.containers.append(probe)
    docker(
        "run", "-d", "--name", probe, "--network", app.network,
        "--health-cmd", "netdiag check mysql://healthdb:3306",
        "--health-interval", "1s", "--health-timeout", "10s", "--health-retries", "1",
        "--entrypoint", "sleep", NETDIAG_IMAGE, "600",
    )  # fmt: skip

    def health() -> str:
        return docker("inspect", "-f", "{{.State.Health.Status}}", probe).stdout.strip()

    assert wait_for(lambda: health() == "healthy", 60), health()
    docker("stop", "-t", "2", db)
    assert wait_for(lambda: health() == "unhealthy", 60), health()
    log = json.loads(docker("inspect", "-f", "{{json .State.Health.Log}}", probe).stdout)
    assert log[-1]["ExitCode"] == 1
    assert "healthdb" in log[-1]["Output"]


def wait_for(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.5)
    return False


def test_wait_runs_cmd_once_mariadb_is_ready(app: TodoApp) -> None:
    waiter = unique("waiter")
    app.containers.append(waiter)
    docker(
        "run", "-d", "--name", waiter, "--network", app.network, NETDIAG_IMAGE,
        "wait", "--timeout", "180", "mysql://latedb:3306", "--", "sh", "-c", "echo CMD-RAN",
    )  # fmt: skip
    time.sleep(2)
    state = docker("inspect", "-f", "{{.State.Status}}", waiter).stdout.strip()
    assert state == "running", docker("logs", waiter).stderr  # not before MariaDB exists
    db = unique("latedb")
    app.start_mysql(db, aliases=("latedb",))
    started = time.monotonic()
    code = docker("wait", waiter, timeout=200).stdout.strip()
    logs = docker("logs", waiter)
    assert code == "0", logs.stdout + logs.stderr
    assert logs.stdout.count("CMD-RAN") == 1
    # CMD ran only once the server answered: it must accept connections now.
    app.wait_mysql(db, timeout=5)
    # generous on purpose: MariaDB is up in well under a minute here even on a loaded machine,
    # so only a wait that missed the moment (and ran on towards its 180 s) fails this
    assert time.monotonic() - started < 120


def test_doctor_from_another_network_names_the_fix(app: TodoApp) -> None:
    other = unique("other")
    docker("network", "create", "--internal", other)
    app.networks.append(other)
    r = app.netdiag("doctor", "mysql", network=other, docker_args=socket_args())
    assert r.returncode == 1, r.stdout + r.stderr
    # the documented throw-away run diagnoses netdiag's own --rm container: the fix is the
    # app's (issue 13 item 6), never a connect of the container that is gone a second later.
    # Text is wrapped to the terminal: compare with the line breaks taken out.
    text = " ".join(r.stdout.split())
    # (other runs on this shared daemon may hold "mysql" on their networks too: all are named)
    assert f"{app.mysql} on {app.network}" in text and "; this netdiag container" in text
    assert "docker run --rm --network container:APP netdiag doctor mysql" in text
    assert f"docker network connect {app.network} APP" in text or f"/ {app.network}" in text
    assert f"docker network connect {app.network} ndtest-netdiag" not in text


def test_second_container_with_alias_mysql_is_flagged(app: TodoApp, web: str) -> None:
    intruder = busybox(app, unique("mysqldb"), app.network, "--network-alias", "mysql")
    try:
        short = app.netdiag("dig", "+short", "mysql")
        assert sorted(short.stdout.split()) == sorted([app.ip(app.mysql), app.ip(intruder)])
        doctor = app.netdiag("doctor", "mysql", docker_args=socket_args())
        assert doctor.returncode == 1
        assert "the alias mysql is held by 2 containers" in doctor.stdout
        assert app.mysql in doctor.stdout and intruder in doctor.stdout
        scan = app.netdiag("scan", "--json", docker_args=socket_args())
        peers = scan_peers(netdiag_json(scan.stdout))
        shared = [d for d in peers[app.mysql]["dns"] if d["name"] == "mysql"]
        assert shared and shared[0]["shared"], peers[app.mysql]["dns"]
    finally:
        docker("rm", "-f", intruder, check=False)
