"""Am I in a container, and which one: evidence from mountinfo, cgroup and the hostname.

Docker bind-mounts /etc/hostname, /etc/hosts and /etc/resolv.conf from
``<data-root>/containers/<64-hex id>/``; mountinfo shows that source path, which names the
container even under cgroup v2 with a private cgroup namespace (where /proc/self/cgroup is
just ``0::/``). The parsers are pure functions of text; ``detect()`` reads the real files.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 1 << 20
_ID_IN_PATH = re.compile(r"containers/([0-9a-f]{64})(?:/|$)")
_ID_ANYWHERE = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
_SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
_BIND_TARGETS = ("/etc/hostname", "/etc/resolv.conf", "/etc/hosts")
MARKER_FILES = ("/.dockerenv", "/run/.containerenv")


@dataclass
class ContainerInfo:
    """Whether this process runs in a container, its id when known, and how it was found."""

    in_container: bool
    id: str | None = None
    source: str | None = None  # "mountinfo", "cgroup" or "hostname"
    markers: list[str] = field(default_factory=list)  # marker files seen (/.dockerenv, ...)

    @property
    def short_id(self) -> str | None:
        return self.id[:12] if self.id else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_container": self.in_container,
            "id": self.id,
            "short_id": self.short_id,
            "source": self.source,
            "markers": self.markers,
        }


def _unescape(field_text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_text)


def id_from_mountinfo(text: str) -> str | None:
    """The container id from the source path of the /etc/hostname (or resolv.conf, hosts) mount."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if mount_point in _BIND_TARGETS:
            match = _ID_IN_PATH.search(root)
            if match:
                found.setdefault(mount_point, match.group(1))
    for target in _BIND_TARGETS:
        if target in found:
            return found[target]
    return None


def id_from_cgroup(text: str) -> str | None:
    """The container id from /proc/self/cgroup (v1 or v2, docker, systemd scopes, k8s, podman)."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ids = _ID_ANYWHERE.findall(parts[2])
        if ids:
            return ids[-1]  # the innermost component names the container
    return None


def id_from_hostname(hostname: str) -> str | None:
    """Docker's default hostname is the 12-hex id prefix; anything else is no evidence."""
    name = hostname.strip().lower()
    return name if _SHORT_ID.match(name) else None


def classify(
    mountinfo: str, cgroup: str, hostname: str, markers: list[str] | None = None
) -> ContainerInfo:
    """Decide from the texts: mountinfo first, then cgroup, then hostname.

    A 12-hex hostname alone counts only next to a marker file, and a marker file alone is not
    enough (some VM images keep a stray /.dockerenv): then the answer is "not in a container".
    """
    marks = list(markers or [])
    cid = id_from_mountinfo(mountinfo)
    if cid:
        return ContainerInfo(True, cid, "mountinfo", marks)
    cid = id_from_cgroup(cgroup)
    if cid:
        return ContainerInfo(True, cid, "cgroup", marks)
    short = id_from_hostname(hostname)
    if short and marks:
        return ContainerInfo(True, short, "hostname", marks)
    return ContainerInfo(False, None, None, marks)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def detect(proc: str = "/proc/self", root: str = "/") -> ContainerInfo:
    """Read mountinfo, cgroup, hostname and marker files of this process and classify them."""
    markers = [m for m in MARKER_FILES if os.path.exists(os.path.join(root, m.lstrip("/")))]
    return classify(
        _read(f"{proc}/mountinfo"), _read(f"{proc}/cgroup"), socket.gethostname(), markers
    )
