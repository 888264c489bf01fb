"""What a TensorFlow graph says, wired through every command (issue 11): summary's settings with
their sources (and --json's), the settings reaching the exports and refusals, frozen graphs and
SavedModels through summary, split, export and verify, verify's TensorFlow checks (its worker
bounded and quiet), optimizer slots by structure, and every bad input as one clean line."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import lstm_inspect
from lstm_inspect import verify as verify_module
from lstm_inspect.detect import categorize, detect
from lstm_inspect.numpy_lstm import run_lstm, run_weights
from lstm_inspect.readers.base import LayerHint, Setting, TensorInfo
from lstm_inspect.targets import tensorflow as tensorflow_target
from lstm_inspect.verify import verify

from .conftest import FIXTURES, manifest
from .test_cli import assert_clean_error, golden, run, run_fresh
from .test_slicer import MemoryStore
from .test_tf_graph import field, fields, graph_def, graph_of, with_graph

ENTRIES = {e["name"]: e for e in manifest()}
RELU, CLIPS, FORGET0 = (FIXTURES / name / "model.ckpt" for name in ("tf1_relu", "tf1_clips", "tf1_forget0"))
NO_META = FIXTURES / "tf1_forget0_no_meta" / "model.ckpt"
FROZEN = FIXTURES / "tf1_frozen"
NO_GRAPH_SOURCE = "TF1 default: no graph beside the checkpoint; pass --forget-bias if the cell was built otherwise"
# Every file TensorFlow wrote among the fixtures, as a user would pass it.
TF_FILES = [
    *(e["path"] for e in ENTRIES.values() if e["format"] in ("tf-checkpoint", "saved-model") and e["layers"]),
    "tf1_frozen/frozen.pb",
    "tf1_frozen/frozen.pbtxt",
    "tf1_frozen/frozen_saved_model",
]


@pytest.fixture
def wide(monkeypatch):
    # Explanations wrap at the console's width; these tests read whole lines.
    monkeypatch.setenv("COLUMNS", "400")


def lines_of(result) -> list[str]:
    return [line.strip() for line in result.stdout.splitlines()]


def settings_of(path, *args: str) -> dict[str, dict]:
    result = run("summary", str(path), "--json", *args)
    assert result.exit_code == 0, result.stderr
    (layer, *_) = json.loads(result.stdout)["layers"]
    return layer["settings"]


def copy_checkpoint(source, directory, meta: bytes | None = None):
    """The checkpoint at `source` copied into `directory`, with `meta` as its .meta (none: no .meta)."""
    directory.mkdir(exist_ok=True)
    for path in source.parent.glob(source.name + ".*"):
        if not path.name.endswith(".meta"):
            shutil.copy(path, directory / path.name)
    if meta is not None:
        (directory / (source.name + ".meta")).write_bytes(meta)
    return directory / source.name


def patched_meta(meta_path, node_name: bytes, old: float, new: float) -> bytes:
    """The .meta at `meta_path` with the float `old` in node `node_name` made `new`."""
    patched = []
    for node in (v for n, v in fields(graph_of(meta_path)) if n == 1):
        if node.startswith(field(1, node_name)):
            assert node.count(struct.pack("<f", old)) == 1
            node = node.replace(struct.pack("<f", old), struct.pack("<f", new))
        patched.append(node)
    return with_graph(meta_path, graph_def(patched))


# --- summary: every setting with where it came from ------------------------------------------------


def test_summary_names_the_graph_node_of_each_setting(wide):
    fixture = ENTRIES["tf1_forget0"]
    node = fixture["layers"][0]["forget_bias_nodes"][0]
    lines = lines_of(run("summary", str(FORGET0)))
    assert f"forget bias 0.0 (graph: {node['node']} in function {node['function']})" in lines
    assert any(line.startswith("activation tanh (graph: basic_lstm_cell/Tanh in function ") for line in lines)
    assert any(line.startswith("BasicLSTMCell (TF)") or "│ BasicLSTMCell (TF) │" in line for line in lines)

    relu = lines_of(run("summary", str(RELU)))
    assert "forget bias 3.0 (graph: rnn/lstm_cell/add/y), added at run time, not stored" in relu
    assert any(line.startswith("activation relu (graph: rnn/lstm_cell/Relu") for line in relu)


def test_without_a_graph_the_default_says_it_is_one_and_how_to_override_it(wide):
    assert f"forget bias 1.0 ({NO_GRAPH_SOURCE}), added at run time, not stored" in lines_of(
        run("summary", str(NO_META))
    )
    settings = settings_of(NO_META)
    assert settings["forget_bias"] == {"value": 1.0, "source": NO_GRAPH_SOURCE, "assumed": True}
    assert settings["activation"]["assumed"] is True and settings["activation"]["value"] == "tanh"
    assert settings["recurrent_activation"]["assumed"] is False  # LSTMCell hard-codes sigmoid
    # --forget-bias still overrides, and says so; with 0 the layer reproduces TensorFlow's outputs.
    assert settings_of(NO_META, "--forget-bias", "0")["forget_bias"] == {
        "value": 0.0,
        "source": "--forget-bias",
        "assumed": False,
    }
    assert settings_of(RELU, "--forget-bias", "0.5")["forget_bias"]["source"] == "--forget-bias"


def test_json_carries_value_source_and_assumed_of_every_setting():
    settings = settings_of(CLIPS)
    assert set(settings) == {"forget_bias", "activation", "recurrent_activation", "cell_clip", "proj_clip"}
    assert settings["cell_clip"]["value"] == 0.5 and settings["proj_clip"]["value"] == 0.3
    assert all(s["source"].startswith("graph: rnn/while/lstm_cell/") and not s["assumed"] for s in settings.values())
    # A Keras config says the activations; Keras adds no forget bias.
    keras = settings_of(FIXTURES / "keras2_h5" / "model.h5")
    assert keras["activation"] == {"value": "tanh", "source": "config: enc", "assumed": False}
    assert keras["forget_bias"] == {"value": 0.0, "source": "Keras adds none at run time", "assumed": False}
    # A fused op's attributes.
    block = {
        layer["name"]: layer["settings"]
        for layer in json.loads(run("summary", str(FIXTURES / "tf1_block" / "model.ckpt"), "--json").stdout)["layers"]
    }
    assert block["rnn/lstm_cell"]["cell_clip"]["source"] == "op attribute: rnn/lstm_cell/LSTMBlockCell cell_clip"
    assert block["lstm_fused_cell"]["forget_bias"]["value"] == 1.5


@pytest.mark.parametrize(
    ("name", "path"),
    [("summary_tf1_clips.out", CLIPS), ("summary_tf1_forget0_no_meta.out", NO_META)],
)
def test_golden_summaries_of_graph_fixtures(name, path):
    # Paths relative to the checkout: where it lies must not change how lines wrap.
    result = run("summary", str(path.relative_to(FIXTURES.parent)), cwd=FIXTURES.parent)
    assert result.exit_code == 0 and result.stderr == ""
    golden(name, result.stdout)


def test_a_meta_given_as_path_opens_its_checkpoint():
    by_meta, by_prefix = run("summary", str(RELU) + ".meta", "--json"), run("summary", str(RELU), "--json")
    assert by_meta.exit_code == 0, by_meta.stderr
    assert json.loads(by_meta.stdout)["layers"] == json.loads(by_prefix.stdout)["layers"]


def test_summary_with_a_graph_imports_neither_numpy_nor_tensorflow():
    out, loaded = run_fresh(["summary", str(RELU)], ("numpy", "h5py", "tensorflow"))
    assert "activation relu (graph:" in out and loaded == [], (out, loaded)


@pytest.mark.parametrize(
    "args",
    [
        ["split", str(RELU), "--gate", "forget"],
        ["export", str(RELU), "--layout", "onnx", "-o", "OUT"],
        ["export", str(FIXTURES / "tf1_frozen" / "frozen.pb"), "-o", "OUT"],
        ["export", str(FIXTURES / "keras2_saved_model" / "saved_model"), "-o", "OUT"],
    ],
)
def test_split_and_export_of_graphs_never_import_tensorflow(args, tmp_path):
    # TensorFlow is verify's framework only: every other command reads graphs and SavedModels itself.
    args = [str(tmp_path / "out.npz") if a == "OUT" else a for a in args]
    out, loaded = run_fresh(args, ("tensorflow", "keras", "tf_keras"), strict=True)
    assert loaded == [], (out, loaded)


# --- a graph that is not the checkpoint's, or is damaged, or says two things ----------------------


def test_a_meta_of_another_model_is_one_warning_and_ignored(tmp_path):
    # tf1_relu's graph (kernel [28, 64]) beside tf1_clips' checkpoint (kernel [20, 64]).
    prefix = copy_checkpoint(CLIPS, tmp_path / "ckpt", meta=(FIXTURES / "tf1_relu" / "model.ckpt.meta").read_bytes())
    result = run("summary", str(prefix), "--json")
    assert result.exit_code == 0
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("Warning: ") and "'rnn/lstm_cell/kernel' is [28, 64] in the graph but [20, 64]" in warning
    assert "not this checkpoint's graph, so ignored" in warning
    (layer,) = json.loads(result.stdout)["layers"]
    assert layer["forget_bias"] == 1.0 and layer["activation"] == "tanh" and "cell_clip" not in layer["settings"]
    assert layer["settings"]["forget_bias"]["source"] == (
        "TF1 default: model.ckpt.meta beside it is another model's graph, ignored; "
        "pass --forget-bias if the cell was built otherwise"
    )


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_meta_is_one_warning_and_the_checkpoint_still_reads(tmp_path, damage):
    meta = (FIXTURES / "tf1_relu" / "model.ckpt.meta").read_bytes()
    meta = meta[: len(meta) // 3] if damage == "truncated" else b"\xff" * 200
    prefix = copy_checkpoint(RELU, tmp_path / "ckpt", meta=meta)
    for command in ("summary", "split"):
        result = run(command, str(prefix))
        assert result.exit_code == 0 and "Traceback" not in result.stderr
        (warning,) = result.stderr.strip().splitlines()
        assert warning.startswith("Warning: ") and "model.ckpt.meta" in warning and "read without it" in warning
    assert "its graph model.ckpt.meta could not be read" in settings_of(prefix)["forget_bias"]["source"]


def test_two_forget_biases_in_one_scope_are_one_warning_naming_both_and_marked(tmp_path):
    meta = patched_meta(FIXTURES / "tf1_relu" / "model.ckpt.meta", b"rnn/lstm_cell/add_4/y", 3.0, 1.0)
    prefix = copy_checkpoint(RELU, tmp_path / "ckpt", meta=meta)
    result = run("summary", str(prefix), "--json")
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("Warning: ") and "'rnn/lstm_cell'" in warning
    assert "3.0 (graph: rnn/lstm_cell/add/y) and 1.0 (graph: rnn/lstm_cell/add_4/y)" in warning
    assert "pass --forget-bias to say which" in warning
    setting = json.loads(result.stdout)["layers"][0]["settings"]["forget_bias"]
    assert setting["value"] == 3.0 and setting["assumed"] is True
    assert "rnn/lstm_cell/add/y" in setting["source"] and "rnn/lstm_cell/add_4/y" in setting["source"]
    # Saying which settles it: no warning.
    settled = run("summary", str(prefix), "--forget-bias", "1")
    assert settled.exit_code == 0 and settled.stderr == ""


def test_an_asymmetric_cell_clip_is_shown_and_refused_by_export_and_verify(tmp_path, wide):
    meta = patched_meta(CLIPS.parent / "model.ckpt.meta", b"rnn/while/lstm_cell/clip_by_value/y", -0.5, -0.25)
    prefix = copy_checkpoint(CLIPS, tmp_path / "ckpt", meta=meta)
    assert settings_of(prefix)["cell_clip"]["value"] == [-0.25, 0.5]
    assert any(line.startswith("cell clip [-0.25, 0.5] (graph: ") for line in lines_of(run("summary", str(prefix))))
    for args in (["export", str(prefix), "-o", str(tmp_path / "out.npz")], ["verify", str(prefix)]):
        assert_clean_error(run(*args), "'rnn/lstm_cell' clips with cell_clip to [-0.25, 0.5]", "symmetric clips only")
    assert not (tmp_path / "out.npz").exists()


# --- settings reach the exports; targets that cannot express them refuse -----------------------------


class GraphStore(MemoryStore):
    """A TF1 LSTMCell's variables (no peepholes, no projection) and what a graph says of it."""

    def __init__(self, **settings: object) -> None:
        rng = np.random.default_rng(11)
        super().__init__(
            {
                "rnn/lstm_cell/kernel": (rng.normal(size=(5 + 6, 24)) * 0.8).astype(np.float32),
                "rnn/lstm_cell/bias": (rng.normal(size=24) * 0.5).astype(np.float32),
            }
        )
        said = {name: Setting(value, f"graph: rnn/lstm_cell/{name}") for name, value in settings.items()}
        self.hints = {"rnn/lstm_cell": LayerHint("rnn/lstm_cell", "LSTMCell", said)}

    def layer_hints(self):
        return self.hints


