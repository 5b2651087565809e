"""Pure parts of agent/mesh: the matrix, the culprit, the text and HTML renderings, metrics,
the UDP echo wire format and the /ping answer parser. No network."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netdiag.errors import UsageError
from netdiag.mesh import udp_echo
from netdiag.mesh.culprit import analyze
from netdiag.mesh.matrix import build, from_payload, natural_key
from netdiag.mesh.model import DOWN, STALE, UNKNOWN, UP
from netdiag.mesh.page import render_page
from netdiag.mesh.pinger import parse_ping_answer
from netdiag.mesh.render import render
from tests.support.mesh_reports import NOW, addr, cluster, missing, report, view
from tests.support.schemas import validate

CUT3 = {(1, 3): "timeout", (2, 3): "timeout", (3, 1): "timeout", (3, 2): "timeout"}


def matrix(views, remembered=None):
    return build(views, NOW, remembered)


def messages(m) -> list[str]:
    return [f.message for f in analyze(m)]


# -- matrix ------------------------------------------------------------------------------------


def test_all_up_is_ok_with_no_findings():
    m = matrix(cluster(3))
    assert [a.label for a in m.agents] == ["node1", "node2", "node3"]
    assert {c.state for c in m.cells.values()} == {UP}
    assert m.ok and analyze(m) == []
    assert m.summary()["pairs"] == 9 and m.summary()["up"] == 9


def test_unreachable_agent_is_a_row_of_unknowns_not_a_gap():
    m = matrix(cluster(3, down={(1, 3): "timeout", (2, 3): "timeout"}, unreachable={3: "timeout"}))
    assert len(m.agents) == 3
    assert [m.cell(addr(3), addr(j)).state for j in (1, 2, 3)] == [UNKNOWN] * 3
    assert m.cell(addr(1), addr(3)).state == DOWN
    assert not m.ok


def test_agents_only_others_name_get_rows_and_labels():
    views = cluster(3)[:2]  # agent 3 was never fetched, but both others probe it
    m = matrix(views)
    assert [a.label for a in m.agents] == ["node1", "node2", "node3"]
    assert m.agent(addr(3)).reachable is False


def test_remembered_agents_stay_as_unknown():
    m = matrix(cluster(2), remembered={addr(7): "node7"})
    assert [a.label for a in m.agents] == ["node1", "node2", "node7"]
    assert m.cell(addr(1), addr(7)).state == UNKNOWN
    assert "gone from every view" in " ".join(messages(m))


def test_cells_carry_age_and_measures():
    m = matrix([view(report(1, {1: (UP, None), 2: (UP, None)}), age=4.0)], None)
    cell = m.cell(addr(1), addr(2))
    assert cell.age_s == pytest.approx(4.0)
    assert cell.rtt_ms == pytest.approx(0.7) and cell.connect_ms == pytest.approx(0.2)
    assert cell.udp_loss == 0.0


def test_old_report_counts_as_unknown():
    m = matrix([view(report(1, {1: (UP, None)}, interval=2.0), age=60.0)])
    assert m.cell(addr(1), addr(1)).state == UNKNOWN
    assert "60s old" in m.cell(addr(1), addr(1)).detail


def test_duplicate_node_names_get_address_labels():
    names = {1: "node1", 2: "node1", 3: "node2"}
    m = matrix(cluster(3, names=names))
    assert [a.label for a in m.agents] == ["node1@10.0.9.1", "node1@10.0.9.2", "node2"]


def test_natural_order():
    assert sorted(["node10", "node2", "node1"], key=natural_key) == ["node1", "node2", "node10"]


def test_payload_round_trip_keeps_states_and_findings():
    m = matrix(cluster(4, down=CUT3, targets={1: {"mysql://db:3306": "ok"}}))
    doc = json.loads(json.dumps(m.to_payload(analyze(m), via="test")))
    back = from_payload(doc)
    assert [a.key for a in back.agents] == [a.key for a in m.agents]
    assert {k: c.state for k, c in back.cells.items()} == {k: c.state for k, c in m.cells.items()}
    assert messages(back) == messages(m)
    assert len(doc["rows"]) == 4 and all(len(r["cells"]) == 4 for r in doc["rows"])


@pytest.mark.parametrize(
    "junk",
    [
        {"command": "agent", "agent": {}, "peers": "x"},
        {"command": "agent", "agent": {"node": 5}, "peers": [None, 3, {"address": 7}]},
        {"command": "agent", "agent": {}, "peers": [{"address": "10.0.9.2", "state": "evil"}]},
        {"command": "agent", "agent": [], "round": {"age_s": "old"}, "dns": {"peers": [1, 2]}},
        {"command": "agent", "agent": {}, "targets": [{"target": 1}, "x", {"target": "t"}]},
    ],
)
def test_hostile_reports_do_not_break_the_matrix(junk):
    from netdiag.mesh.gather import Fetched

    m = matrix([Fetched("10.0.9.1", junk, "ok", None, NOW, 1.0), *cluster(2)[1:]])
    analyze(m)
    render(m, analyze(m))
    for c in m.cells.values():
        assert c.state in (UP, DOWN, STALE, UNKNOWN)


@pytest.mark.parametrize(
    "junk",
    [{}, {"nodes": "x"}, {"nodes": [{"key": "a"}], "rows": [{"cells": [{"source": "a"}]}]}],
)
def test_hostile_mesh_documents_parse(junk):
    m = from_payload(junk)
    analyze(m)
    render(m, [])


# -- culprit -----------------------------------------------------------------------------------


def test_cut_node_is_named_as_in_the_issue():
    m = matrix(cluster(3, down=CUT3))
    found = analyze(m)
    assert [f.kind for f in found] == ["node"]
    assert found[0].message == (
        "node3 unreachable from 2 of 2 peers over the overlay but reachable from itself: "
        "check 4789/udp and 7946/tcp+udp between the hosts"
    )
    assert found[0].nodes == ["node3"]


def test_cut_node_whose_report_cannot_be_fetched_is_still_named():
    down = {(1, 3): "timeout", (2, 3): "timeout"}
    found = analyze(matrix(cluster(3, down=down, unreachable={3: "timeout"})))
    assert len(found) == 1 and found[0].nodes == ["node3"]
    assert found[0].message == (
        "node3 unreachable from 2 of 2 peers over the overlay and its own report could not be "
        "fetched either: if its task runs, check 4789/udp and 7946/tcp+udp between the hosts "
        "(a dead host looks the same from here)"
    )


def test_cut_node_seen_from_itself():
    down = {(3, 1): "timeout", (3, 2): "timeout"}
    found = analyze(matrix(cluster(3, down=down, unreachable={1: "timeout", 2: "timeout"})))
    assert found[0].message.startswith(
        "node3 cannot reach 2 of 2 peers and their reports could not be fetched: node3 is cut off"
    )


def test_stopped_agent_refuses():
    down = {(1, 3): "refused", (2, 3): "refused"}
    found = analyze(matrix(cluster(3, down=down, unreachable={3: "refused"})))
    assert len(found) == 1
    assert found[0].message.startswith("node3 refuses connections from 2 of 2 peers")


def test_two_cut_nodes_are_both_named_and_their_victims_not():
    down = {}
    for cut in (3, 4):
        for other in range(1, 5):
            if other != cut:
                down[(cut, other)] = down[(other, cut)] = "timeout"
    found = analyze(matrix(cluster(4, down=down)))
    assert sorted(n for f in found for n in f.nodes) == ["node3", "node4"]
    assert all(f.kind == "node" for f in found)


def test_one_broken_link_blames_no_node():
    found = analyze(matrix(cluster(4, down={(1, 2): "timeout", (2, 1): "timeout"})))
    assert [f.kind for f in found] == ["pairs"]
    assert "node1 <-> node2" in found[0].message


def test_one_way_failure_is_shown_one_way():
    found = analyze(matrix(cluster(3, down={(1, 2): "timeout"})))
    assert [f.kind for f in found] == ["pairs"] and "node1 -> node2" in found[0].message


def test_two_agents_cannot_tell_the_side():
    found = analyze(matrix(cluster(2, down={(1, 2): "timeout", (2, 1): "timeout"})))
    assert [f.kind for f in found] == ["pairs"] and "two agents" in found[0].message


def test_inbound_only_failure():
    down = {(j, 4): "timeout" for j in (1, 2, 3)}
    found = analyze(matrix(cluster(4, down=down)))
    assert found[0].nodes == ["node4"] and "though it reaches them" in found[0].message
    assert "unreachable from 3 of 3 peers" in found[0].message


def test_outbound_only_failure():
    down = {(4, j): "timeout" for j in (1, 2, 3)}
    found = analyze(matrix(cluster(4, down=down)))
    assert found[0].message.startswith("node4 cannot reach 3 of 3 peers though they reach it")


def test_agent_not_listening_on_its_task_address():
    down = {(j, 2): "refused" for j in (1, 2, 3)}
    found = analyze(matrix(cluster(3, down=down)))
    assert found[0].nodes == ["node2"] and "refuses" in found[0].message
    found = analyze(matrix(cluster(3, down={(2, 2): "timeout"})))
    assert [f.kind for f in found] == ["self"] and "node2 cannot reach its own agent" in (
        found[0].message
    )


def test_one_cut_node_among_thirty():
    down = {}
    for j in range(1, 31):
        if j != 17:
            down[(j, 17)] = down[(17, j)] = "timeout"
    found = analyze(matrix(cluster(30, down=down)))
    assert [f.nodes for f in found] == [["node17"]]
    assert "unreachable from 29 of 29 peers over the overlay" in found[0].message


def test_dns_disagreement_names_the_odd_node():
    m = matrix(cluster(3, dns={2: [1, 2]}))
    found = [f for f in analyze(m) if f.kind == "dns"]
    assert [f.message for f in found] == [
        "node2's DNS lists 2 agents, the others 3 (missing node3)"
    ]
    assert m.cell(addr(2), addr(3)).state == UNKNOWN
    assert "not in node2's DNS answer" in m.cell(addr(2), addr(3)).detail


def test_dns_failure_is_reported():
    found = analyze(matrix(cluster(3, lookup_errors={2: "nxdomain"})))
    assert "node2's DNS did not resolve tasks.netdiag (nxdomain)" in [f.message for f in found]


def test_udp_loss_shared_by_a_node():
    loss = {(1, 3): 1.0, (2, 3): 0.6}
    found = analyze(matrix(cluster(3, udp_loss=loss)))
    assert [f.kind for f in found] == ["udp"] and found[0].nodes == ["node3"]
    assert "up to 100%" in found[0].message and "while TCP answers" in found[0].message


def test_stale_peers():
    m = matrix(cluster(3, dns={1: [1, 2]}, stale={(1, 3): True}))
    assert m.cell(addr(1), addr(3)).state == STALE and m.cell(addr(1), addr(3)).up is True
    kinds = {f.kind: f.message for f in analyze(m)}
    assert "vanished from the DNS of node1 but still answers" in kinds["stale"]
    assert not m.ok
    m = matrix(cluster(3, dns={1: [1, 2], 2: [1, 2]}, stale={(1, 3): False, (2, 3): False}))
    kinds = {f.kind: f.message for f in analyze(m)}
    assert "node1, node2 and stopped answering" in kinds["stale"]


def test_target_down_from_one_node_and_from_all():
    t = "mysql://db:3306"
    m = matrix(cluster(3, targets={1: {t: "ok"}, 2: {t: "ok"}, 3: {t: "timeout"}}))
    found = analyze(m)
    assert found[0].message == (
        "mysql://db:3306 reachable from node1, node2 but not from node3 (timeout): "
        "check the path from those nodes"
    )
    assert not m.ok
    m = matrix(cluster(3, targets={i: {t: "refused"} for i in (1, 2, 3)}))
    assert "the service itself, not the overlay" in analyze(m)[0].message


def test_target_on_the_cut_node_is_blamed_on_the_cut_not_the_service():
    """The Swarm lab's shape: the database runs on node3 and node3's VXLAN is cut. Seen from
    node1's side node3's report cannot be fetched; node1 and node2 time out on the database."""
    t = "mysql://mysql:3306"
    cut_silent = {(1, 3): "timeout", (2, 3): "timeout"}
    targets = {1: {t: "timeout"}, 2: {t: "timeout"}, 3: {t: "ok"}}
    m = matrix(cluster(3, down=cut_silent, unreachable={3: "timeout"}, targets=targets))
    found = analyze(m)
    assert [f.kind for f in found] == ["node", "target"]
    assert found[1].message == (
        "mysql://mysql:3306 is down from node1, node2 (timeout), and node3, which is cut off "
        "(above), could not report it: if mysql://mysql:3306 runs on node3, that is the cut, "
        "not the service"
    )
    assert "the service itself" not in " ".join(f.message for f in found)
    # node3's own report fetched (asked from its side): only the cut node reaches it
    found = analyze(matrix(cluster(3, down=CUT3, targets=targets)))
    assert [f.kind for f in found] == ["node", "target"]
    assert found[1].message == (
        "mysql://mysql:3306 reachable only from node3, which is itself cut off (above), and not "
        "from node1, node2 (timeout): it probably runs on node3 or behind it; fix node3's "
        "overlay first"
    )
    assert found[1].nodes == ["node1", "node2"]


def test_target_refused_everywhere_is_the_service_even_with_a_cut_node():
    t = "mysql://mysql:3306"
    targets = {1: {t: "refused"}, 2: {t: "refused"}}
    down = {(1, 3): "timeout", (2, 3): "timeout"}
    found = analyze(matrix(cluster(3, down=down, unreachable={3: "timeout"}, targets=targets)))
    assert found[-1].message.endswith("(refused): the service itself, not the overlay")


def test_target_missed_only_by_the_cut_node_points_at_the_cut():
    t = "mysql://mysql:3306"
    targets = {1: {t: "ok"}, 2: {t: "ok"}, 3: {t: "timeout"}}
    found = analyze(matrix(cluster(3, down=CUT3, targets=targets)))
    assert found[1].message == (
        "mysql://mysql:3306 reachable from node1, node2 but not from node3 (timeout), which is "
        "cut off (above)"
    )


def test_target_only_some_agents_probe_is_not_a_failure():
    m = matrix(cluster(3, targets={1: {"tcp://x:1": "ok"}}))
    assert m.ok and [c.state for c in m.targets[0].cells] == [UP, UNKNOWN, UNKNOWN]


def test_errors_come_before_warnings():
    m = matrix(cluster(4, down=CUT3, udp_loss={(1, 2): 0.4}))
    assert [f.severity for f in analyze(m)] == ["error", "warning"]


# -- text rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 12, 30, 99, 120])
def test_text_fits_100_columns(n):
    down = {(1, n): "timeout"} if n > 1 else {}
    t = {
        i: {"mysql://a-rather-long-database-host-name.example:3306": "ok"} for i in range(1, n + 1)
    }
    m = matrix(cluster(n, down=down, targets=t))
    text = render(m, analyze(m), via="tasks.netdiag")
    assert max(len(line) for line in text.splitlines()) <= 100, text


def test_text_of_a_cut_node():
    m = matrix(cluster(3, down=CUT3))
    text = render(m, analyze(m), via="tasks.netdiag")
    lines = text.splitlines()
    assert (
        lines[0]
        == "3 agents (3 answered), 9 pairs: 5 up, 4 down, 0 stale, 0 unknown (via tasks.netdiag)"
    )
    assert re.match(r"node3\s+DOWN\s+DOWN\s+0\.8$", lines[5])
    assert "error: node3 unreachable from 2 of 2 peers" in text


@pytest.mark.parametrize("width", [100, 80, 60])
def test_text_follows_the_width_rule_and_escapes_peer_text(width, monkeypatch):
    """Node names, targets and details come from other agents: shown escaped, never raw."""
    evil = "evil\x1b[2J\r\nerror: forged"
    t = "mysql://db:3306/\x1b]0;title\x07"
    m = matrix(cluster(3, down=CUT3, names={2: evil}, targets={1: {t: "timeout"}, 2: {t: "ok"}}))
    text = render(m, analyze(m), via="tasks.netdiag", width=width)
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "evil\\x1b[2J\\r\\nerror: forged"[:18] in text  # escaped, clipped in the grid
    assert not any(line.startswith("error: forged") for line in text.splitlines())
    assert max(len(line) for line in text.splitlines()) <= width, text
    monkeypatch.setenv("COLUMNS", str(width))
    assert render(m, analyze(m), via="tasks.netdiag") == text  # the default is terminal_width()


def test_quiet_text_is_only_what_is_not_up():
    assert render(matrix(cluster(3)), [], quiet=True) == ""
    m = matrix(cluster(3, down={(1, 2): "timeout"}))
    lines = render(m, analyze(m), quiet=True).splitlines()
    assert lines[0].startswith("3 agents (3 answered), 9 pairs: 8 up, 1 down")
    assert "node1: down to node2" in lines and not any(x.startswith("node2") for x in lines)
    assert lines[-1].startswith("error: 1 pair(s) down")


def test_narrow_grid_uses_glyphs():
    m = matrix(cluster(30, down={(2, 5): "timeout"}))
    grid = [line for line in render(m, []).splitlines() if re.match(r"^\s*\d+ node", line)]
    assert len(grid) == 30
    glyphs = grid[1][len(" 2 node2  ") :].split()
    assert glyphs[4] == "X" and glyphs.count("+") == 29


# -- HTML --------------------------------------------------------------------------------------


def test_page_cells_have_stable_attributes_and_escape_names():
    names = {1: "node1", 2: "<script>alert(1)</script>", 3: "node3"}
    m = matrix(cluster(3, down=CUT3, names=names))
    html = render_page(m, analyze(m), "node1", "0.1.0", 10)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    cells = re.findall(
        r'<td class="cell [^"]*" data-source="([^"]+)" data-target="([^"]+)"'
        r'.*?data-state="(\w+)"',
        html,
    )
    assert len(cells) == 9
    states = {(s, t): st for s, t, st in cells}
    assert states[(addr(1), addr(3))] == "down" and states[(addr(3), addr(3))] == "up"
    assert "http" not in html.split("<body", 1)[1].replace("http://", "") or "cdn" not in html


# -- metrics -----------------------------------------------------------------------------------


def _families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_follow_the_round_and_drop_series_of_dropped_peers():
    from netdiag.mesh.metrics import Metrics
    from netdiag.mesh.round import Dropped

    metrics = Metrics("node1", process=False)
    first = report(
        1, {1: (UP, None), 2: (UP, None), 3: (DOWN, "timeout")}, targets={"mysql://db:3306": "ok"}
    )
    metrics.update(first)
    fam = _families(metrics.render().decode())
    up = {s.labels["target_node"]: s.value for s in fam["netdiag_peer_up"].samples}
    assert up == {"node1": 1.0, "node2": 1.0, "node3": 0.0}
    loss = {s.labels["target_address"]: s.value for s in fam["netdiag_peer_udp_loss_ratio"].samples}
    assert loss == {addr(1): 0.0, addr(2): 0.0, addr(3): 1.0}
    counts = {
        s.labels["target_node"]: s.value
        for s in fam["netdiag_peer_rtt_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"node1": 1.0, "node2": 1.0}  # a down peer has no RTT to observe
    assert [s.value for s in fam["netdiag_target_up"].samples] == [1.0]
    assert {s.labels["name"] for s in fam["netdiag_dns_lookup_seconds"].samples} == {
        "tasks.netdiag"
    }
    second = report(1, {1: (UP, None), 3: (DOWN, "timeout")})
    metrics.update(second, [Dropped(addr(2), "node2")])
    text = metrics.render().decode()
    assert addr(2) not in text and 'target_node="node2"' not in text
    fam = _families(text)
    assert "netdiag_round_duration_seconds" in fam


@given(st.binary(max_size=80))
def test_udp_echo_decode_never_raises(data):
    udp_echo.decode(data)
    out = udp_echo.reply_to(data)
    assert out is None or len(out) == udp_echo.PACKET_SIZE


def test_udp_echo_wire():
    token = b"12345678"
    req = udp_echo.encode(udp_echo.REQUEST, 7, token)
    assert len(req) == 64 and udp_echo.decode(req) == (udp_echo.REQUEST, 7, token)
    rep = udp_echo.reply_to(req)
    assert udp_echo.decode(rep) == (udp_echo.REPLY, 7, token)
    assert udp_echo.reply_to(rep) is None  # never answer a reply: no loops between agents
    assert udp_echo.reply_to(req + b"x") is None and udp_echo.reply_to(req[:-1]) is None


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'HTTP/1.0 200 OK\r\nContent-Length: 27\r\n\r\n{"agent": "netdiag-agent"}\n', "ok"),
        (b"HTTP/1.0 404 Not Found\r\n\r\n", "protocol_mismatch"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "protocol_mismatch"),
        (b"HTTP/1.1 200 OK\r\n\r\n<html>", "protocol_mismatch"),
        (b'HTTP/1.1 200 OK\r\n\r\n{"agent": "goldpinger"}', "protocol_mismatch"),
        (b"", "protocol_mismatch"),
    ],
)
def test_ping_answer_parser(raw, status):
    assert parse_ping_answer(raw)[0] == status


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0.0.0.0:8099", ("0.0.0.0", 8099)),
        ("8099", ("0.0.0.0", 8099)),
        (":9000", ("0.0.0.0", 9000)),
        ("[::]:8099", ("::", 8099)),
        ("127.0.0.5:1", ("127.0.0.5", 1)),
    ],
)
def test_parse_listen(text, want):
    from netdiag.commands.agent import parse_listen

    assert parse_listen(text) == want


@pytest.mark.parametrize(
    "text", ["host:8099", "0.0.0.0:0", "0.0.0.0:70000", "[::]8099", "1.2.3.4:x"]
)
def test_parse_listen_rejects(text):
    from netdiag.commands.agent import parse_listen

    with pytest.raises(UsageError):
        parse_listen(text)


def test_missing_view_helper():
    assert missing(2).doc is None


def test_documents_match_their_schemas():
    from netdiag.report import envelope

    views = cluster(
        4,
        down=CUT3,
        targets={1: {"mysql://db:3306": "ok"}},
        stale={(2, 4): True},
        dns={2: [1, 2, 3]},
    )
    for v in views:
        validate(v.doc, "agent")
    m = matrix([*views, missing(5)])
    validate(envelope("mesh", m.ok, 1.0, m.to_payload(analyze(m), via="t")), "mesh")
