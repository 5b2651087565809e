"""The scan: which networks, who is on them (Docker API + sweeps), names, reachability, ports.

``run_scan(ScanOptions(...), progress)`` -> ``ScanReport``. Network selection: the ranges
named with ``subnets``; else the Docker networks named in ``networks``; else, with the API, the
networks of the container we are (``identify_self``), or every network the daemon lists when
we are not a container it knows; else, without it, the subnets attached here when inside a
container. Nothing else is ever swept. Every step is bounded by ``options.deadline``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from netdiag.deadline import Deadline
from netdiag.discovery import attached as links_mod
from netdiag.discovery import docker, local
from netdiag.discovery import peers as peerchecks
from netdiag.discovery.capabilities import Capabilities, capabilities
from netdiag.discovery.peers import Peer
from netdiag.discovery.sweep import MAX_ADDRESSES, SWEEP_WAIT, SweepPlan, SweepResult, sweep
from netdiag.errors import NetdiagError, UsageError

MAX_PREFIX_WITHOUT_FORCE = 16
MAX_PORT_RANGE = 4096
DOCKER_SHARE = 0.3  # of the deadline, at most, for reading the Docker API
DOCKER_REQUEST_TIMEOUT = 3.0  # per API request (within DOCKER_SHARE)
DOCKER_MAX_WAIT = 10.0


@dataclass(frozen=True)
class ScanOptions:
    """What to scan and within which bounds (validated: see ``check_subnet``, ``parse_ports``)."""

    networks: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    ports: tuple[int, ...] | None = None
    timeout: float = 1.0
    deadline: float = 30.0
    use_docker: bool = True
    rate: float = 2000.0
    concurrency: int = 256

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")


class Progress(Protocol):
    """Where progress goes (a terminal's stderr, or nowhere)."""

    def __call__(self, message: str) -> None: ...

    def sweep(self, subnet: str, done: int, total: int, alive: int) -> None: ...


class NoProgress:
    def __call__(self, message: str) -> None:
        pass

    def sweep(self, subnet: str, done: int, total: int, alive: int) -> None:
        pass


@dataclass
class NetworkScan:
    """One network (Docker network or named subnet) and what was found on it."""

    name: str
    subnets: list[str]
    source: list[str]  # "docker", "sweep"
    internal: bool | None = None
    driver: str | None = None
    gateways: list[str] = field(default_factory=list)
    self_addresses: list[str] = field(default_factory=list)
    sweeps: list[SweepResult] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dns_checked: bool = True  # False: a Docker network seen from outside (names from the API)

    @property
    def from_outside(self) -> bool:
        """A Docker network we have no endpoint on: its names resolve only inside it."""
        return "docker" in self.source and not self.self_addresses

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subnets": self.subnets,
            "source": self.source,
            "internal": self.internal,
            "driver": self.driver,
            "gateways": self.gateways,
            "self_addresses": self.self_addresses,
            "sweeps": [s.to_dict() for s in self.sweeps],
            "peers": [p.to_dict() for p in self.peers],
            "notes": self.notes,
            "dns_checked": self.dns_checked,
        }


@dataclass
class ScanReport:
    """Everything one scan found; ``ok`` when every discovered running peer is reachable."""

    networks: list[NetworkScan]
    docker: dict[str, Any]
    capabilities: dict[str, Any]
    elapsed_ms: float = 0.0
    notes: list[str] = field(default_factory=list)
    identity: docker.Identity | None = None
    partial: bool = False  # the deadline (or a sweep's share of it) cut the scan short

    def counts(self) -> dict[str, int]:
        peers = [p for n in self.networks for p in n.peers]
        return {
            "networks": len(self.networks),
            "peers": len(peers),
            "reachable": sum(1 for p in peers if p.reachable),
            "unreachable": sum(1 for p in peers if p.reachable is False),
            "stopped": sum(1 for p in peers if not p.running),
            "dns_flags": sum(
                1 for p in peers for c in p.dns if c.error or not c.resolves_here or c.shared
            ),
        }

    @property
    def ok(self) -> bool:
        """Every discovered running peer is reachable, and the scan was not cut short."""
        return not self.partial and all(
            p.reachable is not False for n in self.networks for p in n.peers
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": {**self.counts(), "elapsed_ms": round(self.elapsed_ms, 1)},
            "partial": self.partial,
            "docker": self.docker,
            "identity": self.identity.to_dict() if self.identity else None,
            "capabilities": self.capabilities,
            "networks": [n.to_dict() for n in self.networks],
            "notes": self.notes,
        }


# ---------------------------------------------------------------- validating input


