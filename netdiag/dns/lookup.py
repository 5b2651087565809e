"""Name to addresses the way an application's getaddrinfo does it, with typed failures.

/etc/hosts first, then A and AAAA through the resolv.conf nameservers, following search and
ndots. Unlike getaddrinfo it says *why* a name failed.

API (stable; probe, check, wait, doctor, scan and self build on it):

- ``resolve(name, conf=None, timeout=None, families=("A", "AAAA")) -> Lookup`` or raises
  ``LookupFailure`` (``.kind`` a ``FailureKind``, ``.detail`` one line naming the rcode or the
  fault and the server, ``.rcode`` BIND's rcode name when a server answered with one) or
  ``BadName`` (a ``UsageError``: the name cannot be asked at all, so nothing was sent).
- ``query(qname, rdtype, conf, deadline) -> Outcome``: one question, asked of the
  nameservers in turn; ``Outcome.kind`` is None when the reply holds records of ``rdtype``,
  else the ``FailureKind`` that explains why not.
- ``ask(qname, rdtype, conf, deadline) -> (reply, server)``: the first usable reply (any
  rcode) and who sent it, or (None, None); ``reply_status(reply)`` names it in the same
  vocabulary (``ok`` or a ``FailureKind`` value; None is ``no_reply``, so use ``query`` where
  a malformed reply must be told from none).
- ``check_name(name)``: raise ``BadName`` unless ``name`` fits DNS (labels of 1-63 bytes, at
  most 255 bytes on the wire).

``FailureKind`` values (strings in JSON, e.g. probe's ``facts.dns_error``):

==============  ===========================================================================
``nxdomain``    every name tried does not exist (NXDOMAIN)
``no_data``     NOERROR without a record of the asked type
``servfail``    the resolver answered SERVFAIL
``refused``     the resolver answered REFUSED
``formerr``     the resolver answered FORMERR (it could not read our query)
``notimp``      the resolver answered NOTIMP (it does not implement the query)
``other_rcode`` any other rcode (YXDOMAIN ... RESERVED15, BADVERS, ...): named in the detail
``malformed``   something came back that is not a usable reply to our query: bytes that do
                not parse, the wrong ID, no QR bit, another opcode or question
``no_reply``    nothing came back before the timeout (or the socket failed)
==============  ===========================================================================

When several names (search list) or families disagree, the worst is reported, in the order
no_reply, malformed, servfail, refused, formerr, notimp, other_rcode, no_data, nxdomain;
``nxdomain`` only when every name was NXDOMAIN. Reads are bounded: one datagram of at most
64 KiB, or one TCP message of at most 64 KiB, per try.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from netdiag.dns.name import BadName, check_name, is_ip_literal, shorten
from netdiag.dns.rcodes import rcode_text
from netdiag.dns.resolvconf import ResolvConf, load, server_text

if TYPE_CHECKING:
    import dns.message

HOSTS_PATH = "/etc/hosts"
MAX_MESSAGE = 65535


class FailureKind(StrEnum):
    """Why a name did not resolve; the string values are part of netdiag's JSON."""

    NXDOMAIN = "nxdomain"
    NO_DATA = "no_data"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    FORMERR = "formerr"
    NOTIMP = "notimp"
    OTHER_RCODE = "other_rcode"
    MALFORMED = "malformed"
    NO_REPLY = "no_reply"


#: Worst first: the kind reported when names or families disagree (NXDOMAIN only if all agree).
SEVERITY = [
    FailureKind.NO_REPLY,
    FailureKind.MALFORMED,
    FailureKind.SERVFAIL,
    FailureKind.REFUSED,
    FailureKind.FORMERR,
    FailureKind.NOTIMP,
    FailureKind.OTHER_RCODE,
    FailureKind.NO_DATA,
    FailureKind.NXDOMAIN,
]
RCODE_KINDS = {
    1: FailureKind.FORMERR,
    2: FailureKind.SERVFAIL,
    3: FailureKind.NXDOMAIN,
    4: FailureKind.NOTIMP,
    5: FailureKind.REFUSED,
}
RCODE_HINTS = {
    FailureKind.FORMERR: " (the resolver could not read the query)",
    FailureKind.NOTIMP: " (the resolver does not implement this query)",
}


class LookupFailure(Exception):
    """A name did not resolve: ``kind`` says why, ``detail`` says it in one line."""

    def __init__(self, kind: FailureKind | str, detail: str, rcode: str | None = None) -> None:
        super().__init__(detail)
        self.kind = FailureKind(kind)
        self.detail = detail
        self.rcode = rcode  # BIND's name of the rcode a server answered with, if one did


