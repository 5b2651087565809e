"""``netdiag check TARGET... [-f FILE]``: probe once; exit 0 when everything holds, else 1.

Never exits 2, not even on a usage error: Docker reserves 2 for HEALTHCHECK. One short line
per check, so the 4 KiB that ``docker inspect`` keeps of a health check stays readable.
Kept light: a HEALTHCHECK runs this every few seconds. See docs/healthchecks.md.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from netdiag.args import (
    ArgumentParser,
    add_login_options,
    add_output_options,
    add_timing_options,
    int_range,
)
from netdiag.errors import NetdiagError, UsageError

if TYPE_CHECKING:
    import argparse

    from netdiag.checks.spec import Check
    from netdiag.targets import Target

USAGE_EXIT = 1
FAILURE_EXIT = 1
INTERNAL_EXIT = 1  # check never exits 3 either: HEALTHCHECK reads 0/1 only
INTERRUPT_EXIT = 1  # never 2, never 130: Docker reads anything but 0/1 as "reserved"
DEFAULT_TIMEOUT = 3.0
DEFAULT_DEADLINE = 10.0


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag check",
        usage="netdiag check [options] [TARGET...] [-f FILE]",
        description="Probe targets (and/or a checks file) once: exit 0 if all hold, else 1.",
        epilog="Exit: 0 every check holds; 1 anything else, usage errors and Ctrl-C included "
        "(never 2: Docker reserves it for HEALTHCHECK).",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="URL, e.g. mysql://db:3306")
    p.add_argument(
        "-f", "--file", metavar="FILE", help="TOML checks file, - for stdin (docs/healthchecks.md)"
    )
    add_output_options(p)
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE")
    add_timing_options(p, DEFAULT_TIMEOUT, DEFAULT_DEADLINE, set_defaults=False)
    add_login_options(p)  # for TARGET arguments; a checks file names its own login
    p.add_argument(
        "--cert-days",
        type=cert_days,
        metavar="N",
        help="https:// TARGETs: fail when the server's certificate has fewer than N days left "
        "(fewer than 14 is a warning either way)",
    )
    return p


def cert_days(text: str) -> int:
    """``--cert-days N``: a whole number of days, 1 to 3650 (as the checks file's cert_days;
    the limit is imported only when the flag is given)."""
    from netdiag.checks.spec import MAX_CERT_DAYS

    return int_range(1, MAX_CERT_DAYS, "days")(text)


def command_line_check(target: Target, args: argparse.Namespace) -> Check:
    """A TARGET argument as a check; MySQL logs in as the app does when a user is known
    (``--user``, ``mysql://USER@``, else $MYSQL_USER), exactly as ``netdiag probe`` does."""
    from netdiag.checks.spec import Check

    return Check(
        str(target),
        target,
        user=args.user,
        password_file=args.password_file,
        database=args.database,
        table=args.table,
        app_env=True,
        cert_days=args.cert_days if target.scheme == "https" else None,
    )


def _run(argv: list[str]) -> int:
    started = time.monotonic()  # the deadline covers reading the checks file too
    args = build_parser().parse_args(argv)
    if not args.targets and not args.file:
        raise UsageError("nothing to check: give TARGET... or -f FILE")
    checks: list[Check] = []
    timeout, deadline_s = DEFAULT_TIMEOUT, DEFAULT_DEADLINE
    if args.file:
        from netdiag.checks.spec import load

        spec = load(args.file)
        checks += spec.checks
        timeout = spec.timeout or timeout
        deadline_s = spec.deadline or deadline_s
    from netdiag.targets import expand_target

    targets = [expand_target(text) for text in args.targets]
    if args.cert_days is not None and not any(t.scheme == "https" for t in targets):
        raise UsageError(
            "--cert-days applies to https:// TARGET arguments (a checks file sets cert_days "
            "per check)"
        )
    checks += [command_line_check(target, args) for target in targets]
    timeout = args.timeout or timeout
    deadline_s = args.deadline or deadline_s

    from netdiag.checks.run import run_checks
    from netdiag.deadline import Deadline

    deadline = Deadline(deadline_s, start=started)
    outcomes = run_checks(checks, timeout, deadline)
    ok = all(o.passed for o in outcomes)
    if args.junit:
        from netdiag.checks.junit import write

        try:
            write(args.junit, outcomes)
        except OSError as exc:
            raise NetdiagError(f"cannot write {args.junit}: {exc.strerror}") from None
    if args.json:
        from netdiag.report import print_document

        payload = {
            "passed": sum(o.passed for o in outcomes),
            "failed": sum(not o.passed for o in outcomes),
            "checks": [o.to_dict() for o in outcomes],
        }
        print_document("check", ok, payload, started)
    else:
        lines = [o.line() for o in outcomes if not (args.quiet and o.passed)]
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    """Run the check; the CLI maps usage errors, failures and ^C to 1 (the constants above)."""
    return _run(argv)
