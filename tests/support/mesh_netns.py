"""Agents on separate hosts: one network namespace per node on a bridge of the test's own.

Layout (names ``ndmesh-<hex>-*``, removed by name on exit even when a test fails):
  ``-br``: a bridge ``br0`` at 10.96.<o>.254/24; ``-n1`` .. ``-nN``: ``eth0`` at 10.96.<o>.<i>.
  Each node has its own DNS server on 127.0.0.11:53 in its namespace (as Docker's embedded DNS
  is per node), answering ``tasks.netdiag`` and ``netdiag`` from a table per node that the test
  may change (``set_tasks(node, [...])``); the agents run there with NETDIAG_RESOLVER=127.0.0.11,
  listening on 0.0.0.0:8099 (so they find their task address as in a container).
Faults are real: ``cut(i)`` adds ``iptables -I INPUT -i eth0 -j DROP`` in node i (traffic from
the other hosts is dropped, node i still reaches itself), ``heal(i)`` removes it.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.support.mesh_lab import ROOT, agent_env, stop_processes
from tests.support.mini_dns import MiniDns
from tests.support.netns_lab import in_netns
from tests.support.schemas import netdiag_json
from tests.support.timing import wait_for

PORT = 8099


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


class NetnsMesh:
    def __init__(self, n: int = 3, interval: float = 1.0, timeout: float = 0.5) -> None:
        self.n = n
        self.interval = interval
        self.timeout = timeout
        self.tag = f"ndmesh-{uuid.uuid4().hex[:6]}"
        self.octet = 0
        self.bridge_ns = f"{self.tag}-br"
        self.nodes = [f"{self.tag}-n{i}" for i in range(1, n + 1)]
        self.tables: dict[int, dict[tuple[str, str], list[str]]] = {}
        self.procs: dict[int, subprocess.Popen] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="ndmesh-netns-"))
        self._dns: list[MiniDns] = []
        self._cut: set[int] = set()

    def addr(self, i: int) -> str:
        return f"10.96.{self.octet}.{i}"

    def ns(self, i: int) -> str:
        return self.nodes[i - 1]

    # -- build -----------------------------------------------------------------------------
    def __enter__(self) -> NetnsMesh:
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pick_octet(self) -> int:
        routes = _ip("-4", "route").stdout
        for _ in range(100):
            octet = random.randint(10, 250)
            if f"10.96.{octet}." not in routes:
                return octet
        raise RuntimeError("no free 10.96.x.0/24")

    def _build(self) -> None:
        self.octet = self._pick_octet()
        _ip("netns", "add", self.bridge_ns)
        b = ["-n", self.bridge_ns]
        _ip(*b, "link", "add", "br0", "type", "bridge")
        _ip(*b, "addr", "add", f"10.96.{self.octet}.254/24", "dev", "br0")
        _ip(*b, "link", "set", "br0", "up")
        _ip(*b, "link", "set", "lo", "up")
        for i, ns in enumerate(self.nodes, 1):
            _ip("netns", "add", ns)
            _ip(*b, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip(*b, "link", "set", f"v{i}", "master", "br0", "up")
            n = ["-n", ns]
            _ip(*n, "link", "set", "lo", "up")
            _ip(*n, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
            _ip(*n, "link", "set", "eth0", "up")
            self.tables[i] = {
                ("tasks.netdiag.", "A"): [self.addr(j) for j in range(1, self.n + 1)],
                ("netdiag.", "A"): [f"10.96.{self.octet}.250"],
            }
        for i in range(1, self.n + 1):
            dns = in_netns(self.ns(i), lambda i=i: MiniDns("127.0.0.11", 53, self.tables[i]))
            self._dns.append(dns.__enter__())
        for i in range(1, self.n + 1):
            self.start_agent(i)

    def start_agent(self, i: int, *extra: str) -> None:
        env = agent_env({"NETDIAG_RESOLVER": "127.0.0.11", "NETDIAG_NODE": f"node{i}"})
        log = open(self.tmp / f"node{i}.log", "ab")  # noqa: SIM115 - closed below
        self.procs[i] = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns(i),
                sys.executable,
                "-m",
                "netdiag",
                "agent",
                "--interval",
                str(self.interval),
                "--timeout",
                str(self.timeout),
                *extra,
            ],
            env=env,
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        log.close()

    def stop(self) -> None:
        stop_processes(self.procs)
        for dns in self._dns:
            dns.__exit__(None, None, None)
        for ns in [*self.nodes, self.bridge_ns]:
            _ip("netns", "del", ns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- faults ----------------------------------------------------------------------------
    def cut(self, i: int) -> None:
        self._iptables(i, "-I")
        self._cut.add(i)

    def heal(self, i: int) -> None:
        self._iptables(i, "-D")
        self._cut.discard(i)

    def _iptables(self, i: int, op: str) -> None:
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.ns(i),
                "iptables",
                op,
                "INPUT",
                "-i",
                "eth0",
                "-j",
                "DROP",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def set_tasks(self, node: int, indexes: list[int]) -> None:
        """What node ``node``'s DNS answers for tasks.netdiag from now on."""
        self.tables[node][("tasks.netdiag.", "A")] = [self.addr(j) for j in indexes]

    def kill(self, i: int) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    # -- looking -------------------------------------------------------------------------
    def get(self, from_node: int, host: int, path: str, timeout: float = 10) -> bytes:
        """GET http://<node host>:8099<path> from inside node ``from_node``'s namespace."""

        def fetch() -> bytes:
            url = f"http://{self.addr(host)}:{PORT}{path}"
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.read()

        return in_netns(self.ns(from_node), fetch)

    def local(self, i: int) -> dict[str, Any]:
        return netdiag_json(self.get(i, i, "/api/v1/local"), "agent")

    def mesh(self, i: int) -> dict[str, Any]:
        return netdiag_json(self.get(i, i, "/api/v1/mesh"), "mesh")

    def netdiag(self, node: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(node), sys.executable, "-m", "netdiag", *args],
            env=agent_env({"NETDIAG_RESOLVER": "127.0.0.11"}),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def log(self, i: int) -> str:
        path = self.tmp / f"node{i}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait(self, predicate, timeout: float, what: str) -> Any:
        """``timing.wait_for``, with the tail of every agent's log when it times out."""
        try:
            return wait_for(predicate, timeout, what)
        except AssertionError as exc:
            logs = "\n".join(f"--- node{i}\n{self.log(i)[-1500:]}" for i in range(1, self.n + 1))
            raise AssertionError(f"{exc}\n{logs}") from None
