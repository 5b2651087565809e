"""``netdiag agent``: one per node (a Swarm global service); probes every peer agent each round.

Serves /ping, /metrics, /api/v1/local, /api/v1/mesh and the heatmap page on one port (default
8099, UDP echo on the same number). Runs until SIGTERM/SIGINT, then exits 0; ``--once`` runs
one round (bounded by ``--deadline``), prints it (``--json``: its /api/v1/local document) and
exits 0 when every peer and target is up, else 1. ``--timeout`` bounds each step of a round.
``-q`` logs only what fails. Exit 2 on usage errors, 1 when the port cannot be bound, 3 on a
bug in netdiag. See docs/mesh.md.
"""

from __future__ import annotations

import os
import signal
import time

from netdiag.args import (
    ArgumentParser,
    add_http_options,
    add_login_options,
    int_range,
    positive_float,
    probe_flags,
)
from netdiag.errors import UsageError

USAGE_EXIT = 2
DEFAULT_PORT = 8099
DEFAULT_INTERVAL = 10.0
DEFAULT_TIMEOUT = 1.0
MIN_INTERVAL = 0.5


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise UsageError(f"--listen {text!r}: write [ADDR]:PORT")
    elif text.isdigit():
        host, port = "0.0.0.0", text
    else:
        host, _, port = text.rpartition(":")
        host = host or "0.0.0.0"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: port must be 1-65535")
    from netdiag.dns.name import is_ip_literal

    if not is_ip_literal(host):
        raise UsageError(f"--listen {text!r}: the address must be an IP address")
    return host, int(port)


def build_parser() -> ArgumentParser:
    service = os.environ.get("NETDIAG_SERVICE") or "netdiag"
    p = ArgumentParser(
        prog="netdiag agent",
        usage="netdiag agent [options]",
        description="Probe every peer agent found at tasks.<service> each round; serve "
        "/ping, /metrics, /api/v1/local, /api/v1/mesh and a heatmap page.",
        epilog="Exit: 0 stopped by SIGTERM/SIGINT (--once: every peer and target up); 1 the "
        "port cannot be bound (--once: a peer or target not up); 2 usage; 3 internal error.",
    )
    p.add_argument(
        "--listen",
        default=f"0.0.0.0:{DEFAULT_PORT}",
        metavar="ADDR:PORT",
        help=f"HTTP port, and the UDP echo on the same number (default 0.0.0.0:{DEFAULT_PORT})",
    )
    p.add_argument(
        "--peers",
        metavar="NAME",
        help=f"DNS name listing every agent (default tasks.$NETDIAG_SERVICE: tasks.{service})",
    )
    p.add_argument(
        "--service",
        metavar="NAME",
        help=f"service name whose lookup is also timed (default $NETDIAG_SERVICE: {service})",
    )
    p.add_argument("--node", metavar="NAME", help="this node's name (default $NETDIAG_NODE)")
    p.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL,
        metavar="S",
        help=f"seconds between rounds, +-10%% jitter (default {DEFAULT_INTERVAL:g})",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds per step: connect, /ping answer, UDP echoes (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--udp-packets",
        type=int_range(0, 50),
        default=5,
        metavar="N",
        help="UDP echo packets per peer and round, 0 to 50 (default 5)",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="URL",
        help="also probe URL every round (repeatable), e.g. mysql://mysql",
    )
    p.add_argument(
        "--deadline",
        type=positive_float,
        metavar="S",
        help="with --once: seconds for the whole round (default 0.9 x --interval); a running "
        "agent's rounds are bounded by --interval",
    )
    p.add_argument("--once", action="store_true", help="run one round, print it and exit")
    p.add_argument(
        "--json",
        action="store_true",
        help="with --once: print the round as one JSON document (the /api/v1/local one, "
        "docs/schemas/agent.json)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="log only what fails (peers going down, lookups failing); with --once print "
        "only what is not up",
    )
    add_login_options(p)
    add_http_options(p, "http targets")
    return p


def _settings(args):
    from netdiag.mesh.agent import AgentSettings
    from netdiag.mesh.identity import node_name
    from netdiag.targets import expand_target

    if not args.once and (args.json or args.deadline is not None):
        flag = "--json" if args.json else "--deadline"
        raise UsageError(
            f"{flag} goes with --once (a running agent serves its round at /api/v1/local; "
            "its rounds are bounded by --interval)"
        )
    if args.interval < MIN_INTERVAL:
        raise UsageError(f"--interval must be at least {MIN_INTERVAL:g} s")
    host, port = parse_listen(args.listen)
    env_service = (os.environ.get("NETDIAG_SERVICE") or "").strip()
    peers = args.peers or f"tasks.{env_service or 'netdiag'}"
    service = args.service or env_service or None
    if service is None and peers.startswith("tasks."):
        service = peers[len("tasks.") :]
    from netdiag.dns.name import check_name

    for name in (peers, service):
        if name:
            check_name(name)  # a name DNS cannot carry is a usage error, not a failing round
    targets = [expand_target(t) for t in args.target]
    if any(t.scheme == "dns" for t in targets):
        raise UsageError("dns:// targets are resolve-only: not a --target of the agent")
    # The targets' settings come from the one settings path, as for netdiag probe.
    from netdiag.probes import settings as probe_settings

    flags = probe_flags(args)
    probe_settings.check_flags(flags)
    schemes = {t.scheme for t in targets}
    if args.expect_status and not schemes & {"http", "https"}:
        raise UsageError("--expect-status applies to http:// and https:// --targets only")
    options = [probe_settings.options_for(t, flags, args.timeout) for t in targets]
    return AgentSettings(
        listen_host=host,
        listen_port=port,
        node=args.node or node_name(),
        peers_name=peers,
        service_name=service,
        interval=args.interval,
        timeout=args.timeout,
        udp_packets=args.udp_packets,
        targets=targets,
        probe_options=options,
        quiet=args.quiet,
        log=not args.once,  # --once prints its round; the change log is a running agent's
    )


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    from netdiag.mesh.agent import Agent
    from netdiag.mesh.identity import container_id

    agent = Agent(settings, container_id())
    if args.once:
        from netdiag.deadline import Deadline

        agent.start(rounds=False)  # this agent answers its own /ping like a running one
        try:
            report, _ = agent.run_round(Deadline(args.deadline) if args.deadline else None)
        finally:
            agent.close()
        if args.json:
            from netdiag.report import print_document

            age = time.monotonic() - report.finished
            print_document("agent", report.ok, report.to_payload(age), started)
        else:
            from netdiag.mesh.render import render_local

            text = render_local(report, quiet=args.quiet)
            if text:
                print(text)
        return 0 if report.ok else 1

    def stop(signum: int, frame: object) -> None:
        agent.stop()

    # As PID 1 in a container a signal without a handler is ignored: docker stop would wait.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.start()
    try:
        agent.wait()
    finally:
        agent.close()
    return 0
