"""records.record and frozen_record behave as dataclasses.dataclass does, call for call."""

from __future__ import annotations

import ast
import copy
import dataclasses
import subprocess
import sys
from dataclasses import field
from pathlib import Path
from typing import ClassVar

import pytest

from lstm_inspect.records import frozen_record, record

ROOT = Path(__file__).resolve().parent.parent


def _pair(frozen: bool):
    """The same class made by dataclasses and by records."""

    def body():
        class Made:
            value: object
            source: str
            assumed: bool = False
            extra: dict = field(default_factory=dict, compare=False)
            notes: tuple = field(default_factory=tuple, repr=False)

        return Made

    real = dataclasses.dataclass(frozen=frozen)(body())
    ours = (frozen_record if frozen else record)(body())
    return real, ours


CALLS = [
    ((1, "x"), {}),
    ((1, "x", True), {}),
    ((1,), {"source": "y"}),
    ((), {"value": 1, "source": "y", "notes": [3]}),
    ((1, "x", True, {"k": 1}, [2]), {}),
    ((1, "x"), {"extra": {"a": 1}}),
    ((), {"source": "s", "value": 2, "assumed": True}),
    # Every way to get it wrong, with Python's words for it:
    ((), {}),
    ((1,), {}),
    ((1, "x", True, {}, [], 9), {}),
    ((1, "x"), {"valu": 2}),
    ((1, "x"), {"value": 2}),
    ((1,), {"assumed": True}),
    ((), {"source": "s", "unknown": 1}),
]


def _outcome(cls, args, kwargs):
    try:
        made = cls(*args, **kwargs)
    except TypeError as e:
        message = str(e)
        return "TypeError", message[message.index("(") :].split(":")[0]  # the class's name and wording aside
    return "made", repr(made).split("(", 1)[1], dataclasses.asdict(made)


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_every_call_ends_as_the_dataclass_ends(frozen, args, kwargs):
    real, ours = _pair(frozen)
    expected, got = _outcome(real, args, kwargs), _outcome(ours, args, kwargs)
    assert got[0] == expected[0] and got[2:] == expected[2:], (got, expected)
    if got[0] == "made":
        assert got[1] == expected[1]


@pytest.mark.parametrize("frozen", [False, True])
def test_equality_hashing_fields_replace_and_pickling(frozen):
    real, ours = _pair(frozen)
    for cls in (real, ours):
        a, b = cls(1, "x", extra={"ignored": 1}), cls(1, "x")
        assert a == b and a != cls(2, "x") and a.__eq__(object()) is NotImplemented
        nan = float("nan")
        assert cls(nan, "x") == cls(nan, "x")  # tuple equality: the same object is equal to itself
        assert [f.name for f in dataclasses.fields(cls)] == ["value", "source", "assumed", "extra", "notes"]
        assert dataclasses.is_dataclass(a) and dataclasses.replace(a, value=3) == cls(3, "x")
        assert copy.deepcopy(a) == a and copy.copy(a) == a  # pickle's protocol (__reduce_ex__)
        assert cls(1, "x").extra is not cls(1, "x").extra  # a fresh default each time
        assert cls.__match_args__ == ("value", "source", "assumed", "extra", "notes")
        if frozen:
            assert hash(a) == hash(b)
            with pytest.raises(dataclasses.FrozenInstanceError):
                a.value = 2  # type: ignore[misc]
            with pytest.raises(dataclasses.FrozenInstanceError):
                del a.value  # type: ignore[misc]
        else:
            with pytest.raises(TypeError, match="unhashable"):
                hash(a)
            a.value = 5
            assert a.value == 5


def test_inherited_fields_come_first_and_a_class_keeps_its_own_methods():
    @frozen_record
    class Base:
        a: int
        b: int = 2

    @frozen_record
    class Child(Base):
        c: int = 3

        def __repr__(self) -> str:
            return "mine"

    child = Child(1, c=4)
    assert (child.a, child.b, child.c) == (1, 2, 4) and repr(child) == "mine"
    assert [f.name for f in dataclasses.fields(Child)] == ["a", "b", "c"]


def test_what_a_record_does_not_model_is_refused_when_the_class_is_made():
    with pytest.raises(TypeError, match="without a default follows"):

        @record
        class Order:
            a: int = 1
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="ClassVar"):

        @record
        class Counted:
            count: ClassVar[int] = 0

    with pytest.raises(TypeError, match="all in __init__"):

        @record
        class Hidden:
            a: int = field(init=False, default=0)


def test_summary_compiles_methods_only_for_the_slotted_per_tensor_types():
    # dataclasses compiles each generated method from source (dataclasses.py _create_fn), which is
    # what a record avoids (the start-up time of every command). The types made once per tensor or
    # per layer line stay compiled, slotted dataclasses, for their faster __init__: every other
    # class summary imports is a record.
    code = (
        "import builtins, dataclasses, inspect, sys\n"
        "calls = []\n"
        "real_exec = builtins.exec\n"
        "dataclasses.exec = lambda *a, **k: (calls.append(1), real_exec(*a, **k))[1]\n"
        "from lstm_inspect.cli import main\n"
        "try:\n    main(['summary', 'fixtures/tf1_basic/model.ckpt'])\nexcept SystemExit:\n    pass\n"
        "kinds = {}\n"
        "for name, module in list(sys.modules.items()):\n"
        "    if name.startswith('lstm_inspect'):\n"
        "        for cls in vars(module).values():\n"
        "            if inspect.isclass(cls) and dataclasses.is_dataclass(cls) and cls.__module__ == name:\n"
        "                kinds[cls.__qualname__] = 'record' if cls.__init__.__module__ == 'lstm_inspect.records' "
        "else 'slots' if '__slots__' in vars(cls) else 'compiled'\n"
        "print('EXECS', len(calls), sorted(kinds.items()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    _, execs, listed = out.splitlines()[-1].split(" ", 2)
    kinds = dict(ast.literal_eval(listed))  # (name, kind) pairs
    assert "compiled" not in kinds.values(), kinds
    slotted = [name for name, kind in kinds.items() if kind == "slots"]
    assert {"TensorInfo", "TensorLine", "VariableLine"} <= set(slotted) and len(kinds) > 30, kinds
    # At most six methods each (init, repr, eq, and a frozen one's hash, setattr, delattr).
    assert 0 < int(execs) <= 6 * len(slotted), (execs, slotted)
