"""`diff`: the same model in two formats compares equal; a fine-tuned copy shows its changes where
the framework's training made them (checked against the two files' raw arrays); where the forget
bias is kept is no weight change; errors exit 2 in one line."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect import UnknownName
from lstm_inspect.cli import main
from lstm_inspect.diff import diff, match_layers, parse_mapping, weights_of
from lstm_inspect.readers import open_store
from lstm_inspect.readers.base import LayerHint, Setting
from lstm_inspect.targets import TARGETS
from lstm_inspect.weights import fold_forget_bias
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES, no_recurrent_layers
from .test_slicer import MemoryStore

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("LSTM_INSPECT_REGEN") == "1"
BASIC = FIXTURES / "tf1_basic" / "model.ckpt"
TF1_BEFORE, TF1_AFTER = FIXTURES / "tf1_finetune" / "before.ckpt", FIXTURES / "tf1_finetune" / "after.ckpt"
KERAS_BEFORE, KERAS_AFTER = FIXTURES / "keras3_finetune" / "before.keras", FIXTURES / "keras3_finetune" / "after.keras"


def run(*args: object):
    return CliRunner().invoke(main, ["diff", *map(str, args)], catch_exceptions=False)


def compared(a: Path, b: Path, **kwargs):
    with lstm_inspect.load(a) as ckpt_a, lstm_inspect.load(b) as ckpt_b:
        return diff(ckpt_a, ckpt_b, **kwargs)


def export(source: Path, out: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["export", str(source), "-o", str(out), "-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


# ---- the same model, two formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("keras3/model.keras", "keras3/model.weights.h5"),
        ("keras3/model.keras", "keras3/model.h5"),
        ("keras2_h5/model.h5", "keras2_h5/weights.h5"),
    ],
)
def test_one_keras_model_saved_two_ways_is_identical(a, b):
    result = run(FIXTURES / a, FIXTURES / b)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(run(FIXTURES / a, FIXTURES / b, "--json").stdout)
    assert data["identical"] and data["equal"] and not data["only_in_a"] and not data["only_in_b"]
    assert all(layer["status"] == "identical" and layer["matched_by"] == "name" for layer in data["layers"])
    assert len(data["layers"]) == (4 if a.startswith("keras3") else 3)


def test_a_tf1_cell_and_the_keras_lstm_it_was_ported_to_are_the_same_weights():
    # The port reordered the gates, split the kernel and folded forget_bias 1.0 into the bias.
    result = compared(FIXTURES / "tf1_keras_port" / "model.ckpt", FIXTURES / "tf1_keras_port" / "model.h5")
    (layer,) = result.layers
    assert (layer.a, layer.b, layer.matched_by) == ("rnn/basic_lstm_cell", "enc", "position")
    assert layer.status == "identical" and result.equal
    assert (layer.forget_bias_a, layer.forget_bias_b) == (1.0, 0.0)
    assert layer.notes == ["only where the forget bias is kept differs, no weight: A adds 1 to the forget gate at "
                           "run time, B 0"]  # fmt: skip
    assert run(FIXTURES / "tf1_keras_port" / "model.ckpt", FIXTURES / "tf1_keras_port" / "model.h5").exit_code == 0


@pytest.mark.parametrize(
    ("source", "layout"),
    [
        ("tf1_bidi/model.ckpt", "gates"),
        ("tf1_peephole_proj/model.ckpt", "gates"),
        ("keras2_cudnn/model.h5", "gates"),
        ("keras2_cudnn/model.h5", "keras"),
        ("tf1_basic/model.ckpt", "keras"),
    ],
)
def test_an_export_against_its_source_is_equal(source, layout, tmp_path):
    out = export(FIXTURES / source, tmp_path / "out.npz", "--layout", layout)
    result = compared(FIXTURES / source, out)
    assert result.equal, [(layer.a, layer.verdict) for layer in result.layers]
    for layer in result.layers:
        # Each gate block compared, not one fused tensor; float32 sums make "equal", not "identical", at worst.
        assert {block.part for block in layer.blocks} >= {"kernel", "recurrent", "bias"}
        assert all(block.max_abs_diff <= 1e-6 for block in layer.blocks)
    if source.startswith("keras2_cudnn") and layout == "keras":
        assert all("their sum is compared" in " ".join(layer.notes) for layer in result.layers)


# ---- a fine-tuned copy ------------------------------------------------------------------------------


def tf1_raw_gates(path: Path, name: str, input_size: int) -> dict[str, dict[str, np.ndarray]]:
    """The TF1 cell's fused tensors as the file stores them, cut by the layout TF documents:
    kernel rows input then recurrent, columns i, j, f, o (rnn_cell_impl.py)."""
    with open_store(path) as store:
        kernel, bias = store.read(f"{name}/kernel"), store.read(f"{name}/bias")
    gates = {}
    for gate, k, b in zip(("input", "cell", "forget", "output"), np.split(kernel, 4, axis=1), np.split(bias, 4)):
        gates[gate] = {"kernel": k[:input_size], "recurrent": k[input_size:], "bias": b}
    return gates


def keras3_raw_gates(path: Path, auto_name: str) -> dict[str, dict[str, np.ndarray]]:
    """A Keras 3 LSTM's vars as its .keras file stores them, columns i, f, c, o (keras/src/layers/rnn/lstm.py)."""
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as f:
        stored = [np.asarray(f[f"layers/{auto_name}/cell/vars/{i}"]) for i in range(3)]
    gates = {}
    for index, gate in enumerate(("input", "forget", "cell", "output")):
        columns = slice(index * stored[2].shape[0] // 4, (index + 1) * stored[2].shape[0] // 4)
        gates[gate] = {"kernel": stored[0][:, columns], "recurrent": stored[1][:, columns], "bias": stored[2][columns]}
    return gates


def assert_matches_raw(layer, before: dict, after: dict) -> None:
    for block in layer.blocks:
        a = before[block.gate][block.part].astype(np.float64)
        b = after[block.gate][block.part].astype(np.float64)
        if block.gate == "forget" and block.part == "bias":
            a, b = a + layer.forget_bias_a, b + layer.forget_bias_b
        delta = b - a
        assert block.identical == (not delta.any())
        assert block.max_abs_diff == pytest.approx(np.abs(delta).max(), abs=1e-12)
        assert block.relative_change == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(a), rel=1e-9)
        cosine = (a.ravel() @ b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b))
        assert block.cosine == pytest.approx(cosine, rel=1e-9)
        per_unit = np.sqrt((delta**2).sum(axis=0)) if delta.ndim == 2 else np.abs(delta)
        if delta.any():
            assert block.top_units[0].unit == int(np.argmax(per_unit))
            assert block.top_units[0].norm == pytest.approx(per_unit.max(), rel=1e-9)
        else:
            assert block.top_units == []


