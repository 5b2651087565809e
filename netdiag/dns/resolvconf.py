"""/etc/resolv.conf as glibc reads it, plus netdiag's overrides for tests and odd setups.

``NETDIAG_RESOLV_CONF`` names another file to read; ``NETDIAG_RESOLVER`` (``ADDR`` or
``ADDR#PORT``, comma-separated) replaces the nameservers while keeping search and options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from netdiag.dns.name import is_ip_literal
from netdiag.errors import NetdiagError

DEFAULT_PATH = "/etc/resolv.conf"
DOCKER_EMBEDDED_DNS = "127.0.0.11"
MAX_BYTES = 64 * 1024


@dataclass
class ResolvConf:
    """Parsed resolver settings; defaults are glibc's (timeout 5 s, attempts 2, ndots 1)."""

    nameservers: list[tuple[str, int]] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2
    rotate: bool = False
    ndots_set: bool = False  # "options ndots:" present
    timeout_set: bool = False  # "options timeout:" present (dig uses it only then)
    attempts_set: bool = False  # "options attempts:" present
    path: str = DEFAULT_PATH
    overridden: bool = False

    @property
    def is_docker_embedded(self) -> bool:
        return any(addr == DOCKER_EMBEDDED_DNS for addr, _ in self.nameservers)

    @property
    def defaults(self) -> list[str]:
        """The options the file does not set, whose values are glibc's defaults."""
        given = {
            "ndots": self.ndots_set,
            "timeout": self.timeout_set,
            "attempts": self.attempts_set,
        }
        return [name for name, present in given.items() if not present]

    @property
    def server_texts(self) -> list[str]:
        """The nameservers as people write them: ``ADDR``, or ``ADDR#PORT`` off port 53."""
        return [server_text(a, p) for a, p in self.nameservers]

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "nameservers": self.server_texts,
            "search": self.search,
            "ndots": self.ndots,
            "timeout": self.timeout,
            "attempts": self.attempts,
            "rotate": self.rotate,
            "defaults": self.defaults,
            "docker_embedded_dns": self.is_docker_embedded,
            "overridden": self.overridden,
        }


def server_text(addr: str, port: int = 53) -> str:
    """The one text form of a nameserver: ``ADDR`` on port 53, else ``ADDR#PORT``."""
    return f"{addr}#{port}" if port != 53 else addr


def parse_server(text: str) -> tuple[str, int]:
    """``ADDR``, ``ADDR#PORT`` or ``[V6]:PORT`` -> (addr, port); ADDR must be an IP address
    (a name would be looked up through the machine's own resolver when a socket connects)."""
    text = text.strip()
    if "#" in text:
        addr, _, port = text.partition("#")
    elif text.startswith("[") and "]:" in text:
        addr, _, port = text[1:].partition("]:")
    else:
        addr, port = text.strip("[]"), "53"
    try:
        number = int(port)
    except ValueError:
        raise NetdiagError(f"invalid resolver port in {text!r}") from None
    if not 0 < number < 65536:
        raise NetdiagError(f"resolver port out of range in {text!r}")
    if not is_ip_literal(addr):
        raise NetdiagError(f"invalid resolver address in {text!r}: not an IP address")
    return addr, number


def parse(text: str, path: str = DEFAULT_PATH) -> ResolvConf:
    """Parse resolv.conf content; unknown lines are ignored as glibc does."""
    conf = ResolvConf(path=path)
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        key, *values = line.split()
        if key == "nameserver" and values:
            addr = values[0].split("%", 1)[0]
            if len(conf.nameservers) < 3 and is_ip_literal(addr):  # glibc's MAXNS; it skips non-IPs
                conf.nameservers.append((addr, 53))
        elif key in ("search", "domain") and values:
            conf.search = [v.rstrip(".") for v in values if v != "."]
        elif key == "options":
            for opt in values:
                name, _, val = opt.partition(":")
                try:
                    if name == "ndots":
                        conf.ndots = min(max(int(val), 0), 15)
                        conf.ndots_set = True
                    elif name == "timeout":
                        conf.timeout = float(min(max(int(val), 1), 30))
                        conf.timeout_set = True
                    elif name == "attempts":
                        conf.attempts = min(max(int(val), 1), 5)
                        conf.attempts_set = True
                    elif name == "rotate":
                        conf.rotate = True
                except ValueError:
                    continue
    return conf


def load(environ: dict[str, str] | None = None) -> ResolvConf:
    """The resolver configuration in force, overrides applied; no servers means 127.0.0.1."""
    env = os.environ if environ is None else environ
    path = env.get("NETDIAG_RESOLV_CONF") or DEFAULT_PATH
    from netdiag.files import read_bounded  # never blocks on a FIFO

    try:
        text = read_bounded(path, MAX_BYTES)[:MAX_BYTES].decode("utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise NetdiagError(f"cannot read {path}: {exc.strerror}") from None
    conf = parse(text, path)
    override = env.get("NETDIAG_RESOLVER")
    if override:
        conf.nameservers = [parse_server(s) for s in override.split(",") if s.strip()]
        conf.overridden = True
    if not conf.nameservers:
        conf.nameservers = [("127.0.0.1", 53)]
    return conf
