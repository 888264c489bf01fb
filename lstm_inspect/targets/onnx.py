"""ONNX: the LSTM operator's W, R, B, P (onnx/defs/rnn/defs.cc); onnx and onnxruntime are imported
only to build and run the model."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import activations, schema
from .base import Target

if TYPE_CHECKING:
    import numpy as np

    from ..weights import Weights
    from .base import Outputs


def run_model(model: str | bytes, x: np.ndarray) -> list[Outputs]:
    """An .onnx model (path or bytes) run by onnxruntime on the CPU; per direction (h in processing order, c)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    y, _, c = session.run(None, {"X": np.ascontiguousarray(x, dtype=dtype)})
    results = [(y[:, 0], c[0])]
    if y.shape[1] == 2:
        results.append((y[::-1, 1], c[1]))  # ONNX too stores the reverse direction in input order
    return results


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """The runnable model of this unit, as `export -o X.onnx` writes it, run by onnxruntime."""
    from ..writers.onnx_model import write_onnx

    with tempfile.TemporaryDirectory(prefix="lstm-inspect-onnx-") as scratch:
        path = os.path.join(scratch, "model.onnx")
        write_onnx(path, directions, directions[0].name)
        return run_model(path, x)


TARGET = Target(
    "onnx",
    schema.LAYOUTS["onnx"],
    "the ONNX LSTM operator",
    "the ONNX LSTM operator's W, R, B [, P], or with -o X.onnx a runnable model of one layer or pair",
    paired=True,
    projection="none",
    activations=frozenset(name for name, a in activations.ACTIVATIONS.items() if a.onnx is not None),
    recurrent_activations=frozenset(name for name, a in activations.ACTIVATIONS.items() if a.onnx is not None),
    check="onnxruntime",
    needs=("onnx", "onnxruntime"),
    run=run,
)
