"""dns.lookup against a hostile DNS server of our own (issue 9 §6, issue 14 §6).

Every rcode is named, a malformed reply is told from no reply, and a name DNS cannot carry
is a usage error raised before anything is sent. The server is FakeEmbeddedDNS on loopback;
names under hostile.test misbehave on purpose (see tests/support/fake_embedded_dns.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from netdiag.dns import lookup
from netdiag.dns.lookup import BadName, FailureKind, LookupFailure, check_name, resolve
from netdiag.dns.resolvconf import ResolvConf
from netdiag.errors import UsageError
from tests.conftest import run_netdiag
from tests.health_peers import resolver_env
from tests.support.fake_embedded_dns import FakeEmbeddedDNS
from tests.support.schemas import netdiag_json

TIMEOUT = 2.0
H = ".hostile.test"
LONG_LABEL = "a" * 64 + ".example"
LONG_NAME = ".".join(["abcdefghi"] * 26)  # 261 bytes in wire form, labels all fine


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEmbeddedDNS]:
    with FakeEmbeddedDNS() as srv:
        yield srv


def conf_for(port: int, timeout: float = TIMEOUT) -> ResolvConf:
    return ResolvConf(nameservers=[("127.0.0.1", port)], timeout=timeout, attempts=1)


def failure(
    name: str, port: int, timeout: float = TIMEOUT, families: tuple[str, ...] = ("A", "AAAA")
) -> tuple[LookupFailure, float]:
    started = time.monotonic()
    with pytest.raises(LookupFailure) as caught:
        resolve(name, conf_for(port, timeout), timeout=2 * timeout + 1, families=families)
    return caught.value, time.monotonic() - started


RCODES = {
    "rcode-1": (FailureKind.FORMERR, "FORMERR"),
    "formerr-no-question": (FailureKind.FORMERR, "FORMERR"),
    "rcode-2": (FailureKind.SERVFAIL, "SERVFAIL"),
    "rcode-3": (FailureKind.NXDOMAIN, "NXDOMAIN"),
    "rcode-4": (FailureKind.NOTIMP, "NOTIMP"),
    "rcode-5": (FailureKind.REFUSED, "REFUSED"),
    "rcode-9": (FailureKind.OTHER_RCODE, "NOTAUTH"),
    "rcode-15": (FailureKind.OTHER_RCODE, "RESERVED15"),
    "rcode-16": (FailureKind.OTHER_RCODE, "BADVERS"),
    "rcode-4095": (FailureKind.OTHER_RCODE, "?4095"),
}


@pytest.mark.parametrize("behaviour", list(RCODES))
def test_every_rcode_is_named(behaviour: str, server: FakeEmbeddedDNS) -> None:
    kind, rcode = RCODES[behaviour]
    fail, _ = failure(behaviour + H, server.port)
    assert (fail.kind, fail.rcode) == (kind, rcode)
    assert rcode in fail.detail and f"127.0.0.1#{server.port}" in fail.detail
    assert "no address records" not in fail.detail and "no reply" not in fail.detail


MALFORMED = {
    "garbage": "bad compression pointer",
    "other-question": "another question (other.hostile.test. IN A)",
    "no-qr": "QR bit is not set",
    "opcode": "opcode 2 instead of 0",
}


@pytest.mark.parametrize("behaviour", list(MALFORMED))
def test_a_malformed_reply_is_not_no_reply(behaviour: str, server: FakeEmbeddedDNS) -> None:
    fail, took = failure(behaviour + H, server.port)
    assert fail.kind == FailureKind.MALFORMED and fail.rcode is None
    assert "malformed reply" in fail.detail and MALFORMED[behaviour] in fail.detail
    # A reply with our ID ends the try at once: well inside the 2 s the try may take (A and
    # AAAA, one try each), a bound no load on this machine comes near.
    assert took < TIMEOUT


@pytest.mark.slow
def test_strays_alone_are_malformed_after_the_timeout(server: FakeEmbeddedDNS) -> None:
    """Wrong-ID and header-less datagrams are skipped (spoofing), but said when nothing else came."""
    fail, took = failure("wrong-id" + H, server.port, 0.5, ("A",))
    assert fail.kind == FailureKind.MALFORMED and "instead of" in fail.detail
    assert took >= 0.5  # waited for the real reply, as a resolver must
    fail, _ = failure("short" + H, server.port, 0.5, ("A",))
    assert fail.kind == FailureKind.MALFORMED and "5-byte datagram" in fail.detail


@pytest.mark.slow
def test_silence_is_no_reply(server: FakeEmbeddedDNS) -> None:
    fail, _ = failure("anything" + H, server.silent_port, 0.5)
    assert fail.kind == FailureKind.NO_REPLY and "no reply from resolver" in fail.detail


def test_the_right_reply_after_a_stray_wins(server: FakeEmbeddedDNS) -> None:
    found = resolve("wrong-id-first" + H, conf_for(server.port), timeout=TIMEOUT)
    assert found.addresses == ["10.213.9.1", "fd00:213:9::1"]


@pytest.mark.parametrize(
    ("behaviour", "addresses"),
    [
        ("dup", ["10.213.9.1", "fd00:213:9::1"]),
        ("tsig", ["10.213.9.1", "fd00:213:9::1"]),  # a TSIG we did not ask for is ignored
        ("ttl-max", ["10.213.9.1", "10.213.9.2", "fd00:213:9::1", "fd00:213:9::2"]),
    ],
)
def test_odd_but_usable_answers_resolve(
    behaviour: str, addresses: list[str], server: FakeEmbeddedDNS
) -> None:
    assert resolve(behaviour + H, conf_for(server.port), timeout=TIMEOUT).addresses == addresses


def test_query_outcome_for_one_type(server: FakeEmbeddedDNS) -> None:
    """The one-question API self's DNS check builds on."""
    deadline = time.monotonic() + TIMEOUT
    ok = lookup.query("mysql.", "A", conf_for(server.port), deadline)
    assert ok.kind is None and ok.rcode == "NOERROR" and ok.server == ("127.0.0.1", server.port)
    empty = lookup.query("mysql.", "AAAA", conf_for(server.port), deadline)
    assert empty.kind == FailureKind.NO_DATA and "NOERROR" in empty.detail
    odd = lookup.query("rcode-15" + H + ".", "PTR", conf_for(server.port), deadline)
    assert odd.kind == FailureKind.OTHER_RCODE and odd.reply is not None
    assert lookup.ask("rcode-15" + H + ".", "A", conf_for(server.port), deadline)[0] is not None


