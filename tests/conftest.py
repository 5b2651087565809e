"""Fixtures shared by every test module. Real peers are started here, on demand."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.docker_engine import DockerLab, ensure_dockerd

NETDIAG = [sys.executable, "-m", "netdiag"]


def run_netdiag(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the real command line in a child process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*NETDIAG, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        input=input,
    )


@pytest.fixture(scope="session")
def dockerd() -> None:
    """A running dockerd (started when missing)."""
    ensure_dockerd()


@pytest.fixture
def docker_lab(dockerd: None) -> Iterator[DockerLab]:
    """Networks and containers for one test, removed by name afterwards even on failure."""
    lab = DockerLab()
    try:
        yield lab
    finally:
        lab.cleanup()
