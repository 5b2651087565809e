"""``netdiag dig -h``: the full option list, laid out as BIND dig 9.18 lays out its own.

It lists what netdiag dig accepts (docs/dig.md#options): what it implements, what it accepts
and ignores, and, at the end, the BIND options it refuses.
"""

from __future__ import annotations

HELP = """\
Usage:  dig [@global-server] [domain] [q-type] [q-class] {q-opt}
            {global-d-opt} host [@local-server] {local-d-opt}
            [ host [@local-server] {local-d-opt} [...]]
Where:  domain	  is in the Domain Name System
        q-class  is one of (in,hs,ch,...) [default: in]
        q-type   is one of (a,any,mx,ns,soa,hinfo,txt,...) [default:a]
        q-opt    is one of:
                 -4                  (use IPv4 query transport only)
                 -6                  (use IPv6 query transport only)
                 -c class            (specify query class)
                 -f filename         (batch mode; - reads standard input)
                 -p port             (specify port number)
                 -q name             (specify query name)
                 -t type             (specify query type)
                 -x dot-notation     (shortcut for reverse lookups)
                 -i -m -n -r         (accepted for compatibility, no effect)
        d-opt    is of the form +keyword[=value], where keyword is:
                 +[no]aaflag         (Set AA flag in query)
                 +[no]additional     (Control display of additional section)
                 +[no]adflag         (Set AD flag in query (default on))
                 +[no]all            (Set or clear all display flags)
                 +[no]answer         (Control display of answer section)
                 +[no]authority      (Control display of authority section)
                 +bufsize[=###]      (Set EDNS0 Max UDP packet size)
                 +[no]cdflag         (Set checking disabled flag in query)
                 +[no]class          (Control display of class in records)
                 +[no]cmd            (Control display of command line -
                                      global option)
                 +[no]comments       (Control display of packet header
                                      and section name comments)
                 +[no]cookie         (Add a COOKIE option to the request)
                 +[no]defname        (Use search list (+[no]search))
                 +[no]dnssec         (Request DNSSEC records)
                 +[no]edns[=###]     (Set EDNS version) [0]
                 +[no]identify       (ID responders in short answers)
                 +[no]ignore         (Don't revert to TCP for TC responses.)
                 +[no]json           (netdiag: one JSON document; also --json)
                 +[no]multiline      (Print records in an expanded format)
                 +ndots=###          (Set search NDOTS value)
                 +[no]qr             (Print question before sending)
                 +[no]question       (Control display of question section)
                 +[no]raflag         (Set RA flag in query)
                 +[no]rdflag         (Recursive mode (+[no]recurse))
                 +[no]recurse        (Recursive mode (+[no]rdflag))
                 +retry=###          (Set number of UDP retries) [2]
                 +[no]search         (Set whether to use searchlist)
                 +[no]short          (Display nothing except short
                                      form of answers - global option)
                 +[no]stats          (Control display of statistics)
                 +[no]tcp            (TCP mode (+[no]vc))
                 +time=###           (Set query timeout) [5]
                 +timeout=###        (Set query timeout) [5]
                 +tries=###          (Set number of UDP attempts) [3]
                 +[no]ttlid          (Control display of ttls in records)
                 +[no]vc             (TCP mode (+[no]tcp))
        accepted and ignored: +[no]badcookie +[no]besteffort +[no]crypto +dscp
                 +[no]ednsnegotiation +[no]fail +[no]idnin +[no]idnout +[no]keepalive
                 +[no]keepopen +[no]mapped +[no]onesoa +[no]rrcomments +split
                 +[no]unexpected
        not supported (exit 1): +trace +nssearch +yaml +ttlunits +nsid +subnet
                 +ednsopt +ednsflags +expire +header-only +opcode +padding +tcflag
                 +zflag +domain +showsearch +unknownformat +expandaaaa +https* +tls*
                 +qid, AXFR/IXFR, -b -k -y -d -u
        global d-opts and servers (before host name) affect all queries.
        local d-opts and servers (after host name) affect only that lookup.
        -h                           (print help and exit)
        -v                           (print version and exit)
        netdiag: docs/dig.md in netdiag's source lists what differs from BIND dig."""


def lines() -> list[str]:
    """The help text, one line per item (printed on stdout, exit 0, as BIND dig does)."""
    return HELP.splitlines()
