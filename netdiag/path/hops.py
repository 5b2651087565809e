"""Hop discovery: ``probes`` probes per TTL, a window of TTLs in flight at once.

traceroute sends 16 probes at a time, mtr one round per second; here every probe of a window
of TTLs leaves together and the wait ends when every one is answered or given up (see
``probers.settle``). Windows continue until the target answers, a hop says it is unreachable,
``GAP_LIMIT`` TTLs in a row stay silent, ``max_hops`` or the deadline.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netdiag.path.probers import PROBE_SIZE, Prober, Sent, settle

WINDOW = 5  # TTLs in flight at once (container paths are short; longer ones take more waves)
GAP_LIMIT = 5  # consecutive silent TTLs that end the trace (scamper's and Paris traceroute's)


@dataclass
class Hop:
    """One TTL: who answered, RTT min/avg/max over the probes answered, loss."""

    ttl: int
    sent: int = 0
    addresses: list[str] = field(default_factory=list)  # most frequent first (ECMP shows >1)
    rtts_ms: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # PTR names of the first address
    kind: str | None = None  # time_exceeded, reply, unreachable, frag_needed
    detail: str = ""
    is_target: bool = False

    @property
    def received(self) -> int:
        return len(self.rtts_ms)

    @property
    def address(self) -> str | None:
        return self.addresses[0] if self.addresses else None

    @property
    def loss(self) -> float:
        return 0.0 if not self.sent else 1.0 - self.received / self.sent

    def rtt(self) -> tuple[float, float, float] | None:
        if not self.rtts_ms:
            return None
        return min(self.rtts_ms), statistics.fmean(self.rtts_ms), max(self.rtts_ms)

    def to_dict(self) -> dict[str, Any]:
        rtt = self.rtt()
        return {
            "ttl": self.ttl,
            "address": self.address,
            "addresses": self.addresses,
            "name": self.names[0] if self.names else None,
            "sent": self.sent,
            "received": self.received,
            "loss": round(self.loss, 4),
            "rtt_ms": None
            if rtt is None
            else {"min": round(rtt[0], 3), "avg": round(rtt[1], 3), "max": round(rtt[2], 3)},
            "answer": self.kind,
            "detail": self.detail,
            "target": self.is_target,
        }


@dataclass
class HopsResult:
    """The hops up to the target (or as far as answers came), and why the trace ended."""

    hops: list[Hop]
    reached: bool
    ended: str  # reached, unreachable, gap, max_hops, deadline, local_error
    detail: str = ""
    tcp_state: str | None = None  # TCP mode: open, closed or filtered
    probes_sent: int = 0

    @property
    def distance(self) -> int | None:
        return next((h.ttl for h in self.hops if h.is_target), None)


def summarize(ttl: int, sents: list[Sent], target: str) -> Hop:
    """One hop's line from its probes' answers (pure)."""
    hop = Hop(ttl, sent=len(sents))
    seen: Counter[str] = Counter()
    for s in sents:
        a = s.answer
        if a is None or a.kind == "local_error" or a.address is None:
            continue
        seen[a.address] += 1
        hop.rtts_ms.append(a.rtt_ms)
        if a.kind == "reply" or (a.address == target and a.kind != "time_exceeded"):
            hop.is_target = True
        if hop.kind is None or a.kind != "time_exceeded":
            hop.kind, hop.detail = a.kind, a.detail
    hop.addresses = [addr for addr, _ in seen.most_common()]
    return hop


def discover(
    prober: Prober,
    max_hops: int,
    probes: int,
    timeout: float,
    deadline: float,
    window: int = WINDOW,
    first_ttl: int = 1,
) -> HopsResult:
    """Trace the path to ``prober.dst``; see the module docstring for when it stops."""
    target = prober.dst
    by_ttl: dict[int, list[Sent]] = {}
    ttl = first_ttl
    ended, detail = "max_hops", ""
    while ttl <= max_hops:
        if time.monotonic() >= deadline:
            ended, detail = "deadline", f"deadline reached before TTL {ttl}"
            break
        wave = range(ttl, min(ttl + window, max_hops + 1))
        # TTL-major: a target that rate-limits its ICMP errors answers the nearest TTL first
        batch = prober.send_many([(t, PROBE_SIZE) for t in wave for _ in range(probes)])
        for s in batch:
            by_ttl.setdefault(s.ttl, []).append(s)

        def finished(batch: list[Sent] = batch) -> bool:
            reached = [s.ttl for s in batch if s.answer and _is_end(s, target)]
            if not reached:
                return False
            last = min(reached)
            return all(s.answer is not None for s in batch if s.ttl <= last)

        settle(prober, batch, timeout, deadline, done=finished)
        local = next((s.answer for s in batch if s.answer and s.answer.kind == "local_error"), None)
        if local is not None and all(
            s.answer is not None and s.answer.kind == "local_error" for s in by_ttl[ttl]
        ):
            ended, detail = "local_error", local.detail
            break
        ends = sorted(s.ttl for s in batch if s.answer and _is_end(s, target))
        if ends:
            last = ends[0]
            for t in [t for t in by_ttl if t > last]:
                del by_ttl[t]
            end = next(s for s in by_ttl[last] if s.answer and _is_end(s, target))
            assert end.answer is not None
            if end.answer.kind == "reply" or end.answer.address == target:
                ended = "reached" if end.answer.kind == "reply" else "unreachable"
            else:
                ended = "unreachable"
            detail = end.answer.detail
            break
        silent = 0
        for t in sorted(by_ttl):
            silent = 0 if any(s.answer for s in by_ttl[t]) else silent + 1
        if silent >= GAP_LIMIT:
            first_silent = max(by_ttl) - silent + 1
            ended = "gap"
            detail = f"no answer from TTL {first_silent} to {max(by_ttl)}"
            for t in [t for t in by_ttl if t > first_silent]:
                del by_ttl[t]
            break
        ttl = wave.stop
        if not any(s.answer for s in batch):
            # a silent wave: probably more silence ahead, so see the rest of the gap at once
            window = max(window, GAP_LIMIT - silent)
    hops = [summarize(t, by_ttl[t], target) for t in sorted(by_ttl)]
    reached = ended == "reached"
    result = HopsResult(hops, reached, ended, detail, probes_sent=prober.sent_count)
    if prober.proto == "tcp":
        result.tcp_state = tcp_state(hops, reached)
    return result


def _is_end(sent: Sent, target: str) -> bool:
    """Whether this answer ends the trace: the target answered, or someone said unreachable."""
    a = sent.answer
    if a is None:
        return False
    return a.kind in ("reply", "unreachable") or (a.kind != "time_exceeded" and a.address == target)


def tcp_state(hops: list[Hop], reached: bool) -> str:
    """open (SYN-ACK), closed (RST) or filtered (no answer, or administratively prohibited)."""
    last = hops[-1] if hops else None
    if reached and last is not None:
        return "closed" if last.detail == "RST" else "open"
    return "filtered"
