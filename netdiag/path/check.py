"""Does a full-size packet reach this address? ``check_mtu`` answers for doctor and ``self --mtu``.

One don't-fragment probe the size of the egress interface's MTU goes first (ICMP echo; UDP
where neither raw nor ping sockets are allowed), with a small one beside it to time the path.
When the big one comes back the path carries full-size packets and nothing else is sent. Otherwise the whole of ``trace.trace`` runs — the hops (one
probe each, names from the resolver in force) and the path MTU search of ``mtu.py`` — so a
lower path MTU is named with the hop that lowered it and a black hole with its size, where it
is and the fix in Docker's terms. Everything stays within the ``Deadline`` given.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from netdiag.deadline import Deadline
from netdiag.path import mtu as mtu_mod
from netdiag.path import probers, trace
from netdiag.path.mtu import MtuResult
from netdiag.path.trace import PathOptions, PathReport, Privilege

PROBE_TIMEOUT = 1.0  # one probe's answer, at most (as `netdiag path`'s default --timeout)
PROBE_WORDS = {"icmp": "echo", "udp": "UDP probe"}
FIRST_WORDS = {
    "silent": "vanished",
    "frag_needed": 'drew a "fragmentation needed"',
    "local_error": "could not be sent",
}


@dataclass
class MtuCheck:
    """What the first probe got, and the full search's report when it was not answered.

    ``status``: ``ok`` (full size passes), ``lower`` (a hop says "fragmentation needed": TCP
    adapts), ``black_hole``, ``unknown`` (not measured: ``reason``) or ``local`` (the address is
    this host's own: no path).
    """

    address: str
    privilege: Privilege | None
    protocol: str | None  # what the first probe was: icmp (echo) or udp
    interface: str | None = None
    interface_mtu: int | None = None
    first: str | None = None  # the full-size probe's answer: reply, frag_needed, silent, ...
    mtu: MtuResult | None = None
    report: PathReport | None = None  # the full search, when the first probe failed
    reason: str | None = None
    network: str | None = None  # the Docker network the address is on, when known
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.reason == "local":
            return "local"
        return self.mtu.status if self.mtu is not None else "unknown"

    @property
    def pmtu(self) -> int | None:
        return self.mtu.pmtu if self.mtu is not None else None

    @property
    def how(self) -> str:
        """``raw sockets`` or ``unprivileged sockets``: which way the probes went."""
        return f"{self.privilege.method} sockets" if self.privilege else "no probes"

    @property
    def probes(self) -> int:
        """Every probe sent: the first two, then the hops' and the search's."""
        sent = 2 if self.first is not None else 0
        if self.report is not None:
            sent += self.report.hops.probes_sent + (self.mtu.probes if self.mtu else 0)
        return sent

    def verdict(self) -> str:
        """One line: the path MTU against the interface's, or the black hole, or why unknown."""
        iface = f"{self.interface} MTU {self.interface_mtu}"
        probe = PROBE_WORDS.get(self.protocol or "", "probe")
        if self.status == "local":
            return f"{self.address} is this host's own address: no path to measure"
        if self.status == "ok" and self.report is None:
            return f"path MTU {self.pmtu} = {self.interface} MTU: a full-size DF {probe} came back"
        if self.status == "ok":
            return f"path MTU {self.pmtu} = {iface}"
        if self.status == "unknown" or self.report is None:
            return f"path MTU not measured: {self.reason or 'no answers'}"
        said = trace.verdicts(self.report)
        return next(v for v in said if v.startswith(("path MTU", "MTU black hole")))

    def fix(self) -> str | None:
        """For a black hole: set the network's MTU to the path MTU, or let ICMP 3/4 through."""
        if self.status != "black_hole" or self.mtu is None or self.mtu.pmtu is None:
            return None
        hop = None
        if self.report is not None:
            hop = trace._hop_text(self.report, self.mtu.lowered_hop, self.mtu.lowered_at)
        return docker_fix(self.mtu.pmtu, hop, self.network)

    def to_dict(self) -> dict[str, Any]:
        m = self.mtu
        return {
            "address": self.address,
            "status": self.status,
            "pmtu": self.pmtu,
            "interface": self.interface,
            "interface_mtu": self.interface_mtu,
            "method": self.privilege.method if self.privilege else None,
            "method_reason": self.privilege.reason if self.privilege else None,
            "protocol": self.protocol,
            "first_probe": self.first,
            "full_search": self.report is not None,
            "black_hole": bool(m and m.black_hole),
            "frag_needed_seen": bool(m and m.frag_needed_seen),
            "lowered_hop": m.lowered_hop if m else None,
            "lowered_at": m.lowered_at if m else None,
            "kernel_pmtu": m.kernel_pmtu if m else None,
            "probes": self.probes,
            "hops": [h.address for h in self.report.hops.hops] if self.report else None,
            "notes": self.notes + (m.notes if m else []),
        }


def docker_fix(pmtu: int, hop: str | None, network: str | None = None) -> str:
    """``trace.docker_fix``, naming the network when it is known (its MTU is set at creation)."""
    if network is None:
        return trace.docker_fix(pmtu, hop)
    where = f" at {hop}" if hop else " on the path"
    return (
        f"recreate the network {network} with -o com.docker.network.driver.mtu={pmtu} (a "
        "network's MTU is fixed when it is created; compose: driver_opts), or let ICMP type 3 "
        f"code 4 (fragmentation needed) through{where}"
    )


def check_mtu(
    address: str,
    deadline: Deadline,
    probe_timeout: float = PROBE_TIMEOUT,
    names: bool = True,
    network: str | None = None,
) -> MtuCheck:
    """One DF probe of the interface MTU to ``address``; the full search if it is not answered."""
    if ipaddress.ip_address(address).version != 4:
        return MtuCheck(address, None, None, reason="IPv4 only: an IPv6 path is not measured")
    found = MtuCheck(address, None, None, network=network)
    try:
        src, iface, iface_mtu, cached = trace.egress(address)
    except OSError as exc:
        found.reason = f"no route from here ({exc.strerror or exc})"
        return found
    found.interface, found.interface_mtu = iface, iface_mtu
    if src == address or ipaddress.ip_address(address).is_loopback:
        found.reason = "local"  # before choosing sockets: nothing is sent, scapy not imported
        return found
    priv, proto, _ = trace.choose_privilege("icmp")
    found.privilege, found.protocol = priv, proto
    top = min(iface_mtu or 1500, mtu_mod.MAX_PACKET)
    wait = min(probe_timeout, deadline.remaining())
    with trace.make_prober(priv, proto, address, None, src) as prober:
        # a small probe beside it times the path: a full-size one lost where the small one
        # came back is given up after 8 RTTs (at least 0.2 s), not after the whole timeout
        sent, yardstick = prober.send_many(
            [(mtu_mod.PROBE_TTL, top), (mtu_mod.PROBE_TTL, probers.PROBE_SIZE)]
        )
        probers.settle(
            prober, [sent, yardstick], wait, deadline.end, done=lambda: bool(sent.answer)
        )
    found.first = sent.answer.kind if sent.answer is not None else "silent"
    if found.first == "reply":
        found.mtu = MtuResult(proto, iface, iface_mtu, pmtu=top, kernel_pmtu=cached, probes=2)
        found.mtu.rounds = 1
        return found
    out_of_time = (
        f"the full-size probe {FIRST_WORDS.get(found.first, found.first)} and the time given "
        f"({deadline.seconds:g} s) ran out before the path MTU search finished"
    )
    if deadline.expired():
        found.reason = out_of_time
        return found
    options = PathOptions(proto="icmp", probes=1, timeout=probe_timeout, names=names)
    report = trace.trace(address, address, options, deadline, address)
    found.report, found.mtu = report, report.mtu
    if report.mtu is None or report.mtu.pmtu is None:
        said = "; ".join(report.mtu.notes if report.mtu else [])
        bracket = re.search(r"between (\d+) and (\d+)", said)
        if deadline.expired():
            found.reason = out_of_time
            if bracket and int(bracket.group(1)) > probers.PROBE_SIZE:
                found.reason += f"; so far it is {bracket.group(0)}"
        else:
            found.reason = said or report.hops.detail or "no answers"
    return found


def gateway_mtus(
    snapshot: Any, deadline: Deadline, timeout: float, probe_timeout: float = PROBE_TIMEOUT
) -> list[tuple[str, MtuCheck]]:
    """(device, check) for each IPv4 default gateway of ``snapshot`` (a discovery.local
    Snapshot), one after another, each within ``timeout`` s and all within ``deadline``."""
    found: list[tuple[str, MtuCheck]] = []
    seen: set[str] = set()
    for route in snapshot.default_routes:
        gateway = route.gateway
        if route.family != "ipv4" or not gateway or gateway in seen:
            continue
        seen.add(gateway)
        if deadline.expired():
            check = MtuCheck(gateway, None, None, reason="the deadline ran out first")
        else:
            step = Deadline(deadline.timeout(timeout))
            check = check_mtu(gateway, step, min(probe_timeout, timeout), names=False)
        found.append((route.device or "?", check))
    return found
