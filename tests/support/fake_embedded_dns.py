"""A loopback DNS server that answers like Docker's embedded DNS (dockerd 20.10), for tests.

It listens on 127.0.0.1 (or ``host``, e.g. ``::1``) on one ephemeral port for both UDP and TCP and answers from a records
table: TTL 600, RA set, AA clear, RD copied, names never compressed, no OPT record on local
answers even when the query carries EDNS (names listed in ``edns_names`` do echo an OPT record,
like upstream answers Docker forwards). A known name with no record of the asked type is an
empty NOERROR; ``rcodes`` forces a status for a name; unknown names get ``unknown_rcode``
(NXDOMAIN) or, with ``unknown_rcode=None``, no answer at all (Docker on an --internal network); ``no_ra``
clears RA (a server that does not recurse).
Over UDP a reply larger than max(512, EDNS payload size) is cut to whole records that fit and
has TC set; over TCP it is whole. ``silent_port`` is a second port whose UDP and TCP sockets
are bound but never answer.

Hostile replies (issue 14): a name ``BEHAVIOUR.hostile.test`` (any type, any records table)
gets the misbehaviour listed in ``HOSTILE`` instead of an answer: the wrong ID, duplicate
records, TTL 0xFFFFFFFF, any rcode (``rcode-N``, 0-4095, the high bits in an OPT record), a
TSIG-signed reply, no QR bit, a short or unparsable message, another opcode or question.
Others may reuse it with records of their own::

    with FakeEmbeddedDNS({"db": {"A": ["10.0.0.2"]}}) as dns:
        run(["dig", "@127.0.0.1", "-p", str(dns.port), "db"])

Run it alone with ``python -m tests.support.fake_embedded_dns`` (prints the ports).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename

TTL = 600
SERVER_COOKIE = "5e7c00c1e5e7c001"
NETWORK = "ndnet"

#: Records of the default lab: owner name (no trailing dot) -> type -> rdata texts.
DEFAULT_RECORDS: dict[str, dict[str, list[str]]] = {
    "mysql": {"A": ["10.213.7.2", "10.213.7.3"]},
    "db": {"A": ["10.213.7.2"]},
    "db.ndnet": {"A": ["10.213.7.2"]},
    "app": {"A": ["10.213.7.4"]},
    "app.ndnet": {"A": ["10.213.7.4"]},
    "v6host": {"A": ["10.213.7.5"], "AAAA": ["fd00:213::5"]},
    "a-rather-long-container-name.ndnet": {"A": ["10.213.7.6"]},
    "sixty-records-here.ndnet": {"A": [f"10.213.8.{i}" for i in range(1, 61)]},
    "2.7.213.10.in-addr.arpa": {"PTR": ["db.ndnet."]},
    "3.7.213.10.in-addr.arpa": {"PTR": ["mysqldb.ndnet."]},
    "4.7.213.10.in-addr.arpa": {"PTR": ["app.ndnet."]},
    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.1.2.0.0.0.d.f.ip6.arpa": {
        "PTR": ["v6host.ndnet."]
    },
    "web": {"CNAME": ["app.ndnet."]},
    "mail.example.test": {
        "MX": ["10 mx1.example.test.", "20 mx2.example.test."],
        "TXT": ['"v=spf1 -all"', '"two" "strings here"', '"semi;colon\\"quote"'],
        "NS": ["ns1.example.test."],
        "SOA": ["ns1.example.test. hostmaster.example.test. 2026112701 3600 600 86400 60"],
    },
    "_mysql._tcp.example.test": {"SRV": ["0 5 3306 db.ndnet."]},
    "edns.example.test": {"A": ["10.213.9.1"]},
}
DEFAULT_RCODES = {"gone.example.test": "NXDOMAIN", "broken.example.test": "SERVFAIL"}
DEFAULT_EDNS_NAMES = frozenset({"edns.example.test", "gone.example.test"})
#: Authority records sent with a forced rcode, as an upstream server would (owner, type, rdata).
DEFAULT_AUTHORITY = {
    "gone.example.test": [
        (
            "example.test",
            "SOA",
            "ns1.example.test. hostmaster.example.test. 2026112701 3600 600 86400 60",
        )
    ]
}


def _key(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


HOSTILE_ZONE = "hostile.test"
#: TSIG key the ``tsig`` behaviour signs with, and the fixed time it signs at.
TSIG_KEY = ("hostile-key.", "bmV0ZGlhZy1ob3N0aWxlLXRzaWcta2V5")
TSIG_TIME = 1_700_000_000


def _rr_wire(owner: str, rdtype: str, text: str, ttl: int = TTL) -> bytes:
    """One resource record in wire format with no name compression anywhere (like Docker)."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=dns.name.root)
    body = rdata.to_wire(compress=None, origin=dns.name.root) or b""
    name = dns.name.from_text(owner).to_wire()
    return name + struct.pack("!HHIH", rdata.rdtype, dns.rdataclass.IN, ttl, len(body)) + body


