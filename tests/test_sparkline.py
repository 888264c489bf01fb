"""split's sparklines of per-unit norms: on a terminal by default, never on a pipe unless asked for;
each character the norm numpy computes from the file's own tensors, in the width of the screen."""

from __future__ import annotations

import math
import os
import pty
import select
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from rich.cells import cell_len

from lstm_inspect.cli import main
from lstm_inspect.sparkline import MAX_WIDTH, SPARKS, sparkline, unit_norms
from lstm_inspect.writers.npz import write_npz

from .conftest import FIXTURES
from .test_diff import tf1_raw_gates

BASIC = FIXTURES / "tf1_basic" / "model.ckpt"
HEADING = "per-unit norm"


def split(*args: object, columns: int = 120):
    return CliRunner().invoke(main, ["split", *map(str, args)], env={"COLUMNS": str(columns)}, catch_exceptions=False)


def spark_lines(output: str) -> dict[str, tuple[str, str]]:
    """gate -> (sparkline, range) from split's output."""
    lines = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) == 3 and words[1][0] in SPARKS:
            lines[words[0]] = (words[1], words[2])
    return lines


def test_sparkline_maps_the_range_onto_eight_levels_and_keeps_the_largest_of_each_bin():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.0, 7.0], 8) == "▁█"  # never wider than the values
    # 16 values in 4 characters: each the largest of its 4.
    values = [0, 0, 0, 7, 0, 0, 0, 0, 3.5, 0, 0, 0, 0, 0, 0, 1]
    assert sparkline(values, 4) == "█▁▅▂"
    assert sparkline([2.0, 2.0, 2.0], 3) == "▄▄▄"
    assert sparkline([1.0, math.nan, 3.0, math.inf], 4) == "▁ █ "


def test_unit_norms_are_numpys_column_norms_of_the_blocks_together():
    rng = np.random.default_rng(3)
    kernel, recurrent = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((7, 7))
    expected = np.linalg.norm(np.vstack([kernel.astype(np.float64), recurrent]), axis=0)
    np.testing.assert_allclose(unit_norms(kernel, recurrent), expected, rtol=1e-12)
    # A view of a fused tensor, and a ConvLSTM's [kh, kw, in, units] kernel.
    fused = rng.standard_normal((5, 28))
    np.testing.assert_allclose(unit_norms(fused[:, 7:14]), np.linalg.norm(fused[:, 7:14], axis=0), rtol=1e-12)
    conv = rng.standard_normal((3, 3, 2, 4))
    np.testing.assert_allclose(unit_norms(conv), np.sqrt((conv**2).sum(axis=(0, 1, 2))), rtol=1e-12)
    with pytest.raises(ValueError):
        unit_norms()


def test_each_gates_sparkline_is_the_norms_of_its_units_in_the_file():
    result = split(BASIC, "--sparkline", columns=120)
    assert result.exit_code == 0, result.stderr
    heading = next(line for line in result.stdout.splitlines() if HEADING in line)
    assert heading == (
        "  per-unit norm (kernel + recurrent), ▁ lowest to █ highest of each gate (64 units, a character per unit):"
    )
    shown = spark_lines(result.stdout)
    stored = tf1_raw_gates(BASIC, "rnn/basic_lstm_cell", 12)
    assert set(shown) == set(stored)
    for gate, blocks in stored.items():
        norms = np.linalg.norm(np.vstack([blocks["kernel"], blocks["recurrent"]]).astype(np.float64), axis=0)
        line, scale = shown[gate]
        assert len(line) == 64
        levels = np.minimum(7, ((norms - norms.min()) / (norms.max() - norms.min()) * 8).astype(int))
        assert line == "".join(SPARKS[level] for level in levels)
        assert scale == f"{norms.min():.4g}..{norms.max():.4g}"
    # The tables above are those of the plain split, unchanged.
    plain = split(BASIC, columns=120).stdout
    assert result.stdout.startswith(plain) and HEADING not in plain


