"""TensorFlow: the `tensorflow` export target, a TF1 LSTMCell's (or GRUCell's) variables under its scope
(tensorflow/python/ops/rnn_cell_impl.py, which TF 2 serves from tf_keras/src/layers/rnn/legacy_cells.py);
and TensorFlow's own cells, which verify runs on that export (`tensorflow`) and on the original
file (`tf-cell`: the cell class and settings read from the graph, the file's weights loaded by
TensorFlow's own readers), so that a forget bias, an activation or a clip applied wrongly fails.

TensorFlow runs in a worker process of its own, started on first use and reused while this process
lives: its import prints log lines (oneDNN, CUDA probing) to file descriptor 2 whatever
TF_CPP_MIN_LOG_LEVEL says, which must not reach the user, and TF1 cells want TF_USE_LEGACY_KERAS=1
set before TensorFlow routes `tf.keras` (tensorflow/python/util/lazy_loader.py KerasLazyLoader), which
a process that imported Keras 3 has done already. The worker's stderr goes to a file read only to
say why it failed; every answer is awaited for at most ANSWER_WITHIN_S seconds, after which the
worker is killed; an idle worker exits by itself after IDLE_EXIT_S seconds.
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import IO, TYPE_CHECKING, Any, cast

from .. import schema
from ..errors import LstmInspectError
from ..records import record
from .base import Target

if TYPE_CHECKING:
    import numpy as np

    from ..api import Layer
    from ..readers.base import TensorFlowSource
    from ..weights import Weights
    from .base import Outputs

LAYOUT = schema.LAYOUTS["tf1"]
NEEDS = ("tensorflow", "tf_keras")
# The first answer includes TensorFlow's import (~5 s here); a step of a small cell takes a millisecond.
ANSWER_WITHIN_S = 300.0
IDLE_EXIT_S = 600.0
_LENGTH = 8  # each message: its length as 8 bytes, big-endian, then an .npz

# The TF1 cells verify can build, by the class a layer's graph (or its layout) names. BasicLSTMCell
# and LSTMCell compute alike without peepholes, a projection or clips (rnn_cell_impl.py), so the
# detected "(Basic)LSTMCell" runs as an LSTMCell; CudnnCompatibleLSTMCell is an LSTMCell that adds
# no forget bias (cudnn_rnn_ops.py), which its settings say. The fused ops of lstm_ops.py
# (tensorflow/core/ops/rnn_ops.cc) run as the ops themselves.
_LEGACY_CELLS = {"BasicLSTMCell", "LSTMCell", "(Basic)LSTMCell", "CudnnCompatibleLSTMCell"}
_FUSED_OPS = {"LSTMBlockCell", "LSTMBlockFusedCell", "BlockLSTMV2"}
# keras/src/layers/rnn/lstm.py and tf_keras compute one LSTM; tf_keras' runs it here.
_KERAS_LSTM = "LSTM"


# ---- what TensorFlow is asked to run --------------------------------------------------------------


@record
class CellRun:
    """One direction of one layer for TensorFlow to run from zero state over x [T, B, in].

    cell: the class (or fused op) to build; settings: units, forget_bias, activation,
    recurrent_activation, use_peepholes, num_proj, cell_clip, proj_clip; weights: by the layout's
    role key (kernel, bias, w_i_diag, ..., projection/kernel; Keras' kernel, recurrent_kernel, bias),
    or empty when `load` says where TensorFlow reads them itself: {"kind": "checkpoint" | "graph" |
    "saved_model", "path": ..., "keys": {role key: the file's own name}}.
    """

    cell: str
    settings: dict[str, Any]
    x: np.ndarray
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    load: dict[str, Any] | None = None


def _checked_settings(cell: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings, or the reason TensorFlow's cell of that class cannot compute them."""
    from .. import activations

    if cell not in _LEGACY_CELLS | _FUSED_OPS | {_KERAS_LSTM}:
        raise LstmInspectError(f"lstm-inspect cannot build TensorFlow's {cell}")
    for name in ("activation", "recurrent_activation"):
        if not activations.known(str(settings[name])):
            raise LstmInspectError(f"no TensorFlow function for the activation {settings[name]!r}")
    if cell != _KERAS_LSTM and settings["recurrent_activation"] != "sigmoid":
        raise LstmInspectError(f"TensorFlow's {cell} computes its gates with sigmoid only")
    if cell in _FUSED_OPS and (settings["activation"] != "tanh" or settings.get("num_proj")):
        raise LstmInspectError(f"TensorFlow's {cell} op computes tanh and has no projection (lstm_ops.h)")
    return settings


def _layer_settings(layer: Layer, forget_bias: float) -> dict[str, Any]:
    activation, recurrent = layer.activations()
    clips = layer.clips()
    return {
        "units": layer.units,
        "forget_bias": float(forget_bias),
        "activation": activation,
        "recurrent_activation": recurrent,
        "use_peepholes": layer.peepholes,
        "num_proj": layer.projection_size,
        "cell_clip": clips.get("cell_clip"),
        "proj_clip": clips.get("proj_clip"),
    }


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """TF1 LSTMCell per direction, its variables the export's arrays, adding the target's runtime
    forget bias (what the export folded the source's into), over its own processing order."""
    runs = []
    for index, (layer_arrays, weights) in enumerate(zip(arrays, directions)):
        if weights.cell.name != "LSTM":
            raise LstmInspectError(f"verify runs TF1's LSTMCell only, not a TF1 {weights.cell.name}Cell")
        projection = layer_arrays.get("projection/kernel")
        settings = {
            "units": weights.units,
            "forget_bias": TARGET.runtime_forget_bias,
            "activation": weights.activation,
            "recurrent_activation": weights.recurrent_activation,
            "use_peepholes": "w_f_diag" in layer_arrays,
            "num_proj": None if projection is None else int(projection.shape[1]),
            "cell_clip": weights.settings.get("cell_clip"),
            "proj_clip": weights.settings.get("proj_clip"),
        }
        cell_run = CellRun("LSTMCell", _checked_settings("LSTMCell", settings), x if index == 0 else x[::-1])
        cell_run.weights = dict(layer_arrays)
        runs.append(cell_run)
    return _worker().run(runs)


def original_source(store: object) -> TensorFlowSource | None:
    """Where TensorFlow reads a file's tensors itself, or None when it is no file TensorFlow wrote
    (the store's `origin`, where the reader declares one, says; else whether it offers a source)."""
    origin = getattr(store, "origin", None)
    if origin is not None and getattr(origin, "loader", None) != "tensorflow":
        return None
    offer = getattr(store, "tensorflow_source", None)
    return offer() if callable(offer) else None


def run_original(source: TensorFlowSource, layers: Sequence[Layer], inputs: Sequence[np.ndarray]) -> list[Outputs]:
    """Each layer as the file's TensorFlow cell computes it: the class and settings the graph shows
    (or the layout's, where it shows none), the weights read by TensorFlow from the file."""
    from ..readers.urls import is_url

    if is_url(source.path):
        raise LstmInspectError("TensorFlow's own readers read local files here: verify a local copy to run it")
    runs = []
    for layer, x in zip(layers, inputs):
        cell = _KERAS_LSTM if layer.layout is schema.LAYOUTS["keras"] else layer.cell
        if cell not in _LEGACY_CELLS | _FUSED_OPS | {_KERAS_LSTM}:
            raise LstmInspectError(f"{layer.name}: lstm-inspect cannot build TensorFlow's {layer.cell} (a {cell})")
        settings = _checked_settings(cell, _layer_settings(layer, layer.forget_bias))
        keys = {role: source.keys[info.name] for role, info in layer.spec.tensors.items()}
        runs.append(CellRun(cell, settings, x, load={"kind": source.kind, "path": source.path, "keys": keys}))
    return _worker().run(runs)


# ---- the worker: the parent's side ----------------------------------------------------------------


class TensorFlowFailed(RuntimeError):
    """TensorFlow failed on what it was asked to run, or its worker did not answer."""


class _Worker:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.last_words = ""

    def run(self, runs: Sequence[CellRun]) -> list[Outputs]:
        import numpy as np

        request: dict[str, np.ndarray] = {}
        for index, cell_run in enumerate(runs):
            spec = {"cell": cell_run.cell, "settings": cell_run.settings, "load": cell_run.load}
            request[f"{index}/spec"] = np.frombuffer(json.dumps(spec).encode(), np.uint8)
            request[f"{index}/x"] = np.asarray(cell_run.x)
            for role, value in cell_run.weights.items():
                request[f"{index}/w/{role}"] = np.asarray(value)
        return self.answer(request, len(runs))

    def answer(self, request: Mapping[str, np.ndarray], count: int) -> list[Outputs]:
        """The (h, c) of each of the `count` runs `request` holds, computed by the worker."""
        answer = self._ask(_pack(request))
        if "error" in answer:
            raise TensorFlowFailed(bytes(answer["error"]).decode("utf-8", "replace"))
        return [(answer[f"{index}/h"], answer[f"{index}/c"]) for index in range(count)]

    def _start(self) -> subprocess.Popen[bytes]:
        import lstm_inspect

        root = os.path.dirname(os.path.dirname(os.path.abspath(lstm_inspect.__file__)))
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        self.log = tempfile.TemporaryFile(prefix="lstm-inspect-tensorflow-")
        # Run from the package's own root, which `-c` puts first on sys.path: the worker imports
        # this lstm_inspect, and nothing the current directory holds.
        return subprocess.Popen(
            [sys.executable, "-c", "from lstm_inspect.targets.tensorflow import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=root,
            env=env,
        )

    def start(self) -> subprocess.Popen[bytes]:
        """The running worker, started unless it is."""
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.process = self._start()
        return self.process

    def _ask(self, message: bytes) -> dict[str, np.ndarray]:
        process = self.start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(len(message).to_bytes(_LENGTH, "big") + message)
            process.stdin.flush()
            deadline = time.monotonic() + ANSWER_WITHIN_S
            length = int.from_bytes(_read(process.stdout, _LENGTH, deadline), "big")
            return _unpack(_read(process.stdout, length, deadline))
        except (OSError, EOFError, TimeoutError) as e:
            self.stop(kill=True)
            raise TensorFlowFailed(f"TensorFlow's worker {_failure(e)}{self._last_words()}") from None
        except BaseException:
            # Ctrl-C while the worker computes: its answer would come to the next question.
            self.stop(kill=True)
            raise

    def _last_words(self) -> str:
        """The last line the stopped worker wrote to its stderr, for the message."""
        words, self.last_words = self.last_words, ""
        return f": {words}" if words else ""

    def stop(self, kill: bool = False) -> None:
        """End the worker: its input closed, so that it returns (or killed, with `kill` or when it
        does not within a few seconds); its stderr's last line kept for the message."""
        process, self.process = self.process, None
        if process is not None:
            if kill:
                process.kill()
            try:
                if process.stdin is not None:
                    process.stdin.close()
            except OSError:  # a dead worker's pipe
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self.log is not None:
            self.log.seek(0)
            lines = [line for line in self.log.read().decode("utf-8", "replace").splitlines() if line.strip()]
            self.last_words = lines[-1].strip() if lines else ""
            self.log.close()
            self.log = None


def _failure(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"did not answer within {ANSWER_WITHIN_S:g} s"
    return "stopped before answering"


def _read(stream: IO[bytes], count: int, deadline: float) -> bytes:
    """Exactly `count` bytes from a pipe, or TimeoutError past `deadline`, EOFError at its end."""
    chunks, fd = [], stream.fileno()
    while count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(count, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _pack(arrays: Mapping[str, np.ndarray]) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **cast(dict[str, Any], arrays))
    return buffer.getvalue()


def _unpack(data: bytes) -> dict[str, np.ndarray]:
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def run_keras(calls: Sequence[tuple[Sequence[np.ndarray], np.ndarray, Mapping[str, Any]]]) -> list[Outputs]:
    """Keras 3's outputs (targets/keras.py `outputs`) of each (values, x, keyword arguments), run
    by the worker: Keras 3 computes on TensorFlow here, which the worker has imported already,
    while this process would import both anew (5 s here, and 600 MB)."""
    import numpy as np

    request: dict[str, np.ndarray] = {}
    for index, (values, x, arguments) in enumerate(calls):
        spec = {"keras": dict(arguments), "values": len(values)}
        request[f"{index}/spec"] = np.frombuffer(json.dumps(spec).encode(), np.uint8)
        request[f"{index}/x"] = np.asarray(x)
        for position, value in enumerate(values):
            request[f"{index}/v/{position}"] = np.asarray(value)
    return _worker().answer(request, len(calls))


def prepare() -> None:
    """Start the worker now, which imports TensorFlow while this process goes on (Target.prepare)."""
    _worker().start()


_WORKER: _Worker | None = None


def _worker() -> _Worker:
    global _WORKER
    if _WORKER is None:
        _WORKER = _Worker()
        # Killed, not asked to end: at exit (after Ctrl-C, too) a worker still importing TensorFlow
        # or inside one of its ops reads its closed input only when done, seconds later.
        atexit.register(_WORKER.stop, kill=True)
    return _WORKER


# ---- the worker: its own side (runs with TensorFlow imported) ---------------------------------------


def serve() -> None:
    """The worker's loop: a request in, the outputs (or one error line) out, until its input ends
    or it has waited IDLE_EXIT_S seconds. Its stdout carries answers only: anything else that
    prints goes to stderr."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # At once, not on the first request: verify starts the worker before it needs it (prepare), so
    # that TensorFlow's import (~5 s here) overlaps the parent's own work and imports.
    import tensorflow  # noqa: F401

    requests = sys.stdin.buffer
    while True:
        try:
            length = int.from_bytes(_read(requests, _LENGTH, time.monotonic() + IDLE_EXIT_S), "big")
            request = _unpack(_read(requests, length, time.monotonic() + ANSWER_WITHIN_S))
        except (EOFError, TimeoutError):
            return
        try:
            answer = _answer(request)
        except Exception as e:  # reported to the parent as TensorFlow's failure, in one line
            message = f"{type(e).__name__}: {e}".splitlines()[0]
            answer = {"error": _bytes_array(message.encode())}
        data = _pack(answer)
        answers.write(len(data).to_bytes(_LENGTH, "big") + data)
        answers.flush()


def _bytes_array(data: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(data, np.uint8)


def _answer(request: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import warnings

    answer = {}
    count = sum(1 for key in request if key.endswith("/spec"))
    for index in range(count):
        spec = json.loads(bytes(request[f"{index}/spec"]).decode())
        if "keras" in spec:
            from .keras import outputs

            values = [request[f"{index}/v/{position}"] for position in range(spec["values"])]
            answer[f"{index}/h"], answer[f"{index}/c"] = outputs(values, request[f"{index}/x"], **spec["keras"])
            continue
        prefix = f"{index}/w/"
        weights = {key[len(prefix) :]: value for key, value in request.items() if key.startswith(prefix)}
        if spec["load"] is not None:
            weights = _load(spec["load"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TF1 cells' deprecation notices
            h, c = _compute(spec["cell"], spec["settings"], weights, request[f"{index}/x"])
        answer[f"{index}/h"], answer[f"{index}/c"] = h, c
    return answer


def _load(load: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The weights as TensorFlow's own readers read them from the file."""
    import tensorflow as tf

    keys: Mapping[str, str] = load["keys"]
    if load["kind"] == "checkpoint":
        index = os.stat(load["path"] + ".index")  # a file rewritten in place is opened anew
        reader = _checkpoint_reader(load["path"], (index.st_ino, index.st_size, index.st_mtime_ns))
        return {role: reader.get_tensor(key) for role, key in keys.items()}
    with open(load["path"], "rb") as f:
        data = f.read()
    from google.protobuf import text_format  # type: ignore[import-untyped]  # TensorFlow's own dependency

    if load["kind"] == "saved_model":
        from tensorflow.core.protobuf import saved_model_pb2

        if load["path"].endswith(".pbtxt"):
            saved = text_format.Parse(data.decode(), saved_model_pb2.SavedModel())
        else:
            saved = saved_model_pb2.SavedModel.FromString(data)
        served = [m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags] or list(saved.meta_graphs)
        graph = served[0].graph_def
    elif load["path"].endswith(".pbtxt"):
        graph = text_format.Parse(data.decode(), tf.compat.v1.GraphDef())
    else:
        graph = tf.compat.v1.GraphDef.FromString(data)
    nodes = {node.name: node for node in graph.node}
    return {role: tf.make_ndarray(nodes[key].attr["value"].tensor) for role, key in keys.items()}


@functools.lru_cache(maxsize=2)
def _checkpoint_reader(path: str, identity: tuple[int, ...]) -> Any:
    """TensorFlow's reader of the checkpoint, opened once per version of its index (`identity`):
    opening parses the whole index, 20 ms for 6,000 layers at each of their checks."""
    import tensorflow as tf

    return tf.train.load_checkpoint(path)


def _function(tf: Any, name: str) -> Any:
    from .. import activations

    if name == "hard_sigmoid":  # Keras 2's (tf_keras/src/backend.py)
        return lambda z: tf.clip_by_value(0.2 * z + 0.5, 0.0, 1.0)
    if name == "hard_sigmoid_keras3":
        return lambda z: tf.clip_by_value(z / 6.0 + 0.5, 0.0, 1.0)
    op = activations.ACTIVATIONS[name].tf_op
    return (lambda z: z) if op == "Identity" else getattr(tf.math if op in ("Tanh", "Sigmoid") else tf.nn, name)


def _compute(
    cell: str, settings: Mapping[str, Any], weights: Mapping[str, np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    import tensorflow as tf

    dtype = np.float64 if next(iter(weights.values())).dtype == np.float64 else np.float32
    weights = {role: np.asarray(value, dtype=dtype) for role, value in weights.items()}
    x = np.asarray(x, dtype=dtype)
    if cell in _FUSED_OPS:
        return _fused(tf, cell, settings, weights, x)
    if cell == _KERAS_LSTM:
        import tf_keras

        layer = tf_keras.layers.LSTM(
            settings["units"],
            activation=_function(tf, settings["activation"]),
            recurrent_activation=_function(tf, settings["recurrent_activation"]),
            use_bias="bias" in weights,
            return_sequences=True,
            return_state=True,
            dtype=np.dtype(dtype).name,
        )
        layer.build((x.shape[1], x.shape[0], x.shape[2]))
        layer.set_weights([weights[role] for role in ("kernel", "recurrent_kernel", "bias") if role in weights])
        y, _, c = layer(np.ascontiguousarray(x.transpose(1, 0, 2)))
        return np.asarray(y).transpose(1, 0, 2), np.asarray(c)
    from tf_keras.src.layers.rnn import legacy_cells

    activation = _function(tf, settings["activation"])
    if cell == "BasicLSTMCell":
        built = legacy_cells.BasicLSTMCell(
            settings["units"], forget_bias=settings["forget_bias"], activation=activation, dtype=np.dtype(dtype).name
        )
    else:
        built = legacy_cells.LSTMCell(
            settings["units"],
            use_peepholes=settings["use_peepholes"],
            cell_clip=settings["cell_clip"],
            num_proj=settings["num_proj"],
            proj_clip=settings["proj_clip"],
            forget_bias=settings["forget_bias"],
            activation=activation,
            dtype=np.dtype(dtype).name,
        )
    built.build(tf.TensorShape([None, x.shape[2]]))
    for variable in built.variables:
        # "lstm_cell/projection/kernel:0": the name under the cell's scope is the role key.
        variable.assign(weights[variable.name.split(":")[0].split("/", 1)[1]])
    state = built.zero_state(x.shape[1], dtype)
    outputs = []
    for step in x:
        h, state = built(tf.constant(step), state)
        outputs.append(np.asarray(h))
    return np.stack(outputs), np.asarray(state.c)


def _fused(
    tf: Any, cell: str, settings: Mapping[str, Any], weights: Mapping[str, np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ops of tensorflow/core/ops/rnn_ops.cc, which clip only for cell_clip > 0 (lstm_ops.cc)
    and read absent peepholes as zeros."""
    import numpy as np

    units = settings["units"]
    zeros = np.zeros(units, dtype=x.dtype)
    peepholes = {f"wc{g}": weights.get(f"w_{g}_diag", zeros) for g in "ifo"}
    clip = settings["cell_clip"] or -1.0  # what lstm_ops.py passes for no clip
    common = {"w": weights["kernel"], "b": weights["bias"], "use_peephole": settings["use_peepholes"], **peepholes}
    c = np.zeros((x.shape[1], units), dtype=x.dtype)
    if cell == "LSTMBlockCell":
        h, outputs = c, []
        for step in x:
            _, c, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
                x=step, cs_prev=c, h_prev=h, forget_bias=settings["forget_bias"], cell_clip=clip, **common
            )
            outputs.append(np.asarray(h))
        return np.stack(outputs), np.asarray(c)
    extra = {"forget_bias": settings["forget_bias"]} if cell == "LSTMBlockFusedCell" else {}
    op = tf.raw_ops.BlockLSTM if cell == "LSTMBlockFusedCell" else tf.raw_ops.BlockLSTMV2
    _, cs, _, _, _, _, h = op(seq_len_max=np.int64(len(x)), x=x, cs_prev=c, h_prev=c, cell_clip=clip, **extra, **common)
    return np.asarray(h), np.asarray(cs)[-1]


# LSTMCell.call hard-codes sigmoid for the gates; the cell activation, peepholes, the projection
# and both clips are constructor arguments. GRUCell.call hard-codes sigmoid too, and multiplies the
# state by the reset gate before the candidate's matmul (tf1-gru fixes reset_after False).
TARGET = Target(
    "tensorflow",
    LAYOUT,
    "TF1 {cell}Cell",
    "a TF1 LSTMCell's variables: kernel (input rows, then recurrent rows), bias [, w_i_diag, w_f_diag, "
    "w_o_diag, projection/kernel]; a GRUCell's gates/kernel, gates/bias, candidate/kernel, candidate/bias",
    clips=frozenset({"cell_clip", "proj_clip"}),
    recurrent_activations=frozenset({"sigmoid"}),
    settable=frozenset({"forget_bias"}),
    check="tensorflow",
    needs=NEEDS,
    run=run,
    cell_layouts=(schema.LAYOUTS["tf1-gru"],),
    prepare=prepare,
)
