"""A GET-only HTTP/1.1 client for the Docker Engine API, bounded in time and in size.

Contract: ``ApiClient.get_json(path, deadline)`` sends one ``GET`` (the client has no way to
send anything else) and returns the decoded JSON, or raises ``ApiError`` with a one-line note.
Every socket operation waits at most until the request's deadline, so a daemon that answers
one byte at a time cannot hold a command past it; the header is read up to ``MAX_HEADER``
bytes and the body (plain, or chunked) up to ``max_body`` bytes, so an endless or huge answer
costs at most that much memory. Standard library only: ``socket``, ``ssl`` for tcp:// + TLS.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SOCKET = "/var/run/docker.sock"
MAX_HEADER = 64 * 1024
MAX_BODY = 8 * 1024 * 1024  # GET /containers/json lists 500 containers in about 1 MB
MAX_JSON_NESTS = 200_000  # objects + arrays in one answer: 500 inspected containers use 30,000
RECV_SIZE = 64 * 1024
MAX_CHUNK_LINE = 1024


class ApiError(Exception):
    """A failed API request, worded for the user in one line. ``status`` is the HTTP code."""

    def __init__(self, note: str, status: int | None = None) -> None:
        super().__init__(note)
        self.note = note
        self.status = status


class ReadOnlyViolation(ApiError):
    """Raised instead of sending any method but GET to the Docker API."""


def docker_host(environ: Mapping[str, str] | None = None) -> str:
    """The API address in force: DOCKER_HOST, else the default unix socket."""
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


@dataclass(frozen=True)
class Address:
    """Where the daemon listens: a unix socket path, or a TCP host and port (TLS or not)."""

    host: str  # DOCKER_HOST as given, for messages
    unix_path: str | None = None
    tcp: tuple[str, int] | None = None
    tls: bool = False


def parse_host(host: str, environ: Mapping[str, str] | None = None) -> Address:
    """unix:///path, tcp://host:port (TLS when DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set),
    http:// and https://; anything else (ssh://, npipe://) raises ApiError."""
    env = os.environ if environ is None else environ
    if host.startswith("unix://"):
        return Address(host, unix_path=host[len("unix://") :] or DEFAULT_SOCKET)
    if host.startswith("/"):
        return Address(host, unix_path=host)
    parts = urlsplit(host if "://" in host else f"tcp://{host}")
    if parts.scheme not in ("tcp", "http", "https"):
        raise ApiError(f"DOCKER_HOST {host} is not supported (use unix:// or tcp://)")
    try:
        port = parts.port
    except ValueError:
        raise ApiError(f"DOCKER_HOST {host} has an invalid port") from None
    if not parts.hostname:
        raise ApiError(f"DOCKER_HOST {host} names no host")
    tls = parts.scheme == "https" or (
        parts.scheme == "tcp" and bool(env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH"))
    )
    return Address(host, tcp=(parts.hostname, port or (2376 if tls else 2375)), tls=tls)


def _tls_context(environ: Mapping[str, str]) -> Any:
    """The docker CLI's TLS settings: DOCKER_CERT_PATH/{ca,cert,key}.pem, DOCKER_TLS_VERIFY."""
    import ssl

    certs = environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
    verify = bool(environ.get("DOCKER_TLS_VERIFY"))
    ca = os.path.join(certs, "ca.pem")
    ctx = ssl.create_default_context(cafile=ca if verify and os.path.exists(ca) else None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert, key = os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        ctx.load_cert_chain(cert, key)
    return ctx


class _Deadline:
    def __init__(self, end: float, what: str) -> None:
        self.end = end
        self.what = what

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(self.what)
        return left


class _Reader:
    """Buffered reads from one socket, each recv bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.eof = False

    def fill(self) -> None:
        self.sock.settimeout(self.deadline.left())
        data = self.sock.recv(RECV_SIZE)
        if not data:
            self.eof = True
        self.buf += data

    def until(self, sep: bytes, limit: int, what: str) -> bytes:
        """Bytes up to and including ``sep``, at most ``limit`` of them."""
        start = 0
        while True:
            at = self.buf.find(sep, start)
            if at >= 0:
                out = bytes(self.buf[: at + len(sep)])
                del self.buf[: at + len(sep)]
                return out
            if len(self.buf) > limit:
                raise ValueError(f"{what} longer than {limit} bytes")
            if self.eof:
                raise ValueError(f"connection closed in the middle of the {what}")
            start = max(0, len(self.buf) - len(sep) + 1)
            self.fill()

    def exactly(self, n: int, what: str) -> bytes:
        while len(self.buf) < n:
            if self.eof:
                raise ValueError(f"connection closed in the middle of the {what}")
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self, limit: int) -> bytes:
        while not self.eof:
            if len(self.buf) > limit:
                raise _TooLarge
            self.fill()
        return bytes(self.buf)


class _TooLarge(Exception):
    pass


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head; ValueError when malformed."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ValueError("answer is not HTTP/1.x")
    if not (len(status_line[1]) == 3 and status_line[1].isdigit()):
        raise ValueError("answer has no valid HTTP status")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("malformed HTTP header line")
        headers[name.strip().lower()] = value.strip()
    return int(status_line[1]), headers


def _head(reader: _Reader) -> tuple[int, dict[str, str]]:
    status, headers = parse_head(reader.until(b"\r\n\r\n", MAX_HEADER, "HTTP header"))
    while 100 <= status < 200:  # 1xx interim answers: the real one follows
        status, headers = parse_head(reader.until(b"\r\n\r\n", MAX_HEADER, "HTTP header"))
    return status, headers


def _read_body(reader: _Reader, headers: dict[str, str], limit: int) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line = reader.until(b"\r\n", MAX_CHUNK_LINE, "chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ValueError("malformed chunk size") from None
            if size < 0:
                raise ValueError("malformed chunk size")
            if size == 0:
                return bytes(body)
            if len(body) + size > limit:
                raise _TooLarge
            body += reader.exactly(size, "body")
            reader.exactly(2, "body")
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ValueError("malformed Content-Length")
        if int(length) > limit:
            raise _TooLarge
        return reader.exactly(int(length), "body")
    return reader.rest(limit)


class ApiClient:
    """Read-only access to one daemon; ``timeout`` bounds each request as a whole."""

    def __init__(
        self,
        address: Address,
        timeout: float,
        environ: Mapping[str, str] | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.address = address
        self.host = address.host
        self.timeout = timeout
        self.max_body = max_body
        self.prefix = ""  # "/v1.41" once the version is known
        self._environ = dict(os.environ if environ is None else environ)

    def _connect(self, deadline: _Deadline) -> socket.socket:
        a = self.address
        if a.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(deadline.left())
                sock.connect(a.unix_path)
            except BaseException:
                sock.close()
                raise
            return sock
        assert a.tcp is not None
        sock = socket.create_connection(a.tcp, timeout=deadline.left())
        if a.tls:
            try:
                ctx = _tls_context(self._environ)
                sock.settimeout(deadline.left())  # bounds the whole handshake
                sock = ctx.wrap_socket(sock, server_hostname=a.tcp[0])
            except BaseException:
                sock.close()
                raise
        return sock

    def request(self, method: str, path: str, deadline: float | None = None) -> bytes:
        """The body of a 2xx answer to ``method path``; only GET is ever sent."""
        if method.upper() != "GET":
            raise ReadOnlyViolation(f"netdiag is read-only: refused {method} {path}")
        end = time.monotonic() + self.timeout
        if deadline is not None:
            end = min(end, deadline)
        limit = _Deadline(end, f"Docker API at {self.host} did not answer within {self.timeout:g}s")
        url = f"{self.prefix}{path}"
        host = "docker" if self.address.unix_path is not None else self.address.tcp[0]  # type: ignore[index]
        request = f"GET {url} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netdiag\r\n"
        request += "Accept: application/json\r\nConnection: close\r\n\r\n"
        sock = self._connect(limit)
        try:
            sock.settimeout(limit.left())
            sock.sendall(request.encode("ascii"))
            reader = _Reader(sock, limit)
            try:
                status, headers = _head(reader)
            except ValueError as exc:
                raise ApiError(
                    f"Docker API at {self.host} sent a malformed answer to GET {path}: {exc}"
                ) from None
            try:
                body = _read_body(reader, headers, self.max_body)
            except ValueError as exc:
                raise ApiError(
                    f"Docker API at {self.host} sent a malformed answer to GET {path}: {exc}"
                ) from None
            except _TooLarge:
                mib = self.max_body // (1024 * 1024)
                raise ApiError(
                    f"Docker API at {self.host} sent more than {mib} MiB for GET {path}: "
                    "not read (is it really a Docker daemon?)"
                ) from None
        finally:
            with contextlib.suppress(OSError):
                sock.close()
        if status >= 300:
            raise ApiError(
                f"Docker API at {self.host} answered {status} for GET {path}: {_message(body)}",
                status,
            )
        return body

    def get_json(self, path: str, deadline: float | None = None) -> Any:
        """GET ``path`` and decode its JSON body."""
        body = self.request("GET", path, deadline)
        # Bounded bytes can still decode into far more memory ("[[],[],...]" is 20x): refuse
        # an answer with more containers than any daemon's list would hold.
        if body.count(b"{") + body.count(b"[") > MAX_JSON_NESTS:
            raise ApiError(
                f"Docker API at {self.host} answered GET {path} with more than "
                f"{MAX_JSON_NESTS} JSON objects: not read (is it really a Docker daemon?)"
            )
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(
                f"Docker API at {self.host} answered GET {path} with something that is not JSON"
            ) from None


def _message(body: bytes) -> str:
    """The daemon's {"message": ...} or the start of the body, printable, on one line."""
    text = body[:4096].decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError, AttributeError):
        text = str(json.loads(text).get("message") or text)
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:200] or "(empty answer)"


