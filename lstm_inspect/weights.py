"""One direction of one layer as canonical blocks, and the steps that make it what a target holds.

A conversion is three small, pure steps, each driven by the target layout's declaration: merge a
recurrent-side bias into the input-side one when the target keeps one bias (or give a missing side
zeros when it keeps two), move the runtime forget bias into the forget gate's input-side bias when
the target's cell adds another one, and pack the blocks (slicer.pack).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, replace
from typing import TYPE_CHECKING

from . import schema
from .records import record

if TYPE_CHECKING:
    import numpy as np

Blocks = dict[tuple[str | None, str], "np.ndarray"]  # (gate, or None for a layer part; part) -> block


@record
class Weights:
    """One direction of one layer as canonical blocks (../shared/LAYOUTS.md), with what its cell
    computes: the runtime forget bias it adds, its activations, its clips and variants (a GRU's
    reset_after) in `settings`."""

    name: str
    blocks: Blocks
    cell: schema.CellKind = schema.LSTM
    forget_bias: float = 0.0
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    settings: dict[str, float] = field(default_factory=dict)  # cell_clip, proj_clip, reset_after, ... when set
    # What a ConvLSTM's convolutions do (schema.CONV_SETTINGS: strides, padding, ...); empty for other cells.
    conv: dict[str, object] = field(default_factory=dict)

    def block(self, gate: str | None, part: str) -> np.ndarray | None:
        return self.blocks.get((gate, part))

    @property
    def kernel(self) -> np.ndarray:
        return self.blocks[(self.cell.gates[0], "kernel")]

    @property
    def projection(self) -> np.ndarray | None:
        return self.blocks.get((None, "projection"))

    @property
    def input_size(self) -> int:
        return int(self.kernel.shape[-2])

    @property
    def units(self) -> int:
        return int(self.kernel.shape[-1])

    @property
    def dtype(self) -> np.dtype:
        return self.kernel.dtype

    @property
    def sizes(self) -> dict[str, int]:
        """The layer's sizes, read from its blocks."""
        sizes = {"input": self.input_size, "units": self.units}
        sizes["recurrent"] = int(self.blocks[(self.cell.gates[0], "recurrent")].shape[-2])
        # A ConvLSTM's kernel blocks lead with its spatial sizes (schema.CANONICAL_AXES).
        sizes.update(zip(schema.SPATIAL_SIZES, (int(d) for d in self.kernel.shape[:-2])))
        if self.projection is not None:
            sizes["projection"] = int(self.projection.shape[1])
        return sizes

    @property
    def peepholes(self) -> bool:
        return self.has("peephole")

    def has(self, part: str) -> bool:
        return any(p == part for _, p in self.blocks)

    @property
    def variants(self) -> dict[str, bool]:
        """The cell kind's variant settings the weights carry (a GRU's reset_after)."""
        return {name: bool(self.settings[name]) for name in self.cell.variants if name in self.settings}

    def gates(self) -> dict[str, dict[str, np.ndarray]]:
        """Per canonical gate, its blocks by part (what numpy_lstm.run_lstm and numpy_gru.run_gru take)."""
        return {gate: {p: v for (g, p), v in self.blocks.items() if g == gate} for gate in self.cell.gates}


def merge_biases(weights: Weights) -> Weights:
    """The same layer with one bias per gate: a recurrent-side bias added into the input-side one.
    Never one that is no summand (a reset-after GRU's candidate): targets refuse such layers."""
    if not weights.has("recurrent_bias"):
        return weights
    blocks = {key: value for key, value in weights.blocks.items() if key[1] != "recurrent_bias"}
    for (gate, part), recurrent_bias in weights.blocks.items():
        if part == "recurrent_bias":
            if gate is not None and not weights.cell.adds_recurrent_bias(gate, weights.settings):
                raise ValueError(f"{weights.name}: the {gate} gate's recurrent bias cannot join its input-side bias")
            bias = blocks.get((gate, "bias"))
            blocks[(gate, "bias")] = recurrent_bias.copy() if bias is None else bias + recurrent_bias
    return replace(weights, blocks=blocks)


def fill_biases(weights: Weights, parts: tuple[str, ...]) -> Weights:
    """The same layer with every bias part in `parts` for every gate, zeros where it had none, once
    it has any bias at all (nn.LSTM keeps both biases or none; the ONNX B input holds both)."""
    if not any(weights.has(part) for part in schema.BIAS_PARTS):
        return weights
    import numpy as np

    blocks = dict(weights.blocks)
    for gate in weights.cell.gates:
        for part in parts:
            blocks.setdefault((gate, part), np.zeros(weights.units, dtype=weights.dtype))
    return replace(weights, blocks=blocks)


def fold_forget_bias(weights: Weights, runtime: float) -> Weights:
    """The same layer for a cell that adds `runtime` to its forget gate: the difference from the
    source's forget bias moves into the forget gate's input-side bias, in its dtype."""
    gate = weights.cell.forget_gate
    delta = weights.forget_bias - runtime
    if delta == 0 or gate is None:
        return replace(weights, forget_bias=float(runtime))
    import numpy as np

    bias = weights.blocks.get((gate, "bias"))
    if bias is None:
        bias = np.zeros(weights.units, dtype=weights.dtype)
    with np.errstate(over="ignore"):
        folded = bias + np.asarray(delta, dtype=bias.dtype)
    if not np.isfinite(folded).all() and np.isfinite(bias).all():
        from .errors import UnsupportedFormat

        raise UnsupportedFormat(
            f"{weights.name}: a forget bias of {delta:+g} moved into its {bias.dtype.name} forget-gate bias "
            f"overflows {bias.dtype.name}; choose a target forget bias nearer {weights.forget_bias:g}"
        )
    blocks = {**weights.blocks, (gate, "bias"): folded}
    return replace(weights, blocks=blocks, forget_bias=float(runtime))


def normalize(weights: Weights, layout: schema.Layout, runtime_forget_bias: float) -> Weights:
    """`weights` as a layer of `layout` holds them: its bias parts, its runtime forget bias."""
    if layout.bias_parts == ("bias",):
        weights = merge_biases(weights)
    weights = fold_forget_bias(weights, runtime_forget_bias)
    if len(layout.bias_parts) > 1:
        weights = fill_biases(weights, layout.bias_parts)
    return weights


def from_blocks(
    name: str,
    blocks: Mapping[tuple[str | None, str], np.ndarray],
    forget_bias: float,
    cell: schema.CellKind = schema.LSTM,
) -> Weights:
    return Weights(name, dict(blocks), cell, forget_bias=float(forget_bias))