def test_tf1_fine_tuning_changed_the_kernel_and_nothing_else():
    # The fixture trained rnn/lstm_cell/kernel only (var_list): input and recurrent blocks of every
    # gate changed, every bias stayed.
    result = compared(TF1_BEFORE, TF1_AFTER)
    (layer,) = result.layers
    assert layer.status == "changed" and not result.equal
    changed = {(block.gate, block.part) for block in layer.blocks if not block.identical}
    assert changed == {
        (gate, part) for gate in ("input", "forget", "cell", "output") for part in ("kernel", "recurrent")
    }
    assert_matches_raw(
        layer, tf1_raw_gates(TF1_BEFORE, "rnn/lstm_cell", 12), tf1_raw_gates(TF1_AFTER, "rnn/lstm_cell", 12)
    )
    worst = max(layer.blocks, key=lambda block: block.max_abs_diff)
    assert layer.verdict == f"changed (largest |Δ| {worst.max_abs_diff:.3g}, in {worst.key})"
    assert run(TF1_BEFORE, TF1_AFTER).exit_code == 1


def test_keras_fine_tuning_with_a_frozen_layer_changed_only_the_other():
    result = compared(KERAS_BEFORE, KERAS_AFTER)
    enc, dec = result.layers
    assert (enc.a, enc.status, dec.a, dec.status) == ("enc", "identical", "dec", "changed")
    assert all(not block.identical for block in dec.blocks)  # Adam moves every trained weight
    assert_matches_raw(enc, keras3_raw_gates(KERAS_BEFORE, "lstm"), keras3_raw_gates(KERAS_AFTER, "lstm"))
    assert_matches_raw(dec, keras3_raw_gates(KERAS_BEFORE, "lstm_1"), keras3_raw_gates(KERAS_AFTER, "lstm_1"))


