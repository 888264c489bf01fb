"""How much work detection and summary do for a file of many layers: counted, never timed. A file's
thousands of layers are a few structures, and each question about a structure is asked once."""

from __future__ import annotations

import random
import re

import pytest

from lstm_inspect import detect as detect_module
from lstm_inspect import results
from lstm_inspect.api import Checkpoint
from lstm_inspect.detect import detect
from lstm_inspect.readers import tf_bundle
from lstm_inspect.readers.base import TensorInfo
from lstm_inspect.readers.protobuf import Malformed
from lstm_inspect.schema import SOURCE_LAYOUTS

CELLS = 200
HEADS = 300


def many_layers() -> dict[str, TensorInfo]:
    """CELLS TF1 cells of two sizes, HEADS dense layers shaped like cells, every one with Adam slots."""
    shapes: dict[str, tuple[int, ...]] = {"global_step": ()}
    for i in range(CELLS):
        units = 24 if i % 2 else 8
        scope = f"encoder/cell_{i}/lstm_cell"
        shapes |= {f"{scope}/kernel": (16 + units, 4 * units), f"{scope}/bias": (4 * units,)}
    for i in range(HEADS):
        shapes |= {f"heads/head_{i}/dense/kernel": (24, 96), f"heads/head_{i}/dense/bias": (96,)}
    for name, shape in list(shapes.items()):
        if name != "global_step":
            shapes |= {f"{name}/Adam": shape, f"{name}/Adam_1": shape}
    return {name: TensorInfo(name, shape, "int64" if not shape else "float32", name) for name, shape in shapes.items()}


class Counted:
    """A function's stand-in that counts its calls and passes them on."""

    def __init__(self, function):
        self.function = function
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


def test_what_is_found_among_many_layers():
    found = detect(many_layers())
    assert [layer.name for layer in found.layers] == [f"encoder/cell_{i}/lstm_cell" for i in range(CELLS)]
    assert [(layer.input_size, layer.units) for layer in found.layers[:2]] == [(16, 8), (16, 24)]
    categories = [v.category for v in found.variables]
    assert categories.count("model") == 2 * HEADS and categories.count("bookkeeping") == 1
    assert categories.count("optimizer") == 4 * (CELLS + HEADS)


def test_each_layer_structure_is_solved_once(monkeypatch):
    solve = Counted(detect_module.solve)
    monkeypatch.setattr(detect_module, "solve", solve)
    found = detect(many_layers())
    assert len(found.layers) == CELLS
    assert solve.calls == 2  # two sizes of cell; the dense layers fail the scope rule before solving
    # Each layer has sizes of its own: what one caller changes is no other layer's.
    found.layers[0].sizes["units"] = -1
    assert found.layers[2].sizes["units"] == 8


def test_each_leaf_name_set_is_claimed_once_per_layout(monkeypatch):
    claim = Counted(detect_module._claim)
    monkeypatch.setattr(detect_module, "_claim", claim)
    detect(many_layers())
    # The cells and the dense layers both hold {kernel, bias}: one set, asked of every layout once.
    assert claim.calls == len(SOURCE_LAYOUTS)


def test_scope_rules_are_searched_only_for_the_layouts_that_claim_a_scope(monkeypatch):
    searches = 0
    compiled = detect_module._pattern

    class CountingPattern:
        def __init__(self, pattern: re.Pattern[str]):
            self.pattern = pattern

        def search(self, text: str):
            nonlocal searches
            searches += 1
            return self.pattern.search(text)

    monkeypatch.setattr(detect_module, "_pattern", lambda expression: CountingPattern(compiled(expression)))
    found = detect(many_layers())
    assert len(found.layers) == CELLS
    # Two layouts claim {kernel, bias} (TF1's and CudnnCompatibleLSTMCell's), of the 17 tried:
    # the latter's required scope name, then TF1's foreign names and scope pattern. Only the last is
    # searched scope by scope: the other two need text no name holds ("cudnn_compatible_lstm_cell";
    # "gru", "gates" or "candidate"), which one search of all the names finds nowhere.
    assert searches == CELLS + HEADS
    # A name holding "gru" anywhere: TF1's foreign names are searched in every scope again.
    searches = 0
    found = detect({**many_layers(), "gru_counter": TensorInfo("gru_counter", (), "int64")})
    assert len(found.layers) == CELLS
    assert searches == 2 * (CELLS + HEADS)