@dataclass
class Lookup:
    """Addresses found for ``name`` (in answer order), which query name matched, and from where."""

    name: str
    addresses: list[str]
    qname: str
    source: str  # "literal", "hosts" or "ADDR#PORT" of the nameserver
    elapsed_ms: float
    ttl: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """One question's fate: the reply used (or None), who sent it, and what it means."""

    qname: str
    rdtype: str
    reply: dns.message.Message | None = None
    server: tuple[str, int] | None = None
    kind: FailureKind | None = None  # None: NOERROR with records of rdtype
    detail: str = ""  # why not, in words ("" when kind is None)
    rcode: str | None = None  # BIND's name of the reply's rcode, when there is a reply


def _hosts_lookup(name: str, path: str = HOSTS_PATH) -> list[str]:
    wanted = name.rstrip(".").lower()
    found: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(256 * 1024).splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split("#", 1)[0].split()
        matches = len(fields) >= 2 and wanted in (f.lower() for f in fields[1:])
        if matches and fields[0] not in found:
            found.append(fields[0])
    return found


def candidates(name: str, conf: ResolvConf) -> list[str]:
    """Query names to try in order, per resolv(5): ndots decides whether search comes first."""
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{domain}." for domain in conf.search]
    if name.count(".") >= conf.ndots:
        return [f"{name}.", *searched]
    return [*searched, f"{name}."]


class _Malformed(Exception):
    """What came back was not a usable reply to our query (the text says what it was)."""


class _NoReply(Exception):
    pass


BAD_PACKET = {  # dnspython exception -> words for the fault (dig's where it has them)
    "BadPointer": "bad compression pointer",
    "BadLabelType": "bad label type",
    "ShortHeader": "shorter than a DNS header",
    "FormError": "cut short or inconsistent",
    "BadEDNS": "bad OPT record",
    "BadTSIG": "bad TSIG record",
    "LabelTooLong": "a label over 63 bytes",
    "NameTooLong": "a name over 255 bytes",
    "PointerChainTooLong": "a compression pointer chain over 16 hops",
}


def _read(data: bytes, query: dns.message.Message) -> dns.message.Message:
    """``data`` as the reply to ``query``, or ``_Malformed`` saying why it is not one."""
    import dns.exception
    import dns.message

    try:
        # A TSIG is read, not verified: we sent none. Trailing bytes are ignored, as glibc does.
        reply = dns.message.from_wire(data, ignore_trailing=True, keyring=False)
    except (dns.exception.DNSException, ValueError, TypeError, struct.error, IndexError) as exc:
        name = type(exc).__name__
        raise _Malformed(f"unparsable ({BAD_PACKET.get(name, name)})") from None
    if not reply.flags & 0x8000:
        raise _Malformed("the QR bit is not set (a query, not a reply)")
    if reply.opcode() != query.opcode():
        raise _Malformed(f"opcode {reply.opcode()} instead of {query.opcode()}")
    asked = query.question[0]
    if not reply.question and reply.rcode() in RCODE_KINDS:
        return reply  # error replies may leave the question out (RFC 1035 allows it)
    if len(reply.question) != 1 or (
        reply.question[0].name,
        reply.question[0].rdtype,
        reply.question[0].rdclass,
    ) != (asked.name, asked.rdtype, asked.rdclass):
        got = ", ".join(q.to_text() for q in reply.question) or "none"
        raise _Malformed(f"the reply is for another question ({shorten(got, 60)})")
    return reply


def _recv_exact(sock: socket.socket, n: int, deadline: float, started: bool) -> bytes:
    """``n`` bytes; a close before the first byte of a reply is no reply, later it is a cut."""
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _NoReply
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if buf or started:
                raise _Malformed("the TCP connection closed in the middle of the reply")
            raise _NoReply
        buf += chunk
    return buf


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _udp(query: dns.message.Message, server: tuple[str, int], timeout: float) -> bytes:
    """The first datagram that carries our ID and a header; strays are skipped but noted."""
    wire = query.to_wire()
    first_stray, strays = "", 0
    with socket.socket(_family(server[0]), socket.SOCK_DGRAM) as sock:
        sock.connect(server)  # the kernel drops datagrams from anyone else
        sock.send(wire)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(MAX_MESSAGE)
            except TimeoutError:
                break
            if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == query.id:
                return data
            strays += 1
            if len(data) < 12:
                first_stray = first_stray or f"a {len(data)}-byte datagram (no DNS header)"
            else:
                got = struct.unpack("!H", data[:2])[0]
                first_stray = first_stray or f"a reply with ID {got} instead of {query.id}"
    if strays:
        more = f" (and {strays - 1} more)" if strays > 1 else ""
        raise _Malformed(f"only {first_stray}{more}")
    raise _NoReply


