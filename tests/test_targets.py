"""Export targets: where each gate lands, forget-bias folding, exact round trips, refusals, and on
every fixture each target's export loaded by its own framework reproducing the framework's saved
outputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_inspect
from lstm_inspect import activations, export
from lstm_inspect.api import Checkpoint
from lstm_inspect.cli import main
from lstm_inspect.errors import UnsupportedFormat
from lstm_inspect.targets import TARGETS
from lstm_inspect.weights import Weights, normalize
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES, load_options, manifest
from .test_slicer import MemoryStore

IN, U, P = 3, 4, 2
GATES = ("input", "forget", "cell", "output")


def make_weights(
    *,
    bias: bool = True,
    recurrent_bias: bool = False,
    peepholes: bool = False,
    projection: int | None = None,
    forget_bias: float = 0.0,
    seed: int = 0,
    name: str = "layer",
) -> Weights:
    rng = np.random.default_rng(seed)
    rec = projection or U
    gates = {}
    for gate in GATES:
        blocks = {
            "kernel": rng.normal(size=(IN, U)).astype(np.float32),
            "recurrent": rng.normal(size=(rec, U)).astype(np.float32),
        }
        if bias:
            blocks["bias"] = rng.normal(size=U).astype(np.float32)
        if recurrent_bias:
            blocks["recurrent_bias"] = rng.normal(size=U).astype(np.float32)
        if peepholes and gate != "cell":
            blocks["peephole"] = rng.normal(size=U).astype(np.float32)
        gates[gate] = blocks
    blocks = {(gate, part): block for gate, parts in gates.items() for part, block in parts.items()}
    if projection:
        blocks[(None, "projection")] = rng.normal(size=(U, projection)).astype(np.float32)
    return Weights(name, blocks, forget_bias=forget_bias)


def to(target: str, *directions: Weights, forget_bias: float | None = None) -> dict[str, np.ndarray]:
    """A target's arrays for one layer or pair (Target.arrays), refused as an export would be."""
    chosen = TARGETS[target]
    for weights in directions:
        reason = chosen.refusal(features(weights))
        if reason is not None:
            raise UnsupportedFormat(f"{weights.name}: cannot export to --layout {target}: {reason}")
    return chosen.arrays(list(directions), forget_bias)


def back(target: str, arrays: dict[str, np.ndarray], count: int = 1, forget_bias: float | None = None) -> list:
    return TARGETS[target].read(arrays, ["layer"] * count, forget_bias)


def features(weights: Weights):
    from lstm_inspect.targets import Features

    projection = weights.projection
    return Features(
        weights.peepholes,
        None if projection is None else int(projection.shape[1]),
        weights.units,
        weights.activation,
        weights.recurrent_activation,
    )


def part(weights: Weights, gate: str, name: str) -> np.ndarray:
    block = weights.block(gate, name)
    assert block is not None, (gate, name)
    return block


def assert_same_weights(got: Weights, expected: Weights) -> None:
    """Every block equal, bit for bit; an absent bias counts as zeros (what nn.LSTM and ONNX store)."""
    assert got.forget_bias == expected.forget_bias
    for gate in GATES:
        names = {p for g, p in got.blocks if g == gate} | {p for g, p in expected.blocks if g == gate}
        for name in names:
            a, b = got.block(gate, name), expected.block(gate, name)
            if name in ("bias", "recurrent_bias"):
                a = np.zeros(U, np.float32) if a is None else a
                b = np.zeros(U, np.float32) if b is None else b
            assert a is not None and b is not None, (gate, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), (gate, name)
    if expected.projection is None:
        assert got.projection is None
    else:
        assert np.array_equal(got.projection, expected.projection)


# ---- where each gate lands (the key lists, independent of layouts.py) ----------------------------