def test_kinds_are_a_closed_documented_enum() -> None:
    assert [k.value for k in FailureKind] == [
        "nxdomain",
        "no_data",
        "servfail",
        "refused",
        "formerr",
        "notimp",
        "other_rcode",
        "malformed",
        "no_reply",
    ]
    for kind in FailureKind:
        assert f"``{kind.value}``" in (lookup.__doc__ or "")
    assert json.dumps({"dns_error": FailureKind.MALFORMED}) == '{"dns_error": "malformed"}'


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (LONG_LABEL, "a label of 64 bytes"),
        (LONG_NAME, "261 bytes in DNS form"),
        ("a..b", "empty label"),
        ("ü" * 40 + ".test", "invalid DNS name"),  # 80 bytes as UTF-8, too long as IDNA too
    ],
)
def test_names_dns_cannot_carry_are_usage_errors(
    name: str, why: str, server: FakeEmbeddedDNS
) -> None:
    asked = len(server.queries)
    with pytest.raises(BadName, match=why) as caught:
        resolve(name, conf_for(server.port), timeout=TIMEOUT)
    assert isinstance(caught.value, UsageError)
    assert len(server.queries) == asked  # nothing was sent


def test_names_that_fit_pass() -> None:
    for name in ("a" * 63 + ".example", ".".join(["abcdefghi"] * 25) + ".abc.", "db", "."):
        check_name(name)


@pytest.mark.parametrize("command", ["probe", "check", "wait", "doctor"])
def test_commands_reject_such_names_before_any_query(
    command: str, server: FakeEmbeddedDNS, tmp_path
) -> None:
    asked = len(server.queries)
    for name in (LONG_LABEL, LONG_NAME) if command == "probe" else (LONG_LABEL,):
        out = run_netdiag(
            command, f"tcp://{name}:80", "--timeout", "1", env=resolver_env(tmp_path, server.port)
        )
        assert out.returncode == (1 if command == "check" else 2), out
        assert "Traceback" not in out.stderr and "invalid DNS name" in out.stderr
        assert len(out.stderr.splitlines()) <= 2
    assert len(server.queries) == asked


@pytest.mark.parametrize(
    ("behaviour", "kind", "words"),
    [
        ("rcode-15", "other_rcode", "RESERVED15"),
        pytest.param("rcode-4", "notimp", "NOTIMP", marks=pytest.mark.slow),
        ("garbage", "malformed", "malformed reply"),
    ],
)
def test_probe_and_doctor_report_the_kind(
    behaviour: str, kind: str, words: str, server: FakeEmbeddedDNS, tmp_path
) -> None:
    env = {**resolver_env(tmp_path, server.port), "DOCKER_HOST": "unix:///nonexistent.sock"}
    out = run_netdiag("probe", "--json", "--timeout", "1", f"tcp://{behaviour}{H}:80", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (result,) = netdiag_json(out.stdout)["results"]
    assert result["status"] == "dns_failed" and result["facts"]["dns_error"] == kind
    assert words in result["detail"]
    out = run_netdiag("doctor", "--json", "--timeout", "1", f"tcp://{behaviour}{H}:80", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    name = next(s for s in netdiag_json(out.stdout)["steps"] if s["name"] == "name")
    assert name["facts"]["dns_error"] == kind and words in name["summary"]
