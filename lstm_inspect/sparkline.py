"""Per-unit weight norms, and split's one-line picture of them on a terminal (a sparkline per gate).

`unit_norms` is the norm of each unit's weights, which plot's norm panel draws too. On a terminal,
split shows below each layer's table, per gate, the norms of its units in block characters from
lowest (▁) to highest (█), the gate's own range written beside them: a dead unit or one far
larger than the rest stands out where the table gives only the block's statistics. Never on a pipe
unless asked for (`--sparkline`): scripts read the tables.

numpy is imported in the functions that compute, not here.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from .records import record
from .terminal import safe

if TYPE_CHECKING:
    import numpy as np

    from .results import LayerSplit, SplitStream

# Lowest to highest: U+2581..U+2588.
SPARKS = "▁▂▃▄▅▆▇█"
# What a sparkline never goes below or beyond, in characters (a terminal narrower than the
# shortest still gets it whole; a line with no terminal to fit stays readable).
MIN_WIDTH, MAX_WIDTH = 8, 100
# The parts whose columns are a gate's units: a unit's weights are its column in each.
WEIGHT_PARTS = ("kernel", "recurrent")


def unit_norms(*blocks: np.ndarray) -> np.ndarray:
    """The L2 norm of each unit's weights over `blocks`, each with the units on its last axis (a
    ConvLSTM's kernel positions and inputs before them), in float64."""
    import numpy as np

    total = None
    for block in blocks:
        matrix = block if block.ndim == 2 else block.reshape(-1, block.shape[-1])
        # einsum squares and sums each column without a squared copy of the block.
        squares = np.einsum("ij,ij->j", matrix, matrix, dtype=np.float64)
        total = squares if total is None else total + squares
    if total is None:
        raise ValueError("unit_norms needs a block")
    return np.sqrt(total)


def sparkline(values: Sequence[float], width: int) -> str:
    """`values` in at most `width` block characters from the lowest (▁) to the highest (█): each
    character the largest of the values it stands for (so that one large unit shows), spread
    evenly; a value that is not finite is a space, and equal values are all ▄."""
    count = len(values)
    width = max(1, min(width, count))
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    characters = []
    for index in range(width):
        chunk = values[index * count // width : (index + 1) * count // width]
        shown = [v for v in chunk if v == v and abs(v) != float("inf")]
        if len(shown) < len(chunk) or not shown:
            characters.append(" ")
        elif high == low:
            characters.append(SPARKS[len(SPARKS) // 2 - 1])
        else:
            level = (max(shown) - low) / (high - low)
            characters.append(SPARKS[min(len(SPARKS) - 1, int(level * len(SPARKS)))])
    return "".join(characters)


@record
class _GateNorms:
    gate: str
    parts: list[str]
    units: int
    norms: list[float]


def _range(norms: Sequence[float]) -> str:
    finite = [v for v in norms if v == v and abs(v) != float("inf")]
    return f"{min(finite):.4g}..{max(finite):.4g}" if finite else "not finite"


def norm_lines(gates: Sequence[_GateNorms], width: int) -> list[str]:
    """The sparkline lines of one layer, in `width` columns: a heading, then one line per gate."""
    if not gates:
        return []
    parts = " + ".join(dict.fromkeys(p for g in gates for p in g.parts))
    units = max(g.units for g in gates)
    label = max(len(safe(g.gate)) for g in gates)
    ranges = [_range(g.norms) for g in gates]
    room = width - 4 - label - 2 - 2 - max(len(r) for r in ranges)
    characters = max(MIN_WIDTH, min(MAX_WIDTH, units, room))
    per = -(-units // characters)
    scale = "a character per unit" if per == 1 else f"up to {per} units a character, the largest shown"
    heading = f"  per-unit norm ({parts}), ▁ lowest to █ highest of each gate ({units:,} units, {scale}):"
    lines = textwrap.wrap(heading, width, subsequent_indent="      ", break_on_hyphens=False) or [heading]
    for gate, shown in zip(gates, ranges):
        lines.append(f"    {safe(gate.gate):<{label}}  {sparkline(gate.norms, characters)}  {shown}")
    return lines


def _layer_norms(layer: LayerSplit) -> list[_GateNorms]:
    """Per gate, the norms of its units over the weight blocks split shows (their arrays, which the
    stream holds while the layer is taken)."""
    by_gate: dict[str, list[tuple[str, np.ndarray]]] = {}
    for block in layer.blocks:
        if block.gate is not None and block.part in WEIGHT_PARTS and block.values is not None:
            by_gate.setdefault(block.gate, []).append((block.part, block.values))  # type: ignore[arg-type]
    return [
        _GateNorms(
            gate, [p for p, _ in blocks], int(blocks[0][1].shape[-1]), unit_norms(*(v for _, v in blocks)).tolist()
        )
        for gate, blocks in by_gate.items()
    ]


def with_sparklines(stream: SplitStream) -> tuple[SplitStream, Callable[[LayerSplit, int], list[str]]]:
    """split's stream, taken with its blocks' arrays (`values`), as one without them, and what to
    print below each of its layers: the per-gate sparklines of the norms computed from those
    arrays as each layer is taken, before the stream releases its tensors."""
    lines: dict[int, list[_GateNorms]] = {}

    def layers() -> Iterator[LayerSplit]:
        for layer in stream.layers:
            lines[id(layer)] = _layer_norms(layer)
            for block in layer.blocks:
                block.values = None  # the table only: split --values is not asked for
            yield layer

    def below(layer: LayerSplit, width: int) -> list[str]:
        return norm_lines(lines.pop(id(layer), []), width)

    return replace(stream, layers=layers()), below
