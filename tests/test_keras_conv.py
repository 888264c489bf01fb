"""ConvLSTM1D and ConvLSTM3D as Keras 3 and tf_keras write them (issue 12; fixtures keras3_conv1d,
keras3_conv3d, keras2_conv1d, keras2_conv3d, in every format each Keras writes, with the layers' own
outputs): summary explains the kernels and the convolutions, split cuts each gate's block from its
stored tensor, export writes the gates and keras layouts and refuses the other targets in one line,
and the numpy ConvLSTM with the strides, padding and dilation the file says reproduces the
framework's outputs; verify runs it against Keras' own layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect.numpy_cells import run as run_numpy

from .conftest import FIXTURES
from .test_cli import assert_clean_error, run
from .test_targets import ATOL, RTOL

MODELS = ("keras3_conv1d", "keras3_conv3d", "keras2_conv1d", "keras2_conv3d")
ENTRIES = [
    e
    for e in json.loads((FIXTURES / "manifest.json").read_text())["forms_fixtures"]
    if e["reference"].split("/")[0] in MODELS
]
IDS = [e["name"] for e in ENTRIES]
# A bare weights file and Keras 3's model.export keep no model config: the convolutions are
# Keras' defaults there, and said to be assumed (schema.py keras-convlstm layouts).
CONFIG_LESS = {
    e["name"]
    for e in ENTRIES
    if e["name"].endswith("_weights") or (e["name"].startswith("keras3_") and e["name"].endswith("_saved_model"))
}
WITH_CONFIG = [e for e in ENTRIES if e["name"] not in CONFIG_LESS]
KERAS_ORDER = ("input", "forget", "cell", "output")  # Keras' i, f, c, o on the last axis (conv_lstm.py)
CONV1D = str(FIXTURES / "keras3_conv1d" / "model.keras")
CONV3D = str(FIXTURES / "keras2_conv3d" / "saved_model")


def test_the_fixtures_cover_both_ranks_in_every_format():
    assert len(ENTRIES) == 16 and len(CONFIG_LESS) == 6
    assert {e["format"] for e in ENTRIES} == {"keras-v3", "keras-h5", "keras-weights-h5", "saved-model"}
    strided = [layer for e in ENTRIES for layer in e["layers"] if max(layer["convolution"]["strides"]) > 1]
    dilated = [layer for e in ENTRIES for layer in e["layers"] if max(layer["convolution"]["dilation_rate"]) > 1]
    assert strided and dilated


def test_convlstm1d_summary_explains_the_kernels_and_the_convolutions():
    result = run("summary", CONV1D)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "ConvLSTM1D layers" in out
    assert "\nline: 2 input channels, 3 filters; gates i=input, f=forget, c=cell, o=output\n" in out
    assert "kernel [3, 2, 12] = [3 kernel, 2 input channels, 4 gates × 3 filters]" in out
    assert "recurrent_kernel [2, 2, 8] = [2 kernel, 2 recurrent channels, 4 gates × 2 filters]" in out
    assert "convolution: 3 kernel, strides 1, padding same, dilation 2, channels_last — config: line" in out
    assert "convolution: 2 kernel, strides 2, padding valid, dilation 1, channels_last — config: stride" in out


def test_convlstm3d_summary_of_a_tf_keras_saved_model_reads_its_tuples():
    # keras_metadata.pb writes a tuple as {"class_name": "__tuple__", "items": [...]}.
    result = run("summary", CONV3D)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "ConvLSTM3D layers" in out
    assert "kernel [2, 1, 2, 2, 8] = [2 × 1 × 2 kernel, 2 input channels, 4 gates × 2 filters]" in out
    assert "recurrent_kernel [2, 1, 2, 2, 8] = [2 × 1 × 2 kernel, 2 recurrent channels, 4 gates × 2 filters]" in out
    line = "convolution: 2 × 1 × 2 kernel, strides 2 × 1 × 1, padding same, dilation 1 × 1 × 1, channels_last"
    assert f"{line} — config: volume" in out
    assert "__tuple__" not in out


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_file_says_the_convolutions_or_that_they_are_assumed(entry):
    summary = run("summary", str(FIXTURES / entry["path"]))
    assert summary.exit_code == 0, summary.stderr
    text = " ".join(summary.stdout.split())  # a long setting line wraps at the terminal's width
    assert text.count(" convolution: ") == len(entry["layers"])
    said = "channels_last — assumed: Keras 3's default; the file has no model config to say"
    if entry["name"] in CONFIG_LESS:
        assert text.count(said) == len(entry["layers"])
    else:
        assert said not in text
        assert all(f"channels_last — config: {e['name']}" in text for e in entry["layers"])
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        for expected in entry["layers"]:
            layer = ckpt.layer(expected["name"])
            built = expected["convolution"]
            assert list(ckpt.store.tensors()[layer.spec.tensors["kernel"].name].shape[:-2]) == built["kernel_size"]
            if entry["name"] in CONFIG_LESS:
                rank = len(built["kernel_size"])
                conv = layer.conv()
                said = (list(conv["strides"]), conv["padding"], list(conv["dilation_rate"]))
                assert said == ([1] * rank, "valid", [1] * rank)
                assert all(layer.settings[name].value == "unknown" for name in ("strides", "padding", "dilation_rate"))
                continue
            conv = layer.conv()
            said = (list(conv["strides"]), conv["padding"], list(conv["dilation_rate"]))
            assert said == (built["strides"], built["padding"], built["dilation_rate"])
            assert not any(layer.settings[name].assumed for name in ("strides", "padding", "dilation_rate"))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_split_gives_each_gates_blocks_as_slices_of_the_stored_tensors(entry):
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        for expected in entry["layers"]:
            layer = ckpt.layer(expected["name"])
            stored = {role: ckpt.store.read(t.name) for role, t in layer.spec.tensors.items()}
            units = expected["units"]
            for position, gate in enumerate(KERAS_ORDER):
                block = layer.gate(gate)
                columns = slice(position * units, (position + 1) * units)
                np.testing.assert_array_equal(block.kernel, stored["kernel"][..., columns])
                np.testing.assert_array_equal(block.recurrent, stored["recurrent_kernel"][..., columns])
                np.testing.assert_array_equal(block.bias, stored["bias"][columns])
                rank = len(expected["convolution"]["kernel_size"])
                assert block.kernel.shape == (*expected["convolution"]["kernel_size"], expected["input_size"], units)
                assert block.kernel.ndim == rank + 2


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_export_writes_the_gates_and_keras_layouts_from_the_stored_tensors(entry, tmp_path):
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        stored = {
            e["name"]: {role: ckpt.store.read(t.name) for role, t in ckpt.layer(e["name"]).spec.tensors.items()}
            for e in entry["layers"]
        }
    for layout in ("gates", "keras"):
        out = tmp_path / f"{layout}.npz"
        result = run("export", str(FIXTURES / entry["path"]), "--layout", layout, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        with np.load(out) as npz:
            arrays = dict(npz)
        for expected in entry["layers"]:
            name, units, tensors = expected["name"], expected["units"], stored[expected["name"]]
            if layout == "keras":
                for role in ("kernel", "recurrent_kernel", "bias"):
                    np.testing.assert_array_equal(arrays[f"{name}/{role}"], tensors[role])
                continue
            for position, gate in enumerate(KERAS_ORDER):
                columns = slice(position * units, (position + 1) * units)
                np.testing.assert_array_equal(arrays[f"{name}/{gate}/kernel"], tensors["kernel"][..., columns])
                np.testing.assert_array_equal(
                    arrays[f"{name}/{gate}/recurrent"], tensors["recurrent_kernel"][..., columns]
                )
                np.testing.assert_array_equal(arrays[f"{name}/{gate}/bias"], tensors["bias"][columns])


@pytest.mark.parametrize(("path", "cell"), [(CONV1D, "ConvLSTM1D"), (CONV3D, "ConvLSTM3D")])
@pytest.mark.parametrize("layout", ["pytorch", "onnx", "tensorflow"])
def test_export_to_a_target_without_convlstm_is_refused_in_one_line(path, cell, layout, tmp_path):
    out = tmp_path / "out.npz"
    result = run("export", path, "--layout", layout, "-o", str(out))
    assert_clean_error(result, f"--layout {layout} holds no {cell} layers", "gates, keras")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entry", WITH_CONFIG, ids=[e["name"] for e in WITH_CONFIG])
def test_numpy_convlstm_with_the_files_own_convolutions_reproduces_the_frameworks_outputs(entry):
    # No setting from the manifest: strides, padding and dilation as the file's config says them.
    reference = np.load(FIXTURES / entry["reference"])
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        for expected in entry["layers"]:
            key = expected["reference_key"]
            h, c = run_numpy(ckpt.layer(expected["name"]).weights(), reference[f"{key}/x"])
            np.testing.assert_allclose(h, reference[f"{key}/h"], atol=ATOL, rtol=RTOL, err_msg=f"{key} h")
            np.testing.assert_allclose(c, reference[f"{key}/c"], atol=ATOL, rtol=RTOL, err_msg=f"{key} c")


@pytest.mark.parametrize(
    "model",
    ["keras3_conv1d/model.keras", "keras2_conv1d/model.h5", "keras3_conv3d/model.keras", "keras2_conv3d/model.h5"],
)
def test_verify_runs_the_numpy_convlstm_against_keras_own_layer_and_loader(model):
    pytest.importorskip("keras")
    with lstm_inspect.load(FIXTURES / model) as ckpt:
        result = ckpt.verify()
        names = [layer.name for layer in ckpt.layers]
    assert [layer.name for layer in result.layers] == names and result.ok
    for layer in result.layers:
        checks = {check.target: check for check in layer.checks}
        for name in ("numpy:gates", "numpy:keras", "keras", "keras-model"):
            check = checks[name]
            assert check.max_abs_diff is not None and check.passed(layer.tolerance), (layer.name, check)
        for name in ("numpy:pytorch", "numpy:onnx", "numpy:tensorflow", "torch", "onnxruntime", "tensorflow"):
            note = checks[name].note or ""
            assert checks[name].max_abs_diff is None and note.startswith("refused") and "ConvLSTM" in note
