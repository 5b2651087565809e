"""A minimal authoritative DNS server on loopback UDP for the probe tests (dnspython).

``mini_dns({"db.test.": ["127.0.0.1", "127.0.0.2"]})`` answers A queries for the names given,
NXDOMAIN for every other name; ``mini_dns(silent=True)`` receives queries and never answers.
Point netdiag at it with ``NETDIAG_RESOLVER=127.0.0.1#PORT``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def mini_dns(
    records: dict[str, list[str]] | None = None, silent: bool = False, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Yield ``"HOST#PORT"`` of a running server; stopped on exit."""
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset

    table = {k.lower().rstrip(".") + ".": v for k, v in (records or {}).items()}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def answer(wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        q = query.question[0]
        name = q.name.to_text().lower()
        if name not in table:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif q.rdtype == dns.rdatatype.A:
            v4 = [a for a in table[name] if ":" not in a]
            if v4:
                reply.answer.append(dns.rrset.from_text_list(q.name, 600, "IN", "A", v4))
        return reply.to_wire()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, client = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            if silent:
                continue
            out = answer(data)
            if out is not None:
                sock.sendto(out, client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"{host}#{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        sock.close()
