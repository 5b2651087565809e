"""Is what answered the protocol a target expected? And the one line that says it is not:
``3306 speaks HTTP/1.0 (SimpleHTTP/0.6 Python/3.11.7), not MySQL``. Pure functions."""

from __future__ import annotations

from netdiag.probes.identify.model import Identity

EXPECTED_NAMES = {
    "mysql": "MySQL",
    "postgres": "PostgreSQL",
    "postgresql": "PostgreSQL",
    "redis": "Redis",
    "http": "HTTP",
    "https": "HTTPS",
    "amqp": "AMQP",
    "amqps": "AMQP over TLS",
    "ssh": "SSH",
}

# scheme -> identified protocols that serve it
ACCEPTED = {
    "mysql": {"mysql"},
    "postgres": {"postgres"},
    "postgresql": {"postgres"},
    "redis": {"redis"},
    "http": {"http", "http2"},
    "https": {"tls"},
    "amqp": {"amqp"},
    "amqps": {"tls"},
    "ssh": {"ssh"},
}


def matches(scheme: str, identity: Identity) -> bool:
    """True when ``identity`` is what a ``scheme://`` target expects (tcp accepts anything)."""
    accepted = ACCEPTED.get(scheme)
    return accepted is None or identity.protocol in accepted


def mismatch_detail(scheme: str, port: int | None, identity: Identity) -> str:
    """``3306 speaks HTTP/1.0 (SimpleHTTP/0.6 Python/3.11.7), not MySQL``."""
    where = f"{port} " if port is not None else ""
    return f"{where}{identity.detail}, not {EXPECTED_NAMES.get(scheme, scheme)}"
