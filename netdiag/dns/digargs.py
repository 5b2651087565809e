"""BIND dig 9.18's command line, parsed the way dig parses it, as pure functions and data.

Options before the first name change the default lookup that every later name is cloned from;
options after a name change that lookup only. A few settings are global wherever they appear
(+short, +[no]cmd, +[no]search, +time, -p, -4/-6), as in dig. Errors raise ``DigExit`` with
dig's own stderr lines and exit code.
"""

from __future__ import annotations

import copy
import socket

import dns.rdataclass
import dns.rdatatype

DEFAULT_BUFSIZE = 1232
DEFAULT_TIMEOUT = 5
DEFAULT_TRIES = 3
MAX_TRIES = 255
MAX_TIMEOUT = 0xFFFFFFFF
MAX_NDOTS = 0xFFFF  # what dig 9.18 accepts for +ndots (measured: 65535 parses, 65536 does not)
BATCH_MAX_ARGS = 13  # dig splits a batch line into at most this many words

USAGE_LINES = [
    "Usage:  dig [@global-server] [domain] [q-type] [q-class] {q-opt}",
    "            {global-d-opt} host [@local-server] {local-d-opt}",
    "            [ host [@local-server] {local-d-opt} [...]]",
    "",
    'Use "dig -h" (or "dig -h | more") for complete list of options',
]

SINGLE_DASH = "46dhimnruv"
VALUE_DASH = "bcdfhikmnpqrtvyx"


class DigExit(Exception):
    """Stop before any query: print ``stderr`` lines (and ``stdout`` lines), exit ``code``."""

    def __init__(self, code: int, stderr: list[str], stdout: list[str] | None = None) -> None:
        super().__init__("; ".join(stderr))
        self.code = code
        self.stderr = stderr
        self.stdout = stdout or []


class Unsupported(DigExit):
    """An option BIND dig knows that netdiag dig does not implement (exit 1)."""

    def __init__(self, option: str) -> None:
        super().__init__(1, [f"netdiag dig: {option} is not supported (see docs/dig.md)"])


def _usage(option: str) -> DigExit:
    return DigExit(1, [f"Invalid option: {option}", *USAGE_LINES])


class Lookup:
    """One query to make, with the display switches that apply to it.

    Plain class with class-level defaults: defining it costs far less start-up than a dataclass.
    """

    name: str = ""
    rdtype: int = dns.rdatatype.A
    rdtype_set: bool = False
    rdclass: int = dns.rdataclass.IN
    rdclass_set: bool = False
    servers: list[str]  # @server texts, in order
    recurse: bool = True
    tcp: bool = False
    qr: bool = False  # +qr: print the query before sending it
    identify: bool = False  # +identify: say which server answered, in how long
    multiline: bool = False  # +multiline: BIND's expanded record layout
    nottl: bool = False  # +nottlid
    noclass: bool = False  # +noclass
    tcp_set: bool = False  # +[no]tcp given: dig then keeps ANY queries on the chosen transport
    ignore: bool = False
    edns: int = 0  # EDNS version, -1 for none
    bufsize: int = 0  # 0: dig's default (1232)
    tries: int = 0  # 0: resolv.conf's attempts if set, else dig's 3
    dnssec: bool = False
    cookie: bool = True
    adflag: bool = True
    cdflag: bool = False
    aaflag: bool = False
    raflag: bool = False
    question: bool = True
    answer: bool = True
    authority: bool = True
    additional: bool = True
    comments: bool = True
    stats: bool = True
    cmdline: str = ""  # the greeting printed before this lookup's output, if any

    def __init__(self) -> None:
        self.servers = []

    def clone(self) -> Lookup:
        twin = copy.copy(self)
        twin.servers = list(self.servers)
        return twin

    @property
    def payload(self) -> int:
        return self.bufsize or DEFAULT_BUFSIZE


