"""One agent's round as plain dataclasses; ``LocalReport.to_payload()`` is /api/v1/local.

Peer states: ``up`` (its /ping answered), ``down`` (it did not), ``stale`` (it vanished from
this node's DNS but answered within the last ``STALE_ROUNDS`` rounds; probed all the same, its
``up`` field says whether it still answers). The matrix adds ``unknown`` for pairs nobody
could report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from netdiag.result import ProbeResult

UP, DOWN, STALE, UNKNOWN = "up", "down", "stale", "unknown"
CELL_STATES = (UP, DOWN, STALE, UNKNOWN)


def peer_set_digest(addresses: list[str] | set[str] | tuple[str, ...]) -> str:
    """A short digest of a set of addresses: equal sets, equal digests, whatever the order."""
    text = ",".join(sorted(addresses))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _peer_view(view: Any) -> dict[str, Any] | None:
    """What a peer's /ping says of its DNS view ({count, digest}), checked field by field."""
    if not isinstance(view, dict):
        return None
    count, digest = view.get("count"), view.get("digest")
    return {
        "count": count if isinstance(count, int) and not isinstance(count, bool) else None,
        "digest": digest if isinstance(digest, str) else None,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class UdpEcho:
    """The UDP echo to one peer: packets sent, echoes received, loss ratio, median RTT."""

    sent: int = 0
    received: int = 0
    rtt_ms: float | None = None

    @property
    def loss(self) -> float | None:
        return None if not self.sent else round(1 - self.received / self.sent, 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "received": self.received,
            "loss": self.loss,
            "rtt_ms": _ms(self.rtt_ms),
        }


@dataclass
class PeerPing:
    """What one TCP connect + HTTP /ping to a peer found (the pinger's output, before state)."""

    address: str
    status: str  # the shared status vocabulary: ok, timeout, refused, ...
    step: str | None = None  # connect, request, response
    detail: str = ""
    connect_ms: float | None = None
    rtt_ms: float | None = None  # request sent -> whole /ping answer read
    info: dict[str, Any] = field(default_factory=dict)  # the peer's /ping document
    udp: UdpEcho = field(default_factory=UdpEcho)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class PeerResult:
    """One peer in one round: its state, the ping outcome and what it said about itself."""

    address: str
    state: str  # up, down, stale
    in_dns: bool
    ping: PeerPing
    known_node: str | None = None  # its name from an earlier round, when it answers no more

    @property
    def up(self) -> bool:
        return self.ping.ok

    @property
    def node(self) -> str | None:
        node = self.ping.info.get("node")
        return node if isinstance(node, str) and node else self.known_node

    def to_dict(self) -> dict[str, Any]:
        info = self.ping.info
        view = _peer_view(info.get("peers"))
        return {
            "address": self.address,
            "node": self.node,
            "state": self.state,
            "up": self.up,
            "in_dns": self.in_dns,
            "status": self.ping.status,
            "step": self.ping.step,
            "detail": self.ping.detail,
            "connect_ms": _ms(self.ping.connect_ms),
            "rtt_ms": _ms(self.ping.rtt_ms),
            "udp": self.ping.udp.to_dict(),
            "version": info.get("version") if isinstance(info.get("version"), str) else None,
            "peer_view": view,
        }


@dataclass
class DnsLookup:
    """One timed lookup of this node's resolver: what it returned or why it failed."""

    name: str
    ok: bool
    elapsed_ms: float
    addresses: list[str] = field(default_factory=list)
    error: str | None = None  # nxdomain, no_data, no_reply, servfail, refused
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "elapsed_ms": _ms(self.elapsed_ms),
            "addresses": self.addresses,
            "error": self.error,
            "detail": self.detail,
        }


@dataclass
class TargetOutcome:
    """One ``--target`` in one round: up when every address it resolved to answered ok."""

    target: str
    results: list[ProbeResult]

    @property
    def up(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def status(self) -> str:
        bad = [r for r in self.results if not r.ok]
        return str(bad[0].status) if bad else ("ok" if self.results else "error")

    @property
    def detail(self) -> str:
        bad = [r for r in self.results if not r.ok]
        return (bad[0] if bad else self.results[0]).detail if self.results else "no result"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "up": self.up,
            "status": self.status,
            "detail": self.detail,
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class Identity:
    """Who this agent is: node name, task address, container, what it looks for, how often."""

    node: str
    address: str | None
    container_id: str | None
    version: str
    peers_name: str
    service: str | None
    port: int
    interval_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "address": self.address,
            "container_id": self.container_id,
            "version": self.version,
            "peers_name": self.peers_name,
            "service": self.service,
            "port": self.port,
            "interval_s": self.interval_s,
        }


def peer_addresses(lookup: DnsLookup) -> list[str] | None:
    """The agents a peers lookup lists, sorted, once each; None when it failed."""
    return sorted(set(lookup.addresses)) if lookup.ok else None


@dataclass
class LocalReport:
    """One finished round of one agent (``finished`` is on this process's monotonic clock)."""

    identity: Identity
    number: int
    started_at: float  # wall clock, for people
    finished: float  # monotonic, for ages
    duration_ms: float
    peers_lookup: DnsLookup
    service_lookup: DnsLookup | None
    peers: list[PeerResult]
    targets: list[TargetOutcome]

    @property
    def dns_peers(self) -> list[str] | None:
        """What tasks.<service> returned this round, sorted, once each; None: the lookup failed."""
        return peer_addresses(self.peers_lookup)

    @property
    def digest(self) -> str | None:
        return None if self.dns_peers is None else peer_set_digest(self.dns_peers)

    def disagreeing(self) -> list[dict[str, Any]]:
        """Peers that answered and whose DNS lists another set of agents than ours."""
        if self.digest is None:
            return []
        out = []
        for p in self.peers:
            view = _peer_view(p.ping.info.get("peers"))
            if p.up and view is not None and view["digest"] not in (None, self.digest):
                out.append({"address": p.address, "node": p.node, "count": view["count"]})
        return out

    @property
    def ok(self) -> bool:
        return (
            self.dns_peers is not None
            and all(p.state == UP for p in self.peers)
            and all(t.up for t in self.targets)
        )

    def to_payload(self, age_s: float) -> dict[str, Any]:
        """The /api/v1/local payload (goes into the envelope); ``age_s`` is computed by the caller."""
        lookups = [self.peers_lookup] + ([self.service_lookup] if self.service_lookup else [])
        disagree = self.disagreeing()
        answered = [p for p in self.peers if p.up and isinstance(p.ping.info.get("peers"), dict)]
        return {
            "agent": self.identity.to_dict(),
            "round": {
                "number": self.number,
                "started_at": round(self.started_at, 3),
                "duration_ms": round(self.duration_ms, 3),
                "age_s": round(max(0.0, age_s), 3),
            },
            "dns": {
                "lookups": [lk.to_dict() for lk in lookups],
                "peers": self.dns_peers,
                "digest": self.digest,
                "agree": None if self.digest is None or not answered else not disagree,
                "disagree": disagree,
            },
            "peers": [p.to_dict() for p in self.peers],
            "targets": [t.to_dict() for t in self.targets],
        }
