"""The command line, driven through CliRunner: golden output at a fixed width, JSON contracts,
and one test per error a user can hit (one line on stderr, non-zero exit, no traceback)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from lstm_inspect.cli import main

from .conftest import FIXTURES, no_recurrent_layers

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("LSTM_INSPECT_REGEN") == "1"  # LSTM_INSPECT_REGEN=1 pytest tests/test_cli.py rewrites them
BASIC = str(FIXTURES / "tf1_basic" / "model.ckpt")
ROOT = FIXTURES.parent
README = ROOT / "README.md"


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


def run_fresh(args: list[str], modules: tuple[str, ...], strict: bool = False) -> tuple[str, list[str]]:
    """main(args) in an interpreter of its own, stdout a pipe: what it printed, and which of
    `modules` it imported. strict: the command must exit 0."""
    ending = "assert not e.code, e.code" if strict else "pass"
    code = (
        "import sys\nfrom lstm_inspect.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as e:\n    {ending}\n"
        f"print('\\nLOADED', [m for m in {modules!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    printed, _, loaded = out.rpartition("\nLOADED ")
    return printed, ast.literal_eval(loaded)


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
        ("summary_tf1_basic.out", ["summary", "fixtures/tf1_basic/model.ckpt"]),
        ("split_tf1_basic_forget.out", ["split", "fixtures/tf1_basic/model.ckpt", "--gate", "forget"]),
        ("summary_tf1_peephole_proj.out", ["summary", "fixtures/tf1_peephole_proj/model.ckpt"]),
        ("summary_keras2_h5.out", ["summary", "fixtures/keras2_h5/model.h5"]),
    ],
)
def test_golden_output(name, args):
    # Paths relative to the checkout: where it lies must not change how lines wrap.
    result = run(*args, cwd=ROOT)
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
            assert details[0].startswith("  BasicLSTMCell (TF), ")  # the class its .meta graph shows
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


@pytest.mark.parametrize("command", ["split", "export", "plot"])
def test_unknown_gate_is_a_usage_error_listing_the_valid_ones(command, tmp_path):
    # click's own message and exit status 2, before the file is opened (issue 14: it was exit 1).
    output = [] if command == "split" else ["-o", str(tmp_path / "x.png")]
    result = run(command, BASIC, "--gate", "forgett", *output)
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Invalid value for '--gate': 'forgett' is not one of 'input', 'forget'"), last
    assert list(tmp_path.iterdir()) == []


def test_gate_names_are_every_alias_in_any_case():
    from lstm_inspect.cli import _gate_names
    from lstm_inspect.schema import CELL_KINDS

    assert set(_gate_names()) == {alias for kind in CELL_KINDS.values() for alias in kind.aliases}
    data = json.loads(run("split", BASIC, "--gate", "J", "--gate", "Forget", "--part", "bias", "--json").stdout)
    assert [block["gate"] for block in data["layers"][0]["blocks"]] == ["forget", "cell"]


def test_a_part_no_layer_holds_is_an_error_naming_what_it_holds():
    result = run("split", BASIC, "--part", "peephole")
    assert_clean_error(
        result, "rnn/basic_lstm_cell: no block matches --part peephole: the layer holds kernel, recurrent, bias"
    )
    assert result.exit_code == 1
    projection = run("split", str(FIXTURES / "tf1_peephole_proj" / "model.ckpt"), "--gate", "f", "--part", "projection")
    assert_clean_error(projection, "no block matches --gate f --part projection", "and the layer's projection")


def test_a_part_some_layers_hold_is_noted_on_the_others():
    from lstm_inspect.api import Checkpoint
    from lstm_inspect.results import split as split_layers

    from .test_slicer import MemoryStore
    from .test_values import cell

    arrays = {**cell("a/lstm_cell"), **cell("b/lstm_cell", units=2)}
    arrays.update({f"b/lstm_cell/w_{g}_diag": np.full(2, 0.5, np.float32) for g in "ifo"})
    with Checkpoint(MemoryStore(arrays)) as ckpt:
        result = split_layers(ckpt, parts=["peephole"])
    first, second = result.layers
    assert first.name == "a/lstm_cell" and first.blocks == []
    assert first.note == "no block matches --part peephole: the layer holds kernel, recurrent, bias of each gate"
    assert second.note is None and [b.gate for b in second.blocks] == ["input", "forget", "output"]
    assert [b.mean for b in second.blocks] == [0.5, 0.5, 0.5]


def test_split_json_gives_stored_positions_and_the_effective_forget_bias():
    tf1 = json.loads(run("split", BASIC, "--json").stdout)["layers"][0]
    assert (tf1["framework"], tf1["gate_order"], tf1["fused_gates"]) == ("tensorflow", "ijfo", True)
    # tf1_basic keeps its .meta beside the checkpoint: the graph says what the cell adds.
    assert (tf1["forget_bias"], tf1["forget_bias_assumed"]) == (1.0, False)
    assert tf1["forget_bias_source"].startswith("graph: ")
    positions = {block["gate"]: block["position"] for block in tf1["blocks"]}
    assert positions == {"input": 1, "cell": 2, "forget": 3, "output": 4}  # i, j, f, o
    with_effective = [(b["gate"], b["part"]) for b in tf1["blocks"] if b["effective"] is not None]
    assert with_effective == [("forget", "bias")]
    (bias,) = [b for b in tf1["blocks"] if b["effective"] is not None]
    effective = bias["effective"]
    assert effective["forget_bias"] == 1.0 and effective["std"] == pytest.approx(bias["std"])
    for stat in ("mean", "min", "max"):
        assert effective[stat] == pytest.approx(bias[stat] + 1.0)
    values = np.array(
        json.loads(run("split", BASIC, "--gate", "f", "--part", "bias", "--values", "--json").stdout)["layers"][0][
            "blocks"
        ][0]["values"]
    )
    assert effective["l2"] == pytest.approx(float(np.linalg.norm(values + 1.0)))
    keras = json.loads(run("split", str(FIXTURES / "keras2_h5" / "model.h5"), "--layer", "enc", "--json").stdout)
    layer = keras["layers"][0]
    assert {b["gate"]: b["position"] for b in layer["blocks"]} == {"input": 1, "forget": 2, "cell": 3, "output": 4}
    assert layer["forget_bias"] == 0.0 and layer["forget_bias_assumed"] is False


def test_split_says_where_each_gate_is_stored_and_what_the_cell_adds():
    out = run("split", BASIC, "--gate", "forget").stdout
    assert "  forget  (3rd stored block, TF order i, j, f, o)\n" in out
    # Read from the graph (tf1_basic keeps its .meta beside the checkpoint), with where it sits.
    assert "forget_bias 1: the cell adds it to the forget gate at run time (graph: rnn/basic_lstm_cell/" in out
    effective = next(line for line in out.splitlines() if line.strip().startswith("effective"))
    assert "bias + forget_bias 1" in effective
    keras = run("split", str(FIXTURES / "keras2_h5" / "model.h5"), "--layer", "enc", "--gate", "c").stdout
    assert "  cell  (3rd stored block, Keras order i, f, c, o)\n" in keras
    assert "forget_bias 0: the cell adds nothing to the forget gate at run time (Keras adds none at run time)" in keras
    assert "effective" not in keras


def test_summary_names_the_pairs_and_the_next_commands(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = run("summary", "fixtures/tf1_bidi/model.ckpt", cwd=ROOT).stdout
    pairs = (
        "Bidirectional pairs (--layer takes a pair's name for both halves): bidirectional_rnn = "
        "bidirectional_rnn/fw/basic_lstm_cell + bidirectional_rnn/bw/basic_lstm_cell"
    )
    assert pairs in out.splitlines()
    assert out.endswith(
        "Next: `lstm-inspect split fixtures/tf1_bidi/model.ckpt --layer bidirectional_rnn --gate forget`, "
        "`lstm-inspect export fixtures/tf1_bidi/model.ckpt --layer bidirectional_rnn`\n"
    )
    # The names it prints are the names --layer takes.
    selected = json.loads(
        run("split", BASIC.replace("tf1_basic", "tf1_bidi"), "--layer", "bidirectional_rnn", "--json").stdout
    )
    assert len(selected["layers"]) == 2


def test_summary_next_commands_fit_on_one_line_where_they_can(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "200")
    out = run("summary", "fixtures/tf1_basic/model.ckpt", cwd=ROOT).stdout
    assert out.splitlines()[-1] == (
        "Next: `lstm-inspect split fixtures/tf1_basic/model.ckpt --gate forget`, "
        "`lstm-inspect export fixtures/tf1_basic/model.ckpt`"
    )
    dense = str(no_recurrent_layers(tmp_path))
    assert "Next" not in run("summary", dense).stdout  # no recurrent layer, nothing to split


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


def _readme_reference() -> dict[str | None, set[str]]:
    """The options of each command in the README's command reference (the first code block under
    "## Commands"), by command name; None for the program's own options."""
    text = README.read_text()
    block = text[text.index("## Commands") :].split("```", 2)[1]
    options: dict[str | None, set[str]] = {}
    command: str | None = None
    for line in block.splitlines():
        if line.startswith("lstm-inspect "):
            first = line.split()[1]
            command = None if first.startswith("-") else first
            options.setdefault(command, set())
        elif not line.startswith(" "):
            continue
        options[command] |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", line))
    return options


