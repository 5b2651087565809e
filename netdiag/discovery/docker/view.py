"""Read the daemon once: ``load()`` returns a DockerView, or an Unavailable saying why not.

Requests (GET only, see http.py): /version, /networks, /containers/json?all=1, then
/containers/{id}/json for each container (at most ``max_containers``). Each request is bounded
by ``timeout``, all of them together by ``deadline`` (time.monotonic()); a failure anywhere is
one Unavailable note, never an exception.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from netdiag.discovery.docker import http
from netdiag.discovery.docker.model import (
    DockerView,
    Unavailable,
    container_from_api,
    engine_from_api,
    network_from_api,
)

DEFAULT_TIMEOUT = 2.0
MAX_CONTAINERS = 500


def connect(
    environ: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> http.ApiClient | Unavailable:
    """A client for DOCKER_HOST or the default socket, or a note when there plainly is none
    (no socket file, not a socket, an unsupported DOCKER_HOST). Sends nothing yet."""
    env = dict(os.environ if environ is None else environ)
    host = http.docker_host(env)
    try:
        address = http.parse_host(host, env)
    except http.ApiError as exc:
        return Unavailable(exc.note)
    note = http.precheck(address)
    if note:
        return Unavailable(note)
    return http.ApiClient(address, timeout, env)


def load(
    environ: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float | None = None,
    max_containers: int = MAX_CONTAINERS,
) -> DockerView | Unavailable:
    """Engine, networks and containers (with endpoints), or why the API could not be read."""
    client = connect(environ, timeout)
    if isinstance(client, Unavailable):
        return client
    end = deadline if deadline is not None else time.monotonic() + 10 * timeout
    try:
        return _read(client, end, max_containers)
    except Exception as exc:  # sockets, TLS, the daemon's errors: all become one note
        return Unavailable(http.describe(exc, client.address, timeout))


def _read(client: http.ApiClient, end: float, max_containers: int) -> DockerView:
    engine = engine_from_api(client.get_json("/version", end), client.host)
    if engine.api_version.replace(".", "").isdigit():
        client.prefix = f"/v{engine.api_version}"
    listed = client.get_json("/networks", end)
    networks = sorted(
        (network_from_api(n) for n in _list(listed, "/networks")), key=lambda n: n.name
    )
    summaries = _list(client.get_json("/containers/json?all=1", end), "/containers/json")
    notes: list[str] = []
    if len(summaries) > max_containers:
        notes.append(f"read {max_containers} of {len(summaries)} containers (the first listed)")
    containers = []
    for summary in summaries[:max_containers]:
        cid = str(summary.get("Id") or "") if isinstance(summary, Mapping) else ""
        if not cid.isalnum():
            continue
        if time.monotonic() >= end:
            raise http.ApiError(
                f"Docker API at {client.host} too slow: read {len(containers)} of "
                f"{len(summaries)} containers before the deadline"
            )
        try:
            doc = client.get_json(f"/containers/{cid}/json", end)
        except http.ApiError as exc:
            if exc.status == 404:
                continue  # removed since it was listed
            raise
        containers.append(container_from_api(doc))
    containers.sort(key=lambda c: c.name)
    return DockerView(client.host, engine, networks, containers, notes)


def _list(doc: Any, path: str) -> list[Any]:
    if not isinstance(doc, list):
        raise http.ApiError(f"Docker API answered GET {path} with something that is not a list")
    return doc
