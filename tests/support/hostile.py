"""Hostile and broken peers for the probe tests: TCP servers on 127.0.0.1 that misbehave.

``hostile_peer(behaviour)`` listens on an ephemeral loopback port, runs ``behaviour(conn,
stop)`` in a thread for every accepted connection, and closes everything on exit. ``stop`` is a
threading.Event set when the context ends, so behaviours that wait return promptly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Behaviour = Callable[[socket.socket, threading.Event], None]


@dataclass
class Peer:
    host: str
    port: int
    sent: list[int] = field(default_factory=list)  # bytes handed to the kernel per connection

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.host}:{self.port}"


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept and never send anything."""
    stop.wait(60)


def drip(
    conn: socket.socket, stop: threading.Event, data: bytes = b"\x64\x00\x00\x00\x0a5.5"
) -> None:
    """Send a plausible greeting start one byte a second, forever."""
    i = 0
    while not stop.wait(1.0 if i else 0):
        try:
            conn.sendall(data[i % len(data) : i % len(data) + 1])
        except OSError:
            return
        i += 1


def _flood(conn: socket.socket, stop: threading.Event, prefix: bytes, total: int) -> int:
    conn.settimeout(1.0)
    sent = 0
    chunk = os.urandom(64 * 1024)
    try:
        conn.sendall(prefix)
        sent = len(prefix)
        while sent < total and not stop.is_set():
            try:
                sent += conn.send(chunk[: total - sent])
            except TimeoutError:
                continue
    except OSError:
        pass
    return sent


def garbage_16mb(conn: socket.socket, stop: threading.Event) -> None:
    """Send 16 MB of random bytes."""
    _flood(conn, stop, b"", 16 * 1024 * 1024)


def huge_packet(conn: socket.socket, stop: threading.Event) -> None:
    """Announce a 0xFFFFFF-byte MySQL packet (sequence 0) and start sending it."""
    _flood(conn, stop, b"\xff\xff\xff\x00\x0a", 0xFFFFFF + 4)


def close_mid_packet(conn: socket.socket, stop: threading.Event) -> None:
    """Announce a 100-byte greeting, send 20 bytes of it, close."""
    conn.sendall(b"\x64\x00\x00\x00\x0a5.5.5-10.11.19-Mar")


def ssh_banner(conn: socket.socket, stop: threading.Event) -> None:
    """Greet like an SSH server, then wait for the client."""
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    stop.wait(30)


# --- peers whose text carries terminal control characters (issue 14 item 5) -----------------
# ESC sequences (clear screen, set the window title, colour), BEL, a bare CR and a newline that
# would forge a second line, "FAKE: ok", if a renderer printed them as they are.
CONTROL_TEXT = b"\x1b[2J\x1b]0;pwned\x07 busy\rFAKE: ok\nPASS forged"
CONTROL_LINE = CONTROL_TEXT.replace(b"\n", b" ")  # for protocols that end a reply at \n


def _read_some(conn: socket.socket, stop: threading.Event, size: int = 4096) -> bytes:
    conn.settimeout(2.0)
    try:
        return conn.recv(size)
    except OSError:
        return b""


def mysql_err_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """ERROR 1130 instead of a greeting, its message full of control characters."""
    payload = b"\xff" + (1130).to_bytes(2, "little") + b"Host " + CONTROL_TEXT
    conn.sendall(len(payload).to_bytes(3, "little") + b"\x00" + payload)


def postgres_error_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """No TLS, then an ErrorResponse to the startup whose message has control characters."""
    _read_some(conn, stop, 8)  # SSLRequest
    conn.sendall(b"N")
    _read_some(conn, stop)  # StartupMessage
    fields = b"SFATAL\x00C28000\x00M" + CONTROL_TEXT + b"\x00\x00"
    conn.sendall(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)


def redis_err_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """-ERR to PING, the error text full of control characters (up to the CRLF)."""
    _read_some(conn, stop)
    conn.sendall(b"-ERR " + CONTROL_LINE + b"\r\n")


