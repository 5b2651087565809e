"""Renderings shared by the commands: JSON documents, tables and text that fit the terminal.

Kept cheap to import: json, tabulate-free tables and dataclasses load only when used, so a
``netdiag probe tcp://`` starts nearly as fast as Python itself (bench/startup).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from netdiag import __version__

ENVELOPE_KEYS = ("schema", "command", "version", "ok", "elapsed_ms")
SCHEMA_REVISION = 1


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__record_fields__"):
        from netdiag.records import as_dict

        return as_dict(obj)
    import dataclasses
    import enum

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(doc: Any) -> str:
    """JSON text of ``doc``: peer text is kept exactly (JSON escapes control characters)."""
    import json

    return json.dumps(doc, default=_default, indent=2, ensure_ascii=False)


def print_json(doc: Any, out: TextIO | None = None) -> None:
    """Write one JSON document to stdout (or ``out``)."""
    stream = out or sys.stdout
    stream.write(dumps(doc) + "\n")


def envelope(
    command: str, ok: bool, elapsed_ms: float, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """The one JSON document shape: the envelope keys first, then the command's payload.

    ``schema`` is ``netdiag.<command>/<revision>``, described by docs/schemas/<command>.json.
    """
    clash = set(ENVELOPE_KEYS) & set(payload)
    if clash:
        raise ValueError(f"payload of {command} reuses envelope keys: {sorted(clash)}")
    doc: dict[str, Any] = {
        "schema": f"netdiag.{command}/{SCHEMA_REVISION}",
        "command": command,
        "version": __version__,
        "ok": bool(ok),
        "elapsed_ms": round(elapsed_ms, 3),
    }
    doc.update(payload)
    return doc


def print_document(
    command: str,
    ok: bool,
    payload: Mapping[str, Any],
    started: float,
    out: TextIO | None = None,
) -> None:
    """Write a command's one JSON document; ``started`` is its ``time.monotonic()`` at start."""
    print_json(envelope(command, ok, (time.monotonic() - started) * 1000, payload), out)


# --- text for people: the one width rule, and no raw control characters ----------------------

DEFAULT_WIDTH = 100  # when stdout is not a terminal and COLUMNS is not set
MIN_COLUMN = 8  # a column is never squeezed below this (or its header)
MIN_FOLD = 36  # a fold column narrower than this goes under its row instead
FOLD_INDENT = "    "

