"""``netdiag self``: where am I — hostname, container, interfaces, routes, resolver, Docker.

It reads local state only, plus at most one DNS query to the configured resolver (and only
when that resolver is Docker's embedded DNS or on loopback, so nothing is forwarded off the
machine) and GET requests to a Docker socket when one exists. Exit 0; 2 on usage errors.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from netdiag import report
from netdiag.args import ArgumentParser, add_output_options, add_timing_options
from netdiag.deadline import Deadline
from netdiag.discovery import container as container_mod
from netdiag.discovery import local
from netdiag.dns import resolvconf
from netdiag.errors import NetdiagError

USAGE_EXIT = 2
DEADLINE = 10.0
DNS_TIMEOUT = 2.0
DOCKER_TIMEOUT = 2.0


@dataclass
class DnsCheck:
    """The one optional query: what was asked, of whom, and what came back (or why skipped)."""

    performed: bool
    query: str | None = None  # "PTR 2.0.78.10.in-addr.arpa." or "A myhost."
    server: str | None = None
    status: str | None = None  # ok, nxdomain, no_data, servfail, refused, no_reply, error
    answers: list[str] = field(default_factory=list)
    elapsed_ms: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        doc = dict(vars(self))
        if self.elapsed_ms is not None:
            doc["elapsed_ms"] = round(self.elapsed_ms, 3)
        return doc


@dataclass
class DockerView:
    """What the Docker API says about this process, or why it could not be asked."""

    host: str
    reachable: bool
    note: str | None = None
    engine: dict[str, Any] | None = None
    identified_by: str | None = None
    containers: list[dict[str, Any]] = field(default_factory=list)
    networks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class SelfReport:
    hostname: str
    container: container_mod.ContainerInfo
    snapshot: local.Snapshot
    resolver: resolvconf.ResolvConf | None
    resolver_error: str | None
    dns_check: DnsCheck
    docker: DockerView | None
    notes: list[str] = field(default_factory=list)

    def default_gateways(self) -> list[dict[str, Any]]:
        return [
            {"family": r.family, "gateway": r.gateway, "device": r.device}
            for r in self.snapshot.default_routes
        ]

    def to_dict(self) -> dict[str, Any]:
        resolver = None
        if self.resolver is not None:
            resolver = self.resolver.to_dict()
            resolver["rotate"] = self.resolver.rotate
        return {
            "hostname": self.hostname,
            "container": self.container.to_dict(),
            "interfaces": [i.to_dict() for i in self.snapshot.interfaces],
            "routes": [r.to_dict() for r in self.snapshot.routes],
            "default_gateways": self.default_gateways(),
            "ipv4_subnets": [str(n) for n in self.snapshot.ipv4_subnets()],
            "interfaces_source": self.snapshot.source,
            "resolver": resolver,
            "resolver_error": self.resolver_error,
            "dns_check": self.dns_check.to_dict(),
            "docker": self.docker.to_dict() if self.docker else None,
            "notes": self.notes + self.snapshot.notes,
        }


# --- gathering -------------------------------------------------------------------------------


def resolver_is_local(addr: str) -> bool:
    """Docker's embedded DNS or a loopback address: a query there stays on this machine."""
    if addr == resolvconf.DOCKER_EMBEDDED_DNS:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def _own_ipv4(snap: local.Snapshot) -> str | None:
    for iface in snap.interfaces:
        if iface.loopback:
            continue
        for addr in iface.addresses:
            if addr.family == "ipv4" and addr.scope == "global":
                return addr.address
    return None


def dns_check(
    conf: resolvconf.ResolvConf,
    snap: local.Snapshot,
    hostname: str,
    deadline: Deadline,
    timeout: float = DNS_TIMEOUT,
) -> DnsCheck:
    """Ask the first nameserver for our own PTR (or our hostname) when it is local."""
    addr, port = conf.nameservers[0]
    server = f"{addr}#{port}"
    if not resolver_is_local(addr):
        return DnsCheck(
            False,
            server=server,
            detail=(
                f"skipped: resolver {addr} is neither Docker's embedded DNS nor loopback, "
                "so a query could leave this machine"
            ),
        )
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.reversename

    own = _own_ipv4(snap)
    if own:
        qname, rdtype = dns.reversename.from_address(own).to_text(), "PTR"
    else:
        qname, rdtype = hostname.rstrip(".") + ".", "A"
    check = DnsCheck(True, query=f"{rdtype} {qname}", server=server)
    msg = dns.message.make_query(qname, rdtype)
    start = time.monotonic()
    try:
        reply = dns.query.udp(
            msg,
            addr,
            port=port,
            timeout=deadline.timeout(min(timeout, conf.timeout)),
            ignore_unexpected=True,
        )
    except dns.exception.Timeout:
        check.status, check.detail = "no_reply", f"no reply within {timeout:g}s"
    except (OSError, dns.exception.DNSException) as exc:
        check.status, check.detail = "error", f"{type(exc).__name__}: {exc}"
    else:
        rcode = reply.rcode()
        check.answers = [r.to_text() for rrset in reply.answer for r in rrset]
        if rcode == dns.rcode.NOERROR:
            check.status = "ok" if check.answers else "no_data"
        else:
            check.status = dns.rcode.to_text(rcode).lower()
        check.detail = f"{dns.rcode.to_text(rcode)}, {len(check.answers)} answer(s)"
    check.elapsed_ms = (time.monotonic() - start) * 1000
    return check


