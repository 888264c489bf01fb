"""The numpy baseline of every cell kind, by its name (schema.CELL_KINDS): what verify, and the tests,
run a layer's canonical weights through. Adding a cell kind adds its numpy module's entry here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import numpy_gru, numpy_lstm, schema

if TYPE_CHECKING:
    import numpy as np

    from .weights import Weights

# (h for every step [T, B, out], the final cell state [B, units]: an LSTM's c, a GRU's h), float64.
Runner = Callable[["Weights", "np.ndarray"], "tuple[np.ndarray, np.ndarray]"]

RUNNERS: dict[str, Runner] = {schema.LSTM.name: numpy_lstm.run_weights, schema.GRU.name: numpy_gru.run_weights}


def run(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layer's weights run over x [T, B, in] from a zero state by the numpy cell of its kind."""
    return RUNNERS[weights.cell.name](weights, x)
