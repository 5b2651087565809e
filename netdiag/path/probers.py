"""Probes with a chosen TTL and size, all in flight at once, and what came back for each.

Two ways to send them, chosen by privilege:
- ``RawProber`` (CAP_NET_RAW): packets built with scapy and sent on an IP_HDRINCL socket, with
  don't-fragment set and an IP id of our own; ICMP (and, for TCP, SYN-ACK/RST) read on raw
  sockets and matched by the probe they quote. TCP probes are half-open SYNs.
- ``UnprivilegedProber``: one socket per probe, as tracepath does — UDP, ICMP ping sockets
  (net.ipv4.ping_group_range) or a non-blocking TCP connect() — with IP_TTL, don't-fragment
  (IP_PMTUDISC_PROBE: the interface MTU limits, not the kernel's cached path MTU) and
  IP_RECVERR, which queues the ICMP errors for the probe on its own socket.
``settle()`` waits for the answers of a batch within its timeouts and the command's deadline.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import selectors
import socket
import struct
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from netdiag.discovery.icmp import echo_request, parse_echo_reply
from netdiag.path import wire

IP_MTU_DISCOVER = 10
IP_PMTUDISC_PROBE = 3  # set DF, ignore the cached path MTU (only the interface MTU limits)
IP_MTU = 14
UDP_BASE_PORT = 33434  # traceroute's: ports unlikely to be open, one more per probe
UDP_PORT_SPAN = 1024
HEADER = {"icmp": 28, "udp": 28, "tcp": 40}  # IPv4 + ICMP/UDP/TCP header bytes
PROBE_SIZE = 60  # bytes per hop probe, as traceroute sends
GRACE_FLOOR = 0.2  # seconds to wait for stragglers once a batch has answers
GRACE_FACTOR = 8  # ... or this many times the slowest answer so far, if longer


@dataclass
class Answer:
    """What came back for one probe.

    ``kind``: time_exceeded (a hop), reply (the target: echo reply, UDP port unreachable,
    TCP SYN-ACK or RST), frag_needed (a hop's next link is smaller: ``mtu``), unreachable (a hop
    or the target refused: ``code``) or local_error (this host could not send it).
    """

    kind: str
    address: str | None
    rtt_ms: float
    code: int | None = None
    mtu: int | None = None
    state: str | None = None  # TCP replies: open or closed
    detail: str = ""


@dataclass
class Sent:
    """One probe in flight: its TTL and size on the wire, when it left, what answered."""

    key: int
    ttl: int
    size: int
    sent_at: float  # monotonic
    answer: Answer | None = None
    answered_at: float | None = None
    sent_wall: float = 0.0  # time.time() when it left, to compare with kernel timestamps

    def answered(self, answer: Answer) -> None:
        if self.answer is None:  # the first answer counts (a TCP SYN retransmit may add one)
            self.answer = answer
            self.answered_at = time.monotonic()


def _rtt(sent: Sent, rx_wall: float | None = None) -> float:
    """RTT in ms: from the kernel's receive timestamp when there is one (precise even while
    the process was busy sending), else from now."""
    if rx_wall is not None and sent.sent_wall:
        return max(0.0, (rx_wall - sent.sent_wall) * 1000)
    return (time.monotonic() - sent.sent_at) * 1000


def _left(sent: Sent) -> None:
    sent.sent_at = time.monotonic()
    sent.sent_wall = time.time()


def classify_error(ee: wire.ExtendedError, dst: str, rtt_ms: float) -> Answer:
    """An IP_RECVERR report as an Answer: which hop said what about the probe."""
    if not ee.from_icmp:
        mtu = ee.info if ee.errno == errno.EMSGSIZE else None
        return Answer("local_error", None, rtt_ms, mtu=mtu, detail=os.strerror(ee.errno))
    return classify_icmp(ee.type, ee.code, ee.offender, ee.info, dst, rtt_ms)


def classify_icmp(
    icmp_type: int, code: int, sender: str | None, mtu: int | None, dst: str, rtt_ms: float
) -> Answer:
    """An ICMP error about our probe, from ``sender``, as an Answer."""
    if icmp_type == wire.ICMP_TIME_EXCEEDED:
        return Answer("time_exceeded", sender, rtt_ms, code=code)
    if icmp_type == wire.ICMP_DEST_UNREACH:
        if code == wire.UNREACH_FRAG_NEEDED:
            return Answer("frag_needed", sender, rtt_ms, code=code, mtu=mtu)
        if code == wire.UNREACH_PORT and sender == dst:
            return Answer("reply", sender, rtt_ms, code=code, detail="port unreachable")
        name = wire.UNREACH_NAMES.get(code, f"unreachable code {code}")
        return Answer("unreachable", sender, rtt_ms, code=code, detail=name)
    return Answer("unreachable", sender, rtt_ms, code=code, detail=f"ICMP type {icmp_type}")


def source_for(dst: str) -> tuple[str, int | None]:
    """The source address the kernel picks for ``dst`` and its cached path MTU (IP_MTU)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((dst, 9))  # no packet leaves: connect() on UDP only picks a route
        src = sock.getsockname()[0]
        try:
            mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
        except OSError:
            mtu = None
    return src, mtu


