"""Send one dig lookup over UDP or TCP with dig's tries, timeout and truncation retry.

Progress lines dig prints while it works (communication errors, the truncation note) go to
``emit`` as they happen; the reply comes back as a ``digformat.Answer`` with its raw bytes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass

from netdiag.dns import digformat
from netdiag.dns.digargs import (
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    DigExit,
    DigOptions,
    Lookup,
    is_ip_literal,
)

if TYPE_CHECKING:
    from netdiag.dns.resolvconf import ResolvConf

TCP_DEFAULT_TIMEOUT = 10
MAX_UDP = 65535

Emit = Callable[[str], None]


class Server:
    """An address to ask, and the server name the user gave for it."""

    def __init__(self, address: str, port: int, servname: str) -> None:
        self.address, self.port, self.servname = address, port, servname


class LookupResult:
    """What happened to one lookup: the reply (or None) and the errors met on the way."""

    def __init__(self, lookup: Lookup, qname: str) -> None:
        self.lookup = lookup
        self.qname = qname
        self.answer: digformat.Answer | None = None
        self.errors: list[str] = []
        self.refused_tcp = False
        self.skipped = False  # no usable server (e.g. -6 with only IPv4 servers)
        self.bad_packet = False  # a reply came that dig gives up on (unparsable, wrong ID on TCP)


class _TryFailed(Exception):
    def __init__(self, reason: str, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


def resolve_server(
    text: str, port: int, ipv4only: bool = False, ipv6only: bool = False
) -> list[Server]:
    """@server text -> addresses to try (an IP literal, or the host's getaddrinfo answer)."""
    if is_ip_literal(text):
        addrs = [text]
    else:
        try:
            infos = socket.getaddrinfo(text, port, type=socket.SOCK_DGRAM)
        except (OSError, UnicodeError):
            return []
        addrs = []
        for info in infos:
            addr = str(info[4][0])
            if addr not in addrs:
                addrs.append(addr)
    servers = [Server(a, port, text) for a in addrs]
    if ipv4only:
        servers = [s for s in servers if ":" not in s.address]
    return servers


def servers_for(lookup: Lookup, opts: DigOptions, conf: ResolvConf | None) -> list[Server]:
    """@servers of the lookup, else the resolv.conf nameservers (-p overrides their port)."""
    if lookup.servers or conf is None:
        found: list[Server] = []
        for text in lookup.servers:
            found += resolve_server(text, opts.port, opts.ipv4only, opts.ipv6only)
        return found
    return [Server(a, opts.port if opts.port_set else p, a) for a, p in conf.nameservers]


def candidates(name: str, opts: DigOptions, conf: ResolvConf | None) -> list[str]:
    """Query names to try in order, as dig: with +search (off by default) and fewer dots than
    ndots, each search domain and then the name itself; otherwise the name alone."""
    absolute = name if name.endswith(".") else name + "."
    if conf is None or not opts.usesearch or name.endswith(".") or not conf.search:
        return [absolute]
    ndots = conf.ndots if opts.ndots is None else opts.ndots
    searched = [f"{name}.{domain}." for domain in conf.search]
    return [*searched, absolute] if name.count(".") < ndots else [absolute]


NAME_ERRORS = {
    "LabelTooLong": "label too long",
    "EmptyLabel": "empty label",
    "NameTooLong": "name too long",
    "BadEscape": "bad escape",
}


BAD_PACKET = {  # dnspython exception -> BIND's text for the same fault
    "BadPointer": "bad compression pointer",
    "BadLabelType": "bad label type",
    "ShortHeader": "unexpected end of input",
    "FormError": "FORMERR",
}
# What dnspython raises on bytes it cannot read as a message. Besides its own errors, rdata
# constructors reject some values with ValueError/TypeError, and its parser can run past the
# end with struct.error/IndexError (found by tests/test_dns_fuzz.py).
BAD_REPLY_ERRORS = (dns.exception.DNSException, ValueError, TypeError, struct.error, IndexError)


def query_name_or_exit(text: str) -> dns.name.Name:
    """The query name, or dig's fatal 'is not a legal name' (exit 10).

    The name goes out as the bytes given on the command line, as dig (built without IDN
    input conversion) sends it: UTF-8 stays UTF-8, bytes that are not UTF-8 (which Python
    holds as surrogate escapes) stay those bytes; dnspython shows them as \\DDD escapes.
    """
    try:
        return dns.name.from_text(os.fsencode(text))
    except dns.exception.DNSException as exc:
        reason = NAME_ERRORS.get(type(exc).__name__, str(exc))
        raise DigExit(
            10, [f"dig: '{text.removesuffix('.')}' is not a legal name ({reason})"]
        ) from None


def build_query(qname: str, lookup: Lookup) -> dns.message.QueryMessage:
    flags = 0
    for wanted, bit in (
        (lookup.recurse, dns.flags.RD),
        (lookup.adflag, dns.flags.AD),
        (lookup.cdflag, dns.flags.CD),
        (lookup.aaflag, dns.flags.AA),
        (lookup.raflag, dns.flags.RA),
    ):
        if wanted:
            flags |= bit
    options = [dns.edns.CookieOption(os.urandom(8), b"")] if lookup.cookie else []
    return dns.message.make_query(
        query_name_or_exit(qname),
        lookup.rdtype,
        lookup.rdclass,
        use_edns=lookup.edns if lookup.edns >= 0 else False,
        payload=lookup.payload,
        want_dnssec=lookup.dnssec,
        options=options if lookup.edns >= 0 else None,
        flags=flags,
    )


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


@contextlib.contextmanager
def _socket_errors() -> Iterator[None]:
    """Socket errors as one failed try, worded as dig prints them."""
    try:
        yield
    except TimeoutError:
        raise _TryFailed("timed out") from None
    except ConnectionRefusedError:
        raise _TryFailed("connection refused", refused=True) from None
    except OSError as exc:
        raise _TryFailed(exc.strerror or str(exc)) from None


ACCEPT, WAIT, CANCEL = "accept", "wait", "cancel"


class Verdict:
    """What dig does with one received message: ``action`` is ACCEPT (print it), WAIT (keep
    listening for the real reply until the try times out) or CANCEL (end the lookup, which
    dig does not count as unanswered); ``lines`` are what dig prints about it first."""

    def __init__(
        self, action: str, lines: list[str], message: dns.message.Message | None = None
    ) -> None:
        self.action, self.lines, self.message = action, lines, message

    @property
    def reason(self) -> str:
        """The last thing dig said about the message, without its ";; " (for JSON errors)."""
        return self.lines[-1].removeprefix(";; ") if self.lines else ""


def _name_format(name: dns.name.Name) -> str:
    """BIND's dns_name_format: no final dot except for the root."""
    return "." if name == dns.name.root else name.to_text(omit_final_dot=True)


def judge(data: bytes, query: dns.message.Message, tcp: bool) -> Verdict:
    """BIND dig 9.18's checks on a received message, in its order: header size, ID, QR bit,
    parse, opcode, question. Over UDP a mismatch is ignored (a spoofed or stray packet), over
    TCP most of them end the lookup."""
    if len(data) < 12:
        if tcp:
            return Verdict(CANCEL, [";; ERROR: short (< header size) message"])
        return Verdict(WAIT, [";; Warning: short (< header size) message received"])
    rid, flags = struct.unpack("!HH", data[:4])
    lines = []
    if rid != query.id:
        if tcp:
            return Verdict(CANCEL, [f";; ERROR: ID mismatch: expected ID {query.id}, got {rid}"])
        lines.append(f";; Warning: ID mismatch: expected ID {query.id}, got {rid}")
    if not flags & dns.flags.QR:
        lines.append(";; Warning: query response not set")
    if rid != query.id:
        return Verdict(WAIT, lines)
    try:
        message = digformat.parse(data)
    except BAD_REPLY_ERRORS as exc:
        # dig prints the reason and the bytes, then ends the lookup without retrying
        reason = BAD_PACKET.get(type(exc).__name__, "unexpected end of input")
        lines.append(f";; Got bad packet: {reason}\n" + digformat.hexdump(data))
        return Verdict(CANCEL, lines)
    if message.opcode() != query.opcode():
        expected, got = digformat.OPCODES[query.opcode()], digformat.OPCODES[message.opcode()]
        lines.append(f";; Warning: Opcode mismatch: expected {expected}, got {got}")
        return Verdict(WAIT, lines)
    asked = query.question[0]
    for name in dict.fromkeys(q.name for q in message.question):
        wrong = [
            q
            for q in message.question
            if q.name == name
            and (q.name != asked.name or q.rdtype != asked.rdtype or q.rdclass != asked.rdclass)
        ]
        if wrong:
            lines += [
                f";; ;; Question section mismatch: got {_name_format(q.name)}/"
                f"{digformat.type_text(q.rdtype)}/{digformat.class_text(q.rdclass)}"
                for q in wrong
            ]
            return Verdict(CANCEL if tcp else WAIT, lines)
    return Verdict(ACCEPT, lines, message)


def _udp(
    wire: bytes, query: dns.message.Message, server: Server, timeout: float, emit: Emit
) -> tuple[Verdict, bytes, float]:
    with socket.socket(_family(server.address), socket.SOCK_DGRAM) as sock, _socket_errors():
        sock.connect((server.address, server.port))
        started = time.monotonic()
        sock.send(wire)
        deadline = started + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _TryFailed("timed out")
            sock.settimeout(left)
            data = sock.recv(MAX_UDP)
            verdict = judge(data, query, tcp=False)
            if verdict.action != WAIT:
                return verdict, data, started
            _emit_lines(emit, verdict.lines)


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise _TryFailed("end of file")
        buf += chunk
    return buf


def _tcp(
    wire: bytes, query: dns.message.Message, server: Server, timeout: float, emit: Emit
) -> tuple[Verdict, bytes, float]:
    deadline = time.monotonic() + timeout
    with socket.socket(_family(server.address), socket.SOCK_STREAM) as sock, _socket_errors():
        sock.settimeout(timeout)
        sock.connect((server.address, server.port))
        started = time.monotonic()
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        while True:  # dig reads on after a message it ignores, until the try times out
            (length,) = struct.unpack("!H", _recv_exact(sock, 2, deadline))
            data = _recv_exact(sock, length, deadline)
            verdict = judge(data, query, tcp=True)
            if verdict.action != WAIT:
                return verdict, data, started
            _emit_lines(emit, verdict.lines)


def _emit_lines(emit: Emit, lines: list[str]) -> None:
    if lines:
        emit("".join(line if line.endswith("\n") else line + "\n" for line in lines))


def _mixed_classes(message: dns.message.Message) -> bool:
    """Records of another class than the question's: BIND's parser calls that malformed."""
    if not message.question:
        return False
    qclass = message.question[0].rdclass
    if qclass in (dns.rdataclass.ANY, dns.rdataclass.NONE):
        return False
    sections = (message.answer, message.authority, message.additional)
    return any(rrset.rdclass != qclass for section in sections for rrset in section)


def timeout_for(opts: DigOptions, conf: ResolvConf | None, tcp: bool) -> float:
    """Seconds per try: +time, else resolv.conf's "options timeout:", else dig's default."""
    if opts.timeout:
        return opts.timeout
    if conf is not None and conf.timeout_set:
        return conf.timeout
    return TCP_DEFAULT_TIMEOUT if tcp else DEFAULT_TIMEOUT


def query_name(
    qname: str,
    lookup: Lookup,
    opts: DigOptions,
    servers: list[Server],
    emit: Emit,
    conf: ResolvConf | None = None,
) -> LookupResult:
    """Ask the servers in turn until one replies, spending the lookup's tries like dig."""
    result = LookupResult(lookup, qname)
    query = build_query(qname, lookup)
    wire = query.to_wire()
    sent = None
    if lookup.qr:  # +qr: dig prints the query before every try
        sent = digformat.Answer(dns.message.from_wire(wire), wire, "", 0, "", "", 0)
    tcp = lookup.tcp
    # One budget of tries per lookup, as in dig: the first server may use them all, every
    # later server then gets the single try that is left.
    tries = lookup.tries or (
        conf.attempts if conf is not None and conf.attempts_set else DEFAULT_TRIES
    )
    left = tries
    for server in servers:
        while left > 0:
            if sent is not None:
                emit(digformat.render_reply(sent, lookup, opts, sending=True))
            timeout = timeout_for(opts, conf, tcp)
            try:
                exchange = _tcp if tcp else _udp
                verdict, data, started = exchange(wire, query, server, timeout, emit)
            except _TryFailed as failure:
                result.errors.append(f"{server.address}#{server.port}: {failure.reason}")
                if tcp and failure.refused:
                    emit(
                        digformat.tcp_refused(
                            server.address, server.port, server.servname, lookup.name
                        )
                    )
                    emit(digformat.NO_SERVERS)
                    result.refused_tcp = True
                else:
                    emit(digformat.comm_error(server.address, server.port, failure.reason))
                if left == 1:
                    break
                left -= 1
                continue
            elapsed = int((time.monotonic() - started) * 1000)
            _emit_lines(emit, verdict.lines)
            if verdict.message is None:  # a reply dig gives up on: the lookup ends here
                reason = verdict.reason.split("\n", 1)[0]
                result.errors.append(f"{server.address}#{server.port}: {reason}")
                result.bad_packet = True
                return result
            message = verdict.message
            if message.flags & dns.flags.TC and not tcp and not lookup.ignore:
                if lookup.comments and not opts.short:
                    emit(digformat.TRUNCATED)
                tcp = True
                left = tries
                continue
            result.answer = digformat.Answer(
                message,
                data,
                server.address,
                server.port,
                server.servname,
                "TCP" if tcp else "UDP",
                elapsed,
            )
            if _mixed_classes(message):
                emit(";; Warning: Message parser reports malformed message packet.\n")
            for option in query.options:
                if option.otype == dns.edns.OptionType.COOKIE:
                    result.answer.client_cookie = (option.to_wire() or b"")[:8]
            return result
    return result


def run_lookup(
    lookup: Lookup, opts: DigOptions, conf: ResolvConf | None, emit: Emit
) -> LookupResult:
    """All query names for one lookup (search list with +search); stop at the first non-NXDOMAIN."""
    servers = servers_for(lookup, opts, conf)
    if opts.ipv6only:
        for server in [s for s in servers if ":" not in s.address]:
            emit(f";; Skipping mapped address '::ffff:{server.address}'\n")
            servers.remove(server)
        if not servers:
            # dig goes on with the next lookup and does not count this one as failed
            emit(";; No acceptable nameservers\n")
            skipped = LookupResult(lookup, lookup.name)
            skipped.skipped = True
            return skipped
    names = candidates(lookup.name, opts, conf)
    result = LookupResult(lookup, names[0])
    for index, qname in enumerate(names):
        result = query_name(qname, lookup, opts, servers, emit, conf)
        answer = result.answer
        last = index == len(names) - 1
        if answer is None or last or answer.message.rcode() != dns.rcode.NXDOMAIN:
            break
    ndots = opts.ndots if opts.ndots is not None else (conf.ndots if conf is not None else 1)
    as_given = lookup.name.endswith(".") or lookup.name.count(".") >= ndots
    if (
        opts.usesearch
        and as_given
        and result.answer is not None
        and result.answer.message.rcode() == dns.rcode.NXDOMAIN
    ):
        # BIND dig 9.18 prints the statistics twice for a +search name asked as given that
        # gets NXDOMAIN; reproduced so that outputs stay identical.
        result.answer.repeat_stats = True
    return result
