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
from netdiag.discovery.scan import ScanOptions, ScanReport, check_subnet, parse_ports, run_scan
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
        print(render(report))
    elif not report.ok:
        print(render(report, only_failed=True))
    return 0 if report.ok else 1


# ---------------------------------------------------------------- rendering


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


PEER_HEADERS = ["IP", "NAMES", "CONTAINER", "MAC", "STATUS", "RTT", "OPEN", "NOTES"]
# Names, container, RTT and ports wrap; notes go under the row on a narrow terminal; the
# address, MAC and status keep their width.
PEER_LAYOUT: dict = {"fold": 7, "narrow": (1, 2, 5, 6)}


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
                out.append(table([_peer_row(p) for p in failing], PEER_HEADERS, **PEER_LAYOUT))
            continue
        header = f"network {printable(ns.name)}  {', '.join(ns.subnets)}"
        header += f"  [{'+'.join(ns.source) or 'none'}]"
        if ns.internal:
            header += "  internal"
        out.append(header)
        rows = [_peer_row(p) for p in ns.peers]
        if rows:
            out.append(table(rows, PEER_HEADERS, **PEER_LAYOUT))
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
