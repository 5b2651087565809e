"""Loopback peers shared by the check/wait/doctor tests: listeners, closed ports, full backlogs."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released; refused when connected to)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def listener(port: int = 0) -> Iterator[int]:
    """A plain accepting TCP listener on 127.0.0.1 (accepts and closes in a thread)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        srv.close()


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listener that never accepts, its accept queue filled: new SYNs get no answer."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    addr = srv.getsockname()
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(addr)
            fillers.append(c)
        time.sleep(0.2)
        yield addr[1]
    finally:
        for c in fillers:
            c.close()
        srv.close()


@contextlib.contextmanager
def banner_peer(banner: bytes) -> Iterator[int]:
    """A hostile peer for protocol tests: sends ``banner`` to every connection, then closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            with contextlib.suppress(OSError):
                conn.sendall(banner)
                time.sleep(0.05)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        srv.close()


def resolver_env(tmp_path, port: int) -> dict[str, str]:
    """Environment pointing netdiag at a loopback DNS server, with no search domains."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    return {"NETDIAG_RESOLV_CONF": str(conf), "NETDIAG_RESOLVER": f"127.0.0.1#{port}"}


def host_python_mounts() -> list[str]:
    """docker run flags that let a busybox container run this very interpreter read-only."""
    flags = ["-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro"]
    if Path("/usr/lib64").is_dir():
        flags += ["-v", "/usr/lib64:/lib64:ro"]
    for prefix in sorted({sys.base_prefix, sys.prefix}):
        if not prefix.startswith("/usr/") and prefix != "/usr":
            flags += ["-v", f"{prefix}:{prefix}:ro"]
    return [*flags, "-v", f"{ROOT}:/src:ro", "-e", "PYTHONPATH=/src", "-w", "/src"]
