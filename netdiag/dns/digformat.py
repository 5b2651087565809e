"""Render a DNS reply exactly as BIND dig 9.18 prints it (text), or as netdiag's JSON.

Pure: takes the parsed message, the raw reply bytes and the query facts, returns text. Record
lines follow BIND's debug master style: owner, then TTL at column 24, class at 32, type at 40
and rdata at 48, reached with tabs of width 8 (at least one space when a column is passed).
Records are printed as they came, one line each, in wire order (dig parses with
PRESERVEORDER): duplicates stay, each keeps its own TTL, and a TTL is shown as sent, even
above 2^31-1 where dnspython reads 0. ``parse`` reads a reply the way dig needs it.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from netdiag.dns import rcodes
from netdiag.dns.digargs import DigOptions, Lookup

TTL_COLUMN, CLASS_COLUMN, TYPE_COLUMN, RDATA_COLUMN, TAB = 24, 32, 40, 48, 8

OPCODES = ["QUERY", "IQUERY", "STATUS", "RESERVED3", "NOTIFY", "UPDATE"] + [
    f"RESERVED{i}" for i in range(6, 16)
]
FLAG_BITS = [
    ("qr", 0x8000),
    ("aa", 0x0400),
    ("tc", 0x0200),
    ("rd", 0x0100),
    ("ra", 0x0080),
    ("ad", 0x0020),
    ("cd", 0x0010),
]


def parse(wire: bytes) -> dns.message.Message:
    """A reply as dig reads it: one RRset per record in wire order, trailing bytes ignored,
    a TSIG kept but not verified (dig without -k). Raises dnspython's errors for bad packets."""
    return dns.message.from_wire(wire, ignore_trailing=True, one_rr_per_rrset=True, keyring=False)


