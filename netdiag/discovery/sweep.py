"""Liveness sweeps of one subnet: ARP when raw sockets are allowed, else TCP connects + ICMP.

``sweep(plan)`` returns which addresses answered, how (arp, tcp, icmp, neighbor cache), with
MACs when known, the first answer's RTT, and how far it got. Addresses are swept lowest
first, in blocks, within a time budget; the engines (arp, connect, icmp) bound sockets and rate.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from netdiag.discovery import neighbours
from netdiag.discovery.arp import arp_sweep, open_arp_socket
from netdiag.discovery.capabilities import Capabilities, capabilities
from netdiag.discovery.connect import connect_many
from netdiag.discovery.icmp import ping_many

BLOCK = 256  # addresses per block when stopping at the first empty one
FULL_BLOCK = 4096  # per block otherwise: each block ends with one wait for late answers
SWEEP_WAIT = 0.5  # seconds to wait for an answer from an address on the local link
SWEEP_PORT = 80  # a live host answers a closed port with RST, an open one with SYN-ACK
MAX_ADDRESSES = 1 << 20  # a /12: the largest range ever swept


IP_LEVEL = ("icmp", "tcp")  # answers that prove the address is reachable, not only present


@dataclass
class Alive:
    """One live address: how it was seen, its MAC when known, and the best RTT measured.

    ``rtt_via`` names the answer the RTT comes from (``icmp``, ``tcp/80`` or ``arp``); an
    IP-level answer (ICMP, TCP) is preferred to ARP's, which only proves the link layer.
    """

    ip: str
    via: list[str] = field(default_factory=list)
    mac: str | None = None
    rtt_ms: float | None = None
    rtt_via: str | None = None

    @property
    def answered_ip(self) -> bool:
        """It answered ICMP or TCP, not only ARP (or the neighbour table)."""
        return any(v in IP_LEVEL for v in self.via)

    def saw(self, via: str, rtt_ms: float | None = None, mac: str | None = None) -> None:
        if via not in self.via:
            self.via.append(via)
        if mac and not self.mac:
            self.mac = mac
        if rtt_ms is None:
            return
        label = f"tcp/{SWEEP_PORT}" if via == "tcp" else via
        ip_level, had_ip_level = via in IP_LEVEL, self.rtt_via not in (None, "arp")
        better = self.rtt_ms is None or rtt_ms < self.rtt_ms
        if (ip_level and not had_ip_level) or (ip_level == had_ip_level and better):
            self.rtt_ms, self.rtt_via = rtt_ms, label


@dataclass
class SweepResult:
    """Outcome of sweeping one subnet; ``complete`` is False when it stopped early, and
    ``out_of_time`` when that was because its time budget ran out (results are partial)."""

    subnet: str
    interface: str | None
    methods: list[str]
    alive: dict[str, Alive]
    swept: int
    total: int
    complete: bool
    last_swept: str | None
    elapsed_ms: float
    notes: list[str] = field(default_factory=list)
    out_of_time: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "subnet": self.subnet,
            "interface": self.interface,
            "methods": self.methods,
            "alive": len(self.alive),
            "swept": self.swept,
            "total": self.total,
            "complete": self.complete,
            "out_of_time": self.out_of_time,
            "last_swept": self.last_swept,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "notes": self.notes,
        }


@dataclass
class SweepPlan:
    """What to sweep and within which bounds.

    ``stop_on_gap``: stop after the first block (beyond the first) with no live address,
    as fits a Docker network whose addresses are handed out from the low end.
    """

    subnet: str
    interface: str | None
    src_ip: str | None
    rate: float = 2000.0
    concurrency: int = 256
    budget: float = 20.0
    wait: float = SWEEP_WAIT
    stop_on_gap: bool = False
    skip: frozenset[str] = frozenset()
    methods: Sequence[str] | None = None  # force methods (tests); default: what is allowed


def host_addresses(subnet: str) -> list[str]:
    """Every host address of ``subnet``; ValueError past MAX_ADDRESSES (scan refuses it first)."""
    net = ipaddress.ip_network(subnet, strict=False)
    if net.num_addresses > MAX_ADDRESSES:
        raise ValueError(f"{subnet} is too large to sweep")
    return [str(a) for a in net.hosts()]


def choose_methods(caps: Capabilities, plan: SweepPlan) -> list[str]:
    if plan.methods:
        return list(plan.methods)
    if caps.raw_l2 and plan.interface and plan.src_ip:
        return ["arp"]
    methods = ["tcp"]
    if caps.icmp:
        methods.append("icmp")
    return methods


def sweep(plan: SweepPlan, caps: Capabilities | None = None, progress: Any = None) -> SweepResult:
    """Sweep ``plan.subnet`` lowest address first, block by block, within ``plan.budget`` s."""
    start = time.monotonic()
    caps = caps or capabilities(plan.interface)
    methods = choose_methods(caps, plan)
    addresses = [a for a in host_addresses(plan.subnet) if a not in plan.skip]
    end = start + plan.budget
    alive: dict[str, Alive] = {}
    notes: list[str] = []
    if "arp" in methods and plan.interface and addresses and plan.budget > 0:
        try:  # the first use of scapy: when it cannot open the link, sweep without it
            open_arp_socket(plan.interface).close()
        except Exception as exc:
            notes.append(f"ARP sweep unavailable: {type(exc).__name__}: {exc}")
            methods = choose_methods(Capabilities(False, caps.icmp), plan)
    swept = 0
    last: str | None = None
    complete, out_of_time = True, False
    size = BLOCK if plan.stop_on_gap else FULL_BLOCK
    for block_start in range(0, len(addresses), size):
        if time.monotonic() >= end:
            complete, out_of_time = False, True
            notes.append(f"time budget of {plan.budget:g}s used up")
            break
        block = addresses[block_start : block_start + size]
        before = len(alive)
        done = _sweep_block(block, methods, plan, alive, end)
        swept += done
        if done:
            last = block[done - 1]
        if done < len(block):
            complete, out_of_time = False, True
            notes.append(f"time budget of {plan.budget:g}s used up")
            break
        if progress:
            progress(plan.subnet, swept, len(addresses), len(alive))
        more = block_start + size < len(addresses)
        if plan.stop_on_gap and more and block_start > 0 and len(alive) == before:
            complete = False
            notes.append(
                "an empty block: Docker hands out addresses from the low end "
                "(--subnet sweeps all of the range)"
            )
            break
    if "tcp" in methods and plan.interface:
        # Connect attempts made the kernel resolve each address: hosts that answered ARP but
        # drop TCP still show up as complete neighbor entries.
        for ip, entry in neighbours.complete().items():
            if entry.device == plan.interface and ip in alive:
                alive[ip].saw("neighbor", mac=entry.mac)
            elif entry.device == plan.interface and _in_swept(ip, addresses, swept):
                alive.setdefault(ip, Alive(ip)).saw("neighbor", mac=entry.mac)
    return SweepResult(
        plan.subnet,
        plan.interface,
        methods,
        dict(sorted(alive.items(), key=lambda kv: ipaddress.ip_address(kv[0]))),
        swept,
        len(addresses),
        complete,
        last,
        (time.monotonic() - start) * 1000,
        notes,
        out_of_time,
    )


def _in_swept(ip: str, addresses: list[str], swept: int) -> bool:
    if not swept:
        return False
    addr = ipaddress.ip_address(ip)
    return ipaddress.ip_address(addresses[0]) <= addr <= ipaddress.ip_address(addresses[swept - 1])


def _sweep_block(
    block: list[str], methods: list[str], plan: SweepPlan, alive: dict[str, Alive], end: float
) -> int:
    """Sweep one block with every method; returns how many addresses were covered."""
    covered = len(block)
    if "arp" in methods and plan.interface and plan.src_ip:
        found, covered = arp_sweep(plan.interface, plan.src_ip, block, plan.wait, plan.rate, end)
        for ip, (mac, rtt) in found.items():
            alive.setdefault(ip, Alive(ip)).saw("arp", rtt, mac)
    pinged = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        if "icmp" in methods:  # echoes wait for their replies while the connects run
            pinged = pool.submit(ping_many, block, plan.wait, plan.rate / 2, end)
        if "tcp" in methods:
            pairs = [(ip, SWEEP_PORT) for ip in block]
            rate = plan.rate / 2 if pinged else plan.rate
            outcomes = connect_many(pairs, plan.wait, plan.concurrency, rate, end)
            covered = min(covered, len(outcomes))
            for (ip, _), out in outcomes.items():
                if out.state in ("open", "refused"):
                    alive.setdefault(ip, Alive(ip)).saw("tcp", out.rtt_ms)
        if pinged is not None:
            replies, _ = pinged.result()
            for ip, rtt in replies.items():
                alive.setdefault(ip, Alive(ip)).saw("icmp", rtt)
    return covered
