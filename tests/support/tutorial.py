"""The seed tutorial's setup on a real dockerd: network todo-app, MariaDB with alias mysql.

Everything is named ``ndtest-...`` and removed by name, even when a test fails. Images come
from scripts/build-images (offline: debootstrap + docker import, cached).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.docker_engine import docker, unique

REPO = Path(__file__).resolve().parents[2]
NETDIAG_IMAGE = os.environ.get("NETDIAG_IMAGE", "netdiag:latest")
MARIADB_IMAGE = "netdiag-mariadb:dev"
DB_PASSWORD = "e2e-Secret-7f3c91"  # searched for in every output
# Like the official mysql image's MYSQL_DATABASE/MYSQL_USER: a database and a user for any host,
# created at start-up (without a user for the client's host MariaDB answers 1130).
MARIADB_CMD = (
    "mkdir -p /run/mysqld && chown mysql /run/mysqld && "
    "printf '%s\\n' \"CREATE DATABASE IF NOT EXISTS todos;\" "
    f"\"CREATE USER IF NOT EXISTS 'todo'@'%' IDENTIFIED BY '{DB_PASSWORD}';\" "
    "\"GRANT ALL ON todos.* TO 'todo'@'%';\" > /tmp/init.sql && "
    "exec mariadbd --user=mysql --bind-address=0.0.0.0 --init-file=/tmp/init.sql"
)


def build_images() -> None:
    """Build (or reuse) netdiag:latest and netdiag-mariadb:dev with the repository's script."""
    subprocess.run(["bash", str(REPO / "scripts/build-images")], check=True, timeout=1200)


def sql(container: str, statement: str) -> str:
    """Run SQL as root over the server's unix socket inside its container."""
    return docker("exec", container, "mariadb", "-N", "-B", "-e", statement).stdout.strip()


@dataclass
class TodoApp:
    """The tutorial's network and MySQL container, plus whatever a test adds by name."""

    network: str = field(default_factory=lambda: unique("todo-app"))
    mysql: str = field(default_factory=lambda: unique("mysql"))
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def start(self) -> None:
        docker("network", "create", "--internal", self.network)
        self.networks.append(self.network)
        self.start_mysql(self.mysql)
        self.wait_mysql(self.mysql)
        sql(
            self.mysql,
            "CREATE TABLE todos.todo_items (id varchar(36), name varchar(255), completed boolean); "
            "INSERT INTO todos.todo_items VALUES ('1', 'read the seed', 1), ('2', 'run netdiag', 0);",
        )

    def start_mysql(self, name: str, aliases: tuple[str, ...] = ("mysql",)) -> None:
        args = ["run", "-d", "--name", name, "--network", self.network]
        for alias in aliases:
            args += ["--network-alias", alias]
        self.containers.append(name)
        docker(*args, "--entrypoint", "sh", MARIADB_IMAGE, "-c", MARIADB_CMD)

    def wait_mysql(self, name: str, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ping = docker("exec", name, "mariadb-admin", "ping", check=False, timeout=20)
            if ping.returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"MariaDB in {name} did not come up within {timeout}s")

    def ip(self, container: str, network: str | None = None) -> str:
        net = network or self.network
        fmt = f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}'
        return docker("inspect", "-f", fmt, container).stdout.strip()

    def pid(self, container: str) -> int:
        return int(docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip())

    def netdiag(
        self,
        *args: str,
        network: str | None = None,
        docker_args: tuple[str, ...] = (),
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """``docker run --rm --network todo-app netdiag ARGS`` as a user types it."""
        name = unique("netdiag")
        self.containers.append(name)
        cmd = ["run", "--rm", "--name", name, "--network", network or self.network]
        return docker(*cmd, *docker_args, NETDIAG_IMAGE, *args, check=False, timeout=timeout)

    def cleanup(self) -> None:
        if self.containers:
            docker("rm", "-f", *self.containers, check=False)
        for net in reversed(self.networks):
            docker("network", "rm", net, check=False)