def docker_view(
    info: container_mod.ContainerInfo,
    snap: local.Snapshot,
    hostname: str,
    deadline: Deadline,
    timeout: float = DOCKER_TIMEOUT,
) -> DockerView:
    """Ask the API (GET only) who we are and which networks we are on; notes, never raises."""
    from netdiag.discovery import docker_api as d

    host = d.docker_host()
    client = d.connect(timeout=max(0.1, deadline.timeout(timeout)))
    if isinstance(client, d.Unavailable):
        return DockerView(host, False, client.note)
    view = DockerView(host, True)
    engine = d.engine_info(client)
    if isinstance(engine, d.Unavailable):
        return DockerView(host, False, engine.note)
    view.engine = engine.to_dict()
    nets = d.list_networks(client)
    if isinstance(nets, d.Unavailable):
        view.note = nets.note
        return view
    ident = d.own_containers(
        client, info.id, snap.addresses(), snap.macs(), hostname, deadline=deadline.end
    )
    if isinstance(ident, d.Unavailable):
        view.note = ident.note
        ident = d.Identification(None, [])
    view.identified_by = ident.method
    view.containers = [c.to_dict() for c in ident.containers]
    attached = {a.network_id: a for c in ident.containers for a in c.attachments}
    own = snap.addresses()
    for net in nets:
        if ident.containers and net.id not in attached:
            continue  # inside a container: only the networks it is attached to
        doc = net.to_dict()
        att = attached.get(net.id)
        doc["attachment"] = att.to_dict() if att else None
        doc["local_address"] = _address_in(own, net.subnets)
        view.networks.append(doc)
    if not ident.containers and view.note is None:
        view.note = "this process is not a container the daemon knows: listing all its networks"
    return view


def _address_in(addresses: list[str], subnets: list[str]) -> str | None:
    """The first of our addresses inside one of ``subnets`` (on a host: the bridge's)."""
    for subnet in subnets:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            continue
        for addr in addresses:
            if ipaddress.ip_address(addr) in net:
                return addr
    return None


def gather(
    no_dns: bool, no_docker: bool, timeout: float = DNS_TIMEOUT, deadline_s: float = DEADLINE
) -> SelfReport:
    """Everything ``self`` reports; ``timeout`` bounds the DNS query and each Docker request,
    ``deadline_s`` the whole gathering."""
    deadline = Deadline(deadline_s)
    hostname = socket.gethostname()
    info = container_mod.detect()
    snap = local.snapshot()
    conf: resolvconf.ResolvConf | None
    try:
        conf, resolver_error = resolvconf.load(), None
    except NetdiagError as exc:
        conf, resolver_error = None, str(exc)
    if conf is None:
        check = DnsCheck(False, detail="skipped: no resolver configuration")
    elif no_dns:
        check = DnsCheck(False, detail="skipped: --no-dns")
    else:
        check = dns_check(conf, snap, hostname, deadline, timeout)
    docker = None
    if not no_docker:
        docker = docker_view(info, snap, hostname, deadline, timeout)
    return SelfReport(hostname, info, snap, conf, resolver_error, check, docker)


# --- rendering -------------------------------------------------------------------------------


def _columns(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]


def _pairs(pairs: list[tuple[str, str]], indent: str = "") -> list[str]:
    width = max(len(k) for k, _ in pairs)
    return [f"{indent}{k.ljust(width)}  {v}".rstrip() for k, v in pairs]