def _help_options(command: click.Command) -> set[str]:
    found = set()
    for param in command.params:
        if isinstance(param, click.Option):
            found |= {*param.opts, *param.secondary_opts}
    return found - {"-h", "--help"}


def test_readme_command_reference_is_every_commands_options_exactly():
    reference = _readme_reference()
    assert set(reference) == {None, *main.commands}, "every command, and the program itself, has a reference line"
    assert reference[None] == _help_options(main)
    for name, command in main.commands.items():
        assert reference[name] == _help_options(command), name
        help_text = run(name, "--help").stdout
        assert "Examples:" in help_text
        for option in reference[name]:
            assert re.search(rf"(?<![\w-]){option}\b", help_text), (name, option)


def test_readme_says_what_the_help_says():
    readme = README.read_text()
    from lstm_inspect.cli import MAX_VALUES
    from lstm_inspect.schema import PARTS
    from lstm_inspect.targets import TARGETS

    assert f"default\n{MAX_VALUES:,}" in readme or f"default {MAX_VALUES:,}" in readme
    assert "|".join(PARTS) in readme and "|".join(TARGETS) in readme
    for option in ("--seed", "--atol", "--rtol", "--dpi"):
        shown = re.search(rf"{option} [A-Z]+\s+(.*?)\[default: ([^\]]+)\]", " ".join(_all_help().split()))
        assert shown, option


