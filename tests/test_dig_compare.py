"""netdiag dig against BIND dig 9.18, same arguments, same loopback server, same test.

Outputs must be equal line for line once the banner's program/version, the message id, the
query time and the WHEN clock are masked (and the random client half of a COOKIE, and
+identify's timings);
exit codes and stderr must be equal too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_netdiag
from tests.support.dig_masks import mask
from tests.support.fake_embedded_dns import FakeEmbeddedDNS


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEmbeddedDNS]:
    with FakeEmbeddedDNS() as srv:
        yield srv


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME so that neither tool reads a ~/.digrc."""
    return tmp_path


def run_both(
    args: list[str], home: Path, stdin: str | None = None
) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    dig = shutil.which("dig")
    assert dig, "BIND dig is missing: apt-get install bind9-dnsutils"
    env = {**os.environ, "HOME": str(home)}
    ref = subprocess.run(
        ["dig", *args], capture_output=True, text=True, env=env, timeout=60, input=stdin, cwd=home
    )
    ours = run_netdiag("dig", *args, env={"HOME": str(home)}, input=stdin)
    return ref, ours


def assert_same(args: list[str], home: Path) -> subprocess.CompletedProcess:
    ref, ours = run_both(args, home)
    assert mask(ours.stdout).splitlines() == mask(ref.stdout).splitlines(), (
        ref.stdout,
        ours.stdout,
    )
    assert ours.stderr.splitlines() == ref.stderr.splitlines()
    assert ours.returncode == ref.returncode
    return ref


SERVER = ["@127.0.0.1", "-p", "{P}"]

