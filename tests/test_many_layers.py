"""Thousands of layers (issue 9): the costs that were paid per layer, or per array, and are now paid
per structure, per batch or per megabyte, counted (never timed) on files of a few and of many
small layers. bench/run.py times every command on 6,000 layers."""

from __future__ import annotations

import contextlib
import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect import render, schema, slicer
from lstm_inspect.cli import main
from lstm_inspect.targets import tensorflow as tensorflow_target
from lstm_inspect.writers import npz as npz_writer
from tests.test_values import cell, write_checkpoint


def many_layers(tmp_path, n: int) -> str:
    arrays = {}
    for k in range(n):
        arrays.update(cell(f"rnn/multi_rnn_cell/cell_{k}/lstm_cell", seed=k))
    return write_checkpoint(str(tmp_path / f"many{n}"), arrays)


def counted(monkeypatch, owner: object, name: str) -> list[int]:
    """Calls of owner.name from now on, counted in the returned list's one element."""
    calls = [0]
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def test_blocks_are_located_once_per_structure(tmp_path, monkeypatch):
    monkeypatch.setattr(slicer, "_PLACED", {})
    located = counted(monkeypatch, schema, "locate")
    counts = {}
    for n in (2, 40):
        path = many_layers(tmp_path, n)
        before = located[0]
        result = CliRunner().invoke(main, ["split", path], catch_exceptions=False)
        assert result.exit_code == 0 and result.output.count("forget") >= n
        counts[n] = located[0] - before
    # The first file located its one structure; twenty times the layers of it locate nothing more.
    assert counts[40] == 0 < counts[2]


def test_blocks_of_other_shapes_are_located_anew(tmp_path):
    arrays = {**cell("a/lstm_cell", units=2), **cell("b/lstm_cell", units=3)}
    with lstm_inspect.load(write_checkpoint(str(tmp_path / "two"), arrays)) as ckpt:
        a, b = (layer.blocks() for layer in ckpt.layers)
    assert [x.shape for x in a if x.part == "kernel"][0] == (3, 2)
    assert [x.shape for x in b if x.part == "kernel"][0] == (3, 3)
    assert {x.tensor for x in a} == {"a/lstm_cell/kernel", "a/lstm_cell/bias"}


class CountingFile:
    """The export's temporary file, its writes and seeks counted."""

    def __init__(self, f):
        self.f, self.writes, self.seeks = f, 0, 0

    def write(self, data):
        self.writes += 1
        return self.f.write(data)

    def seek(self, *args):
        self.seeks += 1
        return self.f.seek(*args)

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_an_export_of_many_small_arrays_writes_the_file_a_megabyte_at_a_time(tmp_path, monkeypatch):
    files = []
    real = npz_writer.atomic_output

    @contextlib.contextmanager
    def counting_output(*args, **kwargs):
        with real(*args, **kwargs) as f:
            files.append(CountingFile(f))
            yield files[-1]

    monkeypatch.setattr(npz_writer, "atomic_output", counting_output)
    out = tmp_path / "out.npz"
    with lstm_inspect.load(many_layers(tmp_path, 300)) as ckpt:
        result = ckpt.export(str(out), "gates")
    assert result.arrays == 300 * 13
    (f,) = files
    # zipfile seeks back to every member's header (three seeks a member, each writing the buffer
    # out: 11,700 here); gathered, the file takes a write per _GATHER_BYTES and two seeks.
    size = out.stat().st_size
    assert f.writes <= size // npz_writer._GATHER_BYTES + 4, (f.writes, size)
    assert f.seeks <= 2
    with np.load(out) as loaded:
        assert len(loaded.files) == 300 * 13
        kernel = loaded["rnn/multi_rnn_cell/cell_299/lstm_cell/forget/kernel"]
    assert kernel.shape == (3, 2)


def test_a_large_member_header_is_filled_in_after_its_data(tmp_path):
    # Writes of _DIRECT_BYTES or more go to the file as they come; the header zipfile rewrites
    # afterwards lies before them, outside what is gathered.
    big = np.arange(3 * npz_writer._DIRECT_BYTES, dtype=np.float32).reshape(3, -1)
    arrays = [("a", np.float32(1.0)), ("big", big), ("z", np.arange(5))]
    npz_writer.write_npz(str(tmp_path / "x.npz"), arrays)
    with np.load(tmp_path / "x.npz") as loaded:
        assert loaded["a"] == 1.0 and np.array_equal(loaded["big"], big) and np.array_equal(loaded["z"], np.arange(5))


