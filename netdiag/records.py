"""``@record``: the part of ``@dataclass`` that the start-up paths use, without its import.

``import dataclasses`` pulls in inspect, ast, dis and tokenize: about 8 ms here, more than the
rest of ``netdiag check tcp://...`` (see bench/startup). The classes every probe and health check
builds (Target, ProbeResult, ProbeOptions, Check, Outcome) are declared with ``@record``
instead: annotated fields, optional defaults, ``field(default_factory=...)`` for mutable ones.
It gives ``__init__`` (same signature as @dataclass), ``__repr__`` and ``__eq__``, and with
``frozen=True`` ``__hash__`` and no assignment. Everything else keeps @dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda f: f


C = TypeVar("C", bound=type)
_FACTORY = "_record_factory"


class _Field:
    __slots__ = ("default_factory",)

    def __init__(self, default_factory: Callable[[], Any]) -> None:
        self.default_factory = default_factory


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is made fresh for every instance (``list``, ``dict``, ...)."""
    return _Field(default_factory)


class FrozenRecordError(AttributeError):
    """Assignment to a field of a frozen record."""


def _fields_of(cls: type) -> tuple[list[str], dict[str, Any]]:
    names: list[str] = list(getattr(cls, "__record_fields__", ()))
    defaults: dict[str, Any] = dict(getattr(cls, "__record_defaults__", {}))
    # not inspect.get_annotations: importing inspect is what this module avoids
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    for name, annotation in own.items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        if name not in names:
            names.append(name)
        if name in cls.__dict__:
            value = cls.__dict__[name]
            defaults[name] = value
            if isinstance(value, _Field):
                delattr(cls, name)  # as @dataclass does: no shared mutable class attribute
        elif name in defaults:
            del defaults[name]
    seen_default = False
    for name in names:
        if name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: non-default field {name!r} follows a default")
    return names, defaults


def _make_init(cls: type, names: list[str], defaults: dict[str, Any], frozen: bool) -> None:
    env: dict[str, Any] = {_FACTORY: _Field, "__setattr": object.__setattr__}
    params, body = [], []
    for name in names:
        if name in defaults:
            default = defaults[name]
            env[f"_d_{name}"] = default
            params.append(f"{name}=_d_{name}")
            if isinstance(default, _Field):
                env[f"_f_{name}"] = default.default_factory
                value = f"_f_{name}() if {name} is _d_{name} else {name}"
            else:
                value = name
        else:
            params.append(name)
            value = name
        body.append(
            f"    __setattr(self, {name!r}, {value})" if frozen else f"    self.{name} = {value}"
        )
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    exec(source, env)  # one small generated function per class, as @dataclass does
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init


@dataclass_transform(field_specifiers=(field,))
def record(cls: C | None = None, *, frozen: bool = False) -> Any:
    """Make ``cls`` a record: ``@record`` or ``@record(frozen=True)``."""

    def wrap(cls: C) -> C:
        names, defaults = _fields_of(cls)
        cls.__record_fields__ = tuple(names)
        cls.__record_defaults__ = defaults
        _make_init(cls, names, defaults, frozen)

        def values(self: Any) -> tuple[Any, ...]:
            return tuple(getattr(self, n) for n in names)

        def __repr__(self: Any) -> str:
            inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
            return f"{type(self).__qualname__}({inner})"

        def __eq__(self: Any, other: object) -> bool:
            if other.__class__ is not self.__class__:
                return NotImplemented
            return values(self) == values(other)

        cls.__repr__ = __repr__
        cls.__eq__ = __eq__
        if frozen:

            def __setattr__(self: Any, name: str, value: Any) -> None:
                raise FrozenRecordError(f"cannot assign to field {name!r}")

            def __delattr__(self: Any, name: str) -> None:
                raise FrozenRecordError(f"cannot delete field {name!r}")

            cls.__setattr__ = __setattr__
            cls.__delattr__ = __delattr__
            cls.__hash__ = lambda self: hash(values(self))
        else:
            cls.__hash__ = None  # mutable and compared by value: unhashable, as @dataclass
        return cls

    return wrap if cls is None else wrap(cls)


def as_dict(obj: Any) -> dict[str, Any]:
    """A record's fields as a dict (shallow)."""
    return {n: getattr(obj, n) for n in obj.__record_fields__}


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of the record ``obj`` with ``changes`` applied (``dataclasses.replace`` for records)."""
    unknown = set(changes) - set(obj.__record_fields__)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(unknown)}")
    return type(obj)(**{**as_dict(obj), **changes})