def test_pytorch_rows_are_i_f_g_o_and_bidirectional_keys():
    fw, bw = make_weights(seed=1, projection=P), make_weights(seed=2, projection=P)
    out = to("pytorch", fw, bw)
    assert sorted(out) == sorted(
        f"{k}{s}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr") for s in ("_l0", "_l0_reverse")
    )
    assert out["weight_ih_l0"].shape == (4 * U, IN) and out["weight_hh_l0"].shape == (4 * U, P)
    for row, gate in enumerate(("input", "forget", "cell", "output")):
        np.testing.assert_array_equal(out["weight_ih_l0"][row * U : (row + 1) * U], part(fw, gate, "kernel").T)
        np.testing.assert_array_equal(
            out["weight_hh_l0_reverse"][row * U : (row + 1) * U], part(bw, gate, "recurrent").T
        )
        np.testing.assert_array_equal(out["bias_ih_l0"][row * U : (row + 1) * U], part(fw, gate, "bias"))
    np.testing.assert_array_equal(out["bias_hh_l0"], np.zeros(4 * U, np.float32))
    np.testing.assert_array_equal(out["weight_hr_l0"], fw.projection.T)


def test_onnx_rows_are_i_o_f_c_peepholes_i_o_f_and_biases_input_then_recurrent():
    w = make_weights(recurrent_bias=True, peepholes=True)
    out = to("onnx", w)
    assert out["W"].shape == (1, 4 * U, IN) and out["R"].shape == (1, 4 * U, U)
    assert out["B"].shape == (1, 8 * U) and out["P"].shape == (1, 3 * U)
    for row, gate in enumerate(("input", "output", "forget", "cell")):
        np.testing.assert_array_equal(out["W"][0, row * U : (row + 1) * U], part(w, gate, "kernel").T)
        np.testing.assert_array_equal(out["B"][0, row * U : (row + 1) * U], part(w, gate, "bias"))
        np.testing.assert_array_equal(
            out["B"][0, 4 * U + row * U : 4 * U + (row + 1) * U], part(w, gate, "recurrent_bias")
        )
    for row, gate in enumerate(("input", "output", "forget")):
        np.testing.assert_array_equal(out["P"][0, row * U : (row + 1) * U], part(w, gate, "peephole"))


def test_keras_columns_are_i_f_c_o_and_cudnn_biases_are_summed():
    w = make_weights(recurrent_bias=True)
    out = to("keras", w)
    assert {k: v.shape for k, v in out.items()} == {
        "kernel": (IN, 4 * U),
        "recurrent_kernel": (U, 4 * U),
        "bias": (4 * U,),
    }
    for col, gate in enumerate(("input", "forget", "cell", "output")):
        np.testing.assert_array_equal(out["kernel"][:, col * U : (col + 1) * U], part(w, gate, "kernel"))
        np.testing.assert_array_equal(out["recurrent_kernel"][:, col * U : (col + 1) * U], part(w, gate, "recurrent"))
        np.testing.assert_array_equal(
            out["bias"][col * U : (col + 1) * U], part(w, gate, "bias") + part(w, gate, "recurrent_bias")
        )


def test_tensorflow_kernel_is_input_then_recurrent_rows_in_i_j_f_o():
    w = make_weights(peepholes=True, projection=P, forget_bias=1.0)
    out = to("tensorflow", w)
    assert sorted(out) == ["bias", "kernel", "projection/kernel", "w_f_diag", "w_i_diag", "w_o_diag"]
    assert out["kernel"].shape == (IN + P, 4 * U)
    for col, gate in enumerate(("input", "cell", "forget", "output")):
        np.testing.assert_array_equal(out["kernel"][:IN, col * U : (col + 1) * U], part(w, gate, "kernel"))
        np.testing.assert_array_equal(out["kernel"][IN:, col * U : (col + 1) * U], part(w, gate, "recurrent"))
        # Source and target cells both add 1.0: the bias is untouched.
        np.testing.assert_array_equal(out["bias"][col * U : (col + 1) * U], part(w, gate, "bias"))
    np.testing.assert_array_equal(out["w_f_diag"], part(w, "forget", "peephole"))
    np.testing.assert_array_equal(out["projection/kernel"], w.projection)


