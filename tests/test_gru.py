"""GRU layers (issue 17): a second cell kind through the same schema. Every GRU fixture the frameworks
made (manifest "gru_fixtures") is detected as what was built; its split blocks, run by the numpy GRU,
and every export target, run by its own framework, reproduce the framework's outputs; the targets
that cannot express a layer say why; GRU and LSTM shapes never cross."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import replace

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect import export, schema
from lstm_inspect.detect import detect
from lstm_inspect.errors import UnknownName, UnsupportedFormat, UsageError
from lstm_inspect.export import gate_arrays
from lstm_inspect.numpy_cells import run as run_numpy
from lstm_inspect.numpy_gru import run_gru
from lstm_inspect.readers.base import LayerConfig, TensorInfo
from lstm_inspect.results import summarize
from lstm_inspect.schema import GRU, LSTM, explain, solve
from lstm_inspect.targets import TARGETS
from lstm_inspect.weights import Weights, merge_biases
from lstm_inspect.writers.npz import write_npz
from lstm_inspect.writers.onnx_model import write_onnx

from .conftest import FIXTURES
from .test_cli import assert_clean_error, golden, run
from .test_fixtures import test_native_reader_matches_tensorflow_bit_for_bit as native_reader_matches_tensorflow
from .test_slicer import MemoryStore
from .test_targets import ATOL, RTOL, check_unit_outputs, export_npz, export_units, load_fixture, refused, run_tf1_cell

ENTRIES = json.loads((FIXTURES / "manifest.json").read_text())["gru_fixtures"]
IDS = [e["name"] for e in ENTRIES]
TF1_GRU = str(FIXTURES / "tf1_gru" / "model.ckpt")
KERAS2_GRU = str(FIXTURES / "keras2_gru" / "model.h5")
KERAS3_GRU = str(FIXTURES / "keras3_gru" / "model.keras")


def infos(*items: tuple[str, tuple[int, ...]]) -> dict[str, TensorInfo]:
    return {name: TensorInfo(name, shape, "float32", name) for name, shape in items}


def as_built(layer, expected) -> Weights:
    """The layer's weights with the activations the framework built it with (a bare weights file
    does not say them)."""
    return replace(
        layer.weights(), activation=expected["activation"], recurrent_activation=expected["recurrent_activation"]
    )


def assert_reproduces(got, reference, key: str) -> None:
    h, c = got
    np.testing.assert_allclose(h, reference[f"{key}/h"], atol=ATOL, rtol=RTOL, err_msg=f"{key} h")
    np.testing.assert_allclose(c, reference[f"{key}/c"], atol=ATOL, rtol=RTOL, err_msg=f"{key} c")


# ---- every fixture: what the framework built, and its outputs ----------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_summary_matches_what_the_framework_built(entry):
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        summary = summarize(ckpt)
    got = {layer.name: layer for layer in summary.layers}
    assert sorted(got) == sorted(layer["name"] for layer in entry["layers"])
    for expected in entry["layers"]:
        layer = got[expected["name"]]
        assert (layer.input_size, layer.units, layer.recurrent_size) == (
            expected["input_size"],
            expected["units"],
            expected["recurrent_size"],
        )
        assert (layer.params, layer.gate_order, layer.forget_bias) == (
            expected["params"],
            expected["gate_order"],
            expected["forget_bias"],
        )
        if "reset_after" in expected:
            assert layer.kind == "GRU"
            assert layer.variants["reset_after"].value == expected["reset_after"]
        else:
            assert layer.kind == "LSTM" and layer.variants == {}
    assert summary.total_params == entry["total_params"]


TF_CHECKPOINTS = [e for e in ENTRIES if e["format"] == "tf-checkpoint"]


@pytest.mark.parametrize("entry", TF_CHECKPOINTS, ids=[e["name"] for e in TF_CHECKPOINTS])
def test_native_reader_matches_tensorflow_bit_for_bit(entry):
    native_reader_matches_tensorflow(entry)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_split_blocks_run_by_the_numpy_cell_reproduce_framework_outputs(entry):
    reference = np.load(FIXTURES / entry["reference"])
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        for expected in entry["layers"]:
            layer = ckpt.layer(expected["name"])
            key = expected["reference_key"]
            assert_reproduces(run_numpy(as_built(layer, expected), reference[f"{key}/x"]), reference, key)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_a_gates_export_reads_back_as_the_layers_it_came_from(entry, tmp_path):
    reference = np.load(FIXTURES / entry["reference"])
    out = tmp_path / "gates.npz"
    with lstm_inspect.load(FIXTURES / entry["path"]) as original:
        write_npz(str(out), gate_arrays(original))
        with lstm_inspect.load(out) as exported:
            assert exported.variables == []  # L/reset_after and L/forget_bias are settings
            for expected in entry["layers"]:
                a, b = original.layer(expected["name"]), exported.layer(expected["name"])
                assert b.layout.cell is a.layout.cell and b.variants() == a.variants()
                if a.layout.cell is GRU:
                    assert b.layout.key == "gates-export-gru" and "forget_bias" not in b.settings
                    setting = b.settings["reset_after"]
                    assert setting.source == f"stored in the export: {a.name}/reset_after" and not setting.assumed
                for gate, blocks in a.gates().items():
                    assert blocks.parts().keys() == b.gate(gate).parts().keys()
                    for part, value in blocks.parts().items():
                        assert np.array_equal(getattr(b.gate(gate), part), value), (gate, part)
                key = expected["reference_key"]
                assert_reproduces(run_numpy(as_built(b, expected), reference[f"{key}/x"]), reference, key)


# ---- every export target, run by its own framework -------------------------------------------------------------


def expects_reset_after(entry, value: bool) -> bool:
    return any(layer.get("reset_after") is value for layer in entry["layers"])


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_pytorch_export_run_by_torch_gru_reproduces_the_fixture(entry):
    pytest.importorskip("torch")
    from lstm_inspect.targets.pytorch import run as torch_outputs

    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        for unit in ckpt.units(paired=True):
            names = [layer.name for layer in unit.layers]
            if any(layer.layout.cell is GRU and not layer.variants()["reset_after"] for layer in unit.layers):
                with pytest.raises(UnsupportedFormat, match=r"torch.nn.GRU applies the reset gate after"):
                    export.export_units(ckpt, TARGETS["pytorch"], names)
                continue
            ((_, state),) = TARGETS["pytorch"].unit_arrays(unit)
            check_unit_outputs(entry, unit, reference, lambda x, state=state: torch_outputs([state], [], x))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_onnx_model_run_by_onnxruntime_reproduces_the_fixture(entry, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx

    from lstm_inspect.targets.onnx import run_model as onnxruntime_outputs

    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        assert not refused(ckpt, "onnx")
        for unit in export_units(ckpt, "onnx"):
            # What `export -o X.onnx` writes (its CLI run: test_the_onnx_model_of_a_bidirectional_gru_says_its_node).
            path = tmp_path / f"{len(os.listdir(tmp_path))}.onnx"
            write_onnx(str(path), [layer.weights() for layer in unit.layers], unit.name)
            (node,) = onnx.load(str(path)).graph.node
            cell = unit.layers[0].layout.cell
            assert node.op_type == cell.name
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if cell is GRU:
                assert attributes["linear_before_reset"] == int(unit.layers[0].variants()["reset_after"])
            check_unit_outputs(entry, unit, reference, lambda x, path=path: onnxruntime_outputs(str(path), x))
        # The npz form holds the node's W, R, B and, for a GRU, the linear_before_reset to give it.
        arrays = export_npz(ckpt, "onnx", tmp_path)
        for unit in export_units(ckpt, "onnx"):
            kept = {key.rsplit("/", 1)[1] for key in arrays if key.startswith(f"{unit.name}/")}
            expected = {"W", "R", "B"} | ({"linear_before_reset"} if unit.layers[0].layout.cell is GRU else set())
            assert kept == expected


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_keras_export_set_into_keras3_reproduces_the_fixture(entry, tmp_path):
    pytest.importorskip("keras")
    from lstm_inspect.targets.keras import outputs as keras_outputs

    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        arrays = export_npz(ckpt, "keras", tmp_path)
        for expected in entry["layers"]:
            name, layer = expected["name"], ckpt.layer(expected["name"])
            weights = [arrays[f"{name}/{k}"] for k in ("kernel", "recurrent_kernel", "bias")]
            if "reset_after" in expected:
                assert weights[2].shape == ((2, 3 * layer.units) if expected["reset_after"] else (3 * layer.units,))
            got = keras_outputs(
                weights,
                reference[f"{name}/x"],
                expected["activation"],
                expected["recurrent_activation"],
                layer.layout.cell.name,
                **layer.variants(),
            )
            assert_reproduces(got, reference, name)


def run_tf1_gru_cell(variables: dict[str, np.ndarray], x: np.ndarray):
    """TF1's own GRUCell (rnn_cell_impl.py, kept in tf_keras as legacy_cells) given the exported
    variables by name, stepped over x from a zero state; (h for every step, final h)."""
    import tensorflow as tf
    from tf_keras.src.layers.rnn.legacy_cells import GRUCell

    units = variables["candidate/bias"].shape[0]
    cell = GRUCell(units, name="gru_cell")
    state = tf.zeros([x.shape[1], units])
    cell(tf.constant(x[0]), state)  # builds the variables
    # "gru_cell_3/gates/kernel:0" → "gates/kernel"
    by_name = {v.name.split("/", 1)[1].rsplit(":", 1)[0]: v for v in cell.variables}
    assert sorted(by_name) == sorted(variables)
    for name, value in variables.items():
        by_name[name].assign(value)
    outputs = []
    for step in x:
        output, state = cell(tf.constant(step), state)
        outputs.append(output.numpy())
    return np.stack(outputs), state.numpy()


@pytest.mark.filterwarnings("ignore:`tf.nn.rnn_cell.*Cell` is deprecated")
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_tensorflow_export_loaded_into_tf1_cells_reproduces_the_fixture(entry, tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        if expects_reset_after(entry, True):
            with pytest.raises(UnsupportedFormat, match=r"TF1 GRUCell applies the reset gate before"):
                export_units(ckpt, "tensorflow")
            return
        arrays = export_npz(ckpt, "tensorflow", tmp_path)
        for expected in entry["layers"]:
            name = expected["name"]
            variables = {k[len(name) + 1 :]: v for k, v in arrays.items() if k.startswith(f"{name}/")}
            if "reset_after" in expected:
                got = run_tf1_gru_cell(variables, reference[f"{name}/x"])
            else:
                got = run_tf1_cell(variables, reference[f"{name}/x"], forget_bias=1.0)
            assert_reproduces(got, reference, name)


def test_verify_runs_every_target_on_a_gru_and_names_the_refusals():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("keras")
    with lstm_inspect.load(KERAS2_GRU) as ckpt:
        result = ckpt.verify()
    assert result.ok
    by_layer = {layer.name: layer for layer in result.layers}
    enc, dec = by_layer["enc"], by_layer["dec"]
    ran = {check.target for check in enc.checks if check.max_abs_diff is not None}
    assert {"numpy:gates", "numpy:pytorch", "numpy:onnx", "numpy:keras", "torch", "onnxruntime", "keras"} <= ran
    assert "keras-model" in ran  # Keras' own loader, on the file itself
    assert "reset gate before" in enc.check("numpy:tensorflow").note
    assert "reset_after=False" in dec.check("torch").note and dec.check("keras").max_abs_diff is not None


# ---- detection: GRU and LSTM never cross ---------------------------------------------------------------------


SIZES = list(itertools.product(range(1, 9), range(1, 9)))  # (input, units)


def keras_shapes(gates: int, inputs: int, units: int, bias: tuple[int, ...] | None) -> dict[str, tuple[int, ...]]:
    shapes = {"kernel": (inputs, gates * units), "recurrent_kernel": (units, gates * units)}
    return shapes if bias is None else {**shapes, "bias": bias}


def layouts_of(cell: schema.CellKind, framework: str) -> list[schema.Layout]:
    return [layout for layout in schema.SOURCE_LAYOUTS if layout.cell is cell and layout.framework == framework]


@pytest.mark.parametrize(("inputs", "units"), SIZES)
def test_lstm_and_gru_shapes_never_solve_as_the_other_kind(inputs, units):
    lstm = [keras_shapes(4, inputs, units, bias) for bias in ((4 * units,), (8 * units,), None)]
    gru = [keras_shapes(3, inputs, units, bias) for bias in ((2, 3 * units), (3 * units,), (6 * units,), None)]
    for shapes in lstm:
        for layout in layouts_of(GRU, "keras"):
            roles = {role.key for role in layout.roles}
            if set(shapes) <= roles:
                assert solve(layout, shapes) is None, (layout.key, shapes)
    for shapes in gru:
        for layout in layouts_of(LSTM, "keras"):
            roles = {role.key for role in layout.roles}
            if set(shapes) <= roles:
                assert solve(layout, shapes) is None, (layout.key, shapes)
    # TF1: an LSTM's kernel [in + u, 4u] is never a GRU's, whatever the scope is called.
    tf1_lstm = detect(infos(("gru_like/kernel", (inputs + units, 4 * units)), ("gru_like/bias", (4 * units,))))
    assert all(layer.layout.cell is not GRU for layer in tf1_lstm.layers)


def test_each_file_layer_is_of_the_kind_built_in_a_file_of_both():
    with lstm_inspect.load(KERAS3_GRU) as ckpt:
        kinds = {layer.name: layer.layout.cell.name for layer in ckpt.layers}
    assert kinds == {
        "enc": "GRU",
        "dec": "GRU",
        "bi/forward": "GRU",
        "bi/backward": "GRU",
        "cell_rnn": "GRU",
        "lstm": "LSTM",
    }


def test_a_keras_config_keeps_gru_and_lstm_apart():
    gru = infos(("g/kernel", (12, 48)), ("g/recurrent_kernel", (16, 48)), ("g/bias", (2, 48)))
    lstm = infos(("l/kernel", (12, 64)), ("l/recurrent_kernel", (16, 64)), ("l/bias", (64,)))
    assert detect(gru, {"g": LayerConfig("LSTM", {})}).layers == []
    assert detect(lstm, {"l": LayerConfig("GRU", {})}).layers == []
    (layer,) = detect(gru, {"g": LayerConfig("GRU", {"reset_after": True})}).layers
    assert layer.layout.key == "keras-gru" and layer.cell == "GRU"


def test_keras_gru_without_a_bias_takes_reset_after_from_its_config_or_assumes_keras_default():
    tensors = infos(("g/kernel", (12, 48)), ("g/recurrent_kernel", (16, 48)))
    (said,) = detect(tensors, {"g": LayerConfig("GRU", {"reset_after": False, "use_bias": False})}).layers
    assert said.layout.key == "keras-gru-no-bias"
    assert (said.settings["reset_after"].value, said.settings["reset_after"].source) == (False, "config: g")
    (unsaid,) = detect(tensors).layers
    assert unsaid.settings["reset_after"].value == "unknown"
    with lstm_inspect.api.Checkpoint(
        MemoryStore({name: np.zeros(i.shape, np.float32) for name, i in tensors.items()})
    ) as ckpt:
        (layer,) = ckpt.layers
        assert layer.variants() == {"reset_after": True}
        (line,) = summarize(ckpt).layers
        assert (
            line.variants["reset_after"].assumed
            and "reset_after=True since Keras 2.3" in line.variants["reset_after"].source
        )


def test_rnn_of_a_gru_cell_is_read_through_its_cell_config():
    tensors = infos(("r/kernel", (12, 24)), ("r/recurrent_kernel", (8, 24)), ("r/bias", (24,)))
    cell = {"class_name": "GRUCell", "config": {"units": 8, "reset_after": False, "recurrent_activation": "relu"}}
    (layer,) = detect(tensors, {"r": LayerConfig("RNN", {"cell": cell})}).layers
    assert (layer.cell, layer.layout.key, layer.recurrent_activation) == ("GRUCell", "keras-gru-reset-before", "relu")


@pytest.mark.parametrize(
    ("names", "scope"),
    [
        (("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"), "enc/rnn/gru_cell"),
        (("gates/weights", "gates/biases", "candidate/weights", "candidate/biases"), "rnn/gru_cell"),
        (
            ("Gates/Linear/Matrix", "Gates/Linear/Bias", "Candidate/Linear/Matrix", "Candidate/Linear/Bias"),
            "RNN/MultiRNNCell/Cell0/GRUCell",
        ),
    ],
)
def test_tf1_gru_cell_in_every_name_generation(names, scope):
    shapes = [(20, 16), (16,), (20, 8), (8,)]
    (layer,) = detect(infos(*((f"{scope}/{name}", shape) for name, shape in zip(names, shapes)))).layers
    assert (layer.name, layer.layout.key, layer.input_size, layer.units) == (scope, "tf1-gru", 12, 8)


def test_a_tf0_lstm_and_gru_side_by_side_each_find_their_scope():
    d = detect(
        infos(
            ("RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix", (20, 32)),
            ("RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Bias", (32,)),
            ("RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Matrix", (16, 16)),
            ("RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Bias", (16,)),
            ("RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Matrix", (16, 8)),
            ("RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Bias", (8,)),
        )
    )
    assert {layer.name: layer.layout.key for layer in d.layers} == {
        "RNN/MultiRNNCell/Cell0/BasicLSTMCell": "tf1",
        "RNN/MultiRNNCell/Cell1/GRUCell": "tf1-gru",
    }
    assert d.variables == []


def test_cudnn_compatible_gru_cell_with_tf_1_2_names():
    scope = "rnn/multi_rnn_cell/cell_0/cudnn_compatible_gru_cell"
    (layer,) = detect(
        infos(
            (f"{scope}/gates/weights", (20, 16)),
            (f"{scope}/gates/biases", (16,)),
            (f"{scope}/candidate/input_projection/weights", (12, 8)),
            (f"{scope}/candidate/input_projection/biases", (8,)),
            (f"{scope}/candidate/hidden_projection/weights", (8, 8)),
            (f"{scope}/candidate/hidden_projection/biases", (8,)),
        )
    ).layers
    assert (layer.name, layer.cell, layer.settings["reset_after"].value) == (scope, "CudnnCompatibleGRUCell", True)
    assert [b.part for b in lstm_inspect.slicer.plan(layer) if b.gate == "candidate"] == [
        "kernel",
        "recurrent",
        "bias",
        "recurrent_bias",
    ]


def test_keras1_per_gate_gru_arrays_reproduce_the_reset_before_gru_they_hold(tmp_path):
    """Keras 1's GRU (W_z, U_z, b_z, W_r, …) computes what GRU(reset_after=False) does: the blocks of
    keras2_gru's `dec`, written under Keras 1's names, reproduce tf_keras' outputs."""
    reference = np.load(FIXTURES / "keras2_gru" / "reference.npz")
    with lstm_inspect.load(KERAS2_GRU) as ckpt:
        gates = ckpt.layer("dec").gates()
    arrays = {}
    for letter in "zrh":
        blocks = gates[GRU.gate(letter)]
        arrays |= {
            f"gru_1/W_{letter}": blocks.kernel,
            f"gru_1/U_{letter}": blocks.recurrent,
            f"gru_1/b_{letter}": blocks.bias,
        }
    path = tmp_path / "keras1.npz"
    np.savez(path, **arrays)
    with lstm_inspect.load(path) as keras1:
        (layer,) = keras1.layers
        assert (layer.layout.key, layer.cell, layer.variants()) == (
            "keras1-gru",
            "GRU (Keras 1)",
            {"reset_after": False},
        )
        assert layer.recurrent_activation == "unknown"  # no config: Keras 1 defaulted to hard_sigmoid
        weights = replace(layer.weights(), recurrent_activation="sigmoid")
    assert_reproduces(run_numpy(weights, reference["dec/x"]), reference, "dec")


