"""netdiag.records: the @dataclass subset the start-up paths use, checked against @dataclass."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from netdiag.records import FrozenRecordError, as_dict, field, record


@record
class Plain:
    name: str
    count: int = 0
    tags: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "plain"


@record(frozen=True)
class Frozen:
    host: str
    port: int | None = None


@dataclasses.dataclass
class Twin:
    name: str
    count: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


def test_init_repr_eq_match_dataclass() -> None:
    a, b = Plain("x", 2, ["t"]), Twin("x", 2, ["t"])
    assert repr(a) == repr(b).replace("Twin", "Plain")
    assert Plain("x") == Plain("x", 0, []) and Plain("x") != Plain("y")
    assert Plain("x") != Twin("x")  # another class is never equal
    assert as_dict(a) == dataclasses.asdict(b)
    assert Plain(name="n", tags=["a"]).tags == ["a"]
    with pytest.raises(TypeError):
        Plain()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Plain("x", 1, [], 4)  # type: ignore[call-arg]


def test_factories_are_fresh_and_classvars_are_not_fields() -> None:
    a, b = Plain("a"), Plain("b")
    a.tags.append("t")
    assert b.tags == [] and "tags" not in vars(Plain)
    assert Plain.__record_fields__ == ("name", "count", "tags") and Plain.kind == "plain"
    with pytest.raises(TypeError):
        hash(a)  # mutable and compared by value, as @dataclass


def test_frozen_is_hashable_and_read_only() -> None:
    f = Frozen("db", 3306)
    assert hash(f) == hash(Frozen("db", 3306)) and {f, Frozen("db", 3306)} == {f}
    with pytest.raises(FrozenRecordError):
        f.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del f.host  # type: ignore[misc]


def test_default_before_required_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default field"):

        @record
        class Bad:
            a: int = 1
            b: int  # type: ignore[misc]