def _tcp(query: dns.message.Message, server: tuple[str, int], timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    wire = query.to_wire()
    with socket.socket(_family(server[0]), socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(server)
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        (length,) = struct.unpack("!H", _recv_exact(sock, 2, deadline, started=False))
        data = _recv_exact(sock, length, deadline, started=True)
    if len(data) < 12:
        raise _Malformed(f"a {len(data)}-byte TCP message (no DNS header)")
    if struct.unpack("!H", data[:2])[0] != query.id:
        got = struct.unpack("!H", data[:2])[0]
        raise _Malformed(f"a reply with ID {got} instead of {query.id}")
    return data


def _exchange(
    query: dns.message.Message, server: tuple[str, int], timeout: float
) -> dns.message.Message:
    """One try with one server: UDP, then TCP when the reply is truncated (the embedded DNS
    truncates big answers). Raises ``_NoReply`` or ``_Malformed``."""
    started = time.monotonic()
    try:
        reply = _read(_udp(query, server, timeout), query)
        if reply.flags & 0x0200:  # TC
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise _NoReply
            reply = _read(_tcp(query, server, left), query)
    except (TimeoutError, OSError):
        raise _NoReply from None
    return reply


def classify(reply: dns.message.Message, rdtype: str) -> FailureKind | None:
    """None when ``reply`` is NOERROR with records of ``rdtype``; else why it is not."""
    import dns.rdatatype

    rcode = reply.rcode()
    if rcode == 0:
        wanted = dns.rdatatype.from_text(rdtype)
        has = any(rrset.rdtype == wanted and rrset.rdclass == 1 for rrset in reply.answer)
        return None if has else FailureKind.NO_DATA
    return RCODE_KINDS.get(rcode, FailureKind.OTHER_RCODE)


def query(qname: str, rdtype: str, conf: ResolvConf, deadline: float) -> Outcome:
    """Ask ``qname``/``rdtype`` of each nameserver in turn, ``conf.attempts`` rounds, until one
    gives a usable reply (any rcode) or ``deadline`` (monotonic) passes. Raises ``BadName``
    if ``qname`` cannot be put in a query."""
    import dns.exception
    import dns.message
    import dns.rdatatype

    wanted = dns.rdatatype.from_text(rdtype)
    try:
        message = dns.message.make_query(qname, wanted)
    except dns.exception.DNSException as exc:  # LabelTooLong, EmptyLabel, NameTooLong, IDNA
        raise BadName(f"invalid DNS name {shorten(qname)!r}: {exc}") from None
    outcome = Outcome(qname, rdtype)
    malformed: list[str] = []
    for _ in range(conf.attempts):
        for server in conf.nameservers:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                reply = _exchange(message, server, min(conf.timeout, left))
            except _NoReply:
                continue
            except _Malformed as bad:
                malformed.append(f"from {server_text(*server)}: {bad}")
                continue
            outcome.reply, outcome.server = reply, server
            outcome.rcode = rcode_text(reply.rcode())
            outcome.kind = classify(reply, rdtype)
            if outcome.kind is not None:
                outcome.detail = f"{outcome.rcode} from {server_text(*server)}"
                outcome.detail += RCODE_HINTS.get(outcome.kind, "")
                if outcome.kind == FailureKind.OTHER_RCODE:
                    outcome.detail = (
                        f"rcode {outcome.rcode} ({reply.rcode()}) from {server_text(*server)}"
                    )
                elif outcome.kind == FailureKind.NO_DATA:
                    outcome.detail = (
                        f"no {rdtype} records (NOERROR, empty answer) from {server_text(*server)}"
                    )
            return outcome
    if malformed:
        outcome.kind = FailureKind.MALFORMED
        outcome.detail = f"malformed reply to {qname} {rdtype} {malformed[0]}"
    else:
        outcome.kind = FailureKind.NO_REPLY
        servers = ", ".join(conf.server_texts)
        outcome.detail = f"no reply from resolver {servers}"
    return outcome


def ask(
    qname: str, rdtype: str, conf: ResolvConf, deadline: float
) -> tuple[dns.message.Message | None, tuple[str, int] | None]:
    """The first usable reply (any rcode) from any nameserver, and who sent it; (None, None)
    when none came, or when ``qname`` cannot be asked at all (``query`` says which)."""
    try:
        outcome = query(qname, rdtype, conf, deadline)
    except BadName:
        return None, None
    return outcome.reply, outcome.server


def _as_query_name(qname: str) -> bool:
    """Whether dnspython can put ``qname`` in a query (search domains can push it over 255)."""
    import dns.exception
    import dns.name

    try:
        dns.name.from_text(qname)
    except dns.exception.DNSException:
        return False
    return True


def reply_status(reply: dns.message.Message | None) -> str:
    """One word for a reply (from ``ask``), in ``FailureKind``'s vocabulary: ``ok`` (NOERROR
    with records), else a ``FailureKind`` value (``no_reply`` for None). ``query`` tells a
    malformed reply from none; ``ask`` cannot."""
    if reply is None:
        return FailureKind.NO_REPLY
    rcode = reply.rcode()
    if rcode == 0:
        return "ok" if any(len(rrset) for rrset in reply.answer) else FailureKind.NO_DATA
    return RCODE_KINDS.get(rcode, FailureKind.OTHER_RCODE)


def resolve(
    name: str,
    conf: ResolvConf | None = None,
    timeout: float | None = None,
    families: tuple[str, ...] = ("A", "AAAA"),
) -> Lookup:
    """Resolve ``name`` to addresses within ``timeout`` seconds; raise ``LookupFailure``
    (why not) or ``BadName`` (a usage error: the name cannot be asked, nothing is sent)."""
    start = time.monotonic()
    if is_ip_literal(name):
        return Lookup(name, [name], name, "literal", 0.0)
    check_name(name)
    if not _as_query_name(name if name.endswith(".") else name + "."):
        raise BadName(f"invalid DNS name {shorten(name)!r}")
    hosts = _hosts_lookup(name)
    if hosts:
        return Lookup(name, hosts, name, "hosts", (time.monotonic() - start) * 1000)
    conf = conf or load()
    deadline = start + (timeout if timeout is not None else conf.timeout * conf.attempts)
    failures: list[Outcome] = []
    all_nxdomain = True
    for qname in candidates(name, conf):
        if not _as_query_name(qname):
            continue  # glibc too skips a search name that does not fit in 255 bytes
        addresses: list[str] = []
        ttl: int | None = None
        answered_by: tuple[str, int] | None = None
        outcomes = [query(qname, rdtype, conf, deadline) for rdtype in families]
        for outcome in outcomes:
            if outcome.reply is None:
                continue
            answered_by = answered_by or outcome.server
            for rrset in outcome.reply.answer:
                # A, AAAA of class IN only: other classes parse as other rdata (no .address).
                # CNAME chains are followed by the server.
                if rrset.rdtype in (1, 28) and rrset.rdclass == 1:
                    ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
                    addresses += [r.address for r in rrset if r.address not in addresses]
        if addresses and answered_by:
            elapsed = (time.monotonic() - start) * 1000
            return Lookup(name, addresses, qname, server_text(*answered_by), elapsed, ttl)
        # A family that got an answer speaks for the name; one that got none only when no
        # family did (an empty AAAA beside a lost A is no_reply, not no_data).
        replied = [o for o in outcomes if o.reply is not None]
        failures += replied or outcomes
        all_nxdomain &= bool(replied) and all(o.kind == FailureKind.NXDOMAIN for o in replied)
    raise _failure(name, conf, failures, all_nxdomain)


def _failure(
    name: str, conf: ResolvConf, failures: list[Outcome], all_nxdomain: bool
) -> LookupFailure:
    servers = ", ".join(conf.server_texts)
    if not failures:  # no query name fitted in a DNS message
        return LookupFailure(FailureKind.NO_DATA, f"{name}: no query name fits in DNS")
    if all_nxdomain:
        return LookupFailure(FailureKind.NXDOMAIN, f"{name}: NXDOMAIN from {servers}", "NXDOMAIN")
    worst = min(failures, key=lambda o: SEVERITY.index(o.kind or FailureKind.NO_DATA))
    kind = worst.kind or FailureKind.NO_DATA
    if kind == FailureKind.NO_REPLY:
        hint = ""
        if conf.is_docker_embedded:
            hint = (
                " (Docker's embedded DNS gives no reply for unknown names on --internal networks)"
            )
        return LookupFailure(kind, f"no reply from resolver {servers} for {name}{hint}")
    if kind == FailureKind.NO_DATA:
        return LookupFailure(
            kind, f"{name}: no address records (NOERROR, empty answer) from {servers}", "NOERROR"
        )
    if kind == FailureKind.NXDOMAIN:  # mixed with no_data on another name: that one wins
        return LookupFailure(kind, f"{name}: NXDOMAIN from {servers}", "NXDOMAIN")
    return LookupFailure(kind, f"{name}: {worst.detail}", worst.rcode)
