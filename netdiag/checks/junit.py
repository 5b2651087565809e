"""JUnit XML for CI systems: one <testcase> per check, <failure> when it did not hold."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from netdiag.checks.run import Outcome
from netdiag.report import printable


def to_xml(outcomes: Sequence[Outcome], suite: str = "netdiag check") -> bytes:
    """The outcomes as JUnit XML; text from peers has its control characters escaped (XML 1.0
    cannot carry most of them at all), so the file is always well-formed."""
    failures = sum(1 for o in outcomes if not o.passed)
    total_s = max((o.elapsed_ms for o in outcomes), default=0.0) / 1000
    root = ET.Element("testsuites", name=suite)
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{total_s:.3f}",
    )
    for outcome in outcomes:
        case = ET.SubElement(
            node,
            "testcase",
            classname="netdiag.check",
            name=printable(outcome.check.name),
            time=f"{outcome.elapsed_ms / 1000:.3f}",
        )
        ET.SubElement(case, "properties")
        props = case.find("properties")
        assert props is not None
        for key, value in (
            ("target", printable(outcome.check.target)),
            ("expect", str(outcome.check.expect)),
            ("status", str(outcome.status)),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        if not outcome.passed:
            failure = ET.SubElement(
                case, "failure", message=outcome.line(), type=str(outcome.status)
            )
            failure.text = "\n".join(
                printable(f"{r.address or '-'} {r.status} {r.detail}") for r in outcome.results
            )
        out = ET.SubElement(case, "system-out")
        out.text = outcome.line()
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write(path: str, outcomes: Sequence[Outcome]) -> None:
    with open(path, "wb") as fh:
        fh.write(to_xml(outcomes))
