"""Exceptions shared by every command."""


class UsageError(Exception):
    """Bad command-line input; the CLI prints it on one line and exits with the command's usage code."""


class NetdiagError(Exception):
    """A failure worth one line on stderr (unreadable file, bad config), not a traceback."""
