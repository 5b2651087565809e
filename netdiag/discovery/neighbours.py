"""The kernel's IPv4 neighbour (ARP) table, read from /proc/net/arp: one reader for all."""

from __future__ import annotations

from dataclasses import dataclass

ARP_PATH = "/proc/net/arp"
ATF_COM = 0x2  # the entry is complete: the peer answered ARP


@dataclass(frozen=True)
class Neighbour:
    """One entry: ``flags`` as the kernel writes them (``0x0`` incomplete, ``0x2`` complete)."""

    ip: str
    flags: str
    mac: str
    device: str

    @property
    def complete(self) -> bool:
        try:
            return bool(int(self.flags, 16) & ATF_COM) and self.mac != "00:00:00:00:00:00"
        except ValueError:
            return False


def parse(text: str) -> list[Neighbour]:
    """The entries of /proc/net/arp's text (pure: the header line is skipped)."""
    found = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 6:
            found.append(Neighbour(f[0], f[2], f[3].lower(), f[5]))
    return found


def read(path: str = ARP_PATH) -> list[Neighbour]:
    """Every entry, complete or not; empty when the table cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return parse(fh.read(1 << 20))
    except OSError:
        return []


def lookup(address: str, path: str = ARP_PATH) -> Neighbour | None:
    """The entry for ``address``, or None."""
    return next((n for n in read(path) if n.ip == address), None)


def complete(path: str = ARP_PATH) -> dict[str, Neighbour]:
    """Complete entries by address: peers that answered ARP."""
    return {n.ip: n for n in read(path) if n.complete}
