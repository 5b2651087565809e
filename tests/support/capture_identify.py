"""Re-capture the first answers of real servers for tests/data/identify_captures.json.

Run as root: ``python -m tests.support.capture_identify`` (starts MariaDB, PostgreSQL, Redis,
sshd, rabbitmq-server, Python's http.server and openssl s_server on loopback, sends each the
nudge it answers, keeps what came back within half a second, stops them).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

from netdiag.probes.identify import amqp_wire, http_wire, pg_wire, resp
from netdiag.probes.identify.engine import _TLS
from tests.support import identify_peers as peers
from tests.support import servers

OUT = Path(__file__).resolve().parent.parent / "data" / "identify_captures.json"


def grab(host: str, port: int, send: bytes, wait: float = 0.5) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        if send:
            sock.sendall(send)
        data = b""
        end = time.monotonic() + wait
        while time.monotonic() < end and len(data) < 65536:
            sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        return data


def main() -> None:
    found: dict[str, dict[str, str]] = {}

    def keep(name: str, nudge: str | None, data: bytes, source: str) -> None:
        found[name] = {"nudge": nudge or "", "hex": data.hex(), "source": source}
        print(name, len(data), file=sys.stderr)

    with servers.start_mariadb() as db:
        keep("mariadb_greeting", None, grab(db.host, db.port, b""), "mariadbd 10.11 (Debian 12)")
    with servers.start_postgres() as pg:
        keep("postgres_ssl_n", "postgres", grab(pg.host, pg.port, pg_wire.SSL_REQUEST), "PG 15")
    with servers.start_redis() as rd:
        data = grab(rd.host, rd.port, resp.PING + resp.HELLO)
        keep("redis_pong_hello", "redis", data, "redis-server 7.0 (Debian 12)")
    with servers.start_redis(password="x-Pa55") as rd:
        data = grab(rd.host, rd.port, resp.PING + resp.HELLO)
        keep("redis_noauth", "redis", data, "redis-server 7.0, requirepass")
    with peers.start_sshd() as sshd:
        keep("ssh_banner", None, grab(sshd.host, sshd.port, b""), "OpenSSH 9.2p1 (Debian 12)")
    with peers.start_python_http() as web:
        data = grab(web.host, web.port, http_wire.request("localhost"))
        keep("python_http_get", "http", data.split(b"\r\n\r\n")[0] + b"\r\n\r\n", "http.server")
        data = grab(web.host, web.port, http_wire.h2_preface())
        keep("python_http_h2_preface", "http2", data, "python -m http.server")
    with peers.start_rabbitmq() as mq:
        data = grab(mq.host, mq.port, amqp_wire.PROTOCOL_HEADER)
        keep("rabbitmq_start", "amqp", data, "rabbitmq-server 3.10.8 (Debian 12)")
        data = grab(mq.host, mq.port, b"AMQP\x00\x00\x08\x00")
        keep("rabbitmq_header_reply", "amqp", data, "rabbitmq-server, AMQP 0-8 header sent")
    with tempfile.TemporaryDirectory(prefix=peers.PREFIX) as tmp:
        certs = peers.make_certs(Path(tmp))
        with peers.start_tls_server(certs["valid"]) as tls:
            hello = _TLS("localhost").step()
            data = grab(tls.host, tls.port, hello)
            length = int.from_bytes(data[3:5], "big")
            keep("openssl_server_hello", "tls", data[: 5 + length], "openssl s_server 3.0")
    with contextlib.suppress(FileNotFoundError):
        old = json.loads(OUT.read_text())
        old.update(found)
        found = old
    OUT.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
