"""A routed lab of four network namespaces in a line, for `netdiag path` and its benchmark.

Layout (every name starts ``ndpath-<tag>-``; subnets 10.80-82.<octet>.0/24)::

    client ──── router1 ──── router2 ──[MTU 1400]── server
    .1.2    .1.1     .2.1    .2.2   .3.1            .3.2

``net.ipv4.ip_forward=1`` in the routers, routes both ways. Variants, switched at run time:
  (a) ``mtu=1400``: router2's egress towards the server has MTU 1400 (the server's own end of
      that link keeps 1500, so its TCP advertises MSS 1460: the shape of an overlay or tunnel
      whose underlay is smaller than the endpoints think); ICMP errors flow.
  (b) ``black_hole(True)``: router2 also drops the ICMP "fragmentation needed" it would send.
  (c) ``filter_port=P``: router1 drops UDP and ICMP to the server and TCP to any port but P.
The client namespace has ``nameserver 127.0.0.11`` served by a DNS server of the lab's own
bound inside it (PTR and A for the lab's addresses), and allows ICMP ping sockets. The server
listens on TCP ``port`` and nothing listens on ``closed_port``. ``transfer()`` is a real TCP
transfer across the black hole: the client namespace listens on ``BIG_PORT`` and answers each
connection with 256 KiB, which the server namespace fetches — a large response travelling in
the direction netdiag measures (client to server), through router2's smaller egress.
ICMP error rate limits are lifted in the lab's namespaces (``icmp_ratelimit=0``): the tests run
traceroute, tracepath and netdiag back to back, and the kernel's default of one error per
second per peer would make whichever ran second lose answers.
``stop()`` removes exactly what ``start()`` made, by name.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.mini_dns import MiniDns, Records, ptr_name
from tests.support.netns_lab import in_netns, netns_exec, setns

PREFIX = "ndpath"
BIG_RESPONSE = 256 * 1024
BIG_PORT = 8090


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=60)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()[:500]}")
    return proc


@dataclass
class PathLab:
    """Build with ``start()`` (or ``with PathLab() as lab``); tear down with ``stop()``."""

    mtu: int | None = 1400
    port: int = 8080
    closed_port: int = 8081
    octet: int = field(default_factory=lambda: random.randint(10, 250))
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    _sockets: list[socket.socket] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _built: list[str] = field(default_factory=list)
    _black_hole: bool = False
    _filter: int | None = None
    _dns: MiniDns | None = None

    # ------------------------------------------------------------ naming

    def ns(self, role: str) -> str:
        return f"{PREFIX}-{self.tag}-{role}"

    @property
    def client(self) -> str:
        return self.ns("c")

    def addr(self, role: str) -> str:
        """The address of ``role`` (c, r1, r2, s) as the client sees it on the path."""
        o = self.octet
        return {
            "c": f"10.80.{o}.2",
            "r1": f"10.80.{o}.1",
            "r2": f"10.81.{o}.2",
            "s": f"10.82.{o}.2",
            "r2-egress": f"10.82.{o}.1",
        }[role]

    @property
    def server(self) -> str:
        return self.addr("s")

    @property
    def hops(self) -> list[str]:
        """What traceroute lists from the client: router1, router2, the server."""
        return [self.addr("r1"), self.addr("r2"), self.addr("s")]

    def exec_args(self, net_raw: bool = True, ns: str | None = None) -> list[str]:
        """argv prefix running a command in the client namespace (optionally without NET_RAW)."""
        return netns_exec(ns or self.client, net_raw)

    # ------------------------------------------------------------ build

    def __enter__(self) -> PathLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def _build(self) -> None:
        o = self.octet
        c, r1, r2, s = (self.ns(r) for r in ("c", "r1", "r2", "s"))
        for ns in (c, r1, r2, s):
            sh("ip", "netns", "add", ns)
            self._built.append(ns)
        links = [(c, r1, f"10.80.{o}"), (r1, r2, f"10.81.{o}"), (r2, s, f"10.82.{o}")]
        for left, right, net in links:
            # eth0 faces the client, eth1 the server; .1 on the client side's router end
            left_if = "eth0" if left == c else "eth1"
            sh("ip", "-n", left, "link", "add", left_if, "type", "veth", "peer", "name", "eth0",
               "netns", right)  # fmt: skip
            lo, hi = (2, 1) if left == c else (1, 2)
            sh("ip", "-n", left, "addr", "add", f"{net}.{lo}/24", "dev", left_if)
            sh("ip", "-n", right, "addr", "add", f"{net}.{hi}/24", "dev", "eth0")
        for ns in (c, r1, r2, s):
            for line in ("link set lo up", "link set eth0 up"):
                sh("ip", "-n", ns, *line.split())
        for ns in (r1, r2):
            sh("ip", "-n", ns, "link", "set", "eth1", "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if self.mtu:
            sh("ip", "-n", r2, "link", "set", "eth1", "mtu", str(self.mtu))
        sh("ip", "-n", c, "route", "add", "default", "via", f"10.80.{o}.1")
        sh("ip", "-n", r1, "route", "add", f"10.82.{o}.0/24", "via", f"10.81.{o}.2")
        sh("ip", "-n", r2, "route", "add", f"10.80.{o}.0/24", "via", f"10.81.{o}.1")
        sh("ip", "-n", s, "route", "add", "default", "via", f"10.82.{o}.1")
        for ns in (c, r1, r2, s):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        sh("ip", "netns", "exec", c, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        etc = Path("/etc/netns") / c
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.11\noptions ndots:0\n")
        self._serve()

    # ------------------------------------------------------------ variants

    def black_hole(self, on: bool) -> None:
        """(b): router2 drops the ICMP "fragmentation needed" it sends; forget learnt PMTUs."""
        op = "-I" if on else "-D"
        if on != self._black_hole:
            sh("ip", "netns", "exec", self.ns("r2"), "iptables", op, "OUTPUT", "-p", "icmp",
               "--icmp-type", "fragmentation-needed", "-j", "DROP")  # fmt: skip
            self._black_hole = on
        self.flush_pmtu()

    def set_mtu(self, mtu: int) -> None:
        """router2's egress MTU towards the server (1500: nothing lowers the path)."""
        sh("ip", "-n", self.ns("r2"), "link", "set", "eth1", "mtu", str(mtu))
        self.flush_pmtu()

    def filter_to_server(self, port: int | None) -> None:
        """(c): router1 drops UDP, ICMP and TCP other than ``port`` to the server (None: off)."""
        r1 = self.ns("r1")
        sh("ip", "netns", "exec", r1, "iptables", "-F", "FORWARD")
        self._filter = port
        if port is None:
            return
        for rule in (
            ["-p", "udp", "-j", "DROP"],
            ["-p", "icmp", "-j", "DROP"],
            ["-p", "tcp", "!", "--dport", str(port), "-j", "DROP"],
        ):
            sh("ip", "netns", "exec", r1, "iptables", "-A", "FORWARD", "-d", self.server, *rule)

    def flush_pmtu(self) -> None:
        """Drop the path MTUs the client and server learnt, so the next transfer starts afresh."""
        for ns in (self.client, self.ns("s")):
            sh("ip", "-n", ns, "route", "flush", "cache", check=False)

    # ------------------------------------------------------------ peers

    def _serve(self) -> None:
        def listener(address: str, port: int) -> socket.socket:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((address, port))
            tcp.listen(16)
            return tcp

        def make() -> tuple[socket.socket, socket.socket]:
            setns(f"/run/netns/{self.ns('s')}")
            service = listener(self.server, self.port)
            setns(f"/run/netns/{self.client}")
            return service, listener(self.addr("c"), BIG_PORT)

        service, big = in_netns(self.client, make)
        self._sockets += [service, big]
        for sock in (service, big):
            t = threading.Thread(target=self._serve_tcp, args=(sock,), daemon=True)
            t.start()
            self._threads.append(t)
        self._dns = in_netns(self.client, lambda: MiniDns("127.0.0.11", 53, self.dns_records()))
        self._dns.__enter__()

    def _serve_tcp(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        """The big listener answers 256 KiB; the service port closes after a short greeting."""
        with conn:
            conn.settimeout(5)
            try:
                if conn.getsockname()[1] == BIG_PORT:
                    conn.sendall(b"x" * BIG_RESPONSE)
                else:
                    conn.sendall(b"hello\n")
            except OSError:
                pass

    def names(self) -> dict[str, str]:
        """address -> PTR name the lab's DNS gives (routers by both their addresses)."""
        o = self.octet
        return {
            f"10.80.{o}.1": "router1.pathlab",
            f"10.81.{o}.1": "router1.pathlab",
            f"10.81.{o}.2": "router2.pathlab",
            f"10.82.{o}.1": "router2.pathlab",
            f"10.82.{o}.2": "server.pathlab",
            f"10.80.{o}.2": "client.pathlab",
        }

    def dns_records(self) -> Records:
        """PTR for the lab's addresses, A for their names (``server`` too); NXDOMAIN otherwise."""
        records: Records = {(ptr_name(a), "PTR"): [n + "."] for a, n in self.names().items()}
        for name, address in {
            "router1.pathlab": self.addr("r1"),
            "router2.pathlab": self.addr("r2"),
            "server.pathlab": self.server,
            "server": self.server,
            "client.pathlab": self.addr("c"),
        }.items():
            records[(name + ".", "A")] = [address]
        return records

    # ------------------------------------------------------------ a real transfer

    def transfer(self, timeout: float = 4.0) -> int:
        """Bytes of the client side's 256 KiB response the server side got within ``timeout`` s."""

        def fetch() -> int:
            got = 0
            end = time.monotonic() + timeout
            with socket.create_connection((self.addr("c"), BIG_PORT), timeout=timeout) as conn:
                try:
                    while (left := end - time.monotonic()) > 0:
                        conn.settimeout(left)
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        got += len(chunk)
                except TimeoutError:
                    pass
            return got

        return in_netns(self.ns("s"), fetch)

    # ------------------------------------------------------------ teardown

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        if self._dns:
            self._dns.__exit__(None, None, None)
        for s in self._sockets:
            s.close()
        for ns in self._built:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(Path("/etc/netns") / self.client, ignore_errors=True)