def render_text(rep: SelfReport) -> str:
    c = rep.container
    if c.in_container:
        where = f"in a container, id {c.id} (from {c.source})"
    else:
        where = "not in a container"
        if c.markers:
            where += f" (marker file {', '.join(c.markers)} present, but no container id found)"
    gateways = [
        f"{g['gateway']} via {g['device'] or '?'}" for g in rep.default_gateways() if g["gateway"]
    ]
    out = _pairs(
        [
            ("hostname", rep.hostname),
            ("container", where),
            ("default gateway", ", ".join(gateways) or "none"),
            ("ipv4 subnets", ", ".join(str(n) for n in rep.snapshot.ipv4_subnets()) or "none"),
        ]
    )
    out += ["", f"interfaces (from {rep.snapshot.source})"]
    rows = [["NAME", "STATE", "MAC", "MTU", "ADDRESSES"]]
    for i in rep.snapshot.interfaces:
        addrs = " ".join(f"{a.address}/{a.prefixlen}" for a in i.addresses) or "-"
        rows.append([i.name, i.state, i.mac or "-", str(i.mtu or "-"), addrs])
    out += _columns(rows)
    out += ["", "routes"]
    rows = [["DESTINATION", "GATEWAY", "DEVICE", "PROTO", "METRIC"]]
    for r in rep.snapshot.routes:
        dest = "default" if r.is_default else r.destination
        if r.type != "unicast":
            dest = f"{r.type} {dest}"
        rows.append(
            [dest, r.gateway or "-", r.device or "-", r.protocol or "-", str(r.metric or "-")]
        )
    out += _columns(rows) if len(rows) > 1 else ["  (no routes)"]
    out += ["", "resolver"]
    if rep.resolver is None:
        out += [f"  {rep.resolver_error}"]
    else:
        conf = rep.resolver
        servers = ", ".join(f"{a}#{p}" if p != 53 else a for a, p in conf.nameservers)
        if conf.is_docker_embedded:
            servers += "  (Docker's embedded DNS: container names and aliases resolve here)"
        options = f"ndots:{conf.ndots} timeout:{conf.timeout:g} attempts:{conf.attempts}"
        source = conf.path + (" (nameservers from NETDIAG_RESOLVER)" if conf.overridden else "")
        out += _pairs(
            [
                ("file", source),
                ("nameservers", servers),
                ("search", " ".join(conf.search) or "-"),
                ("options", options + (" rotate" if conf.rotate else "")),
            ],
            "  ",
        )
    d = rep.dns_check
    if d.performed:
        answer = ", ".join(d.answers) or d.detail
        out += [
            f"  check        {d.query} -> {d.status}: {answer} ({d.elapsed_ms:.1f} ms, {d.server})"
        ]
    else:
        out += [f"  check        {d.detail}"]
    out += ["", "docker"]
    v = rep.docker
    if v is None:
        out += ["  skipped: --no-docker"]
    elif not v.reachable:
        out += [f"  API          not reachable: {v.note}"]
    else:
        eng = v.engine or {}
        out += [
            f"  API          {v.host}: engine {eng.get('version')} (API {eng.get('api_version')})"
        ]
        if v.containers:
            names = ", ".join(f"{c['name']} ({c['id'][:12]})" for c in v.containers)
            out += [f"  this is      {names}, matched by {v.identified_by}"]
        if v.note:
            out += [f"  note         {v.note}"]
        rows = [["NETWORK", "DRIVER", "SUBNET", "INTERNAL", "MY IPV4", "MY MAC", "NAMES"]]
        for n in v.networks:
            att = n.get("attachment") or {}
            names = att.get("dns_names")
            if names is None:
                names = att.get("aliases") or []
            rows.append(
                [
                    n["name"],
                    n["driver"],
                    ",".join(n["subnets"]) or "-",
                    "yes" if n["internal"] else "no",
                    att.get("ipv4") or n.get("local_address") or "-",
                    att.get("mac") or "-",
                    ",".join(names) or "-",
                ]
            )
        out += _columns(rows) if len(rows) > 1 else ["  (no networks)"]
    for note in rep.notes + rep.snapshot.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="netdiag self",
        usage="netdiag self [options]",
        description="Where am I: hostname, container id, interfaces, routes, resolver, Docker.",
        epilog="self reports and never judges, so it has no -q: it exits 0 whenever it printed "
        "its report.",
    )
    add_output_options(parser, quiet=False)
    add_timing_options(parser, DNS_TIMEOUT, DEADLINE, per="step (the DNS query, a Docker request)")
    parser.add_argument(
        "--no-dns", action="store_true", help="do not send the one check query to the resolver"
    )
    parser.add_argument("--no-docker", action="store_true", help="do not ask the Docker API")
    return parser


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    rep = gather(args.no_dns, args.no_docker, args.timeout, args.deadline)
    if args.json:
        report.print_document("self", True, rep.to_dict(), started)
    else:
        sys.stdout.write(render_text(rep) + "\n")
    return 0
