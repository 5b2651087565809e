"""Every --json document a test reads is checked against its JSON Schema (docs/schemas/).

``netdiag_json(text)`` parses a document printed by a real netdiag run, picks the schema named
by its ``schema`` key (``netdiag.probe/1`` -> docs/schemas/probe.json) and validates it with
jsonschema (draft 2020-12), so the schemas are tested against real output from real peers, not
against samples. ``VALIDATED`` counts the documents per schema for the session summary.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
VALIDATED: Counter[str] = Counter()


@cache
def validator(command: str) -> Any:
    import jsonschema

    schema = json.loads((SCHEMAS / f"{command}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(doc: Any, command: str | None = None) -> dict[str, Any]:
    """Validate a parsed document; ``command`` (when given) must be the one it names."""
    assert isinstance(doc, dict), f"not a JSON object: {doc!r:.200}"
    name = str(doc.get("schema", ""))
    assert name.startswith("netdiag.") and name.endswith("/1"), f"no netdiag schema: {name!r}"
    which = name.removeprefix("netdiag.").removesuffix("/1")
    if command is not None:
        assert which == command, (which, command)
    errors = sorted(validator(which).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{which}.json: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in errors[:10]
    )
    VALIDATED[which] += 1
    return doc


def netdiag_json(text: str, command: str | None = None) -> dict[str, Any]:
    """``json.loads`` for a netdiag --json document, validated against its schema."""
    return validate(json.loads(text), command)
