"""Who this agent is: node name, task address and container id, with no Docker socket.

The node name is ``$NETDIAG_NODE`` (the stack file sets ``{{.Node.Hostname}}``), else the host
name. The task address is the listen address when it is a specific one, else the local address
that ``tasks.<service>`` lists (a container on several networks has several addresses; the one
its peers reach it at is the one in that answer).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping


def node_name(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("NETDIAG_NODE") or "").strip() or socket.gethostname()


def local_addresses() -> set[str]:
    """Every address on this namespace's interfaces (loopback included); empty if unreadable."""
    from netdiag.discovery.local import snapshot

    try:
        snap = snapshot()
    except Exception:  # identity is best effort; a missing address only loses a label
        return set()
    return set(snap.addresses())


def pick_task_address(
    listen_host: str, dns_addresses: Iterable[str], local: Iterable[str]
) -> str | None:
    """The address peers reach this agent at (pure): listen host, else the local one in DNS."""
    try:
        ip = ipaddress.ip_address(listen_host)
    except ValueError:
        ip = None
    if ip is not None and not ip.is_unspecified:
        return listen_host
    mine = set(local)
    for address in dns_addresses:
        if address in mine:
            return address
    return None


def container_id() -> str | None:
    from netdiag.discovery.container import detect

    try:
        info = detect()
    except Exception:  # best effort, as above
        return None
    return info.id
