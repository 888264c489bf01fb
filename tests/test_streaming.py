"""Big layers (issue #13): every layout streamed from views of the stored tensors, bit for bit what
whole arrays held; memory bounded (tracemalloc, which counts numpy's allocations and not the
pages of a mapped file); honest progress; Ctrl-C that leaves nothing; tensors read through a
memory map of their shard and unmapped on release."""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstm_inspect
from lstm_inspect import export, schema, slicer
from lstm_inspect.targets import TARGETS
from lstm_inspect.weights import Weights, normalize
from lstm_inspect.writers import npz as npz_writer
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES, manifest
from .test_tf_bundle import entry, write_bundle

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
LAYOUT_TARGETS = [name for name, target in TARGETS.items() if target.layout is not None]


def reference_pack(layout, directions, sizes):
    """slicer.pack as it was before it streamed (whole np.zeros arrays, blocks assigned in turn):
    what every streamed array must equal, bit for bit."""
    dtype = next(iter(directions[0].values())).dtype
    if layout.has_direction_axis:
        groups = [("", list(enumerate(directions)))]
    else:
        suffixes = layout.direction_suffixes or ("",)
        if len(directions) > len(suffixes):
            raise ValueError(f"layout {layout.key} holds one direction per layer")
        groups = [(suffix, [(0, blocks)]) for suffix, blocks in zip(suffixes, directions)]
    sizes = {**sizes, "direction": len(directions)}
    out = {}
    for suffix, group in groups:
        for role in layout.roles:
            placed = [
                (location, block)
                for index, blocks in group
                for (gate, part), block in blocks.items()
                if (location := schema.locate(layout, role, gate, part, sizes, index)) is not None
            ]
            if not placed:
                if role.optional:
                    continue
                if any(part not in schema.BIAS_PARTS for part in role.parts()):
                    raise ValueError(f"layout {layout.key}: nothing to write into {role.key}")
            array = np.zeros(schema.role_shape(role, sizes), dtype=dtype)
            for location, block in placed:
                target = array[tuple(slice(a, b) for a, b in location.region)]
                if location.squeeze:
                    target = target.squeeze(axis=location.squeeze)
                target[...] = np.transpose(block, np.argsort(location.order))
            out[role.key + suffix] = array
    return out


def assert_identical(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape), what
    assert got.tobytes() == expected.tobytes(), what


def joined(packed: slicer.Packed, piece_bytes: int) -> np.ndarray:
    pieces = list(packed.pieces(piece_bytes))
    assert all(p.flags.c_contiguous and p.dtype == packed.dtype for p in pieces)
    assert all(p.nbytes <= max(piece_bytes, packed.dtype.itemsize) for p in pieces)
    flat = np.concatenate([p.reshape(-1) for p in pieces]) if pieces else np.zeros(0, packed.dtype)
    return flat.reshape(packed.shape)


def assert_streams_like_reference(layout, directions, sizes, piece_sizes=(1, 13, 4096, 1 << 20)) -> None:
    expected = reference_pack(layout, directions, sizes)
    packing = slicer.packing(layout, directions, sizes)
    assert list(packing) == list(expected)
    for key, packed in packing.items():
        assert_identical(packed.array(), expected[key], f"{layout.key} {key} whole")
        for piece_bytes in piece_sizes:
            assert_identical(joined(packed, piece_bytes), expected[key], f"{layout.key} {key} in {piece_bytes}")


# ---- bit for bit: every fixture, every target ------------------------------------------------------


def readable_fixtures():
    gru = json.loads((FIXTURES / "manifest.json").read_text())["gru_fixtures"]
    return [e for e in [*manifest(), *gru] if (FIXTURES / e["path"]).exists()]


def expected_arrays(target, group, weights) -> dict[str, np.ndarray]:
    """What `target` writes for one exported layer, made as before it streamed: the blocks packed
    whole into the layout of their cell kind, and any small array of the target's own (the ONNX
    GRU's linear_before_reset) as the target's packing gives it."""
    layout = target.weights_layout(weights[0])
    copies = [normalize(w, layout, target.runtime_forget_bias) for w in weights]
    own = {k: v for k, v in target.packing(weights).items() if not isinstance(v, slicer.Packed)}
    return {**reference_pack(layout, [w.blocks for w in copies], copies[0].sizes), **own}


