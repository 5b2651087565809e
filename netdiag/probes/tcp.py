"""TCP: the connect itself is the check; facts carry the connect time."""

from __future__ import annotations

import time

from netdiag.probes.base import Finding, Probe, handshake


class TcpProbe(Probe):
    scheme = "tcp"
    speaks = False

    def check(self, address: str, port: int, timeout: float) -> Finding:
        start = time.monotonic()
        handshake(address, port, timeout, self.options.source_address)
        ms = (time.monotonic() - start) * 1000
        return Finding(f"connected in {ms:.1f} ms", {"connect_ms": round(ms, 3)})
