"""How to probe one target: per-scheme settings built in one place from the target, the flags
(or a checks-file entry) and the app's environment.

``options_for(target, flags, ...)`` is that place; probe, check, wait and doctor all call it, so
a ``mysql://`` target logs in the same way everywhere. Nothing here touches the network, and
this module stays light (a HEALTHCHECK imports it).
"""

from __future__ import annotations

from collections.abc import Mapping

from netdiag import appenv
from netdiag.errors import UsageError
from netdiag.records import record
from netdiag.secrets import Secret, read_secret_file
from netdiag.targets import Target

DEFAULT_TIMEOUT = 3.0


@record(frozen=True)
class MySQLLogin:
    """Credentials and what to check after logging in; ``user=None`` means greeting only.

    ``password_from`` names where the password came from (``--password-file``,
    ``MYSQL_PASSWORD_FILE``, ...), None when none was configured; ``password_wanted_from`` says
    where it would have come from.
    """

    user: str | None = None
    password: Secret | None = None
    database: str | None = None
    table: str | None = None
    # Without a user: read the greeting and close, skipping the dummy login (see docs).
    greeting_only: bool = False
    password_from: str | None = None
    password_wanted_from: str = "--password-file, MYSQL_PASSWORD_FILE or MYSQL_PASSWORD"


def parse_expected(specs: list[str] | tuple[str, ...] | None) -> tuple[tuple[int, int], ...]:
    """``["200", "3xx", "401-403"]`` (or comma lists) -> inclusive ranges; default 2xx and 3xx."""
    if not specs:
        return ((200, 399),)
    ranges: list[tuple[int, int]] = []
    for spec in (p.strip() for s in specs for p in str(s).split(",")):
        try:
            if len(spec) == 3 and spec[0].isdigit() and spec[1:].lower() == "xx":
                base = int(spec[0]) * 100
                ranges.append((base, base + 99))
            elif "-" in spec:
                low, high = (int(x) for x in spec.split("-", 1))
                ranges.append((low, high))
            else:
                ranges.append((int(spec), int(spec)))
        except ValueError:
            raise UsageError(f"bad --expect-status {spec!r} (e.g. 200, 2xx, 200-299)") from None
    if any(not 100 <= lo <= hi <= 599 for lo, hi in ranges):
        raise UsageError("--expect-status codes must lie within 100-599 (low-high)")
    return tuple(ranges)


@record(frozen=True)
class HTTPSettings:
    """Which statuses count as ``ok``, whether to verify TLS, whether to follow redirects."""

    expected: tuple[tuple[int, int], ...] = ((200, 399),)
    insecure: bool = False
    follow_redirects: bool = False

    def accepts(self, code: int) -> bool:
        return any(lo <= code <= hi for lo, hi in self.expected)


@record
class ProbeOptions:
    """Everything a probe needs besides its target; built by ``options_for``."""

    timeout: float = DEFAULT_TIMEOUT
    # Local address to connect from (tests use 127.0.0.2 to be a host with no MySQL grant).
    source_address: str | None = None
    mysql: MySQLLogin | None = None
    http: HTTPSettings | None = None


@record(frozen=True)
class ProbeFlags:
    """What the command line (or one checks-file entry) says; None means "not given".

    ``app_env`` lets a missing user and database come from the app's MYSQL_USER/MYSQL_DB (a
    checks-file entry turns it on only when it asks for a login).
    """

    user: str | None = None
    password_file: str | None = None
    password_env: str | None = None  # another variable than MYSQL_PASSWORD (checks files)
    database: str | None = None
    table: str | None = None
    greeting_only: bool = False
    expect_status: tuple[str, ...] = ()
    insecure: bool = False
    follow_redirects: bool = False
    app_env: bool = True


def mysql_login(
    target: Target, flags: ProbeFlags, environ: Mapping[str, str] | None = None
) -> MySQLLogin:
    """The login for a ``mysql://`` target: flag, then URL (``user@``, ``/db``), then the app's
    environment. The password is read only when there is a user to log in as."""
    user = flags.user or target.user
    if not user and flags.app_env:
        user = appenv.read("user", environ).value
    if not user:
        # nothing to log in with: a greeting check (a table or database asked for is refused
        # by the probe, never silently ignored)
        return MySQLLogin(
            database=flags.database, table=flags.table, greeting_only=flags.greeting_only
        )
    database = flags.database or target.path.strip("/")
    if not database and flags.app_env:
        database = appenv.read("database", environ).value
    if flags.password_file is not None:
        password: str | None = read_secret_file(flags.password_file)
        password_from: str | None = "--password-file"
        wanted = "--password-file"
    else:
        got = appenv.read("password", environ, flags.password_env)
        password, password_from, wanted = got.value, got.source, got.wanted_from
    return MySQLLogin(
        user=user,
        password=Secret(password) if password is not None else None,
        database=database or None,
        table=flags.table,
        greeting_only=flags.greeting_only,
        password_from=password_from,
        password_wanted_from=wanted,
    )


def http_settings(flags: ProbeFlags) -> HTTPSettings:
    """Expectations for an ``http(s)://`` target."""
    return HTTPSettings(parse_expected(flags.expect_status), flags.insecure, flags.follow_redirects)


def options_for(
    target: Target,
    flags: ProbeFlags | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    source_address: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProbeOptions:
    """The one place a target's probe settings are built (probe, check, wait, doctor)."""
    flags = flags or ProbeFlags()
    options = ProbeOptions(timeout=timeout, source_address=source_address)
    if target.scheme == "mysql":
        options.mysql = mysql_login(target, flags, environ)
    elif target.scheme in ("http", "https"):
        options.http = http_settings(flags)
    return options


def source_address(text: str, timeout: float) -> str:
    """``--source``: an address, or a name resolved by the same rules as targets (never by the
    machine's resolver behind netdiag's back, as a bind() to a name would)."""
    import ipaddress

    from netdiag.targets import numeric_ipv4

    text = text.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(numeric_ipv4(text) or text))
    except ValueError:
        pass
    from netdiag.dns.lookup import LookupFailure, resolve

    try:
        return resolve(text, timeout=timeout).addresses[0]
    except LookupFailure as fail:
        raise UsageError(f"--source {text}: {fail.detail}") from None


def check_flags(flags: ProbeFlags) -> None:
    """Refuse malformed flag values before any target is probed (a usage error)."""
    parse_expected(flags.expect_status)
