"""``netdiag self``: where am I — hostname, container, interfaces, routes, resolver, Docker.

The facts come from ``netdiag.discovery.whereami.gather`` (local state, at most one DNS query
to a local resolver, GET requests to the Docker API); this module renders them. With ``--mtu``
(only then) it also sends don't-fragment probes to each default gateway (netdiag.path.check)
and shows the path MTU beside each interface's MTU. Exit 0; 2 on usage errors.
"""

from __future__ import annotations

import sys
import time

from netdiag import report
from netdiag.args import ArgumentParser, add_output_options, add_timing_options
from netdiag.deadline import Deadline
from netdiag.discovery.whereami import DEADLINE, DNS_TIMEOUT, SelfOptions, SelfReport, gather

USAGE_EXIT = 2


def _columns(
    rows: list[list[str]], indent: str = "  ", narrow: tuple[int, ...] | None = None
) -> list[str]:
    """A header row and its rows, fitted to the terminal (report.table, without a rule); only
    the ``narrow`` columns wrap (default: the last: addresses, names), so names and states stay
    whole on one line."""
    from netdiag.report import table

    if not rows:
        return []
    wrap = narrow if narrow is not None else (len(rows[0]) - 1,)
    return table(rows[1:], rows[0], indent=indent, rule=False, narrow=wrap).splitlines()


def _item(key: str, value: str) -> list[str]:
    """``  key          value`` in the resolver and docker sections; a long value wraps."""
    from netdiag.report import wrap_indented

    head = f"  {key:<12} "
    return wrap_indented(value, head, " " * len(head))


def _pairs(pairs: list[tuple[str, str]], indent: str = "") -> list[str]:
    """``key  value`` lines; a long value wraps under itself."""
    from netdiag.report import wrap_indented

    width = max(len(k) for k, _ in pairs)
    lines: list[str] = []
    for k, v in pairs:
        head = f"{indent}{k.ljust(width)}  "
        lines += [line.rstrip() for line in wrap_indented(v, head, " " * len(head))]
    return lines


def render_text(rep: SelfReport) -> str:
    """The report for people; names from the Docker API are escaped like any peer's text."""
    from netdiag.report import printable

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
    measured = {m["device"]: m for m in rep.path_mtu or []}
    rows = [["NAME", "STATE", "MAC", "MTU", *(["PATH MTU"] if rep.path_mtu is not None else []),
             "ADDRESSES"]]  # fmt: skip
    for i in rep.snapshot.interfaces:
        addrs = " ".join(f"{a.address}/{a.prefixlen}" for a in i.addresses) or "-"
        pmtu = [] if rep.path_mtu is None else [_pmtu_cell(measured.get(i.name))]
        rows.append([i.name, i.state, i.mac or "-", str(i.mtu or "-"), *pmtu, addrs])
    out += _columns(rows)
    if rep.path_mtu is not None:
        out += _path_mtu_lines(rep.path_mtu)
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
        servers = ", ".join(conf.server_texts)
        if conf.is_docker_embedded:
            servers += "  (Docker's embedded DNS: container names and aliases resolve here)"
        values = {"ndots": conf.ndots, "timeout": f"{conf.timeout:g}", "attempts": conf.attempts}
        options = " ".join(
            f"{k}:{v}" + (" (default)" if k in conf.defaults else "") for k, v in values.items()
        )
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
        out += _item(
            "check", f"{d.query} -> {d.status}: {answer} ({d.elapsed_ms:.1f} ms, {d.server})"
        )
    else:
        out += _item("check", d.detail)
    out += ["", "docker"]
    v = rep.docker
    if v is None:
        out += ["  skipped: --no-docker"]
    elif not v.reachable:
        out += _item("API", f"not reachable: {v.note}")
    else:
        eng = v.engine or {}
        out += _item("API", f"{v.host}: engine {eng.get('version')} (API {eng.get('api_version')})")
        if v.containers:
            names = ", ".join(f"{c['name']} ({c['id'][:12]})" for c in v.containers)
            out += _item("this is", f"{names}, matched by {v.identified_by}")
        if v.note:
            out += _item("note", v.note)
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
                    "\n".join(names) or "-",  # one per line: a name never wraps
                ]
            )
        out += _columns(rows, narrow=(2, 6)) if len(rows) > 1 else ["  (no networks)"]
    for note in rep.notes + rep.snapshot.notes:
        out.append(f"note: {note}")
    return "\n".join(printable(line) for line in out)


def _pmtu_cell(m: dict | None) -> str:
    """The PATH MTU column: the path MTU to the interface's default gateway, '-' for none."""
    if m is None:
        return "-"
    if m["pmtu"] is None:
        return "?"
    return f"{m['pmtu']}" + (" (black hole)" if m["black_hole"] else "")


def _path_mtu_lines(measured: list[dict]) -> list[str]:
    """Under the table: per default gateway what was measured and how, a fix for a black hole."""
    from netdiag.report import terminal_width, wrap_indented

    if not measured:
        return ["  path MTU: no IPv4 default gateway, nothing measured"]
    width = terminal_width()
    lines: list[str] = []
    for m in measured:
        how = f"{m['probes']} probes, {m['method']} sockets" if m["method"] else "no probes"
        text = f"path MTU to gateway {m['address']} via {m['device']}: "
        if m["status"] == "ok":
            text += f"{m['pmtu']}, the full {m['interface']} MTU ({how})"
        else:
            text += f"{m['verdict']} ({how})"
        for paragraph in (text, *([f"fix: {m['fix']}"] if m["fix"] else [])):
            lines += wrap_indented(paragraph, "  ", "      ", width)
    return lines


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="netdiag self",
        usage="netdiag self [options]",
        description="Where am I: hostname, container id, interfaces, routes, resolver, Docker.",
        epilog="self reports and never judges, so it has no -q. "
        "Exit: 0 the report was printed, 2 usage, 3 internal error.",
    )
    add_output_options(parser, quiet=False)
    add_timing_options(parser, DNS_TIMEOUT, DEADLINE, per="step (the DNS query, a Docker request)")
    parser.add_argument(
        "--no-dns", action="store_true", help="do not send the one check query to the resolver"
    )
    parser.add_argument("--no-docker", action="store_true", help="do not ask the Docker API")
    parser.add_argument(
        "--mtu",
        action="store_true",
        help="measure the path MTU to each default gateway (don't-fragment probes; "
        "nothing is sent without it)",
    )
    return parser


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    options = SelfOptions(
        dns=not args.no_dns, docker=not args.no_docker, deadline=args.deadline, timeout=args.timeout
    )
    deadline = Deadline(args.deadline, started)
    rep = gather(options)
    if args.mtu:
        from netdiag.path.check import gateway_mtus

        rep.path_mtu = [
            {"device": device, **c.to_dict(), "verdict": c.verdict(), "fix": c.fix()}
            for device, c in gateway_mtus(rep.snapshot, deadline, args.timeout)
        ]
    if args.json:
        report.print_document("self", True, rep.to_dict(), started)
    else:
        sys.stdout.write(render_text(rep) + "\n")
    return 0
