"""The *_FILE convention (netdiag.appenv, the one reader of MYSQL_*) and the Secret wrapper."""

import pytest

from netdiag.appenv import read
from netdiag.errors import NetdiagError
from netdiag.secrets import Secret


def test_file_twin_wins_and_one_newline_stripped(tmp_path) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n\n")
    env = {"MYSQL_PASSWORD": "from-env", "MYSQL_PASSWORD_FILE": str(f)}
    found = read("password", env)
    assert found.value == "from-file\n"
    assert found.source == "MYSQL_PASSWORD_FILE"


def test_plain_variable() -> None:
    assert read("user", {"MYSQL_USER": "todo"}).value == "todo"
    assert read("user", {"MYSQL_USER": "todo"}).source == "MYSQL_USER"
    unset = read("user", {})
    assert unset.value is None and unset.source is None
    assert unset.wanted_from == "MYSQL_USER_FILE or MYSQL_USER"


def test_renamed_variable() -> None:
    assert read("password", {"DB_PW": "x"}, variable="DB_PW").source == "DB_PW"


def test_unreadable_file_error_names_file_not_content(tmp_path) -> None:
    with pytest.raises(NetdiagError, match="cannot read secret file"):
        read("password", {"MYSQL_PASSWORD_FILE": str(tmp_path / "missing")})


def test_oversized_file_refused(tmp_path) -> None:
    f = tmp_path / "big"
    f.write_bytes(b"x" * 70000)
    with pytest.raises(NetdiagError, match="larger than"):
        read("password", {"X_FILE": str(f)}, variable="X")


def test_secret_never_renders() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) + str(s) + f"{s}" + repr([s])
    assert s.reveal() == "hunter2"