# ---- the forget bias -------------------------------------------------------------------------------------


def test_runtime_forget_bias_is_folded_into_the_input_side_forget_bias():
    tf1 = make_weights(forget_bias=1.0, recurrent_bias=True)
    b_f = part(tf1, "forget", "bias")
    out = to("pytorch", tf1)
    np.testing.assert_array_equal(out["bias_ih_l0"][U : 2 * U], b_f + np.float32(1.0))
    np.testing.assert_array_equal(out["bias_hh_l0"][U : 2 * U], part(tf1, "forget", "recurrent_bias"))
    np.testing.assert_array_equal(out["bias_ih_l0"][:U], part(tf1, "input", "bias"))
    np.testing.assert_array_equal(to("onnx", tf1)["B"][0, 2 * U : 3 * U], b_f + np.float32(1.0))
    rb_f = part(tf1, "forget", "recurrent_bias")
    np.testing.assert_array_equal(to("keras", tf1)["bias"][U : 2 * U], b_f + rb_f + np.float32(1.0))


def test_tensorflow_target_subtracts_the_forget_bias_its_cell_adds():
    keras_weights = make_weights(forget_bias=0.0)
    b_f = part(keras_weights, "forget", "bias")
    np.testing.assert_array_equal(to("tensorflow", keras_weights)["bias"][2 * U : 3 * U], b_f - np.float32(1.0))
    np.testing.assert_array_equal(to("tensorflow", keras_weights, forget_bias=0.0)["bias"][2 * U : 3 * U], b_f)
    np.testing.assert_array_equal(
        to("tensorflow", keras_weights, forget_bias=0.5)["bias"][2 * U : 3 * U], b_f - np.float32(0.5)
    )


def test_a_forget_bias_without_a_stored_bias_creates_one():
    w = make_weights(bias=False, forget_bias=1.0)
    out = to("keras", w)
    np.testing.assert_array_equal(out["bias"], np.repeat(np.array([0, 1, 0, 0], np.float32), U))
    assert "bias" not in to("keras", make_weights(bias=False)) and "bias_ih_l0" not in to(
        "pytorch", make_weights(bias=False)
    )


# ---- round trips -------------------------------------------------------------------------------------------

VARIANTS = {
    "plain": {},
    "no-bias": {"bias": False},
    "cudnn-two-biases": {"recurrent_bias": True},
    "tf1-forget-bias": {"forget_bias": 1.0},
    "peepholes": {"peepholes": True},
    "projection": {"projection": P},
    "peepholes-projection": {"peepholes": True, "projection": P, "forget_bias": 1.0},
}
CODECS = {
    target: (lambda w, target=target: to(target, w), lambda a, target=target: back(target, a)[0])
    for target in ("pytorch", "onnx", "keras", "tensorflow")
}


