"""Deadlines are hard bounds, through TLS too, and Ctrl-C ends a command at once (issue 14 §1,
§9): hostile peers of our own on loopback (and in a namespace lab for scan).

Wall times include the interpreter's start and exit, which a loaded 2-core machine stretches:
each bound adds the time the same command takes against a closed port, measured in the same
test (``startup``), to the promised ``deadline + 1 s``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NETDIAG
from tests.health_peers import closed_port
from tests.support import hostile

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[str, str]:
    return hostile.self_signed_cert(str(tmp_path_factory.mktemp("tls")))


def timed(args: list[str], env: dict[str, str], prefix: tuple[str, ...] = ()) -> tuple:
    start = time.monotonic()
    out = subprocess.run(
        [*prefix, *NETDIAG, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=ROOT,
    )
    return out, time.monotonic() - start


def startup(env: dict[str, str], prefix: tuple[str, ...] = ()) -> float:
    """What a command costs around its work here and now: start, a refused connect, exit."""
    _, took = timed(["probe", f"tcp://127.0.0.1:{closed_port()}"], env, prefix)
    return took


@contextlib.contextmanager
def drip_peer(cert: tuple[str, str], handshake: float) -> Iterator[hostile.Peer]:
    behaviour = hostile.tls_drip(*cert, handshake_interval=handshake, answer_interval=0.2)
    with hostile.hostile_peer(behaviour) as peer:
        yield peer


# (command line before the target, the deadline it promises, expected exit code)
COMMANDS = [
    (["probe", "--json", "--timeout", "20", "--deadline", "3"], 3.0, 1),
    (["probe", "--json", "--timeout", "2", "--deadline", "5"], 2.0, 1),
    (["check", "--json", "--timeout", "20", "--deadline", "3"], 3.0, 1),
    (["wait", "--json", "--attempt-timeout", "20", "--timeout", "3"], 3.0, 124),
]


@pytest.mark.slow
@pytest.mark.parametrize("handshake", [0.0, 0.2], ids=["answer-drips", "handshake-drips"])
@pytest.mark.parametrize(("args", "bound", "code"), COMMANDS, ids=lambda c: str(c))
def test_tls_drip_ends_by_the_deadline(cert, handshake, args, bound, code) -> None:
    env = {"SSL_CERT_FILE": cert[0]}  # the peer's certificate is trusted: TLS gets through
    base = startup(env)
    with drip_peer(cert, handshake) as peer:
        out, took = timed([*args, f"https://127.0.0.1:{peer.port}/"], env)
    assert out.returncode == code, out
    assert "Traceback" not in out.stderr
    doc = json.loads(out.stdout)
    if args[0] == "probe":
        (result,) = doc["results"]
    elif args[0] == "check":
        (result,) = doc["checks"][0]["results"]
    else:
        (result,) = doc["targets"]
    assert result["status"] == "timeout", result
    # measured: the command's own end, and the wall time beyond its start-up cost
    assert took <= bound + 1.0 + base, (took, base)


@pytest.mark.slow
def test_tls_drip_detail_names_the_step(cert) -> None:
    for handshake, words in ((0.2, "TLS handshake not finished"), (0.0, "no complete HTTP")):
        with drip_peer(cert, handshake) as peer:
            out, _ = timed(
                ["probe", "--json", "--insecure", "--timeout", "1", peer.url("https") + "/"], {}
            )
        (result,) = json.loads(out.stdout)["results"]
        assert words in result["detail"], result


# --- scan, in a namespace lab: the peer listens on 443, where scan speaks https ---------------


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
def test_scan_deadline_holds_through_tls(tmp_path) -> None:
    from tests.support.netns_lab import NetnsLab, in_netns

    with NetnsLab(hosts_wanted=1, mariadb=False, drop=False, port_cycle=((),)) as lab:
        host = lab.hosts[0]
        cert = hostile.self_signed_cert(str(tmp_path), ips=(host.ip,))
        # the handshake drips: whatever scan does on 443 (identify TLS, GET /) starts there
        behaviour = hostile.tls_drip(*cert, handshake_interval=0.2, answer_interval=0.2)
        ctx = hostile.hostile_peer(behaviour, host="0.0.0.0", port=443)
        in_netns(host.ns, ctx.__enter__)
        try:
            prefix = tuple(lab.exec_args())
            env = {"SSL_CERT_FILE": cert[0]}
            base = startup(env, prefix)
            args = ["scan", "--subnet", lab.subnet, "--ports", "443", "--no-docker", "--json"]
            out, took = timed([*args, "--timeout", "20", "--deadline", "4"], env, prefix)
        finally:
            ctx.__exit__(None, None, None)
    assert "Traceback" not in out.stderr, out.stderr
    doc = json.loads(out.stdout)
    peer = next(p for n in doc["networks"] for p in n["peers"] if p["ip"] == host.ip)
    (port,) = [p for p in peer["ports"] if p["port"] == 443]
    assert port["status"] != "ok", port  # never a verdict from a handshake that never ended
    assert took <= 4.0 + 1.0 + base, (took, base)


# --- Ctrl-C: in-flight attempts are cancelled, the command exits within a second -----------


INTERRUPTED = [
    (["probe", "--timeout", "20", "--deadline", "30"], 130),
    (["check", "--timeout", "20", "--deadline", "30"], 1),
    (["wait", "--attempt-timeout", "20", "--timeout", "30"], 130),
    (["doctor", "--timeout", "20", "--deadline", "30"], 130),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "code"), INTERRUPTED, ids=lambda c: str(c))
def test_ctrl_c_exits_within_a_second(cert, args, code) -> None:
    with hostile.hostile_peer(hostile.silent) as silent, drip_peer(cert, 0.0) as tls:
        targets = [silent.url("mysql")] if args[0] == "doctor" else [
            silent.url("mysql"), silent.url("redis"), tls.url("https") + "/"
        ]  # fmt: skip
        env = {
            **os.environ,
            "SSL_CERT_FILE": cert[0],
            "DOCKER_HOST": "unix:///nonexistent.sock",
        }
        proc = subprocess.Popen(
            [*NETDIAG, *args, *targets],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        time.sleep(2.0)  # every attempt is in flight (the silent peer holds them for 20 s)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    assert took < 1.0, took
