"""netdiag scan: every peer on the container networks, its names, reachability and services.

The work is ``netdiag.discovery.scan.run_scan``: the Docker API (when its socket answers)
merged with a sweep of each attached subnet. This module parses the options, shows progress
on a terminal, and renders the report. Exit 0 when every discovered running peer is
reachable, 1 otherwise, 2 on usage errors. See docs/scan.md.
"""

from __future__ import annotations

import sys
import time

from netdiag.args import ArgumentParser, add_output_options, add_timing_options, positive_float
from netdiag.discovery import peers as peerchecks
from netdiag.discovery.peers import Peer
from netdiag.discovery.scan import (
    NetworkScan,
    ScanOptions,
    ScanReport,
    check_subnet,
    parse_ports,
    run_scan,
)
from netdiag.discovery.sweep import SweepResult
from netdiag.errors import UsageError
from netdiag.report import diag, print_document

USAGE_EXIT = 2


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag scan",
        usage="netdiag scan [options]",
        description="Who is on the container networks, what they answer to, are they reachable.",
        epilog="Exit: 0 every running peer reachable, 1 one is not (or nothing could be "
        "scanned), 2 usage (also a range the safety rules refuse), 3 internal error.",
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
    p.add_argument(
        "--wide",
        action="store_true",
        help="one wide table (names, MAC and notes as columns), not fitted to the terminal",
    )
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


