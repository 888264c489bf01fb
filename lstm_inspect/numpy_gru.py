"""A plain numpy GRU over the canonical gate blocks: the equations of ../shared/LAYOUTS.md ("GRU
layouts") and schema.GRU, in both of its variants.

Like numpy_lstm.py it is the yardstick: tests run it over the split blocks and compare with the
framework's own outputs, so it must follow those equations and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .activations import numpy_function
from .numpy_lstm import float64_gates

if TYPE_CHECKING:
    from .weights import Weights


def run_gru(
    gates: Mapping[str, Mapping[str, np.ndarray]],
    x: np.ndarray,
    reset_after: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
) -> tuple[np.ndarray, np.ndarray]:
    """Run one GRU layer over x [time, batch, input] from zero state.

    gates: per canonical gate ("reset", "update", "candidate") its blocks "kernel", "recurrent",
    and optionally "bias" and "recurrent_bias" (a dict, or the GateBlocks of Layer.gates()).
    reset_after: the reset gate multiplies the candidate's recurrent matmul and its recurrent bias,
    n = act(x·Wx_n + b_n + r∘(h·Wh_n + bh_n)) (Keras reset_after=True, cuDNN, PyTorch, ONNX
    linear_before_reset=1); else the state before it, n = act(x·Wx_n + (r∘h)·Wh_n + b_n [+ bh_n])
    (TF1 GRUCell, Keras reset_after=False, ONNX linear_before_reset=0, which adds Rbh there).
    Returns (h for every step [time, batch, units], the final state [batch, units]), float64.
    """
    act, rec_act = numpy_function(activation), numpy_function(recurrent_activation)
    g = float64_gates(gates)
    units = g["reset"]["kernel"].shape[1]
    h = np.zeros((x.shape[1], units))
    zero = np.zeros(units)
    outputs = []

    def bias(name: str, part: str) -> np.ndarray:
        return g[name].get(part, zero)

    # Weights with NaN, inf or values near float64's limits (Layer warns about those) make NaN or
    # inf outputs, which fail every comparison: numpy's warnings on the way would add nothing.
    with np.errstate(over="ignore", invalid="ignore"):
        for xt in np.asarray(x, dtype=np.float64):
            r, z = (
                rec_act(
                    xt @ g[name]["kernel"]
                    + h @ g[name]["recurrent"]
                    + bias(name, "bias")
                    + bias(name, "recurrent_bias")
                )
                for name in ("reset", "update")
            )
            candidate = g["candidate"]
            inner = xt @ candidate["kernel"] + bias("candidate", "bias")
            if reset_after:
                n = act(inner + r * (h @ candidate["recurrent"] + bias("candidate", "recurrent_bias")))
            else:
                n = act(inner + (r * h) @ candidate["recurrent"] + bias("candidate", "recurrent_bias"))
            h = z * h + (1 - z) * n
            outputs.append(h)
    return np.stack(outputs), h


def run_weights(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """run_gru over a layer's canonical weights, with what its cell computes."""
    return run_gru(
        weights.gates(),
        x,
        reset_after=weights.variants.get("reset_after", True),
        activation=weights.activation,
        recurrent_activation=weights.recurrent_activation,
    )
