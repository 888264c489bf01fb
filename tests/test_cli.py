"""The command line, driven through CliRunner: golden output at a fixed width, JSON contracts,
and one test per error a user can hit (one line on stderr, non-zero exit, no traceback)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_inspect.cli import main

from .conftest import FIXTURES, no_recurrent_layers

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("LSTM_INSPECT_REGEN") == "1"  # LSTM_INSPECT_REGEN=1 pytest tests/test_cli.py rewrites them
BASIC = str(FIXTURES / "tf1_basic" / "model.ckpt")


def run(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args), catch_exceptions=False)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def golden(name: str, text: str) -> None:
    text = text.replace(str(FIXTURES), "fixtures")
    path = GOLDEN / name
    if REGEN:
        path.write_text(text)
    assert text == path.read_text()


def assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("summary_tf1_basic.out", ["summary", BASIC]),
        ("split_tf1_basic_forget.out", ["split", BASIC, "--gate", "forget"]),
        ("summary_tf1_peephole_proj.out", ["summary", str(FIXTURES / "tf1_peephole_proj" / "model.ckpt")]),
        ("summary_keras2_h5.out", ["summary", str(FIXTURES / "keras2_h5" / "model.h5")]),
    ],
)
def test_golden_output(name, args):
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    golden(name, result.stdout)


def test_summary_into_a_pipe_keeps_rows_whole(monkeypatch):
    # No terminal and no COLUMNS: rich's 80-column default would fold these names into pieces.
    monkeypatch.delenv("COLUMNS")
    out = run("summary", str(FIXTURES / "tf2_object")).stdout
    for name in ("model/layer_with_weights-0", "model/layer_with_weights-1/backward_layer"):
        row = next(line for line in out.splitlines() if f" {name} " in line)
        assert row.rstrip().endswith("│") and "LSTM (Keras)" in row


def test_summary_on_a_narrow_terminal_keeps_layer_names_whole(monkeypatch):
    bidi = str(FIXTURES / "tf1_bidi" / "model.ckpt")
    names = ["bidirectional_rnn/bw/basic_lstm_cell", "bidirectional_rnn/fw/basic_lstm_cell"]
    # The table's natural width: it is shown from there up, and never wider than the screen.
    monkeypatch.setenv("COLUMNS", "200")
    natural = max(len(line) for line in run("summary", bidi).stdout.splitlines() if line.startswith(("┏", "│")))
    monkeypatch.setenv("COLUMNS", str(natural))
    lines = run("summary", bidi).stdout.splitlines()
    assert any(line.startswith(f"│ {names[0]} ") for line in lines)
    # One column narrower, a table would fold the names: one block per layer instead.
    for width in (natural - 1, 80, 40):
        monkeypatch.setenv("COLUMNS", str(width))
        lines = run("summary", bidi).stdout.splitlines()
        assert not any(line.startswith("┏") for line in lines)
        for name in names:
            details = lines[lines.index(name) + 1 : lines.index(name) + 4]
            assert details[0].startswith("  (Basic)LSTMCell (TF), ")
            text = " ".join(line.strip() for line in details)
            assert "gates ijfo, input 12, units 8, forget bias 1, params 672" in text


def test_summary_json_contract_for_the_seed_example():
    result = run("summary", BASIC, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    (layer,) = data["layers"]
    assert layer["name"] == "rnn/basic_lstm_cell"
    assert (layer["input_size"], layer["units"], layer["recurrent_size"]) == (12, 64, 64)
    assert layer["params"] == 19712 and data["total_params"] == 19842
    assert layer["gate_order"] == "ijfo" and layer["forget_bias"] == 1.0


def test_split_json_values_and_filters():
    result = run("split", BASIC, "--gate", "f", "--part", "bias", "--values", "--json")
    assert result.exit_code == 0
    (layer,) = json.loads(result.stdout)["layers"]
    (block,) = layer["blocks"]
    assert (block["gate"], block["part"], block["shape"]) == ("forget", "bias", [64])
    assert block["source"] == "rnn/basic_lstm_cell/bias[128:192]"
    assert len(block["values"]) == 64 and block["min"] == min(block["values"])


def test_export_default_name_in_current_directory(tmp_path):
    result = run("export", BASIC, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "model.ckpt.gates.npz"
    assert str(out) in result.stdout
    data = np.load(out)
    assert data["rnn/basic_lstm_cell/forget/kernel"].shape == (12, 64)
    assert data["rnn/basic_lstm_cell/forget/recurrent"].shape == (64, 64)
    assert data["rnn/basic_lstm_cell/forget_bias"].shape == () and float(data["rnn/basic_lstm_cell/forget_bias"]) == 1.0


def test_export_one_gate_quietly(tmp_path):
    out = tmp_path / "g.npz"
    result = run("export", BASIC, "-o", str(out), "--gate", "forget", "--quiet")
    assert result.exit_code == 0 and result.stdout == ""
    assert sorted(np.load(out).files) == sorted(
        [
            "rnn/basic_lstm_cell/forget/kernel",
            "rnn/basic_lstm_cell/forget/recurrent",
            "rnn/basic_lstm_cell/forget/bias",
            "rnn/basic_lstm_cell/forget_bias",
        ]
    )


def test_forget_bias_override():
    data = json.loads(run("summary", BASIC, "--json", "--forget-bias", "0").stdout)
    assert data["layers"][0]["forget_bias"] == 0.0


# ---- errors a user can hit (tests/test_errors.py has the fault campaign) ---------------------


def test_unknown_layer_lists_valid_ones():
    assert_clean_error(run("split", BASIC, "--layer", "nope"), "nope", "rnn/basic_lstm_cell")


def test_unknown_gate_lists_valid_ones():
    assert_clean_error(run("split", BASIC, "--gate", "x"), "'x'", "forget")


def test_no_lstm_summary_exits_zero_but_split_and_export_fail(tmp_path):
    dense = str(no_recurrent_layers(tmp_path / "in"))
    result = run("summary", dense, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"] == []
    assert "No LSTM or GRU layers found." in run("summary", dense).stdout
    assert_clean_error(run("split", dense), "no LSTM or GRU layer")
    out = tmp_path / "x.npz"
    assert_clean_error(run("export", dense, "-o", str(out)), "no LSTM or GRU layer")
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]


# ---- help ------------------------------------------------------------------------------------


def test_every_command_is_documented_in_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, command in main.commands.items():
        assert f"lstm-inspect {name}" in readme
        help_text = run(name, "--help").stdout
        assert "Examples:" in help_text
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in readme or opt in ("--version",), f"{name} {opt} not in README"


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from lstm_inspect.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'h5py', 'rich', 'tensorflow') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert re.search(r"HEAVY \[\]", out), out


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "lstm_inspect", "--help"], capture_output=True, text=True, check=True)
    assert "summary" in out.stdout and "Usage: lstm-inspect" in out.stdout


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    from lstm_inspect import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with cli._progress_bar(enabled=False) as progress:
        assert progress is None
    with cli._progress_bar(enabled=True) as progress:
        progress(4, 10)  # (elements just written, elements in all)
        progress(6, 10)
    assert "exporting" in sys.stderr.getvalue() and "100%" in sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with cli._progress_bar(enabled=True) as progress:
        assert progress is None


@pytest.mark.parametrize(
    ("path", "format"),
    [
        (BASIC, "(tf-checkpoint)"),
        (str(FIXTURES / "keras2_h5" / "model.h5"), "(keras-h5)"),
        (str(FIXTURES / "keras3" / "model.keras"), "(keras-v3)"),
        (str(FIXTURES / "keras3" / "model.weights.h5"), "(keras-weights-h5)"),
    ],
)
def test_summary_imports_neither_numpy_nor_h5py(path, format):
    # Listing needs names, shapes and attributes only: TF indexes and Keras' HDF5 metadata are
    # parsed in Python (readers/tf_bundle.py, readers/hdf5.py), which saves ~0.2 s of start-up.
    code = (
        "import sys\nfrom lstm_inspect.cli import main\n"
        f"try:\n    main(['summary', {path!r}])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('numpy', 'h5py') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert format in out and "LSTM" in out and "HEAVY []" in out, out


def test_a_pair_name_selects_both_halves():
    model = str(FIXTURES / "keras2_h5" / "model.h5")
    result = run("split", model, "--layer", "bi", "--gate", "f", "--part", "bias", "--json")
    assert result.exit_code == 0, result.stderr
    assert [layer["name"] for layer in json.loads(result.stdout)["layers"]] == ["bi/forward", "bi/backward"]
