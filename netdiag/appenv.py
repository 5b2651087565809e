"""The todo app's MySQL settings in its environment: ``MYSQL_HOST``, ``MYSQL_USER``,
``MYSQL_PASSWORD``, ``MYSQL_DB`` and their ``*_FILE`` twins.

``read()`` is the one function that reads them; every command goes through it (targets.py for
the host, probes/settings.py for the login), so they all agree on names and precedence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from netdiag.records import record
from netdiag.secrets import read_secret_file

VARIABLES = {
    "host": "MYSQL_HOST",
    "user": "MYSQL_USER",
    "password": "MYSQL_PASSWORD",
    "database": "MYSQL_DB",
}


@record(frozen=True)
class EnvValue:
    """One setting: its value (None when unset) and the variable it came from."""

    value: str | None
    source: str | None  # e.g. "MYSQL_PASSWORD_FILE"; None when neither variable is set
    variable: str  # the plain variable's name, e.g. "MYSQL_PASSWORD"

    @property
    def wanted_from(self) -> str:
        """Where the value would come from, for a message when it is missing."""
        return f"{self.variable}_FILE or {self.variable}"


def read(
    what: str, environ: Mapping[str, str] | None = None, variable: str | None = None
) -> EnvValue:
    """The app's ``what`` (host, user, password or database); ``variable`` renames it (a checks
    file's ``password_env``). ``$VAR_FILE`` wins over ``$VAR``; the file loses one trailing
    newline; an unreadable file raises NetdiagError naming the file, never its content."""
    env = os.environ if environ is None else environ
    name = variable or VARIABLES[what]
    file_path = env.get(f"{name}_FILE")
    if file_path:
        return EnvValue(read_secret_file(file_path), f"{name}_FILE", name)
    value = env.get(name)
    return EnvValue(value, name if value is not None else None, name)