# What each target cannot compute (projection 2 < 4 units is fine for nn.LSTM).
REFUSED = {
    "pytorch": {"peepholes", "peepholes-projection"},
    "onnx": {"projection", "peepholes-projection"},
    "keras": {"peepholes", "projection", "peepholes-projection"},
    "tensorflow": set(),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("target", CODECS)
def test_round_trips_are_exact(target, variant):
    w = make_weights(**VARIANTS[variant])
    encode, decode = CODECS[target]
    if variant in REFUSED[target]:
        with pytest.raises(UnsupportedFormat, match=f"layer: cannot export to --layout {target}"):
            encode(w)
        return
    arrays = encode(w)
    # gates → layout → gates: exactly the blocks the target holds (the source's, when the
    # target has as many biases and the same runtime forget bias) ...
    read = decode(arrays)
    chosen = TARGETS[target]
    assert_same_weights(read, normalize(w, chosen.layout, chosen.runtime_forget_bias))
    if not w.has("recurrent_bias") and w.forget_bias == chosen.runtime_forget_bias:
        assert_same_weights(read, w)
    # ... and layout → gates → layout: the same arrays, bit for bit.
    again = encode(read)
    assert sorted(again) == sorted(arrays)
    for key in arrays:
        assert np.array_equal(again[key], arrays[key]), key


def test_bidirectional_round_trips_keep_the_direction_order():
    fw, bw = make_weights(seed=1), make_weights(seed=2)
    for target in ("pytorch", "onnx"):
        back_fw, back_bw = back(target, to(target, fw, bw), count=2)
        assert_same_weights(back_fw, fw)
        assert_same_weights(back_bw, bw)


# ---- refusals ---------------------------------------------------------------------------------------------


def tf1_store(peepholes: bool = False, projection: int | None = None) -> MemoryStore:
    rng = np.random.default_rng(3)
    rec = projection or U
    arrays = {
        "rnn/lstm_cell/kernel": rng.normal(size=(IN + rec, 4 * U)).astype(np.float32),
        "rnn/lstm_cell/bias": rng.normal(size=4 * U).astype(np.float32),
    }
    if peepholes:
        arrays.update({f"rnn/lstm_cell/w_{g}_diag": rng.normal(size=U).astype(np.float32) for g in "ifo"})
    if projection:
        arrays["rnn/lstm_cell/projection/kernel"] = rng.normal(size=(U, projection)).astype(np.float32)
    return MemoryStore(arrays)


@pytest.mark.parametrize(
    ("store", "target", "reason"),
    [
        (lambda: tf1_store(peepholes=True), "pytorch", "torch.nn.LSTM has no peephole connections"),
        (lambda: tf1_store(peepholes=True), "keras", "keras.layers.LSTM has no peephole connections"),
        (lambda: tf1_store(projection=P), "onnx", "the ONNX LSTM operator has no projection"),
        (lambda: tf1_store(projection=P), "keras", "keras.layers.LSTM has no projection"),
        (lambda: tf1_store(projection=U), "pytorch", "torch.nn.LSTM needs proj_size < hidden_size"),
    ],
)
def test_refusals_name_the_layer_and_the_reason_before_reading_anything(store, target, reason):
    store = store()
    ckpt = Checkpoint(store)
    with pytest.raises(UnsupportedFormat) as raised:
        layout_arrays(ckpt, target)
    message = str(raised.value)
    assert message.startswith(f"rnn/lstm_cell: cannot export to --layout {target}: {reason}")
    assert "layouts that can express it: gates" in message
    assert store.reads == []


def test_hard_sigmoid_is_refused_by_pytorch_and_tensorflow_but_not_onnx_or_keras():
    path = FIXTURES / "keras2_old_hard_sigmoid" / "model.h5"
    with lstm_inspect.load(path) as ckpt:
        for target in ("pytorch", "tensorflow"):
            with pytest.raises(UnsupportedFormat, match=r"enc: .*hard_sigmoid \(Keras 2: clip\(0.2x \+ 0.5, 0, 1\)\)"):
                layout_arrays(ckpt, target)
        for target in ("onnx", "keras"):
            assert dict(layout_arrays(ckpt, target))


def test_keras3_hard_sigmoid_is_refused_by_pytorch_and_tensorflow_but_not_onnx_or_keras():
    path = FIXTURES / "keras3_hard_sigmoid" / "model.keras"
    with lstm_inspect.load(path) as ckpt:
        for target in ("pytorch", "tensorflow"):
            with pytest.raises(UnsupportedFormat, match=r"enc: .*hard_sigmoid \(Keras 3: clip\(x/6 \+ 0.5, 0, 1\)\)"):
                layout_arrays(ckpt, target)
        for target in ("onnx", "keras"):
            assert dict(layout_arrays(ckpt, target))


@pytest.mark.parametrize("name", ["hard_sigmoid", "hard_sigmoid_keras3"])
def test_onnx_hard_sigmoid_computes_what_numpy_lstm_computes(name):
    # onnx/defs/math/defs.cc HardSigmoid: max(0, min(1, alpha * x + beta)).
    op, alpha, beta = activations.ACTIVATIONS[name].onnx
    x = np.linspace(-8.0, 8.0, 1601)
    assert op == "HardSigmoid"
    np.testing.assert_allclose(
        np.clip(alpha * x + beta, 0.0, 1.0), activations.numpy_function(name)(x), rtol=0, atol=1e-12
    )


def test_hard_sigmoid_keras3_is_keras3_own_and_keras_runs_both():
    pytest.importorskip("keras")
    import keras

    from lstm_inspect.targets.keras import keras_activation

    x = np.linspace(-8.0, 8.0, 1601).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(keras.ops.hard_sigmoid(x)), activations.numpy_function("hard_sigmoid_keras3")(x), atol=1e-6
    )
    # The two differ by up to 1/12 (at |x| = 2.5, where Keras 2's saturates).
    assert (
        np.abs(
            activations.numpy_function("hard_sigmoid")(x) - activations.numpy_function("hard_sigmoid_keras3")(x)
        ).max()
        > 0.08
    )
    for name in ("hard_sigmoid", "hard_sigmoid_keras3"):
        function = keras.activations.get(keras_activation(name))
        np.testing.assert_allclose(
            np.asarray(function(x)), activations.numpy_function(name)(x), atol=1e-6, err_msg=name
        )