@pytest.mark.parametrize("entry", readable_fixtures(), ids=lambda e: e["name"])
def test_every_target_of_every_fixture_streams_what_whole_arrays_held(entry):
    with lstm_inspect.load(FIXTURES / entry["path"]) as ckpt:
        for name in LAYOUT_TARGETS:
            target = TARGETS[name]
            for unit in ckpt.units(paired=target.paired):
                if unit.mismatch() or any(target.refusal(layer.features()) for layer in unit.layers):
                    continue
                runtime = target.runtime_forget_bias
                for group in [unit.layers] if target.paired else [[layer] for layer in unit.layers]:
                    expected = expected_arrays(target, group, [layer.weights() for layer in group])
                    streamed = target.packing([layer.weights(views=True) for layer in group])
                    layout = target.weights_layout(group[0].weights(views=True))
                    assert layout.cell is group[0].layout.cell, (name, unit.name)
                    assert list(streamed) == list(expected), (name, unit.name)
                    for key, packed in streamed.items():
                        if not isinstance(packed, slicer.Packed):
                            assert_identical(packed, expected[key], f"{name} {unit.name} {key}")
                            continue
                        assert_identical(packed.array(), expected[key], f"{name} {unit.name} {key}")
                        assert_identical(joined(packed, 100), expected[key], f"{name} {unit.name} {key} pieces")
                    views = [normalize(layer.weights(views=True), layout, runtime) for layer in group]
                    assert_streams_like_reference(layout, [w.blocks for w in views], views[0].sizes, (7, 4096))
                for layer in unit.layers:
                    layer.release()


@pytest.mark.parametrize("path", ["tf1_bidi_multi/model.ckpt", "tf1_gru_bidi/model.ckpt", "keras3_gru/model.keras"])
@pytest.mark.parametrize("name", ["pytorch", "onnx", "keras", "tensorflow"])
def test_a_streamed_export_file_holds_the_reference_arrays(tmp_path, monkeypatch, name, path):
    monkeypatch.setattr(npz_writer, "_PIECE_BYTES", 256)  # many pieces per array, crossing threads
    target = TARGETS[name]
    with lstm_inspect.load(FIXTURES / path) as ckpt:
        if any(target.refusal(layer.features()) for layer in ckpt.layers):
            pytest.skip(f"{name} refuses {path}")
        out = tmp_path / "out.npz"
        ckpt.export(str(out), name)
        expected = {}
        units = export.export_units(ckpt, target)
        prefixed = not (target.unprefixed_single and len(units) == 1)
        for unit in units:
            groups = [(unit.name, unit.layers)] if target.paired else [(layer.name, [layer]) for layer in unit.layers]
            for exported, group in groups:
                for key, value in expected_arrays(target, group, [layer.weights() for layer in group]).items():
                    expected[f"{exported}/{key}" if prefixed else key] = value
    with np.load(out) as loaded:
        assert sorted(npz_writer.decode_key(k) for k in loaded.files) == sorted(expected)
        for key in loaded.files:
            assert_identical(loaded[key], expected[npz_writer.decode_key(key)], key)


# ---- bit for bit: random layouts -----------------------------------------------------------------------


