"""netdiag scan: every peer on the container networks, its names, reachability and services.

Discovery merges the Docker API (when its socket answers) with a sweep of each attached
subnet (ARP with NET_RAW, else TCP connects and ICMP ping sockets). Exit 0 when every
discovered running peer is reachable, 1 otherwise, 2 on usage errors. See docs/scan.md.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from netdiag.args import ArgumentParser, add_output_options, add_timing_options, positive_float
from netdiag.deadline import Deadline
from netdiag.discovery import attached as local
from netdiag.discovery import peers as peerchecks
from netdiag.discovery.peers import Peer
from netdiag.discovery.sweep import SWEEP_WAIT, SweepPlan, SweepResult, capabilities, sweep
from netdiag.errors import NetdiagError, UsageError
from netdiag.report import diag, print_document

USAGE_EXIT = 2
MAX_PREFIX_WITHOUT_FORCE = 16


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
        }


@dataclass
class ScanReport:
    networks: list[NetworkScan]
    docker: dict[str, Any]
    capabilities: dict[str, Any]
    elapsed_ms: float = 0.0
    notes: list[str] = field(default_factory=list)

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
        return all(p.reachable is not False for n in self.networks for p in n.peers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": {**self.counts(), "elapsed_ms": round(self.elapsed_ms, 1)},
            "docker": self.docker,
            "capabilities": self.capabilities,
            "networks": [n.to_dict() for n in self.networks],
            "notes": self.notes,
        }


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag scan",
        usage="netdiag scan [options]",
        description="Who is on the container networks, what they answer to, are they reachable.",
    )
    p.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="NAME",
        help="Docker network to scan (repeatable; needs the Docker API)",
    )
    p.add_argument(
        "--subnet",
        action="append",
        default=[],
        metavar="CIDR",
        help="sweep this range (repeatable); the only way to scan non-container ranges",
    )
    p.add_argument(
        "--force", action="store_true", help="allow ranges larger than /16 and public ranges"
    )
    p.add_argument("--ports", metavar="LIST", help="ports to test, e.g. 80,443,3306 or 8000-8010")
    add_output_options(p)
    add_timing_options(p, 1.0, 30.0, per="step (connect, DNS query, probe)")
    p.add_argument("--no-docker", action="store_true", help="do not use the Docker API")
    p.add_argument(
        "--rate",
        type=positive_float,
        default=2000.0,
        metavar="N",
        help="packets (ARP, ICMP, SYN) per second at most; default 2000",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=256,
        metavar="N",
        help="TCP connects in flight at most (also bounded by ulimit -n); default 256",
    )
    return p


def parse_ports(text: str) -> list[int]:
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
        if last - first > 4096:
            raise UsageError(f"port range too large in {text!r} (4096 at most)")
        ports.update(range(first, last + 1))
    if not ports:
        raise UsageError("--ports is empty")
    return sorted(ports)


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
    if net.prefixlen < 8:
        raise UsageError(f"{net}: ranges larger than /8 are never swept")
    return str(net)


class Progress:
    """Progress lines on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            diag(f"netdiag scan: {message}")

    def sweep(self, subnet: str, done: int, total: int, alive: int) -> None:
        self(f"{subnet}: swept {done}/{total}, {alive} alive")


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.network and args.no_docker:
        raise UsageError("--network needs the Docker API: drop --no-docker, or use --subnet")
    subnets = [check_subnet(s, args.force) for s in args.subnet]
    ports = parse_ports(args.ports) if args.ports else None
    deadline = Deadline(args.deadline)
    progress = Progress(sys.stderr.isatty() and not args.quiet)
    report = scan(args, subnets, ports, deadline, progress)
    if args.json:
        payload = report.to_dict()
        payload.pop("ok", None)  # the envelope's
        print_document("scan", report.ok, payload, started)
    elif not args.quiet:
        print(render(report))
    elif not report.ok:
        print(render(report, only_failed=True))
    return 0 if report.ok else 1


