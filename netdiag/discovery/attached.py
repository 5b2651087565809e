"""The IPv4 subnets this network namespace is attached to, per interface (no subprocess).

A small stand-in read with ioctls (primary address of each interface); ``netdiag self``'s
netlink view is richer. ``in_container()`` says whether we run inside a container.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

from netdiag.discovery.sweep import interface_mac

SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B


@dataclass(frozen=True)
class Attached:
    interface: str
    address: str
    network: str  # CIDR
    mac: str | None


def _ioctl_addr(sock: socket.socket, request: int, name: str) -> str | None:
    try:
        data = fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return socket.inet_ntoa(data[20:24])


def attached() -> list[Attached]:
    """Every non-loopback interface with an IPv4 address, with its subnet."""
    found: list[Attached] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            address = _ioctl_addr(sock, SIOCGIFADDR, name)
            mask = _ioctl_addr(sock, SIOCGIFNETMASK, name)
            if not address or not mask or address.startswith("127."):
                continue
            net = ipaddress.ip_network(f"{address}/{mask}", strict=False)
            found.append(Attached(name, address, str(net), interface_mac(name)))
    return found


def for_subnet(subnet: str, links: list[Attached]) -> Attached | None:
    """The interface whose subnet overlaps ``subnet`` (so we can ARP on it), or None."""
    wanted = ipaddress.ip_network(subnet, strict=False)
    for link in links:
        if ipaddress.ip_network(link.network).overlaps(wanted):
            return link
    return None


def in_container() -> bool:
    """True inside a Docker/containerd/podman container (marker files or cgroup names)."""
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    try:
        with open("/proc/1/cgroup") as fh:
            text = fh.read(65536)
    except OSError:
        return False
    return any(k in text for k in ("docker", "containerd", "kubepods", "libpod"))
