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
