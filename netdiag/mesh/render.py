"""The matrix as text that fits the terminal (report's width rule): grid, targets, findings.

With few agents each column is a node name and each cell the /ping RTT in ms (``DOWN``, ``?``
unknown, ``s`` stale); with many, columns are numbered and cells are one glyph each. Node names,
targets, statuses and details come from other agents: every one is shown through
``report.printable``, so a peer cannot move the cursor or forge a line.
"""

from __future__ import annotations

from collections.abc import Sequence

from netdiag.mesh.matrix import Cell, Matrix
from netdiag.mesh.model import DOWN, STALE, UP, LocalReport
from netdiag.report import printable, table, terminal_width, wrap, wrap_indented

LABEL_MAX = 18
TARGET_MIN = 24  # the target column is narrowed (its URL wrapped) down to this


def _clip(text: str, width: int) -> str:
    """``text`` made printable, then cut to ``width`` characters (``~`` marks the cut)."""
    text = printable(text)
    return text if len(text) <= width else text[: max(1, width - 1)] + "~"


def _rtt(ms: float | None) -> str:
    if ms is None:
        return "up"
    if ms < 10:
        return f"{ms:.1f}"
    if ms < 10_000:
        return f"{ms:.0f}"
    return f"{ms / 1000:.0f}s"


def cell_text(cell: Cell) -> str:
    """The wide form of one cell: RTT in ms, DOWN, ? or s+RTT for stale."""
    if cell.state == UP:
        return _rtt(cell.rtt_ms)
    if cell.state == DOWN:
        return "DOWN"
    if cell.state == STALE:
        return "s" + (_rtt(cell.rtt_ms) if cell.up else "DOWN")
    return "?"


def cell_glyph(cell: Cell) -> str:
    """The narrow form: + up (~ slower than 10 ms, ! slower than 100 ms), X down, s, ?."""
    if cell.state == UP:
        ms = cell.rtt_ms or 0.0
        return "!" if ms >= 100 else "~" if ms >= 10 else "+"
    return {DOWN: "X", STALE: "s"}.get(cell.state, "?")


def render_grid(m: Matrix, width: int) -> list[str]:
    keys = [a.key for a in m.agents]
    if not keys:
        return []
    labels = [_clip(m.label(k), LABEL_MAX) for k in keys]
    rows = [
        [label, *(cell_text(m.cell(s, t)) for t in keys)]
        for s, label in zip(keys, labels, strict=True)
    ]
    natural = [max(len(r[i]) for r in [["", *labels], *rows]) for i in range(len(keys) + 1)]
    lines: list[str] = []
    if sum(natural) + 2 * len(keys) <= width:
        lines += table(rows, ["", *labels], width, rule=False, narrow=()).splitlines()
        lines += wrap(
            "(rows: from, columns: to; /ping RTT in ms, DOWN no answer, ? unknown, "
            "s stale: gone from DNS)",
            width,
        )
        return lines
    number_w = len(str(len(keys)))
    label_w = max(4, max(len(x) for x in labels))
    pad = number_w + 1 + label_w + 1
    col_w = 2 if pad + 2 * len(keys) <= width else 1
    if pad + col_w * len(keys) > width:
        label_w = max(4, width - number_w - 2 - len(keys))
        pad = number_w + 1 + label_w + 1
    if pad + col_w * len(keys) > width:
        return _problem_rows(m, width)
    for digit in range(number_w - 1, -1, -1):  # column numbers written top to bottom
        head = "".join(
            f"{str(i + 1).rjust(number_w)[number_w - 1 - digit]:<{col_w}}" for i in range(len(keys))
        )
        lines.append((" " * pad + head).rstrip())
    for i, s in enumerate(keys):
        row = "".join(f"{cell_glyph(m.cell(s, t)):<{col_w}}" for t in keys)
        lines.append(f"{i + 1:>{number_w}} {labels[i][:label_w]:<{label_w}} {row}".rstrip())
    lines += wrap(
        "(rows from, columns to, numbered as the rows: + up, ~ >=10 ms, ! >=100 ms, X down, "
        "? unknown, s stale)",
        width,
    )
    return lines


def _problem_rows(m: Matrix, width: int) -> list[str]:
    """Too many agents for a grid: one line per source with anything but up."""
    lines = [f"(no grid: {len(m.agents)} agents do not fit {width} columns; see --json)"]
    for a in m.agents:
        bad = [m.cell(a.key, t.key) for t in m.agents if m.cell(a.key, t.key).state != UP]
        if not bad:
            continue
        by_state: dict[str, list[str]] = {}
        for c in bad:
            by_state.setdefault(c.state, []).append(m.label(c.target))
        parts = [
            f"{state} to {', '.join(names[:3])}" + (f" +{len(names) - 3}" if len(names) > 3 else "")
            for state, names in by_state.items()
        ]
        lines.append(_clip(f"{a.label}: {'; '.join(parts)}", width))
    return lines


