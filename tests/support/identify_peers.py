"""Real peers for identification tests, on loopback ports of the test's own: OpenSSH's sshd,
rabbitmq-server, ``openssl s_server`` with certificates the test makes, Python's
``http.server``; and two hostile TLS-ish peers (a drip, a hello that never completes).

Every ``start_*`` is a context manager that stops its server and removes its temp directory
(prefix ``nd-identify-``) afterwards, even when the test fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ServerStartError, _stop, _tail, free_port, wait_port

PREFIX = "nd-identify-"
SSHD = "/usr/sbin/sshd"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script, not the su wrapper


@dataclass
class Listening:
    """A server on ``host:port``; ``info`` holds what the test may compare against."""

    host: str
    port: int
    info: dict[str, str]


# --- certificates ----------------------------------------------------------------------------


@dataclass
class CertFiles:
    cert: Path
    key: Path
    cn: str
    days: float
    self_signed: bool


def make_certs(directory: Path) -> dict[str, CertFiles]:
    """A test CA and four server certificates: ``valid`` (CN=localhost, 90 days, CA-signed),
    ``expiring`` (3.5 days left), ``self_signed`` (its own issuer) and ``wrong_name``
    (CN and SAN wrong.example). Names: localhost and 127.0.0.1 as SANs where right."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(label: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        (directory / f"{label}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{label}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("netdiag test CA"))
        .issuer_name(name("netdiag test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write("ca", ca, ca_key)
    made: dict[str, CertFiles] = {}
    specs = {
        "valid": ("localhost", 90.0, False),
        "expiring": ("localhost", 3.5, False),
        "self_signed": ("localhost", 90.0, True),
        "wrong_name": ("wrong.example", 90.0, False),
    }
    for label, (cn, days, self_signed) in specs.items():
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(cn)]
        if cn == "localhost":
            sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn) if self_signed else ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key if self_signed else ca_key, hashes.SHA256())
        )
        write(label, cert, key)
        made[label] = CertFiles(
            directory / f"{label}.pem", directory / f"{label}.key", cn, days, self_signed
        )
    return made


@contextlib.contextmanager
def start_tls_server(cert: CertFiles, host: str = "127.0.0.1") -> Iterator[Listening]:
    """``openssl s_server -www`` with ``cert`` (it serves one connection at a time)."""
    port = free_port(host)
    log = Path(tempfile.mkstemp(prefix=PREFIX, suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "openssl",
                "s_server",
                "-accept",
                f"{host}:{port}",
                "-cert",
                str(cert.cert),
                "-key",
                str(cert.key),
                "-www",
                "-quiet",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_port(host, port, 20, proc)
        yield Listening(host, port, {"cn": cert.cn})
    finally:
        _stop(proc)
        log.unlink(missing_ok=True)


# --- sshd ------------------------------------------------------------------------------------


@contextlib.contextmanager
def start_sshd(host: str = "127.0.0.1") -> Iterator[Listening]:
    """OpenSSH's sshd on a free port with host keys of its own (needs root)."""
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX + "sshd-"))
    made_run_dir = False
    proc: subprocess.Popen | None = None
    try:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "host_ed25519")],
            check=True,
            capture_output=True,
            timeout=30,
        )
        port = free_port(host)
        config = tmp / "sshd_config"
        config.write_text(
            f"HostKey {tmp / 'host_ed25519'}\nPidFile {tmp / 'sshd.pid'}\n"
            f"ListenAddress {host}\nUsePAM no\nPasswordAuthentication no\n"
        )
        # sshd insists on its privilege separation directory (systemd makes it at boot)
        run_dir = Path("/run/sshd")
        if not run_dir.exists():
            run_dir.mkdir(mode=0o755)
            made_run_dir = True
        log = tmp / "sshd.log"
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config), "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        try:
            wait_port(host, port, 20, proc)
        except ServerStartError as exc:
            raise ServerStartError(f"{exc}:\n{_tail(log)}") from None
        version = subprocess.run([SSHD, "-V"], capture_output=True, text=True).stderr
        yield Listening(host, port, {"version": version.strip()})
    finally:
        if proc is not None:
            _stop(proc)
        if made_run_dir:
            with contextlib.suppress(OSError):
                Path("/run/sshd").rmdir()
        shutil.rmtree(tmp, ignore_errors=True)


# --- rabbitmq-server -------------------------------------------------------------------------


@contextlib.contextmanager
def start_rabbitmq(host: str = "127.0.0.1") -> Iterator[Listening]:
    """rabbitmq-server as root on ports of its own (AMQP, distribution, a private epmd), its
    node name, data, logs, cookie and config in a temp directory; takes ~10 s to start."""
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX + "rabbitmq-"))
    (tmp / "home").mkdir()
    (tmp / "enabled_plugins").write_text("[].\n")
    (tmp / "rabbitmq.conf").write_text("")
    (tmp / "rabbitmq-env.conf").write_text("")
    port, dist, epmd = free_port(host), free_port(host), free_port(host)
    node = f"nd-identify-{os.getpid()}@localhost"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
        "HOME": str(tmp / "home"),  # the Erlang cookie goes there, not to /root
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": host,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(tmp / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
        "RABBITMQ_PID_FILE": str(tmp / "rabbitmq.pid"),
    }
    out = tmp / "stdout.log"
    proc = subprocess.Popen(
        [RABBITMQ_SERVER],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_port(host, port, 90, proc)
        except ServerStartError as exc:
            raise ServerStartError(f"rabbitmq-server: {exc}\n{_tail(out)}") from None
        version = Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*")
        found = next(version, None)
        yield Listening(host, port, {"version": found.name.split("-", 1)[1] if found else ""})
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # the beam may outlive the script; its pid file names it
        pid_file = tmp / "rabbitmq.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        subprocess.run(
            ["epmd", "-port", str(epmd), "-kill"],
            env={**os.environ, "ERL_EPMD_PORT": str(epmd)},
            capture_output=True,
            timeout=10,
        )
        shutil.rmtree(tmp, ignore_errors=True)


# --- Python's http.server ----------------------------------------------------------------------


@contextlib.contextmanager
def start_python_http(host: str = "127.0.0.1") -> Iterator[Listening]:
    """``python -m http.server`` (SimpleHTTPRequestHandler, HTTP/1.0) serving an empty dir."""
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX + "http-"))
    port = free_port(host)
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", host, "--directory", str(tmp), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(host, port, 20, proc)
        python = f"Python/{sys.version.split()[0]}"
        yield Listening(host, port, {"server": f"SimpleHTTP/0.6 {python}"})
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# --- hostile TLS-ish peers (behaviours for tests.support.hostile.hostile_peer) -----------------

# The first bytes of a plausible TLS 1.2 ServerHello record (handshake, 0x0303, 90 bytes).
SERVER_HELLO_START = bytes.fromhex("160303005a0200005603035f")


def tls_drip(conn: socket.socket, stop: threading.Event, every: float = 0.2) -> None:
    """Read the ClientHello, then answer one byte of a ServerHello every ``every`` seconds."""
    conn.settimeout(2)
    with contextlib.suppress(OSError):
        conn.recv(4096)
    i = 0
    while not stop.wait(every if i else 0):
        try:
            conn.sendall(
                SERVER_HELLO_START[i % len(SERVER_HELLO_START) : i % len(SERVER_HELLO_START) + 1]
            )
        except OSError:
            return
        i += 1


def time_it(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """(result, seconds) of one call."""
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start
