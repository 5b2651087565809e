"""The one Docker layer: a read-only, bounded API client, one model, one "which container am I".

- ``load(environ, timeout, deadline)`` -> ``DockerView`` (engine, networks, containers with
  their endpoints) or ``Unavailable`` (a falsy value with a one-line ``note``: no socket,
  permission, refused, slow, not Docker). Nothing here raises for a missing or broken API.
- ``identify_self(view, LocalEvidence.gather())`` -> ``Identity``, used by self, scan and doctor.
- Only GET is ever sent; every read is bounded in time and size (``http.py``).
"""

from netdiag.discovery.docker.http import DEFAULT_SOCKET, ReadOnlyViolation, docker_host
from netdiag.discovery.docker.identity import Identity, LocalEvidence, identify_self
from netdiag.discovery.docker.model import (
    Container,
    DockerView,
    Endpoint,
    Engine,
    Network,
    Unavailable,
    container_from_api,
    engine_from_api,
    network_from_api,
)
from netdiag.discovery.docker.view import DEFAULT_TIMEOUT, connect, load

__all__ = [
    "DEFAULT_SOCKET",
    "DEFAULT_TIMEOUT",
    "Container",
    "DockerView",
    "Endpoint",
    "Engine",
    "Identity",
    "LocalEvidence",
    "Network",
    "ReadOnlyViolation",
    "Unavailable",
    "connect",
    "container_from_api",
    "docker_host",
    "engine_from_api",
    "identify_self",
    "load",
    "network_from_api",
]
