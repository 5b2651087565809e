"""A lab of network namespaces on one private bridge, for scan's tests and benchmark.

Layout (subnet 10.77.X.0/24, every name starts ``ndscan-X-``):
  ``-r``  router namespace holding bridge br0 (10.77.X.1: a gateway no DNS name knows)
  ``-s``  scanner namespace (10.77.X.2), resolv.conf ``nameserver 127.0.0.11`` served by a
          DNS server of the lab's own (mini_dns) bound to 127.0.0.11:53 inside it (A and PTR
          for hosts)
  ``-hN`` hosts from 10.77.X.10 up, some addresses left empty; each may listen on TCP ports
          (Python listeners; port 80 answers HTTP), one may run a real MariaDB, one may DROP
          all IP input with nft (it still answers ARP).
Nothing touches the root namespace's links or routes. ``stop()`` removes exactly what
``start()`` made, by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.mini_dns import MiniDns, Records, ptr_name

PREFIX = "ndscan"
CLONE_NEWNET = 0x40000000
EMPTY_OFFSETS = (5, 11, 17)  # host slots left without a namespace: empty addresses
_libc = ctypes.CDLL(None, use_errno=True)


def setns(path: str) -> None:
    """Move the calling thread into the network namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def in_netns(ns: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread that lives in namespace ``ns``; return its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            setns(f"/run/netns/{ns}")
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


@dataclass
class DecoyNamespace:
    """See ``decoy_resolver_namespace``: ``env`` points netdiag at ``ours``."""

    ns: str
    decoy: MiniDns  # 127.0.0.1:53 there, named by its resolv.conf: the "machine's resolver"
    ours: MiniDns  # another port there, for NETDIAG_RESOLVER

    @property
    def env(self) -> dict[str, str]:
        return {
            "NETDIAG_RESOLVER": f"127.0.0.1#{self.ours.port}",
            "NETDIAG_RESOLV_CONF": "/dev/null",
        }


@contextlib.contextmanager
def decoy_resolver_namespace(prefix: str, records: Records) -> Iterator[DecoyNamespace]:
    """A namespace of the test's own (``PREFIX-<hex>``, lo up) whose resolv.conf names a decoy
    DNS server on 127.0.0.1:53 inside it, so that whatever runs there and asks the machine's
    resolver (getaddrinfo) asks the decoy; a second server with the same ``records`` listens on
    another port there for netdiag's own resolver. Both note every question; everything is
    removed by name on exit, even on failure."""
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    etc = Path("/etc/netns") / ns
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        decoy = in_netns(ns, lambda: MiniDns("127.0.0.1", 53, records))
        ours = in_netns(ns, lambda: MiniDns("127.0.0.1", 0, records))
        with decoy, ours:
            yield DecoyNamespace(ns, decoy, ours)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def netns_exec(ns: str, net_raw: bool = True) -> list[str]:
    """argv prefix running a command in namespace ``ns``, optionally without CAP_NET_RAW."""
    args = ["ip", "netns", "exec", ns]
    if not net_raw:
        args += ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"]
    return args


@dataclass
class LabHost:
    name: str  # DNS name (short)
    ns: str
    ip: str
    ports: tuple[int, ...] = ()
    role: str = "plain"  # plain, mariadb, drop, silent (accepts on 5432, never says a word)


@dataclass
class NetnsLab:
    """Build with ``start()`` (or ``with NetnsLab(...) as lab``); tear down with ``stop()``."""

    hosts_wanted: int = 24
    mariadb: bool = True
    drop: bool = True
    octet: int | None = None
    ping_sockets: bool = True  # allow ICMP ping sockets for root in the scanner namespace
    silent: bool = False  # host h3 accepts on 5432 and stays silent (identification's worst case)
    port_cycle: tuple[tuple[int, ...], ...] = ((80,), (5432,), (), (3306, 80), (22,))
    hosts: list[LabHost] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    _tmp: str | None = None
    _mariadb: subprocess.Popen | None = None
    _server: threading.Thread | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _etc: Path | None = None
    _dns: MiniDns | None = None

    # ------------------------------------------------------------ naming

    @property
    def tag(self) -> str:
        return f"{PREFIX}-{self.octet}"

    @property
    def subnet(self) -> str:
        return f"10.77.{self.octet}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.77.{self.octet}.1"

    @property
    def scanner_ip(self) -> str:
        return f"10.77.{self.octet}.2"

    @property
    def scanner(self) -> str:
        return f"{self.tag}-s"

    @property
    def router(self) -> str:
        return f"{self.tag}-r"

    @property
    def empty(self) -> list[str]:
        return [f"10.77.{self.octet}.{10 + o}" for o in EMPTY_OFFSETS if o < self._slots()]

    def _slots(self) -> int:
        n = self.hosts_wanted
        return n + sum(1 for o in EMPTY_OFFSETS if o < n + len(EMPTY_OFFSETS))

    def host(self, role: str) -> LabHost:
        return next(h for h in self.hosts if h.role == role)

    def exec_args(self, net_raw: bool = True) -> list[str]:
        """argv prefix running a command in the scanner namespace (optionally without NET_RAW)."""
        return netns_exec(self.scanner, net_raw)

    # ------------------------------------------------------------ build

    def __enter__(self) -> NetnsLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pick_octet(self) -> int:
        taken = set(
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        )
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        for _ in range(200):
            octet = random.randint(10, 250)
            if f"10.77.{octet}." not in routes and not any(
                t.startswith(f"{PREFIX}-{octet}-") for t in taken
            ):
                return octet
        raise RuntimeError("no free 10.77.x.0/24 for the lab")

    def start(self) -> None:
        if self.octet is None:
            self.octet = self._pick_octet()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def _layout(self) -> None:
        slot = 0
        index = 0
        while len(self.hosts) < self.hosts_wanted:
            if slot in EMPTY_OFFSETS:
                slot += 1
                continue
            index += 1
            ip = f"10.77.{self.octet}.{10 + slot}"
            role = "plain"
            ports = self.port_cycle[index % len(self.port_cycle)]
            if index == 1 and self.mariadb:
                role, ports = "mariadb", (3306,)
            elif index == 2 and self.drop:
                role, ports = "drop", (80,)
            elif index == 3 and self.silent:
                role, ports = "silent", (5432,)
            self.hosts.append(LabHost(f"h{index}", f"{self.tag}-h{index}", ip, ports, role))
            slot += 1

    def _build(self) -> None:
        self._layout()
        self.namespaces = [self.router, self.scanner, *[h.ns for h in self.hosts]]
        root = [f"netns add {ns}" for ns in self.namespaces]
        peers = [("vs", self.scanner)] + [(f"v{i + 1}", h.ns) for i, h in enumerate(self.hosts)]
        root += [
            f"link add {v} netns {self.router} type veth peer name eth0 netns {ns}"
            for v, ns in peers
        ]
        _ip_batch(root)
        per_ns: dict[str, list[str]] = {
            self.router: [
                "link set lo up",
                "link add br0 type bridge",
                f"addr add {self.gateway}/24 dev br0",
                "link set br0 up",
                *[f"link set {v} master br0" for v, _ in peers],
                *[f"link set {v} up" for v, _ in peers],
            ],
            self.scanner: [
                "link set lo up",
                f"addr add {self.scanner_ip}/24 dev eth0",
                "link set eth0 up",
                # as in a container: the default route goes via the network's gateway (the
                # router namespace has no other link, so nothing can leave the lab)
                f"route add default via {self.gateway}",
            ],
        }
        for h in self.hosts:
            per_ns[h.ns] = ["link set lo up", f"addr add {h.ip}/24 dev eth0", "link set eth0 up"]
        procs = [
            subprocess.Popen(["ip", "-n", ns, "-batch", "-"], stdin=subprocess.PIPE, text=True)
            for ns in per_ns
        ]
        for proc, cmds in zip(procs, per_ns.values(), strict=True):
            proc.communicate("\n".join(cmds) + "\n")
            if proc.returncode:
                raise RuntimeError(f"ip -batch failed in lab namespace ({proc.returncode})")
        self._etc = Path("/etc/netns") / self.scanner
        self._etc.mkdir(parents=True, exist_ok=True)
        (self._etc / "resolv.conf").write_text("nameserver 127.0.0.11\noptions ndots:0\n")
        if self.ping_sockets:
            _run(*self.exec_args(), "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        for h in self.hosts:
            if h.role == "drop":
                self._drop_all_input(h.ns)
        self._start_listeners()
        if self.mariadb:
            self._start_mariadb(self.host("mariadb"))

    @staticmethod
    def _drop_all_input(ns: str) -> None:
        """DROP every IP packet coming in (ARP still answers): nft, or iptables (docker.io's)."""
        if shutil.which("nft"):
            rules = "table inet ndscan {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}\n"
            cmd = ["nft", "-f", "-"]
        else:
            rules, cmd = "", ["iptables", "-A", "INPUT", "-j", "DROP"]
        subprocess.run(["ip", "netns", "exec", ns, *cmd], input=rules, text=True, check=True)

    def refuse(self, host: LabHost, port: int, refused: bool = True) -> None:
        """Make ``port`` of ``host`` answer with a TCP reset (or accept again): iptables."""
        action = "-I" if refused else "-D"
        rule = ["INPUT", "-p", "tcp", "--dport", str(port), "-j", "REJECT"]
        rule += ["--reject-with", "tcp-reset"]
        subprocess.run(["ip", "netns", "exec", host.ns, "iptables", action, *rule], check=True)

    # ------------------------------------------------------------ peers

    def _start_listeners(self) -> None:
        def make() -> list[tuple[socket.socket, str]]:
            made: list[tuple[socket.socket, str]] = []
            for h in self.hosts:
                if h.role == "mariadb":
                    continue
                setns(f"/run/netns/{h.ns}")
                for port in h.ports:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((h.ip, port))
                    s.listen(64)
                    kind = "http" if port in (80, 8080) else "tcp"
                    made.append((s, "silent" if h.role == "silent" else kind))
            return made

        made = in_netns(self.scanner, make)
        self._sockets = [s for s, _ in made]
        self._server = threading.Thread(target=self._serve, args=(made,), daemon=True)
        self._server.start()
        self._dns = in_netns(self.scanner, lambda: MiniDns("127.0.0.11", 53, self.dns_records()))
        self._dns.__enter__()

    def _serve(self, made: list[tuple[socket.socket, str]]) -> None:
        """One thread for every listener: "tcp" ports accept and close, "http" ports answer one
        request (without holding up the others), "silent" ports keep the connection open and
        never send."""
        sel = selectors.DefaultSelector()
        for s, kind in made:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, kind)
        while not self._stop.is_set():
            for key, _ in sel.select(0.2):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    if key.data in ("http-conn", "silent-conn"):
                        data = s.recv(4096)
                        if key.data == "http-conn" and data:
                            s.sendall(
                                b"HTTP/1.0 200 OK\r\nServer: ndscan-lab\r\n"
                                b"Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
                            )
                        if key.data == "http-conn" or not data:
                            sel.unregister(s)
                            s.close()
                        continue
                    conn, _ = s.accept()
                except OSError:
                    if key.data in ("http-conn", "silent-conn"):
                        with contextlib.suppress(KeyError, ValueError):
                            sel.unregister(s)
                        s.close()
                    continue
                if key.data in ("http", "silent"):
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, f"{key.data}-conn")
                else:
                    conn.close()
        for key in list(sel.get_map().values()):
            if isinstance(key.data, str) and key.data.endswith("-conn"):
                key.fileobj.close()  # type: ignore[union-attr]
        sel.close()

    def dns_records(self) -> Records:
        """A and PTR for the lab's hosts (``hN`` and ``hN.ndscan``); NXDOMAIN otherwise."""
        records: Records = {}
        for h in self.hosts:
            records[(f"{h.name}.", "A")] = [h.ip]
            records[(f"{h.name}.ndscan.", "A")] = [h.ip]
            records[(ptr_name(h.ip), "PTR")] = [f"{h.name}.ndscan."]
        return records

    def _start_mariadb(self, h: LabHost) -> None:
        self._tmp = tempfile.mkdtemp(prefix="ndscan-mariadb-")
        data = os.path.join(self._tmp, "data")
        os.mkdir(data)
        shutil.chown(self._tmp, "mysql")
        shutil.chown(data, "mysql")
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not install:
            raise RuntimeError("mariadb-install-db not found (apt-get install mariadb-server)")
        _run(
            install,
            "--no-defaults",
            "--user=mysql",
            f"--datadir={data}",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        )
        self._mariadb = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                h.ns,
                "mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                f"--socket={self._tmp}/sock",
                f"--pid-file={self._tmp}/pid",
                "--port=3306",
                f"--bind-address={h.ip}",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=8M",
                f"--log-error={self._tmp}/err.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 30

        def ready() -> bool:
            try:
                socket.create_connection((h.ip, 3306), timeout=0.5).close()
                return True
            except OSError:
                return False

        while time.monotonic() < end:
            if self._mariadb.poll() is not None:
                raise RuntimeError(f"mariadbd exited; see {self._tmp}/err.log")
            if in_netns(h.ns, ready):
                return
            time.sleep(0.2)
        raise RuntimeError("mariadbd did not listen within 30s")

    # ------------------------------------------------------------ teardown

    def stop(self) -> None:
        self._stop.set()
        if self._server:
            self._server.join(2)
        if self._dns:
            self._dns.__exit__(None, None, None)
        for s in self._sockets:
            s.close()
        if self._mariadb and self._mariadb.poll() is None:
            self._mariadb.terminate()
            try:
                self._mariadb.wait(15)
            except subprocess.TimeoutExpired:
                self._mariadb.kill()
                self._mariadb.wait(5)
        if self.namespaces:
            _ip_batch([f"netns del {ns}" for ns in self.namespaces], check=False)
        if self._etc:
            shutil.rmtree(self._etc, ignore_errors=True)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _ip_batch(lines: list[str], check: bool = True) -> None:
    proc = subprocess.run(
        ["ip", "-force", "-batch", "-"],
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
    )
    if check and proc.returncode:
        raise RuntimeError(f"ip -batch failed: {proc.stderr.strip()[:500]}")


def _run(*args: str) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip()[:500]}")


if __name__ == "__main__":  # a lab to play with: python -m tests.support.netns_lab [HOSTS]
    import sys

    lab = NetnsLab(hosts_wanted=int(sys.argv[1]) if len(sys.argv) > 1 else 24)
    with lab:
        print(f"lab {lab.subnet}: scanner namespace {lab.scanner}; Ctrl-C to tear down")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
