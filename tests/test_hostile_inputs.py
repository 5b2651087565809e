"""Odd inputs and hostile files end in a usage error or a clean result, never in an internal
error or a hang (issue 14 §4, §10-§16): URLs, flags, checks files, FIFOs, IPv4 spellings."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from netdiag.checks.spec import SpecError, parse
from tests.conftest import run_netdiag
from tests.health_peers import closed_port, listener, resolver_env
from tests.support import hostile
from tests.support.mini_dns import MiniDns
from tests.support.servers import start_http

PW = "S3CRETpw"


def one_line(out: subprocess.CompletedProcess, code: int) -> str:
    """The one error line (a usage error prints the usage line above it); never a traceback."""
    assert out.returncode == code, out
    lines = out.stderr.splitlines()
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[0].startswith("usage:")), lines
    return lines[-1]


# --- §4: a URL's password never appears in a message -----------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["probe", f"mysql://root:{PW}@db:99999"], 2),  # invalid port
        (["probe", f"ftp://root:{PW}@db"], 2),  # unknown scheme
        (["wait", f"tcp://root:{PW}@[::1:80"], 2),  # bad IPv6 literal
        (["check", f"mysql://root:{PW}@db:0"], 1),  # port out of range; check never exits 2
        (["doctor", "mysql://db", f"mysql://root:{PW}@other"], 2),  # unrecognized argument
        (["probe", f"root:{PW}@db:1"], 2),  # a password in a URL is refused outright
    ],
)
def test_url_password_redacted_in_usage_errors(args, code) -> None:
    err = one_line(run_netdiag(*args), code)
    assert PW not in err and PW[:5] not in err, err


def test_url_password_redacted_in_a_checks_file(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[checks.db]\ntarget = "mysql://root:{PW}@db:99999"\n')
    err = one_line(run_netdiag("check", "-f", str(path)), 1)
    assert PW not in err and "root:***@db:99999" in err, err


# --- §10: inputs that ended in an internal error ------------------------------------------------


def test_expect_status_with_a_tcp_target_is_no_internal_error() -> None:
    out = run_netdiag("probe", "--expect-status", "200", f"tcp://127.0.0.1:{closed_port()}")
    err = one_line(out, 2)  # the flag contract: a flag that fits no target is a usage error
    assert "--expect-status" in err


@pytest.mark.parametrize(
    "args",
    [
        ["wait", "--timeout", "1e308", "tcp://127.0.0.1:1"],
        ["probe", "--deadline", "1e308", "tcp://127.0.0.1:1"],
        ["wait", "tcp://127.0.0.1:1", "--", ""],
    ],
)
def test_usage_not_internal_error(args) -> None:
    err = one_line(run_netdiag(*args), 2)
    assert "error:" in err


def test_deeply_nested_toml_is_a_spec_error(tmp_path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    err = one_line(run_netdiag("check", "-f", str(path)), 1)
    assert "nested too deeply" in err


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://127.0.0.1:99999/", "bad redirect Location"),
        ("http://[::1/", "bad redirect Location"),
        ("ftp://127.0.0.1/x", "redirect to a ftp: URL"),
    ],
)
def test_bad_redirect_location_is_the_servers_fault(location, words) -> None:
    routes = {"/r": (302, {"Location": location}, b"")}
    with start_http(routes=routes) as server:
        out = run_netdiag("probe", "--json", "--follow-redirects", server.url("/r"))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out
    (res,) = json.loads(out.stdout)["results"]
    assert res["step"] == "redirect" and words in res["detail"], res


# --- §11: a checks file of 4000 checks: linear parse, inside the deadline -------------------


def checks_file(count: int) -> str:
    parts = ["[defaults]\ntimeout = 1\n"]
    for i in range(count):
        parts.append(
            f'[checks.c{i}]\ntarget = "tcp://127.0.0.1:{1 + i % 50}"\n'
            'description = "the network contract of the app"\nexpect = "refused"\n'
        )
    return "\n".join(parts)


def test_checks_file_parse_is_linear() -> None:
    small, large = checks_file(500), checks_file(4000)
    start = time.monotonic()
    parse(small, "small.toml")
    t_small = time.monotonic() - start
    start = time.monotonic()
    spec = parse(large, "large.toml")
    t_large = time.monotonic() - start
    assert spec.checks[-1].line == large.count("\n", 0, large.index("[checks.c3999]")) + 1
    # 8 times the checks: linear is ~8x; the quadratic parse was ~64x (25 s for 4000 here)
    assert t_large < 20 * t_small + 0.5, (t_small, t_large)


@pytest.mark.slow
def test_checks_file_run_ends_by_the_deadline(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(checks_file(4000))
    start = time.monotonic()
    run_netdiag("check", f"tcp://127.0.0.1:{closed_port()}")
    startup = time.monotonic() - start  # the interpreter's start and exit, here and now
    start = time.monotonic()
    out = run_netdiag("check", "-q", "-f", str(path), "--deadline", "2")
    took = time.monotonic() - start
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr
    assert took <= 2 + 1 + startup, (took, startup)


# --- §12: a FIFO with no writer as a secret or resolv.conf ---------------------------------


@pytest.fixture
def fifo(tmp_path) -> str:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["probe", "--user", "u", "--password-file", "{fifo}", "mysql://127.0.0.1:1"], {}),
        (["wait", "--user", "u", "--password-file", "{fifo}", "mysql://127.0.0.1:1"], {}),
        (["probe", "mysql://127.0.0.1:1"], {"MYSQL_USER": "u", "MYSQL_PASSWORD_FILE": "{fifo}"}),
        (["probe", "tcp://nowhere.test:1"], {"NETDIAG_RESOLV_CONF": "{fifo}"}),
        (["check", "-f", "{fifo}"], {}),
    ],
    ids=["password-file", "wait", "MYSQL_PASSWORD_FILE", "NETDIAG_RESOLV_CONF", "checks-file"],
)
def test_fifo_with_no_writer_does_not_hang(fifo, args, env) -> None:
    args = [a.replace("{fifo}", fifo) for a in args]
    env = {k: v.replace("{fifo}", fifo) for k, v in env.items()}
    start = time.monotonic()
    out = run_netdiag(*args, env=env, timeout=30)
    took = time.monotonic() - start
    err = one_line(out, 1)
    assert "nothing to read within 1s" in err, err
    assert took < 10  # generous for a loaded machine: it waits 1 s, it used to hang for ever


def test_secret_from_a_pipe_with_a_writer_works(tmp_path) -> None:
    """Process substitution (--password-file <(...)) is a pipe too, and must keep working."""
    from netdiag.secrets import read_secret_file

    read, write = os.pipe()
    os.write(write, b"pw-from-pipe\n")
    os.close(write)
    try:
        assert read_secret_file(f"/dev/fd/{read}") == "pw-from-pipe"
    finally:
        os.close(read)


# --- §13: no user, no login: a missing secret file is never read --------------------------------


def test_missing_secret_file_without_a_user_is_not_read() -> None:
    with hostile.hostile_peer(hostile.mysql_server()) as peer:
        out = run_netdiag(
            "probe",
            "--json",
            peer.url("mysql"),
            env={"MYSQL_USER": "", "MYSQL_PASSWORD_FILE": "/nonexistent/secret"},
        )
    assert out.returncode == 0, out
    assert "cannot read secret file" not in out.stdout + out.stderr
    (res,) = json.loads(out.stdout)["results"]
    assert res["status"] == "ok" and "user" not in res["facts"]


# --- §14: HTTP paths and over-long lines ---------------------------------------------------


def test_space_in_http_path_is_a_usage_error() -> None:
    err = one_line(run_netdiag("probe", "http://127.0.0.1:1/a b"), 2)
    assert "contains a space" in err and "%20" in err


def test_http_path_sent_as_given_or_percent_encoded(http_server) -> None:
    http_server.routes["/a%00b"] = (200, {}, b"ok\n")
    out = run_netdiag("probe", "--json", http_server.url("/a%00b?x=%00"), http_server.url("/é"))
    assert "Traceback" not in out.stderr
    first, second = json.loads(out.stdout)["results"]
    assert first["status"] == "ok", first
    assert sorted(http_server.request_lines) == [
        "GET /%C3%A9 HTTP/1.1",
        "GET /a%00b?x=%00 HTTP/1.1",
    ]
    assert second["status"] == "rejected" and second["facts"]["status_code"] == 404


def test_over_long_header_line_is_not_quoted_as_the_peers() -> None:
    with hostile.hostile_peer(hostile.long_header_line) as peer:
        out = run_netdiag("probe", "--json", peer.url("http") + "/")
    (res,) = json.loads(out.stdout)["results"]
    assert res["status"] == "protocol_mismatch", res
    assert "line longer than 65536 bytes where a header line belongs" in res["detail"]
    assert "got more than" not in res["detail"]


# --- §15: checks files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('version = true\n[checks.a]\ntarget = "x:1"\n', "version"),
        ('version = 1.0\n[checks.a]\ntarget = "x:1"\n', "version"),
        ('[checks."a\\nb"]\ntarget = "x:1"\n', "checks.a\\nb"),
        ('[checks.a]\ntarget = "http://x/"\nhttp_status = "599-100"\n', "checks.a.http_status"),
        ('[checks.a]\ntarget = "mysql://x"\npassword_env = "PW\\n"\n', "checks.a.password_env"),
    ],
)
def test_checks_file_values_refused_at_load(text, key) -> None:
    with pytest.raises(SpecError) as info:
        parse(text, "c.toml")
    message = str(info.value)
    assert "\n" not in message and f": {key}: " in message, message


def test_checks_file_with_a_bom(tmp_path, http_server) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + f'[checks.web]\ntarget = "{http_server.url()}"\n'.encode())
    out = run_netdiag("check", "-f", str(path))
    assert out.returncode == 0 and out.stdout.startswith("PASS web"), out


# --- §16: IPv4 spellings getaddrinfo reads as addresses never go to DNS -------------------


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "2130706433", "0177.0.0.1"])
def test_numeric_ipv4_spellings_are_addresses(tmp_path, host) -> None:
    with MiniDns("127.0.0.1", 0, {}) as dns, listener() as port:
        out = run_netdiag(
            "probe", "--json", f"tcp://{host}:{port}", env=resolver_env(tmp_path, dns.port)
        )
        asked = list(dns.queries)
    assert out.returncode == 0, out
    (res,) = json.loads(out.stdout)["results"]
    assert res["address"] == f"127.0.0.1:{port}" and res["target"] == f"tcp://127.0.0.1:{port}"
    assert asked == []


# --- --source: a name is resolved by netdiag's rules, never by the machine's resolver -----------


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
def test_source_name_follows_the_resolver_rules(tmp_path) -> None:
    """In a namespace of our own whose resolv.conf names a decoy DNS server (the "machine's
    resolver" there): --source src.test must be asked of NETDIAG_RESOLVER, not of the decoy."""
    from tests.support.netns_lab import decoy_resolver_namespace, in_netns

    records = {("src.test.", "A"): ["127.0.0.2"]}
    seen: list[tuple[str, int]] = []
    with decoy_resolver_namespace("ndprobe", records) as lab:
        peer_ctx = hostile.hostile_peer(hostile.record_peer(seen))
        peer = in_netns(lab.ns, peer_ctx.__enter__)
        try:
            out = subprocess.run(
                ["ip", "netns", "exec", lab.ns, *run_args("probe", "--json", "--source",
                 "src.test", f"tcp://127.0.0.1:{peer.port}")],
                capture_output=True, text=True, env={**os.environ, **lab.env}, timeout=60,
            )  # fmt: skip
            time.sleep(0.2)
        finally:
            peer_ctx.__exit__(None, None, None)
        asked_decoy, asked_ours = list(lab.decoy.queries), list(lab.ours.queries)
    assert out.returncode == 0, out
    assert asked_decoy == [], asked_decoy
    assert any(q.startswith("src.test") for q in asked_ours), asked_ours
    assert seen and seen[0][0] == "127.0.0.2", seen


def run_args(*args: str) -> list[str]:
    from tests.conftest import NETDIAG

    return [*NETDIAG, *args]
