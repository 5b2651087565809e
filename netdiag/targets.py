"""Target URLs: ``tcp://host:port``, ``mysql://host[:3306]``, ``http(s)://host[:port]/path``, ...

A bare ``host:port`` means tcp. Parsing is pure; nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from netdiag.dns.name import check_name
from netdiag.errors import UsageError
from netdiag.records import record

DEFAULT_PORTS: dict[str, int | None] = {
    "tcp": None,
    "mysql": 3306,
    "postgres": 5432,
    "postgresql": 5432,
    "redis": 6379,
    "http": 80,
    "https": 443,
    "dns": None,
}

SCHEME_ALIASES = {"postgresql": "postgres"}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@record(frozen=True)
class Target:
    """One parsed target. ``host`` is a name or an IP literal (no brackets)."""

    scheme: str
    host: str
    port: int | None
    path: str = ""
    user: str | None = None
    query: str = ""  # the query string exactly as given (never decoded and re-encoded)
    raw: str = ""

    @property
    def host_is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        hostport = f"{host}:{self.port}" if self.port is not None else host
        user = f"{self.user}@" if self.user else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{user}{hostport}{self.path}{query}"


def parse_target(text: str, default_scheme: str = "tcp") -> Target:
    """Parse a target URL or a bare ``host:port``; raise UsageError with a one-line reason."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty target")
    if "://" not in raw:
        if raw.lower() in DEFAULT_PORTS and DEFAULT_PORTS[raw.lower()] is not None:
            raise UsageError(f"target {raw!r} has no host: write {raw}://HOST")
        raw_url = f"{default_scheme}://{raw}"
    else:
        raw_url = raw
    try:
        parts = urlsplit(raw_url)
    except ValueError as exc:
        raise UsageError(f"invalid target {text!r}: {exc}") from None
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid port in {text!r} (1-65535)") from None
    scheme = SCHEME_ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in DEFAULT_PORTS:
        known = ", ".join(sorted(k for k in DEFAULT_PORTS if k not in SCHEME_ALIASES))
        raise UsageError(f"unknown scheme {parts.scheme!r} in {text!r} (known: {known})")
    if parts.password is not None:
        # Never echo it back: a password in a URL also shows in process listings.
        raise UsageError(
            "passwords in target URLs are not accepted (they show in process listings); "
            "use --password-file or MYSQL_PASSWORD_FILE"
        )
    host = parts.hostname or ""
    if not host:
        raise UsageError(f"target {text!r} has no host")
    if not _is_ip(host):
        check_name(host)  # a name DNS cannot carry is the user's mistake: exit 2, no query
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if scheme == "tcp" and port is None:
        raise UsageError(f"target {text!r} needs a port (tcp://HOST:PORT)")
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"port out of range in {text!r}")
    user = unquote(parts.username) if parts.username else None
    return Target(scheme, host, port, parts.path, user, parts.query, text)


def expand_target(text: str, environ: Mapping[str, str] | None = None) -> Target:
    """A target argument; the bare word ``mysql`` (or ``mysql://``) means the app's
    ``$MYSQL_HOST`` (``host`` or ``host:port``, or the content of ``MYSQL_HOST_FILE``)."""
    if text.strip().lower() in ("mysql", "mysql://"):
        from netdiag import appenv

        host = (appenv.read("host", environ).value or "").strip()
        if not host:
            raise UsageError("`mysql` without a host needs MYSQL_HOST (or write mysql://HOST)")
        return parse_target(f"mysql://{host}")
    return parse_target(text)
