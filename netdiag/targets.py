"""Target URLs: ``tcp://host:port``, ``mysql://host[:3306]``, ``http(s)://host[:port]/path``, ...

A bare ``host:port`` means tcp. Parsing is pure; nothing here touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from netdiag.dns.name import check_name, is_ip_literal
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
        return is_ip_literal(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        hostport = f"{host}:{self.port}" if self.port is not None else host
        user = f"{self.user}@" if self.user else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{user}{hostport}{self.path}{query}"


def redact_userinfo(text: str) -> str:
    """``text`` with the password of every URL's userinfo shown as ``***``
    (``mysql://root:S3CRET@db`` -> ``mysql://root:***@db``), for messages that quote input."""

    def hide(match: re.Match[str]) -> str:
        netloc = match.group(2)
        userinfo, at, rest = netloc.rpartition("@")
        if not at or ":" not in userinfo:
            return match.group(0)
        return f"{match.group(1)}{userinfo.split(':', 1)[0]}:***@{rest}"

    return re.sub(_NETLOC, hide, text)


# a URL's authority: after "scheme://" (or at the start of a bare HOST:PORT), up to / ? # or
# white space
_NETLOC = r"((?:^|[\s'\"(=])(?:[A-Za-z][A-Za-z0-9+.-]*://)?)([^/?#\s'\"]*@[^/?#\s'\"]*)"


def parse_target(text: str, default_scheme: str = "tcp") -> Target:
    """Parse a target URL or a bare ``host:port``; raise UsageError with a one-line reason
    (quoting the target with any password in it replaced by ``***``)."""
    try:
        return _parse_target(text, default_scheme)
    except UsageError as exc:
        raise UsageError(redact_userinfo(str(exc))) from None


def _parse_target(text: str, default_scheme: str) -> Target:
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
    host = numeric_ipv4(host) or host  # 127.1 is an address, as getaddrinfo reads it
    if not is_ip_literal(host):
        check_name(host)  # a name DNS cannot carry is the user's mistake: exit 2, no query
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if scheme == "tcp" and port is None:
        raise UsageError(f"target {text!r} needs a port (tcp://HOST:PORT)")
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"port out of range in {text!r}")
    user = unquote(parts.username) if parts.username else None
    path, query = parts.path, parts.query
    if scheme in ("http", "https"):
        path, query = _request_target(path, text), _request_target(query, text)
    return Target(scheme, host, port, path, user, query, text)


# what inet_aton (and so getaddrinfo, and the app) reads as an IPv4 address: 1 to 4 parts,
# each decimal, octal (leading 0) or hex (0x): 127.1, 0x7f000001, 2130706433
_NUMERIC_IPV4 = r"(?:0[xX][0-9a-fA-F]+|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]+|[0-9]+)){0,3}"
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


def numeric_ipv4(host: str) -> str | None:
    """The dotted quad for a host that getaddrinfo reads as an IPv4 address without asking
    any resolver (``127.1`` -> ``127.0.0.1``), else None."""
    if not re.fullmatch(_NUMERIC_IPV4, host):
        return None
    import _socket  # the C module: importing socket itself costs a health check ~5 ms

    try:
        return _socket.inet_ntoa(_socket.inet_aton(host))
    except OSError:
        return None


def _request_target(part: str, text: str) -> str:
    """An HTTP path or query as it can go on the request line: a space or a control character
    is a usage error (never blamed on the server), other non-ASCII is percent-encoded."""
    bad = next((c for c in part if ord(c) <= 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        what = "a space" if bad == " " else f"the control character {ord(bad):#04x}"
        raise UsageError(f"{text!r} contains {what}: percent-encode it (a space is %20)")
    if part.isascii():
        return part
    from urllib.parse import quote

    return quote(part, safe=_PRINTABLE_ASCII)


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
