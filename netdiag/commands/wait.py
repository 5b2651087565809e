"""``netdiag wait TARGET... [-- CMD ARGS...]``: wait until every target is ready, then run CMD.

All targets are polled in parallel with a short, capped backoff (50 ms doubling-ish up to
--interval) under one global deadline. Exit 0 when ready (or exec CMD, whose exit code and
signals are then its own), 124 on timeout (CMD is not run), 2 on usage errors. ``--invert``
waits for the targets to go away instead. Progress lines go to stderr. See docs/healthchecks.md.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from netdiag.args import (
    ArgumentParser,
    add_login_options,
    add_output_options,
    positive_float,
    probe_flags,
)
from netdiag.deadline import Deadline
from netdiag.errors import UsageError
from netdiag.probes.settings import ProbeOptions, options_for
from netdiag.records import field, record
from netdiag.status import Status
from netdiag.targets import Target, expand_target

USAGE_EXIT = 2
TIMEOUT_EXIT = 124
DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.25
DEFAULT_ATTEMPT = 2.0
FIRST_DELAY = 0.05
BACKOFF = 1.5


@record
class Waiting:
    """One target's progress: attempts so far, last status and detail, when it became ready."""

    target: Target
    options: ProbeOptions = field(default_factory=ProbeOptions)
    attempts: int = 0
    status: Status | None = None
    detail: str = ""
    ready_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "ready": self.ready_after is not None,
            "status": str(self.status) if self.status else None,
            "detail": self.detail,
            "attempts": self.attempts,
            "ready_after_ms": None
            if self.ready_after is None
            else round(self.ready_after * 1000, 3),
        }


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="netdiag wait",
        usage="netdiag wait [options] TARGET... [-- CMD ARGS...]",
        description="Wait until all targets are ready (or gone with --invert), then run CMD.",
        epilog="Exit: 0 ready (or CMD's own exit code), 124 timeout (CMD not run), 2 usage, "
        "3 internal error. "
        "As in wait-for-it and wait4x, --timeout is the total wait (--deadline is its synonym); "
        "--attempt-timeout bounds one attempt.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="URL, e.g. mysql://db:3306")
    p.add_argument(
        "-t",
        "--timeout",
        type=positive_float,
        default=None,
        metavar="S",
        help=f"give up after S seconds in all (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--deadline",
        type=positive_float,
        default=None,
        metavar="S",
        help="the same as --timeout (the whole command's bound, as every command has)",
    )
    p.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL,
        metavar="S",
        help=f"longest pause between attempts (default {DEFAULT_INTERVAL:g}); "
        f"pauses start at {FIRST_DELAY * 1000:g} ms",
    )
    p.add_argument(
        "--attempt-timeout",
        type=positive_float,
        default=DEFAULT_ATTEMPT,
        metavar="S",
        help=f"seconds one attempt may take (default {DEFAULT_ATTEMPT:g})",
    )
    p.add_argument("--invert", action="store_true", help="wait until the targets are NOT ready")
    add_output_options(p)
    add_login_options(p)  # mysql:// logs in like the app: ready means the app's login works
    return p


def total_seconds(args) -> float:
    """wait's whole bound: --timeout, or its synonym --deadline; both must agree."""
    if args.timeout and args.deadline and args.timeout != args.deadline:
        raise UsageError(
            "--deadline is wait's --timeout (the total wait): give one of them, "
            f"not {args.timeout:g} and {args.deadline:g}"
        )
    return args.timeout or args.deadline or DEFAULT_TIMEOUT


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Arguments before ``--`` and the command after it (None without ``--``)."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def attempt(state: Waiting, timeout: float, deadline: Deadline) -> tuple[Status, str]:
    """Probe a target once; (status, detail) of the first result that is not ok, else ok."""
    from netdiag.probes import engine

    per = Deadline(max(0.001, deadline.timeout(timeout)))
    results = engine.run([state.target], state.options, per)
    for result in results:
        if result.status is not Status.OK:
            return result.status, result.detail
    return (Status.OK, results[0].detail) if results else (Status.ERROR, "no result")