class Prober(ABC):
    """Sends probes of one protocol to one address; answers land in each ``Sent``."""

    method: ClassVar[str]

    def __init__(self, proto: str, dst: str, port: int | None, src: str) -> None:
        self.proto = proto
        self.dst = dst
        self.port = port
        self.src = src
        self.sel = selectors.DefaultSelector()
        self.pending: dict[int, Sent] = {}
        self._next = 0
        self.sent_count = 0

    def _key(self) -> int:
        self._next += 1
        return self._next

    @abstractmethod
    def send(self, ttl: int, size: int) -> Sent:
        """Send one probe now (a send error becomes its answer at once)."""

    def send_many(self, specs: Iterable[tuple[int, int]]) -> list[Sent]:
        """Send one probe per (ttl, size), back to back, in the order given."""
        return [self.send(ttl, size) for ttl, size in specs]

    @abstractmethod
    def _readable(self, key: selectors.SelectorKey, events: int) -> None:
        """Read what arrived on one socket and record answers."""

    def forget(self, sent: Sent) -> None:
        """Stop waiting for ``sent`` (and free what it holds)."""
        self.pending.pop(sent.key, None)

    def poll(self, wait: float) -> None:
        """Wait up to ``wait`` s for something to arrive; record every answer that did."""
        if not self.sel.get_map():
            time.sleep(max(0.0, wait))
            return
        for key, events in self.sel.select(max(0.0, wait)):
            self._readable(key, events)

    def close(self) -> None:
        for sent in list(self.pending.values()):
            self.forget(sent)
        for key in list(self.sel.get_map().values()):
            with contextlib.suppress(Exception):
                self.sel.unregister(key.fileobj)
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- unprivileged


