"""``netdiag doctor [NAME|TARGET]``: why can't my app reach its database? Step by step.

Resolver config, the name, Docker topology (when the API is reachable), route and neighbour,
TCP connect, protocol greeting, credentials (MYSQL_* and their _FILE twins), database and table.
Stops at the first failing step and lists what it could not check. Exit 0 when nothing
failed, 1 on a failure, 2 on usage errors. See docs/healthchecks.md.
"""

from __future__ import annotations

import os
import sys

from netdiag.args import ArgumentParser, add_login_options, add_timing_options, probe_flags
from netdiag.errors import UsageError
from netdiag.targets import Target, parse_target

USAGE_EXIT = 2
DEFAULT_TIMEOUT = 3.0
DEFAULT_DEADLINE = 30.0
MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP", "not_checked": "----"}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag doctor",
        description="Diagnose the app's path to a service, step by step, with fixes.",
        epilog="NAME alone means mysql://NAME:3306; no argument means $MYSQL_HOST. "
        "Credentials come from the flags, else MYSQL_USER, MYSQL_PASSWORD, MYSQL_DB and "
        "their _FILE twins.",
    )
    p.add_argument("target", nargs="?", metavar="NAME|TARGET", help="e.g. mysql or mysql://db")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_timing_options(p, DEFAULT_TIMEOUT, DEFAULT_DEADLINE, per="step")
    add_login_options(p)
    return p


def doctor_target(text: str | None) -> Target:
    """A bare NAME or NAME:PORT means MySQL (the todo app's database); URLs are taken as is."""
    if text is None:
        from netdiag import appenv

        text = (appenv.read("host").value or "").strip()
        if not text:
            raise UsageError("no target given and MYSQL_HOST is not set")
    if "://" not in text:
        text = f"mysql://{text}"
    return parse_target(text)


def render(diag) -> str:
    lines = [f"netdiag doctor {diag.target}"]
    width = max(len(s.name) for s in diag.steps)
    for i, step in enumerate(diag.steps, 1):
        if step.status == "not_checked":
            continue
        lines.append(f"{i:>2} {step.name:<{width}}  {MARK[step.status]}  {step.summary}")
        pad = " " * (width + 5)
        lines += [f"{pad}  note: {n}" for n in step.notes]
        if step.fix and step.status == "fail":
            lines.append(f"{pad}  fix:  {step.fix}")
    if diag.not_checked:
        lines.append(f"not checked: {', '.join(diag.not_checked)}")
    failed = diag.failed
    lines.append(f"result: {'FAIL at ' + failed.name if failed else 'all steps passed'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    target = doctor_target(args.target)
    if target.port is None:
        raise UsageError(f"{target} has no port: doctor needs a service to connect to")
    from netdiag.deadline import Deadline
    from netdiag.doctor.run import diagnose
    from netdiag.doctor.steps import Context

    ctx = Context(target, args.timeout, Deadline(args.deadline), os.environ, probe_flags(args))
    diag = diagnose(ctx)
    if args.json:
        from netdiag.report import print_json

        print_json(diag.to_dict())
    else:
        sys.stdout.write(render(diag) + "\n")
    return 0 if diag.ok else 1
