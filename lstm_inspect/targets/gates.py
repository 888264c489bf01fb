"""The canonical gate blocks: `L/G/part`, `L/projection` and the 0-d `L/forget_bias` (and, when the
layer has them, 0-d `L/cell_clip` and `L/proj_clip`). What every other layout is packed from."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import schema
from ..weights import Weights
from .base import Target

if TYPE_CHECKING:
    import numpy as np

    from ..api import ExportUnit


def key(gate: str | None, part: str) -> str:
    """A block's key under its layer: "forget/kernel", or "projection" for a layer part."""
    return part if gate is None else f"{gate}/{part}"


@dataclass(frozen=True)
class GatesTarget(Target):
    def unit_arrays(
        self, unit: ExportUnit, runtime_forget_bias: float | None = None, gates: Collection[str] = ()
    ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """Each layer's blocks as views of its stored tensors (what the .npz writer streams from,
        with no copy of a whole block), the selected gates' only when `gates` names some."""
        import numpy as np

        for layer in unit.layers:
            out = {key(b.gate, b.part): layer.view(b) for b in layer.blocks() if not gates or b.gate in gates}
            out["forget_bias"] = np.array(layer.forget_bias, dtype=np.float32)
            for name, value in layer.clips().items():
                out[name] = np.array(value, dtype=np.float32)
            yield layer.name, out

    def arrays(self, directions: Sequence[Weights], runtime_forget_bias: float | None = None) -> dict[str, np.ndarray]:
        import numpy as np

        (weights,) = directions
        out = {key(gate, part): block for (gate, part), block in weights.blocks.items()}
        out["forget_bias"] = np.array(weights.forget_bias, dtype=np.float32)
        for name, value in weights.settings.items():
            out[name] = np.array(value, dtype=np.float32)
        return out

    def read(
        self, arrays: Mapping[str, np.ndarray], names: Sequence[str], runtime_forget_bias: float | None = None
    ) -> list[Weights]:
        (name,) = names
        cell = schema.LSTM
        blocks: dict[tuple[str | None, str], np.ndarray] = {}
        for gate in cell.gates:
            for part in schema.GATE_PARTS:
                if key(gate, part) in arrays:
                    blocks[(gate, part)] = arrays[key(gate, part)]
        for part in schema.LAYER_PARTS:
            if part in arrays:
                blocks[(None, part)] = arrays[part]
        forget_bias = arrays.get("forget_bias")
        settings = {s: float(arrays[s]) for s in ("cell_clip", "proj_clip") if s in arrays}
        return [Weights(name, blocks, cell, 0.0 if forget_bias is None else float(forget_bias), settings=settings)]


TARGET = GatesTarget(
    "gates",
    None,
    "the gate blocks",
    "the canonical gate blocks: L/G/kernel, L/G/recurrent, L/G/bias [, recurrent_bias, peephole], "
    "L/projection and the 0-d L/forget_bias",
    clips=frozenset({"cell_clip", "proj_clip"}),
)
