"""A small, read-only view of the Docker Engine API through the docker SDK.

Contract: only GET requests ever reach the daemon (``_ReadOnlyClient`` refuses any other
method before it is sent); every public function returns its value or an ``Unavailable``
carrying a one-line note (missing, refused, unreadable or slow socket, API error) and never
lets an exception escape. The SDK is imported inside ``connect()``, and only once a socket
file exists, so commands that never talk to Docker never pay for it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_TIMEOUT = 2.0
T = TypeVar("T")


class ReadOnlyViolation(RuntimeError):
    """Raised instead of sending any non-GET request to the Docker API."""


class _Note(Exception):
    """An already-worded one-line failure, passed through ``Docker.call`` unchanged."""


@dataclass(frozen=True)
class Unavailable:
    """The Docker API could not answer; ``note`` says why in one line. Falsy."""

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
class Member:
    """A container endpoint on a network (from GET /networks/{id})."""

    container_id: str
    name: str
    ipv4: str | None
    prefixlen: int | None
    ipv6: str | None
    mac: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Network:
    """A Docker network; ``members`` is filled only by ``inspect_network``."""

    id: str
    name: str
    driver: str
    scope: str
    internal: bool
    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    members: list[Member] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in vars(self).items() if k != "members"}
        if self.members is not None:
            doc["members"] = [m.to_dict() for m in self.members]
        return doc


@dataclass
class Attachment:
    """One network a container is attached to, as the container sees it.

    ``dns_names`` is the API's DNSNames (Engine API 1.44+); None when the daemon is older.
    """

    network: str
    network_id: str
    ipv4: str | None
    prefixlen: int | None
    gateway: str | None
    mac: str | None
    aliases: list[str]
    dns_names: list[str] | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Container:
    """A container with its networks (from GET /containers/{id}/json)."""

    id: str
    name: str
    hostname: str | None
    state: str | None
    image: str | None
    attachments: list[Attachment]

    def to_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in vars(self).items() if k != "attachments"}
        doc["networks"] = [a.to_dict() for a in self.attachments]
        return doc


@dataclass
class Identification:
    """Which containers this process is, and how that was decided.

    ``method``: "container_id", "mac", "address", "hostname", or None when nothing matched.
    """

    method: str | None
    containers: list[Container]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "containers": [c.to_dict() for c in self.containers]}


# --- connecting ------------------------------------------------------------------------------


def docker_host(environ: Mapping[str, str] | None = None) -> str:
    """The API address in force: DOCKER_HOST, else the default unix socket."""
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def _precheck(host: str) -> str | None:
    """For a unix socket, a note when it is missing, not a socket or not accessible."""
    if not host.startswith("unix://"):
        return None
    path = host[len("unix://") :] or DEFAULT_SOCKET
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"no Docker socket at {path}"
    except PermissionError:
        return f"permission denied reaching the Docker socket {path}"
    except OSError as exc:
        return f"cannot stat the Docker socket {path}: {exc.strerror}"
    if not stat.S_ISSOCK(st.st_mode):
        return f"{path} is not a socket"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"permission denied on the Docker socket {path} (need read/write access)"
    return None


def describe_error(exc: BaseException, host: str, timeout: float) -> str:
    """One line for a failed API call, naming the usual causes plainly."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e) for e in chain)
    names = " ".join(type(e).__name__ for e in chain)
    if "Timeout" in names or "timed out" in text.lower():
        return f"Docker API at {host} did not answer within {timeout:g}s"
    if isinstance(exc, ReadOnlyViolation):
        return str(exc)
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return f"permission denied on the Docker API at {host}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return f"connection refused by the Docker API at {host}"
    if any(isinstance(e, FileNotFoundError) for e in chain) or "No such file" in text:
        return f"no Docker socket at {host}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if status:
        return f"Docker API at {host} answered {status}: {first[:200]}"
    return f"Docker API at {host} failed: {type(exc).__name__}: {first[:200]}"


_CLIENT_CLASS: type | None = None


