"""`netdiag self` on this machine's own (host) view: JSON shape, usage errors, start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys

from netdiag.discovery import local
from netdiag.report import ENVELOPE_KEYS
from tests.conftest import NETDIAG, run_netdiag, usage_error
from tests.support.mini_dns import MiniDns
from tests.support.schemas import netdiag_json

TOP_KEYS = {
    "hostname", "container", "identity", "interfaces", "routes", "default_gateways", "ipv4_subnets",
    "interfaces_source", "resolver", "resolver_error", "dns_check", "docker", "notes",
}  # fmt: skip
NO_SOCKET = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def test_json_document_shape() -> None:
    res = run_netdiag("self", "--json", "--no-dns", "--no-docker")
    assert res.returncode == 0, res.stderr
    doc = netdiag_json(res.stdout, "self")
    assert set(doc) == {*ENVELOPE_KEYS, *TOP_KEYS} and doc["ok"] is True
    assert doc["docker"] is None
    assert set(doc["container"]) == {"in_container", "id", "short_id", "source", "markers"}
    # without the API, the identity is the local evidence alone
    assert doc["identity"]["container_id"] == doc["container"]["id"]
    assert doc["identity"]["name"] is None and doc["identity"]["networks"] == []
    assert doc["identity"]["subnets"] == doc["ipv4_subnets"]
    lo = next(i for i in doc["interfaces"] if i["name"] == "lo")
    assert lo["loopback"]
    assert (lo["addresses"][0]["address"], lo["addresses"][0]["prefixlen"]) == ("127.0.0.1", 8)
    # matches what the library reads in this same namespace: both read in a private network
    # namespace, so veths that other tests (or other users of this machine) add meanwhile on
    # the host cannot make the two readings differ
    script = (
        "import json, sys; from netdiag.discovery import local; snap = local.snapshot(); "
        "print(json.dumps([[i.name for i in snap.interfaces], "
        "[str(n) for n in snap.ipv4_subnets()]]))"
    )
    ns = ["unshare", "--net", "sh", "-c", 'ip link set lo up && "$@"', "sh"]
    res = subprocess.run(
        [*ns, *NETDIAG, "self", "--json", "--no-dns", "--no-docker"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = netdiag_json(res.stdout, "self")
    lib = subprocess.run(
        [*ns, sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    names, subnets = json.loads(lib.stdout)
    assert [i["name"] for i in doc["interfaces"]] == names == ["lo"]
    assert doc["ipv4_subnets"] == subnets == []


def test_usage_error_exits_2_with_usage_and_reason() -> None:
    res = run_netdiag("self", "--bogus")
    assert res.returncode == 2
    assert res.stdout == ""
    assert "--bogus" in usage_error(res.stderr, "self")


def test_missing_socket_is_one_note_and_exit_0() -> None:
    res = run_netdiag("self", "--no-dns", env=NO_SOCKET)
    assert res.returncode == 0 and res.stderr == ""
    assert "  API          not reachable: no Docker socket at /nonexistent/docker.sock" in (
        res.stdout.splitlines()
    )


def test_starts_without_scapy_or_docker() -> None:
    res = run_netdiag("self", "--no-dns", env={**NO_SOCKET, "PYTHONPROFILEIMPORTTIME": "1"})
    assert res.returncode == 0
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines() if "|" in line}
    assert "netdiag.discovery.local" in imported  # importlib.import_module is not logged
    assert not any(m == "scapy" or m.startswith(("scapy.", "docker", "requests")) for m in imported)
    assert "tabulate" not in imported


def test_dns_check_against_a_loopback_resolver() -> None:
    """NETDIAG_RESOLVER on loopback: one PTR query for our own address, answered."""
    snap = local.snapshot()
    own = next(
        (a.address for i in snap.interfaces if not i.loopback for a in i.addresses
         if a.family == "ipv4" and a.scope == "global"),
        None,
    )  # fmt: skip
    if own:
        qname = ".".join(reversed(own.split("."))) + ".in-addr.arpa."
        key, rdtype = (qname, "PTR"), "PTR"
        records = {key: ["me.example.test."]}
    else:
        import socket

        key, rdtype = (socket.gethostname().lower() + ".", "A"), "A"
        records = {key: ["127.0.0.1"]}
    with MiniDns("127.0.0.1", 0, records) as server:
        res = run_netdiag(
            "self", "--json", "--no-docker", env={"NETDIAG_RESOLVER": f"127.0.0.1#{server.port}"}
        )
    assert res.returncode == 0, res.stderr
    check = netdiag_json(res.stdout)["dns_check"]
    assert check["performed"] and check["status"] == "ok"
    assert check["query"] == f"{rdtype} {key[0]}"
    assert check["server"] == f"127.0.0.1#{server.port}"
    assert check["answers"] == records[key]
    assert server.queries == [f"{key[0]} {rdtype}"]


def test_resolver_defaults_are_shown_as_defaults(tmp_path) -> None:
    """No options line: glibc's values, each marked (default); set ones are plain."""
    bare = tmp_path / "bare.conf"
    bare.write_text("nameserver 127.0.0.1\n")
    res = run_netdiag("self", "--no-dns", "--no-docker", env={"NETDIAG_RESOLV_CONF": str(bare)})
    assert "  options      ndots:1 (default) timeout:5 (default) attempts:2 (default)" in (
        res.stdout.splitlines()
    )
    full = tmp_path / "full.conf"
    full.write_text("nameserver 127.0.0.1\noptions ndots:1 timeout:5 attempts:2 rotate\n")
    res = run_netdiag("self", "--no-dns", "--no-docker", env={"NETDIAG_RESOLV_CONF": str(full)})
    assert "  options      ndots:1 timeout:5 attempts:2 rotate" in res.stdout.splitlines()
    doc = netdiag_json(
        run_netdiag("self", "--json", "--no-dns", "--no-docker",
                    env={"NETDIAG_RESOLV_CONF": str(bare)}).stdout
    )  # fmt: skip
    assert doc["resolver"]["defaults"] == ["ndots", "timeout", "attempts"]