def test_bidirectional_halves_that_differ_are_refused_as_one_layer():
    rng = np.random.default_rng(4)
    arrays = {
        "bidirectional_rnn/fw/lstm_cell/kernel": rng.normal(size=(IN + U, 4 * U)).astype(np.float32),
        "bidirectional_rnn/fw/lstm_cell/bias": rng.normal(size=4 * U).astype(np.float32),
        "bidirectional_rnn/bw/lstm_cell/kernel": rng.normal(size=(IN + 2, 8)).astype(np.float32),
        "bidirectional_rnn/bw/lstm_cell/bias": rng.normal(size=8).astype(np.float32),
    }
    ckpt = Checkpoint(MemoryStore(arrays))
    with pytest.raises(UnsupportedFormat, match="bidirectional_rnn: .* halves .* differ"):
        layout_arrays(ckpt, "pytorch")
    # One by one they export, each a plain forward layer.
    assert "weight_ih_l0" in dict(layout_arrays(ckpt, "pytorch", ["bidirectional_rnn/bw/lstm_cell"]))


def test_a_pair_name_selects_both_halves():
    with lstm_inspect.load(FIXTURES / "tf1_bidi" / "model.ckpt") as ckpt:
        keys = sorted(k for k, _ in layout_arrays(ckpt, "pytorch", ["bidirectional_rnn"]))
        assert "weight_ih_l0_reverse" in keys and all("/" not in k for k in keys)
        keys = sorted(k for k, _ in layout_arrays(ckpt, "keras", ["bidirectional_rnn"]))
        assert keys[0] == "bidirectional_rnn/bw/basic_lstm_cell/bias"


# ---- the command line ---------------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code != 0 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    for fragment in fragments:
        assert fragment in line