def http_reason_with_controls(conn: socket.socket, stop: threading.Event) -> None:
    """503 with a reason phrase full of control characters."""
    _read_some(conn, stop)
    conn.sendall(b"HTTP/1.1 503 " + CONTROL_LINE + b"\r\nContent-Length: 0\r\n\r\n")


@contextlib.contextmanager
def hostile_peer(behaviour: Behaviour, host: str = "127.0.0.1", port: int = 0) -> Iterator[Peer]:
    """Serve ``behaviour`` on ``port`` (default ephemeral) of ``host`` until the context exits.

    The listener lives in the network namespace of the thread that enters the context.
    """
    stop = threading.Event()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    listener.settimeout(0.2)
    peer = Peer(host, listener.getsockname()[1])
    conns: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        try:
            behaviour(conn, stop)
        except OSError:
            pass
        finally:
            conn.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            conns.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()


# --- a hostile Docker Engine API (DOCKER_HOST=tcp://127.0.0.1:PORT) ---------------------------


def _read_request(conn: socket.socket, stop: threading.Event) -> bool:
    """Read one request head; False when the client went away first."""
    conn.settimeout(0.5)
    data = b""
    while b"\r\n\r\n" not in data and not stop.is_set():
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return False
        data += chunk
    return not stop.is_set()