def _skip_name(wire: bytes, pos: int) -> int:
    """The offset after the (possibly compressed) name at ``pos``; ValueError when cut short."""
    while True:
        if pos >= len(wire):
            raise ValueError("name runs past the end")
        length = wire[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise ValueError("extended label type")
        pos += 1 + length
        if length == 0:
            return pos


def wire_ttls(wire: bytes) -> tuple[list[list[int]], int | None] | None:
    """TTLs of the answer, authority and additional records as sent (the additional list
    without OPT and TSIG, as dnspython's sections are), and the TSIG's; None if unreadable."""
    try:
        qd, an, ns, ar = struct.unpack("!HHHH", wire[4:12])
        pos = 12
        for _ in range(qd):
            pos = _skip_name(wire, pos) + 4
        sections: list[list[int]] = [[], [], []]
        tsig_ttl = None
        for index, count in enumerate((an, ns, ar)):
            for _ in range(count):
                pos = _skip_name(wire, pos)
                rdtype, _, ttl, rdlen = struct.unpack("!HHIH", wire[pos : pos + 10])
                pos += 10 + rdlen
                if rdtype == dns.rdatatype.TSIG:
                    tsig_ttl = ttl
                elif rdtype != dns.rdatatype.OPT:
                    sections[index].append(ttl)
    except (ValueError, struct.error):
        return None
    return sections, tsig_ttl


class Answer:
    """One reply as received: the message, its raw bytes and where/how/when it came."""

    def __init__(
        self,
        message: dns.message.Message,
        wire: bytes,
        server: str,
        port: int,
        servname: str,
        transport: str,
        query_time_ms: int,
        when: float | None = None,
    ) -> None:
        self.message = message
        self.wire = wire
        self.server = server  # address the reply came from
        self.port = port
        self.servname = servname  # the server as the user named it
        self.transport = transport  # "UDP" or "TCP"
        self.query_time_ms = query_time_ms
        self.when = time.time() if when is None else when
        self.repeat_stats = False  # dig's double statistics quirk (see digquery.run_lookup)
        self.client_cookie = b""  # the COOKIE we sent, to judge the server's echo as dig does
        self._ttls: tuple[list[list[int]], int | None] | bool | None = False  # not read yet

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return struct.unpack("!HHHH", self.wire[4:12])

    def _wire_ttls(self) -> tuple[list[list[int]], int | None] | None:
        if self._ttls is False:
            self._ttls = wire_ttls(self.wire)
        return self._ttls  # type: ignore[return-value]

    def ttls(self, index: int, rrsets: list[dns.rrset.RRset]) -> list[int]:
        """The sent TTL of each record of section ``index`` (1 answer, 2 authority, 3
        additional), falling back to dnspython's when the wire and the sections disagree."""
        found = self._wire_ttls()
        if found is not None and len(found[0][index - 1]) == len(rrsets):
            return found[0][index - 1]
        return [r.ttl for r in rrsets]

    @property
    def tsig_ttl(self) -> int:
        found = self._wire_ttls()
        return (found[1] or 0) if found is not None else 0


def indent(column: int, to: int) -> tuple[str, int]:
    """Whitespace that moves from ``column`` to ``to`` the way BIND's indent() does."""
    to = max(to, column + 1)
    ntabs = to // TAB - column // TAB
    text = ""
    if ntabs > 0:
        text = "\t" * ntabs
        column = (to // TAB) * TAB
    return text + " " * (to - column), to


def _columns(fields: list[tuple[str, int | None]]) -> str:
    out, column = "", 0
    for text, target in fields:
        if target is not None:
            pad, column = indent(column, target)
            out += pad
        out += text
        column += len(text.encode())
    return out


rcode_text = rcodes.rcode_text


def type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)


def class_text(rdclass: int) -> str:
    return dns.rdataclass.to_text(rdclass)


def columns_for(nottl: bool, noclass: bool, multiline: bool = False) -> tuple[int, int, int, int]:
    """dig's (ttl, class, type, rdata) columns; omitting TTL or class pulls the rest left."""
    if multiline or (nottl and noclass):
        return 24, 24, 24, 32
    if nottl or noclass:
        return 24, 24, 32, 40
    return TTL_COLUMN, CLASS_COLUMN, TYPE_COLUMN, RDATA_COLUMN


def duration(seconds: int) -> str:
    """BIND's verbose TTL text: "1 hour", "1 minute 30 seconds", "0 seconds"."""
    parts = []
    for unit, size in (
        ("week", 604800),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
        ("second", 1),
    ):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def _base64_words(data: bytes, width: int) -> list[str]:
    """BIND's isc_base64_totext: words of ``width`` rounded down to a multiple of 4."""
    import base64

    text = base64.b64encode(data).decode()
    size = max(4, width - width % 4)
    return [text[i : i + size] for i in range(0, len(text), size)]


def tsig_text(rd: Any, rdata_col: int | None = None) -> str:
    """TSIG rdata as BIND prints it; ``rdata_col`` set means +multiline (MAC in a block)."""
    # BIND splits base64 at (width - 2): 60 on one line, 80 - rdata column with +multiline.
    if rdata_col is None:
        mac = " " + " ".join(_base64_words(rd.mac, 58)) + " "
    else:
        brk = "\n" + "\t" * (rdata_col // TAB) + " " * (rdata_col % TAB)
        mac = " (" + brk + brk.join(_base64_words(rd.mac, 80 - rdata_col - 2)) + " ) "
    error = dns.rcode.to_text(rd.error, True)
    other = " ".join(_base64_words(rd.other, 58)) if rd.other else ""
    return (
        f"{rd.algorithm.to_text()} {rd.time_signed} {rd.fudge} {len(rd.mac)}{mac}"
        f"{rd.original_id} {error} {len(rd.other)} {other}"
    )


def rdata_text(rd: Any) -> str:
    if rd.rdtype == dns.rdatatype.TSIG:
        return tsig_text(rd)
    return rd.to_text()


def multiline_rdata(rd: Any, rdata_col: int) -> str:
    """+multiline rdata: SOA split with commented fields, TSIG's MAC in a block, like BIND;
    other types on one line."""
    if rd.rdtype == dns.rdatatype.TSIG:
        return tsig_text(rd, rdata_col)
    if rd.rdtype != dns.rdatatype.SOA:
        return rd.to_text()
    brk = "\n" + "\t" * (rdata_col // TAB) + " " * (rdata_col % TAB)
    text = f"{rd.mname.to_text()} {rd.rname.to_text()} ("
    fields = [("serial", rd.serial), ("refresh", rd.refresh), ("retry", rd.retry)]
    fields += [("expire", rd.expire), ("minimum", rd.minimum)]
    for index, (name, value) in enumerate(fields):
        comment = f"; {name}" + (f" ({duration(value)})" if index else "")
        text += brk + f"{value:<10} " + comment
    return text + brk + ")"


def record_lines(
    rrset: dns.rrset.RRset,
    nottl: bool = False,
    noclass: bool = False,
    multiline: bool = False,
    ttl: int | None = None,
) -> list[str]:
    """One line per record of ``rrset``; ``ttl`` is the TTL as sent (default: dnspython's)."""
    ttl_col, class_col, type_col, rdata_col = columns_for(nottl, noclass, multiline)
    head: list[tuple[str, int | None]] = [(rrset.name.to_text(), None)]
    if not nottl:
        head.append((str(rrset.ttl if ttl is None else ttl), ttl_col))
    if not noclass:
        head.append((class_text(rrset.rdclass), class_col))
    head.append((type_text(rrset.rdtype), type_col))
    if multiline:
        return [_columns([*head, (multiline_rdata(rd, rdata_col), rdata_col)]) for rd in rrset]
    return [_columns([*head, (rdata_text(rd), rdata_col)]) for rd in rrset]


def question_line(
    rrset: dns.rrset.RRset, nottl: bool = False, noclass: bool = False, multiline: bool = False
) -> str:
    # dig prints the ";" before BIND lays out the line, so it does not count toward the columns;
    # the question always shows its class.
    _, class_col, type_col, _ = columns_for(nottl, noclass, multiline)
    name = rrset.name.to_text()
    return ";" + _columns(
        [(name, None), (class_text(rrset.rdclass), class_col), (type_text(rrset.rdtype), type_col)]
    )


def opt_lines(msg: dns.message.Message, client_cookie: bytes = b"") -> list[str]:
    if msg.opt is None:
        return []
    flags = msg.ednsflags
    text = f"; EDNS: version: {msg.edns}, flags:" + (" do" if flags & dns.flags.DO else "")
    mbz = flags & 0x7FFF
    text += f"; MBZ: 0x{mbz:04x}, udp: {msg.payload}" if mbz else f"; udp: {msg.payload}"
    lines = [";; OPT PSEUDOSECTION:", text]
    for option in msg.options:
        data = option.to_wire() or b""
        if option.otype == dns.edns.OptionType.COOKIE:
            verdict = ""
            if client_cookie and len(data) > 8:
                verdict = " (good)" if data[:8] == client_cookie else " (bad)"
            lines.append(f"; COOKIE: {data.hex()}{verdict}")
        elif option.otype == dns.edns.OptionType.NSID:
            shown = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
            lines.append(f'; NSID: {" ".join(f"{b:02x}" for b in data)} ("{shown}")')
        else:
            lines.append(f"; OPT={int(option.otype)}: {data.hex(' ').upper()}")
    return lines


def header_lines(answer: Answer, lookup: Lookup, sending: bool = False) -> list[str]:
    msg = answer.message
    qd, an, ns, ar = answer.counts
    flags = "".join(f" {name}" for name, bit in FLAG_BITS if msg.flags & bit)
    if msg.flags & 0x0040:
        flags += "; MBZ: 0x4"
    lines = [";; Sending:" if sending else ";; Got answer:"]
    if any(q.name.is_subdomain(dns.name.from_text("local.")) for q in msg.question):
        lines += [
            ";; WARNING: .local is reserved for Multicast DNS",
            ";; You are currently testing what happens when an mDNS query is leaked to DNS",
        ]
    lines += [
        f";; ->>HEADER<<- opcode: {OPCODES[msg.opcode()]}, status: {rcode_text(msg.rcode())}, id: {msg.id}",
        f";; flags:{flags}; QUERY: {qd}, ANSWER: {an}, AUTHORITY: {ns}, ADDITIONAL: {ar}",
    ]
    if sending:
        return lines
    if msg.flags & dns.flags.RD and not msg.flags & dns.flags.RA:
        lines.append(";; WARNING: recursion requested but not available")
    if (
        lookup.edns != -1
        and msg.opt is None
        and msg.rcode() in (dns.rcode.FORMERR, dns.rcode.NOTIMP)
    ):
        lines += [
            "",
            f";; WARNING: EDNS query returned status {rcode_text(msg.rcode())} - retry with '{'+nodnssec ' if lookup.dnssec else ''}+noedns'",
        ]
    return lines


def render_reply(answer: Answer, lookup: Lookup, opts: DigOptions, sending: bool = False) -> str:
    """Everything dig prints for one reply: greeting, header, sections, stats.

    With ``sending`` the message is the query itself (+qr): ";; Sending:" and its size.
    """
    out: list[str] = []
    if lookup.cmdline:
        if not opts.short and opts.printcmd:
            out.append(lookup.cmdline.removesuffix("\n"))
        lookup.cmdline = ""
    msg = answer.message
    comments = lookup.comments and not opts.short
    if comments:
        out += header_lines(answer, lookup, sending)
        out.append("")
        out += opt_lines(msg, b"" if sending else answer.client_cookie)
    sections = [
        ("QUESTION", lookup.question and not opts.short, msg.question),
        ("ANSWER", lookup.answer, msg.answer),
        ("AUTHORITY", lookup.authority and not opts.short, msg.authority),
        ("ADDITIONAL", lookup.additional and not opts.short, msg.additional),
    ]
    for index, (title, shown, rrsets) in enumerate(sections):
        if not shown or not rrsets:
            continue
        if opts.short:
            tail = (
                f" from server {answer.server} in {answer.query_time_ms} ms."
                if lookup.identify
                else ""
            )
            out += [rdata_text(rd) + tail for rrset in rrsets for rd in rrset]
            continue
        if comments:
            out.append(f";; {title} SECTION:")
        if title == "QUESTION":
            out += [
                question_line(r, lookup.nottl, lookup.noclass, lookup.multiline) for r in rrsets
            ]
        else:
            for rrset, ttl in zip(rrsets, answer.ttls(index, rrsets), strict=True):
                out += record_lines(rrset, lookup.nottl, lookup.noclass, lookup.multiline, ttl)
        if comments:
            out.append("")
    if msg.tsig is not None and lookup.additional and not opts.short:
        if comments:
            out.append(";; TSIG PSEUDOSECTION:")
        out += record_lines(
            msg.tsig, lookup.nottl, lookup.noclass, lookup.multiline, answer.tsig_ttl
        )
        if comments:
            out.append("")
    if sending:
        if lookup.stats:  # dig prints the query size even with +short
            out += [f";; QUERY SIZE: {len(answer.wire)}", ""]
    elif lookup.stats and not opts.short:
        out += stats_lines(answer) * (2 if answer.repeat_stats else 1)
    elif lookup.identify and not opts.short:
        out += [
            f";; Received {len(answer.wire)} bytes from {answer.server}#{answer.port}"
            f"({answer.servname}) in {answer.query_time_ms} ms",
            "",
        ]
    return "".join(line + "\n" for line in out)


def stats_lines(answer: Answer) -> list[str]:
    when = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(answer.when))
    return [
        f";; Query time: {answer.query_time_ms} msec",
        f";; SERVER: {answer.server}#{answer.port}({answer.servname}) ({answer.transport})",
        f";; WHEN: {when}",
        f";; MSG SIZE  rcvd: {len(answer.wire)}",
        "",
    ]


def comm_error(server: str, port: int, reason: str) -> str:
    return f";; communications error to {server}#{port}: {reason}\n"


def tcp_refused(server: str, port: int, servname: str, name: str) -> str:
    return f";; Connection to {server}#{port}({servname}) for {name} failed: connection refused.\n"


NO_SERVERS = ";; no servers could be reached\n"


def hexdump(data: bytes) -> str:
    """dig's dump of a bad packet: the size, then 16 bytes a line with their printable text."""
    lines = [f"{len(data)} bytes"]
    for start in range(0, len(data), 16):
        chunk = data[start : start + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(" ".join(f"{b:02x}" for b in chunk).ljust(57) + text)
    return "".join(line + "\n" for line in lines)


TRUNCATED = ";; Truncated, retrying in TCP mode.\n"


# -- JSON ------------------------------------------------------------------------------------
def _rrs_json(answer: Answer, index: int, rrsets: list[dns.rrset.RRset]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name.to_text(),
            "ttl": ttl,
            "class": class_text(r.rdclass),
            "type": type_text(r.rdtype),
            "data": rdata_text(rd),
        }
        for r, ttl in zip(rrsets, answer.ttls(index, rrsets), strict=True)
        for rd in r
    ]


def answer_json(answer: Answer) -> dict[str, Any]:
    msg = answer.message
    qd, an, ns, ar = answer.counts
    return {
        "header": {
            "id": msg.id,
            "opcode": OPCODES[msg.opcode()],
            "status": rcode_text(msg.rcode()),
            "rcode": msg.rcode(),
            "flags": [name for name, bit in FLAG_BITS if msg.flags & bit],
            "counts": {"query": qd, "answer": an, "authority": ns, "additional": ar},
        },
        "edns": None
        if msg.opt is None
        else {
            "version": msg.edns,
            "udp": msg.payload,
            "flags": ["do"] if msg.ednsflags & dns.flags.DO else [],
        },
        "question": [
            {"name": q.name.to_text(), "class": class_text(q.rdclass), "type": type_text(q.rdtype)}
            for q in msg.question
        ],
        "answer": _rrs_json(answer, 1, msg.answer),
        "authority": _rrs_json(answer, 2, msg.authority),
        "additional": _rrs_json(answer, 3, msg.additional),
        "server": answer.server,
        "port": answer.port,
        "server_name": answer.servname,
        "transport": answer.transport.lower(),
        "query_time_ms": answer.query_time_ms,
        "msg_size": len(answer.wire),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(answer.when)),
    }
