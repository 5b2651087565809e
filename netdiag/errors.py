"""Exceptions shared by every command."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input; the CLI prints the command's usage line and this reason, then
    exits with the command's usage code. ``usage`` is that line when the parser raised it."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class NetdiagError(Exception):
    """A failure worth one line on stderr (unreadable file, bad config), not a traceback."""
