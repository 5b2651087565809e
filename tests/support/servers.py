"""Real protocol peers for the tests: MariaDB, PostgreSQL, Redis and HTTP on loopback.

Each ``start_*`` is a context manager that starts one server on a free ephemeral port of
127.0.0.1 (or the addresses given) with its data under a fresh temp directory, yields a small
description of it, and stops it and removes the directory afterwards, even when the test fails.
tests/conftest.py exposes session-scoped fixtures built on these (``mariadb``, ``postgres``,
``redis_server``, ``redis_auth``, ``http_server``).

MariaDB comes with users and data the todo app would see:
``todo``/``TODO_PASSWORD`` (rights on ``todos`` only) and ``nopass`` (no password, all rights,
so an unknown database gives 1049 rather than 1044) at 127.0.0.1 and localhost, database
``todos`` with table ``todo_items (id, name, completed)`` holding two rows.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TODO_USER = "todo"
TODO_PASSWORD = "s3cr3t-Pa55-7f1e9c"  # distinctive on purpose: tests search outputs for it
TODO_DB = "todos"
TODO_TABLE = "todo_items"


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``host:port`` accepts a TCP connection (or the process dies)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServerStartError(f"{host}:{port} did not open within {timeout}s")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- MariaDB -------------------------------------------------------------------------------


@dataclass
class MariaDB:
    """A running mariadbd: where it listens and how the tests administer it."""

    host: str
    port: int
    addresses: list[str]
    datadir: Path
    socket: Path
    log: Path

    @property
    def url(self) -> str:
        return f"mysql://{self.host}:{self.port}"

    def sql(self, statement: str, timeout: float = 30) -> str:
        """Run SQL as root over the unix socket (root uses unix_socket auth); return stdout."""
        out = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B"],
            input=statement,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"SQL failed: {out.stderr.strip()}")
        return out.stdout


MARIADB_SETUP = f"""
CREATE USER '{TODO_USER}'@'127.0.0.1' IDENTIFIED BY '{TODO_PASSWORD}';
CREATE USER '{TODO_USER}'@'localhost' IDENTIFIED BY '{TODO_PASSWORD}';
CREATE USER 'nopass'@'127.0.0.1';
CREATE USER 'nopass'@'localhost';
CREATE DATABASE {TODO_DB};
CREATE TABLE {TODO_DB}.{TODO_TABLE} (
  id varchar(36), name varchar(255), completed boolean
);
INSERT INTO {TODO_DB}.{TODO_TABLE} VALUES
  ('0b8c6f5e-1', 'learn docker networking', 1), ('0b8c6f5e-2', 'probe mysql', 0);
