"""PyTorch: a torch.nn.LSTM state_dict (torch/nn/modules/rnn.py); torch is imported only to run it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import schema
from .base import Target

if TYPE_CHECKING:
    import numpy as np

    from ..weights import Weights
    from .base import Outputs


def compute_dtype(dtype: np.dtype) -> type:
    """float64 weights run in float64, everything else in float32 (what the frameworks compute in)."""
    import numpy as np

    return np.float64 if dtype == np.float64 else np.float32


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """torch.nn.LSTM built from a state_dict's shapes, loaded with load_state_dict(strict=True) and
    run over x [T, B, in]; per direction (h in processing order, final c)."""
    import numpy as np
    import torch

    (state,) = arrays
    dtype = compute_dtype(state["weight_ih_l0"].dtype)
    hidden = state["weight_hh_l0"].shape[0] // len(LAYOUT.letters)
    projection = state.get("weight_hr_l0")
    bidirectional = "weight_ih_l0_reverse" in state
    lstm = torch.nn.LSTM(
        state["weight_ih_l0"].shape[1],
        hidden,
        bias="bias_ih_l0" in state,
        proj_size=0 if projection is None else projection.shape[0],
        bidirectional=bidirectional,
        dtype=torch.float64 if dtype == np.float64 else torch.float32,
    )
    lstm.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=dtype)) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        y, (_, c) = lstm(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)))
    y, c = y.numpy(), c.numpy()
    out = y.shape[2] // (2 if bidirectional else 1)
    results = [(y[:, :, :out], c[0])]
    if bidirectional:
        # nn.LSTM aligns the reverse direction's outputs with the input steps: undo that.
        results.append((y[::-1, :, out:], c[1]))
    return results


LAYOUT = schema.LAYOUTS["pytorch"]

# torch/nn/modules/rnn.py LSTM: sigmoid gates, tanh cell, optional proj_size < hidden_size, no peepholes.
TARGET = Target(
    "pytorch",
    LAYOUT,
    "torch.nn.LSTM",
    "a torch.nn.LSTM state_dict: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 [, weight_hr_l0], "
    "the backward half with _reverse",
    paired=True,
    unprefixed_single=True,
    peepholes=False,
    projection="smaller",
    projection_words="proj_size < hidden_size",
    activations=frozenset({"tanh"}),
    recurrent_activations=frozenset({"sigmoid"}),
    check="torch",
    needs=("torch",),
    run=run,
)
