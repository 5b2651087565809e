"""netdiag dig's pure parts (argument parser, column layout, search list) and its JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import dns.message
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.dns import digformat
from netdiag.dns.digargs import DigExit, DigParser, reverse_name
from netdiag.dns.digquery import candidates
from netdiag.dns.resolvconf import ResolvConf
from tests.conftest import NETDIAG, run_netdiag
from tests.support.fake_embedded_dns import FakeEmbeddedDNS
from tests.support.schemas import netdiag_json


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEmbeddedDNS]:
    with FakeEmbeddedDNS() as srv:
        yield srv


# -- parser ------------------------------------------------------------------------------------
def test_options_before_the_first_name_apply_to_all_after_only_to_one() -> None:
    parser = DigParser()
    lookups = parser.parse(
        ["+notcp", "MX", "@10.0.0.1", "alpha", "+tcp", "bravo", "AAAA", "-x", "10.1.2.3"]
    )
    assert [lk.name for lk in lookups] == ["alpha", "bravo", "3.2.1.10.in-addr.arpa."]
    assert [lk.tcp for lk in lookups] == [True, False, False]
    assert [dns.rdatatype.to_text(lk.rdtype) for lk in lookups] == [
        "MX",
        "AAAA",
        "MX",
    ]  # -x keeps a type set before
    assert all(lk.servers == ["10.0.0.1"] for lk in lookups)
    assert lookups[0].cmdline.startswith("\n; <<>> netdiag ")
    assert "; (1 server found)\n;; global options: +cmd\n" in lookups[0].cmdline
    assert lookups[1].cmdline == ""


def test_global_switches_wherever_they_appear() -> None:
    parser = DigParser()
    lookups = parser.parse(
        ["alpha", "-p", "5300", "+time=2", "+short", "bravo", "+search", "-c", "CH"]
    )
    assert parser.opts.port == 5300 and parser.opts.port_set
    assert parser.opts.timeout_s == 2 and parser.opts.short and parser.opts.usesearch
    assert lookups[1].rdclass == dns.rdataclass.CH and lookups[0].rdclass == dns.rdataclass.IN


@pytest.mark.parametrize(
    ("word", "attr", "value"),
    [
        ("+tries=0", "tries", 1),
        ("+retry=0", "tries", 1),
        ("+ret=4", "tries", 5),
        ("+bufsize=4096", "bufsize", 4096),
        ("+noedns", "edns", -1),
        ("+edns=1", "edns", 1),
        ("+norec", "recurse", False),
        ("+nordflag", "recurse", False),
        ("+ign", "ignore", True),
        ("+i", "ignore", True),
        ("+vc", "tcp", True),
        ("+nocomm", "comments", False),
    ],
)
def test_plus_options(word: str, attr: str, value: object) -> None:
    (lookup,) = DigParser().parse(["name", word])
    assert getattr(lookup, attr) == value


@pytest.mark.parametrize(
    "word", ["+bogus", "+SHORT", "+sho", "+c", "+time=", "+nobufsize=1", "+tc", "-z"]
)
def test_invalid_options_are_dig_usage_errors(word: str) -> None:
    with pytest.raises(DigExit) as info:
        DigParser().parse(["name", word])
    assert info.value.code == 1
    assert info.value.stderr[0].startswith("Invalid option: ")
    assert info.value.stderr[1].startswith("Usage:  dig ")


@pytest.mark.parametrize("word", ["+nssearch", "+trace", "+yaml", "-y", "-k"])
def test_known_but_unsupported_options_say_so(word: str) -> None:
    with pytest.raises(DigExit) as info:
        DigParser().parse(["name", word, "x"])
    assert info.value.code == 1 and "not supported" in info.value.stderr[0]


def test_reverse_names() -> None:
    assert reverse_name("10.213.7.3") == "3.7.213.10.in-addr.arpa."
    assert reverse_name("fd00::1").endswith(".0.0.d.f.ip6.arpa.")
    assert reverse_name("10.213") == "213.10.in-addr.arpa."


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="+-@.=%abcdeinopqrstvx0123456789:#", max_size=12), max_size=8))
def test_parser_raises_only_dig_exits(argv: list[str]) -> None:
    try:
        lookups = DigParser().parse(argv)
    except DigExit as exc:
        assert exc.code in (0, 1, 10)
    else:
        assert lookups


# -- layout -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "to", "expected"),
    [
        (6, 24, "\t\t\t"),
        (24, 24, " "),
        (35, 24, " "),
        (27, 32, "\t"),
        (39, 40, "\t"),
        (42, 40, " "),
        (0, 8, "\t"),
    ],
)
def test_indent_like_bind(column: int, to: int, expected: str) -> None:
    assert digformat.indent(column, to)[0] == expected


def test_search_list_only_with_plus_search() -> None:
    conf = ResolvConf(search=["ndnet", "example.test"], ndots=1)
    parser = DigParser()
    parser.parse(["x"])
    assert candidates("db", parser.opts, conf) == ["db."]
    parser.opts.usesearch = True
    assert candidates("db", parser.opts, conf) == ["db.ndnet.", "db.example.test.", "db."]
    assert candidates("db.ndnet", parser.opts, conf) == ["db.ndnet."]
    assert candidates("db.", parser.opts, conf) == ["db."]


def test_search_list_against_a_server(server: FakeEmbeddedDNS, tmp_path) -> None:
    """+search walks resolv.conf's search list past NXDOMAIN to the name that exists."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\nsearch nowhere.test ndnet\noptions ndots:1\n")
    env = {"NETDIAG_RESOLV_CONF": str(conf), "NETDIAG_RESOLVER": f"127.0.0.1#{server.port}"}
    proc = run_netdiag("dig", "app", "+search", "+noall", "+answer", env=env)
    assert proc.returncode == 0
    assert proc.stdout == "app.ndnet.\t\t600\tIN\tA\t10.213.7.4\n"
    proc = run_netdiag("dig", "app", "+noall", "+answer", env=env)
    assert proc.stdout == "app.\t\t\t600\tIN\tA\t10.213.7.4\n"