def test_every_name_the_readme_gives_the_library_exists():
    # `lstm_inspect.numpy_lstm.run_lstm` after `import lstm_inspect` alone, and each
    # `from lstm_inspect.x import y` as it is written (issue 14: the README named a function that
    # was not there).
    readme = README.read_text()
    imports = set(re.findall(r"from (lstm_inspect[\w.]*) import (\w+)", readme))
    attributes = re.sub(r"from lstm_inspect[\w.]* import", "", readme)
    dotted = set(re.findall(r"\blstm_inspect(?:\.[a-z_]+)+\b", attributes))
    assert "lstm_inspect.numpy_lstm.run_lstm" in dotted and ("lstm_inspect.writers.keys", "decode_key") in imports
    code = "import importlib, lstm_inspect\n"
    for name in sorted(dotted):
        code += f"obj = lstm_inspect\nfor part in {name.split('.')[1:]!r}:\n    obj = getattr(obj, part)\n"
    for module, name in sorted(imports):
        code += f"getattr(importlib.import_module({module!r}), {name!r})\n"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def _all_help() -> str:
    return "\n".join(run(name, "--help").stdout for name in main.commands)


_HELPS = (
    "import sys\nfrom lstm_inspect.cli import main\n"
    "for command in ([], *([name] for name in main.commands)):\n"
    "    print('=== ' + ' '.join(command))\n"
    "    try:\n        main([*command, '--help'])\n    except SystemExit:\n        pass\n"
)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_help_wraps_at_the_terminal_width_and_carries_its_own_reference(width):
    # click's formatter reads the terminal's width (COLUMNS here) itself; CliRunner would force 80.
    env = {**os.environ, "COLUMNS": str(width)}
    out = subprocess.run([sys.executable, "-c", _HELPS], capture_output=True, text=True, check=True, env=env).stdout
    helps = dict(part.split("\n", 1) for part in out.split("=== ")[1:])
    assert set(helps) == {"", *main.commands}
    for name, text in helps.items():
        too_wide = [line for line in text.splitlines() if len(line) > width]
        assert not too_wide, (name, too_wide)
        assert "README" not in text, name
    from lstm_inspect.targets import TARGETS

    folded = " ".join(helps["export"].split())
    for target in TARGETS.values():
        assert f"{target.name}: {' '.join(target.summary.split())}" in folded


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from lstm_inspect.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'h5py', 'rich', 'tensorflow', 'subprocess') if m in sys.modules]\n"
        "heavy += [m for m in sys.modules if m.startswith('lstm_inspect.targets.')]\n"
        "heavy += [m for m in ('lstm_inspect.schema', 'dataclasses', 'click.shell_completion') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # The export targets (and what they import: subprocess, tempfile) load when export or verify
    # asks for them, or their help is shown; --layout's choices are the registry's names. The
    # schema loads when --gate or --part is parsed, completed or its command's help shown.
    assert re.search(r"HEAVY \[\]", out), out


