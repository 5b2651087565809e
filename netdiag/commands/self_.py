"""``netdiag self``: where am I — hostname, container, interfaces, routes, resolver, Docker.

The facts come from ``netdiag.discovery.whereami.gather`` (local state, at most one DNS query
to a local resolver, GET requests to the Docker API); this module renders them. Exit 0; 2 on
usage errors.
"""

from __future__ import annotations

import sys

from netdiag import report
from netdiag.args import ArgumentParser
from netdiag.discovery.whereami import SelfOptions, SelfReport, gather

USAGE_EXIT = 2


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
        servers = ", ".join(conf.server_texts)
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


def main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="netdiag self",
        description="Where am I: hostname, container id, interfaces, routes, resolver, Docker.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--no-dns", action="store_true", help="do not send the one check query to the resolver"
    )
    parser.add_argument("--no-docker", action="store_true", help="do not ask the Docker API")
    args = parser.parse_args(argv)
    rep = gather(SelfOptions(dns=not args.no_dns, docker=not args.no_docker))
    if args.json:
        report.print_json(rep.to_dict())
    else:
        sys.stdout.write(render_text(rep) + "\n")
    return 0