def test_the_reading_thread_hands_over_batches_not_arrays(tmp_path, monkeypatch):
    sizes = []
    real = npz_writer._batches

    def recording(items, piece_bytes):
        for batch in real(items, piece_bytes):
            sizes.append(len(batch))
            yield batch

    monkeypatch.setattr(npz_writer, "_batches", recording)
    with lstm_inspect.load(many_layers(tmp_path, 100)) as ckpt:
        result = ckpt.export(str(tmp_path / "out.npz"), "pytorch")
    # 100 layers' arrays and their headers: a handful of batches, not a queue item per array.
    assert sum(sizes) == 2 * result.arrays and len(sizes) <= 2 * result.arrays // npz_writer._BATCH_ITEMS + 2


def test_split_json_writes_pieces_per_layer_not_per_number(tmp_path):
    with lstm_inspect.load(many_layers(tmp_path, 50)) as ckpt:
        stream = ckpt.split()
        pieces = list(render._json_chunks({"path": stream.path, "layers": stream.layers}, ""))
    text = "".join(pieces)
    assert len(json.loads(text)["layers"]) == 50
    # A piece per layer and its separator, and the object's opening and closing: the numbers of a
    # layer are joined into its piece (a piece each, they were 400 a layer).
    assert len(pieces) <= 2 * 50 + 3


def test_split_json_is_json_dumps_with_indent_2(tmp_path):
    from lstm_inspect.results import split

    with lstm_inspect.load(many_layers(tmp_path, 3)) as ckpt:
        whole = json.dumps(split(ckpt, values=True).to_dict(), indent=2) + "\n"
    result = CliRunner().invoke(main, ["split", many_layers(tmp_path, 3), "--values", "--json"])
    assert result.exit_code == 0 and result.output == whole


def test_split_measures_printable_names_without_rich(tmp_path, monkeypatch):
    import rich.cells

    measured = counted(monkeypatch, rich.cells, "cell_len")  # render imports it where it measures
    result = CliRunner().invoke(main, ["split", many_layers(tmp_path, 20)], catch_exceptions=False)
    assert result.exit_code == 0
    assert measured[0] == 0
    assert render.cell_len("größe") == 5 and render.cell_len("重み") == 4 and measured[0] == 2


@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("tensorflow", "tf_keras", "keras")), reason="needs TensorFlow"
)
def test_verify_starts_one_tensorflow_worker_and_asks_it_per_checked_unit(tmp_path, monkeypatch):
    from lstm_inspect import verify as verify_module

    starts = counted(monkeypatch, tensorflow_target._Worker, "_start")
    asked = counted(monkeypatch, tensorflow_target._Worker, "answer")
    with lstm_inspect.load(many_layers(tmp_path, 60)) as ckpt:
        result = verify_module.verify(ckpt, frameworks=("keras", "tensorflow"), per_structure=2)
    assert result.ok and len(result.layers) == 60
    checked = [layer for layer in result.layers if layer.checks]
    assert len(checked) == 2 and {c.target for c in checked[0].checks} >= {"keras", "tensorflow"}
    # One worker for TensorFlow's and Keras 3's checks alike, started once, asked once per check of
    # each unit checked in full: never per layer of the file.
    assert starts[0] <= 1 and asked[0] == 2 * len(checked)


def test_the_verify_worker_runs_keras_as_keras_runs_here(monkeypatch):
    pytest.importorskip("keras")
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs TensorFlow")
    from lstm_inspect.targets import keras as keras_target

    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in ((3, 8), (2, 8), (8,))]
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    arguments = {"activation": "tanh", "recurrent_activation": "sigmoid", "cell": "LSTM", "conv": None}
    ((h, c),) = tensorflow_target.run_keras([(values, x, arguments)])
    here_h, here_c = keras_target.outputs(values, x, **arguments)
    assert np.allclose(h, here_h, atol=1e-6) and np.allclose(c, here_c, atol=1e-6)
    assert h.shape == (4, 2, 2)
