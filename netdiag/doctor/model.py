"""Doctor results: one Step per stage of the path, and the Diagnosis that lists them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL, SKIP, NOT_CHECKED = "pass", "warn", "fail", "skip", "not_checked"


@dataclass
class Step:
    """One stage: ``status`` is pass, warn, fail, skip or not_checked; ``fix`` says what to do."""

    name: str
    title: str
    status: str = NOT_CHECKED
    summary: str = ""
    fix: str | None = None
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "fix": self.fix,
            "notes": self.notes,
            "facts": self.facts,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


@dataclass
class Diagnosis:
    """All steps in order; ``failed`` names the first failing step (None when all passed)."""

    target: str
    steps: list[Step]

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.status == FAIL), None)

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def fix(self) -> str | None:
        """The most specific fix: a later failing step (Docker) explains an earlier one."""
        fails = [s for s in self.steps if s.status == FAIL and s.fix]
        return fails[-1].fix if fails else None

    @property
    def not_checked(self) -> list[str]:
        return [s.name for s in self.steps if s.status == NOT_CHECKED]

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed
        return {
            "target": self.target,
            "ok": self.ok,
            "failed_step": failed.name if failed else None,
            "fix": self.fix,
            "not_checked": self.not_checked,
            "steps": [s.to_dict() for s in self.steps],
        }
