"""Fetch agents' JSON over HTTP: one agent's document, or every agent's /api/v1/local at once.

Every fetch has a timeout and the whole gathering a deadline; at most ``limit`` bytes are read
from an agent (a hostile or broken peer can neither hang nor flood the caller). Agents named
in the reports of others but missing from the first list are fetched in a second pass, so an
agent that one node's DNS forgot still gets its row.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from netdiag import __version__
from netdiag.deadline import Deadline
from netdiag.probes.base import ProbeFailure, Watchdog, connect

LOCAL_PATH = "/api/v1/local"
MESH_PATH = "/api/v1/mesh"
LOCAL_LIMIT = 1 << 20  # one agent's round: ~300 bytes per peer
MESH_LIMIT = 16 << 20  # a whole matrix: ~250 bytes per cell
MAX_WORKERS = 16  # each thread may add a malloc arena to the agent's RSS


class FetchError(Exception):
    """A fetch failed: ``status`` from the shared vocabulary, ``detail`` on one line."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Fetched:
    """One agent's document, or why there is none; ``fetched`` is on the monotonic clock."""

    address: str
    doc: dict[str, Any] | None
    status: str
    error: str | None
    fetched: float
    elapsed_ms: float


def fetch_json(
    address: str, port: int, path: str, timeout: float, limit: int, host: str | None = None
) -> dict[str, Any]:
    """GET ``path`` from ``address:port`` (an IP address: nothing is resolved here) within
    ``timeout`` s in all; the body as a JSON object. ``host`` names the agent in the Host
    header when it was reached through a name."""
    end = time.monotonic() + timeout
    try:
        sock = connect(address, port, timeout)
    except ProbeFailure as fail:
        raise FetchError(str(fail.status), fail.detail) from None
    # The connection is made above; http.client only writes the request and reads the answer.
    conn = http.client.HTTPConnection(host or address, port, timeout=timeout)
    conn.sock = sock
    try:
        with Watchdog(sock, end) as dog:
            try:
                conn.request(
                    "GET", path, headers={"User-Agent": f"netdiag/{__version__}", "Accept": "*/*"}
                )
                response = conn.getresponse()
                body = response.read(limit + 1)
            except (OSError, http.client.HTTPException) as exc:
                if dog.fired or isinstance(exc, TimeoutError):
                    raise FetchError("timeout", f"no whole answer within {timeout:.3g}s") from None
                detail = str(exc) or type(exc).__name__
                raise FetchError("error", f"HTTP exchange failed: {detail}") from None
    finally:
        conn.close()
    if len(body) > limit:
        raise FetchError("protocol_mismatch", f"answer larger than {limit} bytes")
    if response.status != 200:
        raise FetchError("protocol_mismatch", f"HTTP {response.status} for {path}")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FetchError("protocol_mismatch", f"{path} did not answer with JSON") from None
    if not isinstance(doc, dict):
        raise FetchError("protocol_mismatch", f"{path} answered JSON that is not an object")
    return doc


def _fetch_local(address: str, port: int, timeout: float) -> Fetched:
    start = time.monotonic()
    try:
        doc = fetch_json(address, port, LOCAL_PATH, timeout, LOCAL_LIMIT)
        if doc.get("command") != "agent" or not isinstance(doc.get("agent"), dict):
            raise FetchError("protocol_mismatch", "answer is not a netdiag agent's report")
    except FetchError as fail:
        now = time.monotonic()
        return Fetched(address, None, fail.status, fail.detail, now, (now - start) * 1000)
    now = time.monotonic()
    return Fetched(address, doc, "ok", None, now, (now - start) * 1000)


def _named_peers(doc: Mapping[str, Any]) -> list[str]:
    peers = doc.get("peers")
    if not isinstance(peers, list):
        return []
    return [
        p["address"] for p in peers if isinstance(p, dict) and isinstance(p.get("address"), str)
    ]


def gather_local(
    addresses: Iterable[str],
    port: int,
    timeout: float,
    deadline: Deadline,
    known: Mapping[str, dict[str, Any]] | None = None,
    fetch: Callable[[str, int, float], Fetched] = _fetch_local,
) -> list[Fetched]:
    """Every agent's /api/v1/local, concurrently; ``known`` supplies documents already at hand
    (an agent's own round), by address."""
    known = dict(known or {})
    found: dict[str, Fetched] = {}
    for address, doc in known.items():
        found[address] = Fetched(address, doc, "ok", None, time.monotonic(), 0.0)
    wanted = [a for a in dict.fromkeys(addresses) if a not in found]
    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="gather") as pool:
        for _ in range(2):  # the listed agents, then those only others' reports name
            if not wanted or deadline.expired():
                break
            per = deadline.timeout(timeout)
            for got in pool.map(fetch, wanted, [port] * len(wanted), [per] * len(wanted)):
                found[got.address] = got
            named = [a for f in found.values() if f.doc for a in _named_peers(f.doc)]
            wanted = [a for a in dict.fromkeys(named) if a not in found]
    for address in wanted:  # named, but no time left to ask
        found[address] = Fetched(
            address, None, "timeout", "not asked: the deadline came first", time.monotonic(), 0.0
        )
    return list(found.values())
