"""Real agents on loopback for the mesh tests: N ``netdiag agent`` processes on 127.0.88.1..N.

A DNS server of the test's own (tests/support/mini_dns.MiniDns on 127.0.0.1, handed to every
agent through NETDIAG_RESOLVER) answers ``tasks.netdiag`` with the agents' addresses and
``netdiag`` with a VIP-like address; ``set_tasks()`` changes the answer while they run, as
Swarm does when a task ends. Everything is stopped by pid on exit, even on failure.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.support.mini_dns import MiniDns
from tests.support.schemas import netdiag_json
from tests.support.timing import wait_for

ROOT = Path(__file__).resolve().parents[2]
NET = "127.0.88."


def agent_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETDIAG_", "MYSQL_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def free_common_port(addresses: Sequence[str]) -> int:
    """A port free for TCP and UDP on every address (bound and released here)."""
    for _ in range(200):
        port = random.randint(20000, 59000)
        socks = []
        try:
            for a in addresses:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no common free port")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stop_processes(procs: dict[int, subprocess.Popen]) -> None:
    """SIGTERM every process still running, wait (SIGKILL after 10 s), forget them all."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    procs.clear()


def chromium_dom(
    url: str, profile: Path, settle_ms: int | None = None, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """Debian's headless chromium loading ``url`` (run after ``prefix``, e.g. ``ip netns exec
    NS``); stdout is the DOM, after ``settle_ms`` of virtual time when given (page scripts
    ran). Skips the test when chromium is not installed."""
    import pytest

    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("needs Debian's chromium (installed by scripts/test)")
    argv = [
        *prefix, chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
        *([f"--virtual-time-budget={settle_ms}"] if settle_ms is not None else []),
        "--dump-dom", url,
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


class LoopbackMesh:
    """``with LoopbackMesh(3) as lab``: agents node1..nodeN; ``lab.url(i, path)``."""

    def __init__(
        self,
        n: int = 3,
        interval: float = 1.0,
        timeout: float = 0.5,
        args: Callable[[int], list[str]] | None = None,
        env: Callable[[int], dict[str, str]] | None = None,
    ) -> None:
        self.n = n
        self.interval = interval
        self.timeout = timeout
        self.args = args or (lambda i: [])
        self.env = env or (lambda i: {})
        self.addresses = [f"{NET}{i}" for i in range(1, n + 1)]
        self.port = 0
        self.records: dict[tuple[str, str], list[str]] = {}
        self.dns: MiniDns | None = None
        self.procs: dict[int, subprocess.Popen] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="ndmesh-"))

    # -- life ------------------------------------------------------------------------------
    def __enter__(self) -> LoopbackMesh:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.port = free_common_port(self.addresses)
        self.records = {
            ("tasks.netdiag.", "A"): list(self.addresses),
            ("netdiag.", "A"): [f"{NET}250"],
        }
        self.dns = MiniDns("127.0.0.1", 0, self.records).__enter__()
        for i in range(1, self.n + 1):
            self.start_agent(i)
        for i in range(1, self.n + 1):
            wait_for(lambda i=i: self.local(i)["round"]["number"] >= 1, 30, f"node{i}'s round")

    def resolver_env(self) -> dict[str, str]:
        assert self.dns is not None
        return {"NETDIAG_RESOLVER": f"127.0.0.1#{self.dns.port}"}

    def start_agent(self, i: int) -> subprocess.Popen:
        env = agent_env({**self.resolver_env(), "NETDIAG_NODE": f"node{i}", **self.env(i)})
        argv = [
            sys.executable,
            "-m",
            "netdiag",
            "agent",
            "--listen",
            f"{self.addresses[i - 1]}:{self.port}",
            "--interval",
            str(self.interval),
            "--timeout",
            str(self.timeout),
            *self.args(i),
        ]
        log = open(self.tmp / f"node{i}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[i] = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=self.tmp)
        log.close()
        return self.procs[i]

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(sig)
        proc.wait(10)

    def stop(self) -> None:
        stop_processes(self.procs)
        if self.dns is not None:
            self.dns.__exit__(None, None, None)
            self.dns = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- DNS ------------------------------------------------------------------------------
    def set_tasks(self, indexes: Sequence[int]) -> None:
        """What ``tasks.netdiag`` answers from now on (as Swarm does when tasks come and go)."""
        self.records[("tasks.netdiag.", "A")] = [self.addresses[i - 1] for i in indexes]

    # -- HTTP ------------------------------------------------------------------------------
    def url(self, i: int, path: str = "/") -> str:
        return f"http://{self.addresses[i - 1]}:{self.port}{path}"

    def get(self, i: int, path: str) -> bytes:
        status, body = http_get(self.url(i, path))
        if status != 200:
            raise ValueError(f"HTTP {status} from node{i}{path}")
        return body

    def local(self, i: int) -> dict[str, Any]:
        return netdiag_json(self.get(i, "/api/v1/local"), "agent")

    def mesh(self, i: int) -> dict[str, Any]:
        return netdiag_json(self.get(i, "/api/v1/mesh"), "mesh")

    def log(self, i: int) -> str:
        path = self.tmp / f"node{i}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def netdiag(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
        return subprocess.run(
            [sys.executable, "-m", "netdiag", *args],
            capture_output=True,
            text=True,
            env=agent_env({**self.resolver_env(), **(env or {})}),
            timeout=timeout,
        )
