"""Where am I: hostname, container, interfaces, routes, resolver, one DNS check, Docker's view.

``gather(SelfOptions(...))`` -> ``SelfReport``. It reads local state, sends at most one DNS
query (only to Docker's embedded DNS or a loopback resolver, so nothing is forwarded off the
machine) and GET requests to the Docker API when it is there; it never raises for a missing
resolver file or API: each becomes a note in the report.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netdiag.deadline import Deadline
from netdiag.discovery import container as container_mod
from netdiag.discovery import docker, local
from netdiag.dns import resolvconf
from netdiag.errors import NetdiagError

DEADLINE = 10.0
DNS_TIMEOUT = 2.0
DOCKER_TIMEOUT = 3.0  # per API request: a busy local daemon, not a network step


@dataclass(frozen=True)
class SelfOptions:
    """``timeout`` bounds the DNS query and each Docker request, ``deadline`` the whole."""

    dns: bool = True
    docker: bool = True
    deadline: float = DEADLINE
    timeout: float = DNS_TIMEOUT


@dataclass
class DnsCheck:
    """The one optional query: what was asked, of whom, and what came back (or why skipped).

    ``status`` is ``netdiag.dns.lookup.reply_status``'s word (ok, no_data, nxdomain, servfail,
    refused, no_reply, ...).
    """

    performed: bool
    query: str | None = None  # "PTR 2.0.78.10.in-addr.arpa." or "A myhost."
    server: str | None = None
    status: str | None = None
    answers: list[str] = field(default_factory=list)
    elapsed_ms: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        doc = dict(vars(self))
        if self.elapsed_ms is not None:
            doc["elapsed_ms"] = round(self.elapsed_ms, 3)
        return doc


@dataclass
class DockerSection:
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
    docker: DockerSection | None
    identity: docker.Identity
    notes: list[str] = field(default_factory=list)

    def default_gateways(self) -> list[dict[str, Any]]:
        return [
            {"family": r.family, "gateway": r.gateway, "device": r.device}
            for r in self.snapshot.default_routes
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "container": self.container.to_dict(),
            "identity": self.identity.to_dict(),
            "interfaces": [i.to_dict() for i in self.snapshot.interfaces],
            "routes": [r.to_dict() for r in self.snapshot.routes],
            "default_gateways": self.default_gateways(),
            "ipv4_subnets": [str(n) for n in self.snapshot.ipv4_subnets()],
            "interfaces_source": self.snapshot.source,
            "resolver": self.resolver.to_dict() if self.resolver is not None else None,
            "resolver_error": self.resolver_error,
            "dns_check": self.dns_check.to_dict(),
            "docker": self.docker.to_dict() if self.docker else None,
            "notes": self.notes + self.snapshot.notes,
        }


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
    """Ask the first nameserver, once, for our own PTR (or our hostname) when it is local."""
    addr, port = conf.nameservers[0]
    server = resolvconf.server_text(addr, port)
    if not resolver_is_local(addr):
        return DnsCheck(
            False,
            server=server,
            detail=(
                f"skipped: resolver {addr} is neither Docker's embedded DNS nor loopback, "
                "so a query could leave this machine"
            ),
        )
    import dns.rcode
    import dns.reversename

    from netdiag.dns.lookup import ask, reply_status

    own = _own_ipv4(snap)
    if own:
        qname, rdtype = dns.reversename.from_address(own).to_text(), "PTR"
    else:
        qname, rdtype = hostname.rstrip(".") + ".", "A"
    check = DnsCheck(True, query=f"{rdtype} {qname}", server=server)
    wait = min(timeout, conf.timeout)
    once = dataclasses.replace(conf, nameservers=[(addr, port)], attempts=1, timeout=wait)
    start = time.monotonic()
    reply, _ = ask(qname, rdtype, once, min(deadline.end, start + wait))
    check.elapsed_ms = (time.monotonic() - start) * 1000
    check.status = reply_status(reply)
    if reply is None:
        check.detail = f"no reply within {wait:g}s"
        return check
    check.answers = [r.to_text() for rrset in reply.answer for r in rrset]
    check.detail = f"{dns.rcode.to_text(reply.rcode())}, {len(check.answers)} answer(s)"
    return check


def docker_section(
    view: docker.DockerView | docker.Unavailable, identity: docker.Identity, snap: local.Snapshot
) -> DockerSection:
    """The API's view of us: which container (``identify_self``) and which networks."""
    host = view.host if isinstance(view, docker.DockerView) else docker.docker_host()
    if not isinstance(view, docker.DockerView):
        return DockerSection(host, False, view.note)
    section = DockerSection(host, True, engine=view.engine.to_dict())
    section.identified_by = identity.method
    me = identity.container
    section.containers = [me.to_dict()] if me else []
    own = snap.addresses()
    for net in view.networks:
        ep = me.endpoint(net) if me else None
        if me and ep is None:
            continue  # inside a container: only the networks it is attached to
        doc = net.to_dict()
        doc["attachment"] = ep.to_dict() if ep else None
        doc["local_address"] = _address_in(own, net.subnets)
        section.networks.append(doc)
    notes = [*view.notes, *identity.notes]
    if me is None:
        notes.append("this process is not a container the daemon knows: listing all its networks")
    section.note = "; ".join(notes) or None
    return section


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


def gather(options: SelfOptions, environ: Mapping[str, str] | None = None) -> SelfReport:
    """Everything ``netdiag self`` shows, within ``options.deadline``."""
    deadline = Deadline(options.deadline)
    snap = local.snapshot()
    evidence = docker.LocalEvidence.gather(snap)
    conf: resolvconf.ResolvConf | None
    try:
        conf, resolver_error = resolvconf.load(dict(environ) if environ else None), None
    except NetdiagError as exc:
        conf, resolver_error = None, str(exc)
    if conf is None:
        check = DnsCheck(False, detail="skipped: no resolver configuration")
    elif not options.dns:
        check = DnsCheck(False, detail="skipped: --no-dns")
    else:
        check = dns_check(conf, snap, evidence.hostname, deadline, options.timeout)
    section = None
    view: docker.DockerView | docker.Unavailable | None = None
    if options.docker:
        # as in scan and doctor: the local API gets at least DOCKER_TIMEOUT per request
        wait = max(0.1, deadline.timeout(max(options.timeout, DOCKER_TIMEOUT)))
        view = docker.load(environ, timeout=wait, deadline=deadline.end)
    identity = docker.identify_self(view, evidence)
    if view is not None:
        section = docker_section(view, identity, snap)
    return SelfReport(
        evidence.hostname, evidence.container, snap, conf, resolver_error, check, section, identity
    )
