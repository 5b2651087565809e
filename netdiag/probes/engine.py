"""Run probes: resolve each target the app's way, probe every address concurrently, in time.

``run(targets, options, deadline)`` returns one ProbeResult per (target, address); a name that
does not resolve gives one ``dns_failed`` result. ``options`` is one ProbeOptions for all
targets or one per target (from ``settings.options_for``). Nothing outlives the global deadline.

An address of a family this host cannot use at all (``::1`` in a container without IPv6, where
Docker's /etc/hosts still lists it for ``localhost``) does not fail a target that another of
its addresses answered: its result is folded into the answering ones, as
``facts["skipped"]`` and a note in their detail ("no IPv6 on this host"), as an app that tries
the next address would. When no address answered, every failure is kept.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from netdiag.deadline import Deadline
from netdiag.probes.base import Probe, ProbeFailure, ProbeOptions
from netdiag.result import ProbeResult
from netdiag.status import Status
from netdiag.targets import Target

if TYPE_CHECKING:
    from netdiag.dns.resolvconf import ResolvConf

T = TypeVar("T")
R = TypeVar("R")

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
        probe.identity(),
        shown,
        Status.OK,
        _elapsed_ms(start),
        found.summary,
        None,
        found.facts,
        list(found.warnings),
    )


def unusable_family(address: str, port: int) -> str | None:
    """Why this host cannot reach ``address`` at all ("no IPv6 on this host"), or None.

    A UDP connect asks the kernel for a route and a source address and sends nothing: with IPv6
    disabled it fails with EADDRNOTAVAIL (no source address, ``::1`` included), without IPv6 in
    the kernel with EAFNOSUPPORT, with no route of that family with ENETUNREACH.
    """
    import _socket
    import errno

    family = "IPv6" if ":" in address else "IPv4"
    try:
        sock = _socket.socket(
            _socket.AF_INET6 if family == "IPv6" else _socket.AF_INET, _socket.SOCK_DGRAM
        )
    except OSError as exc:
        return f"no {family} on this host" if exc.errno == errno.EAFNOSUPPORT else None
    try:
        sock.connect((address, port or 9))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return f"no {family} on this host"
        if exc.errno == errno.ENETUNREACH:
            return f"no {family} route on this host"
        return None
    finally:
        sock.close()
    return None


def _fold_unusable(tried: list[tuple[str, ProbeResult]], port: int) -> list[ProbeResult]:
    """The results of one target's addresses, with those this host cannot use at all folded
    into the ones that answered (only when one answered: otherwise every failure stands)."""
    answered = [r for _, r in tried if r.ok]
    if not answered or len(answered) == len(tried):
        return [r for _, r in tried]
    kept: list[ProbeResult] = []
    skipped: list[dict[str, str]] = []
    for address, result in tried:
        reason = None
        if not result.ok and result.step == "connect":
            reason = unusable_family(address, port)
        if reason is None:
            kept.append(result)
        else:
            skipped.append({"address": result.address or address, "reason": reason})
            skipped[-1]["detail"] = result.detail
    if skipped:
        note = "; ".join(f"{s['address']} skipped: {s['reason']}" for s in skipped)
        for result in answered:
            result.facts["skipped"] = skipped
            result.detail = f"{result.detail} ({note})" if result.detail else note
    return kept


def resolve_target(
    target: Target, deadline: Deadline, timeout: float, conf: ResolvConf | None = None
) -> list[str] | ProbeResult:
    """Addresses of the target's host, or a ``dns_failed`` result saying why."""
    if target.host_is_ip:  # nothing to resolve: the DNS modules are not even loaded
        return [target.host]
    from netdiag.dns.lookup import LookupFailure, resolve

    start = time.monotonic()
    try:
        return resolve(target.host, conf, timeout=deadline.timeout(timeout)).addresses
    except LookupFailure as fail:
        result = ProbeResult(
            str(target), None, Status.DNS_FAILED, _elapsed_ms(start), fail.detail, "resolve"
        )
        result.facts["dns_error"] = fail.kind
        return result


def in_threads(work: Callable[[T], R], items: Sequence[T], workers: int = MAX_WORKERS) -> list[R]:
    """``[work(x) for x in items]`` on up to ``workers`` threads at once, in the items' order.

    Plain threads, not concurrent.futures: importing that (logging and friends) costs more than
    a health check's whole run. A single item runs on the calling thread. The first exception
    a worker raises is raised here once every thread has finished.
    """
    if len(items) <= 1:
        return [work(x) for x in items]
    import threading

    results: list[R | None] = [None] * len(items)
    errors: list[BaseException] = []
    pending = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while not errors:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = work(items[index])
            except BaseException as exc:  # handed to the caller below
                errors.append(exc)

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(min(workers, len(items)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]  (every slot was filled)


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
    # Resolve all names concurrently, then probe all addresses concurrently.
    lookups = in_threads(
        lambda i: resolve_target(targets[i], deadline, per_options[i].timeout, conf),
        range(len(targets)),
    )
    jobs: list[tuple[int, Probe, str]] = []
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
        jobs += [(index, probe, address) for address in found]
    results = in_threads(lambda job: probe_address(job[1], job[2], deadline), jobs)
    tried: list[list[tuple[str, ProbeResult]]] = [[] for _ in targets]
    for (index, _, address), result in zip(jobs, results, strict=True):
        tried[index].append((address, result))
    for index, pairs in enumerate(tried):
        if len(pairs) > 1:
            per_target[index] += _fold_unusable(pairs, targets[index].port or 0)
        else:
            per_target[index] += [r for _, r in pairs]
    return [r for group in per_target for r in group]
