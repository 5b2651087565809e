"""The docs say what works: the README's quick start, one image name, examples that can run.

The examples themselves run for real in tests/e2e (compose) and here (the install); these checks
keep the printed text tied to what those tests exercise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def fenced_blocks(markdown: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", markdown, flags=re.S | re.M)


def quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in fenced_blocks(section, "sh")]


def test_readme_has_two_quick_start_commands() -> None:
    install, test = quick_start_commands()
    assert "netdiag self" in install and "pip install" not in install
    assert test == "scripts/test"
    ci = (REPO / ".ci/run").read_text()
    assert "scripts/test" in ci


def externally_managed() -> bool:
    r = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
    )
    return (Path(r.stdout.strip()) / "EXTERNALLY-MANAGED").exists()


@pytest.mark.slow
def test_readme_install_command_works_on_the_system_python(tmp_path: Path) -> None:
    """The README's first command, as written, in a throwaway copy, with Debian's own python3."""
    if not SYSTEM_PYTHON.exists() or not externally_managed():
        pytest.skip("needs a distribution python3 that refuses a bare pip install (PEP 668)")
    copy = tmp_path / "netdiag"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            dst = copy / name.decode()
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    resolv = tmp_path / "resolv.conf"  # self's one query stays on loopback
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    # the user's environment (proxy and CA settings included), minus any Python of ours
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYENV", "PYTHON", "VIRTUAL_ENV", "NETDIAG"))
    }
    env |= {
        "HOME": str(home),
        "NETDIAG_BIN": str(bin_dir),  # the link goes here instead of /usr/local/bin
        "PATH": f"{bin_dir}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",  # no pyenv shims
        "NETDIAG_RESOLV_CONF": str(resolv),
    }
    # what a user meets first: a bare pip install is refused by this interpreter
    bare = subprocess.run(
        ["python3", "-m", "pip", "install", "."], cwd=copy, env=env, capture_output=True, text=True
    )
    assert bare.returncode != 0 and "externally-managed-environment" in bare.stderr
    install, _ = quick_start_commands()
    r = subprocess.run(
        ["sh", "-c", install], cwd=copy, env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "interfaces" in r.stdout and "resolver" in r.stdout, r.stdout
    link = bin_dir / "netdiag"
    assert link.is_symlink() and str(home) in os.readlink(link)


def test_one_image_name_everywhere() -> None:
    """The docs run `netdiag`; build-images, the compose example and the tests build that tag."""
    build = (REPO / "scripts/build-images").read_text()
    assert "image=${NETDIAG_IMAGE:-netdiag:latest}" in build
    compose = (REPO / "examples/todo-app/compose.yaml").read_text()
    assert "${NETDIAG_IMAGE:-netdiag:latest}" in compose
    from tests.support import tutorial

    if "NETDIAG_IMAGE" not in os.environ:
        assert tutorial.NETDIAG_IMAGE == "netdiag:latest"
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        assert "netdiag:dev" not in text, doc
        for line in re.findall(r"docker run [^\n]*", text):
            images = re.findall(
                r"\bnetdiag(?::[\w.-]+)?(?= (?:dig|probe|scan|self|check|wait|doctor|path|mesh|agent)\b)",
                line,
            )
            assert all(i in ("netdiag", "netdiag:latest") for i in images), (doc, line)


def test_healthchecks_compose_is_the_tested_example() -> None:
    """Every compose excerpt in docs/healthchecks.md is the tested example's lines, in order,
    and no netdiag health check sits in a service whose image has no netdiag."""
    example = (REPO / "examples/todo-app/compose.yaml").read_text().splitlines()
    docs = (REPO / "docs/healthchecks.md").read_text()
    blocks = fenced_blocks(docs, "yaml")
    assert blocks
    for block in blocks:
        at = 0
        for line in filter(str.strip, block.splitlines()):
            try:
                at = example.index(line, at) + 1
            except ValueError:
                pytest.fail(f"docs/healthchecks.md line not in the example (in order): {line!r}")
    for service in re.split(r"\n  (?=[\w-]+:\n)", "\n".join(example)):
        if '"netdiag", "check"' in service:
            assert "NETDIAG_IMAGE" in service, service


def test_todo_readme_names_the_container_for_both_compose_versions() -> None:
    text = (REPO / "examples/todo-app/README.md").read_text()
    if "todo-app-db-ready-1" in text:
        assert "todo-app_db-ready_1" in text
