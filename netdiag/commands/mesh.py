"""``netdiag mesh``: the reachability matrix of every agent, and the likely culprit.

``--agents tasks.netdiag`` (a DNS name; the default is tasks.$NETDIAG_SERVICE) gathers every
agent's /api/v1/local itself; ``--agents http://HOST:8099`` asks one agent for its
/api/v1/mesh. Exit 0 when every pair and every target is up, 1 when anything is down, stale or
unknown (or no agent answered), 2 on usage errors, 3 on a bug in netdiag. ``--timeout``
bounds the fetch of one agent, ``--deadline`` the whole command; ``-q`` prints only what is
not up (nothing when all is well). See docs/mesh.md.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlsplit

from netdiag.args import ArgumentParser, add_output_options, add_timing_options, int_range
from netdiag.errors import UsageError

USAGE_EXIT = 2
DEFAULT_PORT = 8099
DEFAULT_TIMEOUT = 2.0
DEFAULT_DEADLINE = 10.0


def build_parser() -> ArgumentParser:
    service = os.environ.get("NETDIAG_SERVICE") or "netdiag"
    p = ArgumentParser(
        prog="netdiag mesh",
        usage="netdiag mesh [options]",
        description="Show every agent's view of every other agent, and name the likely culprit.",
        epilog="Exit: 0 every pair and target up; 1 a pair down, stale or unknown, a target "
        "down, or no agent found; 2 usage; 3 internal error.",
    )
    p.add_argument(
        "--agents",
        metavar="NAME|URL",
        help=f"DNS name listing the agents (default tasks.{service}), or http://HOST:PORT of "
        "one agent to ask for its /api/v1/mesh",
    )
    p.add_argument(
        "--port",
        type=int_range(1, 65535),
        default=DEFAULT_PORT,
        metavar="N",
        help=f"the agents' port with a NAME (default {DEFAULT_PORT})",
    )
    add_output_options(p)
    add_timing_options(p, DEFAULT_TIMEOUT, DEFAULT_DEADLINE, per="agent asked")
    return p


def _agent_url(text: str) -> tuple[str, int] | None:
    """(host, port) of an http:// agent URL, None for a DNS name; UsageError when malformed
    (a host name DNS cannot carry too: nothing is sent)."""
    if "://" not in text:
        return None
    parts = urlsplit(text)
    if parts.scheme != "http":
        raise UsageError(f"--agents {text!r}: the agent serves plain http://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise UsageError(f"--agents {text!r}: invalid port") from None
    if not parts.hostname:
        raise UsageError(f"--agents {text!r} has no host")
    from netdiag.dns.name import check_name, is_ip_literal
    from netdiag.targets import numeric_ipv4

    host = numeric_ipv4(parts.hostname) or parts.hostname  # 127.1, as the targets read it
    if not is_ip_literal(host):
        check_name(host)
    return host, port


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    service = (os.environ.get("NETDIAG_SERVICE") or "").strip() or "netdiag"
    agents = (args.agents or f"tasks.{service}").strip()
    if not agents:
        raise UsageError("--agents is empty")
    url = _agent_url(agents)
    if url is None:
        from netdiag.dns.name import check_name

        check_name(agents)  # a name DNS cannot carry is a usage error, nothing is sent

    from netdiag.deadline import Deadline
    from netdiag.mesh.culprit import analyze
    from netdiag.mesh.gather import MESH_LIMIT, MESH_PATH, FetchError, fetch_json, gather_local
    from netdiag.mesh.matrix import build, from_payload
    from netdiag.report import print_document

    deadline = Deadline(args.deadline)
    error = None
    if url is not None:
        host, port = url
        via = f"http://{host}:{port}"
        doc = {}
        # A name is resolved as every target's is (NETDIAG_RESOLVER, NETDIAG_RESOLV_CONF),
        # never by the machine's resolver behind netdiag's back; the agent still sees it in Host.
        from netdiag.dns.lookup import LookupFailure, resolve

        try:
            address = resolve(host, timeout=deadline.timeout(args.timeout)).addresses[0]
        except LookupFailure as fail:
            error = f"{host} did not resolve: {fail.detail}"
        else:
            try:
                doc = fetch_json(
                    address, port, MESH_PATH, deadline.remaining(), MESH_LIMIT, host=host
                )
            except FetchError as fail:
                error = f"{via}{MESH_PATH}: {fail.status}: {fail.detail}"
        matrix = from_payload(doc)
    else:
        from netdiag.dns.resolvconf import load
        from netdiag.mesh.round import timed_lookup

        via = agents
        lookup = timed_lookup(agents, load(), deadline.timeout(args.timeout))
        if not lookup.ok:
            error = f"{agents} did not resolve: {lookup.detail}"
        fetched = gather_local(lookup.addresses, args.port, args.timeout, deadline)
        matrix = build(fetched, time.monotonic())
    if error is None and not matrix.agents:
        error = f"no agent found via {via}"
    findings = analyze(matrix)
    ok = error is None and matrix.ok
    if args.json:
        payload = matrix.to_payload(findings, via)
        payload["error"] = error
        print_document("mesh", ok, payload, started)
    else:
        from netdiag.mesh.render import render
        from netdiag.report import printable

        if error is not None:
            print(f"netdiag mesh: {printable(error)}", file=sys.stderr)
        text = render(matrix, findings, via, quiet=args.quiet) if matrix.agents else ""
        if text:
            print(text)
    return 0 if ok else 1
