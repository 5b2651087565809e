"""Name the likely culprit from a matrix: a pure function, no network, no clock.

``analyze(matrix)`` returns findings, most severe first:

- ``node``: failures share a node. A node is blamed when at least ``BLAME_SHARE`` of its known
  pairs in one direction (to it, or from it) with the other, not yet blamed agents are down,
  two of them at least; nodes
  are blamed one at a time, the worst first, so two cut nodes are both named and their victims
  are not. The message says which way traffic fails and what to check.
- ``pairs``: failures left that share no node (a path between two hosts).
- ``self``: an agent that cannot reach its own task address.
- ``agent``: an agent whose report could not be fetched, when nothing above explains it.
- ``udp``: UDP echoes lost while TCP answers.
- ``dns``: a node's DNS that fails, or lists another set of agents than the others' DNS.
- ``stale``: an agent that vanished from some node's DNS (still answering or not).
- ``target``: a ``--target`` down from some nodes (the path) or from all (the service), unless
  the only node that reaches it (or the only one silent about it) is a node named above as cut
  off: then the target probably runs there, and the cut explains it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netdiag.mesh.matrix import Matrix
from netdiag.mesh.model import DOWN, STALE, UNKNOWN, UP

BLAME_SHARE = 0.75
UDP_LOSS_WARN = 0.2
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
OVERLAY_PORTS = "check 4789/udp and 7946/tcp+udp between the hosts"


@dataclass
class Finding:
    kind: str
    severity: str  # error, warning, info
    message: str
    nodes: list[str] = field(default_factory=list)  # labels of the nodes it is about

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "nodes": self.nodes,
            "message": self.message,
        }


def _names(m: Matrix, keys: list[str]) -> str:
    labels = [m.label(k) for k in keys]
    if len(labels) > 4:
        return ", ".join(labels[:3]) + f" and {len(labels) - 3} more"
    return ", ".join(labels)


def _known(state: str) -> bool:
    return state in (UP, DOWN)


def _blame(m: Matrix) -> tuple[list[Finding], set[tuple[str, str]], set[str]]:
    """Node findings, the down pairs they leave unexplained, and the keys of the nodes named."""
    keys = [a.key for a in m.agents]
    remaining = {(s, t) for s in keys for t in keys if s != t and m.cell(s, t).state == DOWN}
    blamed: list[str] = []
    findings: list[Finding] = []
    while remaining:
        best: tuple[float, int, str] | None = None
        for x in keys:
            if x in blamed:
                continue
            others = [o for o in keys if o != x and o not in blamed]
            share, downs = 0.0, 0
            for pairs in ([(o, x) for o in others], [(x, o) for o in others]):  # in, out
                known = [p for p in pairs if _known(m.cell(*p).state)]
                down = [p for p in known if p in remaining]
                if len(known) >= 2 and len(down) >= 2:
                    share = max(share, len(down) / len(known))
                downs += len(down)
            if share >= BLAME_SHARE and (best is None or (share, downs) > best[:2]):
                best = (share, downs, x)
        if best is None:
            break
        x = best[2]
        blamed.append(x)
        findings.append(_node_finding(m, x))
        remaining = {p for p in remaining if x not in p}
    return findings, remaining, set(blamed)


def _node_finding(m: Matrix, x: str) -> Finding:
    others = [a.key for a in m.agents if a.key != x]
    in_known = [o for o in others if _known(m.cell(o, x).state)]
    in_down = [o for o in in_known if m.cell(o, x).state == DOWN]
    out_known = [o for o in others if _known(m.cell(x, o).state)]
    out_down = [o for o in out_known if m.cell(x, o).state == DOWN]
    own = m.cell(x, x).state
    name = m.label(x)
    reach = f"unreachable from {len(in_down)} of {len(in_known)} peers"
    refused = bool(in_down) and all(m.cell(o, x).status == "refused" for o in in_down)
    if refused:
        msg = (
            f"{name} refuses connections from {len(in_down)} of {len(in_known)} peers: its host "
            "answers but nothing listens on the agent's port (agent stopped or restarting?)"
        )
    elif in_down and own == DOWN:
        msg = (
            f"{name} {reach} and not even from itself: its agent does not answer on its task "
            f"address ({m.cell(x, x).detail or 'no detail'})"
        )
    elif in_down and not out_known and not m.agent(x).reachable:
        msg = (
            f"{name} {reach} over the overlay and its own report could not be fetched either: "
            f"if its task runs, {OVERLAY_PORTS} (a dead host looks the same from here)"
        )
    elif in_down and (out_down or not out_known):
        msg = f"{name} {reach} over the overlay but reachable from itself: {OVERLAY_PORTS}"
        if own != UP:
            msg = f"{name} {reach} over the overlay (both ways): {OVERLAY_PORTS}"
    elif in_down:
        msg = (
            f"{name} {reach} though it reaches them: something on {name}'s host drops incoming "
            "traffic to the agent (host firewall, DOCKER-USER rules); "
            f"{OVERLAY_PORTS}"
        )
    elif not in_known:  # seen from x alone: the others' reports are out of reach too
        msg = (
            f"{name} cannot reach {len(out_down)} of {len(out_known)} peers and their reports "
            f"could not be fetched: {name} is cut off from them; {OVERLAY_PORTS}"
        )
    else:
        msg = (
            f"{name} cannot reach {len(out_down)} of {len(out_known)} peers though they reach "
            f"it: check {name}'s outbound path (its host firewall, its overlay endpoint)"
        )
    return Finding("node", "error", msg, [name])


def _pairs_finding(m: Matrix, pairs: set[tuple[str, str]]) -> list[Finding]:
    if not pairs:
        return []
    shown: list[str] = []
    seen: set[tuple[str, str]] = set()
    order = {a.key: i for i, a in enumerate(m.agents)}
    for s, t in sorted(pairs, key=lambda p: (order[p[0]], order[p[1]])):
        if (s, t) in seen:
            continue
        if (t, s) in pairs:
            shown.append(f"{m.label(s)} <-> {m.label(t)}")
            seen.add((t, s))
        else:
            shown.append(f"{m.label(s)} -> {m.label(t)}")
        seen.add((s, t))
    nodes = sorted({m.label(k) for p in pairs for k in p})
    if len(m.agents) == 2:
        msg = (
            f"{shown[0]} down, and with two agents there is no third to tell which side is "
            f"at fault: {OVERLAY_PORTS}"
        )
    else:
        listed = ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")
        msg = (
            f"{len(pairs)} pair(s) down that share no single node: {listed}; "
            "check the path between those hosts"
        )
    return [Finding("pairs", "error", msg, nodes)]


def _self_findings(m: Matrix, blamed: set[str]) -> list[Finding]:
    out = []
    for a in m.agents:
        cell = m.cell(a.key, a.key)
        if cell.state == DOWN and a.label not in blamed:
            out.append(
                Finding(
                    "self",
                    "error",
                    f"{a.label} cannot reach its own agent at {a.key} ({cell.status}: "
                    f"{cell.detail}): the agent does not listen on its task address",
                    [a.label],
                )
            )
    return out


def _agent_findings(m: Matrix, blamed: set[str]) -> list[Finding]:
    out = []
    for a in m.agents:
        if a.reachable or a.label in blamed:
            continue
        column = [m.cell(o.key, a.key) for o in m.agents if o.key != a.key]
        answering = [c for c in column if c.state in (UP, STALE) and c.up is not False]
        if not any(_known(c.state) or c.state == STALE for c in column):
            msg = f"{a.label} is gone from every view ({a.error or 'no report'}): its task ended?"
            sev = "warning"
        elif answering:
            msg = (
                f"{a.label}'s report could not be fetched ({a.status}: {a.error}), though its "
                "/ping answers: an overloaded or stuck agent?"
            )
            sev = "warning"
        else:
            msg = f"{a.label}'s report could not be fetched ({a.status}: {a.error})"
            sev = "error"
        out.append(Finding("agent", sev, msg, [a.label]))
    return out


def _udp_findings(m: Matrix) -> list[Finding]:
    lossy: dict[str, list[tuple[str, float]]] = {}
    for (s, t), cell in m.cells.items():
        if cell.state == UP and cell.udp_loss is not None and cell.udp_loss >= UDP_LOSS_WARN:
            lossy.setdefault(t, []).append((s, cell.udp_loss))
    out = []
    for t, sources in lossy.items():
        known = [a.key for a in m.agents if a.key != t and m.cell(a.key, t).state == UP]
        worst = max(loss for _, loss in sources)
        if len(sources) >= 2:
            msg = (
                f"UDP to {m.label(t)} loses up to {worst:.0%} from {len(sources)} of "
                f"{len(known) + (t in [s for s, _ in sources])} peers while TCP answers: "
                f"something on {m.label(t)}'s path drops UDP"
            )
            nodes = [m.label(t)]
        else:
            s, loss = sources[0]
            msg = f"UDP from {m.label(s)} to {m.label(t)} loses {loss:.0%} while TCP answers"
            nodes = [m.label(s), m.label(t)]
        out.append(Finding("udp", "warning", msg, nodes))
    return out


def _dns_findings(m: Matrix) -> list[Finding]:
    out = []
    for a in m.agents:
        for lk in a.dns_lookups:
            if lk.get("ok") is False and lk.get("name"):
                out.append(
                    Finding(
                        "dns",
                        "error",
                        f"{a.label}'s DNS did not resolve {lk['name']} ({lk.get('error')})",
                        [a.label],
                    )
                )
    views = {a.key: tuple(a.dns_peers) for a in m.agents if a.reachable and a.dns_peers is not None}
    groups = Counter(views.values())
    if len(groups) > 1:
        # The majority view; on a tie, the larger set (a missing record is likelier than a ghost).
        majority = max(groups, key=lambda v: (groups[v], len(v)))
        for key, view in views.items():
            if view == majority:
                continue
            missing = [m.label(k) for k in majority if k not in view]
            extra = [m.label(k) for k in view if k not in majority]
            others = (
                "the others"
                if groups[majority] > 1
                else f"{_names(m, [k for k, v in views.items() if v == majority])}'s"
            )
            what = []
            if missing:
                what.append("missing " + ", ".join(missing[:4]))
            if extra:
                what.append("extra " + ", ".join(extra[:4]))
            out.append(
                Finding(
                    "dns",
                    "error",
                    f"{m.label(key)}'s DNS lists {len(view)} agents, {others} "
                    f"{len(majority)} ({'; '.join(what)})",
                    [m.label(key)],
                )
            )
    return out


def _stale_findings(m: Matrix) -> list[Finding]:
    by_target: dict[str, list[tuple[str, bool | None]]] = {}
    for (s, t), cell in m.cells.items():
        if cell.state == STALE:
            by_target.setdefault(t, []).append((s, cell.up))
    out = []
    for t, seen in by_target.items():
        sources = _names(m, [s for s, _ in seen])
        if any(up for _, up in seen):
            msg = (
                f"{m.label(t)} ({t}) vanished from the DNS of {sources} but still answers: "
                "a missing DNS record"
            )
            sev = "warning"
        else:
            msg = (
                f"{m.label(t)} ({t}) vanished from the DNS of {sources} and stopped answering: "
                "its task ended (replaced or rescheduled?)"
            )
            sev = "info"
        out.append(Finding("stale", sev, msg, [m.label(t)]))
    return out


OVERLAY_STATUSES = {"timeout", "unreachable"}  # what a cut overlay looks like from outside


def _target_findings(m: Matrix, cut: set[str]) -> list[Finding]:
    """A target down from some nodes (the path) or all (the service), told apart from a target
    that only a cut node (``cut``: keys of nodes blamed above) reaches or could have reported:
    when the database runs on the cut node, its timeouts are the cut, not the service."""
    out = []
    for row in m.targets:
        up = [c.source for c in row.cells if c.state == UP]
        down = [c for c in row.cells if c.state == DOWN]
        if not down:
            continue
        statuses = sorted({c.status or "error" for c in down})
        down_names = _names(m, [c.source for c in down])
        overlay_like = set(statuses) <= OVERLAY_STATUSES
        silent_cut = [c.source for c in row.cells if c.state == UNKNOWN and c.source in cut]
        down_cut = [c.source for c in down if c.source in cut]
        if up and all(s in cut for s in up) and overlay_like:
            where = _names(m, up)
            msg = (
                f"{row.target} reachable only from {where}, which is itself cut off (above), and "
                f"not from {down_names} ({', '.join(statuses)}): it probably runs on {where} or "
                f"behind it; fix {where}'s overlay first"
            )
        elif not up and silent_cut and overlay_like:
            where = _names(m, silent_cut)
            msg = (
                f"{row.target} is down from {down_names} ({', '.join(statuses)}), and {where}, "
                f"which is cut off (above), could not report it: if {row.target} runs on "
                f"{where}, that is the cut, not the service"
            )
        elif not up:
            msg = (
                f"{row.target} is down from every node that reports it "
                f"({', '.join(statuses)}): the service itself, not the overlay"
            )
        elif len(down_cut) == len(down):
            msg = (
                f"{row.target} reachable from {_names(m, up)} but not from {down_names} "
                f"({', '.join(statuses)}), which is cut off (above)"
            )
        else:
            msg = (
                f"{row.target} reachable from {_names(m, up)} but not from "
                f"{down_names} ({', '.join(statuses)}): check the path from those nodes"
            )
        out.append(Finding("target", "error", msg, [m.label(c.source) for c in down]))
    return out


def analyze(m: Matrix) -> list[Finding]:
    """Findings for a matrix, most severe first (stable order within a severity)."""
    node_findings, leftover, cut = _blame(m)
    blamed = {n for f in node_findings for n in f.nodes}
    findings = [
        *node_findings,
        *_pairs_finding(m, leftover),
        *_self_findings(m, blamed),
        *_agent_findings(m, blamed),
        *_dns_findings(m),
        *_udp_findings(m),
        *_stale_findings(m),
        *_target_findings(m, cut),
    ]
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
