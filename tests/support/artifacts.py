"""Files tests leave for people to look at: screenshots, measured figures.

They go to ``$NETDIAG_ARTIFACTS`` or tests/artifacts (git-ignored); CI can keep that directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """The artifacts directory, created on first use."""
    d = Path(os.environ.get("NETDIAG_ARTIFACTS") or REPO / "tests" / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def record(name: str, **figures: object) -> None:
    """Merge ``figures`` into the JSON file ``name`` under the artifacts directory."""
    path = artifacts_dir() / name
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    path.write_text(json.dumps({**old, **figures}, indent=1) + "\n")
