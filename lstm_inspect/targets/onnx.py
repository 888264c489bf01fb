"""ONNX: the LSTM operator's W, R, B, P and the GRU operator's W, R, B (onnx/defs/rnn/defs.cc); onnx
and onnxruntime are imported only to build and run the model."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING

from .. import activations, schema
from ..records import frozen_record
from ..weights import Weights
from .base import Features, Target

if TYPE_CHECKING:
    import numpy as np

    from .base import Outputs, Streamable


@frozen_record
class Operator:
    """What onnx/defs/rnn/defs.cc says of one recurrent operator, by the names this project uses.

    inputs, outputs: its inputs and outputs in operator order ("" skips an optional input).
    activations: the settings its `activations` attribute spells, in order (LSTM: f, g, h; GRU: f, g).
    attributes: attribute -> the cell kind's variant setting whose value (0 or 1) it takes.
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    activations: tuple[str, ...]
    attributes: Mapping[str, str] = field(default_factory=dict)


OPERATORS: dict[str, Operator] = {
    schema.LSTM.name: Operator(
        ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
        ("Y", "Y_h", "Y_c"),
        # f (gates), g (cell input), h (cell output): numpy_lstm uses `activation` for both g and h.
        ("recurrent_activation", "activation", "activation"),
    ),
    # linear_before_reset=1: h_t = g(x·Wh + Wbh + r ∘ (h·Rh + Rbh)), the reset gate after the matmul.
    schema.GRU.name: Operator(
        ("X", "W", "R", "B", "sequence_lens", "initial_h"),
        ("Y", "Y_h"),
        ("recurrent_activation", "activation"),
        {"linear_before_reset": "reset_after"},
    ),
}


def attribute_values(weights: Weights) -> dict[str, int]:
    """The node attributes that say which variant of its cell kind a layer is."""
    operator = OPERATORS[weights.cell.name]
    return {attribute: int(weights.variants.get(setting, False)) for attribute, setting in operator.attributes.items()}


def run_model(model: str | bytes, x: np.ndarray) -> list[Outputs]:
    """An .onnx model (path or bytes) run by onnxruntime on the CPU; per direction (h in processing
    order, the final cell state: an LSTM's Y_c, a GRU's Y_h)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    y, *_, state = session.run(None, {"X": np.ascontiguousarray(x, dtype=dtype)})
    results = [(y[:, 0], state[0])]
    if y.shape[1] == 2:
        results.append((y[::-1, 1], state[1]))  # ONNX too stores the reverse direction in input order
    return results


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """The runnable model of this unit, as `export -o X.onnx` writes it, run by onnxruntime."""
    from ..writers.onnx_model import write_onnx

    with tempfile.TemporaryDirectory(prefix="lstm-inspect-onnx-") as scratch:
        path = os.path.join(scratch, "model.onnx")
        write_onnx(path, directions, directions[0].name)
        return run_model(path, x)


@frozen_record
class OnnxTarget(Target):
    """Beside W, R, B, a GRU's arrays hold the 0-d `linear_before_reset` its node needs: the arrays
    alone do not say where its reset gate applies."""

    def packing(self, directions: Sequence[Weights], runtime_forget_bias: float | None = None) -> dict[str, Streamable]:
        import numpy as np

        out = super().packing(directions, runtime_forget_bias)
        out.update({name: np.array(value) for name, value in attribute_values(directions[0]).items()})
        return out

    def read(
        self,
        arrays: Mapping[str, np.ndarray],
        names: Sequence[str],
        runtime_forget_bias: float | None = None,
        features: Features | None = None,
    ) -> list[Weights]:
        found = super().read(arrays, names, runtime_forget_bias, features)
        for weights in found:
            for attribute, setting in OPERATORS[weights.cell.name].attributes.items():
                if attribute in arrays:
                    weights.settings[setting] = bool(arrays[attribute])
        return found


TARGET = OnnxTarget(
    "onnx",
    schema.LAYOUTS["onnx"],
    "the ONNX {cell} operator",
    "the ONNX LSTM operator's W, R, B [, P] (GRU: W, R, B and the 0-d linear_before_reset), or with "
    "-o X.onnx a runnable model of one layer or pair",
    paired=True,
    projection="none",
    activations=frozenset(name for name, a in activations.ACTIVATIONS.items() if a.onnx is not None),
    recurrent_activations=frozenset(name for name, a in activations.ACTIVATIONS.items() if a.onnx is not None),
    check="onnxruntime",
    needs=("onnx", "onnxruntime"),
    run=run,
    cell_layouts=(schema.LAYOUTS["onnx-gru"],),
)