def test_the_text_a_scope_rule_needs_is_in_every_name_it_matches():
    # Each rule detection searches scopes with, and names made to match them or nearly.
    expressions = {
        expression
        for layout in [*SOURCE_LAYOUTS, *(cell.layout for cell in detect_module.UNMODELLED)]
        for expression in (layout.scope_required, layout.scope_pattern, layout.cell.foreign_scope)
        if expression is not None
    }
    names = [
        "rnn/cudnn_compatible_lstm_cell",
        "a/CudnnCompatibleLSTMCell_1",
        "x/GRU",
        "Gru_cell",
        "enc/gates",
        "enc/Gates/Linear",
        "candidate",
        "LSTM",
        "bi/lstM_2",
        "a/layer_norm_basic_lstm_cell_3",
        "coupled_input_forget_gate_lstm_cell/x",
        "dense",
        "ſtep",  # U+017F, which IGNORECASE takes for "s"
        "lſtm",
    ]
    assert len(expressions) >= 4
    for expression in expressions:
        texts, ignore_case = detect_module._required_text(expression)
        for name in names:
            if re.search(expression, name):
                flags = re.IGNORECASE if ignore_case else 0
                assert not texts or any(re.search(re.escape(text), name, flags) for text in texts), (expression, name)
    required = detect_module._required_text
    assert required(r"(^|/)cudnn_compatible_lstm_cell[^/]*$") == (("cudnn_compatible_lstm_cell",), False)
    assert required(r"(?i)(gru|(^|/)(gates|candidate)$)") == (("gru", "gates", "candidate"), True)
    # A group with flags of its own, and alternatives of which one needs nothing, are not read.
    assert required(r"(?i:lstm)") == ((), False)
    assert required(r"(gru|x*)") == ((), False)


@pytest.mark.parametrize(
    "name, searched",
    [
        ("enc/GRU_counter", True),  # another case: ASCII names are compared lower-cased
        ("enc/gru", True),
        ("enc/gatez", False),  # no text it needs
        ("enc/ſtep", True),  # not ASCII: no shortcut, every scope searched
    ],
)
def test_names_holding_the_needed_text_in_any_case_make_every_scope_searched(name, searched):
    asked = detect_module._Asked(detect_module._joined(["enc/lstm_cell/kernel", name]))
    assert asked.possible(r"(?i)(gru|(^|/)(gates|candidate)$)") is searched
    assert asked.possible(r"(^|/)cudnn_compatible_lstm_cell[^/]*$") is False


class _Store:
    path, format = "many", "test"

    def __init__(self, tensors: dict[str, TensorInfo]):
        self._tensors = tensors

    def tensors(self) -> dict[str, TensorInfo]:
        return self._tensors

    def layer_configs(self) -> dict:
        return {}

    def layer_hints(self) -> dict:
        return {}


def test_each_layer_structure_is_explained_once(monkeypatch):
    explain = Counted(results.explain_role)
    monkeypatch.setattr(results, "explain_role", explain)
    summary = Checkpoint(_Store(many_layers())).summary()  # type: ignore[arg-type]
    assert explain.calls == 4  # kernel and bias, of two sizes
    first, second = summary.layers[:2]
    assert [line.explanation for line in first.tensors] == [
        "kernel [24, 32] = [16 input + 8 recurrent, 4 gates × 8 units]",
        "bias [32] = [4 gates × 8 units]",
    ]
    assert second.tensors[0].name == "encoder/cell_1/lstm_cell/kernel"
    assert second.tensors[0].explanation == "kernel [40, 96] = [16 input + 24 recurrent, 4 gates × 24 units]"
    assert summary.layers[2].tensors[0].explanation == first.tensors[0].explanation


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("a/global_step", "bookkeeping"),
        ("global_step\n", "bookkeeping"),  # `$` matches before a final newline, as it always did
        ("global_step\n/x", "model"),
        ("a/iterations/b", "bookkeeping"),
        ("a/xiter", "model"),
        ("beta1_power_3", "bookkeeping"),
        ("beta1_power_", "model"),
        ("/step", "bookkeeping"),
        ("step/", "bookkeeping"),
        ("a/stepper", "model"),
    ],
)
def test_bookkeeping_names_are_whole_components(name, category):
    assert detect_module.categorize(name, "float32") == category


