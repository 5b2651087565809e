"""A command with a bug, for the dispatcher's internal-error path (tests/test_cli.py)."""

USAGE_EXIT = 2


def main(argv: list[str]) -> int:
    raise RuntimeError("boom: " + " ".join(argv))
