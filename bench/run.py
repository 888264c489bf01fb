"""Benchmark lstm-inspect against TensorFlow's own checkpoint tools (GitHub issue #5).

    python bench/run.py [--scale 0.1] [--runs 5] [--work bench/work] [--lstm-inspect PATH] [--remote-only]
                        [--baseline PATH] [--only layers6000]

--baseline PATH times a second lstm-inspect (an install of an older commit) beside the first on
every command both can run, in the same shuffled rounds, and adds a table of both and their ratios.

--lstm-inspect times another install than the one beside this Python, e.g. a plain
`pip install .` in a clean venv, whose start-up carries none of this environment's .pth hooks
(an editable install's finder, certifi's patch); `python -c pass` is then timed with that
install's Python too.

Makes its inputs under --work on first use and reuses them afterwards (--scale shrinks the big
checkpoint and the Keras files; each scale gets its own folder): a small TF1 checkpoint, a ~2 GB
sharded checkpoint of 21 LSTM layers with peepholes, projections, a partitioned variable and Adam
slots (and the same at 1/1000 of its bytes), a Keras .h5 and .keras of a few hundred MB, an
index of 20,000 small variables, and 6,000 small LSTM layers (issue 9: every command, and how long
each takes to end after a Ctrl-C; --only layers6000 runs just those). Making them needs TensorFlow
and Keras 3; that runs in child processes so that this one stays small.

Then runs every command as a whole process, in rounds of one run each (the first untimed, then
--runs timed; each run after an untimed read of its input files, so that they are in the page
cache), and prints a markdown table of the median wall time and peak RSS (GNU time's %M, else
os.wait4), the ratios against the TensorFlow tools and PASS/FAIL against the issue's targets; the
table is also written to bench/results.md.

Then the same summary, one-layer split and export of the big checkpoint over S3 (moto's server,
which tests/moto_ranges.py makes read only a ranged GET's bytes, as S3 does, not the whole object)
and HTTP (tests/servers.py), both on 127.0.0.1 and started here, side by side with the local
file: wall time, and the bytes and requests the server saw (issue #15's targets: summary fetches
less than 2× the index, the split less than the layer's bytes + 1 MiB, the export runs at ≥ 50 %
of the local one's speed). --remote-only runs just those (and prints them, results.md unchanged).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
# The console script `pip install -e .` put next to this Python.
LSTM_INSPECT = [shutil.which("lstm-inspect", path=os.path.dirname(sys.executable)) or "lstm-inspect"]
# The layer that `split`, single-layer `export` and the TensorFlow single-tensor tools read.
SPLIT_LAYER = "layer_10/lstm_cell"
# The wide checkpoint's LSTMCell units and inputs (issue #13's big layers), its first layer, the
# layouts it is exported to, and what verify's framework row is timed with (--lstm-inspect-frameworks).
WIDE_UNITS = 2048
WIDE_LAYER = "rnn/multi_rnn_cell/cell_0/lstm_cell"
LAYOUTS = ("gates", "keras", "tensorflow", "pytorch", "onnx")
LSTM_WITH_FRAMEWORKS = list(LSTM_INSPECT)
# --baseline: another lstm-inspect (e.g. an install of an older commit) timed beside LSTM_INSPECT on
# every command they share, in the same rounds; [] when not asked for. A command the baseline does
# not have (a newer flag) is left out of the comparison. Within BASELINE_SLACK is "no slower, no heavier".
BASELINE: list[str] = []
BASELINE_SLACK = 1.10
CRC32_NOTE = ""
SHARDS = 4
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
MiB = 2**20
TF_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
# A pip install compiles the package's bytecode; an environment that forbids writing it would
# make every lstm-inspect run recompile its own modules, so it gets a bytecode cache of its own.
LSTM_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


# --- inputs (each function runs in a child process: `run.py --make KIND OUT`) ---------------


def make_small(out: Path, scale: float) -> None:
    """A BasicLSTMCell(64) fed 12 inputs and a dense head, as TF1 graph code saves them."""
    import tensorflow as tf

    v1, rng = tf.compat.v1, np.random.default_rng(0)
    shapes = {
        "rnn/basic_lstm_cell/kernel": (76, 256),
        "rnn/basic_lstm_cell/bias": (256,),
        "dense/kernel": (64, 10),
        "dense/bias": (10,),
    }
    with tf.Graph().as_default():
        for name, shape in shapes.items():
            v1.get_variable(name, initializer=rng.standard_normal(shape, np.float32) * 0.1)
        v1.train.get_or_create_global_step()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(out / "model.ckpt"), write_meta_graph=False)


def big_shapes(scale: float) -> tuple[dict[str, tuple[int, ...]], int]:
    """Name -> shape of the 20 plain LSTM layers (every 4th with peepholes, every 4th with a
    projection) and the dense head; and the units of the partitioned layer."""
    units = max(16, round(1024 * math.sqrt(scale) / 8) * 8)
    shapes, input_size = {}, units
    for k in range(20):
        scope = f"layer_{k}/lstm_cell"
        recurrent = units // 2 if k % 4 == 3 else units
        shapes[f"{scope}/kernel"], shapes[f"{scope}/bias"] = (input_size + recurrent, 4 * units), (4 * units,)
        if k % 4 == 2:
            shapes.update({f"{scope}/w_{g}_diag": (units,) for g in "ifo"})
        if recurrent != units:
            shapes[f"{scope}/projection/kernel"] = (units, recurrent)
        input_size = recurrent
    shapes["output/dense/kernel"], shapes["output/dense/bias"] = (input_size, 1000), (1000,)
    return shapes, units * 3 // 2


def make_big(out: Path, scale: float) -> None:
    """~2 GB at scale 1: Saver(sharded=True) over 4 logical CPUs, filled from numpy one variable
    at a time (no training), Adam slots for every plain variable, one partitioned layer."""
    import tensorflow as tf

    v1, rng = tf.compat.v1, np.random.default_rng(1)
    shapes, partitioned_units = big_shapes(scale)
    with tf.Graph().as_default():
        variables = []
        for name, shape in shapes.items():
            layer = name.split("/")[0]  # a whole layer, its slots included, sits on one device
            with tf.device(f"/cpu:{int(layer[6:]) % SHARDS if layer.startswith('layer_') else 0}"):
                for suffix in ("", "/Adam", "/Adam_1"):
                    variables.append(v1.get_variable(name + suffix, shape, initializer=v1.zeros_initializer()))
        with tf.device("/cpu:1"), v1.variable_scope("partitioned/lstm_cell", partitioner=v1.fixed_size_partitioner(4)):
            u = partitioned_units
            variables += list(v1.get_variable("kernel", (2 * u, 4 * u), initializer=v1.zeros_initializer()))
            variables += list(v1.get_variable("bias", (4 * u,), initializer=v1.zeros_initializer()))
        for name in ("beta1_power", "beta2_power"):
            v1.get_variable(name, initializer=0.9)
        v1.train.get_or_create_global_step()
        value = v1.placeholder(tf.float32)
        assigns = [v.assign(value) for v in variables]
        saver = v1.train.Saver(sharded=True, write_version=v1.train.SaverDef.V2)
        with v1.Session(config=v1.ConfigProto(device_count={"CPU": SHARDS})) as sess:
            sess.run(v1.global_variables_initializer())
            for variable, assign in zip(variables, assigns):
                shape = variable.shape.as_list()
                sess.run(assign, {value: rng.standard_normal(shape, np.float32) * 0.05})
            saver.save(sess, str(out / "model.ckpt"), write_meta_graph=False)


def make_keras(out: Path, scale: float) -> None:
    """A Keras 3 model of 8 stacked LSTMs (~260 MB at scale 1), random weights, as .keras and .h5."""
    import keras

    rng, units = np.random.default_rng(2), max(16, round(1024 * math.sqrt(scale) / 8) * 8)
    x = inputs = keras.Input((None, 256))
    for k in range(8):
        x = keras.layers.LSTM(
            units, return_sequences=k < 7, name=f"lstm_{k}", kernel_initializer="zeros", recurrent_initializer="zeros"
        )(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(x))
    for layer in model.layers:
        layer.set_weights([rng.standard_normal(w.shape, np.float32) * 0.05 for w in layer.get_weights()])
    model.save(out / "model.keras")
    model.save(out / "model.h5")


def make_many(out: Path, scale: float, cells: int = 1000, heads: int = 2333, extra: tuple[str, ...] = ()) -> None:
    """20,001 tensors: 1,000 small LSTM cells, 2,333 dense layers, Adam slots for all, bookkeeping;
    written by the SaveV2 op directly (one bundle, no graph of 20,000 variables)."""
    import tensorflow as tf

    rng, shapes = np.random.default_rng(3), {}
    for k in range(cells):
        shapes[f"encoder/cell_{k}/lstm_cell/kernel"], shapes[f"encoder/cell_{k}/lstm_cell/bias"] = (40, 96), (96,)
    for k in range(heads):
        shapes[f"heads/head_{k}/dense/kernel"], shapes[f"heads/head_{k}/dense/bias"] = (8, 4), (4,)
    shapes.update({f"{name}/{slot}": shape for name, shape in list(shapes.items()) for slot in ("Adam", "Adam_1")})
    tensors = [tf.constant(rng.standard_normal(shape, np.float32)) for shape in shapes.values()]
    names = list(shapes) + ["beta1_power", "beta2_power", "global_step", *extra]
    tensors += [tf.constant(0.9), tf.constant(0.999), tf.constant(1000, tf.int64)]
    tensors += [tf.constant(0.001) for _ in extra]
    tf.raw_ops.SaveV2(
        prefix=str(out / "model.ckpt"), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )


def make_huge(out: Path, scale: float) -> None:
    """100,000 tensors: make_many's kinds, five times over (5,000 cells, 11,666 dense layers, slots,
    and a learning_rate beside the bookkeeping)."""
    make_many(out, scale, cells=5000, heads=11666, extra=("learning_rate",))


def make_wide(out: Path, scale: float) -> None:
    """Two LSTMCell(2048) layers on 2048 inputs (issue #13): each kernel [4096, 8192] float32,
    128 MiB, the largest tensor; written as TF1 graph code saves a MultiRNNCell."""
    import tensorflow as tf

    v1, rng = tf.compat.v1, np.random.default_rng(4)
    units = WIDE_UNITS
    with tf.Graph().as_default():
        variables = []
        for k in range(2):
            scope = f"rnn/multi_rnn_cell/cell_{k}/lstm_cell"
            variables.append(
                v1.get_variable(f"{scope}/kernel", (2 * units, 4 * units), initializer=v1.zeros_initializer())
            )
            variables.append(v1.get_variable(f"{scope}/bias", (4 * units,), initializer=v1.zeros_initializer()))
        _save_random(tf, variables, rng, out)


def _save_random(tf: Any, variables: list[Any], rng: np.random.Generator, out: Path) -> None:
    """Give the TF1 graph's `variables` random weights (N(0, 0.02²)) and save them, with a global
    step and no graph, as out/model.ckpt."""
    v1 = tf.compat.v1
    v1.train.get_or_create_global_step()
    value = v1.placeholder(tf.float32)
    assigns = [v.assign(value) for v in variables]
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        for variable, assign in zip(variables, assigns):
            sess.run(assign, {value: rng.standard_normal(variable.shape.as_list(), np.float32) * 0.02})
        v1.train.Saver().save(sess, str(out / "model.ckpt"), write_meta_graph=False)


# plot's rows (issue 16): one BasicLSTMCell of PLOT_UNITS units on PLOT_INPUTS inputs, whose kernel
# [PLOT_INPUTS + PLOT_UNITS, 4 × PLOT_UNITS] float32 (272 MiB) is the largest tensor.
PLOT_UNITS, PLOT_INPUTS = 4096, 256
PLOT_LAYER = "rnn/basic_lstm_cell"


def make_plot4096(out: Path, scale: float) -> None:
    """A TF1 BasicLSTMCell(4096) fed 256 inputs, as TF1 graph code saves it, random weights."""
    import tensorflow as tf

    v1, rng = tf.compat.v1, np.random.default_rng(6)
    shapes = {
        f"{PLOT_LAYER}/kernel": (PLOT_INPUTS + PLOT_UNITS, 4 * PLOT_UNITS),
        f"{PLOT_LAYER}/bias": (4 * PLOT_UNITS,),
    }
    with tf.Graph().as_default():
        variables = [v1.get_variable(name, shape, initializer=v1.zeros_initializer()) for name, shape in shapes.items()]
        _save_random(tf, variables, rng, out)


# A training graph of this many bytes beside a checkpoint: summary reads all of it (issue 11).
BIG_META_BYTES = 10_000_000


def make_graph(out: Path, scale: float) -> None:
    """TF1 checkpoints saved with their .meta graph: small_meta/ a BasicLSTMCell(64) unrolled 5 steps
    (a .meta of some 30 KB); meta10/ an LSTMCell(64) unrolled until its training graph (Adam's)
    reaches BIG_META_BYTES; no_meta/ the same checkpoint without its .meta."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # static_rnn and the TF1 cells are tf_keras' (before the import)
    import tensorflow as tf

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    from tf_keras.src.layers.rnn import legacy_cells

    def save(folder: Path, steps: int, cell: type, meta: bool = True) -> int:
        folder.mkdir()
        with tf.Graph().as_default() as graph:
            inputs = [v1.placeholder(tf.float32, (None, 12)) for _ in range(steps)]
            outputs, _ = v1.nn.static_rnn(cell(64), inputs, dtype=tf.float32)
            loss = tf.reduce_mean(tf.add_n([tf.reduce_sum(o) for o in outputs]))
            v1.train.AdamOptimizer().minimize(loss, global_step=v1.train.get_or_create_global_step())
            with v1.Session() as sess:
                sess.run(v1.global_variables_initializer())
                v1.train.Saver().save(sess, str(folder / "model.ckpt"), write_meta_graph=meta)
            return graph.as_graph_def().ByteSize()

    save(out / "small_meta", 5, legacy_cells.BasicLSTMCell)
    per_step = save(out / "probe", 10, legacy_cells.LSTMCell) / 10
    shutil.rmtree(out / "probe")
    save(out / "meta10", math.ceil(BIG_META_BYTES / per_step), legacy_cells.LSTMCell)
    (out / "no_meta").mkdir()
    for path in (out / "meta10").iterdir():
        if path.suffix != ".meta":
            shutil.copy(path, out / "no_meta" / path.name)


LAYERS6000 = 6000


def make_layers6000(out: Path, scale: float) -> None:
    """LAYERS6000 LSTMCell(2) layers on 3 inputs (issue 9), kernel [5, 8] and bias [8] each, written
    by the SaveV2 op directly, as make_many's: whatever --scale, the count is the point."""
    import tensorflow as tf

    rng, names, tensors = np.random.default_rng(6), [], []
    for k in range(LAYERS6000):
        for leaf, shape in (("kernel", (5, 8)), ("bias", (8,))):
            names.append(f"rnn/multi_rnn_cell/cell_{k}/lstm_cell/{leaf}")
            tensors.append(tf.constant((rng.standard_normal(shape) * 0.5).astype(np.float32)))
    tf.raw_ops.SaveV2(
        prefix=str(out / "model.ckpt"), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )


MAKERS = {
    "small": make_small,
    "big": make_big,
    "keras": make_keras,
    "many": make_many,
    "huge": make_huge,
    "wide": make_wide,
    "graph": make_graph,
    "plot4096": make_plot4096,
    "layers6000": make_layers6000,
}
SCALED = {"big", "keras"}  # --scale shrinks these; the small and the 20,000-tensor inputs never change


def ensure_input(work: Path, kind: str, scale: float) -> Path:
    """The input's folder, made in a child process unless a complete one is already there."""
    out = work / (f"{kind}-scale{scale:g}" if kind in SCALED else kind)
    if not out.exists():
        print(f"making {out} ...", file=sys.stderr, flush=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{kind}.", dir=work))
        try:
            command = [sys.executable, __file__, "--make", kind, str(partial), "--scale", str(scale)]
            subprocess.run(command, check=True, env=TF_ENV)
        except BaseException:
            shutil.rmtree(partial)
            raise
        partial.rename(out)  # only complete inputs get their final name
    return out


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Measure:
    label: str
    source: str
    wall: float  # median seconds
    rss: float  # median peak RSS, MiB
    user: float  # median user CPU seconds
    system: float  # median system CPU seconds
    anon: float  # median peak anonymous RSS (RssAnon), MiB, sampled


@dataclass
class Sample:
    wall: float
    rss: float
    user: float
    system: float
    anon: float


class AnonSampler(threading.Thread):
    """The largest RssAnon (/proc/PID/status: the process's memory that no file backs) of the
    command while it runs, read every 2 ms. Peak RSS (GNU time's %M) also counts the pages of a
    file the command maps, which the kernel can drop at any time and which are shared with the
    page cache: lstm-inspect reads large TF tensors through memory maps. A peak shorter than the
    interval can be missed; a whole array made at once is not (filling 128 MiB takes 30 ms here)."""

    def __init__(self, pid: int, nested: bool) -> None:
        super().__init__(daemon=True)
        self.pid, self.nested, self.peak_kib = pid, nested, 0
        self.done = threading.Event()

    def target(self) -> int | None:
        if not self.nested:
            return self.pid
        try:  # GNU time's one child: the command
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def run(self) -> None:
        pid = None
        while not self.done.wait(0.002):
            pid = pid or self.target()
            if pid is None:
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))


def run_once(argv: list[str], env: dict[str, str], may_fail: bool = False) -> Sample | None:
    """Wall seconds, peak RSS (MiB), user and system CPU seconds and peak anonymous RSS (MiB) of one
    run; None for a failed run when may_fail, else a failure stops the benchmark. The child's own
    ru_maxrss would include this Python process (subprocess's vfork shares its memory until exec),
    so GNU time, a few hundred KiB, starts the command and reports its peak RSS when it is there;
    wait4 on it gives its CPU times, the command's included."""
    with tempfile.NamedTemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        wrapper = [GNU_TIME, "-f", "%M", "-o", rss.name] if GNU_TIME else []
        started = time.perf_counter()
        child = subprocess.Popen(wrapper + argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        sampler = AnonSampler(child.pid, nested=bool(GNU_TIME))
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            if may_fail:
                return None
            err.seek(0)
            sys.exit(f"{' '.join(argv)} exited {child.returncode}:\n{err.read().decode(errors='replace')[-3000:]}")
        peak_kib = int(rss.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return Sample(wall, peak_kib / 1024, usage.ru_utime, usage.ru_stime, sampler.peak_kib / 1024)


VALGRIND = shutil.which("valgrind")
# Most counts repeat to a few hundredths of a percent; one with large numpy reductions moved by
# up to 1.2 % between runs (the baseline's split: 821.1 M, then 831.3 M). Within this is "no more
# work"; a ratio near it needs a second run.
INSTRUCTION_SLACK = 1.005


def instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """The instructions one run executes in user space (valgrind's callgrind, which counts every
    instruction the process runs): the same count whatever the machine's load, where wall and CPU
    time here drift by ±25 %. None when the run fails (an older version may lack a flag)."""
    assert VALGRIND is not None
    # A fixed hash seed: set and dict orders, and so the work, are the same in every run.
    counted = subprocess.run(
        [VALGRIND, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env={**env, "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    found = [line for line in counted.stderr.splitlines() if "Collected :" in line]
    if counted.returncode or not found:
        return None
    return int(found[-1].split()[-1])


class Bench:
    """Commands registered by key, then run in rounds: each round runs every command once, in an
    order shuffled anew each round (seeded: a fixed cyclic order let one command's page-cache
    state move the next one's wall time by 2.5×), so that a machine that speeds up or slows down
    while the benchmark runs (a shared virtual machine does) weighs on every command alike. The
    first round warms the bytecode cache and is not timed; the medians of the other `runs` are
    kept. Before each run the command's input files are read through, untimed: a kernel may page
    out what was not read for a while (this machine's DAMON pageout scheme takes page-cache pages
    idle for 60 s), and a round lasts about that long."""

    def __init__(self, runs: int, scratch: Path, seed: int = 13, baseline: bool = True) -> None:
        """baseline: time --baseline's twin of each command too (the main table's rounds only: the
        rows of their own, plot's and the 6,000 layers', would wait minutes on the old code)."""
        self.runs, self.scratch, self.seed, self.baseline = runs, scratch, seed, baseline
        self.commands: dict[object, tuple[str, str, list[str], dict[str, str], list[Path]]] = {}
        self.results: dict[object, Measure] = {}
        self.may_fail: set[object] = set()  # the baseline's twins: an older version may lack a flag
        # Commands that do work the baseline does not (it cannot be slower at what it skips): their
        # rows against it say why they are not compared, instead of PASS or FAIL.
        self.beyond_baseline: dict[object, str] = {}
        # Commands left out of the instruction counts: what takes seconds (verify's numpy cells on
        # 2048 units) takes most of an hour under callgrind.
        self.uncounted: set[object] = set()

    def __call__(
        self, key: object, label: str, source: str, argv: list[str], env: dict[str, str] = LSTM_ENV, warm: object = None
    ):
        """warm: the input (a file, or a checkpoint prefix) whose files are read before each run."""
        self.commands[key] = (label, source, argv, env, input_files(warm))

    def run(self) -> None:
        self.twin_baseline()
        samples: dict[object, list[Sample]] = {key: [] for key in self.commands}
        order = random.Random(self.seed)
        for round_ in range(self.runs + 1):
            print(f"  round {round_ + 1} of {self.runs + 1}{' (untimed)' if not round_ else ''}", file=sys.stderr)
            keys = [key for key in self.commands if key in samples]
            order.shuffle(keys)
            for key in keys:
                _, _, argv, env, warm = self.commands[key]
                for path in warm:
                    with path.open("rb") as f:
                        while f.read(16 * MiB):
                            pass
                sample = run_once(argv, env, may_fail=key in self.may_fail)
                if sample is None:
                    print(f"  left out, the baseline cannot run it: {' '.join(argv)}", file=sys.stderr)
                    del samples[key]
                elif round_:
                    samples[key].append(sample)
                for leftover in self.scratch.iterdir():  # outputs of export and cp
                    leftover.unlink()
        for key, (label, source, *_) in self.commands.items():
            if key not in samples:
                continue
            medians = [statistics.median(getattr(s, name) for s in samples[key]) for name in Sample.__annotations__]
            self.results[key] = Measure(label, source, *medians)
            x = self.results[key]
            times = f"{x.wall:7.3f} s {x.user:6.2f} u {x.system:6.2f} s"
            print(f"  {times} {x.rss:7.1f} MiB {x.anon:7.1f} anon  {label} [{source}]", file=sys.stderr, flush=True)

    def __getitem__(self, key: object) -> Measure:
        return self.results[key]

    def twin_baseline(self) -> None:
        """With --baseline, each lstm-inspect command once more with the baseline's executable."""
        if not BASELINE or not self.baseline:
            return
        for key, (label, source, argv, env, warm) in list(self.commands.items()):
            if argv[: len(LSTM_INSPECT)] == LSTM_INSPECT:
                twin = ("baseline", key)
                self.commands[twin] = (label, source, [*BASELINE, *argv[len(LSTM_INSPECT) :]], env, warm)
                self.may_fail.add(twin)

    def instruction_rows(self) -> list[str]:
        """Each command that has a baseline twin (twin_baseline), counted once under callgrind, then
        its twin: instructions in millions, their ratio, and whether this one does no more work."""
        self.twin_baseline()
        rows = []
        for key, (label, source, argv, env, _) in self.commands.items():
            twin = self.commands.get(("baseline", key))
            if twin is None or key in self.uncounted:
                continue
            print(f"  counting instructions: {label} [{source}]", file=sys.stderr, flush=True)
            # Each once as it is first, so that Python's bytecode cache holds its modules: a count
            # would otherwise include compiling them (a quarter more instructions for --help).
            for run_argv, run_env in ((argv, env), (twin[2], twin[3])):
                run_once(run_argv, run_env, may_fail=True)
            # The baseline's first: an older version may lack a flag, which it says at once.
            theirs = instructions(twin[2], twin[3])
            ours = instructions(argv, env) if theirs is not None else None
            for leftover in self.scratch.iterdir():  # outputs of export
                leftover.unlink()
            if ours is None or theirs is None:
                print(f"  left out, {'the baseline' if theirs is None else 'it'} cannot run it", file=sys.stderr)
                continue
            ratio = ours / theirs
            ok = "PASS" if ratio <= INSTRUCTION_SLACK else "**FAIL**"
            if key in self.beyond_baseline:
                ok = f"not compared: {self.beyond_baseline[key]}"
            rows.append(f"| `{label}` | {source} | {ours / 1e6:,.1f} | {theirs / 1e6:,.1f} | {ratio:.3f}× | {ok} |")
            print(f"  {ours / 1e6:,.1f} M against {theirs / 1e6:,.1f} M: {ratio:.3f}×", file=sys.stderr, flush=True)
        return rows

    def baseline_rows(self) -> list[str]:
        """Each command both ran: this install's and the baseline's medians, their ratios, and whether
        this one is no slower and no heavier (within BASELINE_SLACK, for the VM's noise)."""
        rows = []
        for key, x in self.results.items():
            old = self.results.get(("baseline", key))
            if old is None or (isinstance(key, tuple) and key[0] == "baseline"):
                continue
            wall, rss = x.wall / old.wall, x.rss / old.rss
            ok = "PASS" if wall <= BASELINE_SLACK and rss <= BASELINE_SLACK else "**FAIL**"
            if key in self.beyond_baseline:
                ok = f"not compared: {self.beyond_baseline[key]}"
            rows.append(
                f"| `{x.label}` | {x.source} | {x.wall:.3f} | {old.wall:.3f} | {wall:.2f}× "
                f"| {x.rss:.0f} | {old.rss:.0f} | {rss:.2f}× | {ok} |"
            )
        return rows


def input_files(path: object) -> list[Path]:
    """A checkpoint prefix's .index and data shards, or the file itself; [] for None."""
    if path is None:
        return []
    path = Path(str(path))
    return [path] if path.is_file() else sorted(path.parent.glob(path.name + ".*"))


def lstm_bytes(prefix: Path) -> tuple[dict[str, int], int]:
    """Per LSTM layer its bytes, and the largest tensor's bytes, from the index alone."""
    import lstm_inspect

    with lstm_inspect.load(prefix) as ckpt:
        layers = {layer.name: sum(t.size * 4 for t in layer.spec.tensors.values()) for layer in ckpt.layers}
        return layers, max(info.size * 4 for info in ckpt.store.tensors().values())


def benchmark(work: Path, scale: float, runs: int, count_only: bool = False) -> tuple[list[str], list[str]]:
    """Makes the inputs, runs every command, and returns the table's rows and, with --baseline,
    those of the table against the baseline; count_only: no timing, only the instruction counts
    of each command against the baseline's (the second list)."""
    inputs = {kind: ensure_input(work, kind, scale) for kind in MAKERS}
    small, big, many, huge, wide = (inputs[kind] / "model.ckpt" for kind in ("small", "big", "many", "huge", "wide"))
    # The big checkpoint's layers and tensors at 1/1000 of its bytes: what a summary shows is the
    # same, so any difference in its cost comes from the size of the file.
    tiny = ensure_input(work, "big", scale / 1000) / "model.ckpt"
    h5, keras_v3 = inputs["keras"] / "model.h5", inputs["keras"] / "model.keras"
    small_meta, meta10, no_meta = (
        inputs["graph"] / kind / "model.ckpt" for kind in ("small_meta", "meta10", "no_meta")
    )
    meta_bytes = (meta10.parent / "model.ckpt.meta").stat().st_size
    shards = sorted(big.parent.glob("model.ckpt.data-*"))
    shard_bytes, largest_shard = sum(p.stat().st_size for p in shards), max(shards, key=lambda p: p.stat().st_size)
    layer_bytes, largest_tensor = lstm_bytes(big)
    all_layer_bytes = sum(layer_bytes.values())
    wide_layers, wide_largest = lstm_bytes(wide)
    (wide_shard,) = wide.parent.glob("model.ckpt.data-*")
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    names = {
        small: "small TF1",
        big: f"{shard_bytes / 1e9:.2f} GB sharded",
        tiny: f"the same layers, {sum(p.stat().st_size for p in tiny.parent.glob('model.ckpt.data-*')) / 1e6:.1f} MB",
        many: "20,001 tensors",
        huge: "100,000 tensors",
        h5: f"{h5.stat().st_size / 1e6:.0f} MB .h5",
        keras_v3: f"{keras_v3.stat().st_size / 1e6:.0f} MB .keras",
        wide: f"2 × LSTMCell({WIDE_UNITS}), {wide_shard.stat().st_size / 1e6:.0f} MB",
        small_meta: f"small TF1 + its {(small_meta.parent / 'model.ckpt.meta').stat().st_size / 1e3:.0f} KB .meta",
        meta10: f"TF1 + its {meta_bytes / 1e6:.1f} MB .meta",
        no_meta: "the same without its .meta",
    }
    tf_inspect = [sys.executable, "-m", "tensorflow.python.tools.inspect_checkpoint", "--file_name"]
    get_tensor = "import sys, tensorflow as tf; tf.train.load_checkpoint(sys.argv[1]).get_tensor(sys.argv[2])"
    kernel = f"{SPLIT_LAYER}/kernel"
    export = [*LSTM_INSPECT, "export", str(big), "-o", str(scratch / "out.npz"), "--quiet"]

    print(f"measuring (median of {runs} rounds after one untimed round):", file=sys.stderr)
    m, on_big, copied = Bench(runs, scratch), names[big], f"{largest_shard.stat().st_size / 1e6:.0f} MB shard"
    m("python", "python -c pass", "-", [floor_python(), "-c", "pass"])
    m("python -S", "python -S -c pass", "-", [floor_python(), "-S", "-c", "pass"])
    m("help", "lstm-inspect --help", "-", [*LSTM_INSPECT, "--help"])
    m.beyond_baseline["help"] = (
        "prints 1,010 bytes: 6 commands and what a PATH may be, URLs included (issues #15, #16); the "
        "baseline's help 745 bytes, 4 commands"
    )
    for path in (small, big, tiny, many, huge, h5, keras_v3, small_meta, meta10, no_meta):
        m(("summary", path), "lstm-inspect summary", names[path], [*LSTM_INSPECT, "summary", str(path)], warm=path)
    for path in (many, huge):
        argv = [*LSTM_INSPECT, "summary", str(path), "--json"]
        m(("json", path), "lstm-inspect summary --json", names[path], argv, warm=path)
    for path in (small, big, many):
        m(("list", path), "inspect_checkpoint (list)", names[path], [*tf_inspect, str(path)], TF_ENV, path)
    split = [*LSTM_INSPECT, "split", str(big), "--layer", SPLIT_LAYER, "--gate", "forget"]
    m("split", f"lstm-inspect split --layer {SPLIT_LAYER} --gate forget", on_big, split, warm=big)
    label = f"inspect_checkpoint --tensor_name {kernel}"
    m("tensor", label, on_big, [*tf_inspect, str(big), "--tensor_name", kernel], TF_ENV, big)
    label = f"load_checkpoint().get_tensor({kernel})"
    m("get", label, on_big, [sys.executable, "-c", get_tensor, str(big), kernel], TF_ENV, big)
    m("export-one", f"lstm-inspect export --layer {SPLIT_LAYER}", on_big, [*export, "--layer", SPLIT_LAYER], warm=big)
    m("export-all", "lstm-inspect export (all layers)", on_big, export, warm=big)
    m("cat", f"cat {len(shards)} data shards > /dev/null", on_big, ["cat", *map(str, shards)], warm=big)
    m("cp", f"cp {largest_shard.name}", copied, ["cp", str(largest_shard), str(scratch)], warm=largest_shard)
    wide_commands(m, wide, names[wide], scratch)
    # Issue 11: the graph beside a checkpoint is read for its settings, side by side with the same
    # checkpoint without it.
    for path in (small_meta, meta10):
        m.beyond_baseline["summary", path] = (
            "reads the .meta beside the checkpoint (issue #11); the baseline ignores it"
        )
    if count_only:
        return [], m.instruction_rows()
    m.run()

    rows = []

    def row(key: object, compared: str = "", target: str = "", ok: bool | None = None) -> None:
        rows.append(table_row(m[key], compared, target, ok))

    def versus(key: object, tf_key: object) -> tuple[float, float, str]:
        speed, memory = m[tf_key].wall / m[key].wall, m[tf_key].rss / m[key].rss
        return speed, memory, f"{speed:.1f}× faster, {memory:.1f}× less memory than `{m[tf_key].label}`"

    row("python", "the floor of any Python command here")
    row("python -S", "the same without site-packages' .pth start-up hooks")
    row("help", f"{m['help'].wall - m['python'].wall:.3f} s over `python -c pass`", "< 0.15 s", m["help"].wall < 0.15)
    for path in (small, big, many):
        speed, memory, compared = versus(("summary", path), ("list", path))
        if path == many:
            target, ok = "≤ 0.35 s (issue #13)", m["summary", path].wall <= 0.35
        else:
            target = "< 0.3 s, ≥ 15× faster, ≤ 1/5 memory"
            ok = m["summary", path].wall < 0.3 and speed >= 15 and memory >= 5
        if path == big:  # only the index is read, whatever the size of the data
            size_ratio = m["summary", big].wall / m["summary", tiny].wall
            compared += f"; {size_ratio:.2f}× the time for the same layers at 1/1000 of the bytes"
            compared += f", {m['summary', big].wall / m['summary', small].wall:.2f}× the small one's"
            target += ", ≤ 1.2× the same layers at 1/1000 of the bytes"
            ok = ok and size_ratio <= 1.2
        row(("summary", path), compared, target, ok)
    row(("summary", huge), "(TensorFlow's tool not run)", "≤ 1.2 s (issue #13)", m["summary", huge].wall <= 1.2)
    for path in (many, huge):
        ratio = m["json", path].wall / m["summary", path].wall
        row(("json", path), f"{ratio:.2f}× the table's time", "≤ 1.2× the table's time", ratio <= 1.2)
    row(("summary", tiny), "the big checkpoint's 21 layers and tensors, 1/1000 of its bytes")
    for path in (h5, keras_v3):
        row(("summary", path), "(no TensorFlow tool)", "< 0.3 s", m["summary", path].wall < 0.3)
    small_ok = m["summary", small_meta].wall < 0.3
    row(("summary", small_meta), "the forget bias and activations read from the graph", "< 0.3 s", small_ok)
    extra = m["summary", meta10].wall - m["summary", no_meta].wall
    row(("summary", no_meta))
    row(("summary", meta10), f"+{extra:.3f} s over the same checkpoint without it", "≤ +0.3 s", extra <= 0.3)
    for path in (small, big, many):
        row(("list", path))
    limit = layer_bytes[SPLIT_LAYER] / MiB + 80
    row("split", versus("split", "get")[2], f"peak < {limit:.0f} MiB (layer + 80)", m["split"].rss < limit)
    row("tensor")
    row("get")
    row("export-one", versus("export-one", "get")[2])
    rate = {
        key: size / 1e6 / m[key].wall
        for key, size in (("export-all", all_layer_bytes), ("cat", shard_bytes), ("cp", largest_shard.stat().st_size))
    }
    limit = largest_tensor / MiB + 150
    compared = f"{rate['export-all']:.0f} MB/s ({all_layer_bytes / 1e6:.0f} MB of LSTM weights read and written)"
    target = f"≥ {rate['cat'] / 2:.0f} MB/s (½ cat), peak < {limit:.0f} MiB (largest tensor + 150)"
    row("export-all", compared, target, rate["export-all"] >= rate["cat"] / 2 and m["export-all"].rss < limit)
    row("cat", f"{rate['cat']:.0f} MB/s (reads only, from the page cache)")
    row("cp", f"{rate['cp']:.0f} MB/s (read and write: what a copy costs here)")
    wide_rows(m, row, sum(wide_layers.values()), wide_largest)
    rows += plot_rows(work, runs)
    return rows, m.baseline_rows()


def table_row(x: Measure, compared: str = "", target: str = "", ok: bool | None = None) -> str:
    """One row of the main table."""
    result = "" if ok is None else "PASS" if ok else "**FAIL**"
    return (
        f"| `{x.label}` | {x.source} | {x.wall:.3f} | {x.user:.2f} | {x.system:.2f} | {x.rss:.0f} | {x.anon:.0f} "
        f"| {compared} | {target} | {result} |"
    )


def wide_commands(m: Bench, wide: Path, on_wide: str, scratch: Path) -> None:
    """Issue #13's commands on the two big layers: every layout, the .onnx model of one layer, the
    gates export with zlib's CRC-32 (in the install of --lstm-inspect-frameworks, without isal),
    cp of the same bytes, verify with numpy alone and with torch and onnxruntime."""
    (wide_shard,) = wide.parent.glob("model.ckpt.data-*")
    wide_export = [*LSTM_INSPECT, "export", str(wide), "-o", str(scratch / "out.npz"), "--quiet"]
    for layout in LAYOUTS:
        label = f"lstm-inspect export --layout {layout}"
        m(("wide", layout), label, on_wide, [*wide_export, "--layout", layout], warm=wide)
    # The .onnx model needs the onnx package: the install with the frameworks has it.
    model = [*LSTM_WITH_FRAMEWORKS, "export", str(wide), "--layout", "onnx", "--layer", WIDE_LAYER]
    model += ["-o", str(scratch / "m.onnx"), "--quiet"]
    m("wide-model", f"lstm-inspect export --layout onnx --layer {WIDE_LAYER} -o X.onnx", on_wide, model, warm=wide)
    if LSTM_WITH_FRAMEWORKS != LSTM_INSPECT:
        zlib_export = [*LSTM_WITH_FRAMEWORKS, *wide_export[1:]]
        m("wide-zlib", "lstm-inspect export, zlib's CRC-32 (no isal)", on_wide, zlib_export, warm=wide)
    m("wide-cp", f"cp {wide_shard.name}", on_wide, ["cp", str(wide_shard), str(scratch)], warm=wide)
    verify = [*LSTM_INSPECT, "verify", str(wide), "--quiet", "--framework", "none"]
    m("verify-numpy", "lstm-inspect verify --framework none", on_wide, verify, warm=wide)
    m.uncounted.add("verify-numpy")
    frameworks = ["--framework", "torch", "--framework", "onnxruntime"]
    verify = [*LSTM_WITH_FRAMEWORKS, "verify", str(wide), "--quiet", *frameworks]
    m("verify-frameworks", "lstm-inspect verify --framework torch --framework onnxruntime", on_wide, verify, warm=wide)


def wide_rows(m: Bench, row: Callable[..., None], layer_bytes: int, largest: int) -> None:
    """Issue #13's targets on the two big layers: every layout's peak anonymous memory and time
    against the gates export, the gates export against cp of the same bytes, verify's time and
    memory with numpy alone; the rows are added through `row`."""
    gates, cp = m["wide", "gates"], m["wide-cp"]
    limit = largest / MiB + 150
    for layout in LAYOUTS:
        x = m["wide", layout]
        compared = f"{layer_bytes / 1e6 / x.wall:.0f} MB/s; {x.wall / gates.wall:.2f}× the gates export"
        target = f"anon peak ≤ {limit:.0f} MiB (largest tensor + 150)"
        ok = x.anon <= limit
        if layout == "gates":
            floor = 3 * cp.wall + 0.3
            compared = f"{layer_bytes / 1e6 / x.wall:.0f} MB/s; {x.wall / cp.wall:.2f}× cp of the same bytes"
            target += f", ≤ {floor:.2f} s (3× cp + 0.3 s)"
            ok = ok and x.wall <= floor
        else:
            target += ", ≤ 2× the gates export"
            ok = ok and x.wall <= 2 * gates.wall
        row(("wide", layout), compared, target, ok)
    x = m["wide-model"]
    row(
        "wide-model",
        f"one layer; {x.wall / gates.wall:.2f}× the gates export of both",
        f"anon peak ≤ {limit:.0f} MiB",
        x.anon <= limit,
    )
    if "wide-zlib" in m.results:
        row("wide-zlib", f"{m['wide-zlib'].wall / gates.wall:.2f}× the export with the fastest CRC-32 ({CRC32_NOTE})")
    row("wide-cp", f"{layer_bytes / 1e6 / cp.wall:.0f} MB/s (read and write)")
    x, limit = m["verify-numpy"], 2 * largest / MiB + 400
    target = f"≤ 60 s, peak ≤ {limit:.0f} MiB (2× largest tensor + 400)"
    row("verify-numpy", "numpy's checks only", target, x.wall <= 60 and x.rss <= limit)
    row("verify-frameworks", "numpy's, torch.nn.LSTM's and onnxruntime's checks")


# plot of the 4096-unit layer: "seconds", and memory bounded by the mapped kernel (the largest
# tensor, whose pages count in peak RSS) plus PLOT_MEMORY MiB: Python, numpy and matplotlib imported
# (46 MiB anonymous, 23 MiB of mapped libraries), the figure and its Agg canvas (1020 × 1285 px),
# and one piece of one block at a time beside them (plot.py never copies a block whole); the
# anonymous peak, the memory no file backs, within PLOT_MEMORY alone.
PLOT_SECONDS, PLOT_MEMORY = 10.0, 100


def plot_rows(work: Path, runs: int) -> list[str]:
    """plot of the 4096-unit layer to PNG and to SVG, in rounds of their own, with the install of
    --lstm-inspect or of --lstm-inspect-frameworks that has matplotlib (the plot extra)."""
    prefix = ensure_input(work, "plot4096", 1.0) / "model.ckpt"
    install = None
    for candidate in (LSTM_INSPECT, LSTM_WITH_FRAMEWORKS):
        python = os.path.join(os.path.dirname(candidate[0]), "python")
        python = python if os.access(python, os.X_OK) else sys.executable
        if subprocess.run([python, "-c", "import matplotlib"], env=LSTM_ENV, capture_output=True).returncode == 0:
            install = candidate
            break
    if install is None:
        print(
            "  plot rows left out: no timed install has matplotlib (pip install 'lstm-inspect[plot]')", file=sys.stderr
        )
        return []
    layers, largest = lstm_bytes(prefix)
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    source = f"BasicLSTMCell({PLOT_UNITS}), {PLOT_INPUTS} inputs, kernel {largest / MiB:.0f} MiB"
    print(f"measuring plot (median of {runs} rounds after one untimed round):", file=sys.stderr)
    m = Bench(runs, scratch, baseline=False)
    for kind in ("png", "svg"):
        argv = [*install, "plot", str(prefix), "-o", str(scratch / f"gates.{kind}"), "--quiet"]
        m(("plot", kind), f"lstm-inspect plot -o X.{kind}", source, argv, warm=prefix)
    # diff streams a layer of each file at a time (issue #16): the same file against itself.
    m("diff", "lstm-inspect diff X X", source, [*LSTM_INSPECT, "diff", str(prefix), str(prefix)], warm=prefix)
    m.run()
    rows = []
    limit = largest / MiB + PLOT_MEMORY
    for kind in ("png", "svg"):
        x = m["plot", kind]
        target = (
            f"≤ {PLOT_SECONDS:g} s, peak RSS ≤ {limit:.0f} MiB (largest tensor + {PLOT_MEMORY}), anon ≤ {PLOT_MEMORY}"
        )
        ok = x.wall <= PLOT_SECONDS and x.rss <= limit and x.anon <= PLOT_MEMORY
        rows.append(table_row(x, "4 gates, all panels, downsampled for display", target, ok))
    layer = max(layers.values()) / MiB
    limit = 2 * layer + PLOT_MEMORY
    x = m["diff"]
    target = f"anon ≤ {limit:.0f} MiB (the layer of each file, {layer:.0f} MiB, + {PLOT_MEMORY})"
    rows.append(table_row(x, "identical: every gate block of both read and compared", target, x.anon <= limit))
    return rows


# Run by the timed install's Python: the CRC-32 the .npz writer chose, and its speed against zlib's.
CRC32_SPEEDS = """
import time, zipfile, zlib
import numpy as np
from lstm_inspect.writers.npz import use_fastest_crc32
chosen = use_fastest_crc32()
piece = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32)  # 1 MiB, as the writer's
def rate(crc32):
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(256):
            crc32(piece, 0)
        best = min(best, time.perf_counter() - started)
    return 256 * piece.nbytes / best / 1e9
print(chosen, rate(zipfile.crc32), rate(zlib.crc32))
"""


def crc32_note(lstm_inspect: list[str]) -> str:
    """Which CRC-32 the timed install's .npz writer uses, and how fast, beside zlib's."""
    python = os.path.join(os.path.dirname(lstm_inspect[0]), "python")
    python = python if os.access(python, os.X_OK) else sys.executable
    out = subprocess.run([python, "-c", CRC32_SPEEDS], capture_output=True, text=True, env=LSTM_ENV, check=True)
    chosen, speed, zlib_speed = out.stdout.split()
    return f"{chosen}, {float(speed):.1f} GB/s on 1 MiB pieces, against zlib's {float(zlib_speed):.1f} GB/s"


S3_BUCKET = "bench"
EXPORT = "export (all layers)"


def remote_rows(work: Path, scale: float, runs: int) -> list[str]:
    """Summary, split of SPLIT_LAYER and export of the big checkpoint from the local disk, then
    over the S3 and HTTP servers, in rounds as Bench runs them; the servers count the bytes. Then
    each server's own floor for the export: the GETs lstm-inspect made, replayed by a plain client
    (boto3, http.client) as many at a time, and one GET per data shard of the span holding all its
    LSTM tensors, which no client can beat."""
    sys.path.insert(0, str(BENCH.parent))
    from tests.servers import HTTPFileServer, S3Server

    big = ensure_input(work, "big", scale) / "model.ckpt"
    index_size = Path(f"{big}.index").stat().st_size
    layer_bytes, _ = lstm_bytes(big)
    all_layer_bytes = sum(layer_bytes.values())
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    with S3Server() as s3, HTTPFileServer(big.parent.parent) as http:
        env = dict(
            LSTM_ENV,
            AWS_ENDPOINT_URL=s3.url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
        )
        import boto3

        client = boto3.client(
            "s3", endpoint_url=s3.url, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
        )
        client.create_bucket(Bucket=S3_BUCKET)
        for path in sorted(big.parent.glob("model.ckpt.*")):
            print(f"uploading {path.name} to the S3 server ...", file=sys.stderr, flush=True)
            client.upload_file(str(path), S3_BUCKET, f"{big.parent.name}/{path.name}")
        sources = {
            "local disk": (str(big), None),
            "S3 (moto, 127.0.0.1)": (f"s3://{S3_BUCKET}/{big.parent.name}/model.ckpt", s3.log),
            "HTTP (127.0.0.1)": (f"{http.url}/{big.parent.name}/model.ckpt", http.log),
        }
        commands = {
            "summary": lambda x: ["summary", x],
            f"split --layer {SPLIT_LAYER} --gate forget": lambda x: ["split", x, "--layer", SPLIT_LAYER, "--gate", "f"],
            EXPORT: lambda x: ["export", x, "-o", str(scratch / "out.npz"), "--quiet"],
        }
        samples: dict[tuple[str, str], list[Sample]] = {}
        fetched: dict[tuple[str, str], tuple[int, int]] = {}
        export_gets: dict[str, list[tuple[str, str]]] = {}  # source -> (object path, Range) of an export
        print(f"measuring remote reads (median of {runs} rounds after one untimed round):", file=sys.stderr)
        for round_ in range(runs + 1):
            for command, argv in commands.items():
                for source, (path, log) in sources.items():
                    for f in input_files(big):  # the servers read the same files from the page cache
                        with f.open("rb") as stream:
                            while stream.read(16 * MiB):
                                pass
                    if log is not None:
                        log.clear()
                    sample = run_once([*LSTM_INSPECT, *argv(path)], env)
                    assert sample is not None  # run_once stops the benchmark on a failed run
                    if round_:
                        samples.setdefault((command, source), []).append(sample)
                    if log is not None:  # object reads only: s3fs's listings of the bucket are lookups
                        gets = [r for r in log.of(method="GET") if r.path != f"/{S3_BUCKET}"]
                        fetched[command, source] = (sum(r.bytes for r in gets), len(log.requests))
                        if command == EXPORT:
                            export_gets[source] = [(r.path, r.range or "") for r in gets]
                    for leftover in scratch.iterdir():
                        leftover.unlink()
        floors = server_floors(export_gets, s3.url, http.url, runs)
    rows = []
    for command in commands:
        local_wall = statistics.median(s.wall for s in samples[command, "local disk"])
        local_anon = statistics.median(s.anon for s in samples[command, "local disk"])
        for source in sources:
            measured = samples[command, source]
            wall, rss, anon = (statistics.median(getattr(s, k) for s in measured) for k in ("wall", "rss", "anon"))
            compared, target, result = "", "", ""
            if source != "local disk":
                nbytes, requests = fetched[command, source]
                compared = f"{nbytes:,} bytes in {requests} requests; {wall / local_wall:.2f}× the local time"
                if command == "summary":
                    target = f"< {2 * index_size:,} bytes (2× the {index_size:,}-byte index)"
                    ok = nbytes < 2 * index_size
                elif command.startswith("split"):
                    limit = layer_bytes[SPLIT_LAYER] + MiB
                    target, ok = f"< {limit:,} bytes (the layer's {layer_bytes[SPLIT_LAYER]:,} + 1 MiB)", nbytes < limit
                else:
                    speed = local_wall / wall
                    compared += (
                        f" ({all_layer_bytes / 1e6 / wall:.0f} MB/s of LSTM weights, {100 * speed:.0f} % of the local "
                        f"speed); peak anon {anon - local_anon:+.0f} MiB against the local export's"
                    )
                    target, ok = "≥ 50 % of the local export's speed", speed >= 0.5
                result = "PASS" if ok else "**FAIL**"
            elif command == EXPORT:
                compared = f"{all_layer_bytes / 1e6 / wall:.0f} MB/s of LSTM weights"
            label = f"lstm-inspect {command}"
            rows.append(
                f"| `{label}` | {source} | {wall:.3f} | {rss:.0f} / {anon:.0f} | {compared} | {target} | {result} |"
            )
    local_wall = statistics.median(s.wall for s in samples[EXPORT, "local disk"])
    for (what, source), (wall, requests, nbytes) in floors.items():
        rows.append(
            f"| {what} | {source} | {wall:.3f} | | {nbytes:,} bytes in {requests} GETs; the local export's time "
            f"÷ this: {100 * local_wall / wall:.0f} % | the most any client reaches | |"
        )
    return rows


def server_floors(
    export_gets: dict[str, list[tuple[str, str]]], s3_url: str, http_url: str, runs: int
) -> dict[tuple[str, str], tuple[float, int, int]]:
    """(what, source) -> (median wall seconds, GETs, bytes) of the servers answering, to a plain
    client in this process, the GETs an export made (8 at a time, as lstm-inspect asks them),
    and one GET per data shard from its first LSTM byte to its last."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    s3_client = boto3.client(
        "s3", endpoint_url=s3_url, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    host, port = http_url.removeprefix("http://").split(":")
    local = threading.local()

    def get(source: str, path: str, byte_range: str) -> int:
        if source.startswith("S3"):
            bucket, key = path.lstrip("/").split("/", 1)
            body = s3_client.get_object(Bucket=bucket, Key=key, Range=byte_range)["Body"]
            n = 0
            while chunk := body.read(MiB):
                n += len(chunk)
            return n
        if getattr(local, "connection", None) is None:
            local.connection = http.client.HTTPConnection(host, int(port))
        local.connection.request("GET", path, headers={"Range": byte_range})
        answer = local.connection.getresponse()
        n = 0
        while chunk := answer.read(MiB):
            n += len(chunk)
        return n

    floors = {}
    for source, gets in export_gets.items():
        spans: dict[str, tuple[int, int]] = {}  # shard -> [first, last] byte the export fetched of it
        for path, byte_range in gets:
            first, last = (int(n) for n in byte_range.removeprefix("bytes=").split("-"))
            low, high = spans.get(path, (first, last))
            spans[path] = (min(low, first), max(high, last))
        shards = [(path, f"bytes={first}-{last}") for path, (first, last) in spans.items()]
        for what, requests in (("the export's GETs, replayed", gets), ("one GET per data shard", shards)):
            times, nbytes = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    nbytes = sum(pool.map(get, [source] * len(requests), *zip(*requests)))
                times.append(time.perf_counter() - started)
            floors[what, source] = (statistics.median(times), len(requests), nbytes)
    return floors


# Issue 9: every command on LAYERS6000 small layers within this; Ctrl-C ends any within INTERRUPTED_S.
LAYERS6000_S = 10.0
INTERRUPTED_S = 1.0


def interrupt_latency(argv: list[str], env: dict[str, str], after: float) -> float | None:
    """Seconds from a SIGINT, sent `after` seconds into a run of `argv`, to its exit (None: it had
    ended before; -1.0: it exited otherwise than with 130, which is printed)."""
    import signal

    # SIGINT as a terminal gives it: a benchmark started in the background (`nohup … &`) has it
    # ignored, which its children would inherit, and Python leaves an ignored SIGINT ignored.
    child = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(after)
    if child.poll() is not None:
        return None
    sent = time.perf_counter()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate()
    latency = time.perf_counter() - sent
    if child.returncode != 130:  # reported in its row as a failure; the benchmark goes on
        print(f"  {' '.join(argv)} exited {child.returncode} on SIGINT: {err.decode(errors='replace')[-300:]}")
        return -1.0
    return latency


def layers6000_rows(work: Path, runs: int) -> list[str]:
    """Issue 9's targets on LAYERS6000 small layers: each command's wall time (≤ LAYERS6000_S), then
    how long each takes to end after a SIGINT sent a third of the way through its median run (≤ INTERRUPTED_S);
    verify once more 1 s in, while TensorFlow's worker imports."""
    path = ensure_input(work, "layers6000", 1.0) / "model.ckpt"
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    source = f"{LAYERS6000:,} LSTMCell(2) layers"
    commands = {
        "summary": ["summary", str(path)],
        "split": ["split", str(path)],
        "split --json": ["split", str(path), "--json"],
        "split --values": ["split", str(path), "--values"],
        **{
            f"export --layout {layout}": ["export", str(path), "--layout", layout, "-o", str(scratch / "out.npz")]
            for layout in LAYOUTS
        },
        "verify (every framework installed)": ["verify", str(path), "--quiet"],
        "diff (the file against itself)": ["diff", str(path), str(path)],
    }
    print(f"measuring {source} (median of {runs} rounds after one untimed round):", file=sys.stderr)
    m = Bench(runs, scratch, baseline=False)
    for label, argv in commands.items():
        executable = LSTM_WITH_FRAMEWORKS if label.startswith("verify") else LSTM_INSPECT
        m(label, f"lstm-inspect {label}", source, [*executable, *argv], warm=path)
    m.run()
    rows = []
    for label in commands:
        x = m[label]
        result = "PASS" if x.wall <= LAYERS6000_S else "**FAIL**"
        rows.append(
            f"| `{x.label}` | {source} | {x.wall:.3f} | {x.user:.2f} | {x.system:.2f} | {x.rss:.0f} | {x.anon:.0f} "
            f"| | ≤ {LAYERS6000_S:g} s (issue 9) | {result} |"
        )
    # A third of the way through its median run: surely mid-run, however the machine's load moves
    # one run's time (a signal in a process's last milliseconds, as Python finalizes, kills it).
    moments = {label: m[label].wall / 3 for label in commands}
    moments["verify, 1 s in"] = 1.0
    commands["verify, 1 s in"] = commands["verify (every framework installed)"]
    print("measuring Ctrl-C: a SIGINT a third of the way through each command", file=sys.stderr)
    for label, after in moments.items():
        executable = LSTM_WITH_FRAMEWORKS if label.startswith("verify") else LSTM_INSPECT
        latencies, failed = [], 0
        for _ in range(runs):
            latency = interrupt_latency([*executable, *commands[label]], LSTM_ENV, after)
            for leftover in scratch.iterdir():
                leftover.unlink()
            if latency == -1.0:
                failed += 1
            elif latency is not None:
                latencies.append(latency)
        if not latencies and failed:
            rows.append(
                f"| `lstm-inspect {label}`: Ctrl-C | {source} | | | | | | {failed} exits other than 130 | | **FAIL** |"
            )
            continue
        if not latencies:
            rows.append(f"| `lstm-inspect {label}`: Ctrl-C | {source} | | | | | | ended within {after:.2f} s | | |")
            continue
        worst, median = max(latencies), statistics.median(latencies)
        result = "PASS" if worst <= INTERRUPTED_S and not failed else "**FAIL**"
        print(f"  {median:7.3f} s median, {worst:.3f} s worst: Ctrl-C of {label}", file=sys.stderr)
        rows.append(
            f"| `lstm-inspect {label}`: Ctrl-C latency | {source} | {median:.3f} | | | | "
            f"| SIGINT {after:.2f} s in; worst of {len(latencies)}: {worst:.3f} s; exit 130"
            f"{f' ({failed} other exits)' if failed else ''} "
            f"| ≤ {INTERRUPTED_S:g} s from SIGINT to exit (issue 9) | {result} |"
        )
    return rows


def _valgrind_version() -> str:
    assert VALGRIND is not None
    version = subprocess.run([VALGRIND, "--version"], capture_output=True, text=True).stdout
    return version.strip().removeprefix("valgrind-")


def floor_python() -> str:
    """The Python that runs the timed lstm-inspect, for the start-up floor."""
    beside = os.path.join(os.path.dirname(LSTM_INSPECT[0]), "python")
    return beside if os.access(beside, os.X_OK) else sys.executable


def report(
    work: Path, scale: float, runs: int, remote_only: bool = False, remote: bool = True, only: str | None = None
) -> str:
    load_before = os.getloadavg()[0]
    global CRC32_NOTE
    CRC32_NOTE = crc32_note(LSTM_INSPECT)
    if only == "layers6000":
        rows, baseline_rows, remote_only, remote = layers6000_rows(work, runs), [], False, False
    elif only == "instructions":
        rows, baseline_rows = benchmark(work, scale, runs, count_only=True)
        remote_only, remote = False, False
    else:
        rows, baseline_rows = ([], []) if remote_only else benchmark(work, scale, runs)
        rows += [] if remote_only else layers6000_rows(work, runs)
    remote_table = remote_rows(work, scale, runs) if remote or remote_only else []
    revision = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=BENCH)
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    setup = (
        f"`python bench/run.py --scale {scale:g} --runs {runs}` at {time.strftime('%Y-%m-%d %H:%M')}, commit "
        f"{revision.stdout.strip()}; Python {platform.python_version()}, {os.cpu_count()} CPUs, {memory:.0f} GiB "
        f"RAM; 1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after. "
        f"lstm-inspect timed: `{LSTM_INSPECT[0]}` (verify with frameworks: `{LSTM_WITH_FRAMEWORKS[0]}`); "
        f"its zip CRC-32: {CRC32_NOTE}."
    )
    method = (
        f"Each command ran as a whole process, in {runs + 1} rounds that run every command once (the first "
        "untimed), so that the machine's drift weighs on all alike; the table gives the medians. "
        "**Warm caches**: each command's input files are read through, untimed, right before each run, so "
        "`cat` measures memory bandwidth more than the disk, and Python's bytecode cache is warm "
        "(lstm-inspect's in work/pycache). Peak RSS: "
        f"{'/usr/bin/time -f %M' if GNU_TIME else 'os.wait4 ru_maxrss'}, which counts the pages of files a "
        "command maps (lstm-inspect maps large TF tensors); peak anon: the largest RssAnon read from "
        "/proc every 2 ms, the memory no file backs. User and system: CPU seconds (wait4). TensorFlow ran with "
        "TF_CPP_MIN_LOG_LEVEL=3. Export and cp write into work/scratch (page cache); their outputs are "
        "deleted after each run."
    )
    header = [
        "| command | input | median wall s | user s | system s | peak RSS MiB | peak anon MiB | compared | target "
        "| result |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    table = [*header, *rows] if rows else []
    if baseline_rows and only == "instructions":
        baseline_header = [
            f"Instructions executed (valgrind {VALGRIND and _valgrind_version()} callgrind, user space, "
            f"millions) against the baseline `{BASELINE[0]}`, each command counted once (the counts do not "
            f"drift with the machine's load; no more work: within {INSTRUCTION_SLACK:.3f}×):",
            "",
            "| command | input | instructions (M) | baseline (M) | ratio | result |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        table += [*baseline_header, *baseline_rows]
    elif baseline_rows:
        baseline_header = [
            f"Against the baseline `{BASELINE[0]}`, in the same rounds (no slower and no heavier: within "
            f"{BASELINE_SLACK:.2f}×):",
            "",
            "| command | input | wall s | baseline wall s | ratio | peak RSS MiB | baseline RSS MiB | ratio | result |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        table += ["", *baseline_header, *baseline_rows]
    if remote_table:
        remote_header = [
            "| command | input | median wall s | peak RSS / anon MiB | compared | target | result |",
            "| --- | --- | ---: | ---: | --- | --- | --- |",
        ]
        table += ["", *remote_header, *remote_table]
    return "\n".join(["# lstm-inspect benchmark", "", setup, "", method, "", *table]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size of the big inputs (1: a ~2 GB checkpoint)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (the median is reported)")
    parser.add_argument("--work", type=Path, default=BENCH / "work", help="where inputs are made and kept")
    parser.add_argument("--lstm-inspect", help="the lstm-inspect to time (default: the one beside this Python)")
    parser.add_argument("--remote-only", action="store_true", help="only the S3 and HTTP rows; results.md unchanged")
    parser.add_argument("--no-remote", action="store_true", help="without the S3 and HTTP rows")
    parser.add_argument(
        "--only",
        choices=["layers6000", "plot4096", "instructions"],
        help="only these rows (issue 9's 6,000 layers, plot and diff of a 4096-unit layer, or, with --baseline, "
        "the instructions each command executes against the baseline's, under valgrind); results.md unchanged",
    )
    parser.add_argument(
        "--lstm-inspect-frameworks",
        help="the lstm-inspect that times verify with torch and onnxruntime (default: --lstm-inspect's)",
    )
    parser.add_argument(
        "--baseline",
        help="another lstm-inspect (an install of an older commit) timed beside it on every command both have",
    )
    parser.add_argument("--make", nargs=2, metavar=("KIND", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        MAKERS[args.make[0]](Path(args.make[1]), args.scale)
        return
    if args.lstm_inspect:
        LSTM_INSPECT[:] = [os.path.abspath(args.lstm_inspect)]
    BASELINE[:] = [os.path.abspath(args.baseline)] if args.baseline else []
    LSTM_WITH_FRAMEWORKS[:] = (
        [os.path.abspath(args.lstm_inspect_frameworks)] if args.lstm_inspect_frameworks else LSTM_INSPECT
    )
    if args.only == "instructions" and not (BASELINE and VALGRIND):
        parser.error("--only instructions needs --baseline and valgrind")
    args.work.mkdir(parents=True, exist_ok=True)
    LSTM_ENV["PYTHONPYCACHEPREFIX"] = str(args.work.resolve() / "pycache")
    if args.only == "plot4096":
        print("\n".join(plot_rows(args.work.resolve(), args.runs)))
        return
    table = report(args.work.resolve(), args.scale, args.runs, args.remote_only, not args.no_remote, args.only)
    print(table)
    if not (args.remote_only or args.only):
        (BENCH / "results.md").write_text(table)


if __name__ == "__main__":
    main()
