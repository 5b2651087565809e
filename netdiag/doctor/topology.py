"""Who holds a name on which Docker network, and what that means for us: pure analysis.

``holders_of(name, containers)`` finds every (container, network) where Docker's embedded DNS
answers ``name`` (container name, ``--network-alias``, ``name.network``), running or not.
``analyse`` turns that plus our own containers into a verdict with a fix in Docker terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Holder:
    """``container`` answers to the name on ``network`` (``address`` None when not running)."""

    container: str
    state: str
    network: str
    address: str | None
    via: str  # "name", "alias" or "name.network"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Verdict:
    ok: bool
    summary: str
    fix: str | None = None
    notes: tuple[str, ...] = ()


def holders_of(name: str, containers: Sequence[Any]) -> list[Holder]:
    """``containers`` are netdiag.discovery.docker.Container objects."""
    wanted = name.rstrip(".").lower()
    found: list[Holder] = []
    for c in containers:
        for att in c.endpoints:
            via = None
            aliases = [a.lower() for a in att.aliases or []]
            dns_names = [a.lower() for a in att.dns_names or []]
            if c.name.lower() == wanted:
                via = "name"
            elif wanted in aliases or wanted in dns_names:
                via = "alias"
            elif wanted in (f"{c.name}.{att.network}".lower(),) or any(
                wanted == f"{a}.{att.network}".lower() for a in aliases
            ):
                via = "name.network"
            if via:
                found.append(Holder(c.name, c.state or "unknown", att.network, att.ipv4, via))
    return sorted(found, key=lambda h: (h.network, h.container))


def holders_of_address(address: str, containers: Sequence[Any]) -> list[Holder]:
    """The containers that have ``address`` on one of their networks."""
    return sorted(
        (
            Holder(c.name, c.state or "unknown", att.network, att.ipv4, "address")
            for c in containers
            for att in c.endpoints
            if att.ipv4 == address
        ),
        key=lambda h: (h.network, h.container),
    )


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)


def throwaway_fix(name: str, networks: Sequence[str]) -> str:
    """The fix when the container diagnosed is netdiag's own ``docker run --rm``: connecting it
    would help nobody (it is gone a second later); diagnose from where the app is."""
    first, others = networks[0], [n for n in dict.fromkeys(networks) if n != networks[0]]
    fix = (
        f"run netdiag in the app's network namespace: docker run --rm --network container:APP "
        f"netdiag doctor {name} (APP: the app's container); if the app is not on {first} "
        f"either: docker network connect {first} APP"
    )
    if others:
        fix += f" (or {' / '.join(others)}, where another {name} runs)"
    return fix


def analyse(
    name: str,
    holders: Sequence[Holder],
    own: str | None,
    own_networks: Sequence[str],
    similar: Sequence[Any] = (),
    throwaway: bool = False,
) -> Verdict:
    """Judge the holders of ``name`` as seen from container ``own`` (None: not a container).

    ``similar``: doctor.similar.Candidate names that look like a typo of ``name``;
    ``throwaway``: ``own`` is netdiag's own ``docker run --rm`` container.
    """
    net_hint = own_networks[0] if own_networks else "NETWORK"
    if not holders:
        create = (
            f"start the service with that alias on our network: docker run -d --network "
            f"{net_hint} --network-alias {name} IMAGE (or: docker network connect --alias "
            f"{name} {net_hint} CONTAINER)"
        )
        if similar:
            guess = similar[0]
            return Verdict(
                False,
                f"no container is named or aliased {name!r} on any network; did you mean "
                f"{guess.name} ({guess.where()})?",
                f"use the name {guess.name} (e.g. MYSQL_HOST={guess.name}); if {name} is "
                f"right, {create}",
            )
        return Verdict(False, f"no container is named or aliased {name!r} on any network", create)
    running = [h for h in holders if h.state == "running"]
    if own is not None:
        shared = [h for h in holders if h.network in own_networks]
        shared_running = [h for h in shared if h.state == "running"]
        if shared and not shared_running:
            h = shared[0]
            return Verdict(
                False,
                f"container {h.container} holds {name} on {h.network} but is {h.state}",
                f"docker start {h.container}  (then docker logs {h.container} if it stops again)",
            )
        if not shared_running:
            if running:
                h = running[0]
                ours = _names(own_networks) or "no network"
                if throwaway:
                    where = _names([f"{r.container} on {r.network}" for r in running])
                    return Verdict(
                        False,
                        f"{name} is {where}; this netdiag container ({own}, docker run --rm) "
                        f"is on {ours}, so it cannot reach {name} — connecting it would not "
                        "help the app",
                        throwaway_fix(name, [r.network for r in running]),
                    )
                if len({r.network for r in running}) == 1:
                    return Verdict(
                        False,
                        f"{own} and {name} share no network ({name} is container {h.container} "
                        f"on {h.network}; {own} is on {ours})",
                        f"docker network connect {h.network} {own}",
                    )
                # Several projects may each have their own "mysql": name them all, let the
                # user pick the one that belongs to this app.
                where = _names([f"{r.container} on {r.network}" for r in running])
                options = [f"docker network connect {r.network} {own}" for r in running]
                return Verdict(
                    False,
                    f"{own} and {name} share no network ({name} is held by {where}; {own} is "
                    f"on {ours})",
                    f"{options[0]}  (or, for another of them: {' / '.join(options[1:])})",
                )
            h = holders[0]
            return Verdict(
                False,
                f"container {h.container} holds {name} on {h.network} but is {h.state}, and "
                f"{own} is not on {h.network}",
                f"docker start {h.container} && docker network connect {h.network} {own}",
            )
        candidates = shared_running
    else:
        if not running:
            h = holders[0]
            return Verdict(
                False,
                f"container {h.container} holds {name} on {h.network} but is {h.state}",
                f"docker start {h.container}",
            )
        candidates = running
    by_net: dict[str, list[str]] = {}
    for h in candidates:
        by_net.setdefault(h.network, [])
        if h.container not in by_net[h.network]:
            by_net[h.network].append(h.container)
    for net, containers in sorted(by_net.items()):
        if len(containers) > 1:
            extra = " && ".join(f"docker network disconnect {net} {c}" for c in containers[1:])
            return Verdict(
                False,
                f"the alias {name} is held by {len(containers)} containers: "
                f"{_names(containers)} (on {net}); the app reaches either at random",
                f"keep the alias on the one that runs the service, e.g. {extra} "
                f"(or recreate the others without --network-alias {name})",
            )
    h = candidates[0]
    summary = f"{name} is container {h.container} (running) on {h.network}"
    if h.address:
        summary += f", {h.address}"
    notes: tuple[str, ...] = ()
    if own is None:
        notes = ("this process is not a container the daemon knows: sharing not checked",)
    elif own:
        summary += f"; shared with {own}"
    return Verdict(True, summary, None, notes)