def test_cli_pytorch_export_of_one_layer_loads_into_nn_lstm_as_it_is(tmp_path):
    torch = pytest.importorskip("torch")
    out = tmp_path / "lstm.npz"
    result = run("export", str(FIXTURES / "tf1_basic" / "model.ckpt"), "--layout", "pytorch", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "for rnn/basic_lstm_cell" in result.stdout
    reference = np.load(FIXTURES / "tf1_basic" / "reference.npz")
    lstm = torch.nn.LSTM(12, 64)
    # The line the issue promises works, as it is.
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(out).items()})
    with torch.no_grad():
        y, (_, c) = lstm(torch.from_numpy(reference["rnn/basic_lstm_cell/x"]))
    np.testing.assert_allclose(y.numpy(), reference["rnn/basic_lstm_cell/h"], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(c[0].numpy(), reference["rnn/basic_lstm_cell/c"], atol=2e-5, rtol=1e-4)


def test_cli_default_output_is_named_after_the_layout(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = run("export", str(FIXTURES / "tf1_multi" / "model.ckpt"), "--layout", "keras", "-q")
    finally:
        os.chdir(old)
    assert result.exit_code == 0 and result.stdout == ""
    keys = np.load(tmp_path / "model.ckpt.keras.npz").files
    assert "rnn/multi_rnn_cell/cell_1/lstm_cell/recurrent_kernel" in keys


def test_cli_tensorflow_target_forget_bias(tmp_path):
    path = str(FIXTURES / "tf1_basic" / "model.ckpt")
    out0, out1 = tmp_path / "fb0.npz", tmp_path / "fb1.npz"
    assert run("export", path, "--layout", "tensorflow", "--target-forget-bias", "0", "-o", str(out0)).exit_code == 0
    assert run("export", path, "--layout", "tensorflow", "-o", str(out1)).exit_code == 0
    b0, b1 = np.load(out0)["rnn/basic_lstm_cell/bias"], np.load(out1)["rnn/basic_lstm_cell/bias"]
    np.testing.assert_array_equal(b0[128:192], b1[128:192] + np.float32(1.0))
    np.testing.assert_array_equal(b0[:128], b1[:128])


def test_cli_export_refusal_leaves_no_file(tmp_path):
    path = str(FIXTURES / "tf1_peephole_proj" / "model.ckpt")
    result = run("export", path, "--layout", "pytorch", "-o", str(tmp_path / "x.npz"))
    assert_clean_error(result, "rnn/lstm_cell", "torch.nn.LSTM has no peephole connections")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--layout", "caffe"], "Invalid value for '--layout': 'caffe' is not one of 'gates', 'pytorch'"),
        (["--layout", "keras", "--gate", "forget"], "--gate applies to --layout gates only"),
        (["--layout", "keras", "--target-forget-bias", "0"], "--target-forget-bias applies to --layout tensorflow"),
    ],
)
def test_cli_export_usage_errors_exit_2_and_leave_no_file(tmp_path, args, fragment):
    # What the flags ask for does not fit: click's usage error (exit 2), whether click or the
    # library finds it (errors.UsageError).
    path = str(FIXTURES / "tf1_peephole_proj" / "model.ckpt")
    result = run("export", path, *args, "-o", str(tmp_path / "x.npz"))
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and fragment in last
    assert list(tmp_path.iterdir()) == []


def test_cli_onnx_model_needs_one_layer_or_pair(tmp_path):
    pytest.importorskip("onnx")
    path = str(FIXTURES / "tf1_multi" / "model.ckpt")
    out = tmp_path / "m.onnx"
    assert_clean_error(
        run("export", path, "--layout", "onnx", "-o", str(out)), "one LSTM layer or bidirectional pair", "--layer"
    )
    assert list(tmp_path.iterdir()) == []
    result = run("export", path, "--layout", "onnx", "-o", str(out), "--layer", "rnn/multi_rnn_cell/cell_1/lstm_cell")
    assert result.exit_code == 0 and "one LSTM node" in result.stdout


# ---- every fixture, every layout, its own framework ---------------------------------------------------------

ENTRIES = [e for e in manifest() if e.get("reference")]
IDS = [e["name"] for e in ENTRIES]
ATOL, RTOL = 2e-5, 1e-4


def load_fixture(entry):
    return lstm_inspect.load(FIXTURES / entry["path"], **load_options(entry))


def clipped(entry) -> bool:
    return any(lay.get("cell_clip") or lay.get("proj_clip") for lay in entry["layers"])