@pytest.mark.parametrize(
    ("layout", "output", "reason"),
    [
        ("pytorch", "out.npz", "torch.nn.LSTM has no cell_clip"),
        ("keras", "out.npz", "keras.layers.LSTM has no cell_clip"),
        ("onnx", "out.npz", "the ONNX LSTM operator has no cell_clip"),
        ("onnx", "out.onnx", "the ONNX LSTM operator has no cell_clip"),
    ],
)
def test_a_clip_is_refused_by_targets_without_one_naming_layer_and_setting(tmp_path, layout, output, reason):
    ckpt = lstm_inspect.api.Checkpoint(GraphStore(cell_clip=0.5, forget_bias=0.0))
    with pytest.raises(lstm_inspect.UnsupportedFormat) as refused:
        ckpt.export(str(tmp_path / output), layout)
    message = str(refused.value)
    assert message.startswith(f"rnn/lstm_cell: cannot export to --layout {layout}: {reason}")
    assert message.endswith("layouts that can express it: gates, tensorflow")
    assert not (tmp_path / output).exists()


def test_a_relu_cell_is_refused_by_pytorch_naming_the_setting(tmp_path):
    result = run("export", str(RELU), "--layout", "pytorch", "-o", str(tmp_path / "out.npz"))
    assert_clean_error(result, "rnn/lstm_cell: cannot export to --layout pytorch", "this layer uses relu")


