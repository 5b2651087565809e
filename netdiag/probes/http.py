"""HTTP(S): GET one path, report status and latency; redirects reported, followed on request.

TLS is verified against the target's host name unless ``insecure``; the version, cipher and
certificate go to the facts, and a certificate with fewer than ``CERT_WARN_DAYS`` left is a
warning. At most ``MAX_BODY`` bytes of a body are read. A peer that is not HTTP (or not TLS for
https) is named (identify.instead): ``8080 speaks MariaDB 10.11.19, not HTTP``.
"""

from __future__ import annotations

import http.client
import ssl
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from netdiag.probes.base import Finding, Probe, ProbeFailure, Watchdog, connect
from netdiag.probes.mysql_wire import describe_foreign
from netdiag.probes.settings import HTTPSettings, parse_expected
from netdiag.status import Status

if TYPE_CHECKING:
    import socket

    from netdiag.probes.identify.instead import Instead

__all__ = ["HTTPProbe", "HTTPSProbe", "HTTPSettings", "parse_expected"]

MAX_BODY = 64 * 1024
MAX_REDIRECTS = 5
# A certificate with fewer days than this left is a warning on an ok result (probe, check);
# ``check --cert-days N`` makes fewer than N a failure.
CERT_WARN_DAYS = 14


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
        warnings = certificate_warnings(facts.get("certificate"))
        summary = f"{line} in {facts['response_ms']:.1f} ms"
        if warnings:
            summary += "; warning: " + "; ".join(warnings)
        return Finding(summary, facts, warnings)

    def _get(
        self, scheme: str, host: str, address: str, port: int, path: str, deadline: float
    ) -> tuple[int, str, str | None, dict[str, Any]]:
        from netdiag.probes.identify.instead import Instead

        left = max(0.001, deadline - time.monotonic())
        start = time.monotonic()
        source = self.options.source_address
        sock = connect(address, port, left, source)
        rtt = time.monotonic() - start
        instead = Instead(scheme, address, port, deadline, host, source)
        tls: dict[str, Any] = {}
        step = "tls"
        # http.client's timeout is per read: a peer dripping bytes would outlive it
        watchdog = Watchdog(sock, deadline)
        watchdog.__enter__()
        try:
            if scheme == "https":
                sock = self._handshake(sock, host, rtt, instead)
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
            if scheme == "https":  # after the response: reading it is not the server's time
                tls = self._tls_facts(sock, host)
            facts = {
                "response_ms": round(response_ms, 3),
                "body_bytes_read": len(body),
                "content_type": resp.getheader("Content-Type"),
                "server": resp.getheader("Server"),
                "tls": scheme == "https",
                **tls,
            }
            return resp.status, resp.reason or "", resp.getheader("Location"), facts
        except TimeoutError:
            raise ProbeFailure(Status.TIMEOUT, step, _late(step)) from None
        except ProbeFailure:
            raise
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.fired:
                raise ProbeFailure(Status.TIMEOUT, step, _late(step)) from None
            watchdog.__exit__()
            sock.close()  # first: a server that serves one connection at a time can answer
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise self._untrusted(exc, host, instead) from None
            failure = self._tls_failure(exc) if step == "tls" else None
            if failure is None:
                failure = self._classify(exc, step)
            seen = b""
            if isinstance(exc, http.client.BadStatusLine) and not isinstance(
                exc, http.client.RemoteDisconnected
            ):
                seen = str(exc.line)[:512].encode("latin-1", errors="replace")
            raise instead.name(failure, seen, "http" if step != "tls" else None) from None
        finally:
            watchdog.__exit__()
            sock.close()

    def _handshake(
        self, sock: socket.socket, host: str, rtt: float, instead: Instead
    ) -> ssl.SSLSocket:
        """The TLS handshake, verified unless ``insecure``. A TLS server answers the hello at
        once: silence beyond the answer wait is identified beside it (identify.instead), and
        the handshake goes on until the deadline."""
        from netdiag.probes.identify.timing import waits

        ctx = ssl.create_default_context()
        if self.settings().insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        # a cut connection must raise, never read as a short answer
        tls = ctx.wrap_socket(
            sock, server_hostname=host, suppress_ragged_eofs=False, do_handshake_on_connect=False
        )
        _, answer = waits(rtt)
        tls.settimeout(max(0.001, min(answer, instead.left())))
        try:
            try:
                tls.do_handshake()
                return tls
            except TimeoutError:
                if instead.left() <= 0:
                    raise
            instead.nudge_beside(tls, rtt, step="tls")  # no reconnect: the handshake goes on
            tls.settimeout(max(0.001, instead.left()))
            tls.do_handshake()
            return tls
        except BaseException:
            tls.close()  # wrap_socket took the connection over from ``sock``
            raise

    @staticmethod
    def _tls_facts(sock: ssl.SSLSocket, host: str) -> dict[str, Any]:
        from netdiag.probes.identify import certs

        return certs.session(sock, host)

    def _untrusted(
        self, exc: ssl.SSLCertVerificationError, host: str, instead: Instead
    ) -> ProbeFailure:
        """The certificate a verification refused, named: its facts come from a handshake of
        the identification's own (a refused handshake leaves no certificate to read)."""
        from netdiag.probes.identify import certs
        from netdiag.probes.identify.engine import identify
        from netdiag.probes.identify.instead import MIN_LEFT

        message = str(exc.verify_message or exc.reason or exc)
        code = exc.verify_code if isinstance(exc.verify_code, int) else None
        facts: dict[str, Any] = {"tls_verify_error": message, "tls_verify_code": code}
        named = message
        if instead.left() > MIN_LEFT:
            found = identify(
                instead.address,
                instead.port,
                scheme="https",
                host=host,
                timeout=instead.left(),
                source=instead.source,
                stages=[["tls"]],
            )
            got = found.identity.facts if found.identity is not None else {}
            for key in ("tls_version", "cipher", "cipher_bits", "certificate"):
                if key in got:
                    facts[key] = got[key]
            if "certificate" in facts:
                named = certs.untrusted(facts["certificate"], code, message, host)
        return ProbeFailure(Status.ERROR, "tls", f"TLS certificate not trusted: {named}", facts)

    @staticmethod
    def _tls_failure(exc: Exception) -> ProbeFailure | None:
        """What a failed TLS handshake means (None: a socket error, classified as any other)."""
        if isinstance(exc, ssl.SSLError):
            return ProbeFailure(
                Status.PROTOCOL_MISMATCH, "tls", f"TLS handshake failed: {exc.reason}"
            )
        return None

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


def certificate_warnings(cert: dict[str, Any] | None) -> list[str]:
    """``certificate CN=x expires in 3 days`` when fewer than CERT_WARN_DAYS are left (or it
    expired: only an ``--insecure`` probe gets that far)."""
    if not cert or "days_left" not in cert:
        return []
    if cert.get("expired") or cert["days_left"] < CERT_WARN_DAYS:
        from netdiag.probes.identify import certs

        return [certs.expiry(cert)]
    return []