class FakeEmbeddedDNS:
    """The server; start()/stop() or use as a context manager. ``queries`` logs (proto, qname, qtype)."""

    def __init__(
        self,
        records: dict[str, dict[str, list[str]]] | None = None,
        rcodes: dict[str, str] | None = None,
        edns_names: frozenset[str] | set[str] | None = None,
        authority: dict[str, list[tuple[str, str, str]]] | None = None,
        unknown_rcode: str | None = "NXDOMAIN",
        host: str = "127.0.0.1",
        no_ra: bool = False,
    ) -> None:
        defaults = records is None
        self.records = {k.rstrip(".").lower(): v for k, v in (records or DEFAULT_RECORDS).items()}
        self.rcodes = {k.rstrip(".").lower(): v for k, v in (rcodes or {}).items()}
        self.edns_names = set(edns_names or ())
        self.authority = dict(authority or {})
        if defaults:
            self.rcodes = {**DEFAULT_RCODES, **self.rcodes}
            self.edns_names |= DEFAULT_EDNS_NAMES
            self.authority = {**DEFAULT_AUTHORITY, **self.authority}
        self.unknown_rcode = unknown_rcode
        self.host = host
        self.no_ra = no_ra
        self.port = 0
        self.silent_port = 0
        self.queries: list[tuple[str, str, str]] = []
        self.query_ids: list[int] = []
        self.tsig_macs: list[bytes] = []  # MACs of the TSIG-signed replies sent, in order
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- answering (pure) ------------------------------------------------------------------
    def answer(self, wire: bytes, proto: str) -> bytes | None:
        """The reply to one query message, or None when Docker would stay silent."""
        replies = self.replies(wire, proto)
        return replies[0] if replies else None

    def replies(self, wire: bytes, proto: str) -> list[bytes]:
        """Every message sent back for one query, in order (hostile names may send several)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return []
        if not query.question or query.opcode() != dns.opcode.QUERY:
            return []
        q = query.question[0]
        key = _key(q.name)
        self.queries.append((proto, key, dns.rdatatype.to_text(q.rdtype)))
        self.query_ids.append(query.id)
        if key.endswith("." + HOSTILE_ZONE):
            return hostile_replies(self, query, key.split(".", 1)[0], proto)
        reply = self._answer(query, key, proto)
        return [reply] if reply is not None else []

    def _answer(self, query: dns.message.Message, key: str, proto: str) -> bytes | None:
        q = query.question[0]
        answers: list[bytes] = []
        authority: list[bytes] = []
        if key in self.rcodes:
            rcode = dns.rcode.from_text(self.rcodes[key])
            authority = [_rr_wire(*a) for a in self.authority.get(key, [])]
        elif key in self.records:
            rcode = dns.rcode.NOERROR
            by_type = self.records[key]
            wanted = dns.rdatatype.to_text(q.rdtype)
            types = [wanted] if wanted in by_type else []
            if not types and "CNAME" in by_type:
                types = ["CNAME"]
            owner = q.name.to_text()
            answers = [_rr_wire(owner, t, text) for t in types for text in by_type[t]]
        elif self.unknown_rcode is None:
            return None
        else:
            rcode = dns.rcode.from_text(self.unknown_rcode)
        additional: list[bytes] = []
        if key in self.edns_names and query.edns >= 0:
            # OPT: root owner, type 41, class = payload size, ttl = ext-rcode/version/flags.
            # A client COOKIE is echoed with an 8-byte server cookie, as upstream resolvers do.
            options = b""
            for option in query.options:
                if option.otype == 10:  # COOKIE
                    body = (option.to_wire() or b"")[:8] + bytes.fromhex(SERVER_COOKIE)
                    options += struct.pack("!HH", 10, len(body)) + body
            additional.append(b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(options)) + options)
        flags = 0x8000 | (query.flags & 0x0100) | (0 if self.no_ra else 0x0080) | (rcode & 0xF)
        question = q.name.to_wire() + struct.pack("!HH", q.rdtype, q.rdclass)
        limit = max(512, query.payload if query.edns >= 0 else 512)

        def build(ans: list[bytes], tc: bool) -> bytes:
            head = struct.pack(
                "!HHHHHH",
                query.id,
                flags | (0x0200 if tc else 0),
                1,
                len(ans),
                len(authority),
                len(additional),
            )
            return head + question + b"".join(ans) + b"".join(authority) + b"".join(additional)

        reply = build(answers, False)
        if proto == "udp" and len(reply) > limit:
            kept = list(answers)
            while kept and len(build(kept, True)) > limit:
                kept.pop()
            reply = build(kept, True)
        return reply

    # -- sockets -----------------------------------------------------------------------------
    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self._socks += [udp, tcp]
            return udp, tcp
        raise RuntimeError("no free port for UDP and TCP together")

    def _serve_udp(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            for reply in self.replies(data, "udp"):
                with contextlib.suppress(OSError):
                    sock.sendto(reply, peer)

    def _serve_tcp(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            try:
                while not self._stop.is_set():
                    head = self._recv_exact(conn, 2)
                    if head is None:
                        return
                    body = self._recv_exact(conn, struct.unpack("!H", head)[0])
                    if body is None:
                        return
                    for reply in self.replies(body, "tcp"):
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    @staticmethod
    def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def start(self) -> FakeEmbeddedDNS:
        udp, tcp = self._bind_pair()
        self.port = udp.getsockname()[1]
        silent_udp, _ = self._bind_pair()
        self.silent_port = silent_udp.getsockname()[1]
        for target, sock in ((self._serve_udp, udp), (self._serve_tcp, tcp)):
            thread = threading.Thread(target=target, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._socks:
            sock.close()
        self._socks.clear()
        self._threads.clear()

    def __enter__(self) -> FakeEmbeddedDNS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- hostile replies ----------------------------------------------------------------------------
def _address_rr(
    q: dns.rrset.RRset, index: int, ttl: int = TTL, owner: bytes | None = None
) -> bytes:
    """An A (or, for AAAA questions, AAAA) record 10.213.9.INDEX / fd00:213:9::INDEX."""
    name = owner if owner is not None else q.name.to_wire()
    if q.rdtype == dns.rdatatype.AAAA:
        rdtype, rdata = dns.rdatatype.AAAA, bytes.fromhex("fd000213000900000000000000000000")
        rdata = rdata[:-1] + bytes([index])
    else:
        rdtype, rdata = dns.rdatatype.A, bytes([10, 213, 9, index])
    return name + struct.pack("!HHIH", rdtype, dns.rdataclass.IN, ttl, len(rdata)) + rdata


def _message(
    query: dns.message.Message,
    answers: list[bytes] = (),  # type: ignore[assignment]
    *,
    rcode: int = 0,
    flags: int = 0x8180,
    qid: int | None = None,
    question: bytes | None = None,
    additional: list[bytes] = (),  # type: ignore[assignment]
) -> bytes:
    q = query.question[0]
    if question is None:
        question = q.name.to_wire() + struct.pack("!HH", q.rdtype, q.rdclass)
    head = struct.pack(
        "!HHHHHH",
        query.id if qid is None else qid,
        (flags & ~0xF) | (query.flags & 0x0100) | (rcode & 0xF),
        1 if question else 0,
        len(answers),
        0,
        len(additional),
    )
    return head + question + b"".join(answers) + b"".join(additional)


def _opt(ext_rcode: int = 0) -> bytes:
    return b"\x00" + struct.pack("!HHIH", dns.rdatatype.OPT, 1232, (ext_rcode & 0xFF) << 24, 0)


def _tsig_signed(server: FakeEmbeddedDNS, query: dns.message.Message) -> bytes:
    """An answer signed with TSIG (RFC 8945) at TSIG_TIME: a valid signature, a fixed time."""
    import dns.rdtypes.ANY.TSIG
    import dns.tsig

    unsigned = _message(query, [_address_rr(query.question[0], 1)])
    key = dns.tsig.Key(TSIG_KEY[0], TSIG_KEY[1], dns.tsig.HMAC_SHA256)
    template = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, 300, b"", query.id, 0, b""
    )
    rdata, _ = dns.tsig.sign(unsigned, key, template, TSIG_TIME)
    server.tsig_macs.append(rdata.mac)
    body = rdata.to_wire() or b""
    record = key.name.to_wire() + struct.pack(
        "!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(body)
    )
    (arcount,) = struct.unpack("!H", unsigned[10:12])
    return unsigned[:10] + struct.pack("!H", arcount + 1) + unsigned[12:] + record + body


def hostile_replies(
    server: FakeEmbeddedDNS, query: dns.message.Message, behaviour: str, proto: str
) -> list[bytes]:
    """What a hostile server sends for ``BEHAVIOUR.hostile.test`` (see ``HOSTILE``)."""
    q = query.question[0]
    one = [_address_rr(q, 1)]
    if behaviour.startswith("rcode-") and behaviour[6:].isdigit():
        rcode = int(behaviour[6:]) & 0xFFF
        extra = [_opt(rcode >> 4)] if rcode > 15 else []
        return [_message(query, rcode=rcode, additional=extra)]
    if behaviour == "wrong-id":
        return [_message(query, one, qid=query.id ^ 0xFFFF)]
    if behaviour == "wrong-id-first":
        good = _message(query, one)
        return [_message(query, one, qid=query.id ^ 0xFFFF), good] if proto == "udp" else [good]
    if behaviour == "dup":
        return [_message(query, one * 3)]
    if behaviour == "ttl-max":
        return [_message(query, [_address_rr(q, 1, 0xFFFFFFFF), _address_rr(q, 2, 0x80000000)])]
    if behaviour == "interleaved":
        other = dns.name.from_text("other." + HOSTILE_ZONE).to_wire()
        answers = [
            _address_rr(q, 1, 600),
            _address_rr(q, 9, 600, other),
            _address_rr(q, 2, 300),
            _address_rr(q, 1, 100),
            _address_rr(q, 9, 5, other),
        ]
        return [_message(query, answers)]
    if behaviour == "formerr-no-question":
        return [_message(query, rcode=1, question=b"")]
    if behaviour == "tsig":
        return [_tsig_signed(server, query)]
    if behaviour == "no-qr":
        return [_message(query, one, flags=0x0180)]
    if behaviour == "short":
        return [struct.pack("!H", query.id) + b"\x81\x80\x00"]
    if behaviour == "opcode":
        return [_message(query, one, flags=0x8180 | (dns.opcode.STATUS << 11))]
    if behaviour == "other-question":
        other = dns.name.from_text("other." + HOSTILE_ZONE).to_wire()
        return [_message(query, one, question=other + struct.pack("!HH", q.rdtype, q.rdclass))]
    if behaviour == "garbage":
        return [struct.pack("!H", query.id) + b"\x81\x80\x00\x01\x00\x05" + b"\xff" * 40]
    return [_message(query, rcode=dns.rcode.NXDOMAIN)]


#: The behaviours, by the first label of the name asked (``rcode-N`` for any N in 0-4095).
HOSTILE = {
    "wrong-id": "the reply carries the query's ID with every bit flipped",
    "wrong-id-first": "over UDP a wrong-ID reply, then the right one",
    "dup": "three identical address records",
    "ttl-max": "TTLs 0xFFFFFFFF and 0x80000000",
    "interleaved": "two owners' records interleaved, duplicates with other TTLs",
    "rcode-N": "rcode N, no records (an OPT record carries N's high bits)",
    "formerr-no-question": "FORMERR with an empty question section",
    "tsig": "an answer signed with TSIG (key TSIG_KEY, time TSIG_TIME)",
    "no-qr": "an answer with the QR bit clear",
    "short": "5 bytes: the ID and part of a header",
    "opcode": "an answer with opcode STATUS",
    "other-question": "an answer for other.hostile.test",
    "garbage": "the ID, then bytes with a bad compression pointer",
}


@contextlib.contextmanager
def running(**kwargs: object) -> Iterator[FakeEmbeddedDNS]:
    server = FakeEmbeddedDNS(**kwargs)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.stop()


if __name__ == "__main__":
    import time

    with running() as srv:
        print(f"port {srv.port} silent_port {srv.silent_port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