# C0 and C1 control characters, DEL, line/paragraph separators and bidi overrides: a peer's
# text must not move the cursor, ring the bell, forge lines or reorder what follows.
_UNPRINTABLE: dict[int, str] = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_UNPRINTABLE.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
_UNPRINTABLE.update(
    {c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)


def printable(text: Any) -> str:
    """``text`` safe for a terminal or an XML file: control characters shown as escapes."""
    return str(text).translate(_UNPRINTABLE)


def terminal_width(stream: TextIO | None = None) -> int:
    """Columns to fit: $COLUMNS when set, else the terminal's width, else 100 (not a terminal)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    out = stream or sys.stdout
    try:
        if out.isatty():
            return os.get_terminal_size(out.fileno()).columns or DEFAULT_WIDTH
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


def wrap(text: str, width: int, first: int | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` characters (the first line ``first``, when given),
    broken at spaces where possible."""
    width = max(1, width)
    first = width if first is None else max(1, first)
    lines: list[str] = []

    def limit() -> int:
        return width if lines else first

    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            while len(word) > limit():  # a word longer than a line is cut
                if line:
                    lines.append(line)
                    line = ""
                cut = limit()
                lines.append(word[:cut])
                word = word[cut:]
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= limit():
                line += " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def wrap_indented(text: str, first: str, rest: str, width: int | None = None) -> list[str]:
    """One paragraph wrapped to ``width``: its first line after ``first``, the others after
    ``rest`` (``fix: run ...`` then an aligned continuation)."""
    width = terminal_width() if width is None else width
    body = wrap(printable(text), max(20, width - len(rest)), max(20, width - len(first)))
    return [first + body[0], *(rest + line for line in body[1:])]


def table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    width: int | None = None,
    fold: int | None = None,
    indent: str = "",
    rule: bool = True,
    narrow: Sequence[int] | None = None,
) -> str:
    """A plain-text table that fits ``width`` columns (default: terminal_width()).

    Cells may hold several lines (``"\\n"``-joined); each line is made printable. When the
    table is too wide, the widest columns are narrowed and their cells wrapped; the column
    ``fold`` (an index, usually the free-text detail) is instead printed under its row,
    indented, when it would get fewer than MIN_FOLD characters. ``indent`` starts every line;
    ``rule=False`` leaves out the dashes under the headers. ``narrow`` names the columns that
    may be narrowed and wrapped (default: all); the others (a status word, an address) keep
    their width.
    """
    width = (terminal_width() if width is None else width) - len(indent)
    ncols = len(headers)
    grid = [[[printable(x) for x in str(c).split("\n")] for c in row] for row in rows]
    heads = [str(h) for h in headers]
    folded: list[list[str]] | None = None
    natural = [max([len(heads[i])] + [len(x) for r in grid for x in r[i]]) for i in range(ncols)]

    def total(widths: list[int]) -> int:
        return sum(widths) + 2 * (len(widths) - 1)

    if fold is not None and total(natural) > width:
        others = total(natural[:fold] + natural[fold + 1 :])
        if width - others - 2 < MIN_FOLD:
            folded = [r[fold] for r in grid]
            grid = [r[:fold] + r[fold + 1 :] for r in grid]
            heads = heads[:fold] + heads[fold + 1 :]
            natural = natural[:fold] + natural[fold + 1 :]
    widths = list(natural)
    columns = [i for i in range(ncols) if i != fold] if folded is not None else list(range(ncols))
    floor = [
        max(MIN_COLUMN, len(h)) if narrow is None or i in narrow else natural[n]
        for n, (i, h) in enumerate(zip(columns, heads, strict=True))
    ]
    while total(widths) > width:
        i = max(range(len(widths)), key=lambda k: widths[k] - floor[k])
        if widths[i] <= floor[i]:
            break  # nothing left to narrow: the line stays long
        widths[i] -= 1
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    if rule:
        out.append("  ".join("-" * w for w in widths))
    for index, row in enumerate(grid):
        cells = [[y for x in cell for y in wrap(x, w)] for cell, w in zip(row, widths, strict=True)]
        for n in range(max(len(c) for c in cells) if cells else 1):
            parts = [
                (c[n] if n < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)
            ]
            out.append("  ".join(parts).rstrip())
        if folded is not None:
            for text in folded[index]:
                if text:
                    out += [FOLD_INDENT + x for x in wrap(text, width - len(FOLD_INDENT))]
    return "\n".join(indent + line if line else line for line in out)


def diag(message: str) -> None:
    """A diagnostic or progress line: always stderr, never mixed into stdout."""
    print(message, file=sys.stderr, flush=True)


def format_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def render_results_table(results: Sequence[Any], width: int | None = None) -> str:
    """ProbeResults as a table: target, address, status, time, detail (one row each).

    The detail is a peer's one line: its control characters (a newline included) are escaped,
    and it wraps in its column, or goes under its row when the terminal is narrow.
    """
    rows = [
        [r.target, r.address or "-", str(r.status), format_ms(r.elapsed_ms), printable(r.detail)]
        for r in results
    ]
    headers = ["TARGET", "ADDRESS", "STATUS", "TIME", "DETAIL"]
    return table(rows, headers, width, fold=4, narrow=(0, 4))


def results_summary(results: Sequence[Any]) -> dict[str, Any]:
    """Counts for a JSON document: total, ok, failed and per status."""
    by_status: dict[str, int] = {}
    for r in results:
        by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
    ok = by_status.get("ok", 0)
    return {"total": len(results), "ok": ok, "failed": len(results) - ok, "by_status": by_status}
