"""What this process may send on an interface, found by trying the sockets, never guessed."""

from __future__ import annotations

import importlib.util
import socket
from dataclasses import dataclass, field

from netdiag.discovery.arp import ETH_P_ARP
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
            # A bare packet socket bound to the interface, and scapy findable: scapy itself
            # (0.2-0.6 s to import) loads only when an ARP sweep really starts (arp.py).
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
                s.bind((interface, ETH_P_ARP))
            if importlib.util.find_spec("scapy") is None:
                raise ImportError("scapy is not installed")
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
