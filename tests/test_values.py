"""Values: damaged and implausible weights are reported, non-float ones refused, float8 read as
float32; split --values streams and prints every number within --max-elements; numpy's own
warnings never reach stderr; the commands stay linear in the number of layers."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tracemalloc
import warnings
import weakref

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

import lstm_inspect
from lstm_inspect.api import Checkpoint
from lstm_inspect.cli import main
from lstm_inspect.errors import LstmInspectWarning, UnsupportedFormat
from lstm_inspect.render import show, show_split
from lstm_inspect.results import split, stream_split
from lstm_inspect.verify import verify

from .conftest import FIXTURES
from .test_slicer import MemoryStore
from .test_tf_bundle import entry, write_bundle

BASIC = str(FIXTURES / "tf1_basic" / "model.ckpt")
# TF DataType codes (tensorflow/core/framework/types.proto).
TF_CODES = {
    "float32": 1,
    "float64": 2,
    "int8": 6,
    "complex64": 8,
    "bool": 10,
    "bfloat16": 14,
    "float16": 19,
    "float8_e5m2": 24,
    "float8_e4m3fn": 25,
}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write_checkpoint(prefix: str, arrays: dict[str, np.ndarray]) -> str:
    entries, data = {}, bytearray()
    for name, array in arrays.items():
        raw = array.tobytes()
        entries[name.encode()] = entry(TF_CODES[array.dtype.name], array.shape, len(raw), raw, offset=len(data))
        data += raw
    write_bundle(prefix, entries, bytes(data))
    return prefix


def cell(scope: str = "rnn/lstm_cell", dtype: object = np.float32, inputs: int = 3, units: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {
        f"{scope}/kernel": (rng.standard_normal((inputs + units, 4 * units)) * 0.5).astype(dtype),
        f"{scope}/bias": (rng.standard_normal(4 * units) * 0.5).astype(dtype),
    }


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Warning: ")]


# ---- implausible values ------------------------------------------------------------------------------


@pytest.fixture
def damaged(tmp_path):
    arrays = cell()
    kernel = arrays["rnn/lstm_cell/kernel"]
    kernel[0, 0], kernel[1, 1], kernel[2, 2], kernel[3, 3] = np.nan, np.inf, -2.1e37, 3e6
    return write_checkpoint(str(tmp_path / "damaged"), arrays)


@pytest.mark.parametrize(
    "args",
    [
        ["split"],
        ["split", "--values", "--json"],
        ["export", "-o", "{tmp}/out.npz"],
        ["export", "--layout", "pytorch", "-o", "{tmp}/out.npz"],
        ["export", "--layout", "onnx", "-o", "{tmp}/out.onnx"],
    ],
)
def test_damaged_values_are_reported_once_per_tensor(damaged, tmp_path, args):
    command, *options = args
    result = run(command, damaged, *(o.format(tmp=tmp_path) for o in options))
    assert result.exit_code == 0, result.stderr
    (line,) = warning_lines(result.stderr)
    assert "tensor 'rnn/lstm_cell/kernel'" in line and damaged in line
    assert "2 NaN or infinite and 2 beyond ±1,000,000 (up to 2.1e+37) of its 40 values" in line
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr


def test_verify_reports_damaged_values_once_though_it_reads_them_for_every_layout(damaged):
    with lstm_inspect.load(damaged) as ckpt, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", RuntimeWarning)
        result = verify(ckpt, frameworks=())
    lines = [str(w.message) for w in caught if issubclass(w.category, LstmInspectWarning)]
    assert len(lines) == 1 and "rnn/lstm_cell/kernel" in lines[0]
    assert not result.ok  # NaN outputs fail every comparison


def test_summary_reads_no_values_and_says_nothing(damaged):
    result = run("summary", damaged)
    assert result.exit_code == 0 and warning_lines(result.stderr) == []


def test_plausible_weights_pass_without_a_word():
    result = run("split", BASIC)
    assert result.exit_code == 0 and result.stderr == ""


def test_one_flipped_byte_in_an_h5_weight_is_reported(tmp_path):
    import h5py

    path = tmp_path / "model.h5"
    shutil.copyfile(FIXTURES / "keras2_h5" / "model.h5", path)
    with h5py.File(path, "r") as f:
        dataset = f["model_weights/enc/enc/lstm_cell/kernel:0"]
        offset, before = dataset.id.get_offset(), float(dataset[0, 5])
    with open(path, "r+b") as f:
        # The most significant byte of element [0, 5] (little-endian float32): bit 6 of the exponent.
        f.seek(offset + 5 * 4 + 3)
        byte = f.read(1)[0]
        f.seek(-1, 1)
        f.write(bytes([byte ^ 0x40]))
    with h5py.File(path, "r") as f:
        after = float(f["model_weights/enc/enc/lstm_cell/kernel:0"][0, 5])
    assert abs(before) < 10 and abs(after) > 1e30
    for args in (["split", str(path), "--layer", "enc"], ["export", str(path), "-o", str(tmp_path / "o.npz")]):
        result = run(*args)
        assert result.exit_code == 0, result.stderr
        (line,) = warning_lines(result.stderr)
        assert (
            "enc/kernel" in line and "1 beyond ±1,000,000" in line and "it carries no checksums of its values" in line
        )


# ---- dtypes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int8", "bool", "complex64"])
def test_non_float_weights_are_refused_in_one_line(tmp_path, dtype):
    path = write_checkpoint(str(tmp_path / dtype), cell(dtype=dtype))
    summary = run("summary", path)
    assert summary.exit_code == 0
    assert f"stores {dtype} weights, which no framework trains" in summary.stderr
    for args in (["split"], ["export", "-o", str(tmp_path / "o.npz")], ["verify"]):
        result = run(args[0], path, *args[1:])
        assert result.exit_code == 1 and result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("Error: ") and f"holds {dtype} values" in line and "floating point" in line
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("dtype", ["float8_e5m2", "float8_e4m3fn"])
def test_float8_weights_are_read_as_float32(tmp_path, dtype):
    arrays = cell(dtype=getattr(ml_dtypes, dtype))
    path = write_checkpoint(str(tmp_path / dtype), arrays)
    out = tmp_path / "o.npz"
    result = run("export", path, "--layout", "pytorch", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert len(warning_lines(result.stderr)) == 2 and f"is {dtype}; read as float32" in result.stderr
    exported = np.load(out)["weight_ih_l0"]
    assert exported.dtype == np.float32
    kernel = arrays["rnn/lstm_cell/kernel"].astype(np.float32)
    # TF i, j, f, o columns to PyTorch i, f, g, o rows, input part only.
    u = 2
    want = np.concatenate([kernel[:3, 0:u], kernel[:3, 2 * u : 3 * u], kernel[:3, u : 2 * u], kernel[:3, 3 * u :]], 1)
    np.testing.assert_array_equal(exported, want.T)
    with lstm_inspect.load(path) as ckpt, pytest.warns(LstmInspectWarning):
        assert verify(ckpt, frameworks=()).ok


def test_bfloat16_and_float16_keep_their_dtype(tmp_path):
    path = write_checkpoint(
        str(tmp_path / "half"), {**cell("a/lstm_cell", ml_dtypes.bfloat16), **cell("b/lstm_cell", np.float16)}
    )
    data = json.loads(run("split", path, "--json", "--values", "--part", "bias").stdout)
    assert [layer["blocks"][0]["dtype"] for layer in data["layers"]] == ["bfloat16", "float16"]
    assert all(isinstance(v, float) for layer in data["layers"] for v in layer["blocks"][0]["values"])


# ---- options -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["split", BASIC, "--forget-bias", "nan"],
        ["summary", BASIC, "--forget-bias", "inf"],
        ["export", BASIC, "--forget-bias", "-inf"],
        ["export", BASIC, "--layout", "tensorflow", "--target-forget-bias", "nan"],
        ["verify", BASIC, "--seed", "-1"],
    ],
)
def test_non_numbers_are_usage_errors(args):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert "Invalid value for '--" in result.stderr


def test_a_forget_bias_that_overflows_a_float16_bias_is_refused(tmp_path):
    path = write_checkpoint(str(tmp_path / "half"), cell(dtype=np.float16))
    out = tmp_path / "o.npz"
    result = run("export", path, "--layout", "tensorflow", "--target-forget-bias", "-1e6", "-o", str(out))
    assert result.exit_code == 1 and "overflows float16" in result.stderr and not out.exists()
    assert "RuntimeWarning" not in result.stderr


def test_a_zero_unit_layer_verifies_with_a_note(tmp_path):
    path = write_checkpoint(
        str(tmp_path / "zero"),
        {"rnn/lstm_cell/kernel": np.zeros((3, 0), np.float32), "rnn/lstm_cell/bias": np.zeros(0, np.float32)},
    )
    with lstm_inspect.load(path) as ckpt:
        result = verify(ckpt)
    (layer,) = result.layers
    assert result.ok and layer.checks == [] and "0 units" in layer.note


def test_no_numpy_warning_on_extreme_values(tmp_path):
    arrays = {}
    for scope, scale, dtype in (
        ("big/lstm_cell", 1e300, np.float64),  # squares overflow float64, sigmoid's exp overflows
        ("wide/lstm_cell", 1e38, np.float32),  # near float32's largest
        ("half/lstm_cell", 3e4, np.float16),  # near float16's largest, and plausible (below 1e6)
    ):
        arrays.update({k: (v * scale).astype(dtype) for k, v in cell(scope, np.float64, seed=2).items()})
    arrays["inf/lstm_cell/kernel"] = np.full((5, 8), np.inf, np.float32)
    arrays["inf/lstm_cell/bias"] = np.full(8, -np.inf, np.float32)
    path = write_checkpoint(str(tmp_path / "extreme"), arrays)
    implausible = {name for name in arrays if not name.startswith("half/")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for args in (
            ["split", path, "--values"],
            ["split", path, "--json", "--values"],
            ["export", path, "-o", str(tmp_path / "g.npz")],
            ["export", path, "--layout", "tensorflow", "--target-forget-bias", "0", "-o", str(tmp_path / "t.npz")],
        ):
            result = run(*args)
            assert result.exit_code == 0, result.stderr
            warned = {line.split("tensor '")[1].split("'")[0] for line in warning_lines(result.stderr)}
            assert warned == implausible
        with lstm_inspect.load(path) as ckpt, pytest.warns(LstmInspectWarning):
            verify(ckpt, frameworks=())


# ---- split --values ----------------------------------------------------------------------------------------


def test_values_of_a_1024_by_1024_block_print_in_full():
    rng = np.random.default_rng(0)
    units = 1024
    arrays = {
        "enc/kernel": rng.standard_normal((8, 4 * units)).astype(np.float32),
        "enc/recurrent_kernel": rng.standard_normal((units, 4 * units)).astype(np.float32),
        "enc/bias": np.zeros(4 * units, np.float32),
    }
    console = Console(file=io.StringIO(), width=120)
    with Checkpoint(MemoryStore(arrays)) as ckpt:
        show(
            stream_split(ckpt, gates=["f"], parts=["recurrent"], values=True, max_elements=units * units),
            console=console,
        )
    text = console.file.getvalue()
    assert "..." not in text
    title, values = text.split("enc forget recurrent [1024, 1024]\n")
    numbers = np.array(values.replace("[", " ").replace("]", " ").split(), dtype=np.float64)
    want = arrays["enc/recurrent_kernel"][:, units : 2 * units].reshape(-1)  # Keras i, f, c, o: forget second
    assert numbers.size == units * units
    np.testing.assert_allclose(numbers, want, rtol=5e-6, atol=0)
    assert values.count("\n [") == units - 1  # a row starts each line group


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_more_values_than_max_elements_are_refused_before_any_output(as_json):
    result = run("split", BASIC, "--values", "--max-elements", "1000", *as_json)
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    # The input gate's kernel [12, 64] is 768 numbers; its recurrent block takes the count past 1,000.
    assert "would print 19,712 numbers, more than --max-elements 1,000" in line
    assert "rnn/basic_lstm_cell input recurrent [64, 64] goes past" in line and "`lstm-inspect export`" in line
    assert run("split", BASIC, "--values", "--max-elements", "19712").exit_code == 0
    assert run("split", BASIC, "--max-elements", "0").exit_code == 0  # no --values: nothing to count


def test_default_max_elements_allows_a_1024_by_1024_block():
    from lstm_inspect.cli import MAX_VALUES

    assert MAX_VALUES == 1024 * 1024
    assert "--max-elements N" in run("split", "--help").stdout


@pytest.mark.parametrize(
    "path", [BASIC, str(FIXTURES / "keras2_cudnn" / "model.h5"), str(FIXTURES / "tf1_peephole_proj" / "model.ckpt")]
)
def test_streamed_json_is_the_text_of_to_dict(path):
    with lstm_inspect.load(path) as ckpt:
        whole = json.dumps(split(ckpt, values=True).to_dict(), indent=2) + "\n"
        out = io.StringIO()
        show_split(stream_split(ckpt, values=True), as_json=True, console=Console(file=out))
    assert out.getvalue() == whole
    result = run("split", path, "--json", "--values", "--max-elements", "10000000")
    assert result.stdout == whole


def test_streamed_json_of_special_values_and_empty_blocks():
    arrays = {"enc/kernel": np.zeros((0, 8), np.float32), "enc/recurrent_kernel": np.zeros((2, 8), np.float32)}
    arrays["enc/recurrent_kernel"][0, :3] = [np.nan, np.inf, -np.inf]
    arrays["enc/bias"] = np.zeros(8, np.float32)
    with Checkpoint(MemoryStore(arrays)) as ckpt, pytest.warns(LstmInspectWarning):
        whole = json.dumps(split(ckpt, values=True).to_dict(), indent=2) + "\n"
        out = io.StringIO()
        show_split(stream_split(ckpt, values=True), as_json=True, console=Console(file=out))
    assert out.getvalue() == whole and "NaN" in whole and "-Infinity" in whole
    # A layer of 0 units: every block has a zero-sized dimension.
    zero = {"rnn/lstm_cell/kernel": np.zeros((3, 0), np.float32), "rnn/lstm_cell/bias": np.zeros(0, np.float32)}
    with Checkpoint(MemoryStore(zero)) as ckpt:
        whole = json.dumps(split(ckpt, values=True).to_dict(), indent=2) + "\n"
        out, text = io.StringIO(), io.StringIO()
        show_split(stream_split(ckpt, values=True), as_json=True, console=Console(file=out))
        show_split(stream_split(ckpt, values=True), console=Console(file=text, width=200))
    assert out.getvalue() == whole and '"values": []' in whole
    assert text.getvalue().count("\n[]\n") == 12


class _Counting(MemoryStore):
    """A store whose reads are fresh arrays, counted while alive."""

    def __init__(self, arrays):
        super().__init__(arrays)
        self.alive = 0
        self.peak = 0

    def read(self, name):
        self.reads.append(name)
        value = self.arrays[name].copy()
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        weakref.finalize(value, self._gone)
        return value

    def _gone(self):
        self.alive -= 1


class _Sink(io.StringIO):
    """Output that records how many read tensors were alive whenever split wrote."""

    def __init__(self, store):
        super().__init__()
        self.store, self.alive = store, []

    def write(self, text):
        self.alive.append(self.store.alive)
        return super().write(text)


@pytest.mark.parametrize("as_json", [False, True])
def test_split_values_holds_one_layers_tensors_at_a_time(as_json):
    arrays = {}
    for n in range(6):
        arrays.update(cell(f"enc/cell_{n}/lstm_cell", seed=n))
    store = _Counting(arrays)
    sink = _Sink(store)
    with Checkpoint(store) as ckpt:
        show_split(stream_split(ckpt, values=True), as_json=as_json, console=Console(file=sink, width=200))
    assert max(sink.alive) <= 2 and store.peak <= 2  # a layer's kernel and bias
    assert store.reads == list(arrays)  # each tensor read once


def test_split_values_memory_stays_near_one_layer():
    # 4 layers of 0.5 MiB; their 0.5 M numbers as lists of Python floats would take 16 MiB.
    arrays = {}
    for n in range(4):
        arrays.update(cell(f"enc/cell_{n}/lstm_cell", inputs=128, units=128, seed=n))
    layer_bytes = sum(v.nbytes for k, v in arrays.items() if k.startswith("enc/cell_0/"))

    class Discard(io.TextIOBase):
        def write(self, text):
            return len(text)

    with Checkpoint(_Counting(arrays)) as ckpt:
        stream = stream_split(ckpt, values=True)
        tracemalloc.start()
        try:
            show_split(stream, as_json=True, console=Console(file=Discard()))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # One layer's tensors, and pieces of a fixed size for the value check and the statistics.
    assert peak < 2 * layer_bytes + 2**21, (peak, layer_bytes)


# ---- linear in the number of layers -------------------------------------------------------------------


def _calls(function) -> int:
    """How many Python and C function calls `function()` makes: a count, not a time."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += 1

    sys.setprofile(profile)
    try:
        function()
    finally:
        sys.setprofile(None)
    return count


