"""The library's face: lazy names that type checkers see too, one call per command returning a
result object with to_dict(), typed layer properties, and submodules reachable from the package."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect.cli import main

from .conftest import FIXTURES

BASIC = FIXTURES / "tf1_basic" / "model.ckpt"


def test_lazy_names_are_the_names_type_checkers_are_shown():
    source = Path(lstm_inspect.__file__).read_text()
    tree = ast.parse(source)
    checked: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                checked.update(alias.asname or alias.name for alias in statement.names)  # type: ignore[attr-defined]
    lazy = set(lstm_inspect._LAZY_NAMES) | lstm_inspect._LAZY_MODULES
    assert checked == lazy
    assert lazy <= set(lstm_inspect.__all__)
    for name in lazy:
        assert getattr(lstm_inspect, name) is not None


def test_submodules_work_after_import_lstm_inspect_alone():
    # The README's `lstm_inspect.numpy_lstm.run_lstm(...)` with nothing imported beforehand.
    code = (
        "import lstm_inspect, numpy as np\n"
        f"ckpt = lstm_inspect.load({str(BASIC)!r})\n"
        "layer = ckpt.layers[0]\n"
        "h, c = lstm_inspect.numpy_lstm.run_lstm(layer.gates(), np.zeros((2, 1, 12)), forget_bias=layer.forget_bias)\n"
        "print(h.shape, c.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(2, 1, 64) (1, 64)"


def test_every_command_is_one_call_returning_a_result_with_to_dict(tmp_path):
    with lstm_inspect.load(BASIC) as ckpt:
        summary = ckpt.summary()
        assert summary.layers[0].units == 64 and json.dumps(summary.to_dict())
        split = ckpt.split(gates=["forget"], parts=["bias"])
        (layer,) = list(split.layers)
        assert [(b.gate, b.part) for b in layer.blocks] == [("forget", "bias")]
        exported = ckpt.export(str(tmp_path / "x.npz"), layout="pytorch")
        assert exported.to_dict()["layers"] == ["rnn/basic_lstm_cell"] and exported.layout == "pytorch"
        with np.load(tmp_path / "x.npz") as npz:
            assert npz["weight_ih_l0"].shape == (256, 12)
        verified = ckpt.verify()
        assert verified.ok and json.dumps(verified.to_dict())


def test_layer_properties_are_typed_attributes_not_a_passthrough():
    with lstm_inspect.load(BASIC) as ckpt:
        layer = ckpt.layers[0]
        assert (layer.input_size, layer.units, layer.recurrent_size, layer.projection_size) == (12, 64, 64, None)
        # tf1_basic's .meta graph names the class and shows the forget bias (issue 11).
        assert layer.layout.letters == "ijfo" and layer.cell == "BasicLSTMCell"
        forget_bias = layer.settings["forget_bias"]
        assert forget_bias.value == 1.0 and not forget_bias.assumed and forget_bias.source.startswith("graph: ")
        assert not hasattr(type(layer), "__getattr__")


def test_export_json_prints_its_result(tmp_path):
    out = tmp_path / "g.npz"
    result = CliRunner().invoke(main, ["export", str(BASIC), "-o", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["path"] == str(out) and data["layout"] == "gates" and data["arrays"] == 13
    assert data["bytes"] == sum(a.nbytes for a in np.load(out).values())