def check_unit_outputs(entry, unit, reference, run_on):
    """run_on(x) → per-direction outputs [(h, c)] in processing order; every direction compared with
    the reference of its layer. A backward half's reference input is the forward one reversed."""
    refs = [
        (reference[f"{layer.name}/x"], reference[f"{layer.name}/h"], reference[f"{layer.name}/c"])
        for layer in unit.layers
    ]
    for direction, (x, h, c) in enumerate(refs):
        # Feed the sequence in forward order: a reverse direction reads it back to front.
        outputs = run_on(x if direction == 0 else x[::-1])
        got_h, got_c = outputs[direction]
        np.testing.assert_allclose(
            got_h, h, atol=ATOL, rtol=RTOL, err_msg=f"{entry['name']} {unit.layers[direction].name} h"
        )
        np.testing.assert_allclose(
            got_c, c, atol=ATOL, rtol=RTOL, err_msg=f"{entry['name']} {unit.layers[direction].name} c"
        )


def layout_arrays(ckpt, target, names=(), forget_bias=None):
    chosen = TARGETS[target]
    return export.arrays(export.export_units(ckpt, chosen, names), chosen, forget_bias)


def export_npz(ckpt, target, tmp_path, forget_bias=None):
    path = tmp_path / f"{target}.npz"
    write_npz(str(path), layout_arrays(ckpt, target, forget_bias=forget_bias))
    return dict(np.load(path))


def export_units(ckpt, target):
    return export.export_units(ckpt, TARGETS[target])


