"""One agent's round: look its peers up, ping them all, probe the targets, remember who was seen.

Every round re-resolves ``tasks.<service>`` through this node's resolver (``dns.lookup``, so
``NETDIAG_RESOLVER`` / ``NETDIAG_RESOLV_CONF`` apply). A peer that vanished from the answer but
answered within the last ``STALE_ROUNDS`` rounds is still pinged and reported ``stale``; after
that it is dropped, and ``Rounds.run`` says so, so that its metric series can be removed too.
When the lookup itself fails, the last known peers are pinged (nothing is called stale: the
DNS failed, nobody vanished).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from netdiag.deadline import Deadline
from netdiag.dns.lookup import LookupFailure, resolve
from netdiag.dns.resolvconf import ResolvConf, load
from netdiag.mesh.model import (
    DOWN,
    STALE,
    UP,
    DnsLookup,
    Identity,
    LocalReport,
    PeerResult,
    TargetOutcome,
    peer_addresses,
)
from netdiag.mesh.pinger import ping_all
from netdiag.probes.settings import ProbeOptions
from netdiag.targets import Target

STALE_ROUNDS = 3
ROUND_SHARE = 0.9  # a round must end within this share of the interval


@dataclass
class RoundSettings:
    """What every round does; fixed for the agent's life."""

    peers_name: str
    service_name: str | None
    port: int
    interval: float
    timeout: float
    udp_packets: int = 5
    targets: Sequence[Target] = ()
    # one per target, from netdiag.probes.settings.options_for (empty: the defaults)
    probe_options: Sequence[ProbeOptions] = ()


@dataclass
class PeerMemory:
    node: str | None
    last_up: int | None


@dataclass
class Dropped:
    address: str
    node: str | None


def timed_lookup(name: str, conf: ResolvConf, timeout: float) -> DnsLookup:
    """Resolve ``name`` and say how long it took, never raising for a DNS failure."""
    start = time.monotonic()
    try:
        found = resolve(name, conf, timeout=timeout)
    except LookupFailure as fail:
        elapsed = (time.monotonic() - start) * 1000
        return DnsLookup(name, False, elapsed, [], fail.kind, fail.detail)
    elapsed = (time.monotonic() - start) * 1000
    return DnsLookup(name, True, elapsed, list(found.addresses), None, found.source)


class Rounds:
    """Runs rounds one after another and keeps the peer memory between them (not thread-safe:
    one caller, the agent's round thread)."""

    def __init__(
        self,
        settings: RoundSettings,
        identity: Identity,
        resolv: Callable[[], ResolvConf] = load,
        local_addresses: Callable[[], set[str]] | None = None,
        listen_host: str = "0.0.0.0",
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.resolv = resolv
        self.local_addresses = local_addresses
        self.listen_host = listen_host
        self.number = 0
        self.memory: dict[str, PeerMemory] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="round")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _probe_targets(self, deadline: Deadline) -> list[TargetOutcome]:
        from netdiag.probes import engine

        s = self.settings
        options = s.probe_options or [ProbeOptions(timeout=s.timeout) for _ in s.targets]
        results = engine.run(s.targets, options, deadline)
        return [
            TargetOutcome(str(t), [r for r in results if r.target == str(t)])
            for t in self.settings.targets
        ]

    def run(
        self, ping_headers: str = "", deadline: Deadline | None = None
    ) -> tuple[LocalReport, list[Dropped]]:
        """One round within ``deadline`` (default ``ROUND_SHARE`` of the interval); returns its
        report and the peers dropped from memory in it."""
        s = self.settings
        self.number += 1
        number = self.number
        started_at, start = time.time(), time.monotonic()
        deadline = deadline or Deadline(max(s.interval * ROUND_SHARE, 0.05))
        conf = self.resolv()
        peers_lookup = timed_lookup(s.peers_name, conf, deadline.timeout(s.timeout))
        service_job: Future[DnsLookup] | None = None
        if s.service_name:
            service_job = self._pool.submit(
                timed_lookup, s.service_name, conf, deadline.timeout(s.timeout)
            )
        targets_job = self._pool.submit(self._probe_targets, deadline) if s.targets else None

        dns_peers = peer_addresses(peers_lookup)
        if dns_peers is not None and self.identity.address is None and self.local_addresses:
            from netdiag.mesh.identity import pick_task_address

            self.identity.address = pick_task_address(
                self.listen_host, dns_peers, self.local_addresses()
            )
        plan: dict[str, str] = {}  # address -> up/down placeholder or stale
        if dns_peers is not None:
            plan.update(dict.fromkeys(dns_peers, UP))
            for address, mem in self.memory.items():
                recent = mem.last_up is not None and number - mem.last_up <= STALE_ROUNDS
                if address not in plan and recent:
                    plan[address] = STALE
        else:  # the lookup failed: nobody vanished, ping everyone known
            plan.update(dict.fromkeys(self.memory, UP))
        pings = ping_all(
            list(plan),
            s.port,
            deadline.timeout(s.timeout),
            deadline.end,
            s.udp_packets,
            ping_headers,
        )
        peers: list[PeerResult] = []
        for address, planned in plan.items():
            ping = pings[address]
            state = STALE if planned == STALE else (UP if ping.ok else DOWN)
            in_dns = dns_peers is not None and planned != STALE
            mem = self.memory.setdefault(address, PeerMemory(None, None))
            peers.append(PeerResult(address, state, in_dns, ping, mem.node))
            if ping.ok:
                mem.last_up = number
            mem.node = peers[-1].node or mem.node
        dropped = [
            Dropped(address, mem.node)
            for address, mem in list(self.memory.items())
            if address not in plan
        ]
        for gone in dropped:
            del self.memory[gone.address]
        service_lookup = service_job.result() if service_job else None
        targets = targets_job.result() if targets_job else []
        peers.sort(key=lambda p: (p.node or "~", p.address))
        report = LocalReport(
            identity=self.identity,
            number=number,
            started_at=started_at,
            finished=time.monotonic(),
            duration_ms=(time.monotonic() - start) * 1000,
            peers_lookup=peers_lookup,
            service_lookup=service_lookup,
            peers=peers,
            targets=targets,
        )
        return report, dropped
