"""Every way Keras writes an LSTM (issue 12): RNN(LSTMCell), stacked cells, TimeDistributed,
Bidirectional of these and nested models, and ConvLSTM2D, made by Keras 3 and tf_keras in every
format each writes (manifest "forms_fixtures"). The same model gives the same layers, order, sizes
and exported arrays from every file; the numpy cell on the split blocks reproduces the framework's
own outputs; cells no layout models are listed as recurrent layers not understood, never as LSTMs;
files whose config and weights disagree are warned of or refused in one line."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect import export
from lstm_inspect.detect import detect
from lstm_inspect.errors import CorruptFile, UnsupportedFormat
from lstm_inspect.numpy_cells import run as run_numpy
from lstm_inspect.readers.base import TensorInfo
from lstm_inspect.results import summarize
from lstm_inspect.targets import NAMES, TARGETS

from .conftest import FIXTURES
from .test_cli import assert_clean_error, run
from .test_targets import ATOL, RTOL

ENTRIES = json.loads((FIXTURES / "manifest.json").read_text())["forms_fixtures"]
KERAS = [e for e in ENTRIES if e["reference"] != "tf1_unmodelled/reference.npz"]
IDS = [e["name"] for e in KERAS]
# One model per reference, saved in every format its Keras writes.
MODELS: dict[str, list[dict]] = defaultdict(list)
for _entry in KERAS:
    MODELS[_entry["reference"].split("/")[0]].append(_entry)
UNMODELLED = str(FIXTURES / "tf1_unmodelled" / "model.ckpt")
KERAS3_CONV = str(FIXTURES / "keras3_conv" / "model.keras")
KERAS2_FORMS = FIXTURES / "keras2_forms" / "model.h5"


def as_built(entry: dict, layer) -> object:
    """The layer's weights as the framework built it: a file without a config says neither the
    activations nor (a ConvLSTM's) the convolutions, which the manifest records."""
    expected = next(e for e in entry["layers"] if e["name"] == layer.name)
    weights = replace(
        layer.weights(), activation=expected["activation"], recurrent_activation=expected["recurrent_activation"]
    )
    conv = expected.get("convolution")
    if conv is not None:
        said = {k: v for k, v in conv.items() if k != "kernel_size"}
        weights = replace(weights, conv={**weights.conv, **said, "data_format": "channels_last"})
    return weights


def layer_arrays(ckpt, target: str) -> dict[str, dict[str, np.ndarray]]:
    """Each layer's arrays in `target`'s layout, by the layer's name."""
    chosen = TARGETS[target]
    return {
        name: arrays for unit in export.export_units(ckpt, chosen) for name, arrays in export.unit_arrays(unit, chosen)
    }


# ---- one answer whatever the format ------------------------------------------------------------------------


def expressible_arrays(ckpt, target: str) -> dict[str, dict[str, np.ndarray]]:
    """Each unit's arrays in `target`'s layout, by its exported name, for the units the target can
    express (a ConvLSTM goes to gates and keras only); an export would refuse the others."""
    chosen = TARGETS[target]
    found = {}
    for unit in ckpt.units((), paired=chosen.paired):
        if unit.mismatch() is None and all(chosen.refusal(layer.features()) is None for layer in unit.layers):
            for name, arrays in export.unit_arrays(unit, chosen):
                found[name] = {key: np.array(value) for key, value in arrays.items()}
    return found


def onnx_initializers(path: Path, layer: str, out: Path) -> dict[str, np.ndarray]:
    """The initializers of the runnable .onnx model export writes of one layer or pair."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    result = run("export", str(path), "--layout", "onnx", "--layer", layer, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return {init.name: numpy_helper.to_array(init) for init in onnx.load(str(out)).graph.initializer}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_format_gives_the_same_layers_order_sizes_and_exported_arrays(model, tmp_path):
    seen = {}
    for entry in MODELS[model]:
        with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
            layers = [
                (layer.name, layer.layout.cell.name, layer.input_size, layer.units, layer.params)
                for layer in ckpt.layers
            ]
            exported = {target: expressible_arrays(ckpt, target) for target in NAMES}
        assert sorted(name for name, *_ in layers) == sorted(e["name"] for e in entry["layers"]), entry["name"]
        # One layer and one pair as runnable ONNX models, where the layers are LSTMs ONNX can run.
        for unit in [u for u in ("sub/enc", "bi") if u in exported["onnx"]]:
            exported[f"onnx model {unit}"] = {
                unit: onnx_initializers(FIXTURES / entry["path"], unit, tmp_path / "m.onnx")
            }
        seen[entry["name"]] = (layers, exported)
    (first, (layers, exported)), *others = seen.items()
    convolutional = any("convolution" in e for e in MODELS[model][0]["layers"])
    expected_targets = {"gates", "keras"} if convolutional else set(NAMES) | {"onnx model sub/enc", "onnx model bi"}
    assert {target for target, by_layer in exported.items() if by_layer} == expected_targets
    if not convolutional:
        # Every target holds every layer; the pytorch and onnx layouts a bidirectional pair as one.
        assert exported["pytorch"].keys() == exported["onnx"].keys() >= {"bi", "bistack/cell_0", "sub/pair", "td"}
        assert exported["keras"].keys() == exported["tensorflow"].keys() == exported["gates"].keys()
    # Forward before backward, a half right before its partner, wherever the file put them.
    names = [name for name, *_ in layers]
    for index, name in enumerate(names):
        if name.endswith("/backward") or "/backward/" in name:
            assert names[index - 1] == name.replace("backward", "forward"), names
    for name, (other_layers, other_exported) in others:
        assert other_layers == layers, f"{name} vs {first}"
        assert other_exported.keys() == exported.keys(), name
        for target, by_layer in exported.items():
            assert by_layer.keys() == other_exported[target].keys(), (name, target)
            for layer, arrays in by_layer.items():
                assert arrays.keys() == other_exported[target][layer].keys(), (name, target, layer)
                for key, value in arrays.items():
                    got = other_exported[target][layer][key]
                    assert got.dtype == value.dtype, (name, target, key)
                    np.testing.assert_array_equal(got, value, err_msg=f"{name} {target} {layer} {key}")


@pytest.mark.parametrize(
    ("own", "scope", "called"),
    [
        ("enc/lstm_cell/kernel", "functional_1/sub_1/enc_1/lstm_cell_1/Cast", "sub/enc/lstm_cell/kernel"),
        # A TimeDistributed calls its layer's call(), in no scope of the layer's own.
        ("td/lstm_1/lstm_cell/kernel", "functional_1/td_1/lstm_cell_1/Cast", "td/lstm_cell/kernel"),
        # TF's suffix follows a name that ends in a number of its own; the enclosing model loses the same.
        ("enc_1/lstm_cell/kernel", "functional_1/sub_1/enc_1_1/lstm_cell_1/Cast", "sub/enc_1/lstm_cell/kernel"),
        ("lstm/lstm_cell/kernel", "lstm_1/lstm_cell_1/Cast", "lstm/lstm_cell/kernel"),  # a layer exported alone
        ("enc/lstm_cell/kernel", "functional_1/other_1/lstm_cell_1/Cast", None),  # the call shows not its layer
    ],
)
def test_a_keras3_export_names_each_variable_by_the_layers_that_call_it(own, scope, called):
    from lstm_inspect.readers.saved_model import _as_called

    found = _as_called(own, scope.split("/"))
    assert (found and found[1]) == called


def test_a_keras3_export_tracks_no_layers_only_lists_of_variables():
    # What keras/src/backend/tensorflow/export.py tracks: the names must come from the traced call.
    from lstm_inspect.readers.saved_model import read_object_graph
    from lstm_inspect.readers.tf_bundle import TFCheckpoint

    with TFCheckpoint(str(FIXTURES / "keras3_forms" / "saved_model" / "variables" / "variables")) as checkpoint:
        nodes = read_object_graph(checkpoint)
    assert nodes is not None
    root = {c["local_name"] for c in nodes[0]["children"]}
    assert root == {"variables", "trainable_variables", "non_trainable_variables", "_all_variables", "_misc_assets",
                    "serve", "signatures"}  # fmt: skip
    lists = [c["node_id"] for c in nodes[0]["children"] if c["local_name"].endswith("variables")]
    assert all(not nodes[v].get("children") for i in lists for v in (c["node_id"] for c in nodes[i]["children"]))


@pytest.mark.parametrize("entry", KERAS, ids=IDS)
def test_summary_names_every_form_as_the_framework_built_it(entry):
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        summary = summarize(ckpt)
    got = {layer.name: layer for layer in summary.layers}
    assert sorted(got) == sorted(e["name"] for e in entry["layers"])
    for expected in entry["layers"]:
        layer = got[expected["name"]]
        sizes = (layer.input_size, layer.units, layer.recurrent_size, layer.params)
        assert sizes == (expected["input_size"], expected["units"], expected["recurrent_size"], expected["params"])
        assert layer.gate_order == expected["gate_order"] == "ifco"
        if entry["format"] in ("keras-v3", "keras-h5") and not entry["name"].endswith("_weights"):
            # A file with the model config says the class, as the model names it ("TimeDistributed(LSTM)").
            assert layer.cell == expected["cell"]
            assert (layer.activation, layer.recurrent_activation) == (
                expected["activation"],
                expected["recurrent_activation"],
            )


# ---- numbers: the numpy cell on the split blocks reproduces the framework --------------------------------------


@pytest.mark.parametrize("entry", KERAS, ids=IDS)
def test_numpy_cell_on_the_split_blocks_reproduces_the_frameworks_outputs(entry):
    reference = np.load(FIXTURES / entry["reference"])
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        for expected in entry["layers"]:
            key = expected["reference_key"]
            h, c = run_numpy(as_built(entry, ckpt.layer(expected["name"])), reference[f"{key}/x"])
            np.testing.assert_allclose(h, reference[f"{key}/h"], atol=ATOL, rtol=RTOL, err_msg=f"{key} h")
            np.testing.assert_allclose(c, reference[f"{key}/c"], atol=ATOL, rtol=RTOL, err_msg=f"{key} c")


@pytest.mark.parametrize("model", sorted(MODELS))
def test_keras_export_set_into_keras3_reproduces_the_frameworks_outputs(model, tmp_path):
    pytest.importorskip("keras")
    from lstm_inspect.targets.keras import outputs as keras_outputs

    (entry, *_) = MODELS[model]  # every format exports the same arrays (the test above)
    reference = np.load(FIXTURES / entry["reference"])
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        by_layer = layer_arrays(ckpt, "keras")
        for expected in entry["layers"]:
            arrays = by_layer[expected["name"]]
            weights = as_built(entry, ckpt.layer(expected["name"]))
            conv = expected.get("convolution")
            h, c = keras_outputs(
                [arrays[k] for k in ("kernel", "recurrent_kernel", "bias")],
                reference[f"{expected['name']}/x"],
                weights.activation,
                weights.recurrent_activation,
                weights.cell.name,
                None if conv is None else {k: v for k, v in weights.conv.items() if k != "kernel_size"},
            )
            np.testing.assert_allclose(h, reference[f"{expected['name']}/h"], atol=ATOL, rtol=RTOL)
            np.testing.assert_allclose(c, reference[f"{expected['name']}/c"], atol=ATOL, rtol=RTOL)


def test_stacked_cells_are_named_by_their_place_and_selected_by_that_name():
    result = run("split", str(KERAS2_FORMS), "--layer", "stack/cell_1", "--gate", "f")
    assert result.exit_code == 0, result.stderr
    assert "stack/cell_1" in result.stdout and "stack/cell_0" not in result.stdout
    # A bidirectional stack's pair name selects both halves of one cell.
    with lstm_inspect.load(KERAS2_FORMS) as ckpt:
        assert [layer.name for layer in ckpt.select(["bistack/cell_0"])] == [
            "bistack/forward/cell_0",
            "bistack/backward/cell_0",
        ]


# ---- ConvLSTM: summary, split, export, verify ---------------------------------------------------------------


def test_convlstm_summary_explains_the_kernels_and_the_convolutions():
    result = run("summary", KERAS3_CONV)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "ConvLSTM2D layers" in out
    assert "\nconv: 2 input channels, 4 filters; gates i=input, f=forget, c=cell, o=output\n" in out
    assert "kernel [3, 3, 2, 16] = [3 × 3 kernel, 2 input channels, 4 gates × 4 filters]" in out
    assert "recurrent_kernel [2, 2, 3, 12] = [2 × 2 kernel, 3 recurrent channels, 4 gates × 3 filters]" in out
    assert "convolution: 3 × 3 kernel, strides 1 × 1, padding same, dilation 2 × 1, channels_last — config: conv" in out
    assert "convolution: 2 × 2 kernel, strides 2 × 1, padding valid, dilation 1 × 1" in out


def test_convlstm_split_gives_each_gates_block_with_its_spatial_axes():
    with lstm_inspect.load(KERAS3_CONV) as ckpt:
        layer = ckpt.layer("down")
        forget = layer.gate("forget")
        kernel = ckpt.store.read(layer.spec.tensors["kernel"].name)
        np.testing.assert_array_equal(forget.kernel, kernel[..., 3:6])
        assert forget.kernel.shape == (2, 2, 4, 3) and forget.recurrent.shape == (2, 2, 3, 3)
    result = run("split", KERAS3_CONV, "--layer", "down", "--gate", "f")
    assert result.exit_code == 0, result.stderr
    assert "down/kernel[0:2, 0:2, 0:4, 3:6]" in result.stdout


def test_convlstm_exports_to_gates_and_keras(tmp_path):
    for layout in ("gates", "keras"):
        out = tmp_path / f"{layout}.npz"
        result = run("export", KERAS3_CONV, "--layout", layout, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        with np.load(out) as npz:
            arrays = dict(npz)
        with lstm_inspect.load(KERAS3_CONV) as ckpt:
            kernel = ckpt.store.read(ckpt.layer("conv").spec.tensors["kernel"].name)
        if layout == "keras":
            np.testing.assert_array_equal(arrays["conv/kernel"], kernel)
        else:
            np.testing.assert_array_equal(arrays["conv/input/kernel"], kernel[..., 0:4])


@pytest.mark.parametrize("layout", ["pytorch", "onnx", "tensorflow"])
def test_convlstm_export_to_a_target_without_convlstm_is_refused_in_one_line(layout, tmp_path):
    out = tmp_path / "out.npz"
    result = run("export", KERAS3_CONV, "--layout", layout, "-o", str(out))
    assert_clean_error(result, f"--layout {layout} holds no ConvLSTM2D layers", "gates, keras")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", [KERAS3_CONV, str(FIXTURES / "keras2_conv" / "model.h5")])
def test_convlstm_verify_runs_the_numpy_convlstm_and_keras_own_layer(path):
    pytest.importorskip("keras")
    with lstm_inspect.load(path) as ckpt:
        result = ckpt.verify()
    assert [layer.name for layer in result.layers] == ["conv", "down"]
    for layer in result.layers:
        checks = {check.target: check for check in layer.checks}
        for name in ("numpy:gates", "numpy:keras", "keras", "keras-model"):
            check = checks[name]
            assert check.max_abs_diff is not None and check.passed(layer.tolerance), (layer.name, check)
        for name in ("numpy:pytorch", "numpy:onnx", "numpy:tensorflow", "torch", "onnxruntime"):
            note = checks[name].note or ""
            assert checks[name].max_abs_diff is None and note.startswith("refused") and "ConvLSTM2D" in note


# ---- cells no layout models ------------------------------------------------------------------------------


def test_tf1_coupled_and_layer_norm_cells_are_not_understood_never_lstms():
    with lstm_inspect.load(UNMODELLED) as ckpt:
        summary = summarize(ckpt)
        assert [layer.name for layer in ckpt.layers] == ["rnn/basic_lstm_cell"]
    unknown = {u.name: u for u in summary.unknown}
    (entry,) = [e for e in ENTRIES if e["name"] == "tf1_unmodelled"]
    assert sorted(unknown) == sorted(u["name"] for u in entry["unknown"])
    for expected in entry["unknown"]:
        got = unknown[expected["name"]]
        assert got.cell == expected["cell"] and got.params == expected["params"]
    coupled = unknown["coupled/coupled_input_forget_gate_lstm_cell"]
    explained = {t.name.rsplit("/", 1)[-1]: t.explanation for t in coupled.tensors}
    assert explained["W_0"] == "W_0 [28, 48] = [12 input + 16 recurrent, 3 gates × 16 units]"
    assert explained["B"].startswith("B [48] = [3 gates × 16 units]")
    result = run("summary", UNMODELLED)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    said = [line for line in lines if line.startswith("Recurrent layer not understood: ")]
    assert len(said) == 2 and "CoupledInputForgetGateLSTMCell" in said[0] + said[1]
    assert any(line.startswith("Recurrent layers not understood: ") for line in lines)


def test_the_issues_three_gate_coupled_cell_is_no_four_gate_lstm():
    # W_0 [28, 48] and B [48]: shown before as an LSTM of 16 inputs and 12 units; it has 12 inputs,
    # 16 units and 3 gates (contrib/rnn/python/ops/rnn_cell.py CoupledInputForgetGateLSTMCell).
    tensors = {
        name: TensorInfo(name, shape, "float32", name)
        for name, shape in (
            ("rnn/coupled_input_forget_gate_lstm_cell/W_0", (28, 48)),
            ("rnn/coupled_input_forget_gate_lstm_cell/B", (48,)),
        )
    }
    found = detect(tensors)
    assert found.layers == []
    (unknown,) = found.unknown
    assert unknown.cell == "CoupledInputForgetGateLSTMCell"
    assert "3 gate blocks" in unknown.why
    assert unknown.explanations["rnn/coupled_input_forget_gate_lstm_cell/W_0"].endswith(
        "[12 input + 16 recurrent, 3 gates × 16 units]"
    )


@pytest.mark.parametrize("command", ["split", "export"])
def test_a_layer_not_understood_is_refused_by_name_in_one_line(command, tmp_path):
    out = tmp_path / "out.npz"
    args = ["--layer", "coupled/coupled_input_forget_gate_lstm_cell"]
    result = run(command, UNMODELLED, *args, *(["-o", str(out)] if command == "export" else []))
    assert_clean_error(result, "recurrent layer lstm-inspect does not understand", "1 − forget gate")
    assert not out.exists()


def test_a_file_of_cells_not_understood_only_says_so_when_a_layer_is_needed(tmp_path):
    path = tmp_path / "coupled.npz"
    np.savez(
        path,
        **{
            "rnn/coupled_input_forget_gate_lstm_cell/W_0": np.ones((28, 48), np.float32),
            "rnn/coupled_input_forget_gate_lstm_cell/B": np.zeros(48, np.float32),
        },
    )
    result = run("summary", str(path))
    assert result.exit_code == 0, result.stderr
    assert "No LSTM or GRU layers found." in result.stdout
    assert "Recurrent layer not understood: rnn/coupled_input_forget_gate_lstm_cell" in result.stdout
    out = tmp_path / "out.npz"
    assert_clean_error(
        run("export", str(path), "-o", str(out)), "no LSTM or GRU layer found", "recurrent layers not understood"
    )
    assert not out.exists()


def test_a_keras_cell_with_weights_of_its_own_is_not_understood_never_an_lstm(tmp_path):
    # A layer-normalised or custom cell under RNN(...): an LSTM's three weights and one more.
    def add_gamma(f):
        group = f["model_weights/rnn"]
        group["rnn/lstm_cell/gamma:0"] = np.ones(8, np.float32)
        names = [bytes(n) if not isinstance(n, str) else n.encode() for n in group.attrs["weight_names"]]
        group.attrs["weight_names"] = np.array([*names, b"rnn/lstm_cell/gamma:0"], dtype="S")

    path = _edited_copy(tmp_path, add_gamma)
    with lstm_inspect.load(path) as ckpt:
        summary = summarize(ckpt)
    assert "rnn" not in [layer.name for layer in summary.layers] and len(summary.layers) == 12
    (unknown,) = summary.unknown
    assert (unknown.name, unknown.cell, unknown.params) == ("rnn", "RNN(LSTMCell)", 12 * 32 + 8 * 32 + 32 + 8)
    assert "it holds gamma" in unknown.why
    result = run("summary", str(path))
    assert result.exit_code == 0 and "Recurrent layer not understood: rnn (RNN(LSTMCell)): besides" in result.stdout
    assert_clean_error(run("split", str(path), "--layer", "rnn"), "rnn is a recurrent layer", "it holds gamma")


# ---- bad input --------------------------------------------------------------------------------------------


def _edited_copy(tmp_path: Path, edit) -> Path:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model.h5"
    shutil.copy(KERAS2_FORMS, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_config_layer_without_weights_and_weights_without_config_warn_in_one_line(tmp_path):
    def move_rnn(f):
        weights = f["model_weights"]
        f.copy(weights["rnn"], weights, name="extra")
        del weights["rnn"]
        names = [n.encode() if isinstance(n, str) else bytes(n) for n in weights.attrs["layer_names"]]
        weights.attrs["layer_names"] = np.array([b"extra" if n == b"rnn" else n for n in names], dtype="S")

    path = _edited_copy(tmp_path, move_rnn)
    before = path.read_bytes()
    result = run("summary", str(path))
    assert result.exit_code == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("Warning: ")
    assert "'rnn' (RNN(LSTMCell))" in warnings[0] and "'extra/rnn'" in warnings[0]
    # The rest is summarised as it is: every other layer, and the moved weights by where they are.
    for name in ("stack/cell_0", "bistack/backward/cell_1", "sub/pair/forward", "td", "extra/rnn"):
        assert f"\n│ {name} " in result.stdout or f"\n{name}: " in result.stdout, name
    assert path.read_bytes() == before


def test_config_and_weights_of_different_sizes_are_one_clear_error_naming_the_layer(tmp_path):
    def shrink_enc(f):
        config = json.loads(f.attrs["model_config"])
        (sub,) = [layer for layer in config["config"]["layers"] if layer["config"]["name"] == "sub"]
        (enc,) = [layer for layer in sub["config"]["layers"] if layer["config"]["name"] == "enc"]
        enc["config"]["units"] = 7
        f.attrs["model_config"] = json.dumps(config)

    path = _edited_copy(tmp_path, shrink_enc)
    with pytest.raises(CorruptFile, match="layer 'sub/enc': the model config says units = 7, but its weights hold 5"):
        lstm_inspect.load(path)
    for args in (["summary", str(path)], ["export", str(path), "-o", str(tmp_path / "out.npz")]):
        assert_clean_error(run(*args), "'sub/enc'", "units = 7", "hold 5")
    assert not (tmp_path / "out.npz").exists()


def test_convlstm_config_and_kernel_of_different_sizes_are_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "conv.h5"
    shutil.copy(FIXTURES / "keras2_conv" / "model.h5", path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        (conv,) = [layer for layer in config["config"]["layers"] if layer["config"]["name"] == "conv"]
        conv["config"]["kernel_size"] = [5, 3]
        f.attrs["model_config"] = json.dumps(config)
    assert_clean_error(run("summary", str(path)), "'conv'", "kernel_size[0] = 5", "hold 3")


def test_unsupported_is_the_error_for_a_layer_not_understood():
    with lstm_inspect.load(UNMODELLED) as ckpt, pytest.raises(UnsupportedFormat, match="does not understand"):
        ckpt.layer("normed/layer_norm_basic_lstm_cell")


@pytest.mark.parametrize(("rank", "kernel_size"), [(1, (3,)), (3, (2, 1, 2))])
def test_convlstm1d_and_3d_weights_in_an_npz_run_as_keras_own_layer(rank, kernel_size, tmp_path):
    # No fixture holds these ranks: Keras 3 makes the layer here, and its weights go into an .npz
    # under the names Keras gives them (defaults: strides 1, padding "valid", channels_last).
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(rank)
    channels, filters, spatial = 2, 3, (5, 4, 3)[:rank]
    layer = getattr(keras.layers, f"ConvLSTM{rank}D")(filters, kernel_size, return_sequences=True, return_state=True)
    x = rng.standard_normal((4, 2, *spatial, channels)).astype(np.float32)  # [T, B, *spatial, channels]
    layer.build((2, 4, *spatial, channels))
    values = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()]
    layer.set_weights(values)
    h, _, c = layer(np.swapaxes(x, 0, 1))
    path = tmp_path / "conv.npz"
    np.savez(path, **{f"conv/{name}": v for name, v in zip(("kernel", "recurrent_kernel", "bias"), values)})
    with lstm_inspect.load(path) as ckpt:
        (found,) = ckpt.layers
        assert found.layout.cell.name == f"ConvLSTM{rank}D"
        assert (found.input_size, found.units) == (channels, filters)
        got_h, got_c = run_numpy(found.weights(), x)
    np.testing.assert_allclose(got_h, np.swapaxes(np.asarray(h), 0, 1), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got_c, np.asarray(c), atol=ATOL, rtol=RTOL)
