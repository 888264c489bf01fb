"""Ctrl-C (issue 9): a real SIGINT to a real `lstm-inspect` process, held (not slowed for a guessed
time) at a point where the command is busy, ends every command with exit 130, one line on stderr,
no traceback and nothing half-written: no output file, no temporary file, no verify scratch folder,
no TensorFlow worker left running. How fast it stops is measured by bench/run.py, not here."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstm_inspect.targets import TARGETS
from tests.conftest import sigint_by_default
from tests.test_values import cell, write_checkpoint

ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI with `owner.method` (a class's method, or a module's function looked up at call
# time) replaced by one that, at its `hold_at`-th call, writes `note` (the process id, or the
# TensorFlow worker's) to the sentinel file and then waits for the signal, a minute at most.
HELD = """
import importlib, os, sys, time
module = importlib.import_module({module!r})
owner = getattr(module, {owner!r}) if {owner!r} else module
real = getattr(owner, {method!r})
calls = [0]
def held(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {hold_at}:
        note = {note}
        with open({sentinel!r} + ".part", "w") as f:
            f.write(str(note))
        os.rename({sentinel!r} + ".part", {sentinel!r})
        for _ in range(6000):
            time.sleep(0.01)
    return real(*args, **kwargs)
setattr(owner, {method!r}, held)
from lstm_inspect.cli import main
sys.argv[0] = "lstm-inspect"
main()
"""

# The second layer's first tensor read: every command that reads values is busy there, with the
# first layer done (printed, written into the temporary file, verified).
READ = dict(module="lstm_inspect.readers.tf_bundle", owner="TFCheckpoint", method="_read_entry", hold_at=3)
# summary reads no values: held as it lists the second layer's first tensor (each layer holds two;
# what they hold is explained once per layer structure, so explain() itself runs once here).
EXPLAIN = dict(module="lstm_inspect.results", owner="", method="TensorLine", hold_at=3)


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    """Two checkpoints of six small LSTM layers, the second with other values."""
    folder = tmp_path_factory.mktemp("interrupt")
    prefixes = []
    for name, offset in (("a", 0), ("b", 100)):
        arrays = {}
        for k in range(6):
            arrays.update(cell(f"rnn/multi_rnn_cell/cell_{k}/lstm_cell", seed=k + offset))
        prefixes.append(write_checkpoint(str(folder / name), arrays))
    return prefixes


def interrupted(tmp_path: Path, args: list[str], point: dict, note: str = "os.getpid()") -> tuple[str, str]:
    """Run the CLI with `args` held at `point`, SIGINT it there, and return (its stderr, the note)."""
    sentinel, scratch = tmp_path / "held", tmp_path / "tmp"
    scratch.mkdir()
    script = HELD.format(**point, note=note, sentinel=str(sentinel))
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
        preexec_fn=sigint_by_default,
    )
    deadline = time.monotonic() + 120  # a safety net only: the command holds until signalled
    while not sentinel.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the command never reached the point it is held at: {process.communicate()[1]}")
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "Interrupted." and "Traceback" not in stderr
    assert list(scratch.iterdir()) == []  # no verify scratch folder, no temporary file of a writer
    return stderr, sentinel.read_text()


def test_summary(tmp_path, layers):
    interrupted(tmp_path, ["summary", layers[0]], EXPLAIN)


@pytest.mark.parametrize("extra", [[], ["--values"], ["--json"], ["--values", "--json"]], ids=" ".join)
def test_split(tmp_path, layers, extra):
    interrupted(tmp_path, ["split", layers[0], *extra], READ)


@pytest.mark.parametrize("layout", list(TARGETS))
def test_export_of_every_layout(tmp_path, layers, layout):
    out = tmp_path / "out"
    out.mkdir()
    interrupted(tmp_path, ["export", layers[0], "--layout", layout, "-o", str(out / "x.npz")], READ)
    assert list(out.iterdir()) == []


def test_export_of_an_onnx_model(tmp_path, layers):
    pytest.importorskip("onnx")
    out = tmp_path / "out"
    out.mkdir()
    layer = "rnn/multi_rnn_cell/cell_0/lstm_cell"
    point = dict(READ, hold_at=2)  # its bias, the kernel read
    interrupted(tmp_path, ["export", layers[0], "--layout", "onnx", "--layer", layer, "-o", str(out / "m.onnx")], point)
    assert list(out.iterdir()) == []


def test_verify_with_numpy_only(tmp_path, layers):
    interrupted(tmp_path, ["verify", layers[0], "--framework", "none"], READ)


def test_diff(tmp_path, layers):
    interrupted(tmp_path, ["diff", layers[0], layers[1]], READ)


def test_plot(tmp_path, layers):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    out.mkdir()
    interrupted(tmp_path, ["plot", layers[0], "-o", str(out / "gates.png")], READ)
    assert list(out.iterdir()) == []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # ended, and not yet reaped by whoever adopted it


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("tensorflow", "tf_keras")), reason="needs TensorFlow")
def test_verify_while_tensorflow_computes_ends_its_worker(tmp_path, layers):
    # Held in this process while it waits for TensorFlow's worker to answer (the worker has been
    # started before the first unit): the worker has ended by the time the program has.
    point = dict(module="lstm_inspect.targets.tensorflow", owner="", method="_read", hold_at=1)
    args = ["verify", layers[0], "--framework", "tensorflow"]
    _, note = interrupted(tmp_path, args, point, note="module._worker().process.pid")
    assert _gone(int(note))


def test_ctrl_c_while_the_cli_imports_is_one_line_and_130():
    # The CLI's imports are a tenth of a second of every command: a Ctrl-C then (here a
    # KeyboardInterrupt raised as lstm_inspect.cli is imported) ends as one later does.
    code = (
        "import sys\n"
        "class Interrupting:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lstm_inspect.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupting())\n"
        "from lstm_inspect.__main__ import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and done.stderr == "Interrupted.\n" and done.stdout == "", done