# ---- an index entry, read by tf_bundle's path for what TF writes and by the general decoder ---------


def _varint(number: int, padding: int = 0) -> bytes:
    """Base-128, with `padding` redundant continuation bytes (a longer encoding of the same number)."""
    out = bytearray()
    while True:
        out.append(number & 0x7F | (0x80 if number > 0x7F or padding else 0))
        number >>= 7
        if not number:
            break
    out[-1:] = bytes([out[-1] | 0x80 if padding else out[-1]]) + b"\x80" * (padding - 1) + b"\x00" * bool(padding)
    return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


_NUMBERS = [
    0,
    1,
    5,
    127,
    128,
    300,
    2**14,
    2**21 - 1,
    2**28 + 3,
    2**49,
    2**56 - 1,
    2**56,
    2**62,
    2**63 - 1,
    2**63,
    2**64 - 1,
]


def _random_entry(rng: random.Random) -> bytes:
    """A BundleEntryProto as TF writes one, or one of the records near that form."""
    dims = b"".join(
        _field(2, 2, _varint(len(d)) + d)
        for d in (_field(1, 0, _varint(n)) for n in rng.sample(_NUMBERS[:9], rng.randrange(4)))
    )
    fields = [
        _field(1, 0, _varint(rng.choice([1, 3, 19, 101, 127, 128, 300]))),
        _field(2, 2, _varint(len(dims)) + dims),
        *(_field(number, 0, _varint(rng.choice(_NUMBERS), rng.choice([0] * 6 + [1, 2, 5]))) for number in (3, 4, 5)),
        _field(6, 5, rng.randbytes(4)),
    ]
    fields = [f for f in fields if rng.random() < 0.9]  # proto3 leaves a field of 0 out
    kind = rng.randrange(8)
    if kind == 0:
        rng.shuffle(fields)
    elif kind == 1 and fields:
        fields.insert(rng.randrange(len(fields) + 1), rng.choice(fields))
    elif kind == 2:
        fields.insert(
            rng.randrange(len(fields) + 1), rng.choice([_field(9, 0, b"\x05"), _field(7, 2, b"\x02\x0a\x00")])
        )
    record = b"".join(fields)
    if kind == 3:
        record = record[: rng.randrange(len(record) + 1)]
    elif kind == 4 and record:
        at = rng.randrange(len(record))
        record = record[:at] + bytes([rng.randrange(256)]) + record[at + 1 :]
    return record


def _outcome(parse, record: bytes) -> tuple:
    try:
        entry = parse(record)
    except Malformed:  # which problem it names may differ: _parse_entry reads the shape first
        return ("malformed",)
    return (entry.dtype, entry.shape, entry.shard_id, entry.offset, entry.size, entry.crc32c, entry.slices)


def test_an_index_entry_reads_the_same_on_either_path(monkeypatch):
    """_parse_entry reads the records TF writes itself and leaves every other to the general decoder:
    the two read the same from records of that form and of the forms near it (numbers of 1 to 11
    bytes, 0s left out, fields repeated, out of order or unknown, slices, records cut short or
    damaged), and refuse the same."""
    rng = random.Random(13)
    records = [_random_entry(rng) for _ in range(4000)]
    general = Counted(tf_bundle._parse_entry_fields)
    monkeypatch.setattr(tf_bundle, "_parse_entry_fields", general)
    outcomes = [_outcome(tf_bundle._parse_entry, record) for record in records]
    read_alone = len(records) - general.calls
    monkeypatch.undo()
    assert outcomes == [_outcome(tf_bundle._parse_entry_fields, record) for record in records]
    # Both paths are taken, and both succeed and refuse.
    assert 400 < read_alone < 3600
    assert 500 < sum(outcome[0] == "malformed" for outcome in outcomes) < 3500
