"""Liveness sweeps of one attached subnet: ARP when raw sockets are allowed, else TCP/ICMP.

``sweep(plan)`` returns which addresses answered, how (arp, tcp, icmp, neighbor cache), with
MACs when known, and how far it got. Every socket is non-blocking and bounded: at most
``concurrency`` connects in flight (never more than the fd limit allows) and at most ``rate``
packets per second. Addresses are swept lowest first, in blocks, within a time budget.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import resource
import selectors
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ETH_P_ARP = 0x0806
SIOCGIFHWADDR = 0x8927
BLOCK = 256  # addresses per block when stopping at the first empty one
FULL_BLOCK = 4096  # per block otherwise: each block ends with one wait for late answers
ARP_QUIET = 0.2  # seconds of silence that end an ARP block early
SWEEP_WAIT = 0.5  # seconds to wait for an answer from an address on the local link
SWEEP_PORT = 80  # a live host answers a closed port with RST, an open one with SYN-ACK
FD_RESERVE = 48  # descriptors left for DNS, probes and the interpreter


@dataclass
class Alive:
    """One live address: how it was seen, its MAC when known, the first answer's RTT."""

    ip: str
    via: list[str] = field(default_factory=list)
    mac: str | None = None
    rtt_ms: float | None = None

    def saw(self, via: str, rtt_ms: float | None = None, mac: str | None = None) -> None:
        if via not in self.via:
            self.via.append(via)
        if mac and not self.mac:
            self.mac = mac
        if rtt_ms is not None and (self.rtt_ms is None or rtt_ms < self.rtt_ms):
            self.rtt_ms = rtt_ms


@dataclass
class SweepResult:
    """Outcome of sweeping one subnet; ``complete`` is False when it stopped early."""

    subnet: str
    interface: str | None
    methods: list[str]
    alive: dict[str, Alive]
    swept: int
    total: int
    complete: bool
    last_swept: str | None
    elapsed_ms: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "subnet": self.subnet,
            "interface": self.interface,
            "methods": self.methods,
            "alive": len(self.alive),
            "swept": self.swept,
            "total": self.total,
            "complete": self.complete,
            "last_swept": self.last_swept,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "notes": self.notes,
        }


@dataclass
class Capabilities:
    """What this process may do on one interface, found by trying, not by guessing."""

    raw_l2: bool
    icmp: str | None  # "raw", "dgram" or None
    reasons: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- limits and pacing


def fd_budget(wanted: int) -> int:
    """How many sockets may be open at once: ``wanted``, but within RLIMIT_NOFILE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max(1, wanted)
    with contextlib.suppress(OSError):
        used = len(os.listdir("/proc/self/fd"))
        return max(1, min(wanted, soft - used - FD_RESERVE))
    return max(1, min(wanted, soft - 64))


class Pacer:
    """At most ``rate`` events per second, sleeping as needed (``rate`` <= 0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
            now = self.next
        self.next = max(self.next, now - 0.05) + self.interval  # small bursts only


# ---------------------------------------------------------------- capabilities


def open_arp_socket(interface: str):
    """scapy's PF_PACKET socket for ARP frames on ``interface``; raises OSError without NET_RAW."""
    import logging

    # scapy logs "Unable to guess type" for some links on stderr; our output is ours alone.
    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.arch.linux import L2Socket  # scapy.all costs 0.9 s; this 0.2 s

    return L2Socket(iface=interface, type=ETH_P_ARP, promisc=False, nofilter=1)


def open_icmp_socket() -> tuple[socket.socket, str] | None:
    """A raw ICMP socket (NET_RAW) or a ping socket (ping_group_range); None when neither."""
    for kind, stype in (("raw", socket.SOCK_RAW), ("dgram", socket.SOCK_DGRAM)):
        try:
            sock = socket.socket(socket.AF_INET, stype, socket.IPPROTO_ICMP)
        except OSError:
            continue
        sock.setblocking(False)
        return sock, kind
    return None


def capabilities(interface: str | None) -> Capabilities:
    """Try the sockets a sweep would use and keep what opened."""
    reasons: list[str] = []
    raw_l2 = False
    if interface:
        try:
            # A bare packet socket first: without NET_RAW, scapy (50 MB) is never imported.
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)).close()
            open_arp_socket(interface).close()
            raw_l2 = True
        except PermissionError:
            reasons.append("no raw packet socket (needs CAP_NET_RAW): ARP sweep unavailable")
        except Exception as exc:  # scapy missing or interface gone
            reasons.append(f"ARP sweep unavailable: {type(exc).__name__}: {exc}")
    found = open_icmp_socket()
    icmp = None
    if found:
        found[0].close()
        icmp = found[1]
    else:
        reasons.append("no ICMP socket (needs CAP_NET_RAW or a gid in net.ipv4.ping_group_range)")
    return Capabilities(raw_l2, icmp, reasons)


