"""Benchmark lstm-inspect against TensorFlow's own checkpoint tools (GitHub issue #5).

    python bench/run.py [--scale 0.1] [--runs 5] [--work bench/work] [--lstm-inspect PATH] [--remote-only]

--lstm-inspect times another install than the one beside this Python, e.g. a plain
`pip install .` in a clean venv, whose start-up carries none of this environment's .pth hooks
(an editable install's finder, certifi's patch); `python -c pass` is then timed with that
install's Python too.

Makes its inputs under --work on first use and reuses them afterwards (--scale shrinks the big
checkpoint and the Keras files; each scale gets its own folder): a small TF1 checkpoint, a ~2 GB
sharded checkpoint of 21 LSTM layers with peepholes, projections, a partitioned variable and Adam
slots (and the same at 1/1000 of its bytes), a Keras .h5 and .keras of a few hundred MB, and an
index of 20,000 small variables. Making them needs TensorFlow and Keras 3; that runs in child
processes so that this one stays small.

Then runs every command as a whole process, in rounds of one run each (the first untimed, then
--runs timed; each run after an untimed read of its input files, so that they are in the page
cache), and prints a markdown table of the median wall time and peak RSS (GNU time's %M, else
os.wait4), the ratios against the TensorFlow tools and PASS/FAIL against the issue's targets; the
table is also written to bench/results.md.

Then the same summary, one-layer split and export of the big checkpoint over S3 (moto's server)
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
# The console script `pip install -e .` put next to this Python.
LSTM_INSPECT = [shutil.which("lstm-inspect", path=os.path.dirname(sys.executable)) or "lstm-inspect"]
# The layer that `split`, single-layer `export` and the TensorFlow single-tensor tools read.
SPLIT_LAYER = "layer_10/lstm_cell"
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


def make_many(out: Path, scale: float) -> None:
    """20,001 tensors: 1,000 small LSTM cells, 2,333 dense layers, Adam slots for all, bookkeeping;
    written by the SaveV2 op directly (one bundle, no graph of 20,000 variables)."""
    import tensorflow as tf

    rng, shapes = np.random.default_rng(3), {}
    for k in range(1000):
        shapes[f"encoder/cell_{k}/lstm_cell/kernel"], shapes[f"encoder/cell_{k}/lstm_cell/bias"] = (40, 96), (96,)
    for k in range(2333):
        shapes[f"heads/head_{k}/dense/kernel"], shapes[f"heads/head_{k}/dense/bias"] = (8, 4), (4,)
    shapes.update({f"{name}/{slot}": shape for name, shape in list(shapes.items()) for slot in ("Adam", "Adam_1")})
    tensors = [tf.constant(rng.standard_normal(shape, np.float32)) for shape in shapes.values()]
    names = list(shapes) + ["beta1_power", "beta2_power", "global_step"]
    tensors += [tf.constant(0.9), tf.constant(0.999), tf.constant(1000, tf.int64)]
    tf.raw_ops.SaveV2(
        prefix=str(out / "model.ckpt"), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )


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


MAKERS = {"small": make_small, "big": make_big, "keras": make_keras, "many": make_many, "graph": make_graph}
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


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run. The child's own ru_maxrss would include this
    Python process (subprocess's vfork shares its memory until exec), so GNU time, a few hundred
    KiB, starts the command and reports its peak RSS when it is there."""
    with tempfile.NamedTemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        wrapper = [GNU_TIME, "-f", "%M", "-o", rss.name] if GNU_TIME else []
        started = time.perf_counter()
        child = subprocess.Popen(wrapper + argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            err.seek(0)
            sys.exit(f"{' '.join(argv)} exited {child.returncode}:\n{err.read().decode(errors='replace')[-3000:]}")
        peak_kib = int(rss.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return wall, peak_kib / 1024


class Bench:
    """Commands registered by key, then run in rounds: each round runs every command once, so that
    a machine that speeds up or slows down while the benchmark runs (a shared virtual machine
    does) weighs on every command alike. The first round warms the bytecode cache and is not
    timed; the medians of the other `runs` are kept. Before each run the command's input files
    are read through, untimed: a kernel may page out what was not read for a while (this
    machine's DAMON pageout scheme takes page-cache pages idle for 60 s), and a round lasts
    about that long."""

    def __init__(self, runs: int, scratch: Path) -> None:
        self.runs, self.scratch = runs, scratch
        self.commands: dict[object, tuple[str, str, list[str], dict[str, str], list[Path]]] = {}
        self.results: dict[object, Measure] = {}

    def __call__(
        self, key: object, label: str, source: str, argv: list[str], env: dict[str, str] = LSTM_ENV, warm: object = None
    ):
        """warm: the input (a file, or a checkpoint prefix) whose files are read before each run."""
        self.commands[key] = (label, source, argv, env, input_files(warm))

    def run(self) -> None:
        samples: dict[object, list[tuple[float, float]]] = {key: [] for key in self.commands}
        for round_ in range(self.runs + 1):
            print(f"  round {round_ + 1} of {self.runs + 1}{' (untimed)' if not round_ else ''}", file=sys.stderr)
            for key, (_, _, argv, env, warm) in self.commands.items():
                for path in warm:
                    with path.open("rb") as f:
                        while f.read(16 * MiB):
                            pass
                sample = run_once(argv, env)
                if round_:
                    samples[key].append(sample)
                for leftover in self.scratch.iterdir():  # outputs of export and cp
                    leftover.unlink()
        for key, (label, source, *_) in self.commands.items():
            wall, rss = (statistics.median(s[i] for s in samples[key]) for i in (0, 1))
            self.results[key] = Measure(label, source, wall, rss)
            print(f"  {wall:7.3f} s {rss:7.1f} MiB  {label} [{source}]", file=sys.stderr, flush=True)

    def __getitem__(self, key: object) -> Measure:
        return self.results[key]


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


def benchmark(work: Path, scale: float, runs: int) -> list[str]:
    """Makes the inputs, runs every command, and returns the table's rows."""
    inputs = {kind: ensure_input(work, kind, scale) for kind in MAKERS}
    small, big, many = (inputs[kind] / "model.ckpt" for kind in ("small", "big", "many"))
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
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    names = {
        small: "small TF1",
        big: f"{shard_bytes / 1e9:.2f} GB sharded",
        tiny: f"the same layers, {sum(p.stat().st_size for p in tiny.parent.glob('model.ckpt.data-*')) / 1e6:.1f} MB",
        many: "20,001 tensors",
        h5: f"{h5.stat().st_size / 1e6:.0f} MB .h5",
        keras_v3: f"{keras_v3.stat().st_size / 1e6:.0f} MB .keras",
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
    for path in (small, big, tiny, many, h5, keras_v3, small_meta, meta10, no_meta):
        m(("summary", path), "lstm-inspect summary", names[path], [*LSTM_INSPECT, "summary", str(path)], warm=path)
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
    m.run()

    rows = []

    def row(key: object, compared: str = "", target: str = "", ok: bool | None = None) -> None:
        x = m[key]
        result = "" if ok is None else "PASS" if ok else "**FAIL**"
        rows.append(f"| `{x.label}` | {x.source} | {x.wall:.3f} | {x.rss:.0f} | {compared} | {target} | {result} |")

    def versus(key: object, tf_key: object) -> tuple[float, float, str]:
        speed, memory = m[tf_key].wall / m[key].wall, m[tf_key].rss / m[key].rss
        return speed, memory, f"{speed:.1f}× faster, {memory:.1f}× less memory than `{m[tf_key].label}`"

    row("python", "the floor of any Python command here")
    row("python -S", "the same without site-packages' .pth start-up hooks")
    row("help", f"{m['help'].wall - m['python'].wall:.3f} s over `python -c pass`", "< 0.15 s", m["help"].wall < 0.15)
    for path in (small, big, many):
        speed, memory, compared = versus(("summary", path), ("list", path))
        if path == many:
            # The issue's own target for this index. Its "≥ 15× faster" for checkpoints in general
            # would ask for < 0.46 s here and leave that 1 s target nothing to say.
            target, ok = "< 1 s", m["summary", path].wall < 1.0
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
    row(("summary", tiny), "the big checkpoint's 21 layers and tensors, 1/1000 of its bytes")
    for path in (h5, keras_v3):
        row(("summary", path), "(no TensorFlow tool)", "< 0.3 s", m["summary", path].wall < 0.3)
    # Issue 11: the graph beside a checkpoint is read for its settings, side by side with the same
    # checkpoint without it.
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
    return rows


S3_BUCKET = "bench"


def remote_rows(work: Path, scale: float, runs: int) -> list[str]:
    """Summary, split of SPLIT_LAYER and export of the big checkpoint from the local disk, then
    over the S3 and HTTP servers, in rounds as Bench runs them; the servers count the bytes."""
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

        client = boto3.client("s3", endpoint_url=s3.url, aws_access_key_id="bench", aws_secret_access_key="bench")
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
            "export (all layers)": lambda x: ["export", x, "-o", str(scratch / "out.npz"), "--quiet"],
        }
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        fetched: dict[tuple[str, str], tuple[int, int]] = {}
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
                    if round_:
                        samples.setdefault((command, source), []).append(sample)
                    if log is not None:  # object reads only: s3fs's listings of the bucket are lookups
                        gets = [r for r in log.of(method="GET") if r.path != f"/{S3_BUCKET}"]
                        fetched[command, source] = (sum(r.bytes for r in gets), len(log.requests))
                    for leftover in scratch.iterdir():
                        leftover.unlink()
    rows = []
    for command in commands:
        local_wall = statistics.median(s[0] for s in samples[command, "local disk"])
        for source in sources:
            wall, rss = (statistics.median(s[i] for s in samples[command, source]) for i in (0, 1))
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
                    compared += f" ({all_layer_bytes / 1e6 / wall:.0f} MB/s of LSTM weights)"
                    target, ok = "≥ 50 % of the local export's speed", speed >= 0.5
                result = "PASS" if ok else "**FAIL**"
            elif command.startswith("export"):
                compared = f"{all_layer_bytes / 1e6 / wall:.0f} MB/s of LSTM weights"
            label = f"lstm-inspect {command}"
            rows.append(f"| `{label}` | {source} | {wall:.3f} | {rss:.0f} | {compared} | {target} | {result} |")
    return rows


def floor_python() -> str:
    """The Python that runs the timed lstm-inspect, for the start-up floor."""
    beside = os.path.join(os.path.dirname(LSTM_INSPECT[0]), "python")
    return beside if os.access(beside, os.X_OK) else sys.executable


def report(work: Path, scale: float, runs: int, remote_only: bool = False) -> str:
    load_before = os.getloadavg()[0]
    rows = [] if remote_only else benchmark(work, scale, runs)
    rows += remote_rows(work, scale, runs)
    revision = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=BENCH)
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    setup = (
        f"`python bench/run.py --scale {scale:g} --runs {runs}` at {time.strftime('%Y-%m-%d %H:%M')}, commit "
        f"{revision.stdout.strip()}; Python {platform.python_version()}, {os.cpu_count()} CPUs, {memory:.0f} GiB "
        f"RAM; 1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after. "
        f"lstm-inspect timed: `{LSTM_INSPECT[0]}`."
    )
    method = (
        f"Each command ran as a whole process, in {runs + 1} rounds that run every command once (the first "
        "untimed), so that the machine's drift weighs on all alike; the table gives the medians. "
        "**Warm caches**: each command's input files are read through, untimed, right before each run, so "
        "`cat` measures memory bandwidth more than the disk, and Python's bytecode cache is warm "
        "(lstm-inspect's in work/pycache). Peak RSS: "
        f"{'/usr/bin/time -f %M' if GNU_TIME else 'os.wait4 ru_maxrss'}. TensorFlow ran with "
        "TF_CPP_MIN_LOG_LEVEL=3. Export and cp write into work/scratch (page cache); their outputs are "
        "deleted after each run."
    )
    header = [
        "| command | input | median wall s | peak RSS MiB | compared | target | result |",
        "| --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    return "\n".join(["# lstm-inspect benchmark", "", setup, "", method, "", *header, *rows]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size of the big inputs (1: a ~2 GB checkpoint)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (the median is reported)")
    parser.add_argument("--work", type=Path, default=BENCH / "work", help="where inputs are made and kept")
    parser.add_argument("--lstm-inspect", help="the lstm-inspect to time (default: the one beside this Python)")
    parser.add_argument("--remote-only", action="store_true", help="only the S3 and HTTP rows; results.md unchanged")
    parser.add_argument("--make", nargs=2, metavar=("KIND", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        MAKERS[args.make[0]](Path(args.make[1]), args.scale)
        return
    if args.lstm_inspect:
        LSTM_INSPECT[:] = [os.path.abspath(args.lstm_inspect)]
    args.work.mkdir(parents=True, exist_ok=True)
    LSTM_ENV["PYTHONPYCACHEPREFIX"] = str(args.work.resolve() / "pycache")
    table = report(args.work.resolve(), args.scale, args.runs, args.remote_only)
    print(table)
    if not args.remote_only:
        (BENCH / "results.md").write_text(table)


if __name__ == "__main__":
    main()
