"""resolv.conf parsing and netdiag's resolver overrides."""

import pytest

from netdiag.dns import resolvconf
from netdiag.dns.lookup import candidates
from netdiag.errors import NetdiagError

DOCKER = "nameserver 127.0.0.11\noptions ndots:0\n"


def test_docker_embedded() -> None:
    conf = resolvconf.parse(DOCKER)
    assert conf.nameservers == [("127.0.0.11", 53)]
    assert conf.ndots == 0
    assert conf.is_docker_embedded


def test_glibc_rules() -> None:
    conf = resolvconf.parse(
        "# comment\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\n"
        "nameserver 10.0.0.3\nsearch a.example b.example\n"
        "options ndots:3 timeout:0 attempts:9 rotate bogus\n"
    )
    assert conf.nameservers == [("10.0.0.1", 53), ("fe80::1", 53), ("10.0.0.2", 53)]
    assert conf.search == ["a.example", "b.example"]
    assert (conf.ndots, conf.timeout, conf.attempts, conf.rotate) == (3, 1.0, 5, True)
    assert not conf.is_docker_embedded


def test_last_search_or_domain_wins() -> None:
    assert resolvconf.parse("search a\ndomain b\n").search == ["b"]


def test_overrides(tmp_path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 10.1.1.1\nsearch lab\noptions ndots:2\n")
    env = {"NETDIAG_RESOLV_CONF": str(path), "NETDIAG_RESOLVER": "127.0.0.1#5353,[::1]:53"}
    conf = resolvconf.load(env)
    assert conf.nameservers == [("127.0.0.1", 5353), ("::1", 53)]
    assert conf.search == ["lab"] and conf.ndots == 2 and conf.overridden


def test_missing_file_defaults_to_localhost(tmp_path) -> None:
    conf = resolvconf.load({"NETDIAG_RESOLV_CONF": str(tmp_path / "none")})
    assert conf.nameservers == [("127.0.0.1", 53)]


@pytest.mark.parametrize(
    "bad", ["127.0.0.1#x", "127.0.0.1#0", "127.0.0.1#70000", "999.1.1.1", "dns.example#53"]
)
def test_bad_override(bad: str) -> None:
    """A name as resolver would be looked up through the machine's resolver on connect."""
    with pytest.raises(NetdiagError):
        resolvconf.load({"NETDIAG_RESOLVER": bad, "NETDIAG_RESOLV_CONF": "/nonexistent"})


def test_nameservers_that_are_not_addresses_are_skipped() -> None:
    conf = resolvconf.parse("nameserver dns.example\nnameserver 999.1.1.1\nnameserver 10.0.0.9\n")
    assert conf.nameservers == [("10.0.0.9", 53)]


def test_bad_override_is_one_line_not_a_traceback() -> None:
    from tests.conftest import run_netdiag

    out = run_netdiag(
        "probe", "tcp://db.test:80", env={"NETDIAG_RESOLVER": "999.1.1.1"}, timeout=30
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "netdiag probe: invalid resolver address in '999.1.1.1': not an IP address"
    ]


def test_search_order_follows_ndots() -> None:
    conf = resolvconf.parse("search net1 net2\noptions ndots:1\n")
    assert candidates("mysql", conf) == ["mysql.net1.", "mysql.net2.", "mysql."]
    assert candidates("db.lab", conf) == ["db.lab.", "db.lab.net1.", "db.lab.net2."]
    assert candidates("abs.", conf) == ["abs."]
    assert candidates("mysql", resolvconf.parse(DOCKER)) == ["mysql."]


def test_to_dict_carries_every_option_and_one_server_text_form() -> None:
    conf = resolvconf.parse("nameserver 10.0.0.1\noptions rotate ndots:2\n")
    conf.nameservers.append(("127.0.0.1", 5353))
    doc = conf.to_dict()
    assert doc["rotate"] is True and doc["ndots"] == 2
    assert doc["nameservers"] == ["10.0.0.1", "127.0.0.1#5353"] == conf.server_texts
    assert resolvconf.parse("nameserver 10.0.0.1\n").to_dict()["rotate"] is False
