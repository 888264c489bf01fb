"""`@record`: dataclasses without their start-up cost.

`dataclasses.dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` and frozen
`__setattr__` as source text and compiles it (dataclasses.py `_create_fn`): some 0.6 ms per class on
Python 3.11, and the schema, the results and the readers declare some forty of them, all imported
by `summary` and `--help`. A record gets the same methods as closures over its field names instead:
nothing compiled, a few microseconds per class, and an `__init__` call about 0.4 µs slower, which
only the per-tensor types would feel (they stay `@dataclass(slots=True)`).

A record is a dataclass to the rest of Python: it carries `__dataclass_fields__` (real
`dataclasses.Field`s), so `dataclasses.fields`, `replace`, `asdict` and `is_dataclass` work on it,
and type checkers read it as one (`dataclass_transform`, PEP 681). What it supports is what this
project uses: fields with defaults or `field(default_factory=..., compare=...)`, `frozen_record`,
field inheritance from a record base; anything else (`ClassVar`, `InitVar`, `kw_only`,
`init=False`) is refused when the class is made.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:  # typing has it from 3.11; type checkers know it from typing_extensions on 3.10 too
    from typing_extensions import dataclass_transform
elif sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # at run time it only marks the decorator for type checkers

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


_C = TypeVar("_C", bound=type)
_MISSING: Any = dataclasses.MISSING
# dataclasses.fields() keeps the Fields marked as plain fields (not ClassVar, not InitVar).
_PLAIN: Any = dataclasses._FIELD  # type: ignore[attr-defined]


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: _C) -> _C:
    """Make `cls` a dataclass, at no compile cost."""
    return _make(cls, frozen=False)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def frozen_record(cls: _C) -> _C:
    """Make `cls` a frozen dataclass (no field can be set after `__init__`), at no compile cost."""
    return _make(cls, frozen=True)


def _make(cls: Any, frozen: bool) -> Any:
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(getattr(base, "__dataclass_fields__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        fields[name] = _field(cls, name, annotation)
    methods = _methods(cls.__qualname__, fields, frozen)
    for method_name, method in methods.items():
        if method_name not in cls.__dict__:  # a method the class writes itself is kept, as dataclass keeps it
            setattr(cls, method_name, method)
    cls.__dataclass_fields__ = fields
    setattr(cls, "__match_args__", tuple(fields))  # noqa: B010  # mypy refuses the plain assignment
    return cls


def _methods(qualname: str, fields: dict[str, dataclasses.Field[Any]], frozen: bool) -> dict[str, Any]:
    compared = tuple(name for name, f in fields.items() if f.compare)
    shown = tuple(name for name, f in fields.items() if f.repr)

    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        # As tuples, as dataclass compares: an element is equal to itself first (a NaN included).
        return tuple(getattr(self, name) for name in compared) == tuple(getattr(other, name) for name in compared)

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, name) for name in compared))

    methods: dict[str, Any] = {"__init__": _init(qualname, fields), "__repr__": __repr__, "__eq__": __eq__}
    if frozen:
        methods.update(__hash__=__hash__, __setattr__=_frozen_set, __delattr__=_frozen_delete)
    else:
        methods["__hash__"] = None  # as dataclass(eq=True) does: equal by value, so not hashable
    for method_name, method in methods.items():
        if method_name in ("__init__", "__repr__", "__eq__", "__hash__") and method is not None:
            method.__qualname__ = f"{qualname}.{method_name}"
    return methods


def _init(qualname: str, fields: dict[str, dataclasses.Field[Any]]) -> Callable[..., None]:
    names = tuple(fields)
    count = len(names)
    known = fields.keys()
    defaults = [f for f in fields.values() if _has_default(f)]
    required = len(names) - len(defaults)
    if not all(_has_default(fields[name]) for name in names[required:]):
        raise TypeError(f"{qualname}: a field without a default follows one with a default")

    # Straight into the instance's dict: a frozen record's __setattr__ refuses every name.
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        given = len(args)
        if not kwargs:
            if given != count:
                if not required <= given <= count:
                    _refuse(qualname, fields, args, kwargs)
                args += tuple(_default(f) for f in defaults[given - required :])
            self.__dict__.update(zip(names, args))
            return
        values = dict(zip(names, args))
        values.update(kwargs)
        if len(values) != given + len(kwargs) or given > count or not kwargs.keys() <= known:
            _refuse(qualname, fields, args, kwargs)
        if len(values) < count:
            for f in defaults:
                if f.name not in values:
                    values[f.name] = _default(f)
            if len(values) < count:
                _refuse(qualname, fields, args, kwargs)
        self.__dict__.update(values)

    return __init__


def _field(cls: Any, name: str, annotation: object) -> dataclasses.Field[Any]:
    if str(annotation).startswith(("ClassVar", "InitVar", "typing.ClassVar", "dataclasses.InitVar")):
        raise TypeError(f"{cls.__name__}.{name}: a record has no ClassVar or InitVar fields")
    declared = cls.__dict__.get(name, _MISSING)
    made = declared if isinstance(declared, dataclasses.Field) else dataclasses.field(default=declared)
    if not made.init or made.kw_only is True:
        raise TypeError(f"{cls.__name__}.{name}: a record's fields are all in __init__, positional or not")
    if isinstance(declared, dataclasses.Field):
        if made.default is _MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, made.default)
    made.name = name
    made.type = annotation  # type: ignore[assignment]
    made._field_type = _PLAIN  # type: ignore[attr-defined,union-attr]
    return made


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not _MISSING or f.default_factory is not _MISSING


def _default(f: dataclasses.Field[Any]) -> Any:
    return f.default if f.default is not _MISSING else f.default_factory()  # type: ignore[misc,operator]


def _refuse(
    qualname: str, fields: dict[str, dataclasses.Field[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> NoReturn:
    """The TypeError Python raises for arguments that do not fit `fields`: too many, unknown,
    repeated or missing."""
    names = tuple(fields)
    if len(args) > len(names):
        given = len(args) + 1
        raise TypeError(f"{qualname}.__init__() takes {len(names) + 1} positional arguments but {given} were given")
    for key in kwargs:
        if key not in fields:
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {key!r}")
        if key in names[: len(args)]:
            raise TypeError(f"{qualname}.__init__() got multiple values for argument {key!r}")
    missing = next(name for name in names[len(args) :] if name not in kwargs and not _has_default(fields[name]))
    raise TypeError(f"{qualname}.__init__() missing required argument: {missing!r}")


def _frozen_set(self: Any, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delete(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
