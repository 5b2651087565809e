"""Start-up paths import only what they need (issue 9 §8; bench/startup has the timings).

Each command runs for real, in a child process, against a loopback listener; the modules it
loaded are compared with a list of what a tcp:// probe or check must never pay for.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.health_peers import listener

# Not needed for tcp://: protocol libraries, the Docker API, packet building, DNS resolution
# (an IP literal needs none), thread pools (logging comes with them), dataclasses (inspect,
# ast, dis), tabulate (tables are drawn by netdiag.report) and even the socket module (the
# handshake uses _socket, its C core; socket's enums and selectors cost more than the check).
NEVER_FOR_TCP = (
    "socket",
    "selectors",
    "docker",
    "scapy",
    "dns",
    "pymysql",
    "tabulate",
    "tomllib",
    "concurrent",
    "logging",
    "dataclasses",
    "inspect",
    "ssl",
    "http",
    "email",
)

PROBE = (
    "import atexit, sys\n"
    "from netdiag.cli import main\n"
    "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(','))), file=sys.stderr))\n"
    "sys.exit(main(sys.argv[2:]))\n"
)  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["probe"], ["probe", "--json"], ["check"], ["check", "--json"], ["wait", "-q"]],
    ids=lambda a: " ".join(a),
)
def test_tcp_paths_load_nothing_heavy(argv: list[str]) -> None:
    with listener() as port:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                PROBE,
                ",".join(NEVER_FOR_TCP),
                *argv,
                f"tcp://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1] == "[]", out.stderr