class Waiter:
    """Polls every target in its own thread until all are ready or the deadline passes."""

    def __init__(
        self,
        targets: list[Target],
        options: list[ProbeOptions],
        deadline: Deadline,
        interval: float,
        attempt_timeout: float,
        invert: bool,
        progress: bool,
    ) -> None:
        self.states = [Waiting(t, o) for t, o in zip(targets, options, strict=True)]
        self.deadline = deadline
        self.interval = interval
        self.attempt_timeout = attempt_timeout
        self.invert = invert
        self.progress = progress
        self.start = time.monotonic()
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        """One progress line on stderr; a peer's text in it has its control characters escaped."""
        if self.progress:
            from netdiag.report import printable

            with self._lock:
                print(f"netdiag wait: {printable(message)}", file=sys.stderr, flush=True)

    def poll(self, state: Waiting) -> None:
        delay = min(FIRST_DELAY, self.interval)
        while not self.deadline.expired():
            cut = self.deadline.remaining() < self.attempt_timeout
            status, detail = attempt(state, self.attempt_timeout, self.deadline)
            state.attempts += 1
            if cut and status is Status.TIMEOUT and state.status not in (None, Status.OK):
                # the last attempt, cut short by the total: it did not get as far as the ones
                # before (a port named "speaks HTTP, not MySQL" stays named), keep their word
                continue
            changed = status is not state.status
            state.status, state.detail = status, detail
            done = (status is not Status.OK) if self.invert else (status is Status.OK)
            if done:
                state.ready_after = time.monotonic() - self.start
                word = "gone" if self.invert else "ready"
                self.say(
                    f"{state.target} {word} after {state.ready_after:.2f}s "
                    f"({status}: {detail}; attempt {state.attempts})"
                )
                return
            if changed:
                self.say(f"{state.target} {status}: {detail} (still waiting)")
            pause = min(delay, self.deadline.remaining())
            if pause > 0:
                time.sleep(pause)
            delay = min(delay * BACKOFF, self.interval)

    def run(self) -> bool:
        threads = [threading.Thread(target=self.poll, args=(s,), daemon=True) for s in self.states]
        for thread in threads:
            thread.start()
        for thread in threads:
            # an attempt may overrun the deadline by its own small slack; never wait forever
            thread.join(self.deadline.remaining() + self.attempt_timeout + 1.0)
        return all(s.ready_after is not None for s in self.states)


def main(argv: list[str]) -> int:
    started = time.monotonic()
    own, command = split_command(argv)
    args = build_parser().parse_args(own)
    if command is not None and not command:
        raise UsageError("nothing after '--': give the command to run")
    if command is not None and not command[0]:
        raise UsageError("the command after '--' is an empty string")
    total = total_seconds(args)
    targets = [expand_target(t) for t in args.targets]
    flags = probe_flags(args)
    # read once, as the app reads its MYSQL_* and secret files once at start
    options = [options_for(t, flags, args.attempt_timeout) for t in targets]
    deadline = Deadline(total)
    waiter = Waiter(
        targets,
        options,
        deadline,
        args.interval,
        args.attempt_timeout,
        args.invert,
        not args.quiet,
    )
    ready = waiter.run()
    if args.json:
        from netdiag.report import print_document

        payload = {
            "ready": ready,
            "invert": args.invert,
            "timed_out": not ready,
            "exec": command[0] if command else None,
            "targets": [s.to_dict() for s in waiter.states],
        }
        print_document("wait", ready, payload, started)
    sys.stdout.flush()
    if not ready:
        pending = [str(s.target) for s in waiter.states if s.ready_after is None]
        what = "still there" if args.invert else "not ready"
        cmd = f"; not running {command[0]}" if command else ""
        print(
            f"netdiag wait: timeout after {total:g}s: {', '.join(pending)} {what}{cmd}",
            file=sys.stderr,
            flush=True,
        )
        return TIMEOUT_EXIT
    if command is None:
        return 0
    sys.stderr.flush()
    try:
        os.execvp(command[0], command)
    except FileNotFoundError:
        print(f"netdiag wait: {command[0]}: command not found", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"netdiag wait: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached: execvp replaced this process
