"""The matrix as text for a 100-column terminal: the grid, the targets, the findings.

With few agents each column is a node name and each cell the /ping RTT in ms (``DOWN``, ``?``
unknown, ``s`` stale); with many, columns are numbered and cells are one glyph each.
"""

from __future__ import annotations

from collections.abc import Sequence

from netdiag.mesh.matrix import Cell, Matrix
from netdiag.mesh.model import DOWN, STALE, UP

WIDTH = 100
LABEL_MAX = 18


def _clip(text: str, width: int) -> str:
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


def render_grid(m: Matrix, width: int = WIDTH) -> list[str]:
    keys = [a.key for a in m.agents]
    if not keys:
        return []
    labels = [m.label(k) for k in keys]
    label_w = min(LABEL_MAX, max(len(x) for x in labels))
    col_w = max(6, *(min(len(x), LABEL_MAX) + 1 for x in labels))
    lines: list[str] = []
    if label_w + 2 + col_w * len(keys) <= width:
        head = " " * (label_w + 2) + "".join(f"{_clip(x, col_w - 1):<{col_w}}" for x in labels)
        lines.append(head.rstrip())
        for s, label in zip(keys, labels, strict=True):
            row = "".join(f"{cell_text(m.cell(s, t)):<{col_w}}" for t in keys)
            lines.append(f"{_clip(label, label_w):<{label_w}}  {row}".rstrip())
        lines.append(
            "(rows: from, columns: to; /ping RTT in ms, DOWN no answer, ? unknown, "
            "s stale: gone from DNS)"
        )
        return lines
    number_w = len(str(len(keys)))
    label_w = max(4, min(LABEL_MAX, max(len(x) for x in labels)))
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
        lines.append(f"{i + 1:>{number_w}} {_clip(labels[i], label_w):<{label_w}} {row}".rstrip())
    lines += _wrap(
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


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [""]


def render_targets(m: Matrix, width: int = WIDTH) -> list[str]:
    if not m.targets:
        return []
    keys = [a.key for a in m.agents]
    labels = [m.label(k) for k in keys]
    tw = min(40, max(len("TARGET"), *(len(r.target) for r in m.targets)))
    cw = max(9, *(min(len(x), LABEL_MAX) + 1 for x in labels))
    if tw + 2 + cw * len(keys) <= width:
        lines = [
            ("TARGET".ljust(tw + 2) + "".join(f"{_clip(x, cw - 1):<{cw}}" for x in labels)).rstrip()
        ]
        for row in m.targets:
            cells = "".join(
                f"{_clip('ok' if c.state == UP else (c.status or '?') if c.state == DOWN else '?', cw - 1):<{cw}}"
                for c in row.cells
            )
            lines.append(f"{_clip(row.target, tw):<{tw}}  {cells}".rstrip())
        return lines
    lines = []
    for row in m.targets:
        up = [c for c in row.cells if c.state == UP]
        down = [c for c in row.cells if c.state == DOWN]
        text = f"{row.target}: up from {len(up)} of {len(row.cells)} nodes"
        if down:
            names = ", ".join(f"{m.label(c.source)} ({c.status})" for c in down[:4])
            more = f" and {len(down) - 4} more" if len(down) > 4 else ""
            text += f"; down from {names}{more}"
        lines.append(_clip(text, width))
    return lines


def render(m: Matrix, findings: Sequence, via: str | None = None, width: int = WIDTH) -> str:
    """The whole text output of ``netdiag mesh``."""
    s = m.summary()
    head = (
        f"{s['agents']} agents ({s['reachable']} answered), {s['pairs']} pairs: "
        f"{s['up']} up, {s['down']} down, {s['stale']} stale, {s['unknown']} unknown"
    )
    if via:
        head += f" (via {via})"
    lines = [_clip(head, width), ""]
    lines += render_grid(m, width)
    targets = render_targets(m, width)
    if targets:
        lines += ["", *targets]
    if findings:
        lines.append("")
        for f in findings:
            lines += _wrap(f"{f.severity}: {f.message}", width)
    return "\n".join(lines)
