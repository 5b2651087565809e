"""A tiny UDP DNS server for tests: fixed records, NXDOMAIN otherwise, logs every question.

In-process: ``with MiniDns("127.0.0.1", 0, {("x.", "A"): ["10.0.0.1"]}) as dns: dns.port``.
Probe tests: ``with mini_dns({"db.test": ["127.0.0.1", "127.0.0.2"]}) as server:`` yields
``"127.0.0.1#PORT"`` for NETDIAG_RESOLVER; ``mini_dns(silent=True)`` never answers.
In a namespace of the test's own: ``in_netns(ns, lambda: MiniDns("127.0.0.11", 53, records))``
binds there (then ``__enter__`` it from any thread). In another process there:
``python -m tests.support.mini_dns ADDR PORT NAME:TYPE:RDATA ...`` prints
``ready PORT`` once bound, then one ``query NAME TYPE`` line per question received.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rrset

Records = dict[tuple[str, str], list[str]]


def ptr_name(address: str) -> str:
    """The PTR name of an IPv4 address, as a key of ``Records``: ``2.1.0.10.in-addr.arpa.``."""
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa."


def answer(wire: bytes, records: Records) -> tuple[bytes, str]:
    query = dns.message.from_wire(wire)
    reply = dns.message.make_response(query)
    reply.flags |= 0x80  # RA, like Docker's embedded DNS
    q = query.question[0]
    key = (q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype))
    if key in records:
        reply.answer.append(dns.rrset.from_text_list(q.name, 600, "IN", key[1], records[key]))
    elif not any(name == key[0] for name, _ in records):
        reply.set_rcode(dns.rcode.NXDOMAIN)  # a known name with other types: empty NOERROR
    return reply.to_wire(), f"{key[0]} {key[1]}"


class MiniDns:
    """Serve ``records`` on addr:port in a thread; ``queries`` lists what was asked."""

    def __init__(self, addr: str, port: int, records: Records) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.records = records
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                out, asked = answer(wire, self.records)
            except Exception:
                continue
            self.queries.append(asked)
            self.sock.sendto(out, peer)

    def __enter__(self) -> MiniDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@contextlib.contextmanager
def mini_dns(
    records: dict[str, list[str]] | None = None, silent: bool = False, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Yield ``"HOST#PORT"`` of a server answering A records for ``records``; stopped on exit."""
    if silent:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        try:
            yield f"{host}#{sock.getsockname()[1]}"
        finally:
            sock.close()
        return
    table: Records = {}
    for name, addresses in (records or {}).items():
        key = name.lower().rstrip(".") + "."
        table[(key, "A")] = [a for a in addresses if ":" not in a]
        v6 = [a for a in addresses if ":" in a]
        if v6:
            table[(key, "AAAA")] = v6
    with MiniDns(host, 0, table) as server:
        yield f"{host}#{server.port}"


def _main(argv: list[str]) -> None:
    addr, port, *specs = argv
    records: Records = {}
    for spec in specs:
        name, rdtype, rdata = spec.split(":", 2)
        records.setdefault((name.lower(), rdtype.upper()), []).append(rdata)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, int(port)))
    print(f"ready {sock.getsockname()[1]}", flush=True)
    while True:
        wire, peer = sock.recvfrom(4096)
        try:
            out, asked = answer(wire, records)
        except Exception:
            continue
        print(f"query {asked}", flush=True)
        sock.sendto(out, peer)


if __name__ == "__main__":
    _main(sys.argv[1:])
