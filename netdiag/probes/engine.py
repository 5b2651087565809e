"""Run probes: resolve each target the app's way, probe every address concurrently, in time.

``run(targets, options, deadline)`` returns one ProbeResult per (target, address); a name that
does not resolve gives one ``dns_failed`` result. ``options`` is one ProbeOptions for all
targets or one per target (from ``settings.options_for``). Nothing outlives the global deadline.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from netdiag.deadline import Deadline
from netdiag.dns.lookup import LookupFailure, resolve
from netdiag.dns.resolvconf import ResolvConf
from netdiag.probes.base import Probe, ProbeFailure, ProbeOptions
from netdiag.result import ProbeResult
from netdiag.status import Status
from netdiag.targets import Target

# scheme -> "module:Class"; modules load only when a target of that scheme is probed.
REGISTRY: dict[str, str] = {
    "tcp": "netdiag.probes.tcp:TcpProbe",
    "mysql": "netdiag.probes.mysql:MySQLProbe",
    "postgres": "netdiag.probes.postgres:PostgresProbe",
    "redis": "netdiag.probes.redis:RedisProbe",
    "http": "netdiag.probes.http:HTTPProbe",
    "https": "netdiag.probes.http:HTTPSProbe",
    "dns": "netdiag.probes.dns:DnsProbe",
}

MAX_WORKERS = 32


def probe_class(scheme: str) -> type[Probe]:
    if scheme not in REGISTRY:
        raise ProbeFailure(Status.ERROR, "setup", f"no probe for scheme {scheme!r} yet")
    module, _, name = REGISTRY[scheme].partition(":")
    return getattr(importlib.import_module(module), name)


def _elapsed_ms(start: float) -> float:
    return (time.monotonic() - start) * 1000


def probe_address(probe: Probe, address: str, deadline: Deadline) -> ProbeResult:
    """Probe one address, turning every failure into a result; never raises."""
    target = probe.target
    port = target.port or 0
    if target.port is None:  # dns://NAME: the address alone
        shown = address
    else:
        shown = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    start = time.monotonic()
    timeout = deadline.timeout(probe.options.timeout)
    if timeout <= 0:
        return ProbeResult(
            probe.identity(), shown, Status.TIMEOUT, 0.0, "deadline reached", "deadline"
        )
    try:
        found = probe.check(address, port, timeout)
    except ProbeFailure as fail:
        return ProbeResult(
            probe.identity(),
            shown,
            fail.status,
            _elapsed_ms(start),
            fail.detail,
            fail.step,
            fail.facts,
        )
    except Exception as exc:  # a probe bug must not take the whole run down
        detail = f"internal error: {type(exc).__name__}: {exc}"
        return ProbeResult(
            probe.identity(), shown, Status.ERROR, _elapsed_ms(start), detail, "internal"
        )
    return ProbeResult(
        probe.identity(), shown, Status.OK, _elapsed_ms(start), found.summary, None, found.facts
    )


def resolve_target(
    target: Target, deadline: Deadline, timeout: float, conf: ResolvConf | None = None
) -> list[str] | ProbeResult:
    """Addresses of the target's host, or a ``dns_failed`` result saying why."""
    start = time.monotonic()
    try:
        return resolve(target.host, conf, timeout=deadline.timeout(timeout)).addresses
    except LookupFailure as fail:
        result = ProbeResult(
            str(target), None, Status.DNS_FAILED, _elapsed_ms(start), fail.detail, "resolve"
        )
        result.facts["dns_error"] = fail.kind
        return result


def run(
    targets: Sequence[Target],
    options: ProbeOptions | Sequence[ProbeOptions],
    deadline: Deadline,
    conf: ResolvConf | None = None,
) -> list[ProbeResult]:
    """Probe every address of every target; results keep the targets' order."""
    if isinstance(options, ProbeOptions):
        per_options: Sequence[ProbeOptions] = [options] * len(targets)
    else:
        per_options = options
        if len(per_options) != len(targets):
            raise ValueError("one ProbeOptions per target")
    per_target: list[list[ProbeResult]] = [[] for _ in targets]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(targets) * 2))) as pool:
        # Resolve all names concurrently, then probe all addresses concurrently.
        lookups = list(
            pool.map(
                lambda t, o: resolve_target(t, deadline, o.timeout, conf), targets, per_options
            )
        )
        jobs = []
        for index, (target, found) in enumerate(zip(targets, lookups, strict=True)):
            if isinstance(found, ProbeResult):
                per_target[index].append(found)
                continue
            try:
                probe = probe_class(target.scheme)(target, per_options[index])
            except ProbeFailure as fail:
                per_target[index].append(
                    ProbeResult(str(target), None, fail.status, 0.0, fail.detail, fail.step)
                )
                continue
            for address in found:
                jobs.append((index, pool.submit(probe_address, probe, address, deadline)))
        for index, future in jobs:
            per_target[index].append(future.result())
    return [r for group in per_target for r in group]
