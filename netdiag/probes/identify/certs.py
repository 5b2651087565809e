"""A server certificate as facts: subject CN, SANs, issuer, validity, days left, self-signed,
and whether it names the host asked for. ``facts(der, host, now)`` is a pure function;
``untrusted`` names what is wrong with a certificate a verification refused, ``expiry``
words the warning for one about to expire.

``cryptography`` (already a dependency through PyMySQL[rsa]) is imported only here, so only a
TLS identification pays for it.
"""

from __future__ import annotations

import contextlib
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


def session(tls: Any, host: str | None) -> dict[str, Any]:
    """Facts of a finished TLS handshake (an ``ssl.SSLSocket`` or ``ssl.SSLObject``): version,
    cipher and, when the server sent one, its certificate (read, never trusted here).

    A verified handshake hands the certificate over already decoded (``getpeercert()``), which
    spares an https health check the import of ``cryptography`` (~50 ms); an unverified one
    (``--insecure``, identification) has only the DER bytes."""
    found: dict[str, Any] = {"tls_version": tls.version()}
    cipher = tls.cipher()
    if cipher:
        found["cipher"], _, found["cipher_bits"] = cipher
    decoded = tls.getpeercert()
    if decoded:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            found["certificate"] = from_peercert(decoded, host)
            return found
    der = tls.getpeercert(binary_form=True)
    if der:
        with contextlib.suppress(ValueError):
            found["certificate"] = facts(der, host)
    return found


# ssl.getpeercert()'s attribute names -> RFC 4514's short names (as cryptography prints them)
_SHORT = {
    "commonName": "CN",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def _dn(rdns: Any) -> tuple[str, str | None]:
    """(RFC 4514 string, CN) of a name as ssl.getpeercert() gives it."""
    parts, cn = [], None
    for rdn in reversed(rdns):  # RFC 4514 lists the most specific first
        pieces = []
        for key, value in rdn:
            if key == "commonName" and cn is None:
                cn = str(value)[:200]
            pieces.append(f"{_SHORT.get(key, key)}={value}")
        parts.append("+".join(pieces))
    return ",".join(parts)[:300], cn


def from_peercert(
    decoded: dict[str, Any], host: str | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The facts of ``facts`` from a certificate ``ssl.getpeercert()`` decoded (a verified
    handshake: the chain was checked, so ``self_signed`` means a trusted self-signed leaf)."""
    import ssl

    now = now or dt.datetime.now(dt.UTC)
    subject, cn = _dn(decoded["subject"])
    issuer, issuer_cn = _dn(decoded["issuer"])
    not_before = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notBefore"]), dt.UTC)
    not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), dt.UTC)
    dns_names: list[str] = []
    ips: list[str] = []
    for kind, value in decoded.get("subjectAltName", ()):
        if kind == "DNS":
            dns_names.append(str(value)[:200])
        elif kind == "IP Address":
            with contextlib.suppress(ValueError):
                ips.append(str(ipaddress.ip_address(str(value).strip())))
    seconds_left = (not_after - now).total_seconds()
    found: dict[str, Any] = {
        "subject": subject,
        "subject_cn": cn,
        "sans": dns_names[:50] + ips[:50],
        "issuer": issuer,
        "issuer_cn": issuer_cn,
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": int(seconds_left // DAY),
        "expired": seconds_left < 0,
        "not_yet_valid": now < not_before,
        "self_signed": decoded["subject"] == decoded["issuer"],
        "serial": str(decoded.get("serialNumber", "")).lower().lstrip("0") or "0",
    }
    if host:
        found["host"] = host
        found["name_matches"] = names_host(host, cn, dns_names, ips)
    return found


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _names(cert: dict[str, Any]) -> str:
    names = list(cert.get("sans") or []) or [cert.get("subject_cn") or "(no name)"]
    shown = ", ".join(names[:3])
    return shown + (f" (+{len(names) - 3})" if len(names) > 3 else "")


def expiry(cert: dict[str, Any]) -> str:
    """``certificate CN=db.example expires in 3 days`` (or ``expired 2 days ago``)."""
    cn = cert.get("subject_cn") or "(none)"
    days = int(cert.get("days_left", 0))
    if cert.get("expired"):
        return f"certificate CN={cn} expired {_days(max(1, -days))} ago"
    if days < 1:
        return f"certificate CN={cn} expires within a day"
    return f"certificate CN={cn} expires in {_days(days)}"


# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code carries them
NOT_YET_VALID, EXPIRED = 9, 10
SELF_SIGNED, SELF_SIGNED_IN_CHAIN = 18, 19
NO_LOCAL_ISSUER, UNVERIFIABLE_LEAF, NO_ISSUER = 20, 21, 2
HOSTNAME_MISMATCH, IP_MISMATCH = 62, 64


def untrusted(cert: dict[str, Any], code: int | None, message: str, host: str | None) -> str:
    """What is wrong with a certificate a verification refused, for people:
    ``self-signed certificate CN=localhost``, ``certificate for other.example, not localhost``;
    the reason OpenSSL gave first (``code``), then what else the facts show."""
    cn = cert.get("subject_cn") or "(none)"
    issuer = cert.get("issuer_cn") or cert.get("issuer") or "(none)"
    host = host or cert.get("host")
    problems = {
        "name": f"for {_names(cert)}, not {host}" if cert.get("name_matches") is False else None,
        "expired": expiry(cert).split(" ", 2)[2] if cert.get("expired") else None,
        "self_signed": "self-signed" if cert.get("self_signed") else None,
    }
    if code in (HOSTNAME_MISMATCH, IP_MISMATCH) or (code is None and problems["name"]):
        said, main = "name", f"certificate for {_names(cert)}, not {host}"
    elif code == EXPIRED or (code is None and problems["expired"]):
        said, main = "expired", expiry(cert)
    elif code == SELF_SIGNED or (code is None and problems["self_signed"]):
        said, main = "self_signed", f"self-signed certificate CN={cn}"
    elif code == NOT_YET_VALID:
        said, main = "", f"certificate CN={cn} not valid before {cert.get('not_before')}"
    elif code == SELF_SIGNED_IN_CHAIN:
        said, main = "", f"certificate CN={cn} chains to a self-signed CA not trusted here"
    elif code in (NO_LOCAL_ISSUER, UNVERIFIABLE_LEAF, NO_ISSUER):
        said, main = "", f"certificate CN={cn} issued by CN={issuer}, an issuer not trusted here"
    else:
        said, main = "", f"certificate CN={cn}: {message}"
    more = [text for key, text in problems.items() if text and key != said]
    return main + (f" ({'; '.join(more)})" if more else "")