def refused(ckpt, target):
    try:
        export_units(ckpt, target)
    except UnsupportedFormat:
        return True
    return False


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_pytorch_export_run_by_torch_reproduces_the_fixture(entry, tmp_path):
    pytest.importorskip("torch")
    from lstm_inspect.targets.pytorch import run as torch_outputs

    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        if refused(ckpt, "pytorch"):
            assert clipped(entry) or any(
                lay["peepholes"] or lay["recurrent_activation"] != "sigmoid" or lay["activation"] != "tanh"
                for lay in entry["layers"]
            )
            return
        arrays = export_npz(ckpt, "pytorch", tmp_path)
        units = export_units(ckpt, "pytorch")
        for unit in units:
            prefix = f"{unit.name}/" if len(units) > 1 else ""
            state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            check_unit_outputs(entry, unit, reference, lambda x, state=state: torch_outputs([state], [], x))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_onnx_model_run_by_onnxruntime_reproduces_the_fixture(entry, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from lstm_inspect.targets.onnx import run_model as onnxruntime_outputs

    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        if refused(ckpt, "onnx"):
            # ONNX's `clip` bounds the gates' pre-activations, not the cell state as TF's cell_clip does.
            assert clipped(entry) or any(lay["projection"] for lay in entry["layers"])
            return
        for unit in export_units(ckpt, "onnx"):
            path = tmp_path / f"{len(os.listdir(tmp_path))}.onnx"
            ckpt.export(str(path), "onnx", [unit.name])
            check_unit_outputs(entry, unit, reference, lambda x, path=path: onnxruntime_outputs(str(path), x))
        # The npz form holds the same W, R, B the model does.
        arrays = export_npz(ckpt, "onnx", tmp_path)
        assert all(key.rsplit("/", 1)[1] in "WRBP" for key in arrays)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_keras_export_set_into_keras3_reproduces_the_fixture(entry, tmp_path):
    pytest.importorskip("keras")
    from lstm_inspect.targets.keras import outputs as keras_outputs

    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        if refused(ckpt, "keras"):
            assert clipped(entry) or any(lay["peepholes"] or lay["projection"] for lay in entry["layers"])
            return
        arrays = export_npz(ckpt, "keras", tmp_path)
        for expected in entry["layers"]:
            name = expected["name"]
            weights = [arrays[f"{name}/{k}"] for k in ("kernel", "recurrent_kernel", "bias")]
            h, c = keras_outputs(
                weights, reference[f"{name}/x"], expected["activation"], expected["recurrent_activation"]
            )
            np.testing.assert_allclose(h, reference[f"{name}/h"], atol=ATOL, rtol=RTOL, err_msg=name)
            np.testing.assert_allclose(c, reference[f"{name}/c"], atol=ATOL, rtol=RTOL, err_msg=name)


def run_tf1_cell(
    variables: dict[str, np.ndarray], x: np.ndarray, forget_bias: float, activation: str = "tanh", **clips: float
):
    """TF1's own LSTMCell (rnn_cell_impl.py, kept in tf_keras as legacy_cells) given the exported
    variables by name, stepped over x from a zero state; (h for every step, final c)."""
    import tensorflow as tf
    from tf_keras.src.layers.rnn.legacy_cells import LSTMCell

    units = variables["bias"].shape[0] // 4
    projection = variables.get("projection/kernel")
    cell = LSTMCell(
        units,
        use_peepholes="w_f_diag" in variables,
        num_proj=None if projection is None else projection.shape[1],
        forget_bias=forget_bias,
        activation={"tanh": tf.tanh, "relu": tf.nn.relu}[activation],
        name="lstm_cell",
        **clips,
    )
    state = cell.zero_state(x.shape[1], tf.float32)
    cell(tf.constant(x[0]), state)  # builds the variables
    # "lstm_cell_3/projection/kernel:0" → "projection/kernel"
    by_name = {v.name.split("/", 1)[1].rsplit(":", 1)[0]: v for v in cell.variables}
    assert sorted(by_name) == sorted(variables)
    for name, value in variables.items():
        by_name[name].assign(value)
    outputs = []
    for step in x:
        output, state = cell(tf.constant(step), state)
        outputs.append(output.numpy())
    return np.stack(outputs), state.c.numpy()


@pytest.mark.filterwarnings("ignore:`tf.nn.rnn_cell.LSTMCell` is deprecated")
@pytest.mark.parametrize("target_forget_bias", [None, 0.0])
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_tensorflow_export_loaded_into_tf1_cells_reproduces_the_fixture(entry, target_forget_bias, tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    reference = np.load(FIXTURES / entry["reference"])
    with load_fixture(entry) as ckpt:
        if refused(ckpt, "tensorflow"):
            assert any(lay["recurrent_activation"] != "sigmoid" for lay in entry["layers"])
            return
        arrays = export_npz(ckpt, "tensorflow", tmp_path, forget_bias=target_forget_bias)
        for expected in entry["layers"]:
            name = expected["name"]
            variables = {k[len(name) + 1 :]: v for k, v in arrays.items() if k.startswith(f"{name}/")}
            cell_forget_bias = 1.0 if target_forget_bias is None else target_forget_bias
            # The cell's activation and clips are its constructor's, as the graph said them.
            clips = {clip: expected[clip] for clip in ("cell_clip", "proj_clip") if expected.get(clip)}
            h, c = run_tf1_cell(variables, reference[f"{name}/x"], cell_forget_bias, expected["activation"], **clips)
            np.testing.assert_allclose(h, reference[f"{name}/h"], atol=ATOL, rtol=RTOL, err_msg=name)
            np.testing.assert_allclose(c, reference[f"{name}/c"], atol=ATOL, rtol=RTOL, err_msg=name)


def test_bfloat16_weights_are_exported_as_float32_that_npz_can_hold(tmp_path):
    import ml_dtypes

    rng = np.random.default_rng(5)
    store = MemoryStore(
        {
            "rnn/lstm_cell/kernel": rng.normal(size=(IN + U, 4 * U)).astype(ml_dtypes.bfloat16),
            "rnn/lstm_cell/bias": rng.normal(size=4 * U).astype(ml_dtypes.bfloat16),
        }
    )
    ckpt = Checkpoint(store)
    out = tmp_path / "x.npz"
    write_npz(str(out), layout_arrays(ckpt, "pytorch"))
    weight_ih = np.load(out)["weight_ih_l0"]
    assert weight_ih.dtype == np.float32
    np.testing.assert_array_equal(weight_ih[:U], ckpt.layers[0].gate("input").kernel.T.astype(np.float32))
