"""docs/schemas/: one valid draft 2020-12 schema per command, consistent with the code.

The schemas are checked against real output wherever a test reads --json (tests/support/
schemas.py); here they are checked against each other and against the vocabularies in code.
"""

from __future__ import annotations

import json

import pytest

from netdiag import cli
from netdiag.report import ENVELOPE_KEYS
from netdiag.status import Status
from tests.support.schemas import SCHEMAS, validator


def load(command: str) -> dict:
    return json.loads((SCHEMAS / f"{command}.json").read_text())


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_has_a_valid_schema_that_starts_with_the_envelope(command: str) -> None:
    validator(command)  # check_schema: a valid draft 2020-12 schema
    schema = load(command)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == f"netdiag.{command}/1"
    assert list(schema["properties"])[: len(ENVELOPE_KEYS)] == list(ENVELOPE_KEYS)
    assert schema["properties"]["schema"] == {
        "const": f"netdiag.{command}/1",
        "description": "this document's schema: netdiag.<command>/<revision>",
    }
    assert schema["properties"]["command"] == {"const": command}
    assert set(schema["required"]) == set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_enums_match_the_code() -> None:
    from netdiag.doctor import model

    for command in ("probe", "check", "wait", "scan"):
        assert load(command)["$defs"]["status"]["enum"] == [s.value for s in Status]
    steps = [model.PASS, model.WARN, model.FAIL, model.SKIP, model.NOT_CHECKED]
    assert load("doctor")["$defs"]["step_status"]["enum"] == steps
    port_states = load("scan")["$defs"]["port_state"]["enum"]
    assert port_states == ["open", "refused", "timeout", "unreachable", "error"]


def test_a_wrong_document_is_refused() -> None:
    """The validator really validates: an unknown status, a missing key, an extra key."""
    from netdiag.report import envelope

    good = envelope("wait", True, 1.0, {
        "ready": True, "invert": False, "timed_out": False, "exec": None,
        "targets": [{"target": "tcp://h:1", "ready": True, "status": "ok", "detail": "",
                     "attempts": 1, "ready_after_ms": 1.0}],
    })  # fmt: skip
    assert not list(validator("wait").iter_errors(good))
    for broken in (
        {**good, "targets": [{**good["targets"][0], "status": "fine"}]},
        {k: v for k, v in good.items() if k != "timed_out"},
        {**good, "extra": 1},
    ):
        assert list(validator("wait").iter_errors(broken)), broken
