"""The one flag contract, shared by every command's parser (docs/reference.md#options).

- ``--timeout S`` bounds one attempt (a connect, a query, a login); ``--deadline S`` bounds the
  whole command. ``wait`` alone keeps ``--timeout`` as its total, as wait-for-it and wait4x do,
  and takes ``--deadline`` as its synonym (``--attempt-timeout`` is its per-attempt bound).
- ``-q``/``--quiet``: only what failed is printed (nothing when all is well) and no progress
  lines; errors still go to stderr and the exit code is unchanged. ``--json`` wins over it.
- ``--json``: one document on stdout, described by docs/schemas/<command>.json.
- A usage error raises UsageError carrying the command's usage line; the CLI prints that line,
  then the reason, and exits with the command's usage code (check never exits 2).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, NoReturn

from netdiag.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from netdiag.probes.settings import ProbeFlags

QUIET_HELP = "print only what failed (nothing when all is well), no progress lines"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (with the usage line) instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, usage=self.usage_line())

    def usage_line(self) -> str:
        """``usage: netdiag CMD ...`` on one line, for the top of a usage error."""
        return " ".join(self.format_usage().split())


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


def int_range(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (``unit``, e.g. "days", names
    it in the error)."""
    of = f" of {unit}" if unit else ""
    unit = f" {unit}" if unit else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number{of}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}-{high}{unit}: {text!r}")
        return value

    return parse


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


def add_http_options(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """``--expect-status``, ``--insecure``, ``--follow-redirects``: the http(s) settings of probe
    and agent (netdiag.probes.settings turns them into HTTP expectations)."""
    group = parser.add_argument_group(title)
    group.add_argument(
        "--expect-status",
        action="append",
        metavar="CODES",
        help="accepted statuses, e.g. 200 or 2xx,301 (default 2xx and 3xx)",
    )
    group.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    group.add_argument("--follow-redirects", action="store_true", help="follow up to 5 redirects")
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


def add_output_options(parser: argparse.ArgumentParser, quiet: bool = True) -> None:
    """``--json`` and (for commands that judge something) ``-q``/``--quiet``, with one meaning."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON document on stdout (described by docs/schemas/COMMAND.json)",
    )
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def usage_of(module: object) -> str | None:
    """The usage line of a command module's parser (``build_parser()``), if it has one."""
    build = getattr(module, "build_parser", None)
    parser = build() if callable(build) else None
    return parser.usage_line() if isinstance(parser, ArgumentParser) else None
