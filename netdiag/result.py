"""The one result type of every probe: what was tried, what happened, how long it took."""

from __future__ import annotations

from typing import Any

from netdiag.records import field, record
from netdiag.status import Status


@record
class ProbeResult:
    """Outcome of probing one target at one address.

    ``facts`` holds protocol findings (server version, TLS offered, HTTP status, ...);
    ``step`` names the step that failed (resolve, connect, greeting, login, ...), or is None;
    ``warnings`` says what holds now but soon will not (a certificate about to expire).
    """

    target: str
    address: str | None
    status: Status
    elapsed_ms: float
    detail: str
    step: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "address": self.address,
            "status": str(self.status),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "detail": self.detail,
            "step": self.step,
            "facts": self.facts,
            "warnings": self.warnings,
        }