@st.composite
def random_layers(draw):
    """Canonical blocks of one or two directions, of any sizes and parts, as C arrays, transposed
    views or column slices of a larger array (what views of stored tensors look like)."""
    dtype = draw(st.sampled_from([np.float32, np.float16, np.float64]))
    input_size, units = draw(st.integers(1, 9)), draw(st.integers(1, 7))
    projection = draw(st.none() | st.integers(1, 5))
    parts = draw(st.sets(st.sampled_from(["bias", "recurrent_bias", "peephole"])))
    count = draw(st.sampled_from([1, 2]))
    storage = draw(st.sampled_from(["contiguous", "transposed", "columns"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))

    def block(*shape):
        if storage == "transposed" and len(shape) == 2:
            return np.ascontiguousarray(rng.standard_normal(shape[::-1]).astype(dtype)).T
        if storage == "columns" and len(shape) == 2:
            return rng.standard_normal((shape[0], shape[1] * 3)).astype(dtype)[:, shape[1] : 2 * shape[1]]
        return rng.standard_normal(shape).astype(dtype)

    directions = []
    for _ in range(count):
        recurrent = projection or units
        blocks = {}
        for gate in schema.LSTM.gates:
            blocks[(gate, "kernel")] = block(input_size, units)
            blocks[(gate, "recurrent")] = block(recurrent, units)
            for part in parts:
                if part != "peephole" or gate in schema.LSTM.peephole_gates:
                    blocks[(gate, part)] = block(units)
        if projection:
            blocks[(None, "projection")] = block(units, projection)
        directions.append(blocks)
    sizes = {"input": input_size, "units": units, "recurrent": projection or units}
    if projection:
        sizes["projection"] = projection
    return directions, sizes


# The layouts of the cell kind random_layers makes (a GRU's and a ConvLSTM's blocks have other
# gates and sizes: their fixtures stream through every layout in the tests above and in test_keras_forms).
LSTM_LAYOUTS = sorted(key for key, layout in schema.LAYOUTS.items() if layout.cell is schema.LSTM)


@settings(max_examples=150, deadline=None)
@given(random_layers(), st.sampled_from(LSTM_LAYOUTS), st.integers(1, 700))
def test_random_layers_stream_what_whole_arrays_held(monkeypatch_tile, layer, key, piece_bytes):
    directions, sizes = layer
    layout = schema.LAYOUTS[key]
    try:
        expected = reference_pack(layout, directions, sizes)
    except ValueError as e:  # a layout that cannot hold these blocks refuses them alike
        with pytest.raises(ValueError, match=str(e)):
            slicer.packing(layout, directions, sizes)
        return
    for name, packed in slicer.packing(layout, directions, sizes).items():
        assert_identical(packed.array(), expected[name], f"{key} {name}")
        assert_identical(joined(packed, piece_bytes), expected[name], f"{key} {name} in {piece_bytes}")


@pytest.fixture(scope="module")
def monkeypatch_tile():
    # Tiles of 2 columns: the random blocks, a few columns wide, go through the tiled copy too.
    previous = slicer._TILE
    slicer._TILE = 2
    yield
    slicer._TILE = previous


def test_a_transposed_block_wider_than_a_tile_is_copied_tile_by_tile():
    rng = np.random.default_rng(5)
    fused = rng.standard_normal((300, 4 * 200)).astype(np.float32)  # TF1: [input + recurrent, 4u]
    blocks = {}
    for k, gate in enumerate(("input", "cell", "forget", "output")):
        blocks[(gate, "kernel")] = fused[:100, k * 200 : (k + 1) * 200]
        blocks[(gate, "recurrent")] = fused[100:, k * 200 : (k + 1) * 200]
    sizes = {"input": 100, "units": 200, "recurrent": 200}
    for key in ("pytorch", "onnx", "keras", "tf1"):
        assert_streams_like_reference(schema.LAYOUTS[key], [blocks], sizes, (1000, 8192, 1 << 20))


# ---- the .onnx model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "tf1_basic/model.ckpt",
        "tf1_bidi/model.ckpt",
        "tf1_peephole_proj/model.ckpt",
        "tf1_gru_bidi/model.ckpt",  # a GRU node, linear_before_reset 0
        "keras3_gru/model.keras",  # linear_before_reset 1
    ],
)
def test_the_onnx_model_is_written_a_piece_at_a_time_with_the_reference_values(tmp_path, path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from lstm_inspect.targets.onnx import OPERATORS
    from lstm_inspect.writers.onnx_model import build_model, write_onnx

    target = TARGETS["onnx"]
    with lstm_inspect.load(FIXTURES / path) as ckpt:
        for unit in ckpt.units(paired=True):
            if unit.mismatch() or any(target.refusal(layer.features()) for layer in unit.layers):
                continue
            out = tmp_path / "model.onnx"
            size = write_onnx(str(out), [layer.weights(views=True) for layer in unit.layers], unit.name)
            data = out.read_bytes()
            assert size == len(data)
            assert data == build_model([layer.weights() for layer in unit.layers], unit.name).SerializeToString()
            expected = expected_arrays(target, unit.layers, [layer.weights() for layer in unit.layers])
            model = onnx.load_from_string(data)
            onnx.checker.check_model(model)
            (node,) = model.graph.node
            assert node.op_type == unit.layers[0].layout.cell.name
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            for attribute in OPERATORS[node.op_type].attributes:  # the node's own, beside its inputs' arrays
                if attribute in expected:
                    assert attributes[attribute] == int(expected.pop(attribute))
            got = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
            assert sorted(got) == sorted(expected)
            for key, value in got.items():
                assert_identical(value, expected[key].astype(np.float32), key)


# ---- a generated big-ish checkpoint: memory, progress, memory maps ----------------------------------------

UNITS = INPUTS = 512  # a [1024, 2048] float32 kernel: 8 MiB, the largest tensor
KERNEL_BYTES = (INPUTS + UNITS) * 4 * UNITS * 4
PIECE = 64 << 10


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> str:
    """One TF1 LSTMCell(512) on 512 inputs: its kernel and bias, written without TensorFlow."""
    prefix = str(tmp_path_factory.mktemp("wide") / "model.ckpt")
    rng = np.random.default_rng(13)
    kernel = (rng.standard_normal((INPUTS + UNITS, 4 * UNITS)) * 0.02).astype(np.float32).tobytes()
    bias = (rng.standard_normal(4 * UNITS) * 0.02).astype(np.float32).tobytes()
    entries = {
        b"rnn/lstm_cell/kernel": entry(1, (INPUTS + UNITS, 4 * UNITS), len(kernel), kernel),
        b"rnn/lstm_cell/bias": entry(1, (4 * UNITS,), len(bias), bias, offset=len(kernel)),
    }
    write_bundle(prefix, entries, kernel + bias)
    return prefix


@dataclasses.dataclass
class BigLayer:
    prefix: str
    largest: int  # bytes of its largest tensor
    total: int  # bytes of all its tensors


@pytest.fixture(scope="module", params=["LSTM", "GRU"])
def big_layer(request, tmp_path_factory, wide) -> BigLayer:
    """`wide`, or a TF1 GRUCell(512) on 512 inputs (gates/kernel [1024, 1024], candidate/kernel
    [1024, 512]), written without TensorFlow."""
    if request.param == "LSTM":
        return BigLayer(wide, KERNEL_BYTES, KERNEL_BYTES + 4 * UNITS * 4)
    prefix = str(tmp_path_factory.mktemp("wide_gru") / "model.ckpt")
    rng = np.random.default_rng(17)
    shapes = {
        b"rnn/gru_cell/gates/kernel": (INPUTS + UNITS, 2 * UNITS),
        b"rnn/gru_cell/gates/bias": (2 * UNITS,),
        b"rnn/gru_cell/candidate/kernel": (INPUTS + UNITS, UNITS),
        b"rnn/gru_cell/candidate/bias": (UNITS,),
    }
    entries, data = {}, b""
    for name, shape in shapes.items():
        values = (rng.standard_normal(shape) * 0.02).astype(np.float32).tobytes()
        entries[name] = entry(1, shape, len(values), values, offset=len(data))
        data += values
    write_bundle(prefix, entries, data)
    with lstm_inspect.load(prefix) as ckpt:
        assert [layer.layout.cell.name for layer in ckpt.layers] == ["GRU"]
    return BigLayer(prefix, (INPUTS + UNITS) * 2 * UNITS * 4, len(data))


def traced_peak(run) -> int:
    """The most memory numpy and Python held at once while `run` ran (every thread's)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", list(TARGETS))
def test_every_layout_exports_in_memory_of_a_few_pieces(tmp_path, monkeypatch, big_layer, layout):
    monkeypatch.setattr(npz_writer, "_PIECE_BYTES", PIECE)
    with lstm_inspect.load(big_layer.prefix) as ckpt:
        if any(TARGETS[layout].refusal(layer.features()) for layer in ckpt.layers):
            pytest.skip(f"{layout} refuses a TF1 GRUCell")
        peak = traced_peak(lambda: ckpt.export(str(tmp_path / "out.npz"), layout))
    # The pieces in flight between the threads and one being made, and the 512 KiB float64 chunk
    # of values Layer checks at a time: a quarter of the kernel, which a layout that made its
    # arrays whole would hold at least once.
    assert peak < 16 * PIECE + (768 << 10), f"{layout}: {peak:,} bytes"
    assert peak < big_layer.largest / 3


def test_the_onnx_model_is_written_in_memory_of_a_few_pieces(tmp_path, monkeypatch, big_layer):
    pytest.importorskip("onnx")
    from lstm_inspect.writers import onnx_model

    monkeypatch.setattr(onnx_model, "_PIECE_BYTES", PIECE)
    with lstm_inspect.load(big_layer.prefix) as ckpt:
        peak = traced_peak(lambda: ckpt.export(str(tmp_path / "m.onnx"), "onnx"))
    assert peak < big_layer.largest / 3, f"{peak:,} bytes"


def test_verify_holds_one_target_export_at_a_time(monkeypatch, big_layer):
    monkeypatch.setattr(npz_writer, "_PIECE_BYTES", PIECE)
    with lstm_inspect.load(big_layer.prefix) as ckpt:
        result = None

        def run():
            nonlocal result
            result = ckpt.verify(frameworks=[])

        peak = traced_peak(run)
    assert result is not None and result.ok and len(result.layers[0].checks) == len(TARGETS)
    # The numpy cell works in float64 (twice the float32 weights) on one export read back (once
    # more): 3 times the layer's bytes, where holding every target's export at once took 6 and more.
    assert peak < 3.5 * big_layer.total, f"{peak:,} bytes, {peak / big_layer.total:.1f} times the layer"


@pytest.mark.parametrize(("layout", "gates"), [("gates", ()), ("gates", ("forget",)), ("pytorch", ()), ("onnx", ())])
def test_export_progress_is_monotone_and_reaches_the_bytes_written(tmp_path, monkeypatch, big_layer, layout, gates):
    monkeypatch.setattr(npz_writer, "_PIECE_BYTES", PIECE)
    calls = []
    with lstm_inspect.load(big_layer.prefix) as ckpt:
        cell = ckpt.layers[0].layout.cell
        if any(TARGETS[layout].refusal(layer.features()) for layer in ckpt.layers):
            pytest.skip(f"{layout} refuses a TF1 GRUCell")
        gates = tuple(cell.gates[-1:]) if gates else ()  # one gate of the cell kind
        result = ckpt.export(str(tmp_path / "out.npz"), layout, gates=gates, progress=lambda n, t: calls.append((n, t)))
    done = np.cumsum([n for n, _ in calls])
    share = len(cell.gates) if gates else 1
    assert len(calls) > big_layer.total // PIECE // share // 2  # a piece at a time, not per array
    assert all(n >= 0 for n, _ in calls) and all(d <= t for d, (_, t) in zip(done, calls))
    assert done[-1] == calls[-1][1] == result.bytes
    with np.load(tmp_path / "out.npz") as loaded:
        assert result.bytes == sum(loaded[key].nbytes for key in loaded.files)


def test_verify_progress_is_monotone_and_reaches_its_total(big_layer):
    calls = []
    with lstm_inspect.load(big_layer.prefix) as ckpt:
        ckpt.verify(frameworks=[], progress=lambda n, t: calls.append((n, t)))
    totals = {t for _, t in calls}
    assert len(totals) == 1 and len(calls) == 1 + len(TARGETS)
    assert sum(n for n, _ in calls) == totals.pop()


def mapped(path: str) -> list[str]:
    return [line for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(path)]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_a_large_tensor_is_read_through_a_memory_map_unmapped_on_release(wide):
    shard = wide + ".data-00000-of-00001"
    with lstm_inspect.load(wide) as ckpt:
        (layer,) = ckpt.layers
        weights = layer.weights(views=True)
        kernel = weights.block("forget", "kernel")
        assert not kernel.flags.writeable  # a view of the read-only map, no copy
        assert len(mapped(shard)) == 1  # the kernel; the 8 KiB bias was read into an array
        del weights, kernel
        layer.release()
        assert mapped(shard) == []
        copy = layer.read(layer.blocks()[0])  # read() copies: the layer keeps the tensor until release
        assert copy.flags.writeable and not np.shares_memory(copy, layer.view(layer.blocks()[0]))
        layer.release()
        assert mapped(shard) == [] and copy.sum() != 0


def test_a_damaged_byte_in_a_mapped_tensor_fails_its_crc(tmp_path, wide):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        (folder / ("model.ckpt" + suffix)).write_bytes(Path(wide + suffix).read_bytes())
    shard = folder / "model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[KERNEL_BYTES // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    with lstm_inspect.load(folder / "model.ckpt") as ckpt:
        with pytest.raises(lstm_inspect.errors.CorruptFile, match="'rnn/lstm_cell/kernel' fails its CRC-32C"):
            ckpt.layers[0].load()
    with lstm_inspect.load(folder / "model.ckpt", verify=False) as ckpt:
        ckpt.layers[0].load()  # --no-verify reads it as it is


def test_the_crc32c_package_init_is_never_run():
    code = (
        "import sys, lstm_inspect\n"
        f"ckpt = lstm_inspect.load({str(FIXTURES / 'tf1_basic/model.ckpt')!r})\n"
        "ckpt.layers[0].load()\n"
        "print('crc32c' in sys.modules, 'crc32c._crc32c' in sys.modules, 'importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False"]


def test_no_garbage_collection_while_an_index_is_parsed(tmp_path, monkeypatch):
    from lstm_inspect import detect as detect_module
    from lstm_inspect.readers import tf_bundle

    prefix = str(tmp_path / "many.ckpt")
    names = [f"dense_{k}/kernel".encode() for k in range(3000)]
    write_bundle(prefix, {name: entry(1, (1,), 4, b"\0\0\0\0", offset=0) for name in names}, b"\0\0\0\0")
    enabled = []
    for module, name in ((tf_bundle, "_block_records"), (detect_module, "detect")):
        real = getattr(module, name)

        def spy(*args, real=real, **kwargs):
            enabled.append(gc.isenabled())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    from lstm_inspect import api

    monkeypatch.setattr(api, "detect", detect_module.detect)
    with lstm_inspect.load(prefix) as ckpt:
        assert len(ckpt.store.tensors()) == 3000
        assert gc.isenabled()  # paused only while the index is parsed and the layers detected
    # The index block, the one data block (its 3,000 entries read in one loop), detection.
    assert len(enabled) == 3 and not any(enabled)


# ---- the zip CRC-32 ---------------------------------------------------------------------------------------


def test_the_fastest_crc32_is_chosen_once_and_zlib_is_the_fallback(tmp_path, monkeypatch):
    import importlib

    monkeypatch.setattr(zipfile, "crc32", zipfile.crc32)  # restored after the test
    monkeypatch.setattr(npz_writer, "_CRC32_NAME", None)
    real_import = importlib.import_module
    tried = []

    def without_fast_crc(name, *args):
        tried.append(name)
        if name.startswith(("isal", "zlib_ng")):
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_fast_crc)
    assert npz_writer.use_fastest_crc32() == "zlib"
    assert npz_writer.use_fastest_crc32() == "zlib" and len(tried) == 2  # chosen once
    write_npz(str(tmp_path / "a.npz"), [("x", np.arange(100_000, dtype=np.float32))])
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert archive.testzip() is None


def test_whichever_crc32_is_installed_computes_zlibs(tmp_path):
    name = npz_writer.use_fastest_crc32()
    data = np.random.default_rng(0).standard_normal(300_001).astype(np.float32)
    assert zipfile.crc32(data, 7) == zlib.crc32(data.tobytes(), 7), name
    write_npz(str(tmp_path / "a.npz"), [("x", data)])
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        (info,) = archive.infolist()
        assert archive.testzip() is None and info.CRC == zlib.crc32(archive.read(info))


# ---- start-up ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads in /proc")
def test_export_asks_for_one_blas_thread_and_leaves_the_environment_as_it_was():
    code = (
        "import os, sys\n"
        "from lstm_inspect import cli\n"
        "if sys.argv[1] == 'limited':\n"
        "    cli._one_blas_thread()\n"
        "import numpy\n"
        "print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS'))\n"
    )
    env = {k: v for k, v in ENV.items() if not k.endswith("_NUM_THREADS")}
    limited, free = (
        subprocess.run([sys.executable, "-c", code, how], env=env, capture_output=True, text=True, check=True).stdout
        for how in ("limited", "free")
    )
    threads, variable = limited.split()
    assert threads == "1" and variable == "None"
    assert int(free.split()[0]) >= 1


# ---- Ctrl-C ----------------------------------------------------------------------------------------------

# The CLI with one step blocked for good, in the reading thread (a piece being made) or in the
# writing one (the Nth zip write); on reaching it the process creates the sentinel file.
BLOCKED = r"""
import sys, threading, zipfile
from lstm_inspect import slicer

phase, block_at, sentinel = sys.argv.pop(1), int(sys.argv.pop(1)), sys.argv.pop(1)
owner, method = (zipfile._ZipWriteFile, "write") if phase == "writing" else (slicer.Packed, "_fill")
real = getattr(owner, method)
calls = []

def blocked(*args):
    calls.append(None)
    if len(calls) == block_at:
        open(sentinel, "w").close()
        threading.Event().wait()  # forever: only the process ending stops it
    return real(*args)

setattr(owner, method, blocked)
from lstm_inspect.writers import npz
npz._PIECE_BYTES = 4096
from lstm_inspect.cli import main
main(prog_name="lstm-inspect")
"""


@pytest.mark.parametrize("phase", ["reading", "writing"])
@pytest.mark.parametrize("layout", ["pytorch", "onnx"])
def test_ctrl_c_during_a_streamed_export_leaves_nothing(tmp_path, phase, layout):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    sentinel = tmp_path / "blocked"
    argv = ["export", str(FIXTURES / "tf1_multi/model.ckpt"), "--layout", layout, "-o", str(out_dir / "out.npz")]
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKED, phase, "5", str(sentinel), *argv],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a bound on a hang, not a guess at a speed
    while not sentinel.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the export never reached the blocked step: {process.communicate()[1]}")
        time.sleep(0.01)
    assert len(list(out_dir.iterdir())) == 1  # the temporary file, written in part
    process.send_signal(signal.SIGINT)
    # A step blocked for good in the reading thread does not keep the export from stopping.
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stdout == "" and stderr == "Interrupted.\n"
    assert list(out_dir.iterdir()) == []


# ---- the CLI -----------------------------------------------------------------------------------------------


def test_verify_framework_option_restricts_the_checks(wide):
    from click.testing import CliRunner

    from lstm_inspect.cli import main

    result = CliRunner().invoke(main, ["verify", wide, "--framework", "none", "--json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["targets"] == [f"numpy:{name}" for name in TARGETS]
    result = CliRunner().invoke(main, ["verify", wide, "--framework", "tensorflw"])
    assert result.exit_code == 2 and "unknown framework 'tensorflw'" in result.stderr


def test_the_progress_bar_counts_bytes(monkeypatch):
    from lstm_inspect import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with cli._progress_bar(enabled=True, doing="verifying") as progress:
        assert progress is not None
        progress(3 << 20, 4 << 20)
        progress(1 << 20, 4 << 20)
    shown = sys.stderr.getvalue()
    assert "verifying" in shown and "100%" in shown and "4.0/4.0 MiB" in shown


def test_weights_as_views_copy_nothing(wide):
    with lstm_inspect.load(wide) as ckpt:
        (layer,) = ckpt.layers
        views, copies = layer.weights(views=True), layer.weights()
        for key, block in views.blocks.items():
            assert np.shares_memory(block, layer.view(next(b for b in layer.blocks() if (b.gate, b.part) == key)))
            assert not np.shares_memory(copies.blocks[key], block)
            assert_identical(np.ascontiguousarray(block), copies.blocks[key], str(key))
        assert isinstance(views, Weights)
        layer.release()
    assert math.prod(views.kernel.shape) == INPUTS * UNITS


def test_results_as_plain_data_are_what_dataclasses_asdict_gave():
    import dataclasses

    with lstm_inspect.load(FIXTURES / "tf1_bidi_multi/model.ckpt") as ckpt:
        summary = ckpt.summary()
        verified = ckpt.verify(frameworks=[])
    assert summary.to_dict() == dataclasses.asdict(summary)
    expected = dataclasses.asdict(verified)
    expected["ok"] = verified.ok
    for layer, data in zip(verified.layers, expected["layers"]):
        data["ok"] = layer.ok
    assert verified.to_dict() == expected


def test_summary_json_is_one_line_per_member_and_per_list_element():
    import json

    from click.testing import CliRunner

    from lstm_inspect.cli import main

    result = CliRunner().invoke(main, ["summary", str(FIXTURES / "tf1_multi/model.ckpt"), "--json"])
    assert result.exit_code == 0
    with lstm_inspect.load(FIXTURES / "tf1_multi/model.ckpt") as ckpt:
        data = ckpt.summary().to_dict()
    assert json.loads(result.stdout) == data
    lines = result.stdout.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert len(lines) == 2 + len(data) + sum(len(v) + 1 for v in data.values() if isinstance(v, list) and v)
