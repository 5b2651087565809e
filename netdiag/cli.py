"""Entry point: pick the command, run it, turn failures into one line and an exit code.

Each command lives in ``netdiag.commands.<name>`` and exposes ``main(argv) -> int``; it may set
``USAGE_EXIT`` (default 2), ``FAILURE_EXIT`` for a NetdiagError such as an unreadable file
(default 1), ``INTERNAL_EXIT`` for a bug in netdiag (default 3: one line, the traceback on
stderr with ``NETDIAG_DEBUG=1``) and ``INTERRUPT_EXIT`` (default 130).
Modules are imported only when their command runs, so ``netdiag dig`` never pays for scapy or
docker.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

from netdiag import __version__
from netdiag.errors import NetdiagError, UsageError

COMMANDS: dict[str, tuple[str, str]] = {
    "dig": ("netdiag.commands.dig", "DNS lookups that answer like BIND dig"),
    "probe": ("netdiag.commands.probe", "is it really MySQL/PG/Redis/HTTP; does it let me in"),
    "self": ("netdiag.commands.self_", "where am I: interfaces, routes, resolver, container"),
    "scan": ("netdiag.commands.scan", "who is on the container networks, reachable, what they run"),
    "check": ("netdiag.commands.check", "probe once for a HEALTHCHECK: exit 0 all hold, else 1"),
    "wait": ("netdiag.commands.wait", "wait until targets are ready (or gone), then run CMD"),
    "doctor": ("netdiag.commands.doctor", "step-by-step diagnosis of the app's path to a service"),
    "path": ("netdiag.commands.path", "hops, path MTU and MTU black holes on the way to a target"),
    "agent": ("netdiag.commands.agent", "run on every node: probe all peer agents, serve metrics"),
    "mesh": ("netdiag.commands.mesh", "every agent's view of every other; name the culprit"),
}

USAGE = "usage: netdiag COMMAND [ARGS...]   (netdiag COMMAND -h for help)"


def _help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [USAGE, "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += [
        "",
        "netdiag COMMAND -h shows a command's options and exit codes. The full reference,",
        "every JSON key and the JSON Schemas: docs/reference.md and docs/schemas/ in",
        "netdiag's source repository.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"netdiag {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"netdiag: unknown command {name!r}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ImportError as exc:  # a broken install, not a user error
        print(f"netdiag {name}: cannot load command: {exc}", file=sys.stderr)
        return 1
    usage_exit = getattr(module, "USAGE_EXIT", 2)
    failure_exit = getattr(module, "FAILURE_EXIT", 1)
    internal_exit = getattr(module, "INTERNAL_EXIT", 3)
    previous = _exit_on_interrupt(name, getattr(module, "INTERRUPT_EXIT", 130))
    try:
        return module.main(rest)
    except UsageError as exc:
        from netdiag.args import usage_of
        from netdiag.report import printable

        usage = exc.usage or usage_of(module)
        if usage:
            print(usage, file=sys.stderr)
        print(f"netdiag {name}: error: {printable(_shown(exc))}", file=sys.stderr)
        return usage_exit
    except NetdiagError as exc:  # may quote a peer (a Docker API, a file): escaped
        from netdiag.report import printable

        print(f"netdiag {name}: {printable(_shown(exc))}", file=sys.stderr)
        return failure_exit
    except KeyboardInterrupt:
        print(f"netdiag {name}: interrupted", file=sys.stderr)
        return getattr(module, "INTERRUPT_EXIT", 130)
    except BrokenPipeError:
        return failure_exit
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("NETDIAG_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        try:
            from netdiag.report import printable

            text = printable(_shown(exc))
        except Exception:  # the bug may be in the renderer itself: still one line
            text = repr(str(exc))
        print(
            f"netdiag {name}: internal error (a bug in netdiag; NETDIAG_DEBUG=1 shows where): "
            f"{type(exc).__name__}: {text}",
            file=sys.stderr,
        )
        return internal_exit
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _shown(exc: BaseException) -> str:
    """An error message as printed: a URL's password in it (quoted input) becomes ``***``."""
    from netdiag.targets import redact_userinfo

    return redact_userinfo(str(exc))


def _exit_on_interrupt(name: str, code: int) -> Any:
    """Make Ctrl-C end the command at once with ``code``, whatever is in flight.

    A KeyboardInterrupt would first wait for the worker threads of every pool to finish their
    attempts (up to --timeout each); ending the process closes their sockets instead. Returns
    the previous handler (None when not on the main thread, where signals cannot be set).
    """

    def interrupted(signum: int, frame: object) -> None:
        import contextlib

        with contextlib.suppress(Exception):  # interrupted mid-write: the rest is moot
            sys.stdout.flush()
        try:
            os.write(2, f"netdiag {name}: interrupted\n".encode())
        finally:
            os._exit(code)

    try:
        return signal.signal(signal.SIGINT, interrupted)
    except ValueError:  # not the main thread: leave signals alone
        return None