def parse_ports(text: str) -> tuple[int, ...]:
    """``80,443,8000-8010`` -> sorted ports; UsageError when malformed or too wide."""
    ports: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise UsageError(f"invalid port list {text!r}") from None
        if not 0 < first <= last < 65536:
            raise UsageError(f"port out of range in {text!r}")
        if last - first > MAX_PORT_RANGE:
            raise UsageError(f"port range too large in {text!r} ({MAX_PORT_RANGE} at most)")
        ports.update(range(first, last + 1))
    if not ports:
        raise UsageError("--ports is empty")
    return tuple(sorted(ports))


def check_subnet(text: str, force: bool) -> str:
    """Validate a --subnet against the safety rules; returns the normalised CIDR."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(f"invalid subnet {text!r}") from None
    if net.version != 4:
        raise UsageError(f"{text}: only IPv4 ranges can be swept")
    if net.prefixlen < MAX_PREFIX_WITHOUT_FORCE and not force:
        raise UsageError(f"{net} is larger than /16: add --force to sweep it")
    if not (net.is_private or net.is_loopback or net.is_link_local) and not force:
        raise UsageError(f"{net} is a public range: add --force to sweep it")
    if net.num_addresses > MAX_ADDRESSES:
        largest = 32 - MAX_ADDRESSES.bit_length() + 1
        raise UsageError(
            f"{net}: ranges larger than /{largest} ({MAX_ADDRESSES:,} addresses) are never "
            "swept, --force or not"
        )
    return str(net)


# ---------------------------------------------------------------- the scan


def read_docker(
    options: ScanOptions, deadline: Deadline, environ: Mapping[str, str] | None
) -> tuple[docker.DockerView | None, dict[str, Any]]:
    """The API's view (or None) and the JSON ``docker`` section saying whether it was used."""
    if not options.use_docker:
        return None, {"used": False, "note": "--no-docker given"}
    budget = min(deadline.remaining() * DOCKER_SHARE, DOCKER_MAX_WAIT)
    # The API is local: a busy daemon can take a second per request where the network under
    # test takes a millisecond, so its requests do not get the per-step --timeout.
    view = docker.load(
        environ,
        timeout=max(DOCKER_REQUEST_TIMEOUT, options.timeout),
        deadline=min(deadline.end, time.monotonic() + budget),
    )
    if isinstance(view, docker.Unavailable):
        return None, {"used": False, "note": f"Docker API not used: {view.note}; sweeping instead"}
    return view, {"used": True, "note": None, "api_version": view.engine.api_version}


