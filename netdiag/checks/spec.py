"""The checks file: an app's network contract as named checks, in TOML, validated strictly.

``load(path)`` returns a ``ChecksFile`` or raises ``SpecError`` whose message names the file,
the line and the key. Nothing here touches the network; passwords are never accepted inline.
"""

from __future__ import annotations

import re
from typing import Any

from netdiag.errors import NetdiagError, UsageError
from netdiag.probes.settings import ProbeFlags, parse_expected
from netdiag.records import field, record
from netdiag.status import Status
from netdiag.targets import Target, parse_target

MAX_FILE_BYTES = 1 << 20
FORMAT_VERSION = 1
TOP_KEYS = {"version", "defaults", "checks"}
DEFAULT_KEYS = {"timeout", "deadline"}
CHECK_KEYS = {
    "target",
    "expect",
    "timeout",
    "description",
    "addresses",
    "http_status",
    "user",
    "password_env",
    "database",
    "table",
    "cert_days",
}
MAX_CERT_DAYS = 3650
MYSQL_ONLY = ("user", "password_env", "database", "table")
# Patterns, compiled (and cached by re) on first use: a command-line check never needs them.
# Matched whole (re.fullmatch): "$" would also accept a trailing newline, which split the output.
_NAME_RE = r"[A-Za-z0-9_.-]{1,64}"
_ENV_RE = r"[A-Za-z_][A-Za-z0-9_]*"
_HTTP_RE = r"(?:[1-5]\d\d|[1-5]xx|[1-5]\d\d-[1-5]\d\d)"


class SpecError(NetdiagError):
    """An invalid checks file; the message is ``FILE:LINE: key: reason``."""


