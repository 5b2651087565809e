"""argparse that reports usage errors as UsageError instead of exiting with 2.

Commands differ in their usage exit code (check never exits 2), so the CLI decides it.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from netdiag.errors import UsageError


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def add_timing_options(
    parser: argparse.ArgumentParser,
    timeout: float,
    deadline: float,
    per: str = "attempt",
    set_defaults: bool = True,
) -> None:
    """``--timeout S`` (per step) and ``--deadline S`` (whole command), shared by every command.

    With ``set_defaults=False`` the options default to None so the caller can tell "not given"
    (a checks file's own timeouts then apply); the help still shows the effective defaults.
    """
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=timeout if set_defaults else None,
        metavar="S",
        help=f"seconds per {per} (default {timeout:g})",
    )
    parser.add_argument(
        "--deadline",
        type=positive_float,
        default=deadline if set_defaults else None,
        metavar="S",
        help=f"seconds for the whole command (default {deadline:g})",
    )
