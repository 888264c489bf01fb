"""A plain numpy LSTM over the canonical gate blocks: the equations of ../shared/LAYOUTS.md.

It is the yardstick: tests run it over the split blocks and compare with the framework's
own outputs, so it must follow those equations and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .activations import numpy_function

if TYPE_CHECKING:
    from .weights import Weights


def float64_gates(gates: Mapping[str, object]) -> dict[str, dict[str, np.ndarray]]:
    """Per gate, its blocks by part in float64: Layer.gates() gives GateBlocks, which list their
    parts through parts(); plain dicts pass as they are."""
    found = {}
    for name, blocks in gates.items():
        parts = getattr(blocks, "parts", None)
        by_part = parts() if callable(parts) else blocks
        found[name] = {part: np.asarray(v, dtype=np.float64) for part, v in by_part.items()}  # type: ignore[union-attr]
    return found


def run_lstm(
    gates: Mapping[str, Mapping[str, np.ndarray]],
    x: np.ndarray,
    forget_bias: float = 0.0,
    projection: np.ndarray | None = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    cell_clip: float | None = None,
    proj_clip: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run one LSTM layer over x [time, batch, input] from zero state.

    gates: per canonical gate ("input", "forget", "cell", "output") its blocks "kernel",
    "recurrent", "bias", and optionally "recurrent_bias" and "peephole" (a dict, or the
    GateBlocks of Layer.gates()).
    cell_clip, proj_clip: TF1 LSTMCell's clips, clip_by_value(c, -cell_clip, cell_clip) on the new
    cell state before the output gate reads it, and the same on the projected output
    (rnn_cell_impl.py LSTMCell.call; LSTMBlockCell clips c alike, lstm_ops.cc).
    Returns (h for every step [time, batch, out], final cell state [batch, units]), float64.
    """
    act, rec_act = numpy_function(activation), numpy_function(recurrent_activation)
    g = float64_gates(gates)
    units = g["input"]["kernel"].shape[1]
    batch = x.shape[1]
    out_size = projection.shape[1] if projection is not None else units
    h = np.zeros((batch, out_size))
    c = np.zeros((batch, units))
    outputs = []
    peep = {name: g[name].get("peephole") for name in g}

    def pre(name: str, xt: np.ndarray, h: np.ndarray) -> np.ndarray:
        blocks = g[name]
        z = xt @ blocks["kernel"] + h @ blocks["recurrent"]
        if "bias" in blocks:
            z = z + blocks["bias"]
        if "recurrent_bias" in blocks:
            z = z + blocks["recurrent_bias"]
        return z

    # Weights with NaN, inf or values near float64's limits (Layer warns about those) make NaN or
    # inf outputs, which fail every comparison: numpy's warnings on the way would add nothing.
    with np.errstate(over="ignore", invalid="ignore"):
        for xt in np.asarray(x, dtype=np.float64):
            zi, zf, zc, zo = (pre(name, xt, h) for name in ("input", "forget", "cell", "output"))
            if peep["input"] is not None:
                zi = zi + peep["input"] * c
            zf = zf + forget_bias
            if peep["forget"] is not None:
                zf = zf + peep["forget"] * c
            c = rec_act(zf) * c + rec_act(zi) * act(zc)
            if cell_clip is not None:
                c = np.clip(c, -cell_clip, cell_clip)
            if peep["output"] is not None:
                zo = zo + peep["output"] * c
            h = rec_act(zo) * act(c)
            if projection is not None:
                h = h @ np.asarray(projection, dtype=np.float64)
                if proj_clip is not None:
                    h = np.clip(h, -proj_clip, proj_clip)
            outputs.append(h)
    return np.stack(outputs), c


def run_weights(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """run_lstm over a layer's canonical weights, with what its cell computes."""
    return run_lstm(
        weights.gates(),
        x,
        forget_bias=weights.forget_bias,
        projection=weights.projection,
        activation=weights.activation,
        recurrent_activation=weights.recurrent_activation,
        cell_clip=weights.settings.get("cell_clip"),
        proj_clip=weights.settings.get("proj_clip"),
    )
