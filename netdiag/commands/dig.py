"""netdiag dig: BIND dig 9.18's command line and output, plus ``+json``/``--json``.

Exit codes as dig: 0 a reply came (NXDOMAIN and SERVFAIL included), 1 usage, 8 batch file
unreadable, 9 no reply, 10 internal error. Like dig, the last lookup decides between 0 and 9.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from netdiag.dns import digformat
from netdiag.dns.digargs import DigExit, DigParser, Lookup, is_batch_skip, split_batch_line

USAGE_EXIT = 1
FAILURE_EXIT = 10
INTERNAL_EXIT = 10
BATCH_EXIT = 8
NO_REPLY_EXIT = 9
MAX_BATCH_LINE = 1024


def _print_exit(exc: DigExit) -> int:
    for line in exc.stdout:
        print(line)
    for line in exc.stderr:
        print(line, file=sys.stderr)
    return exc.code


def main(argv: list[str]) -> int:
    started = time.monotonic()
    # Names and batch lines are bytes to dig: what is not UTF-8 reaches us as surrogate
    # escapes and must go back out as the same bytes (the banner echoes the command line).
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    parser = DigParser()
    opts = parser.opts
    batch = None
    try:
        pending = parser.parse(argv)
        if opts.batchfile is not None:
            try:
                batch = _open_batch(opts.batchfile)
            except OSError as exc:
                print(f"{opts.batchfile}: {exc.strerror}", file=sys.stderr)
                print("dig: couldn't open specified batch file", file=sys.stderr)
                return BATCH_EXIT
            pending += _next_batch(parser, batch, first=True, others_pending=bool(pending))
    except DigExit as exc:
        _flush_warnings(opts.warnings, opts.notes)
        return _print_exit(exc)
    as_json = as_json or opts.json
    out = _Output(as_json, started)
    code = 0
    conf = None
    try:
        while pending:
            _flush_warnings(opts.warnings, None if as_json else opts.notes)
            lookup = pending.pop(0)
            if conf is None:  # dig always reads it: servers, search, ndots, timeout, attempts
                from netdiag.dns import resolvconf

                conf = resolvconf.load()
            from netdiag.dns.digquery import run_lookup

            result = run_lookup(lookup, opts, conf, out.emit)
            if result.skipped or result.bad_packet:
                out.failed(result)
            elif result.answer is not None:
                code = 0  # dig's exit status follows the last lookup that ran
                out.reply(result, digformat.render_reply(result.answer, lookup, opts))
            else:
                code = NO_REPLY_EXIT
                if not result.refused_tcp:
                    if not out.as_json:
                        out.emit(lookup.cmdline)
                    out.emit(digformat.NO_SERVERS)
                    lookup.cmdline = ""
                out.failed(result)
            if not pending and batch is not None:
                pending = _next_batch(parser, batch)
    except DigExit as exc:
        out.finish(exc.code == 0)
        return _print_exit(exc)
    finally:
        if batch is not None and batch is not sys.stdin:
            batch.close()
    _flush_warnings(opts.warnings)
    out.finish(code == 0)
    return code


def _open_batch(path: str) -> Any:
    """The batch file; a directory reads as an empty file, as dig's fopen/fgets see it."""
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape")
    except IsADirectoryError:
        import io

        return io.StringIO()


def _flush_warnings(warnings: list[str], notes: list[str] | None = None) -> None:
    """Parse-time lines: warnings to stderr, dig's parse notes to stdout."""
    for line in warnings:
        print(line, file=sys.stderr)
    warnings.clear()
    for line in notes or []:
        print(line)
    if notes:
        notes.clear()


def _next_batch(
    parser: DigParser, batch: Any, first: bool = False, others_pending: bool = False
) -> list[Lookup]:
    """Lookups of the next batch-file line (dig reads one line per finished query).

    Only while looking for the first line does dig skip blank and comment lines; later a blank
    line asks for the root's NS records and "# x" asks for names "#" and "x", as dig does.
    """
    while True:
        line = batch.readline(MAX_BATCH_LINE)
        if not line:
            return []
        if first and is_batch_skip(line):
            continue
        return parser.parse(split_batch_line(line), is_batch=True, others_pending=others_pending)


class _Output:
    """Text goes to stdout as dig prints it; in JSON mode everything is kept for one document."""

    def __init__(self, as_json: bool, started: float) -> None:
        self.as_json = as_json
        self.started = started
        self.queries: list[dict[str, Any]] = []
        self.pending_errors: list[str] = []

    def emit(self, text: str) -> None:
        if self.as_json:
            self.pending_errors += [
                line.removeprefix(";; ") for line in text.splitlines() if line.strip()
            ]
        else:
            sys.stdout.write(text)

    def _entry(self, result: Any) -> dict[str, Any]:
        import dns.rdataclass
        import dns.rdatatype

        lookup = result.lookup
        entry = {
            "name": lookup.name,
            "qname": result.qname,
            "type": dns.rdatatype.to_text(lookup.rdtype),
            "class": dns.rdataclass.to_text(lookup.rdclass),
            "errors": self.pending_errors,
        }
        self.pending_errors = []
        return entry

    def reply(self, result: Any, text: str) -> None:
        if not self.as_json:
            sys.stdout.write(text)
            return
        entry = self._entry(result)
        entry.update(status="reply", reply=digformat.answer_json(result.answer))
        self.queries.append(entry)

    def failed(self, result: Any) -> None:
        if self.as_json:
            entry = self._entry(result)
            status = "bad_packet" if result.bad_packet else "no_reply"
            entry.update(status=status, reply=None)
            self.queries.append(entry)

    def finish(self, ok: bool) -> None:
        """Print the one JSON document (``ok``: dig's exit status is 0) and flush stdout."""
        if self.as_json:
            from netdiag.report import print_document

            print_document("dig", ok, {"queries": self.queries}, self.started)
        sys.stdout.flush()