def test_tolerances_decide_what_is_equal():
    loose = compared(TF1_BEFORE, TF1_AFTER, atol=1.0)
    assert loose.equal and loose.layers[0].verdict == "equal within 1"
    relative = compared(TF1_BEFORE, TF1_AFTER, atol=0.0, rtol=1e-3)
    assert not relative.equal
    result = run(TF1_BEFORE, TF1_AFTER, "--atol", "1")
    assert result.exit_code == 0 and "Equal within 1: all 1 layer(s)." in result.stdout


def test_golden_table_of_a_fine_tuned_keras_model():
    text = run(KERAS_BEFORE, KERAS_AFTER).stdout.replace(str(FIXTURES), "fixtures")
    path = GOLDEN / "diff_keras3_finetune.out"
    if REGEN:
        path.write_text(text)
    assert text == path.read_text()


# ---- where the forget bias is kept -----------------------------------------------------------------


def gates_npz(source: Path, out: Path, runtime: float, forget_bias_offset: float = 0.0) -> Path:
    """A gates export of `source` whose cell adds `runtime` to the forget gate, the rest of the
    source's forget bias moved into the stored bias (and `forget_bias_offset` stored on top)."""
    with lstm_inspect.load(source) as ckpt:
        arrays = []
        for layer in ckpt.layers:
            weights = fold_forget_bias(weights_of(layer), runtime)
            weights.forget_bias += forget_bias_offset
            arrays += [(f"{layer.name}/{key}", value) for key, value in TARGETS["gates"].arrays([weights]).items()]
    write_npz(str(out), arrays)
    return out


def test_moving_the_forget_bias_between_bias_and_runtime_is_no_weight_change(tmp_path):
    out = gates_npz(BASIC, tmp_path / "folded.npz", runtime=0.0)
    with lstm_inspect.load(out) as folded:
        assert folded.layers[0].forget_bias == 0.0  # really moved: B stores it
    result = compared(BASIC, out)
    (layer,) = result.layers
    assert result.equal and layer.status in ("identical", "equal")
    assert layer.notes[0].startswith("only where the forget bias is kept differs, no weight: A adds 1")
    forget_bias = next(block for block in layer.blocks if block.key == "forget/bias")
    assert forget_bias.max_abs_diff <= 1e-6


def test_a_changed_runtime_forget_bias_is_a_change_of_the_forget_bias(tmp_path):
    out = gates_npz(BASIC, tmp_path / "shifted.npz", runtime=1.0, forget_bias_offset=0.5)
    (layer,) = compared(BASIC, out).layers
    assert layer.status == "changed"
    changed = [block for block in layer.blocks if not block.identical]
    assert [block.key for block in changed] == ["forget/bias"]
    assert changed[0].max_abs_diff == pytest.approx(0.5)
    assert "the effective forget-gate bias (stored + runtime) is compared" in layer.notes[0]


# ---- pairing, shapes, settings ---------------------------------------------------------------------------


