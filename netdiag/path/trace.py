"""``trace(host, options)``: hops, PTR names and the path MTU to one target, as one report.

It picks raw or unprivileged probes (and says what the choice gave up), traces the hops,
then searches the path MTU while the hops' PTR names are looked up through the resolver in
force (resolv.conf, as ``dig -x`` asks), and compares the interface MTU with the result.
"""

from __future__ import annotations

import ipaddress
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from netdiag.deadline import Deadline
from netdiag.path import hops as hops_mod
from netdiag.path import mtu as mtu_mod
from netdiag.path import probers
from netdiag.path.hops import HopsResult
from netdiag.path.mtu import MtuResult

PTR_TIMEOUT = 1.0
PTR_WORKERS = 8


@dataclass
class PathOptions:
    """What ``netdiag path`` was asked for (the CLI's flags)."""

    proto: str = "icmp"
    port: int | None = None
    max_hops: int = 30
    probes: int = 3
    timeout: float = 1.0
    names: bool = True
    mtu: bool = True
    scheme: str | None = None  # the target URL's scheme: mysql connections end politely


@dataclass
class Privilege:
    """Raw or unprivileged sockets, why, and what the unprivileged way gives up."""

    method: str  # raw or unprivileged
    reason: str | None  # why not raw
    gave_up: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "reason": self.reason, "gave_up": self.gave_up}


@dataclass
class PathReport:
    """Everything ``netdiag path`` found; ``ok`` is "reached, and no MTU black hole"."""

    target: str
    host: str
    address: str
    proto: str  # the protocol the hops were traced with
    port: int | None
    privilege: Privilege
    hops: HopsResult
    mtu: MtuResult | None
    notes: list[str] = field(default_factory=list)
    probes: int = 3  # per hop, as asked

    @property
    def ok(self) -> bool:
        return self.hops.reached and not (self.mtu is not None and self.mtu.black_hole)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "host": self.host,
            "address": self.address,
            "proto": self.proto,
            "port": self.port if self.proto != "icmp" else None,
            "privilege": self.privilege.to_dict(),
            "reached": self.hops.reached,
            "ended": self.hops.ended,
            "ended_detail": self.hops.detail,
            "tcp_state": self.hops.tcp_state,
            "hops": [h.to_dict() for h in self.hops.hops],
            "hop_probes": self.hops.probes_sent,
            "mtu": self.mtu.to_dict() if self.mtu else None,
            "verdicts": verdicts(self),
            "notes": self.notes,
        }


def choose_privilege(proto: str) -> tuple[Privilege, str, list[str]]:
    """(privilege, protocol to trace with, notes): raw when allowed, else what works."""
    why = probers.raw_unavailable()
    notes: list[str] = []
    if why is None:
        return Privilege("raw", None), proto, notes
    priv = Privilege("unprivileged", why)
    used = proto
    if proto == "icmp" and not probers.ping_socket_allowed():
        used = "udp"
        priv.gave_up.append(
            "ICMP echo (needs CAP_NET_RAW or this gid in net.ipv4.ping_group_range): traced "
            "with UDP instead"
        )
    if used == "tcp":
        priv.gave_up.append(
            "TCP probes are full connect()s: the service sees connections opened and reset "
            "(raw sockets send half-open SYNs)"
        )
        priv.gave_up.append("path MTU over TCP (SYN probes of a chosen size need raw sockets)")
    return priv, used, notes


def make_prober(
    priv: Privilege,
    proto: str,
    dst: str,
    port: int | None,
    src: str,
    options: PathOptions | None = None,
) -> probers.Prober:
    """Raw or unprivileged probes; unprivileged TCP to MySQL ends its connections politely."""
    if priv.method == "raw":
        return probers.RawProber(proto, dst, port, src)
    finisher = None
    if proto == "tcp" and options is not None and (options.scheme == "mysql" or port == 3306):
        finisher = probers.mysql_finisher(options.timeout)
    return probers.UnprivilegedProber(proto, dst, port, src, finisher)


def egress(dst: str) -> tuple[str, str | None, int | None, int | None]:
    """(source address, interface name, interface MTU, kernel's cached path MTU) for ``dst``."""
    from netdiag.discovery import local

    src, cached = probers.source_for(dst)
    snap = local.snapshot()
    for iface in snap.interfaces:
        if any(a.address == src for a in iface.addresses):
            return src, iface.name, iface.mtu, cached
    return src, None, cached, cached