def _many_layers(tmp_path, n: int) -> str:
    arrays = {}
    for k in range(n):
        arrays.update(cell(f"rnn/multi_rnn_cell/cell_{k}/lstm_cell", seed=k))
    return write_checkpoint(str(tmp_path / f"many{n}"), arrays)


# Sizes on both sides of the point where tables of more than 200 rows turn into plain columns
# (render.MAX_TABLE_ROWS), which costs less per row: summary and verify, a row per layer, compare
# 250 and 2,500 layers; split (12 rows a layer) and export, 50 and 500.
@pytest.mark.parametrize(
    ("command", "small"),
    [
        (["summary"], 250),
        (["summary", "--json"], 250),
        (["split"], 50),
        (["split", "--layer", "{last}"], 50),
        (["export", "-o", "{tmp}/g.npz"], 50),
        (["export", "--layout", "pytorch", "-o", "{tmp}/p.npz"], 50),
        (["verify"], 250),
    ],
)
def test_work_grows_linearly_with_the_number_of_layers(tmp_path, command, small, monkeypatch):
    # verify's frameworks import themselves once and run per structure: numpy targets tell the same.
    from lstm_inspect import verify as verify_module

    monkeypatch.setattr(verify_module, "FRAMEWORKS", ())
    counts = {}
    for n in (1, small, 10 * small):  # the first run imports what the command needs
        path = _many_layers(tmp_path, n)
        last = f"rnn/multi_rnn_cell/cell_{n - 1}/lstm_cell"
        args = [command[0], path, *(a.format(tmp=tmp_path, last=last) for a in command[1:])]
        counts[n] = _calls(lambda args=args: CliRunner().invoke(main, args, catch_exceptions=False))
    # Ten times the layers: ten times the work at most, plus what does not depend on them. A scan
    # of every layer per named layer (the old Checkpoint.select) made it 14 times for export, and
    # more the more layers there are.
    assert counts[10 * small] < 11 * counts[small], counts