class Progress:
    """Progress lines on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            diag(f"netdiag scan: {message}")

    def sweep(self, subnet: str, done: int, total: int, alive: int) -> None:
        self(f"{subnet}: swept {done}/{total}, {alive} alive")


def options_from(args: object) -> ScanOptions:
    """The typed options the core takes, validated (UsageError on a bad value)."""
    a = vars(args)
    if a["network"] and a["no_docker"]:
        raise UsageError("--network needs the Docker API: drop --no-docker, or use --subnet")
    return ScanOptions(
        networks=tuple(a["network"]),
        subnets=tuple(check_subnet(s, a["force"]) for s in a["subnet"]),
        ports=parse_ports(a["ports"]) if a["ports"] else None,
        timeout=a["timeout"],
        deadline=a["deadline"],
        use_docker=not a["no_docker"],
        rate=a["rate"],
        concurrency=a["concurrency"],
    )


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    options = options_from(args)
    report = run_scan(options, Progress(sys.stderr.isatty() and not args.quiet))
    note = report.docker.get("note")
    if note and options.use_docker and not args.json and not args.quiet:
        diag(f"netdiag scan: {note}")
    if args.json:
        payload = report.to_dict()
        payload.pop("ok", None)  # the envelope's
        print_document("scan", report.ok, payload, started)
    elif not args.quiet:
        print(render(report, wide=args.wide))
    elif not report.ok:
        print(render(report, only_failed=True))
    return 0 if report.ok else 1


# ---------------------------------------------------------------- rendering


def _port_text(pr: peerchecks.PortResult) -> str:
    """``3306 MariaDB 10.11.19``, ``80 HTTP/1.0 SimpleHTTP/0.6``, ``5432 open (silent)``,
    ``3306 HTTP/1.0 SimpleHTTP/0.6 (not mysql)``."""
    identity = pr.identity or {}
    if identity:
        from netdiag.probes.identify.mismatch import EXPECTED_NAMES
        from netdiag.probes.identify.model import Identity

        known = {k: identity.get(k) for k in ("protocol", "name", "product", "version")}
        text = f"{pr.port} {Identity(**known).short}"  # type: ignore[arg-type]
        if pr.status == "protocol_mismatch":
            want = peerchecks.PORT_SCHEMES.get(pr.port, "")
            text += f" (not {EXPECTED_NAMES.get(want, want)})"
        elif pr.status == "rejected":
            text += " (refused us)"
        return text
    if pr.identified == "silent":
        return f"{pr.port} open (silent)"
    if pr.identified in ("unrecognised", "closed"):
        return f"{pr.port} open ({pr.identified})"
    # Only open ports are listed here: a probe's failure on one is a note of the peer, never a
    # "3306/tcp (timeout)" that reads as a port that is not open (issue 13 item 10).
    return f"{pr.port} open"


def _header(ns: NetworkScan) -> str:
    """``network NAME  SUBNETS  [docker+sweep]  internal``; a range scanned by name once."""
    from netdiag.report import printable

    subnets = ", ".join(ns.subnets)
    header = f"network {printable(ns.name)}"
    if subnets and subnets != ns.name:
        header += f"  {subnets}"
    header += f"  [{'+'.join(ns.source) or 'none'}]"
    return header + ("  internal" if ns.internal else "")


def _sweep_line(sw: SweepResult) -> str:
    """One line per sweep; where and why it stopped early is said here, once."""
    line = (
        f"  sweep {sw.subnet} via {'+'.join(sw.methods)} on {sw.interface or '-'}: "
        f"{len(sw.alive)} alive of {sw.swept} swept in {sw.elapsed_ms / 1000:.2f}s"
    )
    if not sw.complete:
        line += f", stopped at {sw.last_swept}: " + "; ".join(sw.notes)
    return line


WIDE_HEADERS = ["IP", "NAMES", "CONTAINER", "MAC", "STATUS", "RTT", "OPEN", "NOTES"]
HEADERS = ["IP", "CONTAINER", "STATUS", "RTT", "OPEN", "NAMES AND NOTES"]
# Container, RTT and ports wrap; names and notes go under the row on a terminal too narrow for
# them (PRODUCT.md: 100 columns when not a terminal); address and status keep their width.
LAYOUT: dict = {"fold": 5, "narrow": (1, 3, 4)}


def _peer_cells(p: Peer) -> dict[str, str]:
    """One peer's cells; several names, ports or notes are lines of one cell, each escaped on
    its own (a name or a version from a peer cannot add lines of its own)."""
    from netdiag.report import printable

    open_ports = [printable(_port_text(pr)) for pr in p.ports if pr.state == "open"]
    return {
        "ip": p.ip or "-",
        "names": "\n".join(printable(n) for n in p.names) or ("(gateway)" if p.gateway else ""),
        "container": printable(p.container or "-"),
        "mac": p.mac or "-",
        "status": p.status if p.running else f"stopped ({p.state})",
        "rtt": f"{p.rtt_ms:.2f} ms ({p.rtt_via})" if p.rtt_ms is not None else "-",
        "open": "\n".join(open_ports) or "-",
        "notes": "\n".join(printable(n) for n in p.notes),
    }


def peer_table(peers: list[Peer], wide: bool = False) -> str:
    """The peers as one table: fitted to the terminal (names and notes folded under the row
    when it is narrow), or with ``wide`` today's eight columns, never wrapped."""
    from netdiag.report import table

    cells = [_peer_cells(p) for p in peers]
    if wide:
        keys = ("ip", "names", "container", "mac", "status", "rtt", "open", "notes")
        rows = [[c[k] for k in keys] for c in cells]
        for row in rows:
            row[1] = row[1] or "(no DNS name)"
        return table(rows, WIDE_HEADERS, width=1_000_000)
    rows = []
    for c in cells:
        under = ([f"names: {', '.join(c['names'].splitlines())}"] if c["names"] else []) + [
            f"note: {n}" for n in c["notes"].splitlines()
        ]
        rows.append([c["ip"], c["container"], c["status"], c["rtt"], c["open"], "\n".join(under)])
    return table(rows, HEADERS, **LAYOUT)


def render(report: ScanReport, only_failed: bool = False, wide: bool = False) -> str:
    """The report as text fitted to the terminal (``wide``: today's wide table); ``only_failed``
    (-q) keeps unreachable peers and the summary line only."""
    from netdiag.report import printable, wrap_indented

    out: list[str] = []
    for ns in report.networks:
        if only_failed:
            failing = [p for p in ns.peers if p.reachable is False]
            if failing:
                out.append(f"network {printable(ns.name)}")
                out.append(peer_table(failing, wide))
            continue
        out.append(_header(ns))
        if ns.peers:
            out.append(peer_table(ns.peers, wide))
        else:
            out.append("  (no peers found)")
        for sw in ns.sweeps:
            out += wrap_indented(_sweep_line(sw).strip(), "  ", "    ")
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