def named_networks(names: list[str], docker_nets: list[Any]) -> list[Any]:
    """The Docker networks named by --network (a name or an id prefix); a name that matches
    none is a usage error that lists the networks there are (and the closest one)."""
    found = [n for n in docker_nets if n.name in names or n.id.startswith(tuple(names))]
    for name in names:
        if not any(n.name == name or n.id.startswith(name) for n in found):
            import difflib

            known = sorted(n.name for n in docker_nets)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(
                f"no Docker network named {name!r}: {hint}(networks: {', '.join(known) or 'none'})"
            )
    return found


def network_of_subnet(subnet: str, networks: list[Any]) -> Any | None:
    """The network whose subnet holds ``subnet`` (equal to it, or a range inside it)."""
    wanted = ipaddress.ip_network(subnet, strict=False)
    for net in networks:
        for text in net.subnets:
            try:
                own = ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue
            if wanted.version == own.version and wanted.subnet_of(own):  # type: ignore[arg-type]
                return net
    return None


# ---------------------------------------------------------------- discovery


def docker_view(args: Any, timeout: float) -> tuple[Any, dict[str, Any]]:
    if args.no_docker:
        return None, {"used": False, "note": "--no-docker given"}
    from netdiag.discovery.docker_view import DockerUnavailable, load_view

    try:
        view = load_view(timeout)
    except DockerUnavailable as exc:
        return None, {"used": False, "note": f"Docker API not used: {exc}; sweeping instead"}
    return view, {"used": True, "note": None, "api_version": view.api_version}


def scan(
    args: Any, subnets: list[str], ports: list[int] | None, deadline: Deadline, progress: Progress
) -> ScanReport:
    start = time.monotonic()
    links = local.attached()
    in_container, own_id = local.own_container()
    own_ips = {link.address for link in links}
    own_macs = {link.mac for link in links if link.mac}
    view, docker_info = docker_view(args, min(3.0, max(args.timeout * 2, 1.0)))
    if docker_info.get("note") and not args.no_docker and not args.json:
        diag(f"netdiag scan: {docker_info['note']}")
    networks: list[NetworkScan] = []
    notes: list[str] = []
    docker_nets = view.networks if view else []

    def from_docker(net: Any) -> NetworkScan:
        ns = NetworkScan(net.name, net.subnets, ["docker"], net.internal, net.driver, net.gateways)
        for m in net.members:
            if m.ip and (m.ip in own_ips or (m.mac and m.mac in own_macs)):
                ns.self_addresses.append(m.ip or "")
                continue
            ns.peers.append(
                Peer(
                    ip=m.ip if m.state == "running" else None,
                    container=m.container,
                    container_id=m.container_id,
                    state=m.state,
                    mac=m.mac,
                    names=list(m.names),
                    seen_by=["docker"],
                    exposed_ports=m.exposed_ports,
                )
            )
        return ns

    if args.network and view is None:
        raise NetdiagError(
            f"--network needs the Docker API ({docker_info['note']}); "
            "name the range with --subnet instead"
        )
    named = named_networks(args.network, docker_nets) if args.network else None
    if subnets:
        for subnet in subnets:
            if named is not None:
                match = network_of_subnet(subnet, named)
                if match is None:
                    theirs = ", ".join(s for n in named for s in n.subnets) or "none"
                    raise UsageError(
                        f"--subnet {subnet} is not in --network {', '.join(args.network)} "
                        f"(its subnets: {theirs})"
                    )
            else:
                exact = [n for n in docker_nets if subnet in n.subnets]
                match = exact[0] if exact else None
            ns = from_docker(match) if match else NetworkScan(subnet, [subnet], [])
            ns.subnets = [subnet]
            networks.append(ns)
    elif named is not None:
        networks = [from_docker(n) for n in named]
        if not any(n.self_addresses for n in networks):
            notes.append(
                "not attached to the network: names are checked with this host's resolver "
                "(container names resolve only inside their networks)"
            )
    elif view is not None:
        mine = [
            n
            for n in docker_nets
            if any(m.ip in own_ips or (m.mac and m.mac in own_macs) for m in n.members)
        ]
        if not mine and own_id:
            # Addresses did not match (odd setups): our container id does.
            mine = [
                n
                for n in docker_nets
                if any(own_id.startswith(m.container_id) for m in n.members if m.container_id)
            ]
        if mine:
            notes.append("inside a container: scanning the networks it is attached to")
        else:
            notes.append(
                "on a Docker host: scanning the networks the daemon lists; names are checked "
                "with this host's resolver (container names resolve only inside their networks)"
            )
        networks = [from_docker(n) for n in (mine or docker_nets)]
    elif in_container:
        for link in links:
            networks.append(NetworkScan(link.network, [link.network], [], None, None))
        notes.append("inside a container without the Docker API: sweeping attached subnets")
    else:
        raise NetdiagError(
            "no Docker API and not inside a container: name the range to sweep with --subnet "
            "(netdiag never sweeps a host's own networks by default)"
        )

    sweep_all(networks, subnets, links, own_ips, args, deadline, progress)
    caps = capabilities(
        next((s.interface for n in networks for s in n.sweeps if s.interface), None)
    )
    everyone = [p for n in networks for p in n.peers]
    from netdiag.dns.resolvconf import load

    conf = load()
    workers = max(1, min(32, args.concurrency))
    progress(f"checking names, reachability and ports of {len(everyone)} peers")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:  # DNS waits overlap the connects
        names = pool.submit(peerchecks.check_dns, everyone, conf, args.timeout, deadline, workers)
        peerchecks.check_reachability_and_ports(
            everyone, ports, args.timeout, deadline, args.concurrency, args.rate
        )
        names.result()
    progress("identifying protocols on open ports")
    peerchecks.identify_protocols(everyone, max(args.timeout, 2.0), deadline, workers)
    for n in networks:
        n.peers.sort(key=peerchecks.ip_key)
    if deadline.expired():
        notes.append(f"global deadline of {deadline.seconds:g}s reached: results are partial")
    return ScanReport(
        networks,
        docker_info,
        {"raw_l2": caps.raw_l2, "icmp": caps.icmp, "notes": caps.reasons},
        (time.monotonic() - start) * 1000,
        notes,
    )