# ---- summary, split, gate names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("summary_tf1_gru.out", ["summary", TF1_GRU]),
        ("summary_keras2_gru.out", ["summary", KERAS2_GRU]),
        ("split_keras2_gru_enc.out", ["split", KERAS2_GRU, "--layer", "enc"]),
    ],
)
def test_golden_output(name, args):
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    golden(name, result.stdout)


def test_summary_explains_each_fused_gru_shape():
    with lstm_inspect.load(TF1_GRU) as ckpt:
        (layer,) = summarize(ckpt).layers
    assert [t.explanation for t in layer.tensors] == [
        "gates/kernel [28, 32] = [12 input + 16 recurrent, 2 gates (r, u) × 16 units]",
        "gates/bias [32] = [2 gates (r, u) × 16 units]",
        "candidate/kernel [28, 16] = [12 input + 16 recurrent, 16 units]: the candidate gate",
        "candidate/bias [16] = [16 units]: candidate-gate bias",
    ]
    keras = schema.LAYOUTS["keras-gru"]
    assert explain(keras, keras.role("bias"), {"input": 12, "units": 16, "recurrent": 16}) == (
        "[2 (input-side, recurrent-side), 3 gates × 16 units]"
    )


def test_split_gives_every_gru_gate_its_parts_and_says_where_the_reset_gate_applies():
    with lstm_inspect.load(KERAS2_GRU) as ckpt:
        split = lstm_inspect.results.split(ckpt, layers=["enc", "dec"])
    enc, dec = split.layers
    assert enc.forget_bias is None and enc.variants == {"reset_after": True} and dec.variants == {"reset_after": False}
    assert [(b.gate, b.part) for b in enc.blocks] == [
        (gate, part) for gate in GRU.gates for part in ("kernel", "recurrent", "bias", "recurrent_bias")
    ]
    assert [(b.gate, b.part) for b in dec.blocks] == [
        (gate, part) for gate in GRU.gates for part in ("kernel", "recurrent", "bias")
    ]
    assert enc.blocks[3].source == "enc/bias[1:2, 16:32]"  # the reset gate's recurrent-side bias
    out = run("split", KERAS2_GRU, "--layer", "dec", "--gate", "n").stdout
    assert "the cell applies the reset gate before the recurrent matmul (reset_after=False)" in out