# ---------------------------------------------------------------- interface facts


def interface_mac(interface: str) -> str | None:
    """The MAC of ``interface`` in *this* network namespace.

    An ioctl, not /sys: under ``nsenter -n`` /sys still shows the host's links, and a wrong
    source MAC in our ARP requests would poison every peer's cache entry for us.
    """
    import fcntl

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            data = fcntl.ioctl(
                sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", interface.encode()[:15])
            )
    except OSError:
        return None
    mac = ":".join(f"{b:02x}" for b in data[18:24])
    return None if mac == "00:00:00:00:00:00" else mac


def neighbor_cache(path: str = "/proc/net/arp") -> dict[str, tuple[str, str]]:
    """Complete IPv4 neighbor entries: ip -> (mac, interface)."""
    found: dict[str, tuple[str, str]] = {}
    try:
        with open(path) as fh:
            lines = fh.read(1 << 20).splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and int(fields[2], 16) & 0x2 and fields[3] != "00:00:00:00:00:00":
            found[fields[0]] = (fields[3], fields[5])
    return found


# ---------------------------------------------------------------- TCP connects


@dataclass
class ConnectOutcome:
    """``state``: open, refused, timeout, unreachable or error; ``rtt_ms`` until the answer."""

    state: str
    rtt_ms: float | None
    detail: str = ""


def connect_many(
    pairs: Iterable[tuple[str, int]],
    timeout: float,
    concurrency: int = 256,
    rate: float = 0.0,
    deadline: float | None = None,
) -> dict[tuple[str, int], ConnectOutcome]:
    """Non-blocking TCP connects to every (ip, port), a bounded window at a time.

    A connect that neither completes nor is refused within ``timeout`` s is ``timeout``;
    pairs not started before the monotonic ``deadline`` are left out of the result.
    """
    todo = list(pairs)
    window = fd_budget(concurrency)
    pacer = Pacer(rate)
    results: dict[tuple[str, int], ConnectOutcome] = {}
    sel = selectors.DefaultSelector()
    inflight: dict[socket.socket, tuple[tuple[str, int], float]] = {}
    index = 0

    def finish(sock: socket.socket, outcome: ConnectOutcome) -> None:
        pair, _ = inflight.pop(sock)
        sel.unregister(sock)
        sock.close()
        results[pair] = outcome

    try:
        while index < len(todo) or inflight:
            now = time.monotonic()
            while index < len(todo) and len(inflight) < window:
                if deadline is not None and now >= deadline:
                    index = len(todo)
                    break
                pair = todo[index]
                index += 1
                pacer.wait()
                family = socket.AF_INET6 if ":" in pair[0] else socket.AF_INET
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                except OSError as exc:  # out of descriptors despite the budget: shrink
                    window = max(1, len(inflight))
                    index -= 1
                    if not inflight:
                        results[pair] = ConnectOutcome("error", None, exc.strerror or str(exc))
                        index += 1
                    break
                sock.setblocking(False)
                start = time.monotonic()
                try:
                    code = sock.connect_ex(pair)
                except OSError as exc:  # a bad address: an error for this pair only
                    code = exc.errno or errno.EINVAL
                if code in (0, errno.EINPROGRESS):
                    inflight[sock] = (pair, start)
                    sel.register(sock, selectors.EVENT_WRITE)
                    if code == 0:
                        finish(sock, ConnectOutcome("open", 0.0))
                else:
                    sock.close()
                    results[pair] = _errno_outcome(code, None)
                now = time.monotonic()
            if not inflight:
                continue
            oldest = min(start for _, start in inflight.values())
            wait = max(0.0, oldest + timeout - time.monotonic())
            for key, _ in sel.select(min(wait, 0.05) if index < len(todo) else wait):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                _, start = inflight[sock]
                rtt = (time.monotonic() - start) * 1000
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                finish(
                    sock, ConnectOutcome("open", rtt) if code == 0 else _errno_outcome(code, rtt)
                )
            now = time.monotonic()
            for sock, (_, start) in list(inflight.items()):
                if now - start >= timeout:
                    finish(sock, ConnectOutcome("timeout", None, f"no answer within {timeout:g}s"))
    finally:
        for sock in list(inflight):
            sel.unregister(sock)
            sock.close()
        sel.close()
    return results


