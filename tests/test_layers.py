"""The layering rules of the architecture, checked on the source: commands are thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "netdiag"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("command", ["scan", "self_", "doctor"])
def test_command_imports_no_other_command(command: str) -> None:
    mods = imported_modules(PACKAGE / "commands" / f"{command}.py")
    others = {m for m in mods if m.startswith("netdiag.commands")}
    assert others == set(), others


def test_core_never_imports_commands_or_argparse() -> None:
    """The core takes typed options, never an argparse Namespace."""
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "commands" or rel.name in ("cli.py", "args.py", "__main__.py"):
            continue
        mods = imported_modules(path)
        assert not any(m.startswith("netdiag.commands") for m in mods), rel
        assert "argparse" not in mods, rel


def test_one_docker_layer() -> None:
    """Only netdiag.discovery.docker talks to the Docker API; nothing imports the SDK."""
    for path in PACKAGE.rglob("*.py"):
        mods = imported_modules(path)
        assert not any(m == "docker" or m.startswith("docker.") for m in mods), path
        assert not any(m.startswith("requests") for m in mods), path