def precheck(address: Address) -> str | None:
    """For a unix socket, a note when it is missing or not a socket (no connect needed)."""
    path = address.unix_path
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"no Docker socket at {path}"
    except PermissionError:
        return f"permission denied reaching the Docker socket {path} (a directory on the way)"
    except OSError as exc:
        return f"cannot stat the Docker socket {path}: {exc.strerror}"
    import stat

    if not stat.S_ISSOCK(st.st_mode):
        return f"{path} is not a socket"
    return None


def permission_note(path: str) -> str:
    """Permission denied on a unix socket, with the fix the README gives (--group-add)."""
    try:
        gid: int | str = os.stat(path).st_gid
    except OSError:
        gid = "?"
    return (
        f"permission denied on the Docker socket {path} (group {gid}): give netdiag that "
        f"group, e.g. docker run --group-add $(stat -c %g {path}) -v {path}:{path}:ro ..."
    )


def describe(exc: BaseException, address: Address, timeout: float) -> str:
    """One line for a failed request, naming the usual causes plainly."""
    host = address.host
    if isinstance(exc, ApiError):
        return exc.note
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return f"Docker API at {host} did not answer within {timeout:g}s"
    if isinstance(exc, PermissionError) and address.unix_path is not None:
        return permission_note(address.unix_path)
    if isinstance(exc, PermissionError):
        return f"permission denied on the Docker API at {host}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by the Docker API at {host}"
    if isinstance(exc, FileNotFoundError):
        return f"no Docker socket at {address.unix_path or host}"
    import ssl

    if isinstance(exc, ssl.SSLError):
        return f"TLS with the Docker API at {host} failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return f"Docker API at {host} failed: {exc.strerror or type(exc).__name__}"
    return f"Docker API at {host} failed: {type(exc).__name__}: {str(exc)[:200]}"