def test_help_lists_the_commands_without_making_them_and_as_made():
    """`--help` lists each command from its docstring, without making its options (their click
    objects were most of --help's own work); the lines are those of the made commands."""
    code = (
        "import click; from lstm_inspect.cli import main\n"
        "def listing():\n"
        "    ctx = click.Context(main, info_name='lstm-inspect', terminal_width=80)\n"
        "    formatter = ctx.make_formatter()\n"
        "    main.format_commands(ctx, formatter)\n"
        "    return formatter.getvalue()\n"
        "lazy = listing()\n"
        "made_by_listing = sum(isinstance(e, click.Command) for e in main.commands._entries.values())\n"
        "commands = dict(main.commands)  # every command made\n"
        "print(made_by_listing, len(commands), lazy == listing(), repr(lazy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    made, count, same, listing = out.split(" ", 3)
    assert made == "0" and int(count) >= 6 and same == "True", out
    assert "summary  Every LSTM and GRU layer" in listing and "verify   Run each layer" in listing


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


def test_verify_shows_its_progress_on_a_terminal_and_not_with_quiet(monkeypatch, capsys):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for quiet, shown in (([], True), (["--quiet"], False)):
        monkeypatch.setattr(sys, "stderr", Terminal())
        main(["verify", BASIC, "--framework", "none", *quiet], standalone_mode=False)
        stderr = sys.stderr.getvalue()
        assert ("verifying" in stderr and "100%" in stderr) is shown, stderr
    assert "checks within tolerance." in capsys.readouterr().out


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


# ---- completion ------------------------------------------------------------------------------


def completions(args: list[str], incomplete: str = "") -> list[str]:
    complete = ShellComplete(main, {}, "lstm-inspect", "_LSTM_INSPECT_COMPLETE")
    return [item.value for item in complete.get_completions(args, incomplete)]


def test_completion_of_gates_parts_and_layouts():
    assert completions(["split", BASIC, "--gate"], "f") == ["forget", "f"]
    assert completions(["export", BASIC, "--gate"], "c") == ["cell", "c", "candidate"]
    assert completions(["split", BASIC, "--part"], "re") == ["recurrent", "recurrent_bias"]
    from lstm_inspect.targets import TARGETS

    assert completions(["export", BASIC, "--layout"]) == list(TARGETS)


@pytest.mark.parametrize("command", [["split"], ["export"], ["verify"], ["plot", "-o", "x.png"]])
def test_completion_of_the_layer_names_of_the_file_on_the_command_line(command):
    model = str(FIXTURES / "keras2_h5" / "model.h5")
    assert completions([*command, model, "--layer"]) == ["enc", "bi", "bi/forward", "bi/backward"]
    assert completions([*command, model, "--layer", "enc", "--layer"], "bi/") == ["bi/forward", "bi/backward"]
    # The file may come after the option.
    assert completions([command[0], "--json" if command[0] != "plot" else "-q", model, "--layer"], "e") == ["enc"]


def test_completion_of_layers_offers_nothing_rather_than_failing(tmp_path):
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    assert completions(["split", str(tmp_path / "junk.h5"), "--layer"]) == []
    assert completions(["split", str(tmp_path / "missing"), "--layer"]) == []
    assert completions(["split", "--layer"]) == []
    assert completions(["split", "https://example.org/model.keras", "--layer"]) == []  # never fetched


# ---- verify's framework logs ----------------------------------------------------------------

# verify in a process of its own, with a "framework" that logs the ways TensorFlow, oneDNN and
# torch do: C++ code writing to descriptor 2, a Python warning, Python logging; and one of
# lstm-inspect's own warnings, which must always print.
_NOISY_VERIFY = """
import logging, os, sys, warnings
from lstm_inspect import api
from lstm_inspect.errors import warn
from lstm_inspect.results import VerifyResult

def noisy(self, layers=(), seed=0, **options):
    os.write(2, b"I0000 00:00 port.cc:153] oneDNN custom operations are on\\n")
    warnings.warn("RNN module weights are not part of single contiguous chunk of memory", UserWarning)
    logging.getLogger("tensorflow").warning("tf python logging")
    warn("lstm-inspect's own warning")
    if os.environ.get("CRASH"):
        raise RuntimeError("a bug")
    return VerifyResult(self.path, seed, 5, 3, [], [])

api.Checkpoint.verify = noisy
from lstm_inspect.cli import main
main(sys.argv[1:])
"""
_FRAMEWORK_NOISE = ("oneDNN custom operations", "contiguous chunk", "tf python logging")


def _noisy_verify(*args: str, crash: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"CRASH": "1"} if crash else {})}
    return subprocess.run(
        [sys.executable, "-c", _NOISY_VERIFY, "verify", BASIC, *args], capture_output=True, text=True, env=env
    )


