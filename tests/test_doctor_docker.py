"""netdiag doctor inside a real container's network namespace, asking a real dockerd.

Containers are busybox on --internal networks; doctor runs as the host's python under
``nsenter -n`` with the container's resolv.conf (nameserver 127.0.0.11) and the host's socket.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker_engine import DockerLab, docker, host_python_mounts, unique
from tests.support.schemas import netdiag_json

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.docker]


def doctor_in(lab: DockerLab, container: str, *args: str) -> tuple[int, dict, str]:
    pid = lab.pid(container)
    resolv = docker("inspect", "-f", "{{.ResolvConfPath}}", container).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETDIAG_", "MYSQL_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        NETDIAG_RESOLV_CONF=resolv,  # what the container itself reads: 127.0.0.11, ndots:0
        DOCKER_HOST="unix:///var/run/docker.sock",
    )
    argv = ["nsenter", "-t", str(pid), "-n", sys.executable, "-m", "netdiag", "doctor"]
    out = subprocess.run(
        [*argv, "--json", "--timeout", "1", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, netdiag_json(out.stdout), out.stderr


def steps(doc: dict) -> dict[str, dict]:
    return {s["name"]: s for s in doc["steps"]}


def test_service_on_another_network(docker_lab: DockerLab):
    app_net, db_net = docker_lab.network(), docker_lab.network()
    web = docker_lab.container(app_net, name=unique("web"))
    db = docker_lab.container(db_net, aliases=("mysql",), name=unique("db"))
    code, doc, _ = doctor_in(docker_lab, web, "mysql")
    assert code == 1
    s = steps(doc)
    assert s["resolver"]["status"] == "pass" and "embedded DNS" in s["resolver"]["summary"]
    assert s["name"]["status"] == "fail"  # --internal: the embedded DNS gives no reply
    assert s["docker"]["status"] == "fail"
    assert s["docker"]["summary"].startswith(f"{web} and mysql share no network")
    assert f"container {db} on {db_net}" in s["docker"]["summary"]
    assert doc["fix"] == f"docker network connect {db_net} {web}"
    assert s["docker"]["facts"]["own_container"] == web
    assert doc["not_checked"] == ["route", "connect", "greeting", "credentials", "database"]


def test_alias_held_by_two_containers(docker_lab: DockerLab):
    net = docker_lab.network()
    web = docker_lab.container(net, name=unique("web"))
    first = docker_lab.container(net, aliases=("mysql",), name=unique("db"))
    second = docker_lab.container(net, aliases=("mysql",), name=unique("mysqldb"))
    code, doc, _ = doctor_in(docker_lab, web, "mysql")
    assert code == 1
    s = steps(doc)
    assert s["name"]["status"] == "warn" and len(s["name"]["facts"]["addresses"]) == 2
    assert s["docker"]["status"] == "fail"
    both = ", ".join(sorted([first, second]))
    assert s["docker"]["summary"].startswith(f"the alias mysql is held by 2 containers: {both}")
    assert f"docker network disconnect {net} " in doc["fix"]
    assert doc["failed_step"] == "docker"


def test_stopped_container(docker_lab: DockerLab):
    net = docker_lab.network()
    web = docker_lab.container(net, name=unique("web"))
    db = docker_lab.container(net, aliases=("mysql",), name=unique("db"))
    docker("kill", db)
    code, doc, _ = doctor_in(docker_lab, web, "mysql")
    assert code == 1
    s = steps(doc)
    assert s["name"]["status"] == "fail"
    assert s["docker"]["summary"] == f"container {db} holds mysql on {net} but is exited"
    assert doc["fix"].startswith(f"docker start {db}")


def test_shared_network_passes_topology_then_connect_names_the_container(docker_lab: DockerLab):
    net = docker_lab.network()
    web = docker_lab.container(net, name=unique("web"))
    db = docker_lab.container(net, aliases=("mysql",), name=unique("db"))
    ip = docker_lab.ip(db, net)
    code, doc, _ = doctor_in(docker_lab, web, "mysql")
    assert code == 1
    s = steps(doc)
    assert s["name"]["facts"]["addresses"] == [ip]
    assert s["docker"]["status"] == "pass"
    assert (
        s["docker"]["summary"]
        == f"mysql is container {db} (running) on {net}, {ip}; shared with {web}"
    )
    assert s["route"]["status"] == "pass" and "on-link via eth0" in s["route"]["summary"]
    assert s["connect"]["status"] == "fail" and f"docker logs {db}" in doc["fix"]


def test_without_socket_the_docker_step_skips(docker_lab: DockerLab):
    net = docker_lab.network()
    web = docker_lab.container(net, name=unique("web"))
    pid = docker_lab.pid(web)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETDIAG_", "MYSQL_"))}
    env.update(PYTHONPATH=str(ROOT), DOCKER_HOST="unix:///nonexistent.sock")
    resolv = docker("inspect", "-f", "{{.ResolvConfPath}}", web).stdout.strip()
    env["NETDIAG_RESOLV_CONF"] = resolv
    out = subprocess.run(
        [
            "nsenter",
            "-t",
            str(pid),
            "-n",
            sys.executable,
            "-m",
            "netdiag",
            "doctor",
            "--json",
            "--timeout",
            "1",
            web,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    doc = netdiag_json(out.stdout)
    s = steps(doc)
    assert s["name"]["status"] == "pass"  # our own container name resolves
    assert s["docker"]["status"] == "skip" and "Docker API not available" in s["docker"]["summary"]
    assert s["connect"]["status"] == "fail"


def test_doctor_as_the_containers_own_process_uses_mysql_host(docker_lab: DockerLab):
    """No nsenter: the app container's own mounts (its resolv.conf) and MYSQL_HOST from -e."""
    app_net, db_net = docker_lab.network(), docker_lab.network()
    db = docker_lab.container(db_net, aliases=("mysql",), name=unique("db"))
    extra = (
        *host_python_mounts(),
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        "-e",
        "MYSQL_HOST=mysql",
    )
    command = (sys.executable, "-m", "netdiag", "doctor", "--json", "--timeout", "1")
    web = docker_lab.container(app_net, name=unique("web"), command=command, extra=extra)
    code = docker("wait", web, timeout=90).stdout.strip()
    out = docker("logs", web)
    assert code == "1", out.stderr
    doc = netdiag_json(out.stdout)
    assert doc["target"] == "mysql://mysql:3306"
    s = steps(doc)
    assert s["resolver"]["facts"]["path"] == "/etc/resolv.conf"
    assert s["resolver"]["facts"]["docker_embedded_dns"] is True
    assert s["docker"]["facts"]["own_container"] == web
    assert doc["fix"] == f"docker network connect {db_net} {web}"
    assert db in s["docker"]["summary"]


