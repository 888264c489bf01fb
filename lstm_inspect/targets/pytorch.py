"""PyTorch: a torch.nn.LSTM or torch.nn.GRU state_dict (torch/nn/modules/rnn.py); torch is imported
only to run it."""

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


def state_layout(state: Mapping[str, np.ndarray]) -> schema.Layout:
    """The layout whose shapes a state_dict fits: nn.LSTM's (4H rows) or nn.GRU's (3H rows)."""
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    for layout in TARGET.layouts:
        present = {role.key: shapes[role.key] for role in layout.roles if role.key in shapes}
        if schema.solve(layout, present) is not None:
            return layout
    raise ValueError(f"a state_dict of {sorted(shapes)} fits no torch.nn module this tool writes")


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """torch.nn.LSTM or torch.nn.GRU (the one the state_dict's shapes fit) built from its shapes,
    loaded with load_state_dict(strict=True) and run over x [T, B, in]; per direction (h in
    processing order, the final cell state: an LSTM's c, a GRU's h)."""
    import numpy as np
    import torch

    (state,) = arrays
    layout = state_layout(state)
    dtype = compute_dtype(state["weight_ih_l0"].dtype)
    hidden = state["weight_hh_l0"].shape[0] // len(layout.letters)
    projection = state.get("weight_hr_l0")
    bidirectional = "weight_ih_l0_reverse" in state
    options = {} if projection is None else {"proj_size": projection.shape[0]}
    module = getattr(torch.nn, layout.cell.name)(
        state["weight_ih_l0"].shape[1],
        hidden,
        bias="bias_ih_l0" in state,
        bidirectional=bidirectional,
        dtype=torch.float64 if dtype == np.float64 else torch.float32,
        **options,
    )
    module.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=dtype)) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        y, final = module(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)))
    # nn.LSTM returns (h_n, c_n), nn.GRU h_n: the state this project compares is the last of them.
    state_n = final[-1] if isinstance(final, tuple) else final
    y, c = y.numpy(), state_n.numpy()
    out = y.shape[2] // (2 if bidirectional else 1)
    results = [(y[:, :, :out], c[0])]
    if bidirectional:
        # nn.LSTM and nn.GRU align the reverse direction's outputs with the input steps: undo that.
        results.append((y[::-1, :, out:], c[1]))
    return results


LAYOUT = schema.LAYOUTS["pytorch"]

# torch/nn/modules/rnn.py LSTM and GRU: sigmoid gates, tanh cell, no peepholes; LSTM's optional
# proj_size < hidden_size; GRU applies its reset gate after the recurrent matmul (pytorch-gru fixes
# reset_after), so a reset-before GRU is refused.
TARGET = Target(
    "pytorch",
    LAYOUT,
    "torch.nn.{cell}",
    "a torch.nn.LSTM or torch.nn.GRU state_dict: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 "
    "[, weight_hr_l0], the backward half with _reverse",
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
    cell_layouts=(schema.LAYOUTS["pytorch-gru"],),
)
