"""Renderings shared by the commands: JSON documents and tables."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


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


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate  # 50 ms import: only when a table is drawn

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def diag(message: str) -> None:
    """A diagnostic or progress line: always stderr, never mixed into stdout."""
    print(message, file=sys.stderr, flush=True)