def test_layers_only_in_one_file_are_listed():
    result = compared(BASIC, FIXTURES / "tf1_adam" / "model.ckpt")
    assert result.layers == []
    assert (result.only_in_a, result.only_in_b) == (["rnn/basic_lstm_cell"], ["rnn/lstm_cell"])
    out = run(BASIC, FIXTURES / "tf1_adam" / "model.ckpt")
    assert out.exit_code == 1
    assert "Only in A: rnn/basic_lstm_cell" in out.stdout and "2 layer(s) in one file only" in out.stdout


def test_a_shape_mismatch_is_named():
    keras3 = FIXTURES / "keras3" / "model.keras"
    result = compared(keras3, keras3, mapping={"enc": "dec", "dec": "enc"})
    enc = result.layers[0]
    assert (enc.a, enc.b, enc.matched_by, enc.status) == ("enc", "dec", "--map", "shape mismatch")
    assert enc.verdict == "shapes differ: A 12 input, 16 units, 16 recurrent; B 16 input, 8 units, 8 recurrent"
    assert enc.blocks == []
    assert run(keras3, keras3, "--map", "enc=dec").exit_code == 1


def test_map_pairs_the_halves_of_bidirectional_pairs_by_direction():
    keras2, tf2 = FIXTURES / "keras2_h5" / "model.h5", FIXTURES / "tf2_object" / "ckpt-1"
    with lstm_inspect.load(keras2) as a, lstm_inspect.load(tf2) as b:
        pairs, only_a, only_b = match_layers(a, b, {"bi": "model/layer_with_weights-1"})
        assert [(x.name, y.name, how) for x, y, how in pairs] == [
            ("enc", "model/layer_with_weights-0", "position"),
            ("bi/forward", "model/layer_with_weights-1/forward_layer", "--map"),
            ("bi/backward", "model/layer_with_weights-1/backward_layer", "--map"),
        ]
        # Without --map, position pairing keeps directions apart too (B lists backward first).
        assert [(x.name, y.name) for x, y, _ in match_layers(a, b)[0]] == [(x.name, y.name) for x, y, _ in pairs]
        with pytest.raises(UnknownName, match="a bidirectional pair in"):
            match_layers(a, b, {"bi": "model/layer_with_weights-0"})


class HintedStore(MemoryStore):
    def __init__(self, arrays, hints):
        super().__init__(arrays)
        self.hints = hints

    def layer_hints(self):
        return self.hints


def test_a_different_activation_is_a_change_even_with_equal_weights():
    rng = np.random.default_rng(3)
    arrays = {
        "lstm/kernel": rng.normal(size=(3, 8)).astype(np.float32),
        "lstm/recurrent_kernel": rng.normal(size=(2, 8)).astype(np.float32),
        "lstm/bias": rng.normal(size=8).astype(np.float32),
    }
    relu = {"lstm": LayerHint("lstm", settings={"activation": Setting("relu", "config: lstm")})}
    with (
        lstm_inspect.api.Checkpoint(MemoryStore(arrays)) as a,
        lstm_inspect.api.Checkpoint(HintedStore(arrays, relu)) as b,
    ):
        assert a.layers[0].spec.settings["activation"].value == "unknown"
        assert diff(a, b).equal  # unknown against relu: nothing to compare
    tanh = {"lstm": LayerHint("lstm", settings={"activation": Setting("tanh", "config: lstm")})}
    with (
        lstm_inspect.api.Checkpoint(HintedStore(arrays, tanh)) as a,
        lstm_inspect.api.Checkpoint(HintedStore(arrays, relu)) as b,
    ):
        (layer,) = diff(a, b).layers
        assert layer.status == "changed" and layer.verdict == "changed: activation differs: A tanh, B relu"


