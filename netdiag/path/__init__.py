"""The path to a target: hops, path MTU and MTU black holes, built on probes/ and discovery/.

``wire`` parses ICMP errors and IP_RECVERR ancillary data (pure functions of bytes),
``probers`` sends TTL- and size-limited probes (raw sockets with NET_RAW, else the unprivileged
sockets tracepath uses), ``hops`` finds the hops, ``mtu`` the path MTU and black holes, and
``trace`` puts them together for ``netdiag path``; ``check`` sends one full-size probe first
and runs ``trace`` only when it is lost (doctor's mtu step, ``self --mtu``).
"""
