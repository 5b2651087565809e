"""What may differ between BIND dig's and netdiag dig's output: masked before comparing."""

from __future__ import annotations

import re

MASKS = [
    (re.compile(r"^; <<>> .*? <<>>", re.M), "; <<>> PROGRAM <<>>"),
    (re.compile(r"id: \d+$", re.M), "id: ID"),
    (re.compile(r"^;; Query time: \d+ msec$", re.M), ";; Query time: N msec"),
    (re.compile(r"^;; WHEN: .*$", re.M), ";; WHEN: CLOCK"),
    # the client half of an echoed COOKIE is random per query, like the id
    (re.compile(r"^; COOKIE: [0-9a-f]{16}", re.M), "; COOKIE: CLIENT"),
    # +identify's timings
    (re.compile(r" in \d+ ms(\.?)$", re.M), r" in N ms\1"),
]


def mask(text: str) -> str:
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text
