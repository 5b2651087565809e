"""The agent's Prometheus metrics (text format through ``prometheus_client``; agent only).

Stable names, documented in docs/mesh.md:

- ``netdiag_peer_up{source_node,target_node,target_address}`` 1 when the peer's /ping answered
- ``netdiag_peer_stale{...}`` 1 when the peer vanished from this node's DNS (still probed)
- ``netdiag_peer_rtt_seconds{...}`` histogram of /ping round trips
- ``netdiag_peer_udp_loss_ratio{...}`` share of UDP echoes lost in the latest round
- ``netdiag_dns_lookup_seconds{node,name}``, ``netdiag_dns_lookup_ok{node,name}``
- ``netdiag_dns_agents{node}`` how many agents this node's DNS lists
- ``netdiag_target_up{node,target}`` 1 when every address of a ``--target`` answered ok
- ``netdiag_round_duration_seconds{node}`` histogram; ``netdiag_round_timestamp_seconds{node}``
- ``netdiag_agent_info{node,address,version}`` 1

Gauges are drawn from the latest round at each scrape, so a peer gone from the round is gone
from them; the histograms of a dropped peer are removed explicitly (goldpinger keeps them).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from netdiag.mesh.model import LocalReport, PeerResult
    from netdiag.mesh.round import Dropped

# No *_created series: a timestamp per histogram series doubles their count for nothing here.
disable_created_metrics()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# goldpinger's 5 ms - 30 s, with sub-millisecond steps below: overlay RTTs are often < 1 ms.
RTT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
ROUND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PEER_LABELS = ("source_node", "target_node", "target_address")


def peer_labels(source: str, peer: PeerResult) -> tuple[str, str, str]:
    return (source, peer.node or peer.address, peer.address)


class _Latest(Collector):
    """Gauges drawn from the latest round at scrape time."""

    def __init__(self, owner: Metrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self.owner.report
        node = self.owner.node
        up = GaugeMetricFamily(
            "netdiag_peer_up",
            "1 when the peer's /ping answered in the latest round",
            labels=PEER_LABELS,
        )
        stale = GaugeMetricFamily(
            "netdiag_peer_stale",
            "1 when the peer vanished from this node's DNS but is still probed",
            labels=PEER_LABELS,
        )
        loss = GaugeMetricFamily(
            "netdiag_peer_udp_loss_ratio",
            "share of UDP echo packets lost in the latest round (0-1)",
            labels=PEER_LABELS,
        )
        dns_s = GaugeMetricFamily(
            "netdiag_dns_lookup_seconds",
            "time this node's resolver took for the name in the latest round",
            labels=("node", "name"),
        )
        dns_ok = GaugeMetricFamily(
            "netdiag_dns_lookup_ok",
            "1 when the name resolved in the latest round",
            labels=("node", "name"),
        )
        agents = GaugeMetricFamily(
            "netdiag_dns_agents",
            "agents this node's DNS lists for the peers name",
            labels=("node",),
        )
        target = GaugeMetricFamily(
            "netdiag_target_up",
            "1 when every address of the target answered ok in the latest round",
            labels=("node", "target"),
        )
        stamp = GaugeMetricFamily(
            "netdiag_round_timestamp_seconds",
            "when the latest round started (Unix time)",
            labels=("node",),
        )
        info = GaugeMetricFamily(
            "netdiag_agent_info",
            "this agent: node, task address, version",
            labels=("node", "address", "version"),
        )
        if report is not None:
            ident = report.identity
            info.add_metric([node, ident.address or "", ident.version], 1)
            stamp.add_metric([node], report.started_at)
            for p in report.peers:
                labels = list(peer_labels(node, p))
                up.add_metric(labels, 1 if p.up else 0)
                stale.add_metric(labels, 1 if p.state == "stale" else 0)
                if p.ping.udp.loss is not None:
                    loss.add_metric(labels, p.ping.udp.loss)
            lookups = [report.peers_lookup] + (
                [report.service_lookup] if report.service_lookup else []
            )
            for lk in lookups:
                dns_s.add_metric([node, lk.name], lk.elapsed_ms / 1000)
                dns_ok.add_metric([node, lk.name], 1 if lk.ok else 0)
            if report.dns_peers is not None:
                agents.add_metric([node], len(report.dns_peers))
            for t in report.targets:
                target.add_metric([node, t.target], 1 if t.up else 0)
        yield from (up, stale, loss, dns_s, dns_ok, agents, target, stamp, info)


class Metrics:
    """The agent's registry: ``update()`` after each round, ``render()`` per scrape."""

    def __init__(self, node: str, process: bool = True) -> None:
        self.node = node
        self.report: LocalReport | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.rtt = Histogram(
            "netdiag_peer_rtt_seconds",
            "round trip of GET /ping to the peer (request sent to answer read)",
            PEER_LABELS,
            buckets=RTT_BUCKETS,
            registry=self.registry,
        )
        self.rounds = Histogram(
            "netdiag_round_duration_seconds",
            "time one round took (DNS, every peer, every target)",
            ("node",),
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Latest(self))
        if process:
            from prometheus_client import ProcessCollector

            ProcessCollector(registry=self.registry)
        self._series: dict[str, tuple[str, str, str]] = {}  # address -> its rtt labels
        self._lock = threading.Lock()

    def update(self, report: LocalReport, dropped: Sequence[Dropped] = ()) -> None:
        with self._lock:
            for p in report.peers:
                labels = peer_labels(self.node, p)
                old = self._series.get(p.address)
                if old is not None and old != labels:  # the peer's node name became known
                    with contextlib.suppress(KeyError):
                        self.rtt.remove(*old)
                self._series[p.address] = labels
                if p.up and p.ping.rtt_ms is not None:
                    self.rtt.labels(*labels).observe(p.ping.rtt_ms / 1000)
            for gone in dropped:
                labels = self._series.pop(gone.address, None)
                if labels is not None:
                    with contextlib.suppress(KeyError):
                        self.rtt.remove(*labels)
            self.rounds.labels(self.node).observe(report.duration_ms / 1000)
            self.report = report

    def render(self) -> bytes:
        with self._lock:
            return generate_latest(self.registry)
