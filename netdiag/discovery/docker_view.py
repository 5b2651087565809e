"""The Docker API's view of container networks, as scan needs it; read-only (GET only).

``load_view(timeout)`` returns every network with its members (running and stopped), or a
one-line reason why the API could not be used (no socket, refused, permission, slow).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any


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


def _ports(config: dict[str, Any]) -> list[int]:
    ports: set[int] = set()
    for spec in config.get("ExposedPorts") or {}:
        number, _, proto = spec.partition("/")
        if proto in ("", "tcp") and number.isdigit():
            ports.add(int(number))
    return sorted(ports)


def load_view(timeout: float, wanted: set[str] | None = None) -> DockerView:
    """Networks (all, or those named/id'd in ``wanted``) with members; raises DockerUnavailable.

    Built on netdiag.discovery.docker_api: its client refuses anything but GET.
    """
    from netdiag.discovery import docker_api as api

    client = api.connect(timeout=timeout)
    if isinstance(client, api.Unavailable):
        raise DockerUnavailable(client.note)
    listed = api.list_networks(client)
    if isinstance(listed, api.Unavailable):
        raise DockerUnavailable(listed.note)
    networks: list[Network] = []
    inspected: dict[str, dict[str, Any]] = {}
    for raw in listed:
        if wanted and raw.name not in wanted and raw.id not in wanted:
            continue
        if raw.name in ("host", "none") or raw.driver in ("host", "null"):
            continue
        net = Network(
            raw.name,
            raw.id,
            raw.driver,
            raw.internal,
            [c for c in raw.subnets if ":" not in c],
            [g for g in raw.gateways if ":" not in g],
        )
        # all=True: stopped containers too (the network's own endpoint list has running ones).
        summaries = client.call(
            lambda net_id=raw.id: client.api.containers(all=True, filters={"network": net_id})
        )
        if isinstance(summaries, api.Unavailable):
            raise DockerUnavailable(summaries.note)
        for summary in summaries:
            cid = summary["Id"]
            if cid not in inspected:
                doc = client.call(lambda cid=cid: client.api.inspect_container(cid))
                if isinstance(doc, api.Unavailable):
                    continue  # removed meanwhile
                inspected[cid] = doc
            net.members.append(_member(inspected[cid], net.name, api))
        networks.append(net)
    version = getattr(client.api, "api_version", None)
    with contextlib.suppress(Exception):
        client.api.close()
    return DockerView(networks, version)


def _member(doc: dict[str, Any], network: str, api: Any) -> Member:
    parsed = api.container_from_api(doc)
    endpoint = next((a for a in parsed.attachments if a.network == network), None)
    aliases = [a for a in (endpoint.aliases if endpoint else []) if a]
    names: list[str] = [parsed.name]
    for extra in [*((endpoint.dns_names or []) if endpoint else []), *aliases]:
        # Docker adds the short container id as an alias; keep it, it resolves too.
        if extra not in names:
            names.append(extra)
    return Member(
        container=parsed.name,
        container_id=parsed.id[:12],
        state=parsed.state or "unknown",
        ip=endpoint.ipv4 if endpoint else None,
        mac=endpoint.mac if endpoint else None,
        names=names,
        aliases=aliases,
        exposed_ports=_ports(doc.get("Config") or {}),
        hostname=parsed.hostname,
    )
