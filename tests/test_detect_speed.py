"""How much work detection and summary do for a file of many layers: counted, never timed. A file's
thousands of layers are a few structures, and each question about a structure is asked once."""

from __future__ import annotations

import re

import pytest

from lstm_inspect import detect as detect_module
from lstm_inspect import results
from lstm_inspect.api import Checkpoint
from lstm_inspect.detect import detect
from lstm_inspect.readers.base import TensorInfo
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
    # the latter's required scope name, then TF1's foreign names and scope pattern.
    assert searches == 3 * (CELLS + HEADS)


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
