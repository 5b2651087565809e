"""HTTP(S): GET one path, report status and latency; redirects reported, followed on request.

TLS is verified against the target's host name unless ``insecure``; at most ``MAX_BODY`` bytes
of a body are read.
"""

from __future__ import annotations

import http.client
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


def _late(step: str) -> str:
    """The detail of a step that did not finish in time (a read timeout or the watchdog)."""
    return (
        "TLS handshake not finished in time"
        if step == "tls"
        else f"no complete HTTP {step} in time"
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _next_hop(
    scheme: str, host: str, port: int, path: str, location: str, facts: dict[str, Any]
) -> tuple[str, str, int, str, bool]:
    """Where a redirect's ``Location`` leads: (scheme, host, port, path, another origin?)."""
    shown = f"[{host}]" if ":" in host else host
    try:
        nxt = urlsplit(urljoin(f"{scheme}://{shown}:{port}{path}", location))
        new_port = nxt.port
    except ValueError as exc:  # a port of 99999, "[::1" ...: the server's mistake
        raise ProbeFailure(
            Status.PROTOCOL_MISMATCH,
            "redirect",
            f"bad redirect Location {location[:100]!r}: {exc}",
            facts,
        ) from None
    new_scheme = nxt.scheme.lower() or scheme
    if new_scheme not in ("http", "https"):
        raise ProbeFailure(
            Status.ERROR,
            "redirect",
            f"redirect to a {new_scheme}: URL, not followed ({location[:100]!r})",
            facts,
        )
    new_host = nxt.hostname or host
    new_port = new_port or _default_port(new_scheme)
    new_path = (nxt.path or "/") + (f"?{nxt.query}" if nxt.query else "")
    moved = new_host != host or new_port != port
    return new_scheme, new_host, new_port, new_path, moved


def _resolve(host: str, deadline: float, facts: dict[str, Any]) -> str:
    """The first address of a redirect's host, looked up like any target's."""
    from netdiag.dns.lookup import LookupFailure, resolve

    try:
        return resolve(host, timeout=max(0.001, deadline - time.monotonic())).addresses[0]
    except LookupFailure as fail:
        raise ProbeFailure(
            Status.DNS_FAILED, "redirect", f"redirect to {host}: {fail.detail}", facts
        ) from None


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
            facts["redirects"].append(location)
            scheme, host, port, path, moved = _next_hop(scheme, host, port, path, location, facts)
            if moved:  # another origin: resolved as every target is (the resolver's rules)
                address = _resolve(host, deadline, facts)
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
                    # a cut connection must raise, never read as a short answer
                    sock = ctx.wrap_socket(sock, server_hostname=host, suppress_ragged_eofs=False)
                except OSError as exc:
                    raise self._tls_failure(exc, watchdog.fired) from None
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
            if watchdog.fired:  # cut short: what was read is not the answer
                raise TimeoutError
            facts = {
                "response_ms": round(response_ms, 3),
                "body_bytes_read": len(body),
                "content_type": resp.getheader("Content-Type"),
                "server": resp.getheader("Server"),
                "tls": scheme == "https",
            }
            return resp.status, resp.reason or "", resp.getheader("Location"), facts
        except TimeoutError:
            raise ProbeFailure(Status.TIMEOUT, step, _late(step)) from None
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.fired:
                raise ProbeFailure(Status.TIMEOUT, step, _late(step)) from None
            raise self._classify(exc, step) from None
        finally:
            watchdog.__exit__()
            sock.close()

    @staticmethod
    def _tls_failure(exc: OSError, cut: bool) -> ProbeFailure | OSError:
        """What a failed TLS handshake means; ``cut`` when the watchdog ended it."""
        if cut:
            return ProbeFailure(Status.TIMEOUT, "tls", _late("tls"))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ProbeFailure(
                Status.ERROR, "tls", f"TLS certificate not trusted: {exc.verify_message}"
            )
        if isinstance(exc, ssl.SSLError):
            return ProbeFailure(
                Status.PROTOCOL_MISMATCH, "tls", f"TLS handshake failed: {exc.reason}"
            )
        return exc  # a socket error or a timeout: classified with the others below

    @staticmethod
    def _classify(exc: Exception, step: str) -> ProbeFailure:
        if isinstance(exc, http.client.LineTooLong):
            # its text is http.client's own ("got more than 65536 bytes ..."), not the peer's
            return ProbeFailure(
                Status.PROTOCOL_MISMATCH,
                step,
                f"not HTTP: the peer sent a line longer than {http.client._MAXLINE} bytes "
                f"where a {'status line' if 'status' in str(exc) else 'header line'} belongs",
            )
        if isinstance(exc, http.client.BadStatusLine):
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
