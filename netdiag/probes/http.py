"""HTTP(S): GET one path, report status and latency; redirects reported, followed on request.

TLS is verified against the target's host name unless ``insecure``; at most ``MAX_BODY`` bytes
of a body are read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from netdiag.probes.base import Finding, Probe, ProbeFailure, Watchdog, connect
from netdiag.probes.mysql_wire import describe_foreign
from netdiag.probes.settings import HTTPSettings, parse_expected
from netdiag.status import Status

__all__ = ["HTTPProbe", "HTTPSProbe", "HTTPSettings", "parse_expected"]

MAX_BODY = 64 * 1024
MAX_REDIRECTS = 5


class HTTPProbe(Probe):
    scheme = "http"

    def settings(self) -> HTTPSettings:
        return self.options.http or HTTPSettings()

    def check(self, address: str, port: int, timeout: float) -> Finding:
        settings = self.settings()
        deadline = time.monotonic() + timeout
        scheme, host, path = self.target.scheme, self.target.host, self.target.path or "/"
        if self.target.query:
            # as given: decoding and re-joining would turn q=a%26b into two parameters
            path += "?" + self.target.query
        facts: dict[str, Any] = {"redirects": []}
        for _ in range(MAX_REDIRECTS + 1):
            code, reason, location, got = self._get(scheme, host, address, port, path, deadline)
            facts.update(got)
            facts.update({"status_code": code, "reason": reason, "path": path})
            if location is not None:
                facts["location"] = location
            if not (300 <= code < 400 and location and settings.follow_redirects):
                break
            nxt = urlsplit(urljoin(f"{scheme}://{host}:{port}{path}", location))
            facts["redirects"].append(location)
            if nxt.hostname != host or (nxt.port or (443 if nxt.scheme == "https" else 80)) != port:
                # a different origin: resolve it the plain way (the probe addresses only ours)
                host = nxt.hostname or host
                port = nxt.port or (443 if nxt.scheme == "https" else 80)
                try:
                    address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
                except OSError as exc:
                    raise ProbeFailure(
                        Status.DNS_FAILED, "redirect", f"redirect to {host}: {exc}", facts
                    ) from None
            scheme = nxt.scheme or scheme
            path = (nxt.path or "/") + (f"?{nxt.query}" if nxt.query else "")
        else:
            raise ProbeFailure(
                Status.ERROR, "redirect", f"more than {MAX_REDIRECTS} redirects", facts
            )
        code = facts["status_code"]
        line = f"HTTP {code} {facts['reason']}".rstrip()
        if "location" in facts and 300 <= code < 400:
            line += f" -> {facts['location']}"
        if not settings.accepts(code):
            raise ProbeFailure(Status.REJECTED, "response", f"{line} (status not expected)", facts)
        return Finding(f"{line} in {facts['response_ms']:.1f} ms", facts)

    def _get(
        self, scheme: str, host: str, address: str, port: int, path: str, deadline: float
    ) -> tuple[int, str, str | None, dict[str, Any]]:
        left = max(0.001, deadline - time.monotonic())
        start = time.monotonic()
        sock = connect(address, port, left, self.options.source_address)
        step = "tls"
        # http.client's timeout is per read: a peer dripping bytes would outlive it
        watchdog = Watchdog(sock, deadline)
        watchdog.__enter__()
        try:
            if scheme == "https":
                ctx = ssl.create_default_context()
                if self.settings().insecure:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    sock = ctx.wrap_socket(sock, server_hostname=host)
                except ssl.SSLCertVerificationError as exc:
                    raise ProbeFailure(
                        Status.ERROR, "tls", f"TLS certificate not trusted: {exc.verify_message}"
                    ) from None
                except ssl.SSLError as exc:
                    raise ProbeFailure(
                        Status.PROTOCOL_MISMATCH, "tls", f"TLS handshake failed: {exc.reason}"
                    ) from None
            step = "request"
            conn = (
                http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            )(host, port, timeout=left)
            conn.sock = sock
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            default = 443 if scheme == "https" else 80
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host if port == default else f"{host}:{port}")
            conn.putheader("User-Agent", "netdiag-probe")
            conn.putheader("Connection", "close")
            conn.endheaders()
            step = "response"
            resp = conn.getresponse()
            response_ms = (time.monotonic() - start) * 1000
            body = resp.read(MAX_BODY)
            facts = {
                "response_ms": round(response_ms, 3),
                "body_bytes_read": len(body),
                "content_type": resp.getheader("Content-Type"),
                "server": resp.getheader("Server"),
                "tls": scheme == "https",
            }
            return resp.status, resp.reason or "", resp.getheader("Location"), facts
        except TimeoutError:
            raise ProbeFailure(Status.TIMEOUT, step, f"no complete HTTP {step} in time") from None
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.fired:
                raise ProbeFailure(
                    Status.TIMEOUT, step, f"no complete HTTP {step} in time"
                ) from None
            raise self._classify(exc, step) from None
        finally:
            watchdog.__exit__()
            sock.close()

    @staticmethod
    def _classify(exc: Exception, step: str) -> ProbeFailure:
        if isinstance(exc, http.client.BadStatusLine | http.client.LineTooLong):
            seen = str(exc)[:80].encode("latin-1", errors="replace")
            return ProbeFailure(
                Status.PROTOCOL_MISMATCH,
                step,
                f"not HTTP: the peer answered with {describe_foreign(seen)}",
                {"seen": seen[:64].hex()},
            )
        if isinstance(exc, http.client.HTTPException):
            return ProbeFailure(
                Status.PROTOCOL_MISMATCH, step, f"bad HTTP reply: {type(exc).__name__}"
            )
        if isinstance(exc, ConnectionResetError):
            return ProbeFailure(Status.PROTOCOL_MISMATCH, step, "connection reset by peer")
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ProbeFailure(Status.ERROR, step, text)


class HTTPSProbe(HTTPProbe):
    scheme = "https"