CASES: dict[str, list[str]] = {
    "default": [*SERVER, "mysql"],
    "server-after-name": ["mysql", *SERVER],
    "port-attached": ["@127.0.0.1", "-p{P}", "db"],
    "reverse": [*SERVER, "-x", "10.213.7.3"],
    "reverse-v6": [*SERVER, "-x", "fd00:213::5"],
    "reverse-not-ip": [*SERVER, "-x", "notanip"],
    "short": [*SERVER, "mysql", "+short"],
    "short-global": ["+short", *SERVER, "mysql", "db", "-x", "10.213.7.2"],
    "noall-answer": [*SERVER, "mysql", "+noall", "+answer"],
    "noall-answer-stats": [*SERVER, "mysql", "+noall", "+answer", "+stats"],
    "noall-comments": [*SERVER, "mysql", "+noall", "+comments"],
    "noall": [*SERVER, "mysql", "+noall"],
    "nocmd": [*SERVER, "mysql", "+nocmd"],
    "nocmd-global": ["+nocmd", *SERVER, "mysql"],
    "nocomments": [*SERVER, "mysql", "+nocomments"],
    "nostats": [*SERVER, "mysql", "+nostats"],
    "noquestion": [*SERVER, "mysql", "+noquestion"],
    "tcp": [*SERVER, "mysql", "+tcp"],
    "vc": [*SERVER, "+vc", "app"],
    "norecurse": [*SERVER, "mysql", "+norecurse"],
    "noedns": [*SERVER, "mysql", "+noedns"],
    "bufsize": [*SERVER, "sixty-records-here.ndnet", "+bufsize=4096"],
    "opt-pseudosection": [*SERVER, "edns.example.test"],
    "opt-nocomments": [*SERVER, "edns.example.test", "+nocomments"],
    "opt-noedns": [*SERVER, "edns.example.test", "+noedns"],
    "opt-nocookie": [*SERVER, "edns.example.test", "+nocookie"],
    "opt-dnssec": [*SERVER, "edns.example.test", "+dnssec"],
    "opt-edns1": [*SERVER, "edns.example.test", "+edns=1"],
    "truncated-retry": [*SERVER, "sixty-records-here.ndnet"],
    "truncated-short": [*SERVER, "sixty-records-here.ndnet", "+short"],
    "truncated-nocomments": [*SERVER, "sixty-records-here.ndnet", "+nocomments", "+noanswer"],
    "truncated-ignore": [*SERVER, "sixty-records-here.ndnet", "+ignore"],
    "truncated-noedns-ignore": [*SERVER, "+noedns", "sixty-records-here.ndnet", "+ign"],
    "aaaa-empty": [*SERVER, "mysql", "AAAA"],
    "aaaa": [*SERVER, "v6host", "aaaa"],
    "nxdomain": [*SERVER, "nobody-here.ndnet"],
    "nxdomain-authority": [*SERVER, "gone.example.test"],
    "nxdomain-noauthority": [*SERVER, "gone.example.test", "+noauthority"],
    "servfail": [*SERVER, "broken.example.test"],
    "servfail-norecurse": [*SERVER, "broken.example.test", "+norec"],
    "long-owner": [*SERVER, "a-rather-long-container-name.ndnet"],
    "cname": [*SERVER, "web"],
    "mx": [*SERVER, "mail.example.test", "MX"],
    "txt": [*SERVER, "mail.example.test", "TXT"],
    "soa": [*SERVER, "-t", "soa", "mail.example.test"],
    "ns": [*SERVER, "mail.example.test", "ns", "+noall", "+answer"],
    "srv": [*SERVER, "_mysql._tcp.example.test", "SRV"],
    "type-class-positional": [*SERVER, "mysql", "MX", "IN"],
    "class-type-before-name": [*SERVER, "txt", "ch", "mysql"],
    "dash-t-dash-c": [*SERVER, "-c", "CH", "-t", "txt", "mysql"],
    "class-mismatch-warning": [*SERVER, "mysql", "CH"],
    "qr": [*SERVER, "mysql", "+qr"],
    "multiline-soa": [*SERVER, "mail.example.test", "SOA", "+multiline"],
    "multiline-authority": [*SERVER, "gone.example.test", "+multi"],
    "multiline-others": [
        *SERVER,
        "+multiline",
        "mysql",
        "a-rather-long-container-name.ndnet",
        "mail.example.test",
        "TXT",
    ],
    "multiline-nottl-short": [
        *SERVER,
        "mail.example.test",
        "SOA",
        "+multiline",
        "+nottl",
        "-x",
        "10.213.7.2",
        "+multi",
        "+short",
    ],
    "identify-short": [*SERVER, "mysql", "+identify", "+short"],
    "identify-answer": [
        *SERVER,
        "mysql",
        "+identify",
        "+noall",
        "+answer",
        "db",
        "+ident",
        "+nostats",
    ],
    "identify-stats": [*SERVER, "mysql", "+identify", "+noall", "+answer", "+stats"],
    "identify-noall": [*SERVER, "+identify", "mysql", "+noall", "+tcp"],
    "qr-variants": [*SERVER, "+qr", "mysql", "+nocomments", "db", "+nostats", "app", "+noquestion"],
    "qr-noedns-short": [
        *SERVER,
        "mysql",
        "+qr",
        "+noedns",
        "+norec",
        "-x",
        "10.213.7.2",
        "+qr",
        "+short",
    ],
    "qr-truncated": [*SERVER, "sixty-records-here.ndnet", "+qr", "+noanswer"],
    "class-hs-short": [*SERVER, "mysql", "HS", "+short"],
    "dash-q": [*SERVER, "-q", "mx", "+short"],
    "type1": [*SERVER, "mysql", "TYPE1", "+short"],
    "any-over-tcp": [*SERVER, "mysql", "ANY"],
    "any-dash-t": [*SERVER, "-t", "any", "mysql"],
    "any-notcp": [*SERVER, "mysql", "any", "+notcp"],
    "unknown-type": [*SERVER, "mysql", "TYPE65534"],
    "invalid-type": [*SERVER, "-t", "bogus", "mysql", "+short"],
    "extra-type": [*SERVER, "mysql", "A", "MX", "+short"],
    "multi": [*SERVER, "mysql", "db", "app"],
    "multi-short": [*SERVER, "mysql", "db", "+short", "app"],
    "multi-local-options": [
        *SERVER,
        "+nocmd",
        "mysql",
        "+noall",
        "+answer",
        "db",
        "-x",
        "10.213.7.4",
        "+nostats",
    ],
    "root-default": SERVER,
    "root-ns": [*SERVER, ".", "NS", "+nocmd"],
    "percent-stops": [*SERVER, "mysql", "%", "db"],
    "abbreviations": [*SERVER, "mysql", "+noad", "+nocomm", "+nost", "+noqu"],
    "uppercase": [*SERVER, "mysql", "+SHORT"],
    "retry": [*SERVER, "mysql", "+retry=1", "+time=2"],
    "bogus": [*SERVER, "mysql", "+bogus"],
    "bogus-no": ["+nobogus"],
    "bogus-value": [*SERVER, "+bogus=3", "mysql"],
    "bogus-global": ["+bogus"],
    "dash-bogus": [*SERVER, "-z", "mysql"],
    "missing-value": [*SERVER, "mysql", "+time="],
    "bad-number": [*SERVER, "mysql", "+time=abc"],
    "bad-bufsize": [*SERVER, "mysql", "+bufsize=99999"],
    "bad-port": ["@127.0.0.1", "-p", "abc", "mysql"],
    "port-range": ["@127.0.0.1", "-p", "70000", "mysql"],
    "short-abbrev-invalid": [*SERVER, "mysql", "+sho"],
    "ad-synonym": [*SERVER, "mysql", "+ad", "+cd", "+nocmd"],
    "noclass": [*SERVER, "mysql", "a-rather-long-container-name.ndnet", "+nocl"],
    "nottlid": [*SERVER, "+nottlid", "mysql", "-x", "10.213.7.3"],
    "nottl-noclass": [*SERVER, "+nottl", "+noclass", "mail.example.test", "SOA", "mysql"],
    "ttl-class-on": [*SERVER, "mysql", "+nottl", "+ttlid", "+noclass", "+class"],
    "ipv4-only": ["-4", *SERVER, "mysql"],
    "ipv6-only-skips-v4-server": [*SERVER, "-6", "mysql", "db"],
    "ipv4-only-v6-server": ["@::1", "-p", "{P}", "-4", "mysql"],
    "label-too-long": [*SERVER, "mysql", "a" * 70, "+short"],
    "empty-label": [*SERVER, "a..b"],
    "server-missing": ["@", "mysql"],
    "dash-value-missing": [*SERVER, "mysql", "-t"],
    "lone-dash": [*SERVER, "mysql", "-"],
    "lone-plus": [*SERVER, "+", "mysql", "+=", "+short"],
    "dash-attached-values": [*SERVER, "-tmx", "-cin", "mail.example.test"],
    "dash-combined-flags": [*SERVER, "-4x", "10.213.7.2"],
    "plus-value-ignored": [*SERVER, "mysql", "+short=1"],
    "edns-out-of-range": [*SERVER, "mysql", "+edns=300"],
    "deprecated-dash-flags": [*SERVER, "-i", "-n", "-r", "-m", "mysql", "+short"],
}


