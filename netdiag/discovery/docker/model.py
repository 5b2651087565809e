"""The one model of Docker's facts netdiag uses: engine, networks, containers and endpoints.

Parsers are pure functions of the API's JSON documents (dockerd 20.10+, Engine API 1.41+);
``DockerView`` is one read of the daemon, and every question about it (members of a network,
names a container answers to there, which container holds an address) is a method of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Unavailable:
    """The Docker API could not be used; ``note`` says why in one line. Falsy."""

    note: str

    def __bool__(self) -> bool:
        return False


@dataclass
class Engine:
    """The daemon's identity (GET /version)."""

    version: str
    api_version: str
    os: str
    arch: str
    host: str

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Network:
    """A Docker network (GET /networks)."""

    id: str
    name: str
    driver: str
    scope: str
    internal: bool
    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)

    @property
    def ipv4_subnets(self) -> list[str]:
        return [s for s in self.subnets if ":" not in s]

    @property
    def ipv4_gateways(self) -> list[str]:
        return [g for g in self.gateways if ":" not in g]

    @property
    def sweepable(self) -> bool:
        """Not ``host`` or ``none``: a network with addresses of its own."""
        return self.driver not in ("host", "null") and self.name not in ("host", "none")

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Endpoint:
    """One container's place on one network; ``ipv4`` is None when it is not running.

    ``dns_names`` is the API's DNSNames (Engine API 1.44+); None when the daemon is older.
    """

    network: str
    network_id: str
    ipv4: str | None
    prefixlen: int | None
    ipv6: str | None
    gateway: str | None
    mac: str | None
    aliases: list[str]
    dns_names: list[str] | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Container:
    """A container (GET /containers/{id}/json) with its endpoints."""

    id: str
    name: str
    hostname: str | None
    state: str | None
    image: str | None
    endpoints: list[Endpoint] = field(default_factory=list)
    exposed_ports: list[int] = field(default_factory=list)
    network_mode: str | None = None
    auto_remove: bool = False
    command: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def networks(self) -> list[str]:
        return [e.network for e in self.endpoints]

    def endpoint(self, network: Network | str) -> Endpoint | None:
        """Its endpoint on ``network`` (a Network, a name or an id), or None."""
        key = (network.id, network.name) if isinstance(network, Network) else (network, network)
        return next((e for e in self.endpoints if e.network_id in key or e.network in key), None)

    def names_on(self, network: Network | str) -> list[str]:
        """Every name the embedded DNS answers for it on ``network``: its name, DNSNames,
        aliases (Docker adds the short id as an alias; it resolves too)."""
        ep = self.endpoint(network)
        names = [self.name]
        extra = [*(ep.dns_names or []), *ep.aliases] if ep else []
        for name in extra:
            if name and name not in names:
                names.append(name)
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "hostname": self.hostname,
            "state": self.state,
            "image": self.image,
            "network_mode": self.network_mode,
            "auto_remove": self.auto_remove,
            "exposed_ports": self.exposed_ports,
            "networks": [e.to_dict() for e in self.endpoints],
        }


