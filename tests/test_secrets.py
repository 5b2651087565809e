"""The *_FILE convention and the Secret wrapper."""

import pytest

from netdiag.errors import NetdiagError
from netdiag.secrets import Secret, env_value


def test_file_twin_wins_and_one_newline_stripped(tmp_path) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n\n")
    env = {"MYSQL_PASSWORD": "from-env", "MYSQL_PASSWORD_FILE": str(f)}
    assert env_value("MYSQL_PASSWORD", env) == "from-file\n"


def test_plain_variable() -> None:
    assert env_value("MYSQL_USER", {"MYSQL_USER": "todo"}) == "todo"
    assert env_value("MYSQL_USER", {}) is None


def test_unreadable_file_error_names_file_not_content(tmp_path) -> None:
    with pytest.raises(NetdiagError, match="cannot read secret file"):
        env_value("MYSQL_PASSWORD", {"MYSQL_PASSWORD_FILE": str(tmp_path / "missing")})


def test_oversized_file_refused(tmp_path) -> None:
    f = tmp_path / "big"
    f.write_bytes(b"x" * 70000)
    with pytest.raises(NetdiagError, match="larger than"):
        env_value("X", {"X_FILE": str(f)})


def test_secret_never_renders() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) + str(s) + f"{s}" + repr([s])
    assert s.reveal() == "hunter2"