def run_scan(
    options: ScanOptions,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> ScanReport:
    """Select the networks, discover their peers, check each; never sweeps beyond the rules."""
    progress = progress or NoProgress()
    deadline = Deadline(options.deadline)
    start = time.monotonic()
    snap = local.snapshot()
    links = links_mod.attached(snap)
    evidence = docker.LocalEvidence.gather(snap)
    view, docker_info = read_docker(options, deadline, environ)
    identity = docker.identify_self(view, evidence)
    networks, notes = select_networks(options, view, identity, links, docker_info)
    for ns in networks:
        if not ns.gateways:
            ns.gateways = route_gateways(snap, ns.subnets)
    caps = sweep_all(networks, options, links, deadline, progress)
    for ns in networks:
        if ns.from_outside:
            # The embedded DNS answers container names only inside the network; the host's
            # resolver would forward every one of them upstream. The API has the names.
            ns.dns_checked = False
            ns.notes.append(
                "names are the Docker API's, not checked: they resolve only inside the network "
                f"(docker run --rm --network {ns.name} netdiag scan checks them)"
            )
    named = [p for n in networks for p in n.peers if n.dns_checked]
    unnamed = [p for n in networks for p in n.peers if not n.dns_checked]
    check_peers(named, unnamed, options, deadline, progress)
    for n in networks:
        n.peers.sort(key=peerchecks.ip_key)
    partial = deadline.expired()
    if partial:
        notes.append(f"global deadline of {deadline.seconds:g}s reached: results are partial")
    short = [sw.subnet for n in networks for sw in n.sweeps if sw.out_of_time]
    if short and not partial:
        partial = True
        notes.append(
            f"the sweep of {', '.join(short)} used up its share of the deadline: results are "
            "partial"
        )
    return ScanReport(
        networks,
        docker_info,
        {"raw_l2": caps.raw_l2, "icmp": caps.icmp, "notes": caps.reasons},
        (time.monotonic() - start) * 1000,
        notes,
        identity,
        partial,
    )


def select_networks(
    options: ScanOptions,
    view: docker.DockerView | None,
    identity: docker.Identity,
    links: list[links_mod.Attached],
    docker_info: Mapping[str, Any],
) -> tuple[list[NetworkScan], list[str]]:
    """The networks to scan, with the API's members filled in, and notes on the choice."""
    own_ips = {link.address for link in links}
    own_macs = {link.mac for link in links if link.mac}
    docker_nets = [n for n in view.networks if n.sweepable] if view else []
    notes: list[str] = []

    def from_docker(net: docker.Network) -> NetworkScan:
        assert view is not None
        ns = NetworkScan(
            net.name, net.ipv4_subnets, ["docker"], net.internal, net.driver, net.ipv4_gateways
        )
        for c, ep in view.members(net):
            ours = c is identity.container or ep.ipv4 in own_ips or (ep.mac and ep.mac in own_macs)
            if ours:
                if ep.ipv4:
                    ns.self_addresses.append(ep.ipv4)
                continue
            ns.peers.append(
                Peer(
                    ip=ep.ipv4 if c.running else None,
                    container=c.name,
                    container_id=c.short_id,
                    state=c.state or "unknown",
                    mac=ep.mac,
                    names=c.names_on(net),
                    seen_by=["docker"],
                    exposed_ports=list(c.exposed_ports),
                )
            )
        return ns

    named = named_networks(options.networks, view, docker_info) if options.networks else None
    if options.subnets:
        networks = []
        for subnet in options.subnets:
            if named is not None:
                match = network_holding(subnet, named)
                if match is None:
                    theirs = ", ".join(s for n in named for s in n.ipv4_subnets) or "none"
                    raise UsageError(
                        f"--subnet {subnet} is not in --network {', '.join(options.networks)} "
                        f"(its subnets: {theirs})"
                    )
            else:
                exact = [n for n in docker_nets if subnet in n.ipv4_subnets]
                match = exact[0] if exact else None
            ns = from_docker(match) if match else NetworkScan(subnet, [subnet], [])
            ns.subnets = [subnet]
            networks.append(ns)
        return networks, notes
    if named is not None:
        return [from_docker(n) for n in named], notes
    if view is not None:
        mine = [n for n in docker_nets if identity.container and identity.container.endpoint(n)]
        if identity.container is not None:
            notes.append("inside a container: scanning the networks it is attached to")
            if not mine:
                notes.append(
                    f"container {identity.container.name} is on no network with addresses "
                    f"(network mode {identity.container.network_mode or 'none'}): nothing to scan"
                )
            return [from_docker(n) for n in mine], notes
        notes.append("on a Docker host: scanning the networks the daemon lists")
        return [from_docker(n) for n in docker_nets], notes
    if identity.in_container:
        networks = [NetworkScan(link.network, [link.network], [], None, None) for link in links]
        notes.append("inside a container without the Docker API: sweeping attached subnets")
        return networks, notes
    raise NetdiagError(
        "no Docker API and not inside a container: name the range to sweep with --subnet "
        "(netdiag never sweeps a host's own networks by default)"
    )


def named_networks(
    names: tuple[str, ...], view: docker.DockerView | None, docker_info: Mapping[str, Any]
) -> list[docker.Network]:
    """The Docker networks --network names (a name or an id prefix). Without the API that is a
    failure (exit 1); a name no network has is a usage error naming the closest network."""
    if view is None:
        raise NetdiagError(
            f"--network needs the Docker API ({docker_info['note']}); "
            "name the range with --subnet instead"
        )
    found: list[docker.Network] = []
    for name in names:
        net = view.network(name)
        if net is None:
            import difflib

            known = sorted(n.name for n in view.networks)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(
                f"no Docker network named {name!r}: {hint}(networks: {', '.join(known) or 'none'})"
            )
        if net not in found:
            found.append(net)
    return found


def network_holding(subnet: str, networks: list[docker.Network]) -> docker.Network | None:
    """The network one of whose IPv4 subnets holds ``subnet`` (equal to it, or inside it)."""
    wanted = ipaddress.ip_network(subnet, strict=False)
    for net in networks:
        for text in net.ipv4_subnets:
            try:
                own = ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue
            if wanted.version == own.version and wanted.subnet_of(own):  # type: ignore[arg-type]
                return net
    return None


def sweep_all(
    networks: list[NetworkScan],
    options: ScanOptions,
    links: list[links_mod.Attached],
    deadline: Deadline,
    progress: Progress,
) -> Capabilities:
    """Sweep each network's subnets we can reach, merging what answers into its peers.

    Returns the capabilities of the first interface swept (or of none).
    """
    caps_cache: dict[str | None, Capabilities] = {}
    own_ips = frozenset(link.address for link in links)
    for ns in networks:
        for subnet in ns.subnets:
            named = subnet in options.subnets
            link = links_mod.for_subnet(subnet, links)
            if link is None and not named:
                ns.notes.append(f"{subnet}: not attached here, not swept (Docker API view only)")
                continue
            iface = link.interface if link else None
            if iface not in caps_cache:
                caps_cache[iface] = capabilities(iface)
            plan = SweepPlan(
                subnet,
                iface,
                link.address if link else None,
                rate=options.rate,
                concurrency=options.concurrency,
                budget=min(deadline.remaining(), max(0.2, deadline.remaining() * 0.4)),
                wait=min(SWEEP_WAIT, options.timeout),
                stop_on_gap=not named,
                skip=own_ips,
            )
            progress(f"sweeping {subnet} on {iface or 'routed path'}")
            result = sweep(plan, caps_cache[iface], progress.sweep)
            merge_sweep(ns, subnet, result)
    first = next((s.interface for n in networks for s in n.sweeps if s.interface), None)
    if first in caps_cache:
        return caps_cache[first]
    return capabilities(first)


def merge_sweep(ns: NetworkScan, subnet: str, result: SweepResult) -> None:
    """Add what the sweep found to ``ns``: new peers, MACs, how each was seen and its RTT."""
    ns.sweeps.append(result)
    if "sweep" not in ns.source:
        ns.source.append("sweep")
    by_ip = {p.ip: p for p in ns.peers if p.ip}
    gateways = set(ns.gateways)
    for ip, alive in result.alive.items():
        peer = by_ip.get(ip)
        if peer is None:
            peer = Peer(ip=ip, mac=alive.mac, gateway=ip in gateways)
            if peer.gateway and "docker" in ns.source:
                peer.notes.append("the network's gateway (the Docker host's bridge)")
            ns.peers.append(peer)
            by_ip[ip] = peer
        peer.mac = peer.mac or alive.mac
        peer.seen_by += [v for v in alive.via if v not in peer.seen_by]
        if alive.rtt_ms is not None and peer.rtt_ms is None:
            peer.rtt_ms, peer.rtt_via = alive.rtt_ms, alive.rtt_via
    for peer in ns.peers:
        if peer.running and peer.ip and ip_in(peer.ip, subnet) and peer.ip not in result.alive:
            swept_it = result.complete or (result.last_swept and ip_le(peer.ip, result.last_swept))
            if swept_it and "docker" in peer.seen_by:
                peer.notes.append("listed by Docker but did not answer the sweep")


def route_gateways(snap: local.Snapshot, subnets: list[str]) -> list[str]:
    """Next hops of our routes that lie inside ``subnets``: that network's gateways."""
    found: list[str] = []
    for route in snap.routes:
        gw = route.gateway
        if gw and ":" not in gw and gw not in found and any(ip_in(gw, s) for s in subnets):
            found.append(gw)
    return found


def check_peers(
    named: list[Peer],
    unnamed: list[Peer],
    options: ScanOptions,
    deadline: Deadline,
    progress: Progress,
) -> None:
    """Names (PTR and forward) of ``named`` only; reachability, ports and the protocol on each
    open port of all."""
    from netdiag.dns.resolvconf import load

    everyone = named + unnamed
    conf = load() if named else None
    workers = max(1, min(32, options.concurrency))
    progress(f"checking names, reachability and ports of {len(everyone)} peers")
    # DNS waits and the identification of open ports overlap the connects
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        peerchecks.Identifier(max(options.timeout, 2.0), deadline, workers) as identifier,
    ):
        names = (
            pool.submit(peerchecks.check_dns, named, conf, options.timeout, deadline, workers)
            if conf
            else None
        )
        peerchecks.check_reachability_and_ports(
            everyone,
            options.ports,
            options.timeout,
            deadline,
            options.concurrency,
            options.rate,
            on_open=identifier.submit,
        )
        if names is not None:
            names.result()
        progress("identifying protocols on open ports")
        identifier.apply(everyone)