@dataclass
class DockerView:
    """One read of the daemon: its engine, networks and containers (running and stopped)."""

    host: str
    engine: Engine
    networks: list[Network]
    containers: list[Container]
    notes: list[str] = field(default_factory=list)

    def network(self, name_or_id: str) -> Network | None:
        """By exact name, exact id, or unique id prefix."""
        for net in self.networks:
            if name_or_id in (net.name, net.id):
                return net
        found = [n for n in self.networks if len(name_or_id) >= 3 and n.id.startswith(name_or_id)]
        return found[0] if len(found) == 1 else None

    def members(self, network: Network) -> list[tuple[Container, Endpoint]]:
        """Every container with an endpoint on ``network``, by name."""
        found = []
        for c in self.containers:
            ep = c.endpoint(network)
            if ep is not None:
                found.append((c, ep))
        return sorted(found, key=lambda pair: pair[0].name)

    def container(self, name_or_id: str) -> Container | None:
        """By exact name or id, or an id prefix of at least 12 hex digits that is unique."""
        for c in self.containers:
            if name_or_id in (c.name, c.id):
                return c
        if len(name_or_id) >= 12:
            found = [c for c in self.containers if c.id.startswith(name_or_id)]
            if len(found) == 1:
                return found[0]
        return None

    def holding(self, addresses: Iterable[str] = (), macs: Iterable[str] = ()) -> tuple[str, list]:
        """Containers with an endpoint whose MAC (preferred) or address is given.

        Returns (``"mac"``, ``"address"`` or ``""``, the containers in view order).
        """
        want_mac = {m.lower() for m in macs if m}
        want_ip = {a for a in addresses if a}
        by_mac = [
            c for c in self.containers if any(e.mac in want_mac for e in c.endpoints if e.mac)
        ]
        if by_mac:
            return "mac", by_mac
        by_ip = [
            c
            for c in self.containers
            if any(e.ipv4 in want_ip or e.ipv6 in want_ip for e in c.endpoints)
        ]
        return ("address", by_ip) if by_ip else ("", [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "engine": self.engine.to_dict(),
            "networks": [n.to_dict() for n in self.networks],
            "containers": [c.to_dict() for c in self.containers],
            "notes": self.notes,
        }


# --- parsers (pure) --------------------------------------------------------------------------


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strs(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def engine_from_api(doc: Any, host: str) -> Engine:
    """GET /version -> Engine."""
    doc = _dict(doc)
    return Engine(
        version=str(doc.get("Version") or ""),
        api_version=str(doc.get("ApiVersion") or ""),
        os=str(doc.get("Os") or ""),
        arch=str(doc.get("Arch") or ""),
        host=host,
    )


def network_from_api(doc: Any) -> Network:
    """One element of GET /networks -> Network."""
    doc = _dict(doc)
    configs = [c for c in (_dict(doc.get("IPAM")).get("Config") or []) if isinstance(c, Mapping)]
    return Network(
        id=str(doc.get("Id") or ""),
        name=str(doc.get("Name") or ""),
        driver=str(doc.get("Driver") or ""),
        scope=str(doc.get("Scope") or ""),
        internal=bool(doc.get("Internal")),
        subnets=[str(c["Subnet"]) for c in configs if c.get("Subnet")],
        gateways=[str(c["Gateway"]) for c in configs if c.get("Gateway")],
    )


def exposed_ports(config: Mapping[str, Any]) -> list[int]:
    """TCP ports of Config.ExposedPorts ("80/tcp": {})."""
    ports: set[int] = set()
    for spec in _dict(config.get("ExposedPorts")):
        number, _, proto = str(spec).partition("/")
        if proto in ("", "tcp") and number.isdigit() and 0 < int(number) < 65536:
            ports.add(int(number))
    return sorted(ports)


def container_from_api(doc: Any) -> Container:
    """GET /containers/{id}/json -> Container with its endpoints."""
    doc = _dict(doc)
    settings = _dict(doc.get("NetworkSettings"))
    endpoints = []
    for name, ep in sorted(_dict(settings.get("Networks")).items()):
        ep = _dict(ep)
        dns_names = ep.get("DNSNames")
        ipv6 = ep.get("GlobalIPv6Address") or None
        endpoints.append(
            Endpoint(
                network=str(name),
                network_id=str(ep.get("NetworkID") or ""),
                ipv4=ep.get("IPAddress") or None,
                prefixlen=ep.get("IPPrefixLen") or None,
                ipv6=ipv6,
                gateway=ep.get("Gateway") or None,
                mac=str(ep.get("MacAddress") or "").lower() or None,
                aliases=[a for a in _strs(ep.get("Aliases")) if a],
                dns_names=_strs(dns_names) if dns_names is not None else None,
            )
        )
    config = _dict(doc.get("Config"))
    host_config = _dict(doc.get("HostConfig"))
    command = [*_strs(config.get("Entrypoint")), *_strs(config.get("Cmd"))]
    return Container(
        id=str(doc.get("Id") or ""),
        name=str(doc.get("Name") or "").lstrip("/"),
        hostname=config.get("Hostname") or None,
        state=_dict(doc.get("State")).get("Status"),
        image=config.get("Image") or None,
        endpoints=endpoints,
        exposed_ports=exposed_ports(config),
        network_mode=host_config.get("NetworkMode") or None,
        auto_remove=bool(host_config.get("AutoRemove")),
        command=command,
    )
