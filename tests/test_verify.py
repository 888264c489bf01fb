"""verify: numpy on every export read back and each framework on its export agree with the numpy LSTM
on the split blocks; refusals and missing libraries are reported, not failed; a wrong conversion
fails with a non-zero exit."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect import weights as weights_module
from lstm_inspect.api import Checkpoint
from lstm_inspect.cli import main
from lstm_inspect.targets import TARGETS
from lstm_inspect.verify import CHECKS, tolerance_for, verify

from .conftest import FIXTURES
from .test_slicer import MemoryStore

NUMPY_TARGETS = [c for c in CHECKS if c.startswith("numpy:")]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def numbers(layer) -> dict[str, float]:
    return {c.target: c.max_abs_diff for c in layer.checks if c.max_abs_diff is not None}


def notes(layer) -> dict[str, str]:
    return {c.target: c.note for c in layer.checks if c.note is not None}


def tf1_cell(peepholes: bool = False, projection: int | None = None, units: int = 6, inputs: int = 5) -> MemoryStore:
    rng = np.random.default_rng(7)
    rec = projection or units
    arrays = {
        "rnn/lstm_cell/kernel": (rng.normal(size=(inputs + rec, 4 * units)) * 0.6).astype(np.float32),
        "rnn/lstm_cell/bias": (rng.normal(size=4 * units) * 0.5).astype(np.float32),
    }
    if peepholes:
        arrays.update({f"rnn/lstm_cell/w_{g}_diag": rng.normal(size=units).astype(np.float32) for g in "ifo"})
    if projection:
        arrays["rnn/lstm_cell/projection/kernel"] = rng.normal(size=(units, projection)).astype(np.float32)
    return MemoryStore(arrays)


def test_a_bidirectional_tf1_pair_passes_every_target():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("keras")
    with lstm_inspect.load(FIXTURES / "tf1_bidi" / "model.ckpt") as ckpt:
        result = verify(ckpt)
    assert result.ok
    assert [layer.name for layer in result.layers] == [
        "bidirectional_rnn/fw/basic_lstm_cell",
        "bidirectional_rnn/bw/basic_lstm_cell",
    ]
    for layer in result.layers:
        # The file is not a Keras model: no keras-model column; TensorFlow wrote it: tf-cell.
        expected = [*NUMPY_TARGETS, "torch", "onnxruntime", "keras", "tensorflow", "tf-cell"]
        assert sorted(numbers(layer)) == sorted(expected)
        assert max(numbers(layer).values()) < 1e-5
        assert numbers(layer)["numpy:gates"] == 0.0 and numbers(layer)["numpy:tensorflow"] == 0.0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["ok"] is True and data["layers"][0]["checks"][0]["target"] == "numpy:gates"


def test_peepholes_run_through_onnxruntime_and_are_refused_by_torch_and_keras():
    pytest.importorskip("onnxruntime")
    result = verify(Checkpoint(tf1_cell(peepholes=True)), frameworks=["torch", "onnxruntime", "keras"])
    (layer,) = result.layers
    assert result.ok and numbers(layer)["onnxruntime"] < 1e-5
    assert notes(layer)["torch"] == "refused: torch.nn.LSTM has no peephole connections"
    assert notes(layer)["numpy:keras"] == "refused: keras.layers.LSTM has no peephole connections"


def test_a_projection_runs_through_torch_and_is_refused_by_onnx():
    pytest.importorskip("torch")
    result = verify(Checkpoint(tf1_cell(projection=3)), frameworks=["torch", "onnxruntime"])
    (layer,) = result.layers
    assert result.ok and numbers(layer)["torch"] < 1e-5 and numbers(layer)["numpy:tensorflow"] == 0.0
    assert notes(layer)["onnxruntime"] == "refused: the ONNX LSTM operator has no projection"


@pytest.mark.parametrize(
    ("path", "expected_keras_model"),
    [
        ("keras3/model.keras", True),
        ("keras2_old_hard_sigmoid/model.h5", True),
        ("keras3_hard_sigmoid/model.keras", True),
        ("keras3_hard_sigmoid/model.h5", True),
        ("keras3/model.weights.h5", False),
    ],
)
def test_keras_files_are_also_run_by_keras_own_loader(path, expected_keras_model):
    pytest.importorskip("keras")
    with lstm_inspect.load(FIXTURES / path) as ckpt:
        result = verify(ckpt, frameworks=["keras", "keras-model"])
    assert result.ok
    for layer in result.layers:
        assert numbers(layer)["keras"] < 1e-5
        assert ("keras-model" in numbers(layer)) == expected_keras_model
    if "hard_sigmoid" in path:
        assert notes(result.layers[0])["numpy:pytorch"].startswith("refused: torch.nn.LSTM computes its gates")


def test_a_missing_library_is_reported_not_failed(monkeypatch):
    import lstm_inspect.verify as verify_module

    monkeypatch.setattr(verify_module, "installed", lambda *modules: "torch" not in modules)
    result = verify(Checkpoint(tf1_cell()), frameworks=["torch"])
    assert result.ok and notes(result.layers[0]) == {"torch": "not installed: torch"}


def test_a_dropped_forget_bias_fails_verify_and_the_command(monkeypatch, tmp_path):
    # A converter that forgets to fold TF1's forget bias of 1.0: what verify exists to catch.
    monkeypatch.setattr(weights_module, "fold_forget_bias", lambda weights, runtime: weights)
    path = str(FIXTURES / "tf1_basic" / "model.ckpt")
    with lstm_inspect.load(path) as ckpt:
        result = verify(ckpt, frameworks=[])
    (layer,) = result.layers
    failed = {check.target for _, check in result.failures()}
    assert not result.ok and failed == {"numpy:pytorch", "numpy:onnx", "numpy:keras"}
    assert numbers(layer)["numpy:gates"] == 0.0
    cli = run("verify", path)
    assert cli.exit_code == 1
    assert "FAIL" in cli.stdout and "check(s) exceed the tolerance." in cli.stdout
    (line,) = cli.stderr.strip().splitlines()[-1:]
    assert line.startswith("Error: ") and "rnn/basic_lstm_cell numpy:pytorch" in line


def test_cli_table_and_json():
    pytest.importorskip("torch")
    path = str(FIXTURES / "tf1_peephole_proj" / "model.ckpt")
    result = run("verify", path)
    assert result.exit_code == 0, result.stderr
    assert "rnn/lstm_cell" in result.stdout and "All 4 checks within tolerance." in result.stdout
    assert "torch.nn.LSTM has no peephole" in result.stdout
    data = json.loads(run("verify", path, "--json", "--seed", "3").stdout)
    assert data["ok"] is True and data["seed"] == 3
    (layer,) = data["layers"]
    assert {c["target"] for c in layer["checks"] if c["max_abs_diff"] is not None} == {
        "numpy:gates",
        "numpy:tensorflow",
        "tensorflow",  # a TF1 LSTMCell on the export
        "tf-cell",  # TensorFlow's own cell on the file's weights, read by TensorFlow
    }


def test_cli_unknown_layer_is_a_one_line_error():
    result = run("verify", str(FIXTURES / "tf1_basic" / "model.ckpt"), "--layer", "nope")
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "rnn/basic_lstm_cell" in line


def test_tolerance_follows_the_dtype_and_the_output_scale():
    small, large = np.full((2, 2), 0.5), np.full((2, 2), 10.0)
    assert tolerance_for("float32", small) == 1e-4
    assert tolerance_for("float32", large) == pytest.approx(1e-3)
    assert tolerance_for("float16", small) > tolerance_for("float32", small) > tolerance_for("float64", small)


def test_a_framework_that_rejects_an_export_fails_the_check(monkeypatch):
    import lstm_inspect.verify as verify_module

    def broken(arrays, directions, x):
        raise RuntimeError("Error(s) in loading state_dict for LSTM:\nMissing key(s)")

    monkeypatch.setitem(TARGETS, "pytorch", dataclasses.replace(TARGETS["pytorch"], run=broken))
    monkeypatch.setattr(verify_module, "installed", lambda *modules: True)
    result = verify(Checkpoint(tf1_cell()), frameworks=["torch"])
    (layer,) = result.layers
    (check,) = [c for c in layer.checks if c.target == "torch"]
    assert not result.ok and check.error == "RuntimeError: Error(s) in loading state_dict for LSTM:"
    cli = run("verify", str(FIXTURES / "tf1_basic" / "model.ckpt"))
    assert cli.exit_code == 1 and "FAIL: RuntimeError" in cli.stdout
    assert cli.stderr.strip().splitlines()[-1].endswith("torch RuntimeError: Error(s) in loading state_dict for LSTM:")
