"""Run checks: each check probes its target once (all checks concurrently) and is judged.

A check *holds* when every result has the expected status and every expectation (address
count, days left on a certificate, ...) is met. ``dns://`` targets are resolve-only: one ``ok``
result per address. A check that holds with warnings (a certificate about to expire) prints
WARN and still passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from netdiag.checks.spec import Check
from netdiag.deadline import Deadline
from netdiag.probes.settings import ProbeOptions
from netdiag.records import field, record
from netdiag.result import ProbeResult
from netdiag.status import Status

DEFAULT_TIMEOUT = 3.0
DEFAULT_DEADLINE = 10.0
LINE_MAX = 200  # docker inspect keeps 4 KiB of a health check's output: keep lines short
MAX_CONCURRENT = 64  # checks in flight at once (each may fan out to several addresses)
JOIN_GRACE = 0.5  # what a probe may overrun the deadline by before it is reported stuck


@record
class Outcome:
    """What one check found: its results, their overall status, and whether it held."""

    check: Check
    results: list[ProbeResult]
    status: Status
    passed: bool
    elapsed_ms: float
    problems: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        if self.problems:
            return "; ".join(self.problems)
        first = next((r for r in self.results if r.status is self.status), None)
        return "" if first is None else first.detail

    @property
    def warnings(self) -> list[str]:
        """Every result's warnings, each once."""
        return list(dict.fromkeys(w for r in self.results for w in r.warnings))

    @property
    def address(self) -> str | None:
        addrs = [r.address for r in self.results if r.address]
        if not addrs:
            return None
        return addrs[0] if len(addrs) == 1 else f"{addrs[0]} (+{len(addrs) - 1})"

    def line(self) -> str:
        """One short line: PASS/FAIL, name, status (and expectation), address, detail.

        A peer's text is in the detail: its control characters are escaped, so it can neither
        drive the terminal nor forge a second line in ``docker inspect``'s health log.
        """
        from netdiag.report import printable

        word = ("WARN" if self.warnings else "PASS") if self.passed else "FAIL"
        name = self.check.name
        label = name if name == str(self.check.target) else f"{name} {self.check.target}"
        status = str(self.status)
        if self.check.expect is not Status.OK:
            status += f" (expected {self.check.expect})"
        where = f" {self.address}" if self.address else ""
        text = printable(f"{word} {label}: {status}{where} {self.detail}".rstrip())
        return text if len(text) <= LINE_MAX else text[: LINE_MAX - 3] + "..."

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.check.name,
            "target": str(self.check.target),
            "expect": str(self.check.expect),
            "status": str(self.status),
            "passed": self.passed,
            "detail": self.detail,
            "problems": self.problems,
            "warnings": self.warnings,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "results": [r.to_dict() for r in self.results],
        }


def overall_status(results: Sequence[ProbeResult]) -> Status:
    """``ok`` when every result is ok, else the first result's status that is not ok."""
    for result in results:
        if result.status is not Status.OK:
            return result.status
    return Status.OK if results else Status.ERROR


def options_for(
    check: Check, timeout: float, environ: Mapping[str, str] | None = None
) -> ProbeOptions:
    """Probe options for one check (netdiag.probes.settings builds them, as for probe)."""
    from netdiag.probes.settings import options_for as build

    return build(check.target, check.probe_flags(), check.timeout or timeout, None, environ)


def probe_once(check: Check, options: ProbeOptions, deadline: Deadline) -> list[ProbeResult]:
    """Results for one check's target from the probe engine (dns:// included)."""
    from netdiag.probes import engine

    return engine.run([check.target], options, deadline)


def judge(check: Check, results: list[ProbeResult], elapsed_ms: float) -> Outcome:
    status = overall_status(results)
    problems: list[str] = []
    if check.addresses is not None and status is not Status.DNS_FAILED:
        count = len({r.address for r in results if r.address})  # one result per address
        if count != check.addresses:
            plural = "es" if count != 1 else ""
            problems.append(
                f"{check.target.host} resolves to {count} address{plural}, "
                f"expected exactly {check.addresses}"
            )
    if check.cert_days is not None:
        problems += certificate_problems(results, check.cert_days)
    passed = bool(results) and all(r.status is check.expect for r in results) and not problems
    return Outcome(check, results, status, passed, elapsed_ms, problems)


def certificate_problems(results: Sequence[ProbeResult], days: int) -> list[str]:
    """``certificate CN=x expires in 3 days, fewer than 7 (cert_days)`` for every result whose
    certificate has fewer than ``days`` left (results without one have failed already)."""
    from netdiag.probes.identify.certs import expiry

    problems = []
    for result in results:
        cert = result.facts.get("certificate")
        if isinstance(cert, dict) and cert.get("days_left", days) < days:
            text = f"{expiry(cert)}, fewer than {days} (cert_days)"
            problems.append(text if len(results) < 2 else f"{result.address}: {text}")
    return problems


def run_one(check: Check, timeout: float, deadline: Deadline) -> Outcome:
    start = time.monotonic()
    try:
        options = options_for(check, timeout)
        results = probe_once(check, options, deadline)
    except Exception as exc:  # a bad secret file, a missing module: this check fails, not all
        detail = str(exc) if str(exc) else type(exc).__name__
        results = [ProbeResult(str(check.target), None, Status.ERROR, 0.0, detail, "setup")]
    return judge(check, results, (time.monotonic() - start) * 1000)


def run_checks(
    checks: Sequence[Check], timeout: float = DEFAULT_TIMEOUT, deadline: Deadline | None = None
) -> list[Outcome]:
    """Run the checks concurrently (at most MAX_CONCURRENT at once); outcomes keep the checks'
    order. A check not finished (or not started) by the deadline is a ``timeout``."""
    deadline = deadline or Deadline(DEFAULT_DEADLINE)
    if len(checks) == 1:
        return [run_one(checks[0], timeout, deadline)]
    outcomes: list[Outcome | None] = [None] * len(checks)
    pending = iter(range(len(checks)))
    lock = threading.Lock()

    def work() -> None:
        while not deadline.expired():
            with lock:
                index = next(pending, None)
            if index is None:
                return
            outcomes[index] = run_one(checks[index], timeout, deadline)

    threads = [
        threading.Thread(target=work, daemon=True) for _ in range(min(MAX_CONCURRENT, len(checks)))
    ]
    for thread in threads:
        thread.start()
    end = deadline.end + JOIN_GRACE  # one bound for all: never a grace per thread
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    final: list[Outcome] = []
    for check, outcome in zip(checks, outcomes, strict=True):
        if outcome is None:
            stuck = ProbeResult(
                str(check.target), None, Status.TIMEOUT, 0.0, "deadline reached", "deadline"
            )
            outcome = judge(check, [stuck], deadline.seconds * 1000)
        final.append(outcome)
    return final