def _errno_outcome(code: int, rtt: float | None) -> ConnectOutcome:
    if code == errno.ECONNREFUSED:
        return ConnectOutcome("refused", rtt)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN):
        return ConnectOutcome("unreachable", rtt, os.strerror(code))
    if code == errno.ETIMEDOUT:
        return ConnectOutcome("timeout", None, os.strerror(code))
    return ConnectOutcome("error", rtt, os.strerror(code))


# ---------------------------------------------------------------- ICMP echo


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    """An ICMP echo request; ping sockets replace ``ident`` and ignore the checksum given."""
    payload = b"netdiag-scan"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload


def parse_echo_reply(data: bytes, raw: bool) -> tuple[int, int] | None:
    """(ident, seq) of an echo reply, or None; raw sockets deliver the IP header too."""
    if raw:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8 or data[0] != 0:
        return None
    _, _, _, ident, seq = struct.unpack("!BBHHH", data[:8])
    return ident, seq


def ping_many(
    addresses: Sequence[str], timeout: float, rate: float = 0.0, deadline: float | None = None
) -> tuple[dict[str, float], str | None]:
    """Echo each address once; returns ({ip: rtt_ms} of those that replied, socket kind)."""
    opened = open_icmp_socket()
    if opened is None:
        return {}, None
    sock, kind = opened
    raw = kind == "raw"
    ident = os.getpid() & 0xFFFF
    sent: dict[int, tuple[str, float]] = {}
    replies: dict[str, float] = {}
    pacer = Pacer(rate)

    def drain() -> None:
        while True:
            try:
                data, peer = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            parsed = parse_echo_reply(data, raw)
            if not parsed:
                continue
            rid, seq = parsed
            if raw and rid != ident:
                continue
            info = sent.get(seq)
            if info and info[0] == peer[0] and peer[0] not in replies:
                replies[peer[0]] = (time.monotonic() - info[1]) * 1000

    try:
        for seq, address in enumerate(addresses):
            if deadline is not None and time.monotonic() >= deadline:
                break
            pacer.wait()
            seq &= 0xFFFF
            sent[seq] = (address, time.monotonic())
            with contextlib.suppress(OSError):  # EHOSTUNREACH etc: no reply, as for silence
                sock.sendto(echo_request(ident, seq), (address, 0))
            drain()
        end = time.monotonic() + timeout
        if deadline is not None:
            end = min(end, deadline)
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        while len(replies) < len(sent):
            left = end - time.monotonic()
            if left <= 0:
                break
            if sel.select(left):
                drain()
        sel.close()
    finally:
        sock.close()
    return replies, kind


# ---------------------------------------------------------------- ARP