def docker_drip(conn: socket.socket, stop: threading.Event) -> None:
    """A daemon that answers /version one byte every 0.1 s, for ever (header, then body)."""
    if not _read_request(conn, stop):
        return
    answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n{"Version": "'
    i = 0
    while not stop.wait(0.1):
        conn.sendall(answer[i : i + 1] if i < len(answer) else b"x")
        i += 1


def docker_endless_chunks(conn: socket.socket, stop: threading.Event) -> None:
    """A chunked answer that never ends: 64 KiB chunks as fast as the client reads."""
    if not _read_request(conn, stop):
        return
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"
    conn.settimeout(1.0)
    while not stop.is_set():
        try:
            conn.sendall(chunk)
        except TimeoutError:
            continue


def docker_huge_body(conn: socket.socket, stop: threading.Event) -> None:
    """Announce a 1000 MB body and send it as fast as the client reads."""
    if not _read_request(conn, stop):
        return
    size = 1000 * 1024 * 1024
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    _flood(conn, stop, head.encode() + b"[", size)


def docker_nested_json(conn: socket.socket, stop: threading.Event) -> None:
    """A small body that decodes into far more memory: 4 MB of empty lists."""
    if not _read_request(conn, stop):
        return
    body = b"[" + b"[]," * (4 * 1024 * 1024 // 3) + b"[]]"
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)
    stop.wait(5)


def docker_flood_until_close(conn: socket.socket, stop: threading.Event) -> None:
    """No Content-Length, not chunked: a body that runs until the server closes, 1000 MB."""
    if not _read_request(conn, stop):
        return
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n["
    _flood(conn, stop, head, 1000 * 1024 * 1024)


# --- TLS: a peer whose every byte after the TCP handshake drips -----------------------------


def self_signed_cert(directory: str, ips: tuple[str, ...] = ("127.0.0.1",)) -> tuple[str, str]:
    """A throw-away certificate for ``ips`` and localhost (openssl): (cert path, key path).

    Point ``SSL_CERT_FILE`` at the certificate to make a client trust it.
    """
    import subprocess

    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    names = ",".join([*(f"IP:{ip}" for ip in ips), "DNS:localhost"])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", f"subjectAltName={names}",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def http_answer(size: int = 367) -> bytes:
    """A complete HTTP/1.1 200 answer of exactly ``size`` bytes."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    for body_len in range(size):
        answer = head + b"Content-Length: %d\r\n\r\n" % body_len + b"x" * body_len
        if len(answer) == size:
            return answer
    raise ValueError(f"no {size}-byte answer")


def tls_drip(
    cert: str,
    key: str,
    handshake_interval: float = 0.0,
    answer_interval: float = 0.2,
    answer: bytes | None = None,
) -> Behaviour:
    """A TLS server that drips: its handshake bytes one every ``handshake_interval`` seconds (0:
    at once), then an HTTP answer (367 bytes by default) one byte per TLS record every
    ``answer_interval`` seconds. Each record is a complete read, so a client with a per-read
    timeout never times out on it: 367 bytes take 73 s."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    reply = http_answer() if answer is None else answer

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
        conn.settimeout(0.1)

        def send(interval: float) -> bool:
            data = outgoing.read()
            if not interval:
                conn.sendall(data)
                return True
            for i in range(len(data)):
                if stop.wait(interval):
                    return False
                conn.sendall(data[i : i + 1])
            return True

        def receive() -> bool:
            while not stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return False
                incoming.write(chunk)
                return True
            return False

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not (send(handshake_interval) and receive()):
                    return
        if not send(handshake_interval):
            return
        request = b""
        while b"\r\n\r\n" not in request:
            try:
                request += tls.read(4096)
            except ssl.SSLWantReadError:
                if not receive():
                    return
        for i in range(len(reply)):  # one TLS record per byte: each one a complete read
            tls.write(reply[i : i + 1])
            send(0)
            if stop.wait(answer_interval):
                return
        stop.wait(30)

    return behaviour


# --- MySQL: a server that greets and logs in like MariaDB, then misbehaves -------------------

# MariaDB 10.11.19's greeting as captured (docs: /work/shared/reference/captures.md): no TLS,
# auth plugin mysql_native_password.
MARIADB_GREETING = bytes.fromhex(
    "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531000500000078"
    "417755234e3e2c00fef7080200ff81150000000000001d0000006022242f5e6b2368653f4d45006d7973716c"
    "5f6e61746976655f70617373776f726400"
)
MYSQL_OK = b"\x00\x00\x00\x02\x00\x00\x00"
MYSQL_EOF = b"\xfe\x00\x00\x02\x00"


def mysql_frame(payload: bytes, seq: int) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def mysql_read(conn: socket.socket, stop: threading.Event) -> tuple[int, bytes] | None:
    """One client packet (sequence id, payload), or None when the client went away."""
    conn.settimeout(0.2)
    data = b""
    while not stop.is_set():
        need = 4 if len(data) < 4 else 4 + int.from_bytes(data[:3], "little")
        if len(data) >= need and len(data) >= 4:
            return data[3], data[4:need]
        try:
            chunk = conn.recv(need - len(data))
        except TimeoutError:
            continue
        if not chunk:
            return None
        data += chunk
    return None


def _lenenc(text: bytes) -> bytes:
    return bytes([len(text)]) + text


def mysql_column(name: bytes) -> bytes:
    """A ColumnDefinition41 payload for a VAR_STRING column ``name``."""
    return (
        _lenenc(b"def") + _lenenc(b"") + _lenenc(b"") + _lenenc(b"") + _lenenc(name)
        + _lenenc(b"") + b"\x0c" + (45).to_bytes(2, "little") + (1024).to_bytes(4, "little")
        + b"\xfd" + b"\x00\x00" + b"\x00" + b"\x00\x00"
    )  # fmt: skip


Answer = Callable[[socket.socket, threading.Event, bytes], None]


def mysql_server(on_login: Behaviour | None = None, on_query: Answer | None = None) -> Behaviour:
    """Greet like MariaDB and read the login. ``on_login(conn, stop)`` then takes over, or the
    login is accepted (OK) and each COM_QUERY goes to ``on_query(conn, stop, sql)`` (SET NAMES
    and anything unanswered get an OK)."""

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(MARIADB_GREETING)
        if mysql_read(conn, stop) is None:
            return
        if on_login is not None:
            on_login(conn, stop)
            return
        conn.sendall(mysql_frame(MYSQL_OK, 2))
        while True:
            got = mysql_read(conn, stop)
            if got is None or got[1][:1] == b"\x01":  # gone, or COM_QUIT
                return
            sql = got[1][1:]
            if got[1][:1] == b"\x03" and on_query is not None and not sql.startswith(b"SET"):
                on_query(conn, stop, sql)
            else:
                conn.sendall(mysql_frame(MYSQL_OK, 1))

    return behaviour


def _result_head(conn: socket.socket) -> None:
    conn.sendall(
        mysql_frame(b"\x01", 1) + mysql_frame(mysql_column(b"VERSION()"), 2)
        + mysql_frame(MYSQL_EOF, 3)
    )  # fmt: skip


def huge_row(conn: socket.socket, stop: threading.Event, sql: bytes) -> None:
    """Answer a query with a row of 0xFFFFFF-byte packets (a >16 MB row continues in the next
    packet), up to 256 MB, as fast as the client reads."""
    _result_head(conn)
    conn.settimeout(1.0)
    filler = b"x" * (64 << 10)
    try:
        for seq in range(4, 4 + 16):
            conn.sendall(b"\xff\xff\xff" + bytes([seq]))
            left = 0xFFFFFF
            while left and not stop.is_set():
                try:
                    left -= conn.send(filler[: min(left, len(filler))])
                except TimeoutError:
                    continue
    except OSError:
        pass


def endless_rows(conn: socket.socket, stop: threading.Event, sql: bytes) -> None:
    """Answer a query with small rows (4 KB each) that never end."""
    _result_head(conn)
    conn.settimeout(1.0)
    seq = 4
    row = b"\xfc" + (4000).to_bytes(2, "little") + b"x" * 4000
    while not stop.is_set():
        try:
            conn.sendall(mysql_frame(row, seq))
        except (TimeoutError, OSError):
            return
        seq += 1


def auth_switch(plugin: bytes, received: list[bytes], echo: bool = True) -> Behaviour:
    """After the login packet, ask to switch to ``plugin``; record what the client answers in
    ``received``, then refuse with ERROR 1045 echoing it (upper-cased, hex, split: masking a
    plain echo would not hide those)."""

    def on_login(conn: socket.socket, stop: threading.Event) -> None:
        data = b"\x00" * 20
        conn.sendall(mysql_frame(b"\xfe" + plugin + b"\x00" + data + b"\x00", 2))
        got = mysql_read(conn, stop)
        if got is None:
            return
        received.append(got[1])
        said = got[1].rstrip(b"\x00")
        text = b"Access denied" if not echo else (
            b"Access denied for " + said.upper() + b" hex " + said.hex().encode()
            + b" split " + b" ".join(said[i : i + 3] for i in range(0, len(said), 3))
        )  # fmt: skip
        err = b"\xff" + (1045).to_bytes(2, "little") + b"#28000" + text
        conn.sendall(mysql_frame(err, 4))
        stop.wait(5)

    return mysql_server(on_login=on_login)


def auth_switch_loop(conn: socket.socket, stop: threading.Event) -> None:
    """Answer every client packet with another auth switch request, forever."""
    seq = 2
    while not stop.is_set():
        request = b"\xfemysql_native_password\x00" + b"\x01" * 20 + b"\x00"
        conn.sendall(mysql_frame(request, seq))
        got = mysql_read(conn, stop)
        if got is None:
            return
        seq = got[0] + 1


# --- HTTP and plain TCP odds and ends ---------------------------------------------------------


def long_header_line(conn: socket.socket, stop: threading.Event) -> None:
    """A status line, then a header line of 70,000 bytes (http.client allows 65,536)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n")
    stop.wait(5)


def record_peer(seen: list[tuple[str, int]]) -> Behaviour:
    """Accept, note the client's address and port in ``seen``, close."""

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        seen.append(conn.getpeername()[:2])

    return behaviour