GRANT ALL ON {TODO_DB}.* TO '{TODO_USER}'@'127.0.0.1', '{TODO_USER}'@'localhost';
GRANT ALL ON *.* TO 'nopass'@'127.0.0.1', 'nopass'@'localhost';
FLUSH PRIVILEGES;
"""


@contextlib.contextmanager
def start_mariadb(
    addresses: Sequence[str] = ("127.0.0.1",),
    extra_args: Sequence[str] = (),
    skip_name_resolve: bool = True,
    setup_sql: str = MARIADB_SETUP,
    netns: str | None = None,
) -> Iterator[MariaDB]:
    """A fresh mariadbd listening on ``addresses`` (one port for all), stopped afterwards.

    ``extra_args`` go to mariadbd (later flags win), e.g. ``--max-connections=10`` (MariaDB's
    minimum) or ``--performance-schema=ON``. ``netns`` runs it inside that network namespace on
    port 3306 (its own loopback; ``ip netns exec`` supplies /etc/netns/NAME files). Root
    administers it over the unix socket with ``MariaDB.sql()``.
    """
    tmp = Path(tempfile.mkdtemp(prefix="nd-mariadb-"))
    datadir, sock, log = tmp / "data", tmp / "mysqld.sock", tmp / "error.log"
    prefix = ["ip", "netns", "exec", netns] if netns else []
    proc: subprocess.Popen | None = None
    try:
        install = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if install.returncode != 0:
            raise ServerStartError(f"mariadb-install-db failed: {install.stderr[-800:]}")
        port = free_port(addresses[0]) if not netns else 3306
        args = [
            *prefix,
            "mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--port={port}",
            f"--bind-address={','.join(addresses)}",
            f"--pid-file={tmp / 'mysqld.pid'}",
            f"--log-error={log}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            "--performance-schema=OFF",
            *(["--skip-name-resolve"] if skip_name_resolve else []),
            *extra_args,
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 60
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > end:
                raise ServerStartError(f"mariadbd did not start:\n{_tail(log)}")
            time.sleep(0.1)
        server = MariaDB(addresses[0], port, list(addresses), datadir, sock, log)
        # the socket file appears slightly before the server accepts on it
        for _ in range(50):
            try:
                server.sql("SELECT 1")
                break
            except RuntimeError:
                time.sleep(0.1)
        if setup_sql:
            server.sql(setup_sql)
        yield server
    finally:
        if proc is not None:
            _stop(proc, 30)
        shutil.rmtree(tmp, ignore_errors=True)


# --- PostgreSQL ----------------------------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int
    datadir: Path

    @property
    def url(self) -> str:
        return f"postgres://{self.host}:{self.port}"


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd]


@contextlib.contextmanager
def start_postgres(
    host: str = "127.0.0.1", extra_conf: Sequence[str] = (), standby: bool = False
) -> Iterator[Postgres]:
    """A fresh PostgreSQL 15 cluster on ``host`` (run as the ``postgres`` OS user).

    ``standby=True`` starts it in recovery with ``hot_standby=off`` and no primary: it stays
    up but refuses every client with SQLSTATE 57P03, like a server that is still starting.
    """
    tmp = Path(tempfile.mkdtemp(prefix="nd-pg-"))
    shutil.chown(tmp, "postgres", "postgres")
    datadir, log = tmp / "data", tmp / "pg.log"
    port = free_port(host)
    started = False
    try:
        init = subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(datadir),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-U",
                    "postgres",
                ]
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise ServerStartError(f"initdb failed: {init.stderr[-800:]}")
        if standby:
            (datadir / "standby.signal").touch()
            shutil.chown(datadir / "standby.signal", "postgres", "postgres")
            extra_conf = [*extra_conf, "hot_standby=off"]
        opts = " ".join(
            [
                f"-p {port}",
                f"-k {tmp}",
                f"-c listen_addresses={host}",
                "-c fsync=off",
                *(f"-c {c}" for c in extra_conf),
            ]
        )
        start = subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-l",
                    str(log),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
            timeout=90,
        )
        started = True
        if start.returncode != 0:
            raise ServerStartError(f"pg_ctl start failed:\n{_tail(log)}")
        yield Postgres(host, port, datadir)
    finally:
        if started:
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(tmp, ignore_errors=True)


# --- Redis ---------------------------------------------------------------------------------


@dataclass
class Redis:
    host: str
    port: int
    password: str | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"


@contextlib.contextmanager
def start_redis(host: str = "127.0.0.1", password: str | None = None) -> Iterator[Redis]:
    """redis-server on ``host`` without persistence; ``password`` sets requirepass."""
    tmp = Path(tempfile.mkdtemp(prefix="nd-redis-"))
    port = free_port(host)
    args = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        host,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp),
        "--logfile",
        str(tmp / "redis.log"),
    ]
    if password:
        args += ["--requirepass", password]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(host, port, 20, proc)
        yield Redis(host, port, password)
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# --- HTTP ----------------------------------------------------------------------------------


@dataclass
class HTTPServer:
    """A threaded HTTP server; ``routes`` maps a path to (status, headers, body)."""

    host: str
    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    request_lines: list[str] = field(default_factory=list)  # as received, e.g. "GET /x HTTP/1.1"

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


DEFAULT_ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/": (200, {"Content-Type": "text/plain"}, b"hello\n"),
    "/health": (200, {"Content-Type": "application/json"}, b'{"ok": true}\n'),
    "/redirect": (302, {"Location": "/health"}, b""),
    "/error": (500, {}, b"boom\n"),
    "/big": (200, {"Content-Type": "application/octet-stream"}, b"x" * (4 * 1024 * 1024)),
}


@contextlib.contextmanager
def start_http(
    host: str = "127.0.0.1", routes: dict[str, tuple[int, dict[str, str], bytes]] | None = None
) -> Iterator[HTTPServer]:
    """An HTTP/1.1 server in a thread; unknown paths answer 404."""
    info = HTTPServer(host, 0, dict(DEFAULT_ROUTES if routes is None else routes))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            info.requests.append(self.path)
            info.request_lines.append(self.requestline)
            route = self.path if self.path in info.routes else self.path.split("?", 1)[0]
            status, headers, body = info.routes.get(route, (404, {}, b"not found\n"))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    info.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()


def have(*programs: str) -> bool:
    """True when every program is installed (tests skip otherwise, naming it)."""
    return all(shutil.which(p) or os.path.exists(p) for p in programs)
