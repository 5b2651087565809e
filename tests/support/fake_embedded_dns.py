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
are bound but never answer. Others may reuse it with records of their own::

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
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- answering (pure) ------------------------------------------------------------------
    def answer(self, wire: bytes, proto: str) -> bytes | None:
        """The reply to one query message, or None when Docker would stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question or query.opcode() != dns.opcode.QUERY:
            return None
        q = query.question[0]
        key = _key(q.name)
        self.queries.append((proto, key, dns.rdatatype.to_text(q.rdtype)))
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
            reply = self.answer(data, "udp")
            if reply is not None:
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
                    reply = self.answer(body, "tcp")
                    if reply is None:
                        continue
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
