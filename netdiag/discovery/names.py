"""DNS facts about peers: PTR names through the resolver, and forward checks of each name.

Docker's embedded DNS answers a PTR for a container address with ``name.network.``; each
name a peer should answer to is then resolved the way an app would, and flagged when it does
not lead back to the peer or when it leads to several addresses (an alias held twice).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from dataclasses import dataclass, field

from netdiag.dns.lookup import LookupFailure, ask, reply_status, resolve
from netdiag.dns.resolvconf import ResolvConf


@dataclass
class NameCheck:
    """Does ``name`` resolve from here to the peer? ``addresses`` is what it resolved to."""

    name: str
    addresses: list[str] = field(default_factory=list)
    resolves_here: bool = False
    shared: bool = False  # resolves to more than one address: an alias held by several
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def quick_conf(conf: ResolvConf, timeout: float) -> ResolvConf:
    """The same resolver with one attempt of at most ``timeout`` s: unknown names cost little."""
    return dataclasses.replace(conf, timeout=min(conf.timeout, timeout), attempts=1)


def ptr(address: str, conf: ResolvConf, timeout: float) -> tuple[list[str], str | None]:
    """PTR names of ``address`` (without the trailing dot) and, when there are none, why
    (``lookup.reply_status``'s word: no_reply, nxdomain, no_data, servfail, ...)."""
    import dns.reversename

    qname = dns.reversename.from_address(address).to_text()
    reply, _ = ask(qname, "PTR", quick_conf(conf, timeout), time.monotonic() + timeout)
    status = reply_status(reply)
    if reply is None or status not in ("ok", "no_data"):
        return [], status
    names: list[str] = []
    for rrset in reply.answer:
        if rrset.rdtype == 12 and rrset.rdclass == 1:  # a PTR of another class has no .target
            names += [r.target.to_text().rstrip(".") for r in rrset]
    return names, None if names else "no_data"


def short_names(ptr_name: str) -> list[str]:
    """Names a PTR answer implies: ``db.todo-app`` -> [``db.todo-app``, ``db``]."""
    name = ptr_name.rstrip(".")
    first = name.split(".", 1)[0]
    return [name] if first == name else [name, first]


def check_name(name: str, address: str, conf: ResolvConf, timeout: float) -> NameCheck:
    """Resolve ``name`` as an app would and compare with ``address``."""
    check = NameCheck(name)
    try:
        found = resolve(name, quick_conf(conf, timeout), timeout=timeout, families=("A",))
    except LookupFailure as fail:
        check.error = fail.kind
        return check
    check.addresses = sorted(set(found.addresses), key=ipaddress.ip_address)
    check.resolves_here = address in check.addresses
    check.shared = len(check.addresses) > 1
    return check
