"""Render a DNS reply exactly as BIND dig 9.18 prints it (text), or as netdiag's JSON.

Pure: takes the parsed message, the raw reply bytes and the query facts, returns text. Record
lines follow BIND's debug master style: owner, then TTL at column 24, class at 32, type at 40
and rdata at 48, reached with tabs of width 8 (at least one space when a column is passed).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
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

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return struct.unpack("!HHHH", self.wire[4:12])


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


def rcode_text(rcode: int) -> str:
    try:
        text = dns.rcode.to_text(rcode)
    except Exception:
        text = str(rcode)
    return "?" + text if text.isdigit() else text


def type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)


def class_text(rdclass: int) -> str:
    return dns.rdataclass.to_text(rdclass)


def grouped(rrsets: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """RRsets in BIND's print order: by owner name in order of first appearance."""
    by_name: dict[dns.name.Name, list[dns.rrset.RRset]] = {}
    for rrset in rrsets:
        by_name.setdefault(rrset.name, []).append(rrset)
    return [r for group in by_name.values() for r in group]


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


def multiline_rdata(rd: Any, rdata_col: int) -> str:
    """+multiline rdata: SOA split with commented fields, like BIND; other types on one line."""
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
    rrset: dns.rrset.RRset, nottl: bool = False, noclass: bool = False, multiline: bool = False
) -> list[str]:
    ttl_col, class_col, type_col, rdata_col = columns_for(nottl, noclass, multiline)
    head: list[tuple[str, int | None]] = [(rrset.name.to_text(), None)]
    if not nottl:
        head.append((str(rrset.ttl), ttl_col))
    if not noclass:
        head.append((class_text(rrset.rdclass), class_col))
    head.append((type_text(rrset.rdtype), type_col))
    if multiline:
        return [_columns([*head, (multiline_rdata(rd, rdata_col), rdata_col)]) for rd in rrset]
    return [_columns([*head, (rd.to_text(), rdata_col)]) for rd in rrset]


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
    for title, shown, rrsets in sections:
        if not shown or not rrsets:
            continue
        if opts.short:
            tail = (
                f" from server {answer.server} in {answer.query_time_ms} ms."
                if lookup.identify
                else ""
            )
            out += [rd.to_text() + tail for rrset in grouped(rrsets) for rd in rrset]
            continue
        if comments:
            out.append(f";; {title} SECTION:")
        if title == "QUESTION":
            out += [
                question_line(r, lookup.nottl, lookup.noclass, lookup.multiline) for r in rrsets
            ]
        else:
            for rrset in grouped(rrsets):
                out += record_lines(rrset, lookup.nottl, lookup.noclass, lookup.multiline)
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
def _rrs_json(rrsets: Iterable[dns.rrset.RRset]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name.to_text(),
            "ttl": r.ttl,
            "class": class_text(r.rdclass),
            "type": type_text(r.rdtype),
            "data": rd.to_text(),
        }
        for r in grouped(rrsets)
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
        "answer": _rrs_json(msg.answer),
        "authority": _rrs_json(msg.authority),
        "additional": _rrs_json(msg.additional),
        "server": answer.server,
        "port": answer.port,
        "server_name": answer.servname,
        "transport": answer.transport.lower(),
        "query_time_ms": answer.query_time_ms,
        "msg_size": len(answer.wire),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(answer.when)),
    }