def test_one_pair_of_layers_is_in_memory_at_a_time():
    events: list[tuple[str, str]] = []
    with lstm_inspect.load(KERAS_BEFORE) as a, lstm_inspect.load(KERAS_AFTER) as b:
        for side, ckpt in (("A", a), ("B", b)):
            read = ckpt.store.read
            ckpt.store.read = lambda name, read=read, side=side: events.append((side, "read")) or read(name)
            for layer in ckpt.layers:
                release = layer.release
                layer.release = lambda release=release, side=side: events.append((side, "release")) or release()
        diff(a, b)
    held = {"A": 0, "B": 0}
    most = 0
    for side, event in events:
        held[side] = held[side] + 1 if event == "read" else 0
        most = max(most, held[side])
    assert most == 3  # one layer's three tensors per file, released before the next layer is read
    assert events.count(("A", "release")) == 2


# ---- the command line ------------------------------------------------------------------------------------


def test_json_is_the_result_object():
    data = json.loads(run(TF1_BEFORE, TF1_AFTER, "--json").stdout)
    assert set(data) == {
        "a", "b", "format_a", "format_b", "atol", "rtol", "layers", "only_in_a", "only_in_b", "equal", "identical",
    }  # fmt: skip
    (layer,) = data["layers"]
    block = layer["blocks"][0]
    assert set(block) == {
        "gate", "part", "shape", "max_abs_diff", "relative_change", "cosine", "top_units", "identical",
        "within_tolerance",
    }  # fmt: skip
    assert (block["gate"], block["part"], block["shape"]) == ("input", "kernel", [12, 16])
    assert set(block["top_units"][0]) == {"unit", "norm"}


