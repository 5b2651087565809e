"""Many non-blocking TCP connects at once: a bounded window, a packet rate, a deadline.

``connect_many(pairs, timeout, ...)`` says for each (address, port) whether the connect was
answered (open: SYN-ACK; refused: RST) or not, with the time to the answer. Used by the
sweep (is anyone there) and by scan's port checks.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netdiag.discovery.pacing import Pacer, fd_budget


@dataclass
class ConnectOutcome:
    """``state``: open, refused, timeout, unreachable or error; ``rtt_ms`` until the answer."""

    state: str
    rtt_ms: float | None
    detail: str = ""


def connect_many(
    pairs: Iterable[tuple[str, int]],
    timeout: float,
    concurrency: int = 256,
    rate: float = 0.0,
    deadline: float | None = None,
    on_open: Callable[[tuple[str, int], ConnectOutcome], None] | None = None,
) -> dict[tuple[str, int], ConnectOutcome]:
    """Non-blocking TCP connects to every (ip, port), a bounded window at a time.

    A connect that neither completes nor is refused within ``timeout`` s is ``timeout``;
    pairs not started before the monotonic ``deadline`` are left out of the result.
    ``on_open(pair, outcome)`` is called as each connect succeeds (scan starts identifying
    that port while slower connects still wait); it must return at once.
    """
    todo = list(pairs)
    window = fd_budget(concurrency)
    pacer = Pacer(rate)
    results: dict[tuple[str, int], ConnectOutcome] = {}
    sel = selectors.DefaultSelector()
    inflight: dict[socket.socket, tuple[tuple[str, int], float]] = {}
    index = 0

    def finish(sock: socket.socket, outcome: ConnectOutcome) -> None:
        pair, _ = inflight.pop(sock)
        sel.unregister(sock)
        sock.close()
        results[pair] = outcome
        if on_open is not None and outcome.state == "open":
            on_open(pair, outcome)

    try:
        while index < len(todo) or inflight:
            now = time.monotonic()
            while index < len(todo) and len(inflight) < window:
                if deadline is not None and now >= deadline:
                    index = len(todo)
                    break
                pair = todo[index]
                index += 1
                pacer.wait()
                family = socket.AF_INET6 if ":" in pair[0] else socket.AF_INET
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                except OSError as exc:  # out of descriptors despite the budget: shrink
                    window = max(1, len(inflight))
                    index -= 1
                    if not inflight:
                        results[pair] = ConnectOutcome("error", None, exc.strerror or str(exc))
                        index += 1
                    break
                sock.setblocking(False)
                start = time.monotonic()
                try:
                    code = sock.connect_ex(pair)
                except OSError as exc:  # a bad address: an error for this pair only
                    code = exc.errno or errno.EINVAL
                if code in (0, errno.EINPROGRESS):
                    inflight[sock] = (pair, start)
                    sel.register(sock, selectors.EVENT_WRITE)
                    if code == 0:
                        finish(sock, ConnectOutcome("open", 0.0))
                else:
                    sock.close()
                    results[pair] = _errno_outcome(code, None)
                now = time.monotonic()
            if not inflight:
                continue
            oldest = min(start for _, start in inflight.values())
            wait = max(0.0, oldest + timeout - time.monotonic())
            for key, _ in sel.select(min(wait, 0.05) if index < len(todo) else wait):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                _, start = inflight[sock]
                rtt = (time.monotonic() - start) * 1000
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                finish(
                    sock, ConnectOutcome("open", rtt) if code == 0 else _errno_outcome(code, rtt)
                )
            now = time.monotonic()
            for sock, (_, start) in list(inflight.items()):
                if now - start >= timeout:
                    finish(sock, ConnectOutcome("timeout", None, f"no answer within {timeout:g}s"))
    finally:
        for sock in list(inflight):
            sel.unregister(sock)
            sock.close()
        sel.close()
    return results


def _errno_outcome(code: int, rtt: float | None) -> ConnectOutcome:
    if code == errno.ECONNREFUSED:
        return ConnectOutcome("refused", rtt)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN):
        return ConnectOutcome("unreachable", rtt, os.strerror(code))
    if code == errno.ETIMEDOUT:
        return ConnectOutcome("timeout", None, os.strerror(code))
    return ConnectOutcome("error", rtt, os.strerror(code))
