"""The agent's one HTTP port: read-only, bounded in concurrency, request size and time.

Standard library ``http.server``, one thread per request but at most ``MAX_HANDLERS`` at once
(beyond that a request gets an immediate 503), ``SOCKET_TIMEOUT`` per socket operation and
``REQUEST_DEADLINE`` per connection in all (a slow client is cut off by the accept loop). GET
and HEAD only; a request with a body is refused. The app behind it answers from memory.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from netdiag import __version__

MAX_HANDLERS = 16
SOCKET_TIMEOUT = 5.0
REQUEST_DEADLINE = 15.0
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"


class App(Protocol):
    """What the server asks of the agent: (status, content type, body) per route."""

    def route(self, path: str, query: str) -> tuple[int, str, bytes]: ...


class Handler(BaseHTTPRequestHandler):
    server_version = f"netdiag-agent/{__version__}"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = SOCKET_TIMEOUT
    server: AgentHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: peers ping every few seconds; the agent logs state changes instead."""

    def _reply(self, status: int, ctype: str, body: bytes, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _handle(self, head: bool) -> None:
        length = self.headers.get("Content-Length")
        if (length and length.strip() != "0") or self.headers.get("Transfer-Encoding"):
            self._reply(413, "text/plain", b"this server is read-only: no request bodies\n", head)
            return
        path, _, query = self.path.partition("?")
        status, ctype, body = self.server.app.route(path, query)
        self._reply(status, ctype, body, head)

    def do_GET(self) -> None:
        self._handle(False)

    def do_HEAD(self) -> None:
        self._handle(True)


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(self, host: str, port: int, app: App, max_handlers: int = MAX_HANDLERS) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self._slots = threading.BoundedSemaphore(max_handlers)
        self._active: dict[socket.socket, float] = {}
        self._active_lock = threading.Lock()
        super().__init__((host, port), Handler)

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            self.shutdown_request(request)
            return
        with self._active_lock:
            self._active[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def _done(self, request: socket.socket) -> None:
        with self._active_lock:
            if self._active.pop(request, None) is not None:
                self._slots.release()

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def service_actions(self) -> None:
        """Called by serve_forever between polls: cut connections older than the deadline."""
        now = time.monotonic()
        with self._active_lock:
            old = [s for s, t in self._active.items() if now - t > REQUEST_DEADLINE]
        for sock in old:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