def _target_word(state: str, status: str | None) -> str:
    return "ok" if state == UP else (status or "?") if state == DOWN else "?"


def render_targets(m: Matrix, width: int) -> list[str]:
    """One row per target, one column per node (the word each node's probe gave), or one
    line per target when the nodes do not fit the width."""
    if not m.targets:
        return []
    labels = [_clip(m.label(a.key), LABEL_MAX) for a in m.agents]
    words = [
        [_clip(_target_word(c.state, c.status), LABEL_MAX) for c in r.cells] for r in m.targets
    ]
    columns = [max(len(x), *(len(w[i]) for w in words)) for i, x in enumerate(labels)]
    url = max(len("TARGET"), *(len(printable(r.target)) for r in m.targets))
    if min(url, TARGET_MIN) + sum(2 + w for w in columns) <= width:  # else the URL wraps
        rows = [[r.target, *w] for r, w in zip(m.targets, words, strict=True)]
        return table(rows, ["TARGET", *labels], width, narrow=(0,)).splitlines()
    lines = []
    for row in m.targets:
        up = [c for c in row.cells if c.state == UP]
        down = [c for c in row.cells if c.state == DOWN]
        text = f"{row.target}: up from {len(up)} of {len(row.cells)} nodes"
        if down:
            names = ", ".join(f"{m.label(c.source)} ({c.status})" for c in down[:4])
            more = f" and {len(down) - 4} more" if len(down) > 4 else ""
            text += f"; down from {names}{more}"
        lines += wrap_indented(text, "", "  ", width)
    return lines


def render(
    m: Matrix,
    findings: Sequence,
    via: str | None = None,
    width: int | None = None,
    quiet: bool = False,
) -> str:
    """The whole text output of ``netdiag mesh``, ``width`` columns wide (default: the
    terminal's, report.terminal_width). ``quiet``: the head line, the sources with a pair that
    is not up, the targets down somewhere and the findings; nothing when all is well."""
    width = terminal_width() if width is None else width
    if quiet and m.ok and not findings:
        return ""
    s = m.summary()
    head = (
        f"{s['agents']} agents ({s['reachable']} answered), {s['pairs']} pairs: "
        f"{s['up']} up, {s['down']} down, {s['stale']} stale, {s['unknown']} unknown"
    )
    if via:
        head += f" (via {via})"
    sections = [wrap_indented(head, "", "  ", width)]
    if quiet:
        sections.append(_problem_rows(m, width)[1:])
        down = [r for r in m.targets if any(c.state == DOWN for c in r.cells)]
        sections.append(render_targets(Matrix(m.agents, m.cells, down), width))
    else:
        sections += [render_grid(m, width), render_targets(m, width)]
    sections.append(
        [x for f in findings for x in wrap_indented(f"{f.severity}: {f.message}", "", "  ", width)]
    )
    lines = [x for section in sections if section for x in ["", *section]]
    return "\n".join(lines[1:])


def _agents(n: int) -> str:
    return f"{n} agent" if n == 1 else f"{n} agents"


def render_local(report: LocalReport, width: int | None = None, quiet: bool = False) -> str:
    """One agent's round as text (``netdiag agent --once``): a head line, one row per peer,
    the targets' probe results. ``quiet``: only what is not up; nothing when all is well."""
    from netdiag.report import format_ms, render_results_table

    width = terminal_width() if width is None else width
    if quiet and report.ok:
        return ""
    me = report.identity
    up = sum(p.state == UP for p in report.peers)
    lookup = report.peers_lookup
    dns = (
        f"{lookup.name} lists {_agents(len(report.dns_peers or []))} "
        f"({format_ms(lookup.elapsed_ms)})"
        if lookup.ok
        else f"{lookup.name} did not resolve ({lookup.error}: {lookup.detail})"
    )
    head = (
        f"{me.node} ({me.address or 'address not in DNS'}) round {report.number} in "
        f"{format_ms(report.duration_ms)}: {up} of {len(report.peers)} peers up; {dns}"
    )
    lines = wrap_indented(head, "", "  ", width)
    peers = [p for p in report.peers if not (quiet and p.state == UP)]
    if peers:
        rows = [
            [
                p.node or "?",
                p.address,
                p.state if p.state != STALE else f"stale ({'up' if p.up else 'down'})",
                "-" if p.ping.rtt_ms is None else format_ms(p.ping.rtt_ms),
                "-" if p.ping.udp.loss is None else f"{p.ping.udp.loss:.0%}",
                p.ping.detail if not p.up else "",
            ]
            for p in peers
        ]
        headers = ["PEER", "ADDRESS", "STATE", "RTT", "UDP LOSS", "DETAIL"]
        lines += ["", *table(rows, headers, width, fold=5, narrow=(0, 5)).splitlines()]
    results = [r for t in report.targets for r in t.results if not (quiet and r.ok)]
    if results:
        lines += ["", *render_results_table(results, width).splitlines()]
    return "\n".join(lines)