def test_verify_checks_each_structure_and_reads_the_rest(tmp_path):
    arrays = {}
    for k in range(20):
        arrays.update(cell(f"a/cell_{k:02d}/lstm_cell", seed=k))
    for k in range(2):
        arrays.update(cell(f"b/cell_{k}/lstm_cell", units=3, seed=k))
    arrays["a/cell_19/lstm_cell/bias"][0] = np.nan  # a covered layer's values are still checked
    store = MemoryStore(arrays)
    with Checkpoint(store) as ckpt, pytest.warns(LstmInspectWarning, match="a/cell_19/lstm_cell/bias"):
        result = verify(ckpt, frameworks=())
    run_in_full = [layer.name for layer in result.layers if layer.checks]
    assert run_in_full == [f"a/cell_{k:02d}/lstm_cell" for k in range(16)] + [
        "b/cell_0/lstm_cell",
        "b/cell_1/lstm_cell",
    ]
    covered = {layer.name: layer.covered_by for layer in result.layers if layer.covered_by}
    assert covered == {f"a/cell_{k}/lstm_cell": "a/cell_00/lstm_cell" for k in range(16, 20)}
    assert set(store.reads) == set(arrays)
    # The layers only read go first (while a framework's worker would import), the report keeps
    # the file's order.
    assert [layer.name for layer in result.layers] == [layer.name for layer in ckpt.layers]
    first_full = store.reads.index("a/cell_00/lstm_cell/kernel")
    assert {name.rsplit("/", 1)[0] for name in store.reads[:first_full]} == set(covered)
    text = io.StringIO()
    show(result, console=Console(file=text, width=200))
    assert "4 layer(s) not run: each has the structure of a layer checked above" in text.getvalue()
    with Checkpoint(MemoryStore(arrays)) as ckpt, pytest.warns(LstmInspectWarning):
        named = verify(ckpt, ["a/cell_19/lstm_cell"], frameworks=())
    assert named.layers[0].checks and named.layers[0].covered_by is None