def test_a_typo_gets_did_you_mean_from_the_api(docker_lab: DockerLab):
    """doctor mysqll: the API knows an alias mysql on our network; one fix, not two."""
    net = docker_lab.network()
    web = docker_lab.container(net, name=unique("web"))
    db = docker_lab.container(net, aliases=("mysql",), name=unique("db"))
    code, doc, _ = doctor_in(docker_lab, web, "mysqll")
    assert code == 1
    s = steps(doc)
    # ours first: other runs on this shared daemon may hold names like mysql too
    assert s["name"]["status"] == "fail" and s["name"]["facts"]["did_you_mean"][0] == "mysql"
    assert s["name"]["summary"].endswith("did you mean mysql?")
    assert s["name"]["fix"] is None  # the docker step's fix is the one fix
    assert f"did you mean mysql (container {db} on {net})?" in s["docker"]["summary"]
    assert doc["fix"].startswith("use the name mysql (e.g. MYSQL_HOST=mysql)"), doc["fix"]


def test_a_typo_without_the_api_uses_the_names_scan_sees(docker_lab: DockerLab):
    """No socket: inside the container, the PTR names of the live addresses (what scan shows)."""
    net = docker_lab.network()
    db = docker_lab.container(net, name=unique("mysqldb"))
    typo = db[:-1] + ("x" if db[-1] != "x" else "y")
    command = (sys.executable, "-m", "netdiag", "doctor", "--json", "--timeout", "1", typo)
    app = docker_lab.container(net, name=unique("web"), command=command,
                               extra=tuple(host_python_mounts()))  # fmt: skip
    assert docker("wait", app, timeout=90).stdout.strip() == "1"
    doc = netdiag_json(docker("logs", app).stdout)
    s = steps(doc)
    assert s["docker"]["status"] == "skip"
    assert s["name"]["facts"]["did_you_mean"] == [db], s["name"]
    assert doc["fix"].startswith(f"did you mean {db} (a live address on this network)?")


def test_the_throwaway_netdiag_container_is_not_the_fix(docker_lab: DockerLab):
    """docker run --rm --network other-net netdiag doctor mysql: connecting netdiag's own
    container would help nobody; the fix is for the app's container."""
    app_net, db_net = docker_lab.network(), docker_lab.network()
    db = docker_lab.container(db_net, aliases=("mysql",), name=unique("db"))
    name = unique("netdiag")
    docker_lab.containers.append(name)  # removed by --rm; rm -f of a missing one is harmless
    out = docker(
        "run", "--rm", "--name", name, "--network", app_net, *host_python_mounts(),
        "-v", "/var/run/docker.sock:/var/run/docker.sock:ro", docker_lab.image,
        sys.executable, "-m", "netdiag", "doctor", "--json", "--timeout", "1", "mysql",
        check=False, timeout=90,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    doc = netdiag_json(out.stdout)
    s = steps(doc)
    assert s["docker"]["facts"]["identity"]["throwaway"] is True
    assert s["docker"]["facts"]["own_container"] == name
    # (other runs on this shared daemon may hold "mysql" on their networks too: all are named)
    summary = s["docker"]["summary"]
    assert f"{db} on {db_net}" in summary, summary
    assert f"; this netdiag container ({name}, docker run --rm) is on {app_net}" in summary
    assert "--network container:APP" in doc["fix"] and name not in doc["fix"]
    assert f"docker network connect {db_net} APP" in doc["fix"] or f"/ {db_net}" in doc["fix"]
    assert s["name"]["fix"] is None  # steps 2 and 3 do not contradict each other