def _client_class() -> type:
    """docker.APIClient with a request() that refuses everything but GET (built on first use)."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        import docker

        class _ReadOnlyClient(docker.APIClient):
            def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                if str(method).upper() != "GET":
                    raise ReadOnlyViolation(f"netdiag is read-only: refused {method} {url}")
                return super().request(method, url, *args, **kwargs)

        _CLIENT_CLASS = _ReadOnlyClient
    return _CLIENT_CLASS


class Docker:
    """A connected, read-only API client; build it with ``connect()``."""

    def __init__(self, api: Any, host: str, timeout: float) -> None:
        self.api = api
        self.host = host
        self.timeout = timeout

    def call(self, fn: Callable[[], T]) -> T | Unavailable:
        """Run one API interaction; any failure becomes an Unavailable note."""
        try:
            return fn()
        except _Note as exc:
            return Unavailable(str(exc))
        except Exception as exc:  # the SDK raises requests, docker and OS errors alike
            return Unavailable(describe_error(exc, self.host, self.timeout))


def connect(
    environ: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Docker | Unavailable:
    """A client for DOCKER_HOST or the default socket, or a note saying why there is none."""
    env = dict(os.environ if environ is None else environ)
    host = docker_host(env)
    note = _precheck(host)
    if note:
        return Unavailable(note)
    try:
        from docker.utils import kwargs_from_env

        kwargs = kwargs_from_env(environment=env)
        kwargs.setdefault("base_url", host)
        # version="auto" asks GET /version, so a dead or slow daemon shows up here.
        api = _client_class()(version="auto", timeout=timeout, **kwargs)
    except ImportError:
        return Unavailable("the docker Python package is not installed (pip install docker)")
    except Exception as exc:
        return Unavailable(describe_error(exc, host, timeout))
    return Docker(api, host, timeout)


# --- reading ---------------------------------------------------------------------------------


def _split_cidr(value: str | None) -> tuple[str | None, int | None]:
    if not value:
        return None, None
    addr, _, prefix = value.partition("/")
    return addr, int(prefix) if prefix.isdigit() else None


def network_from_api(doc: Mapping[str, Any], with_members: bool = False) -> Network:
    """A network document of GET /networks or /networks/{id} -> Network."""
    configs = (doc.get("IPAM") or {}).get("Config") or []
    net = Network(
        id=str(doc.get("Id") or ""),
        name=str(doc.get("Name") or ""),
        driver=str(doc.get("Driver") or ""),
        scope=str(doc.get("Scope") or ""),
        internal=bool(doc.get("Internal")),
        subnets=[c["Subnet"] for c in configs if c.get("Subnet")],
        gateways=[c["Gateway"] for c in configs if c.get("Gateway")],
    )
    if with_members:
        net.members = []
        for cid, ep in (doc.get("Containers") or {}).items():
            ipv4, prefix = _split_cidr(ep.get("IPv4Address"))
            ipv6, _ = _split_cidr(ep.get("IPv6Address"))
            net.members.append(
                Member(
                    container_id=cid,
                    name=str(ep.get("Name") or ""),
                    ipv4=ipv4,
                    prefixlen=prefix,
                    ipv6=ipv6,
                    mac=(ep.get("MacAddress") or "").lower() or None,
                )
            )
        net.members.sort(key=lambda m: (m.name, m.container_id))
    return net


def container_from_api(doc: Mapping[str, Any]) -> Container:
    """A document of GET /containers/{id}/json -> Container with its attachments."""
    settings = doc.get("NetworkSettings") or {}
    attachments = []
    for name, ep in sorted((settings.get("Networks") or {}).items()):
        dns_names = ep.get("DNSNames")
        attachments.append(
            Attachment(
                network=name,
                network_id=str(ep.get("NetworkID") or ""),
                ipv4=ep.get("IPAddress") or None,
                prefixlen=ep.get("IPPrefixLen") or None,
                gateway=ep.get("Gateway") or None,
                mac=(ep.get("MacAddress") or "").lower() or None,
                aliases=list(ep.get("Aliases") or []),
                dns_names=list(dns_names) if dns_names is not None else None,
            )
        )
    config = doc.get("Config") or {}
    return Container(
        id=str(doc.get("Id") or ""),
        name=str(doc.get("Name") or "").lstrip("/"),
        hostname=config.get("Hostname"),
        state=(doc.get("State") or {}).get("Status"),
        image=config.get("Image"),
        attachments=attachments,
    )


def engine_info(client: Docker) -> Engine | Unavailable:
    """GET /version."""

    def read() -> Engine:
        v = client.api.version(api_version=False)
        return Engine(
            version=str(v.get("Version", "")),
            api_version=str(v.get("ApiVersion", "")),
            os=str(v.get("Os", "")),
            arch=str(v.get("Arch", "")),
            host=client.host,
        )

    return client.call(read)


def list_networks(client: Docker) -> list[Network] | Unavailable:
    """GET /networks, sorted by name (members not included)."""
    return client.call(
        lambda: sorted((network_from_api(n) for n in client.api.networks()), key=lambda n: n.name)
    )


def inspect_network(client: Docker, name_or_id: str) -> Network | Unavailable:
    """GET /networks/{id}: the network with its members (container name, IPv4, MAC)."""
    return client.call(lambda: network_from_api(client.api.inspect_network(name_or_id), True))


def inspect_container(client: Docker, name_or_id: str) -> Container | Unavailable:
    """GET /containers/{id}/json: the container and its networks with aliases/DNSNames."""
    return client.call(lambda: container_from_api(client.api.inspect_container(name_or_id)))


def match_members(
    networks: Iterable[Network], addresses: Iterable[str], macs: Iterable[str]
) -> tuple[str | None, list[str]]:
    """Container ids whose endpoint MAC (preferred) or IPv4 is one of ours, and which matched."""
    mine_mac = {m.lower() for m in macs}
    mine_ip = set(addresses)
    by_mac: list[str] = []
    by_ip: list[str] = []
    for net in networks:
        for m in net.members or []:
            if m.mac and m.mac in mine_mac and m.container_id not in by_mac:
                by_mac.append(m.container_id)
            if (m.ipv4 in mine_ip or m.ipv6 in mine_ip) and m.container_id not in by_ip:
                by_ip.append(m.container_id)
    if by_mac:
        return "mac", by_mac
    if by_ip:
        return "address", by_ip
    return None, []


def own_containers(
    client: Docker,
    container_id: str | None,
    addresses: Iterable[str],
    macs: Iterable[str],
    hostname: str | None,
    deadline: float | None = None,
) -> Identification | Unavailable:
    """The containers this process belongs to.

    By own container id when known; else by matching own MACs, then addresses, against every
    network's members (works with only the network namespace shared, e.g. ``nsenter -n``);
    else by a 12-hex hostname that prefixes a container id. ``deadline`` (time.monotonic())
    bounds the whole search: past it, the answer is a note.
    """

    def find() -> Identification:
        if container_id:
            found = inspect_container(client, container_id)
            if isinstance(found, Container):
                return Identification("container_id", [found])
        nets = list_networks(client)
        if isinstance(nets, Unavailable):
            raise _Note(nets.note)
        detailed = []
        for net in nets:
            if net.driver in ("null", "host"):
                continue
            if deadline is not None and time.monotonic() > deadline:
                raise _Note(f"Docker API at {client.host} too slow: gave up matching networks")
            full = inspect_network(client, net.id)
            if isinstance(full, Network):
                detailed.append(full)
        method, ids = match_members(detailed, addresses, macs)
        if ids:
            containers = [inspect_container(client, cid) for cid in ids]
            return Identification(method, [c for c in containers if isinstance(c, Container)])
        if hostname and len(hostname) == 12 and all(ch in "0123456789abcdef" for ch in hostname):
            found = inspect_container(client, hostname)
            if isinstance(found, Container) and found.id.startswith(hostname):
                return Identification("hostname", [found])
        return Identification(None, [])

    return client.call(find)