def test_an_unknown_layer_lists_a_few_of_thousands(tmp_path):
    path = _many_layers(tmp_path, 300)
    result = run("split", path, "--layer", "nope")
    (line,) = result.stderr.strip().splitlines()
    assert line.count("rnn/multi_rnn_cell/") == 20 and "(300 in all: `lstm-inspect summary` lists them)" in line


def test_non_float_refusal_is_the_reader_agnostic_api(tmp_path):
    with Checkpoint(MemoryStore(cell(dtype=np.int8))) as ckpt, pytest.raises(UnsupportedFormat, match="int8"):
        ckpt.layer("rnn/lstm_cell").gates()


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.normal(1.0, 0.01, (300, 1000)).astype(np.float32),  # many pieces, mean far from 0
        lambda rng: rng.normal(size=(3, 70_000)).astype(np.float16),  # rows longer than a piece
        lambda rng: rng.normal(size=70_001).astype(np.float64)[::2],  # not contiguous
        lambda rng: rng.normal(size=(200, 300)).astype(np.float32).T,
        lambda rng: rng.normal(size=(5, 4)).astype(ml_dtypes.bfloat16),
        lambda rng: np.full(100_000, 0.25, np.float32),
    ],
)
def test_split_statistics_are_numpys_in_float64(make):
    from lstm_inspect.results import statistics

    array = make(np.random.default_rng(3))
    exact = array.astype(np.float64)
    expected = (exact.mean(), exact.std(), exact.min(), exact.max(), np.sqrt((exact * exact).sum()))
    assert statistics(array) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("bad", "expected"), [(np.inf, (np.inf, np.nan, -3.0, np.inf, np.inf)), (np.nan, (np.nan,) * 5)]
)
def test_split_statistics_of_non_finite_values_are_what_numpy_gives(bad, expected):
    from lstm_inspect.results import statistics

    array = np.linspace(-3.0, 3.0, 200_000, dtype=np.float32)
    array[150_000] = bad
    got = statistics(array)
    for value, want in zip(got, expected):
        assert (np.isnan(value) and np.isnan(want)) or value == want, (got, expected)
