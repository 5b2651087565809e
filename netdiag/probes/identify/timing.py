"""How long identification waits: for a greeting (banner wait), for an answer to a nudge
(answer wait), both from the connect's round trip. Kept apart from the engine so a probe that
only needs the waits (the https handshake's) does not load the engine and its parsers."""

from __future__ import annotations

# How long to listen for a greeting before nudging: a server-first peer (MySQL, SSH) sends its
# greeting half a round trip after the connect completes, plus the time to start a thread or
# fork. 100 ms covers that on a LAN even on a loaded 2-core host (MariaDB greets in ~1 ms
# there); RTT_FACTOR round trips on top cover slower links; the ceiling keeps a far peer from
# holding a scan.
BANNER_FLOOR = 0.10
BANNER_CEILING = 1.5
# How long one stage of nudges waits for an answer: a request/answer round trip plus the
# server's own work (an HTTP app routing "/", a TLS server signing). 150 ms is ample for the
# servers netdiag meets on container networks; a slower app is reported silent, never held on.
ANSWER_FLOOR = 0.15
ANSWER_CEILING = 2.0
RTT_FACTOR = 4
# Once a first byte arrived, the rest of a greeting or answer must follow within this many
# answer waits (a drip does not get to extend it byte by byte).
COMPLETE_FACTOR = 2


def waits(rtt: float) -> tuple[float, float]:
    """(banner wait, answer wait) in seconds for a connect that took ``rtt`` seconds."""
    banner = min(BANNER_CEILING, BANNER_FLOOR + RTT_FACTOR * rtt)
    answer = min(ANSWER_CEILING, ANSWER_FLOOR + RTT_FACTOR * rtt)
    return banner, answer
