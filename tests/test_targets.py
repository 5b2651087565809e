"""Target URL parsing: the contract every command shares."""

import pytest

from netdiag.errors import UsageError
from netdiag.targets import parse_target


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "path"),
    [
        ("tcp://db:5000", "tcp", "db", 5000, ""),
        ("db:5000", "tcp", "db", 5000, ""),
        ("mysql://mysql", "mysql", "mysql", 3306, ""),
        ("mysql://mysql:3307", "mysql", "mysql", 3307, ""),
        ("postgres://pg", "postgres", "pg", 5432, ""),
        ("postgresql://pg", "postgres", "pg", 5432, ""),
        ("redis://cache", "redis", "cache", 6379, ""),
        ("http://web/health", "http", "web", 80, "/health"),
        ("https://web:8443/", "https", "web", 8443, "/"),
        ("dns://mysql", "dns", "mysql", None, ""),
        ("tcp://[::1]:80", "tcp", "::1", 80, ""),
        ("[::1]:80", "tcp", "::1", 80, ""),
        ("MYSQL://Db", "mysql", "db", 3306, ""),
    ],
)
def test_parses(text: str, scheme: str, host: str, port: int | None, path: str) -> None:
    t = parse_target(text)
    assert (t.scheme, t.host, t.port, t.path) == (scheme, host, port, path)
    assert t.raw == text


def test_user_kept_and_rendered() -> None:
    t = parse_target("mysql://todo@mysql/todos")
    assert t.user == "todo"
    assert str(t) == "mysql://todo@mysql:3306/todos"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty target"),
        ("db", "needs a port"),
        ("tcp://db", "needs a port"),
        ("ftp://db:21", "unknown scheme"),
        ("tcp://db:99999", "invalid port"),
        ("tcp://db:0", "port out of range"),
        ("tcp://:80", "no host"),
        ("mysql", "has no host"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_target(text)


def test_password_in_url_rejected_without_echo() -> None:
    with pytest.raises(UsageError) as info:
        parse_target("mysql://todo:s3cr3t-pw@mysql")
    assert "s3cr3t-pw" not in str(info.value)
    assert "password-file" in str(info.value)
