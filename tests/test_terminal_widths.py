"""Every command's human output at 60, 80 and 120 columns (golden files, LSTM_INSPECT_REGEN=1
rewrites them), the rules every form keeps (no line wider than the screen, none ending in spaces),
and where the width comes from: COLUMNS, the terminal of stdout or, in a pipe, of stderr; with no
terminal at all, the widest form."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from lstm_inspect import api
from lstm_inspect.render import output_width
from lstm_inspect.results import Check, LayerCheck, VerifyResult

from .conftest import FIXTURES
from .test_cli import run as cli
from .test_cli import run_fresh

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("LSTM_INSPECT_REGEN") == "1"
ROOT = FIXTURES.parent
WIDTHS = (60, 80, 120)
_UNBREAKABLE = re.compile(r" *(from )?\S+(\[[0-9:, ]*\])?")


def run(*args: str):
    # Relative paths from the checkout: where it lies must not change how lines wrap.
    return cli(*args, cwd=ROOT)


def check_lines(text: str, width: int) -> None:
    lines = text.splitlines()
    assert lines, "no output"
    padded = [line for line in lines if line != line.rstrip()]
    assert not padded, padded
    # Only what a break would split goes past the screen, whole: a word wider than it (a long
    # tensor name), or a tensor with the range cut from it.
    too_wide = [line for line in lines if len(line) > width and not _UNBREAKABLE.fullmatch(line)]
    assert not too_wide, too_wide


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text)
    assert text == path.read_text()


COMMANDS = {
    "summary_keras2_h5": ["summary", "fixtures/keras2_h5/model.h5"],
    "summary_tf1_bidi": ["summary", "fixtures/tf1_bidi/model.ckpt"],
    "summary_tf2_object": ["summary", "fixtures/tf2_object/"],
    "summary_tf1_peephole_proj": ["summary", "fixtures/tf1_peephole_proj/model.ckpt"],
    "split_tf1_basic_forget": ["split", "fixtures/tf1_basic/model.ckpt", "--gate", "forget"],
    "split_keras2_h5_pair": ["split", "fixtures/keras2_h5/model.h5", "--layer", "bi", "--gate", "f", "--gate", "o"],
    "split_tf1_peephole_proj": ["split", "fixtures/tf1_peephole_proj/model.ckpt", "--gate", "i"],
    "split_tf2_object_layer": ["split", "fixtures/tf2_object/", "--layer", "model/layer_with_weights-0", "--gate", "c"],
    "diff_keras3_finetune": ["diff", "fixtures/keras3_finetune/before.keras", "fixtures/keras3_finetune/after.keras"],
    "diff_tf1_keras_port": ["diff", "fixtures/tf1_keras_port/model.ckpt", "fixtures/tf1_keras_port/model.h5"],
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_golden_at_each_width(monkeypatch, name, width):
    monkeypatch.setenv("COLUMNS", str(width))
    result = run(*COMMANDS[name])
    assert result.exit_code in (0, 1), result.stderr  # diff exits 1 for files that differ
    check_lines(result.stdout, width)
    golden(f"{name}.{width}.out", result.stdout)


def _verify_result(self, layers=(), seed=0, **options) -> VerifyResult:
    """A verify of every kind of row: ok, refused, not installed, a framework's failure, a
    difference past the tolerance, a layer covered by another, one that computes nothing. The
    frameworks' numbers differ from one version to the next; these do not."""
    checks = [
        Check("numpy:gates", 0.0),
        Check("numpy:pytorch", 0.0),
        Check("numpy:keras", 2.9e-08),
        Check("torch", 1.6e-07),
        Check("onnxruntime", note="not installed: onnxruntime"),
        Check(
            "keras-model",
            error="NotFoundError: Exception encountered when calling layer 'cu_dnnlstm' (type CuDNNLSTM).",
        ),
    ]
    return VerifyResult(
        self.path,
        seed,
        5,
        3,
        [c.target for c in checks],
        [
            LayerCheck("enc", "float32", 1e-4, checks),
            LayerCheck(
                "bidirectional_rnn/fw/basic_lstm_cell",
                "float32",
                2.6e-4,
                [
                    Check("numpy:gates", 0.0),
                    Check("numpy:pytorch", note="refused: torch.nn.LSTM has no peephole connections"),
                    Check("numpy:tensorflow", 3.2e-4),
                ],
            ),
            LayerCheck(
                "rnn/multi_rnn_cell/cell_7/lstm_cell", "float32", 1e-4, covered_by="rnn/multi_rnn_cell/cell_0/lstm_cell"
            ),
            LayerCheck(
                "empty",
                "float32",
                1e-4,
                note="0 units, 12 inputs: the layer computes nothing, so there is nothing to compare",
            ),
        ],
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_golden_at_each_width(monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr(api.Checkpoint, "verify", _verify_result)
    result = run("verify", "fixtures/tf1_basic/model.ckpt")
    assert result.exit_code == 1  # two checks fail
    assert result.stderr.startswith("Error: 2 check(s) exceed the tolerance: enc keras-model NotFoundError")
    check_lines(result.stdout, width)
    golden(f"verify_every_kind_of_row.{width}.out", result.stdout)


def test_the_table_forms_are_taken_where_they_fit(monkeypatch):
    # Wide enough, each command shows its table; at 60 columns, none of them does.
    wide, narrow = {}, {}
    for width, outputs in ((200, wide), (60, narrow)):
        monkeypatch.setenv("COLUMNS", str(width))
        outputs["summary"] = run(*COMMANDS["summary_tf1_bidi"]).stdout
        outputs["split"] = run(*COMMANDS["split_tf1_basic_forget"]).stdout
        outputs["diff"] = run(*COMMANDS["diff_keras3_finetune"]).stdout
    assert "┏" in wide["summary"] and "┏" not in narrow["summary"]
    assert "cut from" in wide["split"] and "cut from" not in narrow["split"]
    assert "units changed most (‖Δ‖)" in wide["diff"] and "units changed most (‖Δ‖)" not in narrow["diff"]
    # Whatever the form, the ranges a user came for are whole.
    for out in (wide["split"], narrow["split"]):
        for source in ("kernel[0:12, 128:192]", "kernel[12:76, 128:192]", "bias[128:192]"):
            assert f"rnn/basic_lstm_cell/{source}" in out


# ---- where the width comes from ---------------------------------------------------------------


class _Stream(io.StringIO):
    def __init__(self, fd: int | None = None) -> None:
        super().__init__()
        self.fd = fd

    def isatty(self) -> bool:
        return self.fd is not None and os.isatty(self.fd)

    def fileno(self) -> int:
        if self.fd is None:
            raise io.UnsupportedOperation("fileno")
        return self.fd


def _terminal(columns: int) -> tuple[int, int]:
    """A pseudo-terminal `columns` wide: (controller, terminal) descriptors."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    return controller, terminal


def test_output_width_is_columns_then_a_terminal_then_none(monkeypatch):
    controller, terminal = _terminal(57)
    try:
        monkeypatch.setenv("COLUMNS", "91")
        monkeypatch.setattr(sys, "stdout", _Stream(terminal))
        assert output_width() == 91
        monkeypatch.delenv("COLUMNS")
        assert output_width() == 57
        # A pipe into `less`: stdout is no terminal, stderr is.
        monkeypatch.setattr(sys, "stdout", _Stream())
        monkeypatch.setattr(sys, "stderr", _Stream(terminal))
        assert output_width() == 57
        monkeypatch.setattr(sys, "stderr", _Stream())
        monkeypatch.setattr(sys, "stdin", _Stream(terminal))
        assert output_width() == 57
        monkeypatch.setattr(sys, "stdin", _Stream())
        assert output_width() is None
        monkeypatch.setenv("COLUMNS", "not a number")
        assert output_width() is None
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_pipe_from_a_terminal_gets_the_terminals_width():
    # `lstm-inspect summary … | cat` on a 60-column terminal: stdout a pipe, stderr the terminal.
    controller, terminal = _terminal(60)
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lstm_inspect", "summary", "fixtures/tf1_bidi/model.ckpt"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    check_lines(result.stdout, 60)
    assert "┏" not in result.stdout  # the table is wider than 60 columns: one block per layer
    assert "\x1b[" not in result.stdout  # and no colour into the pipe


def test_with_no_terminal_every_table_takes_its_widest_form(monkeypatch):
    monkeypatch.delenv("COLUMNS")
    out = run(*COMMANDS["split_tf2_object_layer"]).stdout
    assert "cut from" in out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("kernel"))
    assert "model/layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE[0:12, 32:48]" in row
    assert all(line == line.rstrip() for line in out.splitlines())


def test_on_a_terminal_styled_lines_end_without_spaces():
    # On a terminal rich styles the output (bold titles): the spaces it pads lines with sit before
    # the codes that end a line, and are taken out there too (render._print's styled branch).
    controller, terminal = _terminal(200)
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "NO_COLOR", "TERM")}
    env["TERM"] = "xterm-256color"
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lstm_inspect", "summary", "fixtures/tf1_bidi/model.ckpt"],
            cwd=ROOT,
            env=env,
            stdout=terminal,
            stderr=terminal,
        )
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end closed: the program is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0
    finally:
        os.close(controller)
    out = b"".join(chunks).decode()
    assert "\x1b[" in out and "bidirectional_rnn" in out
    lines = out.replace("\r\n", "\n").split("\n")
    assert not [line for line in lines if re.sub(r"(?:\x1b\[[0-9;]*m)+$", "", line).endswith((" ", "\t"))]


def _many_layer_checkpoint(tmp_path: Path, cells: int = 220, heads: int = 60) -> str:
    # More layers than a boxed table shows (render.MAX_TABLE_ROWS), more variables than are listed
    # one by one (MAX_VARIABLE_ROWS), a bookkeeping tensor, in two top-level scopes.
    import numpy as np

    from .test_values import cell, write_checkpoint

    arrays: dict[str, np.ndarray] = {"global_step": np.array(7, np.float32)}
    for k in range(cells):
        arrays |= cell(f"encoder/cell_{k}/lstm_cell", seed=k)
    for k in range(heads):
        arrays |= {f"heads/head_{k}/dense/kernel": np.ones((4, 2), np.float32), f"dense_{k}/b": np.ones(2, np.float32)}
    return write_checkpoint(str(tmp_path / "model.ckpt"), arrays)


@pytest.mark.parametrize("width", (60, 80, None))
@pytest.mark.parametrize(
    "path",
    ["many", "tf1_bidi/model.ckpt", "keras2_h5/model.h5", "tf2_object/", "keras3/model.keras", "tf1_gru/model.ckpt"],
)
def test_output_without_rich_is_what_rich_prints(monkeypatch, tmp_path, path, width):
    # A summary made of this module's renderables alone is printed to a pipe or a file without
    # rich (render.show); a console given to show() is rich's. Both must give the same bytes.
    from rich.console import Console

    from lstm_inspect import render

    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(width))
    where = _many_layer_checkpoint(tmp_path) if path == "many" else str(FIXTURES / path)
    summary = api.load(where).summary()
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stdout", plain)
    render.show(summary)
    ruled = io.StringIO()
    render.show(summary, console=Console(file=ruled, width=width or render._UNBOUNDED, markup=False, emoji=False))
    assert plain.getvalue() == ruled.getvalue()
    assert plain.getvalue().count("\n") > 3


def test_a_summary_of_many_layers_to_a_pipe_loads_no_rich(tmp_path):
    # A large summary is plain columns and wrapped lines: rich's layout (a tenth of a 20,001-tensor
    # summary's time) is not imported to print them, only its table of character widths. The scope
    # table is plain columns too.
    where = _many_layer_checkpoint(tmp_path)
    out, loaded = run_fresh(["summary", where], ("rich.console", "rich.table", "rich.text", "rich.segment"), True)
    assert loaded == [], (out, loaded)
    lines = out.splitlines()
    at = lines.index("Other model variables: 120, by top-level scope (--json lists each)")
    assert lines[at + 1].split() == ["scope", "tensors", "params"]
    rows = {row[0]: row[1:] for row in (line.split() for line in lines[at + 2 : at + 63])}
    assert len(rows) == 61 and rows["heads"] == ["60", "480"] and rows["dense_59"] == ["1", "2"]
    assert lines[lines.index("LSTM layers") + 1].split() == [
        "layer",
        "cell",
        "gates",
        "input",
        "units",
        "extras",
        "forget",
        "bias",
        "params",
    ]