def ip_in(ip: str, subnet: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(subnet, strict=False)


def ip_le(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) <= ipaddress.ip_address(b)


def seen_names(deadline: float, timeout: float, conf: Any) -> list[str]:
    """The names scan would give the live addresses on the subnets attached here (PTR, e.g.
    ``db.todo-app`` and ``db``), within ``deadline`` (time.monotonic()). Only for a process
    inside a container: a host's own networks are never swept. Gateways are not asked about."""
    from netdiag.discovery import names as dnsnames

    snap = local.snapshot()
    links = links_mod.attached(snap)
    own = frozenset(link.address for link in links)
    found: list[str] = []
    for link in links:
        left = deadline - time.monotonic()
        if left <= 0.1:
            break
        plan = SweepPlan(
            link.network,
            link.interface,
            link.address,
            budget=left / 2,
            wait=min(SWEEP_WAIT, timeout, 0.2),
            stop_on_gap=True,
            skip=own | frozenset(route_gateways(snap, [link.network])),
        )
        alive = list(sweep(plan).alive)

        def ptr(ip: str) -> list[str]:
            t = min(timeout, deadline - time.monotonic())
            return dnsnames.ptr(ip, conf, t)[0] if t > 0 else []

        with ThreadPoolExecutor(max_workers=8) as pool:
            for names in pool.map(ptr, alive):
                for full in names:
                    found += [n for n in dnsnames.short_names(full) if n not in found]
    return found
