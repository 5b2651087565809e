"""Secret values and secret files, read the way the todo app reads them.

A ``Secret`` never renders its value: repr, str and JSON all show ``***``. The app's variables
and their ``*_FILE`` twins are read by netdiag.appenv.
"""

from __future__ import annotations

from netdiag.errors import NetdiagError

MAX_SECRET_BYTES = 64 * 1024


class Secret:
    """A value that must not appear in output; call ``reveal()`` only where it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def read_secret_file(path: str) -> str:
    """File content with one trailing newline stripped; errors name the file, never its content."""
    from netdiag.files import read_bounded

    try:
        data = read_bounded(path, MAX_SECRET_BYTES)
    except OSError as exc:
        raise NetdiagError(f"cannot read secret file {path}: {exc.strerror}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise NetdiagError(f"secret file {path} is larger than {MAX_SECRET_BYTES} bytes")
    text = data.decode("utf-8", errors="replace")
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def redact(text: str, *secrets: Secret | str | None) -> str:
    """``text`` with every occurrence of each secret value replaced by ``***``."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            text = text.replace(value, "***")
    return text
