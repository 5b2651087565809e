"""Path MTU discovery with don't-fragment probes, and MTU black holes.

Round one sends a probe the size of the interface MTU (and a small reference probe when the
protocol is new to the path). A "fragmentation needed" names the next size to try (what
tracepath follows). Silence where small probes pass is the black-hole signature: the next
round brackets the size with common MTUs (1500, 1480, 1450 for VXLAN, 1420, 1400, ...), the
one after checks the byte above the plateau that passed, and narrower brackets are probed size
by size, all in one round, largest first, until the largest size that passes sits next to one
that vanished twice (or two neighbours that both vanished). Along with the bracketing round,
big probes with TTLs 1..d-1 find the last hop they still reach: where the black hole is.

``plan`` (what to send next) is a pure function of the evidence so far.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netdiag.path.probers import PROBE_SIZE, Prober, Sent, settle

PLATEAUS = (
    65535,
    32000,
    17914,
    9000,
    8166,
    4352,
    2002,
    1500,
    1492,
    1480,
    1476,
    1460,
    1450,
    1440,
    1420,
    1400,
    1380,
    1350,
    1300,
    1280,
    1200,
    1006,
    576,
)  # fmt: skip  (RFC 1191's table plus the MTUs container networks and tunnels use)
FINE = 24  # a bracket this narrow is probed size by size, in one round
SPREAD = 12  # a wider one with no plateau left inside: this many sizes spread across it
MAX_ROUNDS = 8
MAX_PACKET = 65535  # an IPv4 packet's largest size (loopback's MTU is 65536)
IPV6_MIN = 1280
PROBE_TTL = 64


@dataclass
class Evidence:
    """What each probe size did: passed, vanished (how often), or drew a frag-needed."""

    passed: set[int] = field(default_factory=set)
    silent: Counter[int] = field(default_factory=Counter)
    frag: dict[int, tuple[int | None, str | None]] = field(default_factory=dict)

    def covering(self, size: int) -> tuple[int | None, str | None] | None:
        """The frag-needed that says ``size`` fails: at that size, or one claiming an MTU below."""
        if size in self.frag:
            return self.frag[size]
        for probed, (mtu, sender) in self.frag.items():
            if mtu is not None and mtu < size <= probed:
                return mtu, sender
        return None

    def failed(self, size: int) -> bool:
        return self.silent[size] > 0 or self.covering(size) is not None

    def tried(self, size: int) -> bool:
        return size in self.passed or size in self.frag or self.silent[size] > 0

    def lo(self) -> int | None:
        return max(self.passed) if self.passed else None

    def hi(self) -> int | None:
        """The smallest size above everything that passed that failed (or ICMP says fails)."""
        lo = self.lo() or 0
        sizes = set(self.silent) | set(self.frag)
        sizes |= {m + 1 for m, _ in self.frag.values() if m is not None}
        failing = [s for s in sizes if s > lo and self.failed(s)]
        return min(failing) if failing else None

    def confirmed(self, size: int) -> bool:
        """A failure is believed when ICMP said so, it vanished twice, or so did size+1."""
        return self.covering(size) is not None or self.silent[size] >= 2 or self.failed(size + 1)

    def hint(self) -> int | None:
        """An untried next-hop MTU that a frag-needed reported inside the bracket."""
        lo = self.lo() or 0
        for size in sorted(self.frag, reverse=True):
            mtu = self.frag[size][0]
            if mtu and lo < mtu < size and not self.tried(mtu):
                return mtu
        return None


def plan(ev: Evidence, top: int) -> list[int]:
    """The sizes to probe next (largest first), or [] when the path MTU is known."""
    lo = ev.lo()
    if lo is None or lo >= top:
        return []
    hint = ev.hint()
    if hint is not None:
        return [hint]
    hi = ev.hi()
    if hi is None:
        return [top] if not ev.tried(top) else []
    if hi == lo + 1:
        return [] if ev.confirmed(hi) else [hi]
    interior = range(lo + 1, hi)
    if lo in PLATEAUS and not ev.tried(lo + 1) and len(interior) > 4:
        # a path MTU is usually one of the plateaus: lo+1 and lo+2 vanishing confirm it,
        # two sizes further up narrow the bracket in case it is not
        step = len(interior) // 3
        return sorted({lo + 1, lo + 2, lo + 1 + step, lo + 1 + 2 * step}, reverse=True)
    if len(interior) <= FINE:  # every size left, and the top again unless confirmed
        return sorted({*interior, *([] if ev.confirmed(hi) else [hi])}, reverse=True)
    untried = [p for p in PLATEAUS if lo < p < hi and not ev.tried(p)]
    sizes = [p for p in untried if p >= IPV6_MIN] or untried  # containers rarely go lower
    if not sizes:
        step = len(interior) / (SPREAD + 1)
        sizes = [lo + 1 + int(step * (i + 1)) for i in range(SPREAD)]
    if not ev.confirmed(hi):  # a single vanished probe could be plain loss
        sizes.append(hi)
    return sorted(set(sizes), reverse=True)


@dataclass
class MtuResult:
    """The path MTU to the target and how it was found."""

    protocol: str  # what the probes were: icmp (echo), udp or tcp (SYN with payload)
    interface: str | None
    interface_mtu: int | None
    pmtu: int | None = None
    kernel_pmtu: int | None = None  # what this host had learnt already (IP_MTU)
    frag_needed: list[dict[str, Any]] = field(default_factory=list)
    black_hole: bool = False
    lowered_hop: int | None = None  # TTL of the hop that lowered it (frag-needed or black hole)
    lowered_at: str | None = None  # that hop's address
    probes: int = 0
    rounds: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def frag_needed_seen(self) -> bool:
        return bool(self.frag_needed)

    @property
    def status(self) -> str:
        """ok (full interface MTU), lower (PMTU below it, ICMP works), black_hole, unknown."""
        if self.pmtu is None:
            return "unknown"
        if self.black_hole:
            return "black_hole"
        if self.interface_mtu and self.pmtu < min(self.interface_mtu, MAX_PACKET):
            return "lower"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "pmtu": self.pmtu,
            "protocol": self.protocol,
            "interface": self.interface,
            "interface_mtu": self.interface_mtu,
            "kernel_pmtu": self.kernel_pmtu,
            "frag_needed_seen": self.frag_needed_seen,
            "frag_needed": self.frag_needed,
            "black_hole": self.black_hole,
            "lowered_hop": self.lowered_hop,
            "lowered_at": self.lowered_at,
            "probes": self.probes,
            "rounds": self.rounds,
            "notes": self.notes,
        }


def search(
    prober: Prober,
    result: MtuResult,
    top: int,
    timeout: float,
    deadline: float,
    hop_addresses: dict[int, str] | None = None,
    distance: int | None = None,
    reference_passed: bool = False,
    expect_ms: float | None = None,
) -> MtuResult:
    """Find the path MTU to ``prober.dst`` (at most ``top``) and fill ``result``."""
    ev = Evidence()
    if reference_passed:
        ev.passed.add(PROBE_SIZE)
    sizes = [top] if reference_passed else [top, PROBE_SIZE]
    reached: dict[int, bool] = {}  # TTL -> a big probe drew time exceeded there
    locate_size: int | None = None
    start_probes = prober.sent_count
    while sizes and result.rounds < MAX_ROUNDS and time.monotonic() < deadline:
        result.rounds += 1
        batch = prober.send_many([(PROBE_TTL, s) for s in sorted(sizes, reverse=True)])
        locating: list[Sent] = []
        if locate_size is not None and distance and distance > 1:
            locating = prober.send_many([(t, locate_size) for t in range(1, distance)])
            locate_size = None
        settle(prober, batch + locating, timeout, deadline, expect_ms=expect_ms)
        for s in batch:
            _record(ev, s, result)
        for s in locating:
            if s.answer is not None and s.answer.kind in ("time_exceeded", "frag_needed"):
                reached[s.ttl] = True
        if result.rounds == 1 and not ev.passed:
            result.notes.append("the target does not answer")
            break
        if result.rounds == 1 and ev.silent[top] and not result.frag_needed:
            locate_size = top  # silence at full size: find where big packets stop
        sizes = plan(ev, top)
    result.probes = prober.sent_count - start_probes
    lo, hi = ev.lo(), ev.hi()
    if lo is None:
        return result
    if plan(ev, top):
        result.notes.append(
            f"search stopped early (deadline): the path MTU is between {lo} and {hi or top}"
        )
        return result
    result.pmtu = lo
    if hi is not None and not ev.confirmed(hi):
        result.notes.append(f"{hi} bytes vanished once only: the path MTU may be higher")
    frag_hi = ev.covering(hi) if hi is not None else None
    if frag_hi is not None:
        sender = frag_hi[1]
        result.lowered_at = sender
        result.lowered_hop = _ttl_of(sender, hop_addresses)
    elif hi is not None and lo < top:
        result.black_hole = True
        if reached:
            last = max(reached)
            result.lowered_hop = last
            result.lowered_at = (hop_addresses or {}).get(last)
        elif distance and distance > 1:
            result.notes.append("big probes drew no answer from any hop: lost before hop 1")
    return result


def _record(ev: Evidence, sent: Sent, result: MtuResult) -> None:
    a = sent.answer
    if a is None:
        ev.silent[sent.size] += 1
    elif a.kind == "reply":
        ev.passed.add(sent.size)
    elif a.kind == "frag_needed":
        mtu = a.mtu if a.mtu and a.mtu < sent.size else None
        ev.frag[sent.size] = (mtu, a.address)
        result.frag_needed.append({"size": sent.size, "mtu": a.mtu, "from": a.address})
    elif a.kind == "local_error" and a.mtu:
        ev.frag[sent.size] = (a.mtu if a.mtu < sent.size else None, None)
    else:
        ev.silent[sent.size] += 1


def _ttl_of(address: str | None, hop_addresses: dict[int, str] | None) -> int | None:
    for ttl, addr in (hop_addresses or {}).items():
        if addr == address:
            return ttl
    return None
