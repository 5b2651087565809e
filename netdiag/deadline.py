"""A global deadline that caps every per-attempt timeout beneath it."""

import time


class Deadline:
    """Absolute point on the monotonic clock; ``timeout(t)`` never lets a step outlive it."""

    def __init__(self, seconds: float, start: float | None = None) -> None:
        """``seconds`` from now, or from ``start`` (a monotonic time: the command's start)."""
        self.seconds = seconds
        self.end = (time.monotonic() if start is None else start) + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, per_attempt: float) -> float:
        """The time one attempt may take: its own limit, or what is left of the deadline."""
        return max(0.0, min(per_attempt, self.remaining()))
