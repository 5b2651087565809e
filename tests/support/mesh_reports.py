"""Agents' reports built with the agent's own model, for pure tests of matrix and culprit.

``cluster(n, down={(s, t): "timeout"}, ...)`` gives the views (as ``gather.Fetched``) of ``n``
agents named node1..nodeN at 10.0.9.1..N, where every pair is up except those listed; the JSON
is produced by ``LocalReport.to_payload`` inside the real envelope, exactly what
/api/v1/local serves.
"""

from __future__ import annotations

from collections.abc import Mapping

from netdiag.mesh.gather import Fetched
from netdiag.mesh.model import (
    DOWN,
    STALE,
    UP,
    DnsLookup,
    Identity,
    LocalReport,
    PeerPing,
    PeerResult,
    TargetOutcome,
    UdpEcho,
    peer_set_digest,
)
from netdiag.report import envelope
from netdiag.result import ProbeResult
from netdiag.status import Status

NOW = 1000.0


def addr(i: int) -> str:
    return f"10.0.9.{i}"


def report(
    i: int,
    peers: Mapping[int, tuple[str, str | None]],
    dns: list[int] | None = None,
    node: str | None = None,
    names: Mapping[int, str] | None = None,
    targets: Mapping[str, str] | None = None,
    udp_loss: Mapping[int, float] | None = None,
    interval: float = 10.0,
    lookup_error: str | None = None,
) -> LocalReport:
    """Agent ``i``'s round; ``peers`` maps j -> (state, status) with status None for ok."""
    names = names or {}
    dns_addrs = (
        None if lookup_error else sorted(addr(j) for j in (dns if dns is not None else peers))
    )
    results = []
    for j, (state, status) in peers.items():
        ok = status is None
        info = {"agent": "netdiag-agent", "node": names.get(j, f"node{j}")} if ok else {}
        if ok and dns_addrs is not None:
            info["peers"] = {"count": len(dns_addrs), "digest": peer_set_digest(dns_addrs)}
        sent = 5
        lost = round((udp_loss or {}).get(j, 0.0 if ok else 1.0) * sent)
        ping = PeerPing(
            addr(j),
            status or "ok",
            None if ok else "connect",
            "ok" if ok else f"{status} (test)",
            0.2 if ok else None,
            0.5 + j / 10 if ok else None,
            info,
            UdpEcho(sent, sent - lost, 0.3 if sent - lost else None),
        )
        results.append(PeerResult(addr(j), state, state != STALE, ping, names.get(j, f"node{j}")))
    lookup = DnsLookup(
        "tasks.netdiag",
        lookup_error is None,
        1.5,
        dns_addrs or [],
        lookup_error,
        "" if lookup_error is None else f"{lookup_error} (test)",
    )
    outcomes = []
    for target, status in (targets or {}).items():
        st = Status(status)
        outcomes.append(
            TargetOutcome(target, [ProbeResult(target, "10.0.8.1:3306", st, 1.0, f"{status}")])
        )
    ident = Identity(
        node or names.get(i, f"node{i}"),
        addr(i),
        None,
        "0.1.0",
        "tasks.netdiag",
        "netdiag",
        8099,
        interval,
    )
    return LocalReport(ident, 7, 1.0e9, NOW, 12.0, lookup, None, results, outcomes)


def view(rep: LocalReport, age: float = 1.0) -> Fetched:
    doc = envelope("agent", rep.ok, rep.duration_ms, rep.to_payload(age))
    return Fetched(rep.identity.address or "?", doc, "ok", None, NOW, 2.0)


def missing(i: int, status: str = "timeout", error: str = "no whole answer within 2s") -> Fetched:
    return Fetched(addr(i), None, status, error, NOW, 2000.0)


def cluster(
    n: int,
    down: Mapping[tuple[int, int], str] | None = None,
    unreachable: Mapping[int, str] | None = None,
    dns: Mapping[int, list[int]] | None = None,
    names: Mapping[int, str] | None = None,
    targets: Mapping[int, Mapping[str, str]] | None = None,
    udp_loss: Mapping[tuple[int, int], float] | None = None,
    stale: Mapping[tuple[int, int], bool] | None = None,
    lookup_errors: Mapping[int, str] | None = None,
) -> list[Fetched]:
    """Views of n agents: all pairs up but ``down`` ((s, t) -> status); ``unreachable``
    agents' reports could not be fetched (i -> status); ``stale`` (s, t) -> still answers."""
    down = down or {}
    views = []
    for i in range(1, n + 1):
        if unreachable and i in unreachable:
            views.append(missing(i, unreachable[i]))
            continue
        peers: dict[int, tuple[str, str | None]] = {}
        for j in range(1, n + 1):
            if (i, j) in down:
                peers[j] = (DOWN, down[(i, j)])
            else:
                peers[j] = (UP, None)
        for (s, t), answers in (stale or {}).items():
            if s == i:
                peers[t] = (STALE, None if answers else "timeout")
        dns_list = (dns or {}).get(i)
        if dns_list is None:
            dns_list = [j for j in peers if peers[j][0] != STALE]
        else:
            peers = {j: v for j, v in peers.items() if j in dns_list or v[0] == STALE}
        loss = {t: v for (s, t), v in (udp_loss or {}).items() if s == i}
        views.append(
            view(
                report(
                    i,
                    peers,
                    dns_list,
                    names=names,
                    targets=(targets or {}).get(i),
                    udp_loss=loss,
                    lookup_error=(lookup_errors or {}).get(i),
                )
            )
        )
    return views