def test_the_sparkline_follows_the_selected_parts():
    kernel_only = split(BASIC, "--sparkline", "--part", "kernel", "--gate", "f")
    assert "per-unit norm (kernel)," in kernel_only.stdout and list(spark_lines(kernel_only.stdout)) == ["forget"]
    norms = np.linalg.norm(tf1_raw_gates(BASIC, "rnn/basic_lstm_cell", 12)["forget"]["kernel"], axis=0)
    assert spark_lines(kernel_only.stdout)["forget"][1] == f"{norms.min():.4g}..{norms.max():.4g}"
    # A bias has no units' weights to take the norm of: no sparkline at all.
    bias_only = split(BASIC, "--sparkline", "--part", "bias")
    assert bias_only.exit_code == 0 and HEADING not in bias_only.stdout


def test_a_4096_unit_layer_fits_the_screen(tmp_path):
    units = 4096
    rng = np.random.default_rng(1)
    arrays = []
    for gate in ("input", "forget", "cell", "output"):
        kernel = rng.uniform(0.5, 1.0, (4, units)).astype(np.float32)
        if gate == "forget":
            kernel[:, 4000] = 50.0  # one unit far larger than the rest shows in its character
        arrays += [(f"wide/{gate}/kernel", kernel), (f"wide/{gate}/recurrent", rng.uniform(0.5, 1.0, (4, units)))]
    arrays.append(("wide/projection", rng.standard_normal((units, 4))))
    write_npz(str(tmp_path / "wide.npz"), arrays)
    for columns in (60, 80, 200):
        result = split(tmp_path / "wide.npz", "--sparkline", columns=columns)
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if HEADING in line)
        assert all(cell_len(line) <= columns for line in lines[start:]), lines[start:]
        shown = spark_lines(result.stdout)
        assert len({len(line) for line, _ in shown.values()}) == 1
        width = len(shown["forget"][0])
        assert width == min(MAX_WIDTH, columns - 4 - 6 - 2 - 2 - max(len(r) for _, r in shown.values()))
        heading = " ".join(line.strip() for line in lines[start : start + 3])
        assert f"(4,096 units, up to {-(-units // width)} units a character, the largest shown)" in heading
        spike = shown["forget"][0].index("█")
        assert spike == 4000 * width // units and shown["forget"][0].count("█") == 1


def test_pipes_get_the_plain_tables_and_scripts_may_force_either(tmp_path):
    # CliRunner's stdout is no terminal, as a pipe: the default is the plain tables.
    plain = split(BASIC)
    assert HEADING not in plain.stdout and plain.stdout == split(BASIC, "--no-sparkline").stdout
    for flags in (["--json"], ["--values"]):
        assert HEADING not in split(BASIC, *flags).stdout
        refused = split(BASIC, "--sparkline", *flags)
        assert refused.exit_code == 2 and "--sparkline goes with the tables" in refused.stderr


def run_on_a_terminal(*args: str) -> str:
    """split's output with its stdout a pseudo-terminal of 100 columns, as a person sees it."""
    leader, follower = pty.openpty()
    env = dict(os.environ, COLUMNS="100")
    command = [sys.executable, "-m", "lstm_inspect", "split", *args]
    process = subprocess.Popen(command, stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal is closed once the process has exited
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    return output.decode().replace("\r\n", "\n")


def test_a_terminal_gets_the_sparklines_unless_told_not_to():
    shown = run_on_a_terminal(str(BASIC))
    assert HEADING in shown and set(spark_lines(shown)) == {"input", "forget", "cell", "output"}
    assert HEADING not in run_on_a_terminal(str(BASIC), "--no-sparkline")
    assert HEADING not in run_on_a_terminal(str(BASIC), "--json")
    piped = subprocess.run(
        [sys.executable, "-m", "lstm_inspect", "split", str(BASIC)], capture_output=True, text=True, check=True
    )
    assert HEADING not in piped.stdout


def test_the_module_imports_no_numpy():
    code = "import sys, lstm_inspect.sparkline; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