# The quick tier (-m "not slow") keeps one case per kind of output; the full list is slow
# (two processes per case, about 0.3 s each).
QUICK = {"default", "short", "tcp", "nxdomain", "truncated-retry", "multi", "bogus", "reverse"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in CASES]
)
def test_same_as_bind_dig(name: str, server: FakeEmbeddedDNS, home: Path) -> None:
    args = [a.format(P=server.port, S=server.silent_port) for a in CASES[name]]
    assert_same(args, home)


SILENT = ["@127.0.0.1", "-p", "{S}"]
SILENT_CASES: dict[str, list[str]] = {
    "two-tries": [*SILENT, "mysql", "+time=1", "+tries=2"],
    "tcp": [*SILENT, "+time=1", "+tries=2", "+tcp", "mysql"],
    "short-after-name": [*SILENT, "mysql", "+time=1", "+tries=1", "+short"],
    "short-before-name": ["+short", *SILENT, "mysql", "+time=1", "+tries=1"],
    "nocmd-before-name": ["+nocmd", *SILENT, "+time=1", "+retry=0", "mysql"],
    "two-lookups": [*SILENT, "+time=1", "+tries=1", "mysql", "db"],
    "tries-zero": [*SILENT, "+time=1", "+tries=0", "mysql"],
    "qr-each-try": [*SILENT, "mysql", "+qr", "+time=1", "+tries=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SILENT_CASES))
def test_no_reply_same_as_bind_dig(name: str, server: FakeEmbeddedDNS, home: Path) -> None:
    args = [a.format(P=server.port, S=server.silent_port) for a in SILENT_CASES[name]]
    ref = assert_same(args, home)
    assert ref.returncode == 9
    assert "communications error to 127.0.0.1#" in ref.stdout


def test_refused_same_as_bind_dig(server: FakeEmbeddedDNS, home: Path) -> None:
    """A closed port: ICMP refusal over UDP, a refused connection over TCP."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = str(probe.getsockname()[1])
    for extra in ([], ["+tcp"]):
        ref = assert_same(
            ["@127.0.0.1", "-p", closed, "+time=1", "+tries=2", *extra, "mysql"], home
        )
        assert ref.returncode == 9


def test_batch_file(server: FakeEmbeddedDNS, home: Path) -> None:
    batch = home / "batch.txt"
    batch.write_text(
        f"mysql\n\n# a comment\n@127.0.0.1 -p {server.port} db +noall +answer\n-x 10.213.7.2 +nocmd\nweb +short\n"
    )
    for args in (
        ["@127.0.0.1", "-p", str(server.port), "-f", str(batch)],
        ["@127.0.0.1", "-p", str(server.port), "-f", str(batch), "app"],
        ["-f", str(batch), "@127.0.0.1", "-p", str(server.port), "+nocmd"],
    ):
        assert_same(args, home)


def test_batch_file_missing(server: FakeEmbeddedDNS, home: Path) -> None:
    ref = assert_same(
        ["@127.0.0.1", "-p", str(server.port), "-f", str(home / "nope.txt"), "mysql"], home
    )
    assert ref.returncode == 8


def test_recursion_not_available(home: Path) -> None:
    """RD asked, RA missing in the reply: dig's warning line."""
    with FakeEmbeddedDNS({"solo": {"A": ["10.1.2.3"]}}, no_ra=True) as srv:
        assert_same(["@127.0.0.1", "-p", str(srv.port), "solo"], home)


@pytest.mark.slow
def test_one_lookup_fails_another_answers(server: FakeEmbeddedDNS, home: Path) -> None:
    """A silent server on 127.0.0.2 (same port) for one lookup: the last lookup decides the exit."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.2", server.port))
        args = ["-p", str(server.port), "+time=1", "+tries=1"]
        ref = assert_same([*args, "mysql", "@127.0.0.2", "db", "@127.0.0.1"], home)
        assert ref.returncode == 0 and "no servers could be reached" in ref.stdout
        ref = assert_same([*args, "db", "@127.0.0.1", "mysql", "@127.0.0.2", "+short"], home)
        assert ref.returncode == 9


@pytest.mark.slow
def test_several_servers(server: FakeEmbeddedDNS, home: Path) -> None:
    """A silent, a refusing and an answering server: dig's order of tries and messages."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.2", server.port))
        base = ["-p", str(server.port), "+time=1"]
        assert_same([*base, "@127.0.0.2", "@127.0.0.1", "mysql", "+tries=2"], home)
        ref = assert_same([*base, "@127.0.0.2", "@127.0.0.3", "@127.0.0.1", "mysql"], home)
        assert ref.returncode == 0 and "127.0.0.3#" in ref.stdout
        ref = assert_same([*base, "+tries=2", "@127.0.0.2", "@127.0.0.3", "mysql"], home)
        assert ref.returncode == 9


def test_ipv6_server(home: Path) -> None:
    """@::1: dig's address#port(name) form for IPv6, and -6/-4 handling."""
    with FakeEmbeddedDNS(host="::1") as srv:
        port = str(srv.port)
        for args in (
            ["@::1", "-p", port, "mysql"],
            ["-6", "@::1", "-p", port, "-x", "10.213.7.2", "+nocmd"],
            ["@::1", "-p", port, "sixty-records-here.ndnet", "+nocmd", "+noanswer"],
        ):
            assert_same(args, home)


def test_bad_packet_same_as_bind_dig(home: Path) -> None:
    """A peer answering junk with the right id: dig's 'Got bad packet' dump, exit 0."""
    import socket
    import threading

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = udp.recvfrom(4096)
            except OSError:
                continue
            udp.sendto(data[:2] + b"\x81\x80\x00\x01\x00\x05" + b"\xff" * 40, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def unid(text: str) -> list[str]:  # the dump's first two bytes are the random id
        lines = text.splitlines()
        if len(lines) > 2:
            lines[2] = "ID ID " + lines[2][6:57] + ".." + lines[2][59:]
        return lines

    try:
        args = ["@127.0.0.1", "-p", str(udp.getsockname()[1]), "+time=1", "+tries=2", "mysql"]
        ref, ours = run_both(args, home)
        assert unid(ours.stdout) == unid(ref.stdout) and "bad packet" in ref.stdout
        assert ours.returncode == ref.returncode == 0
    finally:
        stop.set()
        thread.join(2)
        udp.close()
