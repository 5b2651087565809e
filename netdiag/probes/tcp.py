"""TCP: the connect itself is the check; facts carry the connect time."""

from __future__ import annotations

import time
from typing import Any

from netdiag.probes.base import Probe, handshake


class TcpProbe(Probe):
    scheme = "tcp"

    def check(self, address: str, port: int, timeout: float) -> dict[str, Any]:
        start = time.monotonic()
        handshake(address, port, timeout, self.options.source_address)
        return {"connect_ms": round((time.monotonic() - start) * 1000, 3)}
