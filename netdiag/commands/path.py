"""``netdiag path TARGET``: the hops, the path MTU and any MTU black hole on the way to a target.

TARGET is a name, an address or a URL (``mysql://mysql`` traces TCP to port 3306). Exit 0
when the target was reached and no MTU black hole was found, 1 otherwise, 2 on usage errors.
See docs/path.md.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from netdiag.args import ArgumentParser, add_output_options, add_timing_options, int_range
from netdiag.deadline import Deadline
from netdiag.errors import UsageError
from netdiag.report import print_document, printable

if TYPE_CHECKING:
    from netdiag.path.trace import PathReport

USAGE_EXIT = 2
DEFAULT_TIMEOUT = 1.0
DEFAULT_DEADLINE = 20.0
PROTO_NAMES = {"icmp": "ICMP echo", "udp": "UDP", "tcp": "TCP SYN"}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag path",
        usage="netdiag path [options] TARGET",
        description="Hops (address, PTR name, RTT, loss), path MTU and MTU black holes.",
        epilog="With CAP_NET_RAW probes are raw packets; without it, UDP and ICMP ping sockets "
        "(as tracepath) and TCP connect(): the output says which, and what that gave up. "
        "Exit: 0 reached and no MTU black hole, 1 not reached or a black hole, 2 usage, "
        "3 internal error.",
    )
    p.add_argument("target", metavar="TARGET", help="name, address or URL (mysql://db: TCP 3306)")
    p.add_argument(
        "--proto",
        choices=("icmp", "udp", "tcp"),
        help="probe protocol (default icmp; tcp for a URL or HOST:PORT target)",
    )
    p.add_argument(
        "--port",
        type=int_range(1, 65535),
        metavar="N",
        help="TCP: the service port (default: the URL's, else 80); UDP: the first port (33434)",
    )
    p.add_argument("--max-hops", type=int_range(1, 255), default=30, metavar="N")
    p.add_argument(
        "--probes", type=int_range(1, 20), default=3, metavar="N", help="probes per hop (3)"
    )
    p.add_argument("--no-dns", action="store_true", help="no PTR lookups for the hops")
    add_output_options(p)
    add_timing_options(p, DEFAULT_TIMEOUT, DEFAULT_DEADLINE, per="probe's answer")
    return p


def parse_path_target(
    text: str, proto: str | None, port: int | None
) -> tuple[str, str, int | None]:
    """(host, protocol, port) from TARGET and the flags: a URL or HOST:PORT means TCP."""
    from netdiag.targets import parse_target

    raw = text.strip()
    if not raw:
        raise UsageError("empty target")
    url_port: int | None = None
    host, scheme = raw, None
    if "://" in raw or (raw.count(":") == 1 and not raw.startswith("[")):
        target = parse_target(raw) if "://" in raw else parse_target(f"tcp://{raw}")
        host, url_port, scheme = target.host, target.port, target.scheme
    if ":" in host:
        raise UsageError(f"IPv6 targets are not supported yet: {text!r}")
    chosen = proto or ("tcp" if url_port else "icmp")
    if chosen == "tcp":
        return host, chosen, port or url_port or 80, scheme
    return host, chosen, port, scheme


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    host, proto, port, scheme = parse_path_target(args.target, args.proto, args.port)
    deadline = Deadline(args.deadline)
    from netdiag.dns.lookup import LookupFailure, resolve

    try:
        found = resolve(host, timeout=deadline.timeout(5.0), families=("A",))
    except LookupFailure as fail:
        if args.json:
            from netdiag.path.trace import unresolved

            print_document("path", False, unresolved(args.target, host, proto, port, fail), started)
        else:
            print(f"netdiag path: {printable(fail.detail)}", file=sys.stderr)
        return 1
    from netdiag.path.trace import PathOptions, trace

    options = PathOptions(
        proto=proto,
        port=port,
        max_hops=args.max_hops,
        probes=args.probes,
        timeout=args.timeout,
        names=not args.no_dns,
        scheme=scheme,
    )
    report = trace(host, found.addresses[0], options, deadline, args.target)
    if args.json:
        print_document("path", report.ok, report.to_dict(), started)
    elif not args.quiet:
        sys.stdout.write(render(report, time.monotonic() - started) + "\n")
    elif not report.ok:
        sys.stdout.write(render_failure(report) + "\n")
    return 0 if report.ok else 1


def render(report: PathReport, elapsed: float, width: int | None = None) -> str:
    """The text form: a header, the hop table, then the findings and notes, fitted to ``width``
    (default: the terminal). Names and details a peer sent are escaped."""
    from netdiag.path.trace import verdicts
    from netdiag.report import table, terminal_width

    width = terminal_width() if width is None else width
    h = report.hops
    port = f" port {report.port}" if report.proto != "icmp" and report.port else ""
    name = f"{report.host} ({report.address})" if report.host != report.address else report.address
    lines = _para(
        f"path to {name}: {PROTO_NAMES[report.proto]}{port}, {report.probes} probe(s) per hop, "
        f"{report.privilege.method} sockets",
        width,
    )
    if h.hops:
        rows = []
        for hop in h.hops:
            rtt = hop.rtt()
            cells = ["", "", ""] if rtt is None else [f"{v:.3f}" for v in rtt]
            rows.append(
                [hop.ttl, hop.address or "*", hop.names[0] if hop.names else "",
                 f"{hop.loss * 100:.0f}%", *cells]
            )  # fmt: skip
        headers = ["HOP", "ADDRESS", "NAME", "LOSS", "MIN ms", "AVG ms", "MAX ms"]
        lines.append(table(rows, headers, width, rule=False, narrow=(2,)))
    said = list(verdicts(report))
    m = report.mtu
    counts = f"probes: {h.probes_sent} for the hops"
    if m is not None:
        counts += f", {m.probes} for the path MTU ({PROTO_NAMES.get(m.protocol, m.protocol)})"
    said.append(f"{counts}; {elapsed:.2f} s")
    priv = report.privilege
    if priv.method == "unprivileged":
        said.append(f"unprivileged sockets: {priv.reason}")
        said += [f"gave up: {g}" for g in priv.gave_up]
    said += [f"note: {n}" for n in report.notes]
    if m is not None and m.pmtu is not None:
        said += [f"note: {n}" for n in m.notes]
    for line in said:
        lines += _para(line, width)
    return "\n".join(lines)


def render_failure(report: PathReport, width: int | None = None) -> str:
    """``-q``: only the findings that make the exit code 1 (not reached; a black hole and its
    fix; a filtered TCP port)."""
    from netdiag.path.trace import failures
    from netdiag.report import terminal_width

    width = terminal_width() if width is None else width
    return "\n".join(line for text in failures(report) for line in _para(text, width))


def _para(text: str, width: int) -> list[str]:
    """One finding, escaped and wrapped to ``width``; continuation lines indented by 4."""
    from netdiag.report import wrap_indented

    return wrap_indented(text, "", "    ", width)
