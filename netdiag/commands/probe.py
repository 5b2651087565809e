"""``netdiag probe TARGET...``: is the service behind each target really what it should be?

Exit 0 when every result is ``ok``, 1 otherwise, 2 on usage errors. See docs/probes.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from netdiag.args import (
    ArgumentParser,
    add_http_options,
    add_login_options,
    add_output_options,
    add_timing_options,
    probe_flags,
)
from netdiag.deadline import Deadline
from netdiag.errors import UsageError
from netdiag.report import print_document, render_results_table, results_summary
from netdiag.targets import Target, expand_target

USAGE_EXIT = 2
DEFAULT_TIMEOUT = 3.0
DEFAULT_DEADLINE = 10.0


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag probe",
        usage="netdiag probe [options] TARGET...",
        description="Probe targets by protocol: tcp, mysql, postgres, redis, http(s), dns.",
        epilog="`netdiag probe mysql` (no host) probes $MYSQL_HOST with the todo app's "
        "MYSQL_USER/MYSQL_PASSWORD/MYSQL_DB (and their _FILE twins). "
        "Exit: 0 every result ok, 1 one is not, 2 usage, 3 internal error.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="URL, e.g. mysql://db:3306")
    add_output_options(p)
    add_timing_options(p, DEFAULT_TIMEOUT, DEFAULT_DEADLINE)
    p.add_argument("--source", metavar="ADDR", help="local address to connect from")
    mysql = add_login_options(p)
    mysql.add_argument(
        "--greeting-only",
        action="store_true",
        help="without a user: read the greeting and close (no dummy login; counts as a "
        "connect error on servers with a host cache, see docs/probes.md)",
    )
    add_http_options(p, "http")
    return p


def check_conflicts(args, targets: Sequence[Target]) -> None:
    """Flags that cannot apply to these targets are usage errors, not silently ignored."""
    schemes = {t.scheme for t in targets}
    if args.expect_status and not schemes & {"http", "https"}:
        raise UsageError("--expect-status applies to http:// and https:// targets only")
    if args.greeting_only and (args.user or args.password_file or args.database or args.table):
        raise UsageError("--greeting-only logs in as nobody: drop it, or drop the login flags")


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    targets = [expand_target(t) for t in args.targets]
    check_conflicts(args, targets)
    from netdiag.probes import settings

    flags = probe_flags(args)
    settings.check_flags(flags)
    source = settings.source_address(args.source, args.timeout) if args.source else None
    options = [settings.options_for(t, flags, args.timeout, source) for t in targets]
    from netdiag.probes import engine

    results = engine.run(targets, options, Deadline(args.deadline))
    ok = bool(results) and all(r.ok for r in results)
    if args.json:
        payload = {"results": results, "summary": results_summary(results)}
        print_document("probe", ok, payload, started)
    elif not args.quiet or not ok:
        shown = [r for r in results if not (args.quiet and r.ok)]
        print(render_results_table(shown))
    return 0 if ok else 1
