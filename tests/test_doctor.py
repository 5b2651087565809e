"""netdiag doctor on each failure class: loopback peers here, real dockerd in test_doctor_docker."""

from __future__ import annotations

import socket

import pytest

from netdiag.doctor.topology import Holder, analyse
from tests.conftest import run_netdiag
from tests.health_peers import closed_port, full_backlog, listener, resolver_env
from tests.support.mini_dns import MiniDns
from tests.support.schemas import netdiag_json

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
CLEAN = {"MYSQL_HOST": "", "MYSQL_USER": "", "MYSQL_PASSWORD": "", "MYSQL_DB": ""}


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    out = run_netdiag(
        "doctor", "--json", "--timeout", "1", *args, env={**CLEAN, **NO_DOCKER, **(env or {})}
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, netdiag_json(out.stdout)


def statuses(doc: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in doc["steps"]}


def test_usage_without_target_or_mysql_host():
    out = run_netdiag("doctor", env={**CLEAN})
    assert out.returncode == 2 and "MYSQL_HOST" in out.stderr
    bad = run_netdiag("doctor", "--timeout", "0")
    assert bad.returncode == 2


def test_mysql_host_is_the_default_target():
    port = closed_port()
    code, doc = doctor(env={"MYSQL_HOST": f"127.0.0.1:{port}"})
    assert code == 1
    assert doc["target"] == f"mysql://127.0.0.1:{port}"


def test_nxdomain_stops_at_the_name(tmp_path):
    with MiniDns("127.0.0.1", 0, {}) as dns:
        code, doc = doctor("nosuch", env=resolver_env(tmp_path, dns.port))
    assert code == 1
    st = statuses(doc)
    assert st["resolver"] == "pass" and st["name"] == "fail"
    assert st["docker"] == "skip"
    assert doc["failed_step"] == "name"
    assert doc["not_checked"] == [
        "route", "connect", "mtu", "greeting", "credentials", "database"]  # fmt: skip
    name = doc["steps"][1]
    assert name["facts"]["dns_error"] == "nxdomain" and "NXDOMAIN" in name["summary"]
    assert "--network-alias nosuch" in doc["fix"]
    docker = doc["steps"][2]
    assert docker["summary"].startswith("Docker API not available: no Docker socket")


@pytest.mark.slow
def test_no_reply_is_told_apart_from_nxdomain(tmp_path):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        code, doc = doctor("mysql", env=resolver_env(tmp_path, silent.getsockname()[1]))
    finally:
        silent.close()
    assert code == 1 and doc["failed_step"] == "name"
    assert doc["steps"][1]["facts"]["dns_error"] == "no_reply"


def test_several_addresses_warn_and_continue(tmp_path):
    port = closed_port()
    records = {("mysql.", "A"): ["127.0.0.1", "127.0.0.2"]}
    with MiniDns("127.0.0.1", 0, records) as dns:
        code, doc = doctor(f"mysql:{port}", env=resolver_env(tmp_path, dns.port))
    assert code == 1
    st = statuses(doc)
    assert st["name"] == "warn" and "2 addresses" in doc["steps"][1]["notes"][0]
    assert st["route"] == "pass" and st["connect"] == "fail"


def test_refused_names_the_fix_and_what_was_not_checked():
    port = closed_port()
    code, doc = doctor(f"127.0.0.1:{port}")
    assert code == 1 and doc["failed_step"] == "connect"
    st = statuses(doc)
    assert (st["name"], st["route"], st["connect"]) == ("pass", "pass", "fail")
    assert doc["not_checked"] == ["mtu", "greeting", "credentials", "database"]
    assert "listening on 0.0.0.0" in doc["fix"]


@pytest.mark.slow
def test_silent_network_is_a_connect_timeout():
    with full_backlog() as port:
        code, doc = doctor(f"tcp://127.0.0.1:{port}")
    assert code == 1 and doc["failed_step"] == "connect"
    assert doc["steps"][4]["facts"]["status"] == "timeout"
    assert "dropped" in doc["fix"]


def test_tcp_target_passes_without_protocol_steps():
    with listener() as port:
        code, doc = doctor(f"tcp://127.0.0.1:{port}")
    assert code == 0, doc
    st = statuses(doc)
    assert st["connect"] == "pass" and st["greeting"] == "skip"
    assert st["credentials"] == "skip" and doc["failed_step"] is None


def test_text_output_lists_steps_and_fix():
    port = closed_port()
    out = run_netdiag("doctor", f"127.0.0.1:{port}", "--timeout", "1", env={**CLEAN, **NO_DOCKER})
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == f"netdiag doctor mysql://127.0.0.1:{port}"
    assert any(line.split()[1:3] == ["connect", "FAIL"] for line in lines if line[:2].strip())
    assert any("fix:" in line for line in lines)
    assert lines[-2] == "not checked: mtu, greeting, credentials, database"
    assert lines[-1] == "result: FAIL at connect"


# --- the Docker-terms analysis, pure ---------------------------------------------------------


def h(container: str, network: str, state: str = "running") -> Holder:
    return Holder(container, state, network, "10.0.0.2" if state == "running" else None, "alias")


def test_analyse_verdicts():
    v = analyse("mysql", [h("db", "todo-app")], "web", ["todo-app"])
    assert v.ok and "mysql is container db (running) on todo-app" in v.summary
    v = analyse("mysql", [h("db", "other")], "web", ["todo-app"])
    assert not v.ok and v.summary.startswith("web and mysql share no network")
    assert v.fix == "docker network connect other web"
    v = analyse("mysql", [h("db", "todo-app"), h("mysqldb", "todo-app")], "web", ["todo-app"])
    assert not v.ok
    assert v.summary.startswith("the alias mysql is held by 2 containers: db, mysqldb")
    v = analyse("mysql", [h("db", "todo-app", "exited")], "web", ["todo-app"])
    assert not v.ok and v.fix is not None and v.fix.startswith("docker start db")
    v = analyse("mysql", [], "web", ["todo-app"])
    assert not v.ok and "--network todo-app --network-alias mysql" in (v.fix or "")
    v = analyse("mysql", [h("db", "a")], None, [])
    assert v.ok and v.notes


@pytest.mark.parametrize("state", ["exited", "created", "paused"])
def test_analyse_stopped_without_own_container(state):
    v = analyse("mysql", [h("db", "a", state)], None, [])
    assert not v.ok and state in v.summary


def test_analyse_names_every_network_when_several_projects_hold_the_name():
    holders = [h("db", "shop"), h("mysql1", "todo-app")]
    v = analyse("mysql", holders, "web", ["frontend"])
    assert not v.ok
    assert "mysql is held by db on shop, mysql1 on todo-app" in v.summary
    assert v.fix is not None
    assert v.fix.startswith("docker network connect shop web")
    assert "docker network connect todo-app web" in v.fix


def test_closest_names_a_typo_not_a_stranger():
    from netdiag.doctor.similar import Candidate, closest

    seen = [Candidate("db", "db1", "n"), Candidate("mysql", "db1", "n", ours=True),
            Candidate("mysqldb", "x", "m"), Candidate("MySQL", "y", "m")]  # fmt: skip
    assert [c.name for c in closest("mysqll", seen)] == ["mysql", "mysqldb"]
    assert closest("redis", seen) == []  # nothing alike: no guess
    verdict = analyse("mysqll", [], "web", ["n"], closest("mysqll", seen))
    assert verdict.summary.endswith("did you mean mysql (container db1 on n)?")
    assert verdict.fix and verdict.fix.startswith("use the name mysql")


def test_throwaway_container_gets_the_apps_fix():
    held = [Holder("db", "running", "todo-app", "172.20.0.2", "alias")]
    plain = analyse("mysql", held, "web", ["other"])
    assert plain.fix == "docker network connect todo-app web"
    gone = analyse("mysql", held, "nd-1", ["other"], throwaway=True)
    assert not gone.ok and "docker run --rm" in gone.summary
    assert gone.fix and "--network container:APP" in gone.fix and "nd-1" not in gone.fix


def test_closest_with_nothing_to_compare():
    from netdiag.doctor.similar import closest

    assert closest("mysql", []) == []
