"""DNS rcode names as BIND prints them (dig's status line, netdiag's failure details)."""

from __future__ import annotations

NAMES = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    *(f"RESERVED{i}" for i in range(11, 16)),
    "BADVERS",
]
BADCOOKIE = 23


def rcode_text(rcode: int) -> str:
    """BIND's name for ``rcode`` (RESERVED11-15, BADVERS, BADCOOKIE included), else "?N"."""
    if 0 <= rcode < len(NAMES):
        return NAMES[rcode]
    return "BADCOOKIE" if rcode == BADCOOKIE else f"?{rcode}"
