"""Loopback peers shared by the check/wait/doctor tests: listeners, closed ports, full backlogs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released; refused when connected to)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(
    handle: Callable[[socket.socket], None], port: int = 0, backlog: int = 64
) -> Iterator[int]:
    """Accept on 127.0.0.1:``port`` in a thread, hand each connection to ``handle``, close it."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(backlog)
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            with contextlib.suppress(OSError):
                handle(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        srv.close()


def listener(port: int = 0) -> contextlib.AbstractContextManager[int]:
    """A plain accepting TCP listener on 127.0.0.1 (accepts and closes in a thread)."""
    return _serving(lambda conn: None, port)


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


def banner_peer(banner: bytes) -> contextlib.AbstractContextManager[int]:
    """A hostile peer for protocol tests: sends ``banner`` to every connection, then closes."""

    def send(conn: socket.socket) -> None:
        conn.sendall(banner)
        time.sleep(0.05)

    return _serving(send, backlog=16)


def resolver_env(tmp_path, port: int) -> dict[str, str]:
    """Environment pointing netdiag at a loopback DNS server, with no search domains."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    return {"NETDIAG_RESOLV_CONF": str(conf), "NETDIAG_RESOLVER": f"127.0.0.1#{port}"}
