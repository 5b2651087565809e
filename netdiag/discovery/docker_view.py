"""The Docker API's view of container networks, as scan needs it; read-only (GET only).

``load_view(timeout)`` returns every network with its members (running and stopped), or a
one-line reason why the API could not be used (no socket, refused, permission, slow).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"


@dataclass
class Member:
    """One container on one network, as the API describes it."""

    container: str
    container_id: str
    state: str
    ip: str | None
    mac: str | None
    names: list[str]  # every DNS name it should answer to on this network
    aliases: list[str]
    exposed_ports: list[int]
    hostname: str | None = None


@dataclass
class Network:
    name: str
    id: str
    driver: str
    internal: bool
    subnets: list[str]
    gateways: list[str]
    members: list[Member] = field(default_factory=list)


@dataclass
class DockerView:
    networks: list[Network]
    api_version: str | None


class DockerUnavailable(Exception):
    """The API could not be used; the message is one line for the user."""


def _reason(exc: BaseException) -> str:
    text = str(exc)
    low = text.lower()
    if "permission denied" in low or isinstance(exc, PermissionError):
        return "permission denied on the Docker socket"
    if "no such file" in low or "filenotfound" in low:
        return "Docker socket not found"
    if "refused" in low:
        return "connection to the Docker API refused"
    if "timed out" in low or "timeout" in low:
        return "the Docker API did not answer in time"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _ports(config: dict[str, Any]) -> list[int]:
    ports: set[int] = set()
    for spec in config.get("ExposedPorts") or {}:
        number, _, proto = spec.partition("/")
        if proto in ("", "tcp") and number.isdigit():
            ports.add(int(number))
    return sorted(ports)


def load_view(timeout: float, wanted: set[str] | None = None) -> DockerView:
    """Networks (all, or those named/id'd in ``wanted``) with members; raises DockerUnavailable."""
    host = os.environ.get("DOCKER_HOST")
    if not host and not os.path.exists(DEFAULT_SOCKET):
        raise DockerUnavailable(f"no Docker socket ({DEFAULT_SOCKET} missing, DOCKER_HOST unset)")
    try:
        import docker  # 0.11 s: only when the API is used

        api = docker.APIClient(
            base_url=host or f"unix://{DEFAULT_SOCKET}", version="1.41", timeout=timeout
        )
        raw_networks = api.networks()
        networks: list[Network] = []
        inspected: dict[str, dict[str, Any]] = {}
        for raw in raw_networks:
            name = raw.get("Name", "")
            if wanted and name not in wanted and raw.get("Id") not in wanted:
                continue
            if name in ("host", "none") or raw.get("Driver") in ("host", "null"):
                continue
            ipam = (raw.get("IPAM") or {}).get("Config") or []
            net = Network(
                name,
                raw.get("Id", ""),
                raw.get("Driver", ""),
                bool(raw.get("Internal")),
                [c["Subnet"] for c in ipam if c.get("Subnet") and ":" not in c["Subnet"]],
                [c["Gateway"] for c in ipam if c.get("Gateway") and ":" not in c["Gateway"]],
            )
            for summary in api.containers(all=True, filters={"network": net.id}):
                cid = summary["Id"]
                if cid not in inspected:
                    inspected[cid] = api.inspect_container(cid)
                net.members.append(_member(inspected[cid], net.name))
            networks.append(net)
        version = api.api_version
        api.close()
    except DockerUnavailable:
        raise
    except Exception as exc:  # any transport or API failure: one line, scan goes on
        raise DockerUnavailable(_reason(exc)) from None
    return DockerView(networks, version)


def _member(info: dict[str, Any], network: str) -> Member:
    name = (info.get("Name") or "").lstrip("/")
    config = info.get("Config") or {}
    endpoint = ((info.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
    state = (info.get("State") or {}).get("Status", "unknown")
    aliases = [a for a in endpoint.get("Aliases") or [] if a]
    names: list[str] = [name]
    for extra in [*(endpoint.get("DNSNames") or []), *aliases]:
        # Docker adds the short container id as an alias; keep it, it resolves too.
        if extra not in names:
            names.append(extra)
    return Member(
        container=name,
        container_id=info.get("Id", "")[:12],
        state=state,
        ip=endpoint.get("IPAddress") or None,
        mac=endpoint.get("MacAddress") or None,
        names=names,
        aliases=aliases,
        exposed_ports=_ports(config),
        hostname=config.get("Hostname"),
    )
