"""What this process may send on an interface, found by trying the sockets, never guessed."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from netdiag.discovery.arp import ETH_P_ARP, open_arp_socket
from netdiag.discovery.icmp import open_icmp_socket


@dataclass
class Capabilities:
    """What this process may do on one interface, found by trying, not by guessing."""

    raw_l2: bool
    icmp: str | None  # "raw", "dgram" or None
    reasons: list[str] = field(default_factory=list)


def capabilities(interface: str | None) -> Capabilities:
    """Try the sockets a sweep would use and keep what opened."""
    reasons: list[str] = []
    raw_l2 = False
    if interface:
        try:
            # A bare packet socket first: without NET_RAW, scapy (50 MB) is never imported.
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)).close()
            open_arp_socket(interface).close()
            raw_l2 = True
        except PermissionError:
            reasons.append("no raw packet socket (needs CAP_NET_RAW): ARP sweep unavailable")
        except Exception as exc:  # scapy missing or interface gone
            reasons.append(f"ARP sweep unavailable: {type(exc).__name__}: {exc}")
    found = open_icmp_socket()
    icmp = None
    if found:
        found[0].close()
        icmp = found[1]
    else:
        reasons.append("no ICMP socket (needs CAP_NET_RAW or a gid in net.ipv4.ping_group_range)")
    return Capabilities(raw_l2, icmp, reasons)
