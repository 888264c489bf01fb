"""The numpy baseline of every cell kind, by its name (schema.CELL_KINDS): what verify, and the tests,
run a layer's canonical weights through. Adding a cell kind adds its numpy module's entry here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import numpy_conv_lstm, numpy_gru, numpy_lstm, schema

if TYPE_CHECKING:
    import numpy as np

    from .weights import Weights

# (h for every step [T, B, out], the final cell state [B, units]: an LSTM's c, a GRU's h), float64.
Runner = Callable[["Weights", "np.ndarray"], "tuple[np.ndarray, np.ndarray]"]

RUNNERS: dict[str, Runner] = {
    schema.LSTM.name: numpy_lstm.run_weights,
    schema.GRU.name: numpy_gru.run_weights,
    **{kind.name: numpy_conv_lstm.run_weights for kind in schema.CONV_LSTMS},
}
# The shape of one step of one sequence a cell kind reads, where it is not [input]: a ConvLSTM2D's
# [*spatial, channels] (or [channels, *spatial]), as large as its convolutions need.
STEP_SHAPES: dict[str, Callable[[Weights], tuple[int, ...]]] = {
    kind.name: numpy_conv_lstm.step_shape for kind in schema.CONV_LSTMS
}


def run(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layer's weights run over x [T, B, in] (a ConvLSTM's [T, B, *step_shape]) from a zero state
    by the numpy cell of its kind."""
    return RUNNERS[weights.cell.name](weights, x)


def step_shape(weights: Weights) -> tuple[int, ...]:
    """The shape of one step [*] of the input x [T, B, *] the layer's numpy cell reads."""
    shape = STEP_SHAPES.get(weights.cell.name)
    return (weights.input_size,) if shape is None else shape(weights)