class DigOptions:
    """Parser state: the default lookup and dig's global switches."""

    default: Lookup
    short: bool = False
    printcmd: bool = True
    usesearch: bool = False
    timeout: int = 0  # 0: dig's default (5 s per try)
    port: int = 53
    port_set: bool = False
    ndots: int | None = None
    ipv4only: bool = False
    ipv6only: bool = False
    json: bool = False
    batchfile: str | None = None
    addresscount: int = 0
    greeted: bool = False
    warnings: list[str]  # stderr lines, in order
    notes: list[str]  # stdout lines printed while parsing, in order

    def __init__(self) -> None:
        self.default = Lookup()
        self.warnings = []
        self.notes = []

    @property
    def timeout_s(self) -> int:
        return self.timeout or DEFAULT_TIMEOUT


def is_ip_literal(text: str) -> bool:
    """An IPv4 or IPv6 address as inet_pton reads it (ipaddress costs start-up time)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return True
        except (OSError, ValueError):
            continue
    return False


def reverse_name(text: str) -> str:
    """The -x name: ip6.arpa nibbles for IPv6, reversed labels + in-addr.arpa otherwise."""
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        packed = b""
    if packed:
        return ".".join(packed.hex()[::-1]) + ".ip6.arpa."
    labels = [x for x in text.split(".") if x]
    return ".".join(reversed(labels)) + ".in-addr.arpa."


def _count_addresses(server: str, ipv4only: bool) -> int:
    """How many addresses @server stands for (dig's "N servers found"); a name is looked up."""
    if is_ip_literal(server):
        return 1
    try:
        infos = socket.getaddrinfo(server, 53, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        infos = []
    found = {str(i[4][0]) for i in infos if not (ipv4only and i[0] == socket.AF_INET6)}
    if not found:
        raise DigExit(1, [f"dig: couldn't get address for '{server}': not found"])
    return len(found)


def _rdtype(text: str) -> int | None:
    """A type as BIND's dns_rdatatype_fromtext reads it (no plain numbers, no NONE)."""
    if text.isdigit() or text.upper() == "NONE":
        return None
    try:
        value = dns.rdatatype.from_text(text)
    except Exception:
        return None
    if value in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
        raise Unsupported("zone transfers (AXFR/IXFR)")
    return value


def _any_over_tcp(lookup: Lookup) -> None:
    """dig asks ANY over TCP unless +[no]tcp was given."""
    if lookup.rdtype == dns.rdatatype.ANY and not lookup.tcp_set:
        lookup.tcp = True


def _rdclass(text: str) -> int | None:
    if text.isdigit():
        return None
    try:
        return dns.rdataclass.from_text(text)
    except Exception:
        return None


def _uint(what: str, value: str, limit: int, code: int) -> int:
    """dig's parse_uint: the complaint goes to stdout, the fatal line to stderr."""
    if not value.isdigit():
        reason = "not a valid number"
    elif int(value) > limit:
        reason = "out of range"
    else:
        return int(value)
    raise DigExit(code, [f"dig: Couldn't parse {what}"], [f"invalid {what} '{value}': {reason}"])


# dig picks a +option by a fixed prefix, then requires the word to be a prefix of the full name.
# (prefix, full names, key); prefix is what dig's character switch demands.
_PLUS: list[tuple[str, tuple[str, ...], str]] = [
    ("aa", ("aaonly", "aaflag"), "aaflag"),
    ("add", ("additional",), "additional"),
    ("adf", ("adflag",), "adflag"),
    ("al", ("all",), "all"),
    ("an", ("answer",), "answer"),
    ("au", ("authority",), "authority"),
    ("ba", ("badcookie",), "ignored"),
    ("be", ("besteffort",), "ignored"),
    ("bu", ("bufsize",), "bufsize"),
    ("cdf", ("cdflag",), "cdflag"),
    ("cl", ("cl", "class"), "class"),
    ("cm", ("cmd",), "cmd"),
    ("com", ("comments",), "comments"),
    ("coo", ("cookie",), "cookie"),
    ("cr", ("crypto",), "ignored"),
    ("de", ("defname",), "search"),
    ("dn", ("dnssec",), "dnssec"),
    ("dom", ("domain",), "unsupported"),
    ("ds", ("dscp",), "ignored"),
    ("ednsf", ("ednsflags",), "unsupported"),
    ("ednsn", ("ednsnegotiation",), "ignored"),
    ("ednso", ("ednsopt",), "unsupported"),
    ("expa", ("expandaaaa",), "unsupported"),
    ("expi", ("expire",), "unsupported"),
    ("f", ("fail",), "ignored"),
    ("h", ("header-only",), "unsupported"),
    ("ht", ("https", "https-get", "https-post"), "unsupported"),
    ("ide", ("identify",), "identify"),
    ("idni", ("idnin",), "ignored"),
    ("idno", ("idnout",), "ignored"),
    ("keepa", ("keepalive",), "ignored"),
    ("keepo", ("keepopen",), "ignored"),
    ("ma", ("mapped",), "ignored"),
    ("mu", ("multiline",), "multiline"),
    ("nd", ("ndots",), "ndots"),
    ("nsi", ("nsid",), "unsupported"),
    ("nss", ("nssearch",), "unsupported"),
    ("on", ("onesoa",), "ignored"),
    ("op", ("opcode",), "unsupported"),
    ("p", ("padding",), "unsupported"),
    ("qi", ("qid",), "unsupported"),
    ("qr", ("qr",), "qr"),
    ("qu", ("question",), "question"),
    ("ra", ("raflag",), "raflag"),
    ("rd", ("rdflag",), "recurse"),
    ("rec", ("recurse",), "recurse"),
    ("ret", ("retry", "retries"), "retry"),
    ("rr", ("rrcomments",), "ignored"),
    ("se", ("search",), "search"),
    ("shor", ("short",), "short"),
    ("show", ("showsearch",), "unsupported"),
    ("sp", ("split",), "ignored"),
    ("st", ("stats",), "stats"),
    ("su", ("subnet",), "unsupported"),
    ("tcf", ("tcflag",), "unsupported"),
    ("tcp", ("tcp",), "tcp"),
    ("ti", ("timeout",), "timeout"),
    ("tl", ("tls",), "unsupported"),
    ("tra", ("trace",), "unsupported"),
    ("tri", ("tries",), "tries"),
    ("ttl", ("ttl", "ttlid"), "ttlid"),
    ("ttlu", ("ttlunits",), "unsupported"),
    ("une", ("unexpected",), "ignored"),
    ("unk", ("unknownformat",), "unsupported"),
    ("v", ("vc",), "tcp"),
    ("y", ("yaml",), "unsupported"),
    ("z", ("zflag",), "unsupported"),
]


# +options that set the lookup attribute of the same name
_LOOKUP_SWITCHES = frozenset(
    {"answer", "authority", "additional", "question", "comments", "stats", "qr", "identify"}
    | {"multiline"}
    | {"aaflag", "adflag", "cdflag", "raflag", "recurse", "ignore"}
)


def _match_plus(cmd: str) -> str | None:
    # dig switches on the exact characters of the prefix, then compares the rest caselessly.
    low = cmd.lower()
    if cmd in ("ad", "cd"):  # +ad / +cd are synonyms of +adflag / +cdflag
        return low + "flag"
    if cmd == "do":
        return "dnssec"
    if cmd == "edns":
        return "edns"
    if cmd.startswith("i") and not cmd.startswith("id"):
        return "ignore" if "ignore".startswith(low) else None
    best: tuple[str, str] | None = None
    for prefix, names, key in _PLUS:
        if cmd.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, key if any(n.startswith(low) for n in names) else "")
    if best is None or not best[1]:
        return None
    return best[1]


class DigParser:
    """Feeds dig command lines (and batch lines) into one ``DigOptions`` state."""

    def __init__(self) -> None:
        self.opts = DigOptions()

    # -- +options ------------------------------------------------------------------------
    def plus(self, word: str, lookup: Lookup, is_batch: bool) -> None:
        option = word[1:]
        cmd, _, value_text = option.lstrip("=").partition("=")
        if not cmd:  # dig: a note on stdout, and parsing goes on
            self.opts.notes.append(f";; Invalid option {option}")
            return
        value: str | None = value_text or None
        shown = "+" + option.split("=", 1)[0] if option and not option.startswith("=") else word
        state = True
        if cmd[:2].lower() == "no":
            cmd, state = cmd[2:], False
        key = _match_plus(cmd) if cmd else None
        if key is None:
            if cmd.lower() == "json":
                self.opts.json = state
                return
            raise _usage(shown)
        opts = self.opts
        if key == "unsupported":
            raise Unsupported(shown)
        if key == "ignored":
            return
        if key == "all":
            for attr in ("question", "answer", "authority", "additional", "comments", "stats"):
                setattr(lookup, attr, state)
            opts.printcmd = state
        elif key in _LOOKUP_SWITCHES:
            setattr(lookup, key, state)
        elif key == "class":
            lookup.noclass = not state
        elif key == "ttlid":
            lookup.nottl = not state
        elif key == "cmd":
            opts.printcmd = state
        elif key == "cookie":
            if state and lookup.edns == -1:
                lookup.edns = 0
            lookup.cookie = state
        elif key == "dnssec":
            if state and lookup.edns == -1:
                lookup.edns = 0
            lookup.dnssec = state
        elif key == "search":
            opts.usesearch = state
        elif key == "short":
            opts.short = state
            if state:
                opts.printcmd = False
                lookup.additional = lookup.authority = lookup.question = False
                lookup.comments = lookup.stats = False
                lookup.answer = True
        elif key == "tcp":
            if not is_batch:
                lookup.tcp, lookup.tcp_set = state, True
        elif key == "edns":
            if not state:
                lookup.edns = -1
            elif value is None:
                lookup.edns = 0
            else:
                lookup.edns = _uint("edns", value, 255, 10)
        else:  # options that need a value
            if value is None or not state:
                raise _usage(shown)
            if key == "bufsize":
                lookup.bufsize = _uint("buffer size", value, 65535, 10)
            elif key == "ndots":
                opts.ndots = _uint("ndots", value, MAX_NDOTS, 10)
            elif key == "retry":
                lookup.tries = _uint("retries", value, MAX_TRIES - 1, 10) + 1
            elif key == "tries":
                lookup.tries = max(1, _uint("tries", value, MAX_TRIES, 10))
            elif key == "timeout":
                opts.timeout = max(1, _uint("timeout", value, MAX_TIMEOUT, 10))

    # -- the whole command line -----------------------------------------------------------
    def parse(
        self, argv: list[str], is_batch: bool = False, others_pending: bool = False
    ) -> list[Lookup]:
        """Parse one command line (or batch line); return the lookups it adds, in order.

        With no name at all dig asks for the root's NS records, unless lookups are pending.
        """
        opts = self.opts
        lookups: list[Lookup] = []
        lookup = opts.default.clone() if is_batch else opts.default
        need_clone = not is_batch
        firstarg = True
        open_type_class = True

        def new_lookup(name: str, current: Lookup) -> Lookup:
            nonlocal need_clone, firstarg
            target = opts.default.clone() if need_clone else current
            need_clone = True
            target.name = name
            if firstarg:
                self.greeting(argv, target)
                firstarg = False
            lookups.append(target)
            return target

        for word in argv:  # dig reads -4/-6 before anything else
            if word.startswith("-") and not word.startswith("--"):
                body = word[1:]
                flags = body[: len(body) - len(body.lstrip(SINGLE_DASH))]
                opts.ipv4only |= "4" in flags
                opts.ipv6only |= "6" in flags
        i = 0
        while i < len(argv):
            word = argv[i]
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            i += 1
            if word.startswith("%"):
                break
            if word.startswith("@"):
                server = word[1:]
                if not server or ".." in server:
                    raise DigExit(1, [f"dig: couldn't get address for '{server}': not found"])
                if opts.ipv4only and ":" in server:
                    raise DigExit(
                        1,
                        [f"dig: couldn't get address for '{server}': address family not supported"],
                    )
                lookup.servers.append(server)
                opts.addresscount = _count_addresses(server, opts.ipv4only)
            elif word.startswith("+"):
                self.plus(word, lookup, is_batch)
            elif word.startswith("-"):
                option = word[1:]
                if not option:
                    raise _usage("-")
                while option and option[0] in SINGLE_DASH:
                    flag = option[0]
                    if flag == "4":
                        opts.ipv4only = True
                    elif flag == "6":
                        opts.ipv6only = True
                    elif flag == "h":
                        from netdiag.dns import dighelp

                        raise DigExit(0, [], dighelp.lines())
                    elif flag == "v":
                        from netdiag import __version__

                        raise DigExit(0, [f"netdiag dig {__version__}"])
                    elif flag in "du":
                        raise Unsupported("-" + flag)
                    if len(option) == 1:
                        option = ""
                        break
                    option = option[1:]
                if not option:
                    continue
                flag = option[0]
                if len(option) > 1:
                    value: str | None = option[1:]
                else:
                    value = nxt
                    if value is not None:
                        i += 1
                if value is None or flag not in "cfpqtx":
                    if flag in VALUE_DASH and value is not None:
                        raise Unsupported("-" + flag)
                    raise _usage("-" + option)
                if flag == "c":
                    if lookup.rdclass_set:
                        opts.warnings.append(";; Warning, extra class option")
                    open_type_class = False
                    rdclass = _rdclass(value)
                    if rdclass is None:
                        opts.warnings.append(f";; Warning, ignoring invalid class {value}")
                    else:
                        lookup.rdclass, lookup.rdclass_set = rdclass, True
                elif flag == "t":
                    open_type_class = False
                    if value.lower().startswith("ixfr="):
                        raise Unsupported("zone transfers (AXFR/IXFR)")
                    rdtype = _rdtype(value)
                    if rdtype is None:
                        opts.warnings.append(f";; Warning, ignoring invalid type {value}")
                    else:
                        if lookup.rdtype_set:
                            opts.warnings.append(";; Warning, extra type option")
                        lookup.rdtype, lookup.rdtype_set = rdtype, True
                        _any_over_tcp(lookup)
                elif flag == "p":
                    opts.port, opts.port_set = _uint("port number", value, 65535, 1), True
                elif flag == "f":
                    opts.batchfile = value
                elif flag == "q":
                    lookup = new_lookup(value, lookup)
                elif flag == "x":
                    lookup = new_lookup(reverse_name(value), lookup)
                    if not lookup.rdtype_set:
                        lookup.rdtype = dns.rdatatype.PTR
                    if not lookup.rdclass_set:
                        lookup.rdclass = dns.rdataclass.IN
            else:
                if open_type_class:
                    if word.lower().startswith("ixfr="):
                        raise Unsupported("zone transfers (AXFR/IXFR)")
                    rdtype = _rdtype(word)
                    if rdtype is not None:
                        if lookup.rdtype_set:
                            opts.warnings.append(";; Warning, extra type option")
                        lookup.rdtype, lookup.rdtype_set = rdtype, True
                        _any_over_tcp(lookup)
                        continue
                    rdclass = _rdclass(word)
                    if rdclass is not None:
                        if lookup.rdclass_set:
                            opts.warnings.append(";; Warning, extra class option")
                        lookup.rdclass, lookup.rdclass_set = rdclass, True
                        continue
                lookup = new_lookup(word, lookup)
        if not lookups and not others_pending and (is_batch or opts.batchfile is None):
            root = new_lookup(".", lookup)
            root.rdtype, root.rdtype_set = dns.rdatatype.NS, True
        return lookups

    def greeting(self, argv: list[str], lookup: Lookup) -> None:
        """dig's banner, fixed when the first name of a command line (or batch line) is read."""
        opts = self.opts
        if not opts.printcmd:
            return
        from netdiag import __version__

        first = not opts.greeted
        text = ("\n" if first else "") + f"; <<>> netdiag {__version__} <<>>"
        text += "".join(f" {a}" for a in argv) + "\n"
        if first and opts.addresscount:
            n = opts.addresscount
            text += f"; ({n} server{'s' if n > 1 else ''} found)\n"
        if first:
            text += ";; global options:" + (" +short" if opts.short else "") + " +cmd\n"
            opts.greeted = True
        lookup.cmdline = text


def split_batch_line(line: str) -> list[str]:
    """Words of one batch-file line, as dig splits it (at most 13)."""
    return line.split()[:BATCH_MAX_ARGS]


def is_batch_skip(line: str) -> bool:
    """dig skips blank and comment lines only while looking for the first batch line."""
    return not line or line[0] in "\r\n#;"
