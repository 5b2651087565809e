"""Name to addresses the way an application's getaddrinfo does it, with typed failures.

/etc/hosts first, then A and AAAA through the resolv.conf nameservers, following search and
ndots. Unlike getaddrinfo it says *why* a name failed: NXDOMAIN, no data, or no reply.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netdiag.dns.resolvconf import ResolvConf, load, server_text

if TYPE_CHECKING:
    import dns.message

HOSTS_PATH = "/etc/hosts"


class LookupFailure(Exception):
    """A name did not resolve. ``kind`` is nxdomain, no_data, no_reply, servfail or refused."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass
class Lookup:
    """Addresses found for ``name`` (in answer order), which query name matched, and from where."""

    name: str
    addresses: list[str]
    qname: str
    source: str  # "literal", "hosts" or "ADDR#PORT" of the nameserver
    elapsed_ms: float
    ttl: int | None = None
    notes: list[str] = field(default_factory=list)


def _hosts_lookup(name: str, path: str = HOSTS_PATH) -> list[str]:
    wanted = name.rstrip(".").lower()
    found: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(256 * 1024).splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split("#", 1)[0].split()
        matches = len(fields) >= 2 and wanted in (f.lower() for f in fields[1:])
        if matches and fields[0] not in found:
            found.append(fields[0])
    return found


def candidates(name: str, conf: ResolvConf) -> list[str]:
    """Query names to try in order, per resolv(5): ndots decides whether search comes first."""
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{domain}." for domain in conf.search]
    if name.count(".") >= conf.ndots:
        return [f"{name}.", *searched]
    return [*searched, f"{name}."]


def _query(qname: str, rdtype: str, server: tuple[str, int], timeout: float) -> dns.message.Message:
    import dns.message
    import dns.query
    import dns.rdatatype

    msg = dns.message.make_query(qname, dns.rdatatype.from_text(rdtype))
    reply = dns.query.udp(msg, server[0], port=server[1], timeout=timeout, ignore_unexpected=True)
    if reply.flags & 0x0200:  # TC: the embedded DNS truncates big answers; ask again over TCP
        reply = dns.query.tcp(msg, server[0], port=server[1], timeout=timeout)
    return reply


def ask(
    qname: str, rdtype: str, conf: ResolvConf, deadline: float
) -> tuple[dns.message.Message | None, tuple[str, int] | None]:
    """The first reply from any nameserver, trying each ``attempts`` times; None if none replied."""
    import dns.exception

    for _ in range(conf.attempts):
        for server in conf.nameservers:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            try:
                return _query(qname, rdtype, server, min(conf.timeout, left)), server
            except (dns.exception.Timeout, OSError, dns.exception.DNSException):
                continue
    return None, None


def reply_status(reply: dns.message.Message | None) -> str:
    """One word for a reply, the vocabulary LookupFailure kinds use: ``ok`` (records),
    ``no_data`` (NOERROR, empty answer), ``nxdomain``, ``servfail``, ``refused``, another
    rcode's name in lower case (``formerr``, ``notimp``), or ``no_reply`` for None."""
    if reply is None:
        return "no_reply"
    import dns.rcode

    rcode = reply.rcode()
    if rcode == dns.rcode.NOERROR:
        return "ok" if any(len(rrset) for rrset in reply.answer) else "no_data"
    return dns.rcode.to_text(rcode).lower()


def resolve(
    name: str,
    conf: ResolvConf | None = None,
    timeout: float | None = None,
    families: tuple[str, ...] = ("A", "AAAA"),
) -> Lookup:
    """Resolve ``name`` to addresses within ``timeout`` seconds or raise LookupFailure."""
    start = time.monotonic()
    try:
        ipaddress.ip_address(name)
        return Lookup(name, [name], name, "literal", 0.0)
    except ValueError:
        pass
    hosts = _hosts_lookup(name)
    if hosts:
        return Lookup(name, hosts, name, "hosts", (time.monotonic() - start) * 1000)
    conf = conf or load()
    deadline = start + (timeout if timeout is not None else conf.timeout * conf.attempts)
    outcomes: list[str] = []
    for qname in candidates(name, conf):
        addresses: list[str] = []
        ttl: int | None = None
        answered_by: tuple[str, int] | None = None
        rcodes: list[int] = []
        for rdtype in families:
            reply, server = ask(qname, rdtype, conf, deadline)
            if reply is None:
                continue
            answered_by = answered_by or server
            rcodes.append(reply.rcode())
            for rrset in reply.answer:
                if rrset.rdtype in (1, 28):  # A, AAAA (CNAME chains are followed by the server)
                    ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
                    addresses += [r.address for r in rrset if r.address not in addresses]
        elapsed = (time.monotonic() - start) * 1000
        if addresses and answered_by:
            src = server_text(*answered_by)
            return Lookup(name, addresses, qname, src, elapsed, ttl)
        if not rcodes:
            outcomes.append("no_reply")
        elif 3 in rcodes:
            outcomes.append("nxdomain")
        elif 2 in rcodes:
            outcomes.append("servfail")
        elif 5 in rcodes:
            outcomes.append("refused")
        else:
            outcomes.append("no_data")
    servers = ", ".join(conf.server_texts)
    if "no_reply" in outcomes:
        hint = ""
        if conf.is_docker_embedded:
            hint = (
                " (Docker's embedded DNS gives no reply for unknown names on --internal networks)"
            )
        raise LookupFailure("no_reply", f"no reply from resolver {servers} for {name}{hint}")
    if all(o == "nxdomain" for o in outcomes):
        raise LookupFailure("nxdomain", f"{name}: NXDOMAIN from {servers}")
    for kind in ("servfail", "refused"):
        if kind in outcomes:
            raise LookupFailure(kind, f"{name}: {kind.upper()} from {servers}")
    raise LookupFailure(
        "no_data", f"{name}: no address records (NOERROR, empty answer) from {servers}"
    )
