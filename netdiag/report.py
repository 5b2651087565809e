"""Renderings shared by the commands: JSON documents and tables."""

from __future__ import annotations

import dataclasses
import enum
import json
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
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(doc: Any) -> str:
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


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate  # 50 ms import: only when a table is drawn

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def diag(message: str) -> None:
    """A diagnostic or progress line: always stderr, never mixed into stdout."""
    print(message, file=sys.stderr, flush=True)


def format_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def render_results_table(results: Sequence[Any]) -> str:
    """ProbeResults as a table: target, address, status, time, detail (one row each)."""
    rows = [
        [r.target, r.address or "-", str(r.status), format_ms(r.elapsed_ms), r.detail]
        for r in results
    ]
    return table(rows, ["TARGET", "ADDRESS", "STATUS", "TIME", "DETAIL"])


def results_summary(results: Sequence[Any]) -> dict[str, Any]:
    """Counts for a JSON document: total, ok, failed and per status."""
    by_status: dict[str, int] = {}
    for r in results:
        by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
    ok = by_status.get("ok", 0)
    return {"total": len(results), "ok": ok, "failed": len(results) - ok, "by_status": by_status}