@pytest.mark.parametrize(
    ("alias", "gate"),
    [("r", "reset"), ("z", "update"), ("u", "update"), ("n", "candidate"), ("h", "candidate"), ("C", "candidate")],
)
def test_gru_gate_aliases(alias, gate):
    with lstm_inspect.load(KERAS2_GRU) as ckpt:
        assert ckpt.layer("enc").gate(alias).gate == gate
        assert {block.gate for _, block in ckpt.iter_blocks(["enc"], [alias])} == {gate}


def test_a_gate_name_selects_in_each_layer_by_its_cell_kind():
    with lstm_inspect.load(KERAS3_GRU) as ckpt:
        picked = {(layer.name, block.gate) for layer, block in ckpt.iter_blocks(["enc", "lstm"], ["c"])}
        assert picked == {("enc", "candidate"), ("lstm", "cell")}
        with pytest.raises(UnknownName, match=r"unknown gate 'forget'; gates: reset \(r\), update \(z, u\)"):
            list(ckpt.iter_blocks(["enc"], ["forget"]))
        with pytest.raises(UnknownName, match=r"unknown gate 'x'; gates: GRU: reset \(r\).*; LSTM: input \(i\)"):
            list(ckpt.iter_blocks([], ["x"]))  # the kinds in file order
    assert_clean_error(run("split", TF1_GRU, "--gate", "forget"), "unknown gate 'forget'", "candidate")