def ping_socket_allowed() -> bool:
    """Whether this process may open an ICMP ping socket (net.ipv4.ping_group_range)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
    except OSError:
        return False
    return True


Finisher = Callable[[socket.socket], None]


class UnprivilegedProber(Prober):
    """One socket per probe; ICMP errors come back on it through IP_RECVERR.

    A TCP probe that reaches an open port is a real connection: it is reset at once, or, with
    ``finisher`` (for MySQL: greeting and a dummy login, see ``mysql_finisher``), ended the
    way the service expects when the prober closes.
    """

    method = "unprivileged"

    def __init__(
        self, proto: str, dst: str, port: int | None, src: str, finisher: Finisher | None = None
    ) -> None:
        super().__init__(proto, dst, port, src)
        self.socks: dict[int, socket.socket] = {}
        self.finisher = finisher
        self.established: list[socket.socket] = []

    def send(self, ttl: int, size: int) -> Sent:
        key = self._key()
        sent = Sent(key, ttl, size, time.monotonic())
        if self.proto == "icmp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        elif self.proto == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            sock.setsockopt(socket.IPPROTO_IP, wire.IP_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
            sock.setsockopt(socket.SOL_SOCKET, wire.SO_TIMESTAMPNS, 1)
            self.sent_count += 1
            _left(sent)
            if self.proto == "icmp":
                packet = echo_request(0, key, wire.padding(size - HEADER["icmp"]))
                sock.sendto(packet, (self.dst, 0))
            elif self.proto == "udp":
                base = self.port or UDP_BASE_PORT
                sock.connect((self.dst, base + key % UDP_PORT_SPAN))
                sock.send(b"\0" * max(0, size - HEADER["udp"]))
            else:
                code = sock.connect_ex((self.dst, self.port or 80))
                if code not in (0, errno.EINPROGRESS):
                    raise OSError(code, os.strerror(code))
        except OSError as exc:
            sock.close()
            mtu = None
            if exc.errno == errno.EMSGSIZE:
                mtu = size
            sent.answered(
                Answer("local_error", None, _rtt(sent), mtu=mtu, detail=exc.strerror or str(exc))
            )
            return sent
        events = selectors.EVENT_READ
        if self.proto == "tcp":
            events |= selectors.EVENT_WRITE
        self.sel.register(sock, events, key)
        self.socks[key] = sock
        self.pending[key] = sent
        return sent

    def forget(self, sent: Sent) -> None:
        super().forget(sent)
        sock = self.socks.pop(sent.key, None)
        if sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        answer = sent.answer
        if self.finisher is not None and answer is not None and answer.state == "open":
            self.established.append(sock)  # ended politely in close()
            return
        if self.proto == "tcp":
            # an open port: reset at once, nothing sent (the service sees a connection drop)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def close(self) -> None:
        super().close()
        for sock in self.established:
            try:
                if self.finisher is not None:
                    self.finisher(sock)
            except Exception as exc:  # a service that misbehaves on the way out: just close
                if os.environ.get("NETDIAG_DEBUG") == "1":
                    print(f"netdiag: ending a connection: {exc!r}", file=sys.stderr)
            finally:
                sock.close()
        self.established.clear()

    def _readable(self, key: selectors.SelectorKey, events: int) -> None:
        sent = self.pending.get(key.data)
        sock = key.fileobj
        assert isinstance(sock, socket.socket)
        if sent is None:
            return
        try:
            _, anc, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
        except OSError:  # BlockingIOError: nothing queued
            anc = None
        if anc:
            ee = wire.recverr(anc)
            if ee is not None:
                sent.answered(classify_error(ee, self.dst, _rtt(sent, wire.rx_timestamp(anc))))
                self.forget(sent)
                return
        rtt = _rtt(sent)
        if self.proto == "tcp":
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0 and events & selectors.EVENT_WRITE:
                sent.answered(Answer("reply", self.dst, rtt, state="open", detail="SYN-ACK"))
            elif code == errno.ECONNREFUSED:
                sent.answered(Answer("reply", self.dst, rtt, state="closed", detail="RST"))
            elif code:
                sent.answered(Answer("local_error", None, rtt, detail=os.strerror(code)))
            else:
                return
            self.forget(sent)
            return
        try:
            data, anc, _, peer = sock.recvmsg(4096, 256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            sent.answered(Answer("local_error", None, rtt, detail=exc.strerror or str(exc)))
            self.forget(sent)
            return
        if self.proto == "icmp" and parse_echo_reply(data) is None:
            return
        what = "echo reply" if self.proto == "icmp" else "UDP reply"
        sent.answered(Answer("reply", peer[0], _rtt(sent, wire.rx_timestamp(anc)), detail=what))
        self.forget(sent)


def mysql_finisher(timeout: float) -> Finisher:
    """End a connection to MySQL/MariaDB as ``netdiag probe`` does: read the greeting, log in
    as a user that does not exist. A connection dropped during the handshake would count
    toward the server's max_connect_errors host block (see docs/probes.md); a failed login
    does not."""
    from netdiag.probes import mysql

    def finish(sock: socket.socket) -> None:
        deadline = time.monotonic() + timeout
        sock.setblocking(True)
        first = mysql.read_first_packet(sock, deadline)
        if not isinstance(first, mysql.wire.ErrPacket):
            mysql.dummy_login(sock, first, deadline)

    return finish


# ---------------------------------------------------------------- raw sockets


def raw_unavailable() -> str | None:
    """Why raw probes cannot be used here (None: they can): NET_RAW, or scapy missing."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
    except PermissionError:
        return "no raw sockets (needs CAP_NET_RAW)"
    except OSError as exc:
        return f"no raw sockets ({exc.strerror or exc})"
    try:
        _scapy()
    except ImportError as exc:
        return f"scapy's IP layers are not installed ({exc})"
    return None


def _scapy() -> Any:
    import logging

    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.layers import inet  # 0.3-0.6 s: only on the raw path

    return inet


