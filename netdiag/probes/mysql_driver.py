"""PyMySQL for the credential login, guarded: every read after the greeting is bounded, and
the password never goes out in clear text.

Imported only when a login is made (PyMySQL costs ~30 ms to import).
"""

from __future__ import annotations

from typing import Any

import pymysql

# A login, SELECT VERSION() and a LIMIT 0 table check exchange packets of a few hundred bytes
# (an RSA public key for caching_sha2_password is under 1 KiB); anything near these limits is
# not the answer to what we asked.
MAX_PACKET = 16 * 1024
MAX_TOTAL = 256 * 1024

# Plugins that send the password itself: acceptable only inside TLS (as the mysql client
# without --enable-cleartext-plugin). MariaDB's "dialog" answers a "Password: " prompt in clear.
CLEARTEXT_PLUGINS = {b"mysql_clear_password", b"dialog"}


class OversizedReply(Exception):
    """The server announced more than the bounds above; nothing of it was read."""

    def __init__(self, size: int, limit: int, total: bool) -> None:
        what = "in all after the greeting" if total else "per packet"
        super().__init__(f"the server sent a {size}-byte packet (at most {limit} read {what})")


class CleartextRefused(Exception):
    """The server asked for the password in clear on a connection without TLS."""

    def __init__(self, plugin: str) -> None:
        super().__init__(plugin)
        self.plugin = plugin


class GuardedConnection(pymysql.connections.Connection):
    """A PyMySQL connection with a read budget and no cleartext authentication without TLS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.netdiag_left = MAX_TOTAL

    def _read_bytes(self, num_bytes: int) -> bytes:
        if num_bytes > MAX_PACKET or num_bytes > self.netdiag_left:
            self._force_close()
            total = num_bytes <= MAX_PACKET
            raise OversizedReply(num_bytes, MAX_TOTAL if total else MAX_PACKET, total)
        self.netdiag_left -= num_bytes
        return super()._read_bytes(num_bytes)

    def _process_auth(self, plugin_name: bytes, auth_packet: Any, handler: Any = None) -> Any:
        if plugin_name in CLEARTEXT_PLUGINS and not self._secure:
            self._force_close()
            raise CleartextRefused(plugin_name.decode("ascii", errors="replace"))
        return super()._process_auth(plugin_name, auth_packet, handler)
