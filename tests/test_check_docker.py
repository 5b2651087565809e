"""netdiag check as a real Docker HEALTHCHECK: healthy, then unhealthy, exit codes 0/1 only.

The app container is busybox running the host's interpreter read-only (as in test_self_docker),
so no image build is needed; the service is busybox httpd on an --internal network.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.support.docker_engine import DockerLab, docker, host_python_mounts, unique

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.docker]


def health(name: str) -> dict:
    out = docker("inspect", "-f", "{{json .State.Health}}", name).stdout
    return json.loads(out)


def wait_health(name: str, wanted: str, limit: float = 40) -> dict:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        state = health(name)
        if state and state["Status"] == wanted:
            return state
        time.sleep(0.3)
    raise AssertionError(f"{name} never became {wanted}: {health(name)}")


def healthchecked(lab: DockerLab, net: str, check_args: str) -> str:
    cmd = f"{sys.executable} -m netdiag check {check_args}"
    extra = (
        *host_python_mounts(),
        "--health-cmd",
        cmd,
        "--health-interval",
        "1s",
        "--health-timeout",
        "8s",
        "--health-retries",
        "1",
    )
    return lab.container(net, name=unique("app"), extra=extra)


def test_healthcheck_goes_healthy_then_unhealthy(docker_lab: DockerLab):
    net = docker_lab.network()
    web = docker_lab.container(
        net, aliases=("web",), command=("httpd", "-f", "-p", "8080", "-h", "/tmp")
    )
    app = healthchecked(docker_lab, net, "--quiet --timeout 1 tcp://web:8080")
    state = wait_health(app, "healthy")
    last = state["Log"][-1]
    assert last["ExitCode"] == 0 and last["Output"] == ""
    docker("kill", web)
    state = wait_health(app, "unhealthy")
    last = state["Log"][-1]
    assert last["ExitCode"] == 1
    assert last["Output"].startswith("FAIL tcp://web:8080: ")
    assert len(last["Output"].encode()) < 4096 and last["Output"].count("\n") == 1


def test_usage_error_in_a_healthcheck_is_1_not_2(docker_lab: DockerLab):
    net = docker_lab.network()
    app = healthchecked(docker_lab, net, "--no-such-flag tcp://web:8080")
    state = wait_health(app, "unhealthy")
    assert {entry["ExitCode"] for entry in state["Log"]} == {1}
    assert "netdiag check: error:" in state["Log"][-1]["Output"]