def sweep_all(
    networks: list[NetworkScan],
    explicit: list[str],
    links: list[local.Attached],
    own_ips: set[str],
    args: Any,
    deadline: Deadline,
    progress: Progress,
) -> None:
    """Sweep each network's subnets we can reach, merging what answers into its peers."""
    caps_cache: dict[str | None, Any] = {}
    for ns in networks:
        for subnet in ns.subnets:
            named = subnet in explicit
            link = local.for_subnet(subnet, links)
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
                rate=args.rate,
                concurrency=args.concurrency,
                budget=min(deadline.remaining(), max(0.2, deadline.remaining() * 0.4)),
                wait=min(SWEEP_WAIT, args.timeout),
                stop_on_gap=not named,
                skip=frozenset(own_ips),
            )
            progress(f"sweeping {subnet} on {iface or 'routed path'}")
            result = sweep(plan, caps_cache[iface], progress.sweep)
            ns.sweeps.append(result)
            if "sweep" not in ns.source:
                ns.source.append("sweep")
            by_ip = {p.ip: p for p in ns.peers if p.ip}
            gateways = set(ns.gateways)
            for ip, alive in result.alive.items():
                peer = by_ip.get(ip)
                if peer is None:
                    peer = Peer(ip=ip, mac=alive.mac)
                    if ip in gateways:
                        peer.notes.append("network gateway (the Docker host's bridge)")
                    ns.peers.append(peer)
                    by_ip[ip] = peer
                peer.mac = peer.mac or alive.mac
                peer.seen_by += [v for v in alive.via if v not in peer.seen_by]
            for peer in ns.peers:
                if (
                    peer.running
                    and peer.ip
                    and ip_in(peer.ip, subnet)
                    and peer.ip not in result.alive
                ):
                    swept_it = result.complete or (
                        result.last_swept and ip_le(peer.ip, result.last_swept)
                    )
                    if swept_it and "docker" in peer.seen_by:
                        peer.notes.append("listed by Docker but did not answer the sweep")
            if not result.complete:
                ns.notes.append(
                    f"{subnet}: swept {result.swept} of {result.total} addresses"
                    f" (up to {result.last_swept}); " + "; ".join(result.notes)
                )