def test_clips_reach_the_gates_export_and_the_tensorflow_target(tmp_path):
    out = tmp_path / "clips.npz"
    assert run("export", str(CLIPS), "-o", str(out)).exit_code == 0
    with np.load(out) as npz:
        assert npz["rnn/lstm_cell/cell_clip"].shape == () and float(npz["rnn/lstm_cell/cell_clip"]) == 0.5
        assert float(npz["rnn/lstm_cell/proj_clip"]) == pytest.approx(0.3)
    # Read back as a file of its own, the export keeps them.
    assert settings_of(out)["cell_clip"]["value"] == 0.5
    # The numpy LSTM and TF's LSTMCell clip alike, and the clip matters: without it they differ.
    ckpt = lstm_inspect.api.Checkpoint(GraphStore(cell_clip=0.05, forget_bias=0.0))
    assert ckpt.layers[0].clips() == {"cell_clip": 0.05}
    frameworks = ["tensorflow"] if verify_module.installed(*tensorflow_target.NEEDS) else []
    result = verify(ckpt, frameworks=frameworks)
    (layer,) = result.layers
    checks = {c.target: c for c in layer.checks}
    assert result.ok and checks["numpy:tensorflow"].max_abs_diff < 1e-6 and checks["numpy:gates"].max_abs_diff < 1e-6
    assert checks["numpy:pytorch"].note == "refused: torch.nn.LSTM has no cell_clip"
    if frameworks:
        assert checks["tensorflow"].max_abs_diff < 1e-5
    weights = ckpt.layers[0].weights()
    x = np.random.default_rng(0).standard_normal((5, 3, 5))
    clipped, _ = run_lstm(weights.gates(), x, cell_clip=0.05)
    free, _ = run_lstm(weights.gates(), x)
    assert np.abs(clipped - free).max() > 1e-2


