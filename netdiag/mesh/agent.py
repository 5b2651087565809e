"""The agent: rounds on a jittered interval in one thread, the HTTP port and the UDP echo.

Threads: the round thread, two helpers for DNS and targets (plus the probe engine's own while
targets run), the UDP echo, the accept loop and at most ``server.MAX_HANDLERS`` request
handlers; the peers themselves are pinged from the round thread (pinger.py). /api/v1/mesh
gathers every agent's /api/v1/local in a budget, once per ``MESH_CACHE_S`` whatever the number
of viewers, and never while holding the round's results.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from netdiag import __version__
from netdiag.deadline import Deadline
from netdiag.errors import NetdiagError
from netdiag.mesh import page
from netdiag.mesh.gather import gather_local
from netdiag.mesh.matrix import Matrix, build
from netdiag.mesh.model import UP, Identity, LocalReport, peer_set_digest
from netdiag.mesh.pinger import AGENT_MARK
from netdiag.mesh.round import Dropped, Rounds, RoundSettings
from netdiag.mesh.server import HTML, JSON
from netdiag.probes.settings import ProbeOptions
from netdiag.report import diag, dumps, envelope, printable
from netdiag.targets import Target

JITTER = 0.1  # each interval is drawn from +-10 % of --interval
FORGET_INTERVALS = 6  # an agent gone from every view stays as unknown this long in the mesh
MESH_BUDGET_S = 3.0
MESH_CACHE_S = 1.0


@dataclass
class AgentSettings:
    listen_host: str = "0.0.0.0"
    listen_port: int = 8099
    node: str = "node"
    peers_name: str = "tasks.netdiag"
    service_name: str | None = "netdiag"
    interval: float = 10.0
    timeout: float = 1.0
    udp_packets: int = 5
    targets: Sequence[Target] = ()
    probe_options: Sequence[ProbeOptions] = ()  # one per target (settings.options_for)
    mesh_budget: float = MESH_BUDGET_S
    quiet: bool = False  # log only what fails
    log: bool = True  # log changes to stderr (off for --once, which prints its round)


class Agent:
    """Build with settings, ``start()`` to bind and run, ``stop()`` from any thread."""

    def __init__(self, settings: AgentSettings, container_id: str | None = None) -> None:
        from netdiag.mesh.identity import local_addresses, pick_task_address

        self.settings = s = settings
        self.identity = Identity(
            node=s.node,
            address=pick_task_address(s.listen_host, [], []),
            container_id=container_id,
            version=__version__,
            peers_name=s.peers_name,
            service=s.service_name,
            port=s.listen_port,
            interval_s=s.interval,
        )
        self.rounds = Rounds(
            RoundSettings(
                peers_name=s.peers_name,
                service_name=s.service_name,
                port=s.listen_port,
                interval=s.interval,
                timeout=s.timeout,
                udp_packets=s.udp_packets,
                targets=s.targets,
                probe_options=s.probe_options,
            ),
            self.identity,
            local_addresses=local_addresses,
            listen_host=s.listen_host,
        )
        self.report: LocalReport | None = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # guards report and ping document (never held for I/O)
        self._ping = self._ping_document()
        self._mesh_lock = threading.Lock()  # one gathering at a time; others use its result
        self._mesh_cache: tuple[float, Matrix, list, bytes] | None = None
        self._known: dict[str, tuple[str | None, float]] = {}  # address -> (node, last seen)
        self._known_lock = threading.Lock()
        self._metrics: Any = None
        self._server: Any = None
        self._echo: Any = None
        self._threads: list[threading.Thread] = []

    # -- documents ---------------------------------------------------------------------------
    def _ping_document(self) -> bytes:
        report = self.report
        peers = None
        if report is not None and report.dns_peers is not None:
            peers = {"count": len(report.dns_peers), "digest": peer_set_digest(report.dns_peers)}
        doc = {
            "agent": AGENT_MARK,
            "node": self.identity.node,
            "address": self.identity.address,
            "version": __version__,
            "container_id": (self.identity.container_id or "")[:12] or None,
            "round": report.number if report else 0,
            "peers": peers,
        }
        return json.dumps(doc).encode()

    def local_document(self) -> dict[str, Any] | None:
        """The /api/v1/local document (the envelope of ``agent``), None before the first round."""
        report = self.report
        if report is None:
            return None
        age = time.monotonic() - report.finished
        return envelope("agent", report.ok, report.duration_ms, report.to_payload(age))

    def mesh(self) -> tuple[Matrix, list, bytes]:
        """The matrix, its findings and the /api/v1/mesh document; cached for MESH_CACHE_S."""
        from netdiag.mesh.culprit import analyze

        with self._mesh_lock:
            now = time.monotonic()
            if self._mesh_cache and now - self._mesh_cache[0] < MESH_CACHE_S:
                return self._mesh_cache[1:]
            start = now
            report, own = self.report, self.local_document()
            # Until this agent finds its task address (Swarm lists a task in DNS once it is
            # healthy) its own row waits: a row keyed 0.0.0.0 would match nobody's column.
            me = self.identity.address
            addresses: list[str] = []
            if report is not None:
                addresses = list(report.dns_peers or []) + [p.address for p in report.peers]
            per = max(1.0, 2 * self.settings.timeout)
            fetched = gather_local(
                addresses,
                self.settings.listen_port,
                per,
                Deadline(self.settings.mesh_budget),
                known={me: own} if own and me else None,
            )
            now = time.monotonic()
            remembered = self._remember(fetched, now)
            matrix = build(fetched, now, remembered)
            findings = analyze(matrix)
            via = f"{self.identity.node} ({me or 'address not in DNS yet'})"
            doc = envelope(
                "mesh",
                matrix.ok,
                (time.monotonic() - start) * 1000,
                matrix.to_payload(findings, via),
            )
            body = (dumps(doc) + "\n").encode()
            self._mesh_cache = (time.monotonic(), matrix, findings, body)
            return matrix, findings, body

    def _remember(self, fetched: Sequence[Any], now: float) -> dict[str, str | None]:
        """Note who the fetched reports name; return the agents seen within the window."""
        with self._known_lock:
            return self._remember_locked(fetched, now)

    def _remember_locked(self, fetched: Sequence[Any], now: float) -> dict[str, str | None]:
        for f in fetched:
            if f.doc is None:
                continue
            me = f.doc.get("agent") if isinstance(f.doc.get("agent"), dict) else {}
            node = me.get("node") if isinstance(me.get("node"), str) else None
            self._known[f.address] = (node, now)
            for p in f.doc.get("peers") or []:
                if isinstance(p, dict) and isinstance(p.get("address"), str):
                    old = self._known.get(p["address"], (None, now))[0]
                    name = p.get("node") if isinstance(p.get("node"), str) else old
                    self._known[p["address"]] = (name, now)
        forget = FORGET_INTERVALS * self.settings.interval
        for address, (_, seen) in list(self._known.items()):
            if now - seen > forget:
                del self._known[address]
        return {a: node for a, (node, _) in self._known.items()}

    # -- HTTP ----------------------------------------------------------------------------------
    def route(self, path: str, query: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET; every route answers from memory or cache."""
        if path == "/ping":
            return 200, JSON, self._ping
        if path == "/metrics":
            from netdiag.mesh.metrics import CONTENT_TYPE

            return 200, CONTENT_TYPE, self._metrics.render()
        if path == "/api/v1/local":
            doc = self.local_document()
            if doc is None:
                body = dumps({"error": "the first round has not finished yet"}) + "\n"
                return 503, JSON, body.encode()
            return 200, JSON, (dumps(doc) + "\n").encode()
        if path == "/api/v1/mesh":
            return 200, JSON, self.mesh()[2]
        if path in ("/", "/index.html"):
            matrix, findings, _ = self.mesh()
            html = page.render_page(
                matrix, findings, self.identity.node, __version__, self.settings.interval
            )
            return 200, HTML, html.encode()
        if path == "/fragment":
            matrix, findings, _ = self.mesh()
            return 200, HTML, page.render_fragment(matrix, findings).encode()
        if path.startswith("/static/"):
            found = page.static_file(path[len("/static/") :])
            if found:
                return 200, found[1], found[0]
        return 404, "text/plain; charset=utf-8", b"not found\n"

    # -- rounds --------------------------------------------------------------------------------
    def run_round(self, deadline: Deadline | None = None) -> tuple[LocalReport, list[Dropped]]:
        """One round (within ``deadline``, default 0.9 x the interval); publishes its report,
        metrics and ping document."""
        previous = self.report
        report, dropped = self.rounds.run(deadline=deadline)
        with self._lock:
            self.report = report
            self._ping = self._ping_document()
        with self._known_lock:  # not the mesh lock: a gathering must never delay a round
            now = time.monotonic()
            for p in report.peers:
                self._known[p.address] = (p.node, now)
        if self._metrics is not None:
            self._metrics.update(report, dropped)
        self._log_changes(previous, report, dropped)
        return report, dropped

    def _log_changes(
        self, before: LocalReport | None, after: LocalReport, dropped: Sequence[Dropped]
    ) -> None:
        """One stderr line per change; names and details come from peers, hence printable.
        Quiet: only what fails (a peer no longer up, a first round with peers down, a lookup
        that fails)."""
        if not self.settings.log:
            return
        quiet = self.settings.quiet
        old = {p.address: p for p in before.peers} if before else {}
        if before is None:
            up = sum(p.up for p in after.peers)
            if not quiet or up < len(after.peers):
                diag(
                    f"netdiag agent {printable(self.identity.node)}: first round, {up} of "
                    f"{len(after.peers)} peers up (address {self.identity.address or 'unknown'})"
                )
        for p in after.peers:
            prev = old.get(p.address)
            name = printable(p.node or (prev.node if prev else None) or "?")
            failing = p.state != UP or not p.up
            if quiet and not failing:
                continue
            if prev is None and before is not None:
                diag(f"netdiag agent: new peer {name} {p.address}: {p.state}")
            elif prev is not None and (prev.state, prev.up) != (p.state, p.up):
                why = "" if p.up else f" ({p.ping.status}: {printable(p.ping.detail)})"
                diag(f"netdiag agent: peer {name} {p.address}: {prev.state} -> {p.state}{why}")
        for gone in dropped:
            if not quiet:
                diag(f"netdiag agent: dropped peer {printable(gone.node or '?')} {gone.address}")
        lookup = after.peers_lookup
        if not lookup.ok and (before is None or before.peers_lookup.ok):
            diag(f"netdiag agent: {lookup.name} did not resolve: {printable(lookup.detail)}")

    def _round_loop(self) -> None:
        s = self.settings
        # Stagger agents started together, then keep each round +-JITTER of the interval.
        if self.stopping.wait(random.uniform(0, min(1.0, s.interval * JITTER))):
            return
        while not self.stopping.is_set():
            start = time.monotonic()
            self.run_round()
            pause = s.interval * random.uniform(1 - JITTER, 1 + JITTER)
            if self.stopping.wait(max(0.0, start + pause - time.monotonic())):
                return

    # -- life ----------------------------------------------------------------------------------
    def start(self, rounds: bool = True) -> None:
        """Bind the HTTP port and the UDP echo on the same number, then start the rounds."""
        from netdiag.mesh.metrics import Metrics
        from netdiag.mesh.server import AgentHTTPServer
        from netdiag.mesh.udp_echo import EchoServer

        s = self.settings
        self._metrics = Metrics(s.node)
        where = f"{s.listen_host}:{s.listen_port}"
        try:
            self._server = AgentHTTPServer(s.listen_host, s.listen_port, self)
        except OSError as exc:
            raise NetdiagError(f"cannot listen on {where}/tcp: {exc.strerror or exc}") from None
        try:
            self._echo = EchoServer(s.listen_host, s.listen_port).start()
        except OSError as exc:
            self._server.server_close()
            raise NetdiagError(f"cannot listen on {where}/udp: {exc.strerror or exc}") from None
        serve = threading.Thread(
            target=self._server.serve_forever, args=(0.5,), name="http", daemon=True
        )
        self._threads = [serve]
        if rounds:
            self._threads.append(
                threading.Thread(target=self._round_loop, name="rounds", daemon=True)
            )
        for t in self._threads:
            t.start()
        if not rounds or s.quiet:
            return
        diag(
            f"netdiag agent {printable(s.node)}: listening on {where} (tcp, udp echo), peers {s.peers_name} "
            f"every {s.interval:g}s, {len(s.targets)} target(s)"
        )

    def wait(self) -> None:
        """Block until ``stop()``; wakes regularly so signal handlers run."""
        while not self.stopping.wait(0.5):
            pass

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        """Stop everything started; safe to call twice."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._echo is not None:
            self._echo.stop()
            self._echo = None
        for t in self._threads:
            t.join(5)
        self.rounds.close()
