"""A network namespace with known interfaces, addresses, routes and resolv.conf, for `self`.

Layout (names are ndself-<hex>, removed by name on exit even when a test fails):
  NS (subject): lo, veth0 (MAC 02:78:00:00:01:02, MTU 1400, 10.78.1.2/24, fd78:1::2/64)
                default via 10.78.1.1, 10.78.250.0/24 via 10.78.1.1 metric 5,
                default via fd78:1::1
  NSp (peer):   the other veth end, 10.78.1.1/24, so the subject's gateway exists.
  /etc/netns/NS/resolv.conf: nameserver 127.0.0.11, search lab.test example.internal, ndots:0
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

MAC = "02:78:00:00:01:02"
PEER_MAC = "02:78:00:00:01:01"
ADDR4, GW4, NET4 = "10.78.1.2", "10.78.1.1", "10.78.1.0/24"
ADDR6, GW6, NET6 = "fd78:1::2", "fd78:1::1", "fd78:1::/64"
STATIC_NET, STATIC_METRIC = "10.78.250.0/24", 5
MTU = 1400
RESOLV_CONF = "nameserver 127.0.0.11\nsearch lab.test example.internal\noptions ndots:0\n"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class SelfNamespace:
    """Build the layout above on enter; delete both namespaces and the /etc/netns dir on exit."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"ndself-{tag}"
        self.peer = f"ndself-{tag}p"
        self.etc = Path("/etc/netns") / self.name

    def __enter__(self) -> SelfNamespace:
        try:
            self._build()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _build(self) -> None:
        ip("netns", "add", self.name)
        ip("netns", "add", self.peer)
        n, p = ["-n", self.name], ["-n", self.peer]
        ip(*n, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        ip(*n, "link", "set", "veth1", "netns", self.peer)
        ip(*n, "link", "set", "veth0", "address", MAC, "mtu", str(MTU), "addrgenmode", "none")
        ip(*p, "link", "set", "veth1", "address", PEER_MAC, "addrgenmode", "none")
        ip(*n, "addr", "add", f"{ADDR4}/24", "dev", "veth0")
        ip(*n, "addr", "add", f"{ADDR6}/64", "dev", "veth0", "nodad")
        ip(*p, "addr", "add", f"{GW4}/24", "dev", "veth1")
        ip(*p, "addr", "add", f"{GW6}/64", "dev", "veth1", "nodad")
        for ns in (n, p):
            ip(*ns, "link", "set", "lo", "up")
        ip(*n, "link", "set", "veth0", "up")
        ip(*p, "link", "set", "veth1", "up")
        ip(*n, "route", "add", "default", "via", GW4, "dev", "veth0")
        ip(*n, "route", "add", STATIC_NET, "via", GW4, "metric", str(STATIC_METRIC))
        ip(*n, "-6", "route", "add", "default", "via", GW6, "dev", "veth0")
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text(RESOLV_CONF)

    def exec_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def cleanup(self) -> None:
        for ns in (self.name, self.peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(self.etc, ignore_errors=True)
