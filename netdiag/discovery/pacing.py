"""Bounds shared by every sweep and connect engine: a packet rate and the fd limit."""

from __future__ import annotations

import contextlib
import os
import resource
import time

FD_RESERVE = 48  # descriptors left for DNS, probes and the interpreter


def fd_budget(wanted: int) -> int:
    """How many sockets may be open at once: ``wanted``, but within RLIMIT_NOFILE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max(1, wanted)
    with contextlib.suppress(OSError):
        used = len(os.listdir("/proc/self/fd"))
        return max(1, min(wanted, soft - used - FD_RESERVE))
    return max(1, min(wanted, soft - 64))


class Pacer:
    """At most ``rate`` events per second, sleeping as needed (``rate`` <= 0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
            now = self.next
        self.next = max(self.next, now - 0.05) + self.interval  # small bursts only
