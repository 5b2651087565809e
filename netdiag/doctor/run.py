"""The doctor's order: stop at the first failure, except that a failed name still asks Docker
(the Docker view is what explains a name that does not resolve)."""

from __future__ import annotations

import time
from collections.abc import Callable

from netdiag.doctor import steps as s
from netdiag.doctor.model import FAIL, NOT_CHECKED, Diagnosis, Step

STEPS: list[tuple[str, str, Callable[[s.Context, Step], None]]] = [
    ("resolver", "resolver configuration", s.resolver),
    ("name", "the name resolves", s.name),
    ("docker", "Docker topology", s.docker),
    ("route", "route and neighbour", s.route),
    ("connect", "TCP connect", s.connect),
    ("greeting", "protocol greeting", s.greeting),
    ("credentials", "credentials", s.credentials),
    ("database", "database and table", s.database),
]
EXPLAINS_PREVIOUS = {"docker"}


def diagnose(ctx: s.Context) -> Diagnosis:
    steps = [Step(name, title) for name, title, _ in STEPS]
    failed = False
    for step, (_, _, fn) in zip(steps, STEPS, strict=True):
        if failed and step.name not in EXPLAINS_PREVIOUS:
            break
        if ctx.deadline.expired():
            step.summary = "global deadline reached"
            break
        start = time.monotonic()
        try:
            fn(ctx, step)
        except Exception as exc:  # a bug in one step is a failed step, not a traceback
            step.status = FAIL
            step.summary = f"internal error: {type(exc).__name__}: {exc}"
        step.elapsed_ms = (time.monotonic() - start) * 1000
        if step.status == FAIL:
            if failed:
                break
            failed = True
    for step in steps:
        if step.status == NOT_CHECKED and not step.summary:
            step.summary = "not checked: an earlier step failed"
    _one_fix(steps)
    return Diagnosis(str(ctx.target), steps)


def _one_fix(steps: list[Step]) -> None:
    """When the Docker step explains a failed name, its fix is the fix: the name step's own
    ("give the service that alias here") would contradict it, so it points there instead."""
    by_name = {s.name: s for s in steps}
    docker, name = by_name["docker"], by_name["name"]
    if docker.status == FAIL and docker.fix and name.status == FAIL and name.fix:
        name.fix = None
        name.notes.append("the docker step says why, and what to do")