def arp_request_template(src_mac: str, src_ip: str) -> bytes:
    """A broadcast who-has frame built by scapy; the target IP is patched per address."""
    from scapy.layers.l2 import ARP, Ether

    frame = Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=src_mac, psrc=src_ip, pdst="0.0.0.0"
    )
    return bytes(frame)


def parse_arp_reply(frame: bytes) -> tuple[str, str] | None:
    """(sender ip, sender mac) of an ARP reply frame, or None (pure: fuzzable)."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4 or op != 2:
        return None
    mac = ":".join(f"{b:02x}" for b in frame[22:28])
    return socket.inet_ntoa(frame[28:32]), mac


def arp_sweep(
    interface: str,
    src_ip: str,
    addresses: Sequence[str],
    wait: float,
    rate: float,
    deadline: float | None = None,
) -> tuple[dict[str, tuple[str, float]], int]:
    """Broadcast who-has for each address in order until ``deadline``.

    Returns ({ip: (mac, rtt_ms)} of those that replied, how many requests were sent).
    """
    src_mac = interface_mac(interface) or "00:00:00:00:00:00"
    template = bytearray(arp_request_template(src_mac, src_ip))
    l2 = open_arp_socket(interface)
    sock: socket.socket = l2.ins
    sock.setblocking(False)
    wanted = set(addresses)
    sent_at: dict[str, float] = {}
    replies: dict[str, tuple[str, float]] = {}
    pacer = Pacer(rate)

    def drain() -> None:
        while True:
            try:
                frame = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            parsed = parse_arp_reply(frame)
            if parsed and parsed[0] in wanted and parsed[0] not in replies:
                start = sent_at.get(parsed[0])
                rtt = (time.monotonic() - start) * 1000 if start else 0.0
                replies[parsed[0]] = (parsed[1], rtt)

    try:
        for address in addresses:
            if deadline is not None and time.monotonic() >= deadline:
                break
            pacer.wait()
            template[38:42] = socket.inet_aton(address)
            sent_at[address] = time.monotonic()
            with contextlib.suppress(BlockingIOError):
                sock.send(bytes(template))
            drain()
        end = time.monotonic() + wait
        if deadline is not None:
            end = min(end, deadline)
        # ARP is answered by the peer's kernel within milliseconds on one link: once the
        # line has been quiet for ARP_QUIET after the last request or reply, nothing is coming.
        quiet_until = time.monotonic() + ARP_QUIET
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        while len(replies) < len(sent_at):
            left = min(end, quiet_until) - time.monotonic()
            if left <= 0:
                break
            if sel.select(left):
                before = len(replies)
                drain()
                if len(replies) > before:
                    quiet_until = time.monotonic() + ARP_QUIET
        sel.close()
    finally:
        l2.close()
    return replies, len(sent_at)


# ---------------------------------------------------------------- the sweep


@dataclass
class SweepPlan:
    """What to sweep and within which bounds.

    ``stop_on_gap``: stop after the first block (beyond the first) with no live address,
    as fits a Docker network whose addresses are handed out from the low end.
    """

    subnet: str
    interface: str | None
    src_ip: str | None
    rate: float = 2000.0
    concurrency: int = 256
    budget: float = 20.0
    wait: float = SWEEP_WAIT
    stop_on_gap: bool = False
    skip: frozenset[str] = frozenset()
    methods: Sequence[str] | None = None  # force methods (tests); default: what is allowed


def host_addresses(subnet: str) -> list[str]:
    net = ipaddress.ip_network(subnet, strict=False)
    if net.num_addresses > 1 << 20:
        raise ValueError(f"{subnet} is too large to sweep")
    return [str(a) for a in net.hosts()]


def choose_methods(caps: Capabilities, plan: SweepPlan) -> list[str]:
    if plan.methods:
        return list(plan.methods)
    if caps.raw_l2 and plan.interface and plan.src_ip:
        return ["arp"]
    methods = ["tcp"]
    if caps.icmp:
        methods.append("icmp")
    return methods


def sweep(plan: SweepPlan, caps: Capabilities | None = None, progress=None) -> SweepResult:
    """Sweep ``plan.subnet`` lowest address first, block by block, within ``plan.budget`` s."""
    start = time.monotonic()
    caps = caps or capabilities(plan.interface)
    methods = choose_methods(caps, plan)
    addresses = [a for a in host_addresses(plan.subnet) if a not in plan.skip]
    end = start + plan.budget
    alive: dict[str, Alive] = {}
    notes: list[str] = []
    swept = 0
    last: str | None = None
    complete = True
    size = BLOCK if plan.stop_on_gap else FULL_BLOCK
    for block_start in range(0, len(addresses), size):
        if time.monotonic() >= end:
            complete = False
            notes.append(f"time budget of {plan.budget:g}s used up")
            break
        block = addresses[block_start : block_start + size]
        before = len(alive)
        done = _sweep_block(block, methods, plan, alive, end)
        swept += done
        if done:
            last = block[done - 1]
        if done < len(block):
            complete = False
            notes.append(f"time budget of {plan.budget:g}s used up")
            break
        if progress:
            progress(plan.subnet, swept, len(addresses), len(alive))
        more = block_start + size < len(addresses)
        if plan.stop_on_gap and more and block_start > 0 and len(alive) == before:
            complete = False
            notes.append(
                f"stopped after an empty block ending at {last}: Docker hands out addresses "
                "from the low end (name the range with --subnet to sweep all of it)"
            )
            break
    if "tcp" in methods and plan.interface:
        # Connect attempts made the kernel resolve each address: hosts that answered ARP but
        # drop TCP still show up as complete neighbor entries.
        for ip, (mac, dev) in neighbor_cache().items():
            if dev == plan.interface and ip in alive:
                alive[ip].saw("neighbor", mac=mac)
            elif dev == plan.interface and _in_swept(ip, addresses, swept):
                alive.setdefault(ip, Alive(ip)).saw("neighbor", mac=mac)
    return SweepResult(
        plan.subnet,
        plan.interface,
        methods,
        dict(sorted(alive.items(), key=lambda kv: ipaddress.ip_address(kv[0]))),
        swept,
        len(addresses),
        complete,
        last,
        (time.monotonic() - start) * 1000,
        notes,
    )


def _in_swept(ip: str, addresses: list[str], swept: int) -> bool:
    if not swept:
        return False
    addr = ipaddress.ip_address(ip)
    return ipaddress.ip_address(addresses[0]) <= addr <= ipaddress.ip_address(addresses[swept - 1])


def _sweep_block(
    block: list[str], methods: list[str], plan: SweepPlan, alive: dict[str, Alive], end: float
) -> int:
    """Sweep one block with every method; returns how many addresses were covered."""
    covered = len(block)
    if "arp" in methods and plan.interface and plan.src_ip:
        found, covered = arp_sweep(plan.interface, plan.src_ip, block, plan.wait, plan.rate, end)
        for ip, (mac, rtt) in found.items():
            alive.setdefault(ip, Alive(ip)).saw("arp", rtt, mac)
    pinged = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        if "icmp" in methods:  # echoes wait for their replies while the connects run
            pinged = pool.submit(ping_many, block, plan.wait, plan.rate / 2, end)
        if "tcp" in methods:
            pairs = [(ip, SWEEP_PORT) for ip in block]
            rate = plan.rate / 2 if pinged else plan.rate
            outcomes = connect_many(pairs, plan.wait, plan.concurrency, rate, end)
            covered = min(covered, len(outcomes))
            for (ip, _), out in outcomes.items():
                if out.state in ("open", "refused"):
                    alive.setdefault(ip, Alive(ip)).saw("tcp", out.rtt_ms)
        if pinged is not None:
            replies, _ = pinged.result()
            for ip, rtt in replies.items():
                alive.setdefault(ip, Alive(ip)).saw("icmp", rtt)
    return covered
