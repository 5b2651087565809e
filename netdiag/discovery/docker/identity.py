"""Which container am I? One answer for self, scan and doctor, from the best evidence there is.

Local evidence (this process's mountinfo/cgroup id, its network namespace's addresses and
MACs, its hostname) is matched against one DockerView:

1. the container id from mountinfo/cgroup, when the network agrees (or says nothing);
2. else the container whose endpoint has one of our MACs, then one of our addresses: we are in
   its network namespace (``nsenter -n``, ``--network container:APP``), and that is what a
   network tool must look at — the container we run in, if another, is kept as ``runner``;
3. else a 12-hex hostname that is a container's id prefix (Docker's default hostname).

Without the API the answer is the local evidence alone (container id, attached subnets).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from netdiag.discovery import container as container_mod
from netdiag.discovery.docker.model import Container, DockerView, Unavailable


@dataclass
class LocalEvidence:
    """What this process can tell about itself without asking anyone."""

    hostname: str
    container: container_mod.ContainerInfo
    addresses: list[str]
    macs: list[str]
    subnets: list[str]

    @classmethod
    def gather(cls, snapshot: Any = None) -> LocalEvidence:
        """Read mountinfo, cgroup, hostname and this namespace's interfaces."""
        if snapshot is None:
            from netdiag.discovery import local

            snapshot = local.snapshot()
        return cls(
            hostname=socket.gethostname(),
            container=container_mod.detect(),
            addresses=snapshot.addresses(),
            macs=snapshot.macs(),
            subnets=[str(n) for n in snapshot.ipv4_subnets()],
        )


@dataclass
class Identity:
    """This process as Docker knows it.

    ``container``: the container whose network namespace we are in (None: not one the daemon
    knows, or no API); ``runner``: the container this process runs in, when it is another one
    (``--network container:APP``) or when only it is known; ``method``: the evidence that
    decided (container_id, mac, address, hostname; None without a match); ``evidence``: every
    kind that named the same container.
    """

    in_container: bool
    container_id: str | None
    method: str | None = None
    container: Container | None = None
    runner: Container | None = None
    evidence: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        return self.container.name if self.container else None

    @property
    def networks(self) -> list[str]:
        return self.container.networks if self.container else []

    @property
    def throwaway(self) -> bool:
        """We run in the identified container, it is ``docker run --rm`` and its command is
        netdiag: netdiag's own throw-away container, gone once we exit (an app's ``--rm``
        container that we were ``docker exec``'d into is not)."""
        c = self.container
        runs_in_it = bool({"container_id", "hostname"} & set(self.evidence))
        ours = c is not None and any("netdiag" in part for part in c.command)
        return bool(c and c.auto_remove and runs_in_it and ours)

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_container": self.in_container,
            "container_id": self.container_id,
            "name": self.name,
            "method": self.method,
            "evidence": self.evidence,
            "networks": self.networks,
            "subnets": self.subnets,
            "runner": self.runner.name if self.runner else None,
            "throwaway": self.throwaway,
            "notes": self.notes,
        }


def identify_self(view: DockerView | Unavailable | None, local: LocalEvidence) -> Identity:
    """The one answer to "which container am I" (see the module docstring for the order)."""
    info = local.container
    local_kinds = [info.source] if info.source else []
    if not isinstance(view, DockerView):
        return Identity(
            info.in_container, info.id, None, evidence=local_kinds, subnets=local.subnets
        )
    by_id = view.container(info.id) if info.id and info.source != "hostname" else None
    net_method, by_net = view.holding(local.addresses, local.macs)
    short = container_mod.id_from_hostname(local.hostname)
    by_host = view.container(short) if short else None

    notes: list[str] = []
    runner = by_id
    if by_id is not None and (not by_net or by_id in by_net):
        chosen, method = by_id, "container_id"
    elif by_net:
        chosen, method = by_net[0], net_method
        if by_id is not None:
            notes.append(
                f"this process runs in container {by_id.name} but in the network namespace "
                f"of {chosen.name} (as with --network container:{chosen.name})"
            )
        if len(by_net) > 1:
            others = ", ".join(c.name for c in by_net[1:])
            notes.append(f"our {net_method} also matches {others}: took {chosen.name}")
    elif by_host is not None:
        chosen, method = by_host, "hostname"
    else:
        return Identity(
            info.in_container, info.id, None, runner=runner, evidence=local_kinds,
            subnets=local.subnets,
        )  # fmt: skip
    evidence = [method]
    if by_id is chosen and method != "container_id":
        evidence.append("container_id")
    if chosen in by_net and net_method not in evidence:
        evidence.append(net_method)
    if by_host is chosen and "hostname" not in evidence:
        evidence.append("hostname")
    return Identity(
        True,
        chosen.id,
        method,
        chosen,
        runner if runner is not chosen else None,
        evidence,
        local.subnets,
        notes,
    )
