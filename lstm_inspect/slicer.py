"""Gate slicing: where each gate's blocks sit inside a layer's stored tensors.

`plan(layer)` describes every block (gate, part, shape, the tensor and region it is cut
from) without reading anything; `cut(block, value)` takes the block out of the stored
tensor's value, `view(block, value)` shows it there without a copy. The canonical blocks
are those of ../shared/LAYOUTS.md: per gate `kernel` (input_size, units), `recurrent`
(recurrent_size, units), `bias` (units,), and where stored `recurrent_bias` and
`peephole`; per layer `projection` (units, proj).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .detect import LayerSpec
from .layouts import GATES, PEEPHOLE_GATES

if TYPE_CHECKING:  # numpy loads when a block is cut, not when blocks are listed
    import numpy as np

# tf_keras saving/legacy/hdf5_format.py _convert_rnn_weights: a Keras 2 CuDNNLSTM stores each
# input-kernel gate block in cuDNN memory order; Keras turns it into an LSTM block with
# `k.T.reshape(k.shape, order="F")`, and each recurrent block with `k.T`.
_TRANSFORMS = {
    "cudnn-input": lambda block: block.T.reshape(block.shape, order="F"),
    "transpose": lambda block: block.T,
}
_TRANSFORM_NOTES = {"cudnn-input": "cuDNN order: .T.reshape(order='F')", "transpose": "cuDNN order: .T"}


@dataclass(frozen=True)
class Block:
    """One gate's part of a layer (or the layer's projection), located in a stored tensor."""

    layer: str
    gate: str | None  # None for the layer's projection
    part: str  # kernel, recurrent, bias, recurrent_bias, peephole, projection
    shape: tuple[int, ...]
    tensor: str  # the stored tensor's name
    region: tuple[tuple[int, int], ...] | None  # per dimension (start, stop); None: the whole tensor
    transform: str | None = None

    @property
    def key(self) -> str:
        """The block's name in exports: "layer/gate/part" or "layer/projection"."""
        return f"{self.layer}/{self.part}" if self.gate is None else f"{self.layer}/{self.gate}/{self.part}"

    @property
    def source(self) -> str:
        """Where the block was cut from, e.g. "rnn/basic_lstm_cell/kernel[0:12, 128:192]"."""
        text = self.tensor
        if self.region is not None:
            text += "[" + ", ".join(f"{a}:{b}" for a, b in self.region) + "]"
        if self.transform:
            text += f" ({_TRANSFORM_NOTES[self.transform]})"
        return text


def plan(layer: LayerSpec) -> list[Block]:
    """Every block of `layer`, gate by gate in canonical order, then the projection."""
    blocks: list[Block] = []
    for gate in GATES:
        blocks.extend(_gate_blocks(layer, gate))
    projection = layer.tensors.get("projection/kernel")
    if projection is not None:
        blocks.append(Block(layer.name, None, "projection", projection.shape, projection.name, None))
    return blocks


def _gate_blocks(layer: LayerSpec, gate: str) -> list[Block]:
    layout, units, name, t = layer.layout, layer.units, layer.name, layer.tensors
    if layout.per_gate:
        letter = layout.letters[layout.column(gate)]
        return [
            Block(name, gate, "kernel", (layer.input_size, units), t[f"W_{letter}"].name, None),
            Block(name, gate, "recurrent", (layer.recurrent_size, units), t[f"U_{letter}"].name, None),
            Block(name, gate, "bias", (units,), t[f"b_{letter}"].name, None),
        ]
    cols = (layout.column(gate) * units, (layout.column(gate) + 1) * units)
    kernel = t["kernel"].name
    if layout.fused_kernel:
        rows = layer.input_size
        blocks = [
            Block(name, gate, "kernel", (rows, units), kernel, ((0, rows), cols)),
            Block(
                name,
                gate,
                "recurrent",
                (layer.recurrent_size, units),
                kernel,
                ((rows, rows + layer.recurrent_size), cols),
            ),
        ]
    else:
        cudnn = layout.cudnn_kernel
        blocks = [
            Block(
                name,
                gate,
                "kernel",
                (layer.input_size, units),
                kernel,
                ((0, layer.input_size), cols),
                "cudnn-input" if cudnn else None,
            ),
            Block(
                name,
                gate,
                "recurrent",
                (units, units),
                t["recurrent_kernel"].name,
                ((0, units), cols),
                "transpose" if cudnn else None,
            ),
        ]
    bias = t.get("bias")
    if bias is not None:
        blocks.append(Block(name, gate, "bias", (units,), bias.name, (cols,)))
        if layout.biases == 2:
            # cuDNN keeps the input-side biases first, then the recurrent-side ones (cudnn_recurrent.py).
            offset = 4 * units
            blocks.append(
                Block(name, gate, "recurrent_bias", (units,), bias.name, ((cols[0] + offset, cols[1] + offset),))
            )
    if gate in PEEPHOLE_GATES and f"w_{gate[0]}_diag" in t:
        blocks.append(Block(name, gate, "peephole", (units,), t[f"w_{gate[0]}_diag"].name, None))
    return blocks


def cut(block: Block, value: np.ndarray) -> np.ndarray:
    """The block's values, taken from the whole stored tensor `value` (a new, contiguous array)."""
    import numpy as np

    return np.ascontiguousarray(view(block, value))


def view(block: Block, value: np.ndarray) -> np.ndarray:
    """The block inside the whole stored tensor `value`, without a copy where numpy can make a view."""
    if block.region is not None:
        value = value[tuple(slice(a, b) for a, b in block.region)]
    if block.transform is not None:
        value = _TRANSFORMS[block.transform](value)
    return value
