"""``netdiag doctor [NAME|TARGET]``: why can't my app reach its database? Step by step.

Resolver config, the name, Docker topology (when the API is reachable), route and neighbour,
TCP connect, protocol greeting, credentials (MYSQL_* and their _FILE twins), database and table.
Stops at the first failing step and lists what it could not check. Exit 0 when nothing
failed, 1 on a failure, 2 on usage errors. See docs/healthchecks.md.
"""

from __future__ import annotations

import os
import sys
import time

from netdiag.args import (
    ArgumentParser,
    add_login_options,
    add_output_options,
    add_timing_options,
    probe_flags,
)
from netdiag.errors import UsageError
from netdiag.targets import Target, parse_target

USAGE_EXIT = 2
DEFAULT_TIMEOUT = 3.0
DEFAULT_DEADLINE = 30.0
MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP", "not_checked": "----"}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag doctor",
        usage="netdiag doctor [options] [NAME|TARGET]",
        description="Diagnose the app's path to a service, step by step, with fixes.",
        epilog="NAME (or NAME:PORT) means mysql://NAME:3306 (not tcp: doctor diagnoses the "
        "app's database); no argument means $MYSQL_HOST. Credentials come from the flags, else "
        "MYSQL_USER, MYSQL_PASSWORD, MYSQL_DB and their _FILE twins. "
        "Exit: 0 no step failed, 1 a step failed, 2 usage, 3 internal error.",
    )
    p.add_argument("target", nargs="?", metavar="NAME|TARGET", help="e.g. mysql or mysql://db")
    add_output_options(p)
    add_timing_options(p, DEFAULT_TIMEOUT, DEFAULT_DEADLINE, per="step")
    add_login_options(p)
    return p


def doctor_target(text: str | None) -> Target:
    """A bare NAME or NAME:PORT means MySQL (the todo app's database); URLs are taken as is.

    The one exception to "a bare host:port is tcp": as tcp, ``doctor db:3306`` would skip the
    greeting and login steps and pass on the very failures (1130, a wrong password) it exists
    to find. docs/reference.md says so.
    """
    if text is None:
        from netdiag import appenv

        text = (appenv.read("host").value or "").strip()
        if not text:
            raise UsageError("no target given and MYSQL_HOST is not set")
    if "://" not in text:
        text = f"mysql://{text}"
    return parse_target(text)


def _step_lines(index: int, step, name_width: int, width: int) -> list[str]:
    """One step: its summary line, then notes and fix, each wrapped to ``width`` and aligned."""
    from netdiag.report import wrap_indented

    head = f"{index:>2} {step.name:<{name_width}}  {MARK[step.status]}  "
    lines = wrap_indented(step.summary, head, " " * len(head), width)
    pad = " " * (name_width + 5)
    for note in step.notes:
        lines += wrap_indented(note, f"{pad}  note: ", f"{pad}        ", width)
    if step.fix and step.status == "fail":
        lines += wrap_indented(step.fix, f"{pad}  fix:  ", f"{pad}        ", width)
    return lines


def render(diag, width: int | None = None) -> str:
    """The steps that ran, with notes and fixes, fitted to ``width`` (default: the terminal)."""
    from netdiag.report import printable, terminal_width, wrap_indented

    width = terminal_width() if width is None else width
    lines = [f"netdiag doctor {printable(diag.target)}"]
    name_width = max(len(s.name) for s in diag.steps)
    for i, step in enumerate(diag.steps, 1):
        if step.status != "not_checked":
            lines += _step_lines(i, step, name_width, width)
    if diag.not_checked:
        lines += wrap_indented(", ".join(diag.not_checked), "not checked: ", "  ", width)
    failed = diag.failed
    lines.append(f"result: {'FAIL at ' + failed.name if failed else 'all steps passed'}")
    return "\n".join(lines)


def render_failure(diag, width: int | None = None) -> str:
    """``-q``: only the failing steps (with their fixes) and the result line."""
    from netdiag.report import terminal_width

    width = terminal_width() if width is None else width
    name_width = max(len(s.name) for s in diag.steps)
    lines: list[str] = []
    for i, step in enumerate(diag.steps, 1):
        if step.status == "fail":
            lines += _step_lines(i, step, name_width, width)
    failed = diag.failed
    lines.append(f"result: FAIL at {failed.name}" if failed else "result: all steps passed")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    target = doctor_target(args.target)
    if target.port is None:
        raise UsageError(f"{target} has no port: doctor needs a service to connect to")
    if args.table and target.scheme != "mysql":
        raise UsageError(f"--table needs a mysql:// target, not {target.scheme}://")
    from netdiag.deadline import Deadline
    from netdiag.doctor.run import diagnose
    from netdiag.doctor.steps import Context

    ctx = Context(target, args.timeout, Deadline(args.deadline), os.environ, probe_flags(args))
    diag = diagnose(ctx)
    if args.json:
        from netdiag.report import print_document

        payload = diag.to_dict()
        payload.pop("ok", None)  # the envelope's
        print_document("doctor", diag.ok, payload, started)
    elif not args.quiet:
        sys.stdout.write(render(diag) + "\n")
    elif not diag.ok:
        sys.stdout.write(render_failure(diag) + "\n")
    return 0 if diag.ok else 1