def test_verify_keeps_the_frameworks_logs_off_stderr_unless_verbose():
    quiet = _noisy_verify()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "Warning: lstm-inspect's own warning\n"
    verbose = _noisy_verify("--verbose")
    assert verbose.returncode == 0 and "Warning: lstm-inspect's own warning" in verbose.stderr
    for noise in _FRAMEWORK_NOISE:
        assert noise in verbose.stderr, (noise, verbose.stderr)


def test_verify_shows_the_held_back_log_when_it_fails_with_a_traceback():
    crashed = _noisy_verify(crash=True)
    assert crashed.returncode == 1
    held, traceback = crashed.stderr.split("Traceback")
    assert "The frameworks' log, hidden without --verbose:" in held and "oneDNN custom operations" in held
    assert "RuntimeError: a bug" in traceback


def test_a_real_verify_prints_no_framework_log():
    # TensorFlow 2.21 (Keras 3's backend) logs through absl before its logging is set up, whatever
    # TF_CPP_MIN_LOG_LEVEL says; torch and onnxruntime run too.
    result = subprocess.run(
        [sys.executable, "-m", "lstm_inspect", "verify", BASIC], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "All " in result.stdout and "checks within tolerance." in result.stdout


def test_verify_names_the_half_keras_could_not_run(monkeypatch):
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras-model needs keras installed")
    from lstm_inspect import load
    from lstm_inspect.errors import LstmInspectError
    from lstm_inspect.targets import keras as keras_target
    from lstm_inspect.verify import KERAS_MODEL, verify

    def cannot_run(model, name, pair, direction, x):
        raise LstmInspectError(f"Keras could not run {name}: no GPU")

    monkeypatch.setattr(keras_target, "load_model", lambda path, version=None: object())
    monkeypatch.setattr(keras_target, "run_original", cannot_run)
    with load(FIXTURES / "keras2_h5" / "model.h5") as ckpt:
        result = verify(ckpt, ["bi"], frameworks=(KERAS_MODEL,))
    notes = {layer.name: layer.check(KERAS_MODEL).note for layer in result.layers}
    assert notes == {
        "bi/forward": "Keras could not run bi/forward: no GPU",
        "bi/backward": "Keras could not run bi/backward: no GPU",
    }


def test_json_text_writes_what_json_dumps_writes():
    # render._dumps reuses json's C encoder (one per call is half the cost of a large --json):
    # each member and element must read as json.dumps spells it, escapes and non-finite floats too.
    from lstm_inspect.render import _dumps, json_text

    values = ['a\u00e9\n\x1b\\"', "\ud800", 1, -0.0, 2.5, 1e300, 10**30, float("nan"), float("inf"), -float("inf")]
    values += [None, True, [1, {"k": [None, "x"]}], {"nested": {"a": []}}, {3: "int key"}]
    dumps = _dumps()
    assert [dumps(v) for v in values] == [json.dumps(v) for v in values]
    data = {"path": "p", "layers": [{"a": 1}, {"b": [1, 2]}], "empty": [], "none": None}
    text = json_text(data)
    assert json.loads(text) == data
    assert text.splitlines()[2:4] == ['  "layers": [', '    {"a": 1},']


def test_split_json_writer_spells_flat_members_as_json_dumps_indent_2():
    # render._json_flat writes a member whose items are all scalars or lists of scalars in one
    # piece; what it writes must be json.dumps(..., indent=2), and anything else must fall through.
    from lstm_inspect.render import _json_chunks

    value = {
        "flat": {"s": 'é\n"', "i": 3, "f": -0.5, "t": True, "n": None, "nan": float("nan"), "inf": float("inf")},
        "lists": {"shape": [4, 8], "empty": [], "mixed": [1, 2.5, None, False, "x"]},
        "nested": {"inner": {"a": 1}, "list": [{"b": 2}]},
        "keys": {1: "int key", None: "none key", 2.5: "float key", False: "bool key"},
        "empty": {},
    }
    assert "".join(_json_chunks(value, "")) == json.dumps(value, indent=2)


def test_the_wrote_line_of_many_layers_names_a_few_and_counts_them():
    from lstm_inspect.cli import _layer_list

    assert _layer_list(["a", "b"]) == "a, b"
    names = [f"layer_{i}" for i in range(6000)]
    assert _layer_list(names) == "6,000 layers (layer_0, layer_1, layer_2, …, layer_5999)"


def test_summary_json_streamed_member_by_member_is_its_to_dict(capsys):
    # render.show writes a summary's members (each row made plain as it is written, not all rows
    # at once) and must write exactly json_text(summary.to_dict()).
    import lstm_inspect
    from lstm_inspect.render import json_text, show

    # Layers with a pair, variants (a GRU's reset_after) and convolutions among them.
    names = ["tf1_adam/model.ckpt", "keras3_forms/model.keras", "tf1_gru_bidi/model.ckpt", "keras3_gru/model.keras"]
    paths = [BASIC, *(str(FIXTURES / name) for name in [*names, "keras3_conv/model.keras"])]
    for path in paths:
        with lstm_inspect.load(path) as ckpt:
            summary = ckpt.summary()
            show(summary, as_json=True, stats=lambda: {"requests": 3})
            data = summary.to_dict()
            data["stats"] = {"requests": 3}
            assert capsys.readouterr().out == json_text(data) + "\n"