@record
class Check:
    """One named expectation about one target."""

    name: str
    target: Target
    expect: Status = Status.OK
    timeout: float | None = None
    description: str | None = None
    addresses: int | None = None  # the name must resolve to exactly this many addresses
    http_status: list[str] = field(default_factory=list)  # "200", "2xx", "200-204"
    # https:// only: fewer days left on the server's certificate fail the check
    cert_days: int | None = None
    user: str | None = None
    password_env: str | None = None  # reads $VAR or the file named by $VAR_FILE
    database: str | None = None
    table: str | None = None
    line: int | None = None
    # command-line checks only: --password-file, and the app's MYSQL_USER/MYSQL_DB as defaults
    password_file: str | None = None
    app_env: bool = False

    @property
    def needs_login(self) -> bool:
        return self.target.scheme == "mysql" and bool(
            self.user or self.database or self.table or self.password_env
        )

    def probe_flags(self) -> ProbeFlags:
        """This check's settings for ``netdiag.probes.settings.options_for``.

        A file check takes MYSQL_USER/MYSQL_DB from the environment only when it asks for a
        login (``user``, ``password_env``, ``database`` or ``table``); without one it checks the
        greeting, whatever the environment holds.
        """
        return ProbeFlags(
            user=self.user,
            password_file=self.password_file,
            password_env=self.password_env,
            database=self.database,
            table=self.table,
            expect_status=tuple(self.http_status),
            app_env=self.app_env or self.needs_login,
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "target": str(self.target),
            "expect": str(self.expect),
        }
        for key in ("timeout", "description", "addresses", "user", "password_env"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        for key in ("database", "table"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.http_status:
            doc["http_status"] = self.http_status
        if self.cert_days is not None:
            doc["cert_days"] = self.cert_days
        return doc


@record
class ChecksFile:
    path: str
    checks: list[Check]
    timeout: float | None = None
    deadline: float | None = None


def find_line(source: str, *path: str) -> int | None:
    """The 1-based line where the innermost key of ``path`` is defined, best effort.

    Finds the ``[checks.NAME]`` header (or a dotted/inline form) first, then the key below it.
    """
    lines = source.splitlines()
    start: int | None = None
    if not path:
        return None
    if path[0] == "checks" and len(path) >= 2:
        name = re.escape(path[1])
        header = re.compile(rf'^\s*\[\s*checks\s*\.\s*["\']?{name}["\']?\s*\]')
        dotted = re.compile(rf'^\s*checks\s*\.\s*["\']?{name}["\']?\s*[.=]')
        inline = re.compile(rf'^\s*["\']?{name}["\']?\s*=')
        for i, text in enumerate(lines):
            if header.match(text) or dotted.match(text):
                start = i
                break
        else:
            for i, text in enumerate(lines):
                if inline.match(text):
                    start = i
                    break
        if len(path) == 2:
            return None if start is None else start + 1
        key = path[2]
    elif path[0] == "defaults" and len(path) >= 2:
        for i, text in enumerate(lines):
            if re.match(r"^\s*\[\s*defaults\s*\]", text):
                start = i
                break
        key = path[1]
    else:
        key = path[0]
        table = re.compile(rf"^\s*\[+\s*{re.escape(key)}\s*[.\]]")
        for i, text in enumerate(lines):
            if table.match(text) or re.match(rf"^\s*{re.escape(key)}\s*[.=]", text):
                return i + 1
        return None
    key_re = re.compile(rf'(^|[\s{{,.])["\']?{re.escape(key)}["\']?\s*=')
    first = start or 0
    for i in range(first, len(lines)):
        if i > first and re.match(r"^\s*\[", lines[i]):
            break
        if key_re.search(lines[i]):
            return i + 1
    return None if start is None else start + 1


_CHECK_NAME = r"""(?:"([^"\n]*)"|'([^'\n]*)'|([A-Za-z0-9_.-]+))"""


def check_lines(source: str) -> dict[str, int]:
    """Check name -> the 1-based line that opens it, in one pass over the file (a lookup per
    check made parsing quadratic: 4000 checks took 25 s)."""
    header = re.compile(rf"^\s*\[\s*checks\s*\.\s*{_CHECK_NAME}\s*\]")
    dotted = re.compile(rf"^\s*checks\s*\.\s*{_CHECK_NAME}\s*[.=]")
    inline = re.compile(rf"^\s*{_CHECK_NAME}\s*=\s*\{{")
    table, checks_table = re.compile(r"^\s*\["), re.compile(r"^\s*\[\s*checks\s*\]")
    found: dict[str, int] = {}
    in_checks = False
    for number, text in enumerate(source.splitlines(), 1):
        match = header.match(text) or dotted.match(text)
        if match is None and in_checks:
            match = inline.match(text)
        if table.match(text):
            in_checks = bool(checks_table.match(text))
        if match:
            name = next(g for g in match.groups() if g is not None)
            found.setdefault(name, number)
    return found


class _Validator:
    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self.lines = check_lines(source)

    def fail(self, keys: tuple[str, ...], reason: str) -> SpecError:
        line = find_line(self.source, *keys)
        where = f"{self.path}:{line}" if line else self.path
        return SpecError(f"{where}: {'.'.join(keys)}: {reason}")

    def number(self, value: Any, keys: tuple[str, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(keys, f"must be a number of seconds, not {type(value).__name__}")
        if not 0 < value <= 3600:
            raise self.fail(keys, "must be greater than 0 and at most 3600 seconds")
        return float(value)

    def cert_days(self, value: Any, target: Target, keys: tuple[str, ...]) -> int:
        if target.scheme != "https":
            raise self.fail(keys, "only for https:// targets")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(keys, f"must be a whole number of days, not {type(value).__name__}")
        if not 1 <= value <= MAX_CERT_DAYS:
            raise self.fail(keys, f"must be from 1 to {MAX_CERT_DAYS} days")
        return value

    def string(self, value: Any, keys: tuple[str, ...]) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(keys, "must be a non-empty string")
        return value

    def check(self, name: str, table: Any) -> Check:
        here = ("checks", name)
        if not re.fullmatch(_NAME_RE, name):
            if not name.isprintable():  # the message stays one line
                here = ("checks", name.encode("unicode_escape").decode("ascii"))
            raise self.fail(here, "check names use letters, digits, '.', '_' and '-' (1-64)")
        if not isinstance(table, dict):
            raise self.fail(here, "must be a table: [checks.NAME] with target = ...")
        if "password" in table:
            raise self.fail(
                (*here, "password"),
                "passwords are not accepted in checks files; set password_env (default "
                "MYSQL_PASSWORD, read from $VAR or the file named by $VAR_FILE)",
            )
        unknown = sorted(set(table) - CHECK_KEYS)
        if unknown:
            known = ", ".join(sorted(CHECK_KEYS))
            raise self.fail((*here, unknown[0]), f"unknown key (known: {known})")
        if "target" not in table:
            raise self.fail(here, "missing required key 'target'")
        text = self.string(table["target"], (*here, "target"))
        try:
            target = parse_target(text)
        except UsageError as exc:
            raise self.fail((*here, "target"), str(exc)) from None
        check = Check(name, target, line=self.lines.get(name))
        if "expect" in table:
            value = table["expect"]
            try:
                check.expect = Status(value)
            except ValueError:
                allowed = ", ".join(s.value for s in Status)
                raise self.fail(
                    (*here, "expect"), f"{value!r} is not a status ({allowed})"
                ) from None
        if "timeout" in table:
            check.timeout = self.number(table["timeout"], (*here, "timeout"))
        if "description" in table:
            check.description = self.string(table["description"], (*here, "description"))
        if "addresses" in table:
            value = table["addresses"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
                raise self.fail((*here, "addresses"), "must be an integer from 1 to 64")
            if target.host_is_ip:
                raise self.fail((*here, "addresses"), "the target is an IP literal, not a name")
            check.addresses = value
        if "http_status" in table:
            keys = (*here, "http_status")
            if target.scheme not in ("http", "https"):
                raise self.fail(keys, "only for http:// and https:// targets")
            value = table["http_status"]
            items = value if isinstance(value, list) else [value]
            if not items:
                raise self.fail(keys, "must not be empty")
            for item in items:
                spec = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
                if not isinstance(spec, str) or not re.fullmatch(_HTTP_RE, spec):
                    raise self.fail(keys, f'{item!r}: use 200, "2xx", "200-204" or a list')
                check.http_status.append(spec)
            try:  # "599-100" has the shape but no code in it: refuse it here, not every run
                parse_expected(check.http_status)
            except UsageError as exc:
                raise self.fail(keys, str(exc).replace("--expect-status ", "")) from None
        if "cert_days" in table:
            check.cert_days = self.cert_days(table["cert_days"], target, (*here, "cert_days"))
        for key in MYSQL_ONLY:
            if key in table:
                keys = (*here, key)
                if target.scheme != "mysql":
                    raise self.fail(keys, "only for mysql:// targets")
                value = self.string(table[key], keys)
                if key == "password_env" and not re.fullmatch(_ENV_RE, value):
                    raise self.fail(
                        keys, "must be an environment variable name, e.g. MYSQL_PASSWORD"
                    )
                setattr(check, key, value)
        if check.table and not (check.database or target.path.strip("/")):
            raise self.fail((*here, "table"), "needs database = ... (or mysql://HOST/DB)")
        return check

    def document(self, doc: dict[str, Any]) -> ChecksFile:
        unknown = sorted(set(doc) - TOP_KEYS)
        if unknown:
            raise self.fail(
                (unknown[0],), "unknown top-level key (known: version, defaults, checks)"
            )
        version = doc.get("version", FORMAT_VERSION)
        if type(version) is not int or version != FORMAT_VERSION:  # true == 1 and 1.0 == 1
            raise self.fail(("version",), f"unsupported version {doc['version']!r} (this is 1)")
        result = ChecksFile(self.path, [])
        defaults = doc.get("defaults", {})
        if not isinstance(defaults, dict):
            raise self.fail(("defaults",), "must be a table: [defaults]")
        for key, value in defaults.items():
            if key not in DEFAULT_KEYS:
                raise self.fail(("defaults", key), "unknown key (known: deadline, timeout)")
            setattr(result, key, self.number(value, ("defaults", key)))
        checks = doc.get("checks")
        if not isinstance(checks, dict) or not checks:
            raise self.fail(("checks",), "no checks: add [checks.NAME] tables with target = ...")
        result.checks = [self.check(name, table) for name, table in checks.items()]
        return result


def parse(source: str, path: str = "<checks>") -> ChecksFile:
    """Parse and validate checks-file text."""
    import tomllib  # only when a file is read: 3 ms a HEALTHCHECK without -f need not pay

    try:
        doc = tomllib.loads(source)
    except RecursionError:
        raise SpecError(f"{path}: invalid TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib words it "... (at line 3, column 7)": keep that, prefix the file.
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if match:
            reason = message[: match.start()].strip()
            raise SpecError(
                f"{path}:{match.group(1)}:{match.group(2)}: invalid TOML: {reason}"
            ) from None
        raise SpecError(f"{path}: invalid TOML: {message}") from None
    return _Validator(path, source).document(doc)


def load(path: str) -> ChecksFile:
    """Read and validate a checks file (at most 1 MiB); ``-`` reads it from stdin, as dig -f."""
    from netdiag.files import read_bounded

    try:
        if path == "-":
            import sys

            path = "<stdin>"
            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            data = read_bounded(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise SpecError(f"cannot read checks file {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM, as some editors write: not TOML
        data = data[3:]
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(f"{path}:{line}: not UTF-8 text") from None
    return parse(source, path)