# ---- what a target cannot express, and the ONNX model ------------------------------------------------------------


def test_export_refusals_name_the_reason_and_the_layouts_that_can(tmp_path):
    out = tmp_path / "x.npz"
    assert_clean_error(
        run("export", TF1_GRU, "--layout", "pytorch", "-o", str(out)),
        "rnn/gru_cell: cannot export to --layout pytorch: torch.nn.GRU applies the reset gate after the "
        "recurrent matmul; this layer applies the reset gate before the recurrent matmul (reset_after=False)",
        "layouts that can express it: gates, onnx, keras, tensorflow",
    )
    assert_clean_error(
        run("export", KERAS2_GRU, "--layout", "tensorflow", "--layer", "enc", "-o", str(out)),
        "TF1 GRUCell applies the reset gate before the recurrent matmul; this layer applies the reset gate after",
        "layouts that can express it: gates, pytorch, onnx, keras",
    )
    # A usage error (exit 2), as every flag that does not fit.
    result = run("export", TF1_GRU, "--layout", "tensorflow", "--target-forget-bias", "0", "-o", str(out))
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --target-forget-bias: rnn/gru_cell is a GRU, which has no forget gate; leave the option out, "
        "or choose the LSTM layers with --layer"
    )
    assert list(tmp_path.iterdir()) == []
    with lstm_inspect.load(TF1_GRU) as ckpt, pytest.raises(UsageError):
        ckpt.export(str(out), "tensorflow", target_forget_bias=1.0)


