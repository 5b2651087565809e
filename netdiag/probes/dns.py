"""dns://NAME: resolving is the check. The engine resolves every target the app's way before
probing it, so each address found is one ``ok`` result; a name that does not resolve is one
``dns_failed`` result from the engine. Nothing is sent to the addresses."""

from __future__ import annotations

from netdiag.probes.base import Finding, Probe


class DnsProbe(Probe):
    scheme = "dns"
    speaks = False

    def check(self, address: str, port: int, timeout: float) -> Finding:
        return Finding(f"{self.target.host} resolves to {address}")