def mtu_protocols(priv: Privilege, proto: str) -> list[str]:
    """Which probes can measure the path MTU, best first (echo replies are not rate-limited)."""
    echo = priv.method == "raw" or probers.ping_socket_allowed()
    if proto == "tcp":
        return ["tcp"] if priv.method == "raw" else (["icmp", "udp"] if echo else ["udp"])
    if proto == "udp":
        return ["icmp", "udp"] if echo else ["udp"]
    return ["icmp"]


def trace(
    host: str, address: str, options: PathOptions, deadline: Deadline, target: str
) -> PathReport:
    """Trace the path to ``address`` (``host`` as the user named it) within ``deadline``."""
    if ipaddress.ip_address(address).version != 4:
        raise ValueError("IPv6 paths are not supported yet")
    priv, proto, notes = choose_privilege(options.proto)
    port = options.port
    try:
        src, iface, iface_mtu, cached = egress(address)
    except OSError as exc:  # no route from here: nothing can be sent
        ended = HopsResult([], False, "local_error", f"{exc.strerror or exc} (no route from here)")
        return PathReport(
            target, host, address, proto, port, priv, ended, None, notes, options.probes
        )
    with make_prober(priv, proto, address, port, src, options) as prober:
        window = 1 if proto == "tcp" and priv.method != "raw" else hops_mod.WINDOW
        found = hops_mod.discover(
            prober, options.max_hops, options.probes, options.timeout, deadline.end, window
        )
    if proto == "tcp" and priv.method != "raw" and found.reached and found.tcp_state == "open":
        last = found.hops[-1]
        if options.scheme == "mysql" or port == 3306:
            notes.append(
                f"{last.received} connection(s) to the service ended with a dummy MySQL login "
                "(as netdiag probe does, so the server's host cache does not count them)"
            )
        else:
            notes.append(f"{last.received} TCP connection(s) to the service were opened and reset")
    report = PathReport(
        target, host, address, proto, port, priv, found, None, notes, options.probes
    )
    names: dict[str, Future[list[str]]] = {}
    pool = ThreadPoolExecutor(max_workers=PTR_WORKERS) if options.names else None
    try:
        if pool is not None:
            names = _lookup_names(pool, found, deadline, options.timeout)
        if options.mtu and found.ended != "local_error":
            report.mtu = _measure_mtu(
                priv, proto, address, port, src, (iface, iface_mtu), found, options, deadline
            )
            report.mtu.kernel_pmtu = cached
        for hop in found.hops:
            if hop.address in names:
                try:
                    hop.names = names[hop.address].result(timeout=max(0.0, deadline.remaining()))
                except Exception:  # a lookup that failed or ran out of time: no name
                    hop.names = []
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    return report


def _lookup_names(
    pool: ThreadPoolExecutor, found: HopsResult, deadline: Deadline, timeout: float
) -> dict[str, Future[list[str]]]:
    from netdiag.discovery.names import ptr
    from netdiag.dns.resolvconf import load

    conf = load()

    def one(address: str) -> list[str]:
        names, _ = ptr(address, conf, deadline.timeout(min(timeout, PTR_TIMEOUT)))
        return names

    wanted = {h.address for h in found.hops if h.address}
    return {a: pool.submit(one, a) for a in sorted(wanted)}


def _measure_mtu(
    priv: Privilege,
    proto: str,
    address: str,
    port: int | None,
    src: str,
    interface: tuple[str | None, int | None],
    found: HopsResult,
    options: PathOptions,
    deadline: Deadline,
) -> MtuResult:
    iface, iface_mtu = interface
    top = min(iface_mtu or 1500, mtu_mod.MAX_PACKET)
    hop_addresses = {h.ttl: h.address for h in found.hops if h.address}
    # the slowest answer seen on the path bounds how long a vanished probe is waited for
    expect = max((max(h.rtts_ms) for h in found.hops if h.rtts_ms), default=None)
    result = MtuResult("none", iface, iface_mtu)
    tried: list[str] = []
    for candidate in mtu_protocols(priv, proto):
        if candidate == proto and not found.reached:
            tried.append(f"{candidate}: the target did not answer the hop probes")
            continue
        result = MtuResult(candidate, iface, iface_mtu)
        with make_prober(priv, candidate, address, port, src) as prober:
            mtu_mod.search(
                prober,
                result,
                top,
                options.timeout,
                deadline.end,
                hop_addresses,
                found.distance,
                reference_passed=candidate == proto and found.reached,
                expect_ms=expect,
            )
        if result.pmtu is not None:
            break
        if time.monotonic() >= deadline.end:
            tried.append(f"{candidate}: {'; '.join(result.notes) or 'the deadline was reached'}")
            break
        tried.append(f"{candidate}: {'; '.join(result.notes) or 'no answer'}")
    if result.pmtu is None:
        if proto == "tcp" and priv.method != "raw":
            tried.append("tcp: SYN probes of a chosen size need raw sockets")
        result.notes = [f"not measured ({'; '.join(tried) or 'no probes answered'})"]
    return result


