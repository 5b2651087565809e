"""The IPv4 subnets this network namespace is attached to, per interface, for scan.

A thin view over ``netdiag.discovery.local`` (netlink, in this namespace); which container
this is, is ``netdiag.discovery.docker.identify_self``'s question.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attached:
    interface: str
    address: str
    network: str  # CIDR
    mac: str | None


def attached(snap: Any = None) -> list[Attached]:
    """Every IPv4 address on a non-loopback interface, with its subnet and the link's MAC
    (of ``snap``, a local.Snapshot, or of a fresh one)."""
    if snap is None:
        from netdiag.discovery.local import snapshot

        snap = snapshot()
    found: list[Attached] = []
    for iface in snap.interfaces:
        if iface.loopback:
            continue
        for addr in iface.addresses:
            net = addr.network
            if isinstance(net, ipaddress.IPv4Network) and not net.is_loopback:
                found.append(Attached(iface.name, addr.address, str(net), iface.mac))
    return found


def for_subnet(subnet: str, links: list[Attached]) -> Attached | None:
    """The interface whose subnet overlaps ``subnet`` (so we can ARP on it), or None."""
    wanted = ipaddress.ip_network(subnet, strict=False)
    for link in links:
        if ipaddress.ip_network(link.network).overlaps(wanted):
            return link
    return None