def test_the_onnx_model_of_a_bidirectional_gru_says_its_node(tmp_path):
    out = tmp_path / "bi.onnx"
    result = run("export", KERAS2_GRU, "--layout", "onnx", "--layer", "bi", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "(one bidirectional GRU node)" in result.stdout
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["Y", "Y_h"]
    assert [i for i in model.graph.node[0].input] == ["X", "W", "R", "B"]


def test_the_candidate_recurrent_bias_of_a_reset_after_gru_is_never_merged():
    blocks = {(gate, part): np.ones(2) for gate in GRU.gates for part in ("bias", "recurrent_bias")}
    after = Weights("g", blocks, GRU, settings={"reset_after": True})
    with pytest.raises(ValueError, match="candidate gate's recurrent bias"):
        merge_biases(after)
    merged = merge_biases(replace(after, settings={"reset_after": False}))
    assert all(np.array_equal(merged.blocks[(gate, "bias")], [2, 2]) for gate in GRU.gates)


def test_numpy_gru_reset_before_and_after_differ_only_through_the_candidate():
    rng = np.random.default_rng(3)
    gates = {
        gate: {"kernel": rng.normal(size=(4, 3)), "recurrent": rng.normal(size=(3, 3)), "bias": rng.normal(size=3)}
        for gate in GRU.gates
    }
    x = rng.normal(size=(4, 2, 4))
    before, _ = run_gru(gates, x, reset_after=False)
    after, _ = run_gru(gates, x, reset_after=True)
    assert np.abs(before - after).max() > 1e-3  # r∘(h·U) is not (r∘h)·U
    # With a zero recurrent candidate kernel the reset gate has nothing to act on: both agree.
    gates["candidate"]["recurrent"] = np.zeros((3, 3))
    np.testing.assert_allclose(run_gru(gates, x, reset_after=False)[0], run_gru(gates, x, reset_after=True)[0])


# ---- diff and plot follow each layer's cell kind ------------------------------------------------------------


def test_diff_pairs_gru_layers_on_their_blocks_and_tells_a_gru_from_an_lstm():
    from lstm_inspect.diff import diff

    with lstm_inspect.load(KERAS3_GRU) as a, lstm_inspect.load(FIXTURES / "keras3_gru" / "model.weights.h5") as b:
        result = diff(a, b)
        assert result.identical and len(result.layers) == 6
    with lstm_inspect.load(KERAS3_GRU) as a, lstm_inspect.load(KERAS3_GRU) as b:
        crossed = {(layer.a, layer.b): layer for layer in diff(a, b, mapping={"bi/forward": "lstm"}).layers}
        assert "cell kind differs: A GRU, B LSTM" in crossed[("bi/forward", "lstm")].verdict


def test_plot_draws_each_layer_with_the_gates_of_its_kind(tmp_path):
    pytest.importorskip("matplotlib")
    from lstm_inspect.plot import plot

    with lstm_inspect.load(KERAS3_GRU) as ckpt:
        result = plot(ckpt, str(tmp_path / "gates.png"), layers=["enc", "lstm"], gates=["c"])
        drawn = {(panel.layer, panel.gate) for panel in result.panels if panel.part == "kernel"}
        assert drawn == {("enc", "candidate"), ("lstm", "cell")}
        full = plot(ckpt, str(tmp_path / "enc.png"), layers=["enc"])
        assert {panel.gate for panel in full.panels if panel.part == "kernel"} == set(GRU.gates)


@pytest.mark.parametrize("stored", [0.5, float("nan"), -1.0])
def test_a_gates_export_whose_reset_after_is_neither_1_nor_0_is_refused(stored, tmp_path):
    out = tmp_path / "gates.npz"
    with lstm_inspect.load(TF1_GRU) as ckpt:
        arrays = dict(gate_arrays(ckpt))
    arrays["rnn/gru_cell/reset_after"] = np.array(stored, np.float32)
    np.savez(out, **arrays)
    result = run("summary", str(out))
    assert_clean_error(result, "rnn/gru_cell/reset_after is", "an export stores it as 1 or 0")


def test_a_part_no_gru_can_hold_is_unknown_for_a_gru_file():
    assert_clean_error(
        run("split", TF1_GRU, "--part", "peephole"),
        "unknown part 'peephole'; parts: kernel, recurrent, bias, recurrent_bias",
    )
    with lstm_inspect.load(KERAS3_GRU) as ckpt:  # the LSTM beside the GRUs may hold one
        assert list(ckpt.iter_blocks([], [], ["projection"])) == []
    assert GRU.parts == ("kernel", "recurrent", "bias", "recurrent_bias") and LSTM.parts == schema.PARTS


def test_a_target_without_a_layout_of_a_cell_kind_says_so():
    from lstm_inspect.targets import Features, Target

    lstm_only = Target("lstm-only", schema.LAYOUTS["keras"], "keras.layers.{cell}", "an LSTM's arrays only")
    gru = Features(False, None, 8, "tanh", "sigmoid", cell="GRU", variants=(("reset_after", True),))
    assert lstm_only.refusal(gru) == "--layout lstm-only holds no GRU layers"
    assert lstm_only.layout_for(GRU, {"reset_after": True}) is None
    assert TARGETS["keras"].layout_for(GRU, {"reset_after": False}).key == "keras-gru-reset-before"
