"""Per-peer checks for scan: names and their DNS, reachability and RTT, open ports, protocols.

Each step fills the Peers in place, bounded by the deadline: one PTR per live address, one
forward lookup per name, one ICMP echo per address the sweep has not already heard at the IP
level (its RTT is kept), one TCP connect per (address, port), one probe per open port.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from netdiag.deadline import Deadline
from netdiag.discovery import names as dnsnames
from netdiag.discovery.connect import connect_many
from netdiag.discovery.icmp import ping_many
from netdiag.dns.resolvconf import ResolvConf
from netdiag.status import Status

DEFAULT_PORTS = (22, 80, 443, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 9200, 27017)

# Which probe to try on an open port; ports not listed are reported as plain TCP.
PORT_SCHEMES = {
    3306: "mysql",
    5432: "postgres",
    6379: "redis",
    80: "http",
    3000: "http",
    5000: "http",
    8000: "http",
    8080: "http",
    9200: "http",
    443: "https",
    8443: "https",
}


@dataclass
class PortResult:
    """One TCP port of a peer: ``state`` open/refused/timeout/unreachable/error, then the probe."""

    port: int
    state: str
    rtt_ms: float | None = None
    protocol: str | None = None  # identified protocol (mysql, http, ssh, tls, ...) or None
    status: str | None = None  # against the port's expected protocol (PORT_SCHEMES), if any
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    identified: str | None = None  # identified, silent, unrecognised, closed, failed
    identity: dict[str, Any] | None = None  # netdiag.probes.identify.model.Identity.to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["rtt_ms"] = None if self.rtt_ms is None else round(self.rtt_ms, 3)
        return d


@dataclass
class Peer:
    """One address (or one stopped container) on one network, and what scan found about it."""

    ip: str | None
    container: str | None = None
    container_id: str | None = None
    state: str | None = None  # Docker state, None when seen by the sweep only
    mac: str | None = None
    names: list[str] = field(default_factory=list)
    ptr: list[str] = field(default_factory=list)
    ptr_error: str | None = None
    seen_by: list[str] = field(default_factory=list)  # docker, arp, tcp, icmp, neighbor
    exposed_ports: list[int] = field(default_factory=list)
    dns: list[dnsnames.NameCheck] = field(default_factory=list)
    status: str = Status.TIMEOUT.value
    reachable: bool | None = None  # None: not checked (stopped container)
    rtt_ms: float | None = None  # from the sweep when it measured one, else from the checks
    rtt_via: str | None = None  # icmp, tcp/PORT or arp
    ports: list[PortResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gateway: bool = False  # the network's gateway (API, or a route via it): never has a name

    @property
    def running(self) -> bool:
        return self.ip is not None and self.state in (None, "running")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "container": self.container,
            "container_id": self.container_id,
            "state": self.state,
            "mac": self.mac,
            "names": self.names,
            "ptr": self.ptr,
            "ptr_error": self.ptr_error,
            "seen_by": self.seen_by,
            "exposed_ports": self.exposed_ports,
            "dns": [c.to_dict() for c in self.dns],
            "status": self.status,
            "reachable": self.reachable,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "rtt_via": self.rtt_via,
            "ports": [p.to_dict() for p in self.ports],
            "notes": self.notes,
            "gateway": self.gateway,
        }


def ip_key(peer: Peer) -> tuple[int, int]:
    if peer.ip is None:
        return (1, 0)
    return (0, int(ipaddress.ip_address(peer.ip)))


# ---------------------------------------------------------------- DNS


def check_dns(
    peers: Sequence[Peer], conf: ResolvConf, timeout: float, deadline: Deadline, workers: int
) -> None:
    """PTR for every live address (gateways excepted: they have no name, and asking could
    only send the question on upstream); then every known name resolved and compared."""
    live = [p for p in peers if p.running and not p.gateway]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:

        def do_ptr(peer: Peer) -> None:
            t = deadline.timeout(timeout)
            if t <= 0 or peer.ip is None:
                peer.ptr_error = "deadline"
                return
            peer.ptr, peer.ptr_error = dnsnames.ptr(peer.ip, conf, t)
            for ptr_name in peer.ptr:
                for name in dnsnames.short_names(ptr_name):
                    if name not in peer.names:
                        peer.names.append(name)
            if not peer.names:
                peer.notes.append(
                    f"live address the DNS does not know (no PTR: {peer.ptr_error or 'no name'})"
                )

        list(pool.map(do_ptr, live))

        def do_forward(item: tuple[Peer, str]) -> dnsnames.NameCheck:
            peer, name = item
            t = deadline.timeout(timeout)
            if t <= 0 or peer.ip is None:
                return dnsnames.NameCheck(name, error="deadline")
            return dnsnames.check_name(name, peer.ip, conf, t)

        jobs = [(p, n) for p in live for n in p.names]
        for (peer, _), check in zip(jobs, pool.map(do_forward, jobs), strict=True):
            peer.dns.append(check)
    for peer in live:
        for check in peer.dns:
            if check.error:
                peer.notes.append(f"name {check.name} does not resolve ({check.error})")
            elif not check.resolves_here:
                peer.notes.append(
                    f"name {check.name} resolves to {', '.join(check.addresses)}, not {peer.ip}"
                )
            elif check.shared:
                others = [a for a in check.addresses if a != peer.ip]
                peer.notes.append(
                    f"name {check.name} is held by several containers (also {', '.join(others)})"
                )


# ---------------------------------------------------------------- reachability and ports


def answered_ip(peer: Peer) -> bool:
    """The sweep already heard it at the IP level (ICMP echo or TCP), not only by ARP."""
    return bool({"icmp", "tcp"} & set(peer.seen_by))


def check_reachability_and_ports(
    peers: Sequence[Peer],
    ports: Sequence[int] | None,
    timeout: float,
    deadline: Deadline,
    concurrency: int,
    rate: float,
    on_open: Callable[[tuple[str, int], Any], None] | None = None,
) -> None:
    """TCP connects to each peer's ports, and one ICMP echo to each peer the sweep has not
    heard at the IP level (when a socket allows it): the sweep's RTT is kept, not re-measured.
    ``on_open(pair, outcome)`` hears of each open port as soon as its connect succeeds."""
    live = [p for p in peers if p.running]
    addresses = [p.ip for p in live if p.ip and not answered_ip(p)]
    # ICMP waits for its replies while the connects run: the slowest peer sets the pace once.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pinged = pool.submit(ping_many, addresses, deadline.timeout(timeout), rate, deadline.end)
        outcomes = _connect_ports(live, ports, timeout, deadline, concurrency, rate, on_open)
        replies, kind = pinged.result()
    for peer in live:
        assert peer.ip is not None
        for port in sorted(set(ports) if ports else set(DEFAULT_PORTS) | set(peer.exposed_ports)):
            out = outcomes.get((peer.ip, port))
            if out is None:
                peer.ports.append(PortResult(port, "timeout", None, detail="deadline reached"))
            else:
                peer.ports.append(PortResult(port, out.state, out.rtt_ms, detail=out.detail))
    _judge(live, replies, kind)


def _connect_ports(
    live: Sequence[Peer],
    ports: Sequence[int] | None,
    timeout: float,
    deadline: Deadline,
    concurrency: int,
    rate: float,
    on_open: Callable[[tuple[str, int], Any], None] | None = None,
) -> dict[tuple[str, int], Any]:
    pairs: list[tuple[str, int]] = []
    for peer in live:
        assert peer.ip is not None
        wanted = sorted(set(ports) if ports else set(DEFAULT_PORTS) | set(peer.exposed_ports))
        pairs += [(peer.ip, port) for port in wanted]
    return connect_many(
        pairs, deadline.timeout(timeout), concurrency, rate, deadline.end, on_open=on_open
    )


def _judge(live: Sequence[Peer], replies: dict[str, float], kind: str | None) -> None:
    """Reachable when the sweep, ICMP or any TCP port answered; else why not, in one note.

    The RTT is the sweep's when it heard the peer at the IP level; else the echo's; else the
    fastest TCP answer. ARP alone proves presence on the link, not reachability.
    """
    for peer in live:
        answered = [p for p in peer.ports if p.state in ("open", "refused")]
        if answered_ip(peer) and peer.rtt_ms is not None:
            pass  # measured by the sweep
        elif peer.ip in replies:
            peer.rtt_ms, peer.rtt_via = replies[peer.ip], "icmp"
        elif answered:
            best = min(answered, key=lambda p: p.rtt_ms or 0.0)
            peer.rtt_ms, peer.rtt_via = best.rtt_ms, f"tcp/{best.port}"
        else:
            peer.rtt_ms, peer.rtt_via = None, None
        if peer.rtt_via or answered_ip(peer):
            peer.reachable, peer.status = True, Status.OK.value
            continue
        peer.reachable = False
        if peer.ports and all(p.detail == "deadline reached" for p in peer.ports):
            peer.status = Status.TIMEOUT.value
            peer.notes.append("not checked: the global deadline came first")
        elif any(p.state == "unreachable" for p in peer.ports):
            peer.status = Status.UNREACHABLE.value
            peer.notes.append("no route to host (nothing answers ARP for it)")
        else:
            peer.status = Status.TIMEOUT.value
            probes = f"ICMP ({kind}) and " if kind else ""
            if {"arp", "neighbor"} & set(peer.seen_by):
                peer.notes.append(
                    f"answers ARP but no answer to {probes}TCP on {len(peer.ports)} ports: filtered"
                )
            else:
                peer.notes.append(f"no answer to {probes}TCP on {len(peer.ports)} ports")


# ---------------------------------------------------------------- protocols


def port_outcome(port: int, found: Any) -> dict[str, Any]:
    """What an Identification means for a PortResult: protocol, status, detail, facts.

    A port with a scheme in PORT_SCHEMES that turns out to speak something else is a
    ``protocol_mismatch`` naming it; a silent one a ``timeout``; ports without an expected
    scheme get a status only when something identified them.
    """
    from netdiag.probes.identify import model
    from netdiag.probes.identify.mismatch import matches, mismatch_detail

    expected = PORT_SCHEMES.get(port)
    out: dict[str, Any] = {
        "protocol": None,
        "status": None,
        "detail": found.detail,
        "facts": {},
        "identified": found.state,
        "identity": found.identity.to_dict() if found.identity else None,
    }
    if found.state == model.IDENTIFIED:
        identity = found.identity
        out["protocol"], out["facts"] = identity.protocol, dict(identity.facts)
        refused = identity.protocol == "mysql" and not identity.facts.get("greeting", True)
        if expected and not matches(expected, identity):
            out["status"] = Status.PROTOCOL_MISMATCH.value
            out["detail"] = mismatch_detail(expected, port, identity)
        else:
            out["status"] = (Status.REJECTED if refused else Status.OK).value
    elif found.state == model.FAILED:
        out["status"] = found.status
    elif expected:
        silent = found.state == model.SILENT
        out["status"] = (Status.TIMEOUT if silent else Status.PROTOCOL_MISMATCH).value
    return out


class Identifier:
    """Names what answers open ports, each as soon as its connect succeeded (``submit`` is the
    ``on_open`` of check_reachability_and_ports), at most ``workers`` at once, so that the
    identification of fast ports overlaps the connects still waiting on slow or filtered ones.
    Use as a context manager; ``apply(peers)`` fills every open PortResult."""

    def __init__(self, timeout: float, deadline: Deadline, workers: int) -> None:
        self.timeout, self.deadline = timeout, deadline
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self.futures: dict[tuple[str, int], Any] = {}

    def submit(self, pair: tuple[str, int], _outcome: Any = None) -> None:
        if pair in self.futures:
            return
        t = self.deadline.timeout(self.timeout)
        if t <= 0:
            return
        from netdiag.probes.identify.engine import identify

        address, port = pair
        self.futures[pair] = self.pool.submit(
            identify, address, port, scheme=PORT_SCHEMES.get(port), timeout=t
        )

    def apply(self, peers: Sequence[Peer]) -> None:
        jobs = [(peer, pr) for peer in peers for pr in peer.ports if pr.state == "open"]
        for peer, pr in jobs:
            if peer.ip is not None:
                self.submit((peer.ip, pr.port))
        for peer, pr in jobs:
            future = self.futures.get((peer.ip or "", pr.port))
            if future is None:
                continue
            for key, value in port_outcome(pr.port, future.result()).items():
                setattr(pr, key, value)
            if pr.identified == "failed":  # OPEN lists the port; why it is unnamed goes here
                peer.notes.append(f"{pr.port}/tcp is open; identifying it failed ({pr.status})")

    def __enter__(self) -> Identifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def identify_protocols(
    peers: Sequence[Peer], timeout: float, deadline: Deadline, workers: int
) -> None:
    """Name what answers every open port (netdiag.probes.identify), concurrently, at most
    ``workers`` at once; a silent port costs its banner and answer waits, not ``timeout``."""
    with Identifier(timeout, deadline, workers) as identifier:
        identifier.apply(peers)