def assert_error_2(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_errors_exit_2_in_one_line(tmp_path):
    assert_error_2(run(BASIC, tmp_path / "missing.ckpt"), "missing.ckpt", "no such file")
    assert_error_2(run(no_recurrent_layers(tmp_path / "in"), BASIC), "no LSTM or GRU layer")
    assert_error_2(run(BASIC, BASIC, "--map", "nothing=rnn/basic_lstm_cell"), "no LSTM or GRU layer named 'nothing'")
    assert_error_2(run(BASIC, BASIC, "--map", "rnn/basic_lstm_cell=x", "--json"), "no LSTM or GRU layer named 'x'")
    os.mkfifo(tmp_path / "pipe.npz")
    assert_error_2(run(BASIC, tmp_path / "pipe.npz"), "FIFO")
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(KERAS_AFTER.read_bytes()[:5000])
    assert_error_2(run(KERAS_BEFORE, damaged), "damaged.keras")


@pytest.mark.parametrize(
    "args",
    [["--map", "no-equals-sign"], ["--map", "=b"], ["--atol", "-1"], ["--rtol", "x"], []],
    ids=["map-without-equals", "map-without-a", "negative-atol", "rtol-not-a-number", "one-path"],
)
def test_usage_errors_exit_2(args):
    paths = [BASIC] if not args else [BASIC, BASIC]
    result = run(*paths, *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_parse_mapping_splits_at_the_first_equals_sign():
    assert parse_mapping(["a=b=c", "x=y"]) == {"a": "b=c", "x": "y"}
    with pytest.raises(ValueError, match="mapped twice"):
        parse_mapping(["a=b", "a=c"])


def test_control_characters_in_names_are_escaped_in_tables(tmp_path):
    out = tmp_path / "odd.npz"
    with lstm_inspect.load(BASIC) as ckpt:
        arrays = [
            (f"evil\x1b[2J/{key}", value)
            for key, value in TARGETS["gates"].arrays([weights_of(ckpt.layers[0])]).items()
        ]
    write_npz(str(out), arrays)
    result = run(out, out)
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "evil\\x1b[2J: identical" in result.stdout


@pytest.mark.parametrize(("part", "shape"), [("kernel", (7, 5)), ("projection", (9, 4)), ("bias", (11,))])
def test_blocks_compared_in_slabs_give_what_the_whole_block_gives(part, shape, monkeypatch):
    from lstm_inspect import diff as diff_module

    rng = np.random.default_rng(11)
    a = rng.normal(size=shape).astype(np.float32)
    b = a + rng.normal(scale=0.01, size=shape).astype(np.float32)
    whole = diff_module.compare_block("forget", part, a, b, 1e-6, 0.0)
    monkeypatch.setattr(diff_module, "_SLAB_ELEMENTS", 3)  # a row or two per slab
    slabs = diff_module.compare_block("forget", part, a, b, 1e-6, 0.0)
    assert slabs.top_units == whole.top_units and slabs.identical == whole.identical
    assert slabs.max_abs_diff == whole.max_abs_diff
    assert slabs.relative_change == pytest.approx(whole.relative_change, rel=1e-12)
    assert slabs.cosine == pytest.approx(whole.cosine, rel=1e-12)
    delta = b.astype(np.float64) - a
    axis = diff_module.unit_axis(part, len(shape))
    per_unit = np.sqrt((delta**2).sum(axis=1 - axis)) if delta.ndim == 2 else np.abs(delta)
    assert [u.unit for u in slabs.top_units] == list(np.argsort(-per_unit)[:3])


@pytest.mark.parametrize("special", [None, np.nan, np.inf])
def test_slabs_equal_and_unequal_in_one_block_give_the_statistics_of_the_whole(special, monkeypatch):
    """Equal finite slabs take a short way (Δ = 0); equal slabs holding NaN or infinity (whose Δ is
    NaN) and unequal ones the long way: the block's statistics are those of numpy on the whole."""
    from lstm_inspect import diff as diff_module

    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 4))
    b = a.copy()
    b[4] += rng.normal(scale=0.1, size=4)  # one slab of the six differs
    if special is not None:
        a[1, 2] = b[1, 2] = special  # an equal slab with a NaN or an infinity
    monkeypatch.setattr(diff_module, "_SLAB_ELEMENTS", 4)  # a row per slab
    got = diff_module.compare_block("input", "kernel", a, b, 1e-6, 0.0)
    with np.errstate(invalid="ignore"):
        delta = b - a
    assert not got.identical and not got.within_tolerance
    assert got.max_abs_diff == np.nanmax(np.abs(delta))
    norm_a, norm_b, norm_delta = (float(np.sqrt((x * x).sum())) for x in (a, b, delta))
    if special is None:
        assert got.relative_change == pytest.approx(norm_delta / norm_a, rel=1e-12)
        assert got.cosine == pytest.approx(float((a * b).sum()) / (norm_a * norm_b), rel=1e-12)
        assert [u.unit for u in got.top_units] == list(np.argsort(-np.sqrt((delta**2).sum(axis=0)), kind="stable")[:3])
    else:  # NaN where numpy's whole-block sums are NaN
        assert np.isnan(got.relative_change) and (got.cosine is None or np.isnan(got.cosine))
    same = diff_module.compare_block("input", "kernel", a, a.copy(), 1e-6, 0.0)
    assert same.identical and same.within_tolerance and same.top_units == [] and same.max_abs_diff == 0.0
    if special is None:
        assert same.relative_change == 0.0 and same.cosine == 1.0


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_infinite_and_huge_weights_are_compared_without_numpy_warnings(tmp_path):
    """inf − inf and squares past float64's range warn in numpy: not on the user's terminal."""
    with lstm_inspect.load(BASIC) as ckpt:
        arrays = TARGETS["gates"].arrays([weights_of(ckpt.layers[0])])
    kernel = "cell/input/kernel"
    a = {f"cell/{key}": np.array(value, np.float64) for key, value in arrays.items()}
    b = dict(a)
    a[kernel].flat[:3] = np.inf, 1e300, -1e300
    b[kernel] = a[kernel].copy()
    b[kernel].flat[1:3] = -1e300, 1e300
    write_npz(str(tmp_path / "a.npz"), list(a.items()))
    write_npz(str(tmp_path / "b.npz"), list(b.items()))
    result = run(tmp_path / "a.npz", tmp_path / "b.npz")
    assert result.exit_code == 1, result.stderr  # as diff(1): the files differ
    assert "changed (largest |Δ| 2e+300" in result.stdout
    assert "RuntimeWarning" not in result.stderr