# ---------------------------------------------------------------- verdicts


def docker_fix(pmtu: int, hop: str | None) -> str:
    """The fix for a black hole at ``pmtu`` bytes, in Docker's terms."""
    where = f" at {hop}" if hop else " on the path"
    return (
        f"set the network's MTU to {pmtu} (docker network create -o "
        f'com.docker.network.driver.mtu={pmtu} ...; for the default bridge "mtu": {pmtu} in '
        f"/etc/docker/daemon.json), or let ICMP type 3 code 4 (fragmentation needed) through{where}"
    )


def verdicts(report: PathReport) -> list[str]:
    """One line per finding: reached or not, the TCP port state, the MTU story with a fix."""
    lines: list[str] = []
    h = report.hops
    if h.reached:
        lines.append(f"reached {report.address} in {h.distance} hop(s)")
    elif h.ended == "unreachable":
        lines.append(f"not reached: {h.detail} from {h.hops[-1].address if h.hops else '?'}")
    elif h.ended == "gap":
        hint = "a firewall drops the probes?"
        if report.proto != "tcp":
            hint += " try --proto tcp --port N"
        lines.append(f"not reached: {h.detail} ({hint})")
    elif h.ended == "local_error":
        lines.append(f"not reached: {h.detail}")
    else:
        lines.append(f"not reached ({h.ended}{': ' + h.detail if h.detail else ''})")
    if report.proto == "tcp":
        lines.append(f"port {report.port or 80}/tcp {h.tcp_state}")
    m = report.mtu
    if m is None:
        return lines
    hop = _hop_text(report, m.lowered_hop, m.lowered_at)
    iface = f"{m.interface} MTU {m.interface_mtu}" if m.interface else "the interface MTU"
    if m.pmtu is None:
        lines.append(f"path MTU unknown: {'; '.join(m.notes) or 'no answers'}")
    elif m.black_hole:
        lines.append(
            f"MTU black hole: packets above {m.pmtu} bytes with don't-fragment set vanish"
            f'{" after " + hop if hop else ""} and no ICMP "fragmentation needed" comes back; '
            f"{iface} lets TCP send up to {m.interface_mtu} bytes, so big transfers stall"
        )
        lines.append(f"fix: {docker_fix(m.pmtu, hop)}")
    elif m.status == "lower":
        where = f"lowered at {hop}, which sends" if hop else "lowered on the path, which sends"
        lines.append(
            f'path MTU {m.pmtu} < {iface}: {where} ICMP "fragmentation needed" (TCP adapts; '
            f"UDP senders must keep datagrams <= {m.pmtu})"
        )
    else:
        lines.append(f"path MTU {m.pmtu} = {iface}")
    return lines


def failures(report: PathReport) -> list[str]:
    """The findings behind exit code 1: not reached (and a filtered port), a black hole and
    its fix; [] when the report is ok."""
    if report.ok:
        return []
    said = verdicts(report)
    out = [v for v in said if v.startswith(("not reached", "MTU black hole", "fix:"))]
    out += [v for v in said if report.proto == "tcp" and v.endswith("/tcp filtered")]
    return out


def unresolved(target: str, host: str, proto: str, port: int | None, fail: Any) -> dict[str, Any]:
    """The JSON payload when TARGET's name did not resolve: nothing traced, the same keys."""
    detail = getattr(fail, "detail", str(fail))
    return {
        "target": target,
        "host": host,
        "address": None,
        "proto": proto,
        "port": port if proto != "icmp" else None,
        "privilege": None,
        "reached": False,
        "ended": "dns_failed",
        "ended_detail": detail,
        "tcp_state": None,
        "hops": [],
        "hop_probes": 0,
        "mtu": None,
        "verdicts": [f"not reached: {detail}"],
        "notes": [],
    }


def _hop_text(report: PathReport, ttl: int | None, address: str | None) -> str | None:
    if ttl is None and address is None:
        return None
    name = None
    for hop in report.hops.hops:
        if hop.ttl == ttl or (address and hop.address == address):
            ttl, address = hop.ttl, hop.address
            name = hop.names[0] if hop.names else None
            break
    text = f"hop {ttl} " if ttl else ""
    text += address or "?"
    return f"{text} ({name})" if name else text
