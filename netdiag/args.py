"""argparse that reports usage errors as UsageError instead of exiting with 2.

Commands differ in their usage exit code (check never exits 2), so the CLI decides it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn

from netdiag.errors import UsageError

if TYPE_CHECKING:
    from netdiag.probes.settings import ProbeFlags


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# Longest time any option may name: beyond it timers and sleeps overflow (1e308 did).
MAX_SECONDS = 1_000_000


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS} seconds: {text!r}")
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


def add_login_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--user``, ``--password-file``, ``--database``, ``--table``: the MySQL login of probe,
    check, wait and doctor (netdiag.probes.settings turns them into a MySQLLogin)."""
    group = parser.add_argument_group(
        "mysql login (default: the app's MYSQL_USER, MYSQL_PASSWORD, MYSQL_DB and _FILE twins)"
    )
    group.add_argument("--user", help="log in as USER (default $MYSQL_USER)")
    group.add_argument(
        "--password-file",
        metavar="FILE",
        help="password from FILE (default $MYSQL_PASSWORD_FILE, $MYSQL_PASSWORD)",
    )
    group.add_argument("--database", help="database to use (default $MYSQL_DB)")
    group.add_argument("--table", help="also check that this table exists (needs a login)")
    return group


def probe_flags(args: argparse.Namespace) -> ProbeFlags:
    """The parsed login and protocol options as a ``netdiag.probes.settings.ProbeFlags``."""
    from netdiag.probes.settings import ProbeFlags

    return ProbeFlags(
        user=args.user,
        password_file=args.password_file,
        database=args.database,
        table=args.table,
        greeting_only=getattr(args, "greeting_only", False),
        expect_status=tuple(getattr(args, "expect_status", None) or ()),
        insecure=getattr(args, "insecure", False),
        follow_redirects=getattr(args, "follow_redirects", False),
    )
