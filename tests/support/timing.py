"""Time bounds that hold on a busy 2-core machine shared by several test runs.

A test that checks a bound on a netdiag process (a deadline holds, a change is noticed
promptly) measures, in the same test, how long one quick netdiag process takes right now
(interpreter start, imports, one connect to a loopback listener, exit) and allows a multiple of
that on top of the bound it checks. A loaded machine slows the reference and the process under
test alike; an ignored deadline or a missed change (seconds to tens of seconds) still fails.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

NETDIAG = [sys.executable, "-m", "netdiag"]
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, step: float = 0.2) -> T:
    """Poll until ``predicate()`` returns something truthy and return it. An OSError, ValueError
    or KeyError (a peer restarting, a port not yet published, half a JSON document) counts as
    not yet; AssertionError naming ``what`` and the last value on timeout."""
    end = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < end:
        try:
            last = predicate()
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def quick_run() -> float:
    """Wall seconds of ``netdiag probe tcp://`` against a loopback listener, measured now."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)  # the kernel completes the handshake; nobody needs to accept
        port = srv.getsockname()[1]
        start = time.monotonic()
        proc = subprocess.run(
            [*NETDIAG, "probe", f"tcp://127.0.0.1:{port}"],
            capture_output=True,
            timeout=120,
        )
        elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    return elapsed


def slack(reference: float | None = None) -> float:
    """Seconds to allow beyond a bound measured from outside a netdiag process.

    One second for the work itself plus twice the reference run (the process under test pays
    the same start-up and scheduling delays the reference paid, and may be unluckier).
    """
    ref = quick_run() if reference is None else reference
    return 1.0 + 2 * ref