class RawProber(Prober):
    """Probes built by scapy, sent with IP_HDRINCL; answers read from raw ICMP/TCP sockets."""

    method = "raw"

    def __init__(self, proto: str, dst: str, port: int | None, src: str) -> None:
        super().__init__(proto, dst, port, src)
        self.inet = _scapy()
        self.out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        # without this the kernel drops DF probes above the path MTU it has cached
        self.out.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
        for name, number in (("icmp", socket.IPPROTO_ICMP), ("tcp", socket.IPPROTO_TCP)):
            if name == "tcp" and proto != "tcp":
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, number)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, wire.SO_TIMESTAMPNS, 1)
            self.sel.register(sock, selectors.EVENT_READ, name)
        self.ident = random.randint(1, 0xFFFF)
        self.id_base = random.randint(0, 0xFFFF)
        self.by_ip_id: dict[int, Sent] = {}
        self.by_sport: dict[int, tuple[Sent, int]] = {}
        self.ports: dict[int, socket.socket] = {}  # TCP source ports held while probes fly

    def _ip_id(self, key: int) -> int:
        return (self.id_base + key) % 0xFFFF + 1  # never 0: the kernel would pick one

    def _reserve_port(self, key: int) -> int:
        """A TCP source port no local socket uses: bound (not listening) until forgotten."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.src, 0))
        port = sock.getsockname()[1]
        self.ports[key] = sock
        return port

    def build(self, key: int, ttl: int, size: int) -> tuple[bytes, int | None, int | None]:
        """(packet, TCP source port, TCP seq) of probe ``key``: DF set, our IP id."""
        inet = self.inet
        ip = inet.IP(src=self.src, dst=self.dst, ttl=ttl, id=self._ip_id(key), flags="DF")
        load = wire.padding(size - HEADER[self.proto])
        if self.proto == "icmp":
            return bytes(ip / inet.ICMP(type=8, id=self.ident, seq=key & 0xFFFF) / load), None, None
        if self.proto == "udp":
            base = self.port or UDP_BASE_PORT
            sport = 32768 + (self.ident + key) % 28000
            udp = inet.UDP(sport=sport, dport=base + key % UDP_PORT_SPAN)
            return bytes(ip / udp / load), None, None
        sport = self._reserve_port(key)
        seq = random.getrandbits(32)
        syn = inet.TCP(sport=sport, dport=self.port or 80, flags="S", seq=seq, window=64240)
        return bytes(ip / syn / load), sport, seq

    def send(self, ttl: int, size: int) -> Sent:
        return self.send_many([(ttl, size)])[0]

    def send_many(self, specs: Iterable[tuple[int, int]]) -> list[Sent]:
        """Build every packet first (scapy takes about a millisecond each), then send them."""
        built = []
        for ttl, size in specs:
            key = self._key()
            built.append((Sent(key, ttl, size, time.monotonic()), *self.build(key, ttl, size)))
        for sent, packet, sport, seq in built:
            self.pending[sent.key] = sent
            self.by_ip_id[self._ip_id(sent.key)] = sent
            if sport is not None and seq is not None:
                self.by_sport[sport] = (sent, seq)
            self.sent_count += 1
            _left(sent)
            try:
                self.out.sendto(packet, (self.dst, 0))
            except OSError as exc:
                mtu = sent.size if exc.errno == errno.EMSGSIZE else None
                detail = exc.strerror or str(exc)
                sent.answered(Answer("local_error", None, _rtt(sent), mtu=mtu, detail=detail))
                self.forget(sent)
        return [b[0] for b in built]

    def _release_port(self, key: int) -> None:
        sock = self.ports.pop(key, None)
        if sock is not None:
            sock.close()

    def forget(self, sent: Sent) -> None:
        super().forget(sent)
        self.by_ip_id.pop(self._ip_id(sent.key), None)
        sock = self.ports.get(sent.key)
        if sock is not None:
            self.by_sport.pop(sock.getsockname()[1], None)
        self._release_port(sent.key)

    def _readable(self, key: selectors.SelectorKey, events: int) -> None:
        sock = key.fileobj
        assert isinstance(sock, socket.socket)
        for _ in range(256):  # drain, bounded
            try:
                data, anc, _, _ = sock.recvmsg(65535, 256)
            except OSError:  # BlockingIOError: drained
                return
            rx = wire.rx_timestamp(anc)
            if key.data == "icmp":
                self._icmp(wire.parse_icmp_packet(data), rx)
            else:
                self._tcp(wire.parse_tcp_packet(data), rx)

    def _icmp(self, msg: wire.IcmpMessage | None, rx: float | None) -> None:
        if msg is None:
            return
        if msg.type == wire.ICMP_ECHO_REPLY:
            if self.proto != "icmp" or msg.echo_id != self.ident or msg.src != self.dst:
                return
            sent = self.pending.get(self._key_of_seq(msg.echo_seq))
            if sent is not None:
                sent.answered(Answer("reply", msg.src, _rtt(sent, rx), detail="echo reply"))
                self.forget(sent)
            return
        quoted = msg.quoted
        if quoted is None or quoted.dst != self.dst:
            return
        sent = self.by_ip_id.get(quoted.ip_id)
        if sent is None or self.pending.get(sent.key) is not sent:
            return
        rtt = _rtt(sent, rx)
        sent.answered(classify_icmp(msg.type, msg.code, msg.src, msg.mtu, self.dst, rtt))
        self.forget(sent)

    def _key_of_seq(self, seq: int | None) -> int:
        if seq is None:
            return -1
        for key in self.pending:
            if key & 0xFFFF == seq:
                return key
        return -1

    def _tcp(self, seg: wire.TcpSegment | None, rx: float | None) -> None:
        if seg is None or seg.src != self.dst or seg.sport != (self.port or 80):
            return
        found = self.by_sport.get(seg.dport)
        if found is None:
            return
        sent, seq = found
        # a SYN-ACK acknowledges the SYN only; an RST also the payload a SYN probe carried
        acks = {(seq + 1) & 0xFFFFFFFF, (seq + 1 + sent.size - HEADER["tcp"]) & 0xFFFFFFFF}
        if seg.ack not in acks or self.pending.get(sent.key) is not sent:
            return
        if seg.syn_ack:
            sent.answered(Answer("reply", seg.src, _rtt(sent, rx), state="open", detail="SYN-ACK"))
        elif seg.rst:
            sent.answered(Answer("reply", seg.src, _rtt(sent, rx), state="closed", detail="RST"))
        else:
            return
        self.forget(sent)

    def close(self) -> None:
        super().close()
        for key in list(self.ports):
            self._release_port(key)
        self.out.close()


# ---------------------------------------------------------------- waiting


def settle(
    prober: Prober,
    batch: Iterable[Sent],
    timeout: float,
    deadline: float,
    done: Callable[[], bool] | None = None,
    expect_ms: float | None = None,
) -> None:
    """Collect answers for ``batch`` until each has one or is given up, or ``done()`` holds.

    A probe is given up ``timeout`` s after it was sent, or sooner once others in the batch
    have answered: then stragglers get ``max(GRACE_FLOOR, GRACE_FACTOR * slowest RTT)`` more
    (traceroute's "wait relative to the answers seen"); with ``expect_ms`` (an RTT measured
    before on this path) the same bound applies from the moment each probe left. Nothing
    waits past ``deadline``.
    """
    probes = [s for s in batch if s.answer is None]
    while True:
        waiting = [s for s in probes if s.answer is None and s.key in prober.pending]
        if not waiting or (done is not None and done()):
            break
        now = time.monotonic()
        if now >= deadline:
            break
        answered = [s for s in probes if s.answer is not None and s.answered_at is not None]
        give_up: dict[int, float] = {s.key: s.sent_at + timeout for s in waiting}
        if expect_ms is not None:
            grace = max(GRACE_FLOOR, GRACE_FACTOR * expect_ms / 1000)
            give_up = {s.key: min(give_up[s.key], s.sent_at + grace) for s in waiting}
        if answered:
            slowest = max((s.answer.rtt_ms for s in answered if s.answer), default=0.0) / 1000
            first = min(s.answered_at for s in answered if s.answered_at is not None)
            grace = max(GRACE_FLOOR, GRACE_FACTOR * slowest)
            for k in give_up:
                give_up[k] = min(give_up[k], first + grace)
        expired = [s for s in waiting if give_up[s.key] <= now]
        if expired:
            prober.poll(0)  # whatever arrived meanwhile still counts
            for s in expired:
                if s.answer is None:
                    prober.forget(s)
            continue
        prober.poll(min(min(give_up.values()), deadline) - now)
    for s in probes:
        if s.answer is None:
            prober.forget(s)
