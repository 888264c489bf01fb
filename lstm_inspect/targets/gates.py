"""The canonical gate blocks: `L/G/part`, `L/projection` and the 0-d `L/forget_bias` (and, when the
layer has them, 0-d `L/cell_clip` and `L/proj_clip`; for a GRU, which has no forget gate, the 0-d
`L/reset_after` instead of `L/forget_bias`). What every other layout is packed from."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from .. import schema
from ..records import frozen_record
from ..weights import Weights
from .base import Features, Target

if TYPE_CHECKING:
    import numpy as np

    from ..api import ExportUnit


# The 0-d settings an export may hold beside a layer's blocks (the clips of a TF1 LSTMCell).
CLIP_SETTINGS = ("cell_clip", "proj_clip")


def key(gate: str | None, part: str) -> str:
    """A block's key under its layer: "forget/kernel", or "projection" for a layer part."""
    return part if gate is None else f"{gate}/{part}"


def setting_arrays(cell: schema.CellKind, forget_bias: float, settings: Mapping[str, float]) -> dict[str, np.ndarray]:
    """The 0-d settings stored beside a layer's blocks: its runtime forget bias when its cell kind
    has a forget gate, its clips and variants (a GRU's reset_after, as 1.0 or 0.0)."""
    import numpy as np

    out = {} if cell.forget_gate is None else {"forget_bias": np.array(forget_bias, dtype=np.float32)}
    out.update({name: np.array(float(value), dtype=np.float32) for name, value in settings.items()})
    return out


@frozen_record
class GatesTarget(Target):
    def unit_arrays(
        self, unit: ExportUnit, runtime_forget_bias: float | None = None, gates: Collection[str] = ()
    ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """Each layer's blocks as views of its stored tensors (what the .npz writer streams from,
        with no copy of a whole block), the selected gates' only when `gates` names some."""
        for layer in unit.layers:
            out = {key(b.gate, b.part): layer.view(b) for b in layer.blocks() if not gates or b.gate in gates}
            out.update(setting_arrays(layer.layout.cell, layer.forget_bias, {**layer.clips(), **layer.variants()}))
            yield layer.name, out

    def arrays(self, directions: Sequence[Weights], runtime_forget_bias: float | None = None) -> dict[str, np.ndarray]:
        (weights,) = directions
        out = {key(gate, part): block for (gate, part), block in weights.blocks.items()}
        out.update(setting_arrays(weights.cell, weights.forget_bias, weights.settings))
        return out

    def read(
        self,
        arrays: Mapping[str, np.ndarray],
        names: Sequence[str],
        runtime_forget_bias: float | None = None,
        features: Features | None = None,
    ) -> list[Weights]:
        (name,) = names
        # The cell kind whose gates name the blocks.
        cell = next(
            (kind for kind in schema.CELL_KINDS.values() if any(key(g, "kernel") in arrays for g in kind.gates)),
            schema.LSTM,
        )
        blocks: dict[tuple[str | None, str], np.ndarray] = {}
        for gate in cell.gates:
            for part in schema.GATE_PARTS:
                if key(gate, part) in arrays:
                    blocks[(gate, part)] = arrays[key(gate, part)]
        for part in schema.LAYER_PARTS:
            if part in arrays:
                blocks[(None, part)] = arrays[part]
        forget_bias = arrays.get("forget_bias")
        settings = {s: float(arrays[s]) for s in (*CLIP_SETTINGS, *cell.variants) if s in arrays}
        return [Weights(name, blocks, cell, 0.0 if forget_bias is None else float(forget_bias), settings=settings)]


TARGET = GatesTarget(
    "gates",
    None,
    "the gate blocks",
    "the canonical gate blocks: L/G/kernel, L/G/recurrent, L/G/bias [, recurrent_bias, peephole], "
    "L/projection and the 0-d L/forget_bias (a GRU's L/reset_after)",
    clips=frozenset({"cell_clip", "proj_clip"}),
)