@pytest.mark.parametrize("name", ["tf1_clips", "tf1_relu", "tf1_block", "tf1_forget0", "tf1_bidi_multi"])
def test_the_graph_settings_through_the_numpy_lstm_reproduce_tensorflow(name):
    fixture = ENTRIES[name]
    reference = np.load(FIXTURES / fixture["reference"])
    with lstm_inspect.load(FIXTURES / fixture["path"]) as ckpt:
        for expected in fixture["layers"]:
            layer = ckpt.layer(expected["name"])
            activation, recurrent = layer.activations()
            clips = layer.clips()
            h, c = run_lstm(
                layer.gates(),
                reference[f"{layer.name}/x"],
                forget_bias=layer.forget_bias,
                projection=layer.projection,
                activation=activation,
                recurrent_activation=recurrent,
                cell_clip=clips.get("cell_clip"),
                proj_clip=clips.get("proj_clip"),
            )
            np.testing.assert_allclose(h, reference[f"{layer.name}/h"], atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(c, reference[f"{layer.name}/c"], atol=2e-5, rtol=1e-4)


# --- frozen graphs and SavedModels through every command ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "tf1_frozen/frozen.pb",
        "tf1_frozen/frozen.pbtxt",
        "tf1_frozen/frozen_saved_model",
        "keras2_saved_model/saved_model",
        "keras3_export/saved_model",
        "tf2_module_saved_model/saved_model",
    ],
)
def test_frozen_graphs_and_saved_models_through_every_command(path, tmp_path):
    source = str(FIXTURES / path)
    summary = json.loads(run("summary", source, "--json").stdout)
    names = [layer["name"] for layer in summary["layers"]]
    assert names
    split = run("split", source, "--json")
    assert split.exit_code == 0 and [layer["name"] for layer in json.loads(split.stdout)["layers"]] == names
    for layout in ("gates", "tensorflow"):
        out = tmp_path / f"{layout}.npz"
        result = run("export", source, "--layout", layout, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        with np.load(out) as npz:
            assert any(key.startswith(f"{names[0]}/") for key in npz.files)
    checked = run("verify", source, "--json")
    assert checked.exit_code == 0, checked.stdout
    data = json.loads(checked.stdout)
    assert data["ok"] is True
    for layer in data["layers"]:
        ran = {c["target"] for c in layer["checks"] if c["max_abs_diff"] is not None}
        assert {"numpy:gates", "numpy:tensorflow", "tensorflow", "tf-cell"} <= ran


def test_a_frozen_graph_exports_what_its_checkpoint_exports(tmp_path):
    for source, out in ((FROZEN / "frozen.pb", "frozen.npz"), (FROZEN / "model.ckpt", "ckpt.npz")):
        assert run("export", str(source), "-o", str(tmp_path / out)).exit_code == 0
    frozen, checkpoint = np.load(tmp_path / "frozen.npz"), np.load(tmp_path / "ckpt.npz")
    assert sorted(frozen.files) == sorted(checkpoint.files)
    for key in frozen.files:
        np.testing.assert_array_equal(frozen[key], checkpoint[key])
    assert float(frozen["rnn/lstm_cell/forget_bias"]) == 2.0


def test_an_export_never_replaces_a_file_of_a_saved_model_or_frozen_graph(tmp_path):
    directory = tmp_path / "saved_model"
    shutil.copytree(FIXTURES / "keras2_saved_model" / "saved_model", directory)
    frozen = tmp_path / "frozen.pb"
    shutil.copy(FROZEN / "frozen.pb", frozen)
    for source, victim in ((directory, directory / "saved_model.pb"), (frozen, frozen)):
        before = victim.read_bytes()
        result = run("export", str(source), "-o", str(victim), "--force")
        assert result.exit_code != 0 and victim.read_bytes() == before


# --- bad input: one clean line -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["summary", "split", "export", "verify"])
@pytest.mark.parametrize("file", ["frozen.pb", "frozen.pbtxt"])
def test_a_truncated_frozen_graph_is_one_clean_error(tmp_path, command, file):
    data = (FROZEN / file).read_bytes()
    damaged = tmp_path / file
    damaged.write_bytes(data[: len(data) // 2 + 7])
    args = [command, str(damaged)] + (["-o", str(tmp_path / "out.npz")] if command == "export" else [])
    result = run(*args)
    assert_clean_error(result, str(damaged))
    assert not (tmp_path / "out.npz").exists()


def test_a_keras_saved_model_without_variables_is_one_clean_error(tmp_path):
    directory = tmp_path / "saved_model"
    shutil.copytree(FIXTURES / "keras2_saved_model" / "saved_model", directory)
    shutil.rmtree(directory / "variables")
    for command in ("summary", "verify"):
        assert_clean_error(run(command, str(directory)), "without variables/")
    # A frozen graph saved as a SavedModel has its weights in its graph: it reads without variables/.
    assert run("summary", str(FROZEN / "frozen_saved_model")).exit_code == 0


# --- optimizer state by structure ---------------------------------------------------------------------


def test_named_optimizer_slots_are_optimizer_state():
    fixture = ENTRIES["tf1_named_optimizer"]
    summary = json.loads(run("summary", str(FIXTURES / fixture["path"]), "--json").stdout)
    assert summary["total_params"] == fixture["total_params"] and summary["optimizer_tensors"] == 6
    assert [v["name"] for v in summary["variables"]] == ["head/bias", "head/kernel"]
    # Without the graph, the structure alone says so.
    bare = FIXTURES / fixture["path"]
    with lstm_inspect.readers.open_store(bare) as store:
        shapes = {name: info for name, info in store.tensors().items()}
    found = detect(shapes)
    assert sum(v.category == "optimizer" for v in found.variables) == 6


def test_a_slot_is_any_variable_under_a_variable_of_its_shape_unless_the_graph_trains_it():
    def info(name, shape):
        return name, TensorInfo(name, shape, "float32", name)

    tensors = dict(
        [
            info("dense/kernel", (4, 2)),
            info("dense/kernel/my_optimizer_7", (4, 2)),
            info("dense/kernel/ema/shadow", (4, 2)),
            info("dense/kernel/other", (3,)),  # another shape: a variable of its own
            info("embedding", (10, 4)),
            info("embedding/Adam", (10, 4)),
        ]
    )
    categories = {v.info.name: v.category for v in detect(tensors).variables}
    assert categories == {
        "dense/kernel": "model",
        "dense/kernel/my_optimizer_7": "optimizer",
        "dense/kernel/ema/shadow": "optimizer",
        "dense/kernel/other": "model",
        "embedding": "model",
        "embedding/Adam": "optimizer",
    }
    trained = {
        v.info.name: v.category
        for v in detect(tensors, trainable=["dense/kernel", "dense/kernel/ema/shadow"]).variables
    }
    assert trained["dense/kernel/ema/shadow"] == "model" and trained["dense/kernel/my_optimizer_7"] == "optimizer"
    # The name rules stand where no structure is given.
    assert categorize("rnn/lstm_cell/kernel/Adam_1", "float32") == "optimizer"
    assert categorize("dense/kernel/my_optimizer_7", "float32") == "model"


# --- verify against TensorFlow -------------------------------------------------------------------------


TF = pytest.mark.skipif(not verify_module.installed(*tensorflow_target.NEEDS), reason="needs tensorflow and tf_keras")


@TF
@pytest.mark.parametrize("path", TF_FILES)
def test_tensorflow_runs_every_file_it_wrote(path):
    with lstm_inspect.load(FIXTURES / path, **({"forget_bias": 0.0} if "no_meta" in path else {})) as ckpt:
        result = verify(ckpt, frameworks=["tensorflow", "tf-cell"])
    assert result.ok, [(layer.name, c) for layer, c in result.failures()]
    for layer in result.layers:
        checks = {c.target: c for c in layer.checks}
        assert checks["tf-cell"].max_abs_diff is not None and checks["tf-cell"].max_abs_diff < 1e-5, checks["tf-cell"]
        assert checks["tensorflow"].max_abs_diff is not None or checks["tensorflow"].note.startswith("refused")


def broken_numpy(**wrong):
    """verify's numpy baseline with one setting applied wrongly: what TensorFlow's own cell catches.
    forget_bias and activation are Weights fields; the clips live in its settings (None: unset)."""

    def wrong_run(weights, x):
        fields = {key: value for key, value in wrong.items() if key in ("forget_bias", "activation")}
        settings = {**weights.settings, **{k: v for k, v in wrong.items() if k not in fields}}
        settings = {k: v for k, v in settings.items() if v is not None}
        return run_weights(dataclasses.replace(weights, settings=settings, **fields), x)

    return wrong_run


@TF
@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        (RELU, {"forget_bias": 1.0}),  # the TF1 default instead of the graph's 3.0
        (RELU, {"activation": "tanh"}),
        (CLIPS, {"cell_clip": None}),
        (FIXTURES / "tf1_block" / "model.ckpt", {"cell_clip": None}),
    ],
)
def test_a_setting_applied_wrongly_fails_tensorflows_checks(monkeypatch, path, wrong):
    monkeypatch.setattr(verify_module, "run_numpy", broken_numpy(**wrong))
    with lstm_inspect.load(path) as ckpt:
        result = verify(ckpt, frameworks=["tensorflow", "tf-cell"], layers=[ckpt.layers[-1].name])
    failed = {check.target for _, check in result.failures()}
    # The numpy LSTM on the exports agrees with its own wrong baseline (except where a forget bias
    # folded into a bias meets the wrong one): TensorFlow's cells do not.
    assert {"tf-cell", "tensorflow"} <= failed


@TF
def test_verify_with_tensorflow_prints_nothing_of_tensorflows_own(tmp_path):
    code = (
        "import lstm_inspect\nfrom lstm_inspect.verify import verify\n"
        f"with lstm_inspect.load({str(RELU)!r}) as ckpt:\n"
        "    result = verify(ckpt, frameworks=['tensorflow', 'tf-cell'])\n"
        "print('OK', result.ok, sorted(c.target for c in result.layers[0].checks if c.max_abs_diff is not None))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.startswith("OK True") and "'tf-cell'" in done.stdout
    assert done.stderr == ""


def test_tensorflows_worker_is_bounded(monkeypatch):
    # A worker that never answers is killed past the deadline; one that dies says why.
    monkeypatch.setattr(tensorflow_target, "ANSWER_WITHIN_S", 0.5)
    worker = tensorflow_target._Worker()
    job = [tensorflow_target.CellRun("LSTMCell", {}, np.zeros((1, 1, 1), np.float32))]
    for script, expected in (
        ("import time; time.sleep(120)", "did not answer within 0.5 s"),
        ("import sys; sys.stderr.write('no tensorflow here\\n')", "stopped before answering: no tensorflow here"),
    ):

        def start(script=script):
            worker.log = tempfile.TemporaryFile()
            pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": worker.log}
            return subprocess.Popen([sys.executable, "-c", script], **pipes)

        monkeypatch.setattr(worker, "_start", start)
        with pytest.raises(tensorflow_target.TensorFlowFailed, match=expected):
            worker.run(job)
        assert worker.process is None and worker.log is None  # stopped (killed), its log closed


def test_a_cell_tensorflow_cannot_build_is_a_note_not_a_failure():
    with pytest.raises(lstm_inspect.LstmInspectError, match="computes its gates with sigmoid only"):
        tensorflow_target._checked_settings("LSTMCell", {"activation": "tanh", "recurrent_activation": "hard_sigmoid"})
    with pytest.raises(lstm_inspect.LstmInspectError, match="cannot build TensorFlow's GRUCell"):
        tensorflow_target._checked_settings("GRUCell", {"activation": "tanh", "recurrent_activation": "sigmoid"})
