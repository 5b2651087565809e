"""The agent's HTML page: the N x N heatmap, the targets per node and the findings.

Rendered on the server from the matrix (one renderer; the page works without JavaScript); the
script in static/mesh.js only re-fetches ``/fragment`` every interval and swaps it in. Colours
follow goldpinger's RTT steps (1, 10, 100 ms), red for down, grey for unknown, hatched for
stale. Every cell carries ``data-source``, ``data-target``, ``data-state`` (and
``data-source-node`` / ``data-target-node``) so tests and scripts can read the page. Every
asset is served by the agent itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from importlib import resources

from netdiag.mesh.matrix import Cell, Matrix
from netdiag.mesh.model import DOWN, STALE, UP
from netdiag.mesh.render import cell_text

STATIC_FILES = {"mesh.css": "text/css; charset=utf-8", "mesh.js": "text/javascript; charset=utf-8"}


def static_file(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of a packaged asset, or None for any other name."""
    if name not in STATIC_FILES:
        return None
    data = resources.files("netdiag.mesh").joinpath("static", name).read_bytes()
    return data, STATIC_FILES[name]


def band(cell: Cell) -> str:
    """The colour band of an RTT: goldpinger's 1 / 10 / 100 ms steps."""
    ms = cell.rtt_ms
    if ms is None:
        return "none"
    if ms < 1:
        return "lt1ms"
    if ms < 10:
        return "lt10ms"
    if ms < 100:
        return "lt100ms"
    return "ge100ms"


def _fmt_ms(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.2f} ms"


def cell_title(m: Matrix, cell: Cell) -> str:
    lines = [f"{m.label(cell.source)} \u2192 {m.label(cell.target)}: {cell.state}"]
    if cell.state == STALE:
        lines.append("gone from this node's DNS; " + ("still answers" if cell.up else "no answer"))
    if cell.state in (UP, DOWN, STALE):
        lines.append(f"/ping {_fmt_ms(cell.rtt_ms)}, connect {_fmt_ms(cell.connect_ms)}")
        if cell.udp_loss is not None:
            lines.append(f"UDP echo loss {cell.udp_loss:.0%}")
    if cell.status and cell.status != "ok":
        lines.append(f"status {cell.status}")
    if cell.detail and cell.detail != "ok":
        lines.append(cell.detail)
    if cell.age_s is not None:
        lines.append(f"measured {cell.age_s:.0f} s ago")
    return "\n".join(lines)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def render_fragment(m: Matrix, findings: Sequence) -> str:
    """The part of the page that refreshes: findings, heatmap, targets, summary."""
    s = m.summary()
    out = [
        f'<p class="summary" data-ok="{str(m.ok).lower()}">{s["agents"]} agents '
        f"({s['reachable']} answered), {s['pairs']} pairs: {s['up']} up, {s['down']} down, "
        f"{s['stale']} stale, {s['unknown']} unknown</p>"
    ]
    if findings:
        out.append('<ul class="findings">')
        for f in findings:
            out.append(
                f'<li class="finding {_attr(f.severity)}" data-kind="{_attr(f.kind)}">'
                f"{escape(f.message)}</li>"
            )
        out.append("</ul>")
    keys = [a.key for a in m.agents]
    out.append('<table class="heatmap" id="heatmap"><thead><tr><th class="corner">from \\ to</th>')
    for a in m.agents:
        out.append(
            f'<th class="col" data-target="{_attr(a.key)}" title="{_attr(a.key)}">'
            f"{escape(a.label)}</th>"
        )
    out.append("</tr></thead><tbody>")
    for a in m.agents:
        row_state = "ok" if a.reachable else "unknown"
        out.append(
            f'<tr data-source="{_attr(a.key)}" data-row-state="{row_state}">'
            f'<th class="row" title="{_attr(a.key + (" - " + a.error if a.error else ""))}">'
            f"{escape(a.label)}</th>"
        )
        for t in keys:
            cell = m.cell(a.key, t)
            out.append(
                f'<td class="cell {cell.state} {band(cell)}" data-source="{_attr(a.key)}" '
                f'data-target="{_attr(t)}" data-source-node="{_attr(a.label)}" '
                f'data-target-node="{_attr(m.label(t))}" data-state="{cell.state}" '
                f'data-band="{band(cell)}" title="{_attr(cell_title(m, cell))}">'
                f"{escape(cell_text(cell))}</td>"
            )
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(
        '<p class="legend"><span class="cell up lt1ms">&lt; 1 ms</span>'
        '<span class="cell up lt10ms">&lt; 10 ms</span>'
        '<span class="cell up lt100ms">&lt; 100 ms</span>'
        '<span class="cell up ge100ms">&ge; 100 ms</span>'
        '<span class="cell down">down</span><span class="cell stale">stale</span>'
        '<span class="cell unknown">unknown</span></p>'
    )
    if m.targets:
        out.append('<h2>Targets</h2><table class="targets"><thead><tr><th>target</th>')
        out += [f"<th>{escape(a.label)}</th>" for a in m.agents]
        out.append("</tr></thead><tbody>")
        for row in m.targets:
            out.append(f'<tr data-target="{_attr(row.target)}"><th>{escape(row.target)}</th>')
            for tc in row.cells:
                shown = "ok" if tc.state == UP else (tc.status or "?")
                title = f"{m.label(tc.source)} \u2192 {row.target}: {tc.state}\n{tc.detail}"
                if tc.elapsed_ms is not None:
                    title += f"\n{tc.elapsed_ms:.1f} ms"
                out.append(
                    f'<td class="tcell {tc.state}" data-source="{_attr(tc.source)}" '
                    f'data-source-node="{_attr(m.label(tc.source))}" '
                    f'data-target="{_attr(row.target)}" data-state="{tc.state}" '
                    f'title="{_attr(title)}">{escape(shown)}</td>'
                )
            out.append("</tr>")
        out.append("</tbody></table>")
    return "".join(out)


def render_page(m: Matrix, findings: Sequence, node: str, version: str, refresh_s: float) -> str:
    """The whole page; refreshes itself every ``refresh_s`` seconds."""
    refresh_ms = max(1000, int(refresh_s * 1000))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>netdiag mesh - {escape(node)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/static/mesh.css"></head>'
        f'<body data-refresh-ms="{refresh_ms}" data-updates="0">'
        f"<header><h1>netdiag mesh</h1><p>seen from <b>{escape(node)}</b>, netdiag "
        f'{escape(version)} &middot; <a href="/api/v1/mesh">JSON</a> &middot; '
        '<a href="/metrics">metrics</a> &middot; <span id="status">live</span></p></header>'
        f'<main id="mesh">{render_fragment(m, findings)}</main>'
        '<aside id="detail" hidden></aside>'
        '<script src="/static/mesh.js"></script></body></html>\n'
    )
