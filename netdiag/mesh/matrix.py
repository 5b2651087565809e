"""The N x N matrix from agents' reports (pure), and its JSON: the /api/v1/mesh payload.

Rows are sources, columns targets, both keyed by task address (unique even when several agents
share a node name) and labelled by node name. Every agent that anyone knows of gets a row and a
column: one whose report could not be fetched is a row of ``unknown`` cells, not a gap. Reports
come from other hosts, so every field read from them is checked; nothing here touches the
network or the clock (ages are given).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from netdiag.mesh.model import CELL_STATES, DOWN, STALE, UNKNOWN, UP

OLD_REPORT_INTERVALS = 3  # a report older than this many intervals no longer counts


class View(Protocol):
    """One agent's fetched report (gather.Fetched has this shape)."""

    address: str
    doc: dict[str, Any] | None
    status: str
    error: str | None
    fetched: float


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _lookups(dns: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An agent's timed lookups, field by field (the report comes from another host)."""
    return [
        {
            "name": _str(lk.get("name")),
            "ok": lk.get("ok") is True,
            "elapsed_ms": _num(lk.get("elapsed_ms")),
            "error": _str(lk.get("error")),
        }
        for lk in map(_dict, _list(dns.get("lookups")))
    ]


def natural_key(text: str) -> list[Any]:
    """node2 before node10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


@dataclass
class Agent:
    """One row and one column: an agent anyone knows of, and what its own report says."""

    key: str
    node: str | None = None
    label: str = ""
    reachable: bool = False  # its report was fetched
    status: str = "unknown"  # "ok", or why its report is missing
    error: str | None = None
    age_s: float | None = None
    interval_s: float | None = None
    version: str | None = None
    container_id: str | None = None
    dns_peers: list[str] | None = None  # what its DNS lists (None: unknown or failed)
    dns_lookups: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "node": self.node,
            "label": self.label,
            "address": self.key,
            "reachable": self.reachable,
            "status": self.status,
            "error": self.error,
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "interval_s": self.interval_s,
            "version": self.version,
            "container_id": self.container_id,
            "dns": {"peers": self.dns_peers, "lookups": self.dns_lookups},
        }


@dataclass
class Cell:
    """What ``source`` saw of ``target`` in its latest round."""

    source: str
    target: str
    state: str  # up, down, stale, unknown
    up: bool | None = None  # for stale cells: does it still answer
    rtt_ms: float | None = None
    connect_ms: float | None = None
    udp_loss: float | None = None
    age_s: float | None = None
    status: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "state": self.state,
            "up": self.up,
            "rtt_ms": self.rtt_ms,
            "connect_ms": self.connect_ms,
            "udp_loss": self.udp_loss,
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "status": self.status,
            "detail": self.detail,
        }


@dataclass
class TargetCell:
    source: str
    state: str  # up, down, unknown
    status: str | None = None
    detail: str = ""
    elapsed_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "state": self.state,
            "status": self.status,
            "detail": self.detail,
            "elapsed_ms": self.elapsed_ms,
        }


@dataclass
class TargetRow:
    target: str
    cells: list[TargetCell]


@dataclass
class Matrix:
    agents: list[Agent]
    cells: dict[tuple[str, str], Cell]
    targets: list[TargetRow] = field(default_factory=list)

    def agent(self, key: str) -> Agent:
        return next(a for a in self.agents if a.key == key)

    def cell(self, source: str, target: str) -> Cell:
        return self.cells[(source, target)]

    def label(self, key: str) -> str:
        return next((a.label for a in self.agents if a.key == key), key)

    def summary(self) -> dict[str, Any]:
        counts = dict.fromkeys(CELL_STATES, 0)
        for cell in self.cells.values():
            counts[cell.state] = counts.get(cell.state, 0) + 1
        tcounts = {UP: 0, DOWN: 0, UNKNOWN: 0}
        for row in self.targets:
            for tc in row.cells:
                tcounts[tc.state] = tcounts.get(tc.state, 0) + 1
        return {
            "agents": len(self.agents),
            "reachable": sum(a.reachable for a in self.agents),
            "pairs": len(self.cells),
            **counts,
            "targets": len(self.targets),
            "target_cells": tcounts,
        }

    @property
    def ok(self) -> bool:
        """Every pair up, no target down from any agent, and at least one agent.

        A target cell is unknown when that agent does not probe the target (agents may be
        given different targets); its pairs already say whether the agent answered.
        """
        return (
            bool(self.agents)
            and all(c.state == UP for c in self.cells.values())
            and not any(tc.state == DOWN for row in self.targets for tc in row.cells)
        )

    def to_payload(self, findings: Sequence[Any] = (), via: str | None = None) -> dict[str, Any]:
        """The /api/v1/mesh payload (and ``netdiag mesh --json``'s), ``findings`` included."""
        return {
            "via": via,
            "error": None,  # netdiag mesh fills it when the matrix is empty or partial
            "nodes": [a.to_dict() for a in self.agents],
            "rows": [
                {
                    "source": s.key,
                    "cells": [self.cells[(s.key, t.key)].to_dict() for t in self.agents],
                }
                for s in self.agents
            ],
            "targets": [
                {"target": row.target, "cells": [tc.to_dict() for tc in row.cells]}
                for row in self.targets
            ],
            "findings": [f.to_dict() if hasattr(f, "to_dict") else f for f in findings],
            "summary": self.summary(),
        }


def _labels(agents: list[Agent]) -> None:
    names: dict[str, int] = {}
    for a in agents:
        if a.node:
            names[a.node] = names.get(a.node, 0) + 1
    for a in agents:
        if not a.node:
            a.label = a.key
        elif names[a.node] > 1:
            a.label = f"{a.node}@{a.key}"
        else:
            a.label = a.node


def _cell_from_peer(source: Agent, target: str, peer: Mapping[str, Any]) -> Cell:
    state = peer.get("state")
    if state not in (UP, DOWN, STALE):
        state = UNKNOWN
    up = peer.get("up") if isinstance(peer.get("up"), bool) else None
    udp = _dict(peer.get("udp"))
    return Cell(
        source.key,
        target,
        state,
        up,
        _num(peer.get("rtt_ms")),
        _num(peer.get("connect_ms")),
        _num(udp.get("loss")),
        source.age_s,
        _str(peer.get("status")),
        (_str(peer.get("detail")) or "")[:300],
    )


def build(
    views: Iterable[View], now: float, remembered: Mapping[str, str | None] | None = None
) -> Matrix:
    """The matrix of what ``views`` report; ``remembered`` adds agents known earlier (address ->
    node) so that one that vanished from everyone's view still shows, as unknown."""
    agents: dict[str, Agent] = {}
    reports: dict[str, dict[str, Any]] = {}
    for view in views:
        agent = agents.setdefault(view.address, Agent(view.address))
        if view.doc is None:
            agent.status, agent.error = view.status or "error", view.error
            continue
        doc = view.doc
        me, rnd, dns = _dict(doc.get("agent")), _dict(doc.get("round")), _dict(doc.get("dns"))
        agent.reachable, agent.status = True, "ok"
        agent.node = _str(me.get("node"))
        agent.version = _str(doc.get("version"))
        agent.container_id = _str(me.get("container_id"))
        agent.interval_s = _num(me.get("interval_s"))
        age = _num(rnd.get("age_s"))
        agent.age_s = None if age is None else max(0.0, age + max(0.0, now - view.fetched))
        peers = dns.get("peers")
        if isinstance(peers, list) and all(isinstance(p, str) for p in peers):
            agent.dns_peers = sorted(peers)
        agent.dns_lookups = _lookups(dns)
        reports[view.address] = doc
    for doc in reports.values():
        for peer in map(_dict, _list(doc.get("peers"))):
            address = _str(peer.get("address"))
            if address:
                agent = agents.setdefault(address, Agent(address, error="no report fetched"))
                agent.node = agent.node or _str(peer.get("node"))
    for address, node in (remembered or {}).items():
        agent = agents.setdefault(
            address, Agent(address, error="gone from every view; remembered from earlier")
        )
        agent.node = agent.node or node
    ordered = list(agents.values())
    _labels(ordered)
    ordered.sort(key=lambda a: (natural_key(a.label), a.key))

    cells: dict[tuple[str, str], Cell] = {}
    for source in ordered:
        doc = reports.get(source.key)
        by_address: dict[str, dict[str, Any]] = {}
        if doc is not None:
            for peer in map(_dict, _list(doc.get("peers"))):
                if _str(peer.get("address")):
                    by_address[peer["address"]] = peer
        too_old = (
            source.age_s is not None
            and source.interval_s is not None
            and source.age_s > OLD_REPORT_INTERVALS * source.interval_s + 1
        )
        for target in ordered:
            key = (source.key, target.key)
            if doc is None:
                why = source.error or "no report"
                cells[key] = Cell(*key, UNKNOWN, detail=f"{source.label}'s report: {why}")
            elif too_old:
                cells[key] = Cell(
                    *key,
                    UNKNOWN,
                    age_s=source.age_s,
                    detail=f"{source.label}'s latest round is {source.age_s:.0f}s old",
                )
            elif target.key in by_address:
                cells[key] = _cell_from_peer(source, target.key, by_address[target.key])
            else:
                why = (
                    f"not in {source.label}'s DNS answer"
                    if source.dns_peers is not None
                    else f"{source.label} has not probed it"
                )
                cells[key] = Cell(*key, UNKNOWN, age_s=source.age_s, detail=why)

    names: list[str] = []
    for doc in reports.values():
        for t in map(_dict, _list(doc.get("targets"))):
            name = _str(t.get("target"))
            if name and name not in names:
                names.append(name)
    rows: list[TargetRow] = []
    for name in names:
        row = TargetRow(name, [])
        for source in ordered:
            doc = reports.get(source.key)
            entry = None
            if doc is not None:
                entry = next(
                    (t for t in map(_dict, _list(doc.get("targets"))) if t.get("target") == name),
                    None,
                )
            if entry is None:
                row.cells.append(TargetCell(source.key, UNKNOWN, detail="not reported"))
                continue
            results = [r for r in map(_dict, _list(entry.get("results")))]
            elapsed = [x for x in (_num(r.get("elapsed_ms")) for r in results) if x is not None]
            row.cells.append(
                TargetCell(
                    source.key,
                    UP if entry.get("up") is True else DOWN,
                    _str(entry.get("status")),
                    (_str(entry.get("detail")) or "")[:300],
                    max(elapsed) if elapsed else None,
                )
            )
        rows.append(row)
    return Matrix(ordered, cells, rows)


def from_payload(doc: Mapping[str, Any]) -> Matrix:
    """A Matrix back from an /api/v1/mesh document (another agent's, so checked field by field)."""
    agents: list[Agent] = []
    for n in map(_dict, _list(doc.get("nodes"))):
        key = _str(n.get("key"))
        if not key or any(a.key == key for a in agents):
            continue
        dns = _dict(n.get("dns"))
        peers = dns.get("peers")
        agents.append(
            Agent(
                key=key,
                node=_str(n.get("node")),
                label=_str(n.get("label")) or key,
                reachable=n.get("reachable") is True,
                status=_str(n.get("status")) or "unknown",
                error=_str(n.get("error")),
                age_s=_num(n.get("age_s")),
                interval_s=_num(n.get("interval_s")),
                version=_str(n.get("version")),
                container_id=_str(n.get("container_id")),
                dns_peers=sorted(peers)
                if isinstance(peers, list) and all(isinstance(p, str) for p in peers)
                else None,
                dns_lookups=_lookups(dns),
            )
        )
    keys = {a.key for a in agents}
    cells: dict[tuple[str, str], Cell] = {}
    for row in map(_dict, _list(doc.get("rows"))):
        for c in map(_dict, _list(row.get("cells"))):
            source, target = _str(c.get("source")), _str(c.get("target"))
            if source not in keys or target not in keys:
                continue
            state = c.get("state") if c.get("state") in CELL_STATES else UNKNOWN
            cells[(source, target)] = Cell(
                source,
                target,
                state,
                c.get("up") if isinstance(c.get("up"), bool) else None,
                _num(c.get("rtt_ms")),
                _num(c.get("connect_ms")),
                _num(c.get("udp_loss")),
                _num(c.get("age_s")),
                _str(c.get("status")),
                (_str(c.get("detail")) or "")[:300],
            )
    for s in agents:
        for t in agents:
            cells.setdefault((s.key, t.key), Cell(s.key, t.key, UNKNOWN, detail="not in answer"))
    targets: list[TargetRow] = []
    for t in map(_dict, _list(doc.get("targets"))):
        name = _str(t.get("target"))
        if not name:
            continue
        got = {
            _str(c.get("source")): c for c in map(_dict, _list(t.get("cells"))) if c.get("source")
        }
        row = TargetRow(name, [])
        for a in agents:
            c = got.get(a.key)
            if c is None:
                row.cells.append(TargetCell(a.key, UNKNOWN, detail="not in answer"))
                continue
            state = c.get("state") if c.get("state") in (UP, DOWN, UNKNOWN) else UNKNOWN
            row.cells.append(
                TargetCell(
                    a.key,
                    state,
                    _str(c.get("status")),
                    (_str(c.get("detail")) or "")[:300],
                    _num(c.get("elapsed_ms")),
                )
            )
        targets.append(row)
    return Matrix(agents, cells, targets)