def ip_in(ip: str, subnet: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(subnet, strict=False)


def ip_le(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) <= ipaddress.ip_address(b)


# ---------------------------------------------------------------- rendering


PEER_HEADERS = ["IP", "NAMES", "CONTAINER", "MAC", "STATUS", "RTT", "OPEN", "NOTES"]


def _peer_row(p: Peer) -> list[str]:
    """One peer as a table row; several names, ports or notes are lines of one cell, each
    escaped on its own (a name or a version from a peer cannot add lines of its own)."""
    from netdiag.report import printable

    open_ports = [printable(_port_text(pr)) for pr in p.ports if pr.state == "open"]
    rtt = f"{p.rtt_ms:.2f} ms ({p.rtt_via})" if p.rtt_ms is not None else "-"
    status = p.status if p.running else f"stopped ({p.state})"
    return [
        p.ip or "-",
        "\n".join(printable(n) for n in p.names) or "(no DNS name)",
        printable(p.container or "-"),
        p.mac or "-",
        status,
        rtt,
        "\n".join(open_ports) or "-",
        "\n".join(printable(n) for n in p.notes),
    ]


def _port_text(pr: peerchecks.PortResult) -> str:
    """``3306/mysql 5.5.5-10.11.19-MariaDB``, ``80/http 200``, ``3306/tcp (protocol_mismatch)``."""
    if pr.protocol:
        facts = pr.facts or {}
        label = f"{pr.port}/{pr.protocol}"
        if pr.status == "rejected":
            return f"{label} rejected: {pr.detail.split(':', 1)[0]}"
        extra = facts.get("server_version") or facts.get("version") or facts.get("status_code")
        return f"{label} {extra}" if extra else label
    if pr.status and pr.status != "ok":
        return f"{pr.port}/tcp ({pr.status})"
    return f"{pr.port}/tcp"


def render(report: ScanReport, only_failed: bool = False) -> str:
    """The report as text fitted to the terminal; ``only_failed`` (-q) keeps unreachable peers
    and the summary line only."""
    from netdiag.report import printable, table, wrap_indented

    out: list[str] = []
    for ns in report.networks:
        if only_failed:
            failing = [p for p in ns.peers if p.reachable is False]
            if failing:
                out.append(f"network {printable(ns.name)}")
                out.append(table([_peer_row(p) for p in failing], PEER_HEADERS, fold=7))
            continue
        header = f"network {printable(ns.name)}  {', '.join(ns.subnets)}"
        header += f"  [{'+'.join(ns.source) or 'none'}]"
        if ns.internal:
            header += "  internal"
        out.append(header)
        rows = [_peer_row(p) for p in ns.peers]
        if rows:
            out.append(table(rows, PEER_HEADERS, fold=7))
        else:
            out.append("  (no peers found)")
        for sw in ns.sweeps:
            out.append(
                f"  sweep {sw.subnet} via {'+'.join(sw.methods)} on {sw.interface or '-'}: "
                f"{len(sw.alive)} alive of {sw.swept} swept in {sw.elapsed_ms / 1000:.2f}s"
                + ("" if sw.complete else f" (stopped at {sw.last_swept})")
            )
        for note in ns.notes:
            out += wrap_indented(note, "  note: ", "        ")
        if ns.self_addresses:
            out.append(f"  this host/container: {', '.join(ns.self_addresses)}")
        out.append("")
    c = report.counts()
    for note in [] if only_failed else report.notes:
        out += wrap_indented(note, "note: ", "      ")
    summary = (
        f"{c['networks']} network(s), {c['peers']} peer(s): {c['reachable']} reachable, "
        f"{c['unreachable']} unreachable"
    )
    if c["stopped"]:
        summary += f", {c['stopped']} stopped"
    if c["dns_flags"]:
        summary += f", {c['dns_flags']} DNS issue(s)"
    summary += f" in {report.elapsed_ms / 1000:.2f}s"
    out.append(summary)
    return "\n".join(out)
