"""Did you mean ...? Names close to one that does not resolve, from what the network offers.

``candidates_from_view`` lists every name the embedded DNS answers on each network (container
names, aliases, DNSNames), ours first; ``closest`` picks the few that look like a typo of the
wanted name. Pure functions: the doctor's name and Docker steps feed them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CUTOFF = 0.75  # "mysqll" ~ "mysql" 0.91, "db" ~ "mysql" 0.29
MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class Candidate:
    """``name`` answers on ``network`` for ``container`` (None: seen by PTR, not the API)."""

    name: str
    container: str | None
    network: str | None
    running: bool = True
    ours: bool = False  # on a network we are on

    def where(self) -> str:
        if self.container and self.network:
            return f"container {self.container} on {self.network}"
        return "a live address on this network"


def _is_short_id(name: str) -> bool:
    return len(name) == 12 and all(ch in "0123456789abcdef" for ch in name)


def candidates_from_view(view: Any, own_networks: Sequence[str] = ()) -> list[Candidate]:
    """Every (name, container, network) of a DockerView; ours and running ones first."""
    found: list[Candidate] = []
    for c in view.containers:
        for ep in c.endpoints:
            for name in c.names_on(ep.network):
                if not _is_short_id(name):
                    found.append(
                        Candidate(name, c.name, ep.network, c.running, ep.network in own_networks)
                    )
    return sorted(found, key=lambda k: (not k.ours, not k.running))


def closest(wanted: str, candidates: Iterable[Candidate]) -> list[Candidate]:
    """The candidates whose name looks like a typo of ``wanted``: on our networks first, then
    the closest first; one per name."""
    wanted = wanted.rstrip(".").lower()
    by_name: dict[str, Candidate] = {}
    for cand in candidates:
        key = cand.name.lower()
        if key != wanted:
            by_name.setdefault(key, cand)  # the first is ours / running (sorted above)
    if not by_name:
        return []
    names = difflib.get_close_matches(wanted, list(by_name), len(by_name), CUTOFF)
    # best first, but a name on one of our networks before one elsewhere
    ranked = sorted((by_name[n] for n in names), key=lambda c: not c.ours)
    return ranked[:MAX_SUGGESTIONS]
