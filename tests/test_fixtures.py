"""Every shipped fixture: detection matches what the framework built, and the split blocks,
run through the numpy LSTM, reproduce the framework's own outputs."""

from __future__ import annotations

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect.export import gate_arrays
from lstm_inspect.numpy_lstm import run_lstm
from lstm_inspect.results import summarize
from lstm_inspect.schema import LSTM
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES, UNREADABLE, load_options, manifest

ENTRIES = manifest()
IDS = [e["name"] for e in ENTRIES]
WITH_REFERENCE = [e for e in ENTRIES if e.get("reference")]


def test_v1_checkpoint_is_refused():
    (entry,) = [e for e in manifest(readable_only=False) if e["name"] in UNREADABLE]
    with pytest.raises(lstm_inspect.UnsupportedFormat, match="V1 TensorFlow checkpoint"):
        lstm_inspect.load(FIXTURES / entry["path"])


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_summary_matches_what_the_framework_built(entry):
    with lstm_inspect.load(FIXTURES / entry["path"], **load_options(entry)) as ckpt:
        summary = summarize(ckpt)
    got = {layer.name: layer for layer in summary.layers}
    assert sorted(got) == sorted(layer["name"] for layer in entry["layers"])
    for expected in entry["layers"]:
        layer = got[expected["name"]]
        assert layer.input_size == expected["input_size"]
        assert layer.units == expected["units"]
        assert layer.recurrent_size == expected["recurrent_size"]
        assert layer.projection == expected["projection"]
        assert layer.peepholes == expected["peepholes"]
        assert layer.params == expected["params"]
        assert layer.gate_order == expected["gate_order"]
        assert layer.forget_bias == expected["forget_bias"]
        # What the graph or the model config says (issue 11), or the framework's default.
        assert (layer.activation, layer.recurrent_activation) in (
            (expected["activation"], expected["recurrent_activation"]),
            ("unknown", "unknown"),  # a file without a model config: run as tanh and sigmoid
        )
        for clip in ("cell_clip", "proj_clip"):
            said = layer.settings.get(clip)
            assert (said.value if said else None) == expected.get(clip), clip
    assert summary.total_params == entry["total_params"]


def _check_layer(ckpt, expected, reference, gates_of, clips_of=None):
    # Everything from what lstm-inspect read: the blocks, the forget bias, activations and clips.
    layer = ckpt.layer(expected["name"])
    x = reference[f"{layer.name}/x"]
    activation, recurrent_activation = layer.activations()
    clips = layer.clips() if clips_of is None else clips_of(layer)
    h, c = run_lstm(
        gates_of(layer),
        x,
        forget_bias=layer.forget_bias,
        projection=layer.projection,
        activation=activation,
        recurrent_activation=recurrent_activation,
        cell_clip=clips.get("cell_clip"),
        proj_clip=clips.get("proj_clip"),
    )
    np.testing.assert_allclose(h, reference[f"{layer.name}/h"], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(c, reference[f"{layer.name}/c"], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("entry", WITH_REFERENCE, ids=[e["name"] for e in WITH_REFERENCE])
def test_split_blocks_reproduce_framework_outputs(entry):
    reference = np.load(FIXTURES / entry["reference"])
    with lstm_inspect.load(FIXTURES / entry["path"], **load_options(entry)) as ckpt:
        for expected in entry["layers"]:
            _check_layer(ckpt, expected, reference, lambda layer: {g: b.parts() for g, b in layer.gates().items()})


@pytest.mark.parametrize("entry", WITH_REFERENCE, ids=[e["name"] for e in WITH_REFERENCE])
def test_exported_npz_reproduces_framework_outputs(entry, tmp_path):
    reference = np.load(FIXTURES / entry["reference"])
    out = tmp_path / "gates.npz"
    with lstm_inspect.load(FIXTURES / entry["path"], **load_options(entry)) as ckpt:
        write_npz(str(out), gate_arrays(ckpt))
        exported = np.load(out)

        def from_npz(layer):
            assert float(exported[f"{layer.name}/forget_bias"]) == layer.forget_bias
            return {
                g: {part: exported[f"{layer.name}/{g}/{part}"] for part in b.parts()} for g, b in layer.gates().items()
            }

        def clips_from_npz(layer):
            keys = {clip: f"{layer.name}/{clip}" for clip in ("cell_clip", "proj_clip")}
            return {clip: float(exported[key]) for clip, key in keys.items() if key in exported}

        for expected in entry["layers"]:
            _check_layer(ckpt, expected, reference, from_npz, clips_from_npz)
        keys = set(exported.files)
        for layer in ckpt.layers:
            if layer.projection is not None:
                np.testing.assert_array_equal(exported[f"{layer.name}/projection"], layer.projection)
            else:
                assert f"{layer.name}/projection" not in keys
            for g in LSTM.gates:
                assert {f"{layer.name}/{g}/kernel", f"{layer.name}/{g}/recurrent"} <= keys


TF_CHECKPOINTS = [e for e in ENTRIES if e["format"] == "tf-checkpoint"]


@pytest.mark.parametrize("entry", TF_CHECKPOINTS, ids=[e["name"] for e in TF_CHECKPOINTS])
def test_native_reader_matches_tensorflow_bit_for_bit(entry):
    pytest.importorskip("tensorflow")
    from lstm_inspect.readers import open_store

    path = FIXTURES / entry["path"]
    with open_store(path) as native, open_store(path, backend="tensorflow") as reference:
        ours, theirs = native.tensors(), reference.tensors()
        assert list(ours) == list(theirs)
        for name, info in ours.items():
            assert (info.shape, info.dtype) == (theirs[name].shape, theirs[name].dtype), name
            a, b = native.read(name), reference.read(name)
            assert a.dtype == b.dtype and a.shape == b.shape, name
            if a.dtype == object:
                assert a.tolist() == b.tolist(), name
            else:
                assert a.tobytes() == b.tobytes(), name


def test_readme_library_example_runs_as_written():
    readme = (FIXTURES.parent / "README.md").read_text()
    snippet = readme.split("## As a library", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the README's own example
    forget = namespace["forget"]
    assert (forget.kernel.shape, forget.recurrent.shape, forget.bias.shape) == ((12, 64), (64, 64), (64,))
    # The README's next sentence: run_lstm takes layer.gates() as it is.
    layer = namespace["ckpt"].layer("rnn/basic_lstm_cell")
    reference = np.load(FIXTURES / "tf1_basic" / "reference.npz")
    h, _ = run_lstm(layer.gates(), reference["rnn/basic_lstm_cell/x"], forget_bias=layer.forget_bias)
    np.testing.assert_allclose(h, reference["rnn/basic_lstm_cell/h"], atol=2e-5, rtol=1e-4)
