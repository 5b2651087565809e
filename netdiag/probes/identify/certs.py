"""A server certificate as facts: subject CN, SANs, issuer, validity, days left, self-signed,
and whether it names the host asked for. ``facts(der, host, now)`` is a pure function.

``cryptography`` (already a dependency through PyMySQL[rsa]) is imported only here, so only a
TLS identification pays for it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

DAY = 86400.0


def _cn(name: Any) -> str | None:
    from cryptography.x509.oid import NameOID

    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value)[:200] if attrs else None


def _sans(cert: Any) -> tuple[list[str], list[str]]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    names = [str(n)[:200] for n in ext.get_values_for_type(x509.DNSName)][:50]
    ips = [str(a) for a in ext.get_values_for_type(x509.IPAddress)][:50]
    return names, ips


def _self_signed(cert: Any) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # any failure to verify means "not provably self-signed"
        return False
    return True


def dns_name_matches(host: str, pattern: str) -> bool:
    """RFC 6125: exact match, or one leading ``*`` label matching exactly one label."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        rest = pattern[2:]
        head, _, tail = host.partition(".")
        return bool(head) and tail == rest and "." in rest
    return host == pattern


def names_host(host: str, cn: str | None, dns_names: list[str], ips: list[str]) -> bool:
    """Does a certificate with these names serve ``host`` (a name or an IP literal)?"""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return str(address) in ips
    candidates = dns_names or ([cn] if cn else [])
    return any(dns_name_matches(host, p) for p in candidates)


def facts(der: bytes, host: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Facts about a DER certificate; raises ValueError when the bytes are not one."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except Exception as exc:  # cryptography raises several types for malformed input
        raise ValueError(f"not a certificate: {exc}") from None
    now = now or dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    cn = _cn(cert.subject)
    dns_names, ips = _sans(cert)
    seconds_left = (not_after - now).total_seconds()
    found: dict[str, Any] = {
        "subject": cert.subject.rfc4514_string()[:300],
        "subject_cn": cn,
        "sans": dns_names + ips,
        "issuer": cert.issuer.rfc4514_string()[:300],
        "issuer_cn": _cn(cert.issuer),
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": int(seconds_left // DAY),
        "expired": seconds_left < 0,
        "not_yet_valid": now < not_before,
        "self_signed": _self_signed(cert),
        "serial": f"{cert.serial_number:x}",
    }
    if host:
        found["host"] = host
        found["name_matches"] = names_host(host, cn, dns_names, ips)
    return found


def summary(cert: dict[str, Any]) -> str:
    """``certificate CN=db.example, self-signed, expires in 3 days`` for people."""
    parts = [f"certificate CN={cert.get('subject_cn') or '(none)'}"]
    if cert.get("self_signed"):
        parts.append("self-signed")
    if cert.get("name_matches") is False:
        parts.append(f"not valid for {cert.get('host')}")
    days = cert.get("days_left")
    if cert.get("expired"):
        parts.append(f"expired {-days} days ago" if days is not None else "expired")
    elif days is not None and days < 30:
        parts.append(f"expires in {days} days")
    return ", ".join(parts)