# -- JSON -------------------------------------------------------------------------------------
def test_json_document(server: FakeEmbeddedDNS) -> None:
    proc = run_netdiag(
        "dig", "@127.0.0.1", "-p", str(server.port), "mysql", "sixty-records-here.ndnet", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = netdiag_json(proc.stdout)
    first, second = doc["queries"]
    assert first["status"] == "reply" and first["errors"] == []
    reply = first["reply"]
    assert reply["header"]["status"] == "NOERROR" and reply["header"]["flags"] == ["qr", "rd", "ra"]
    assert reply["header"]["counts"] == {"query": 1, "answer": 2, "authority": 0, "additional": 0}
    assert [r["data"] for r in reply["answer"]] == ["10.213.7.2", "10.213.7.3"]
    assert reply["answer"][0] == {
        "name": "mysql.",
        "ttl": 600,
        "class": "IN",
        "type": "A",
        "data": "10.213.7.2",
    }
    assert reply["msg_size"] == 65 and reply["transport"] == "udp" and reply["edns"] is None
    assert reply["server"] == "127.0.0.1" and reply["port"] == server.port
    assert isinstance(reply["query_time_ms"], int)
    assert second["reply"]["transport"] == "tcp" and len(second["reply"]["answer"]) == 60
    assert second["errors"] == ["Truncated, retrying in TCP mode."]


@pytest.mark.slow
def test_json_no_reply(server: FakeEmbeddedDNS) -> None:
    proc = run_netdiag(
        "dig", "@127.0.0.1", "-p", str(server.silent_port), "+json", "+time=1", "+tries=1", "mysql"
    )
    assert proc.returncode == 9
    (query,) = netdiag_json(proc.stdout)["queries"]
    assert query["status"] == "no_reply" and query["reply"] is None
    assert query["errors"] == [
        f"communications error to 127.0.0.1#{server.silent_port}: timed out",
        "no servers could be reached",
    ]


def test_startup_imports_stay_light(server: FakeEmbeddedDNS) -> None:
    proc = subprocess.run(
        [
            *NETDIAG[:1],
            "-X",
            "importtime",
            *NETDIAG[1:],
            "dig",
            "@127.0.0.1",
            "-p",
            str(server.port),
            "mysql",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "dns.message" in modules
    heavy = {
        m
        for m in modules
        if m.split(".")[0] in ("scapy", "docker", "tabulate", "pymysql", "requests", "dns.resolver")
    }
    assert not heavy and "dns.resolver" not in modules and "dns.query" not in modules
    assert sys.executable


def _replies() -> list[bytes]:
    srv = FakeEmbeddedDNS()
    out = []
    for name, rdtype in [
        ("mysql", "A"),
        ("mail.example.test", "TXT"),
        ("gone.example.test", "A"),
        ("_mysql._tcp.example.test", "SRV"),
    ]:
        query = dns.message.make_query(name + ".", rdtype, use_edns=0)
        reply = srv.answer(query.to_wire(), "tcp")
        assert reply is not None
        out.append(reply)
    return out


REPLIES = _replies()


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(REPLIES),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
)
def test_render_survives_any_parsable_reply(wire: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(wire)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        message = dns.message.from_wire(bytes(data), ignore_trailing=True)
    except Exception:
        return
    answer = digformat.Answer(message, bytes(data), "127.0.0.1", 53, "127.0.0.1", "UDP", 0)
    parser = DigParser()
    (lookup,) = parser.parse(["x"])
    text = digformat.render_reply(answer, lookup, parser.opts)
    assert text.endswith("\n")
    json.dumps(digformat.answer_json(answer))


@pytest.mark.slow
def test_hostile_server_no_traceback_no_hang(tmp_path) -> None:
    """A UDP peer answering junk with the right id, a TCP peer promising 65535 bytes and stalling."""
    import socket
    import threading

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", port))
    tcp.listen(4)
    stop = threading.Event()

    def serve_udp() -> None:
        udp.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = udp.recvfrom(4096)
            except OSError:
                continue
            udp.sendto(data[:2] + b"\x81\x80\x00\x01\x00\x05" + b"\xff" * 20, peer)

    def serve_tcp() -> None:
        tcp.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = tcp.accept()
            except OSError:
                continue
            conn.sendall(b"\xff\xff" + b"\x00" * 10)
            held.append(conn)
        for conn in held:
            conn.close()

    threads = [threading.Thread(target=f, daemon=True) for f in (serve_udp, serve_tcp)]
    for t in threads:
        t.start()
    try:
        proc = run_netdiag(
            "dig", "@127.0.0.1", "-p", str(port), "+time=1", "+tries=2", "mysql", timeout=20
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr  # as BIND dig
        assert proc.stdout.startswith(";; Got bad packet: bad compression pointer\n28 bytes\n")
        proc = run_netdiag(
            "dig", "@127.0.0.1", "-p", str(port), "+time=1", "+tries=1", "+tcp", "mysql", timeout=20
        )
        assert proc.returncode == 9 and "Traceback" not in proc.stderr
        assert f";; communications error to 127.0.0.1#{port}: timed out" in proc.stdout
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        udp.close()
        tcp.close()
