"""What an export target is: a framework's layout plus what it can express, as data.

Each target module (pytorch.py, onnx.py, ...) declares one `Target`; `targets/__init__.py` lists
them. A target packs canonical blocks into its layout (weights.normalize, then slicer.pack), reads
its own arrays back (slicer.unpack), says why it cannot compute a layer (`refusal`, from its
declared abilities), and may run its framework on its export for `verify` (framework imported
inside `run`, only when verify asks).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import activations, schema, slicer
from ..weights import Weights, normalize

if TYPE_CHECKING:
    import numpy as np

    from ..api import ExportUnit

# What a framework's run gives per direction: (h for every step [T, B, out] in processing order, final c).
Outputs = tuple["np.ndarray", "np.ndarray"]
Runner = Callable[[Sequence[Mapping[str, "np.ndarray"]], Sequence[Weights], "np.ndarray"], list[Outputs]]


@dataclass(frozen=True)
class Features:
    """What a layer needs of a target, read from the file without reading tensor data."""

    peepholes: bool
    projection_size: int | None
    units: int
    activation: str
    recurrent_activation: str
    clips: tuple[str, ...] = ()  # the clip settings the layer has ("cell_clip", "proj_clip")
    cell: str = "LSTM"  # the cell kind (schema.CELL_KINDS): a ConvLSTM2D needs a layout of its own


@dataclass(frozen=True)
class Target:
    """One `--layout`.

    layout:       the schema layout it writes (None: the canonical gate blocks).
    what:         how messages name what computes it ("torch.nn.LSTM").
    paired:       a bidirectional pair is one exported layer (nn.LSTM `_reverse` keys, ONNX's
                  direction axis); otherwise each half is exported on its own.
    unprefixed_single: an export of exactly one layer or pair has no "L/" key prefix, so that it
                  loads as it is (nn.LSTM.load_state_dict).
    peepholes, clips: whether it can express peepholes, and which clip settings.
    projection:   "any", "smaller" (only a projection smaller than the units; `projection_words`
                  says so in the framework's terms) or "none".
    activations, recurrent_activations: the cell and gate activations it computes (None: any).
    settable:     settings of the target's own cell that the user may choose (--target-forget-bias).
    check:        the name of verify's check that runs the framework ("torch").
    needs:        the modules `run` imports (verify says which are missing).
    run:          runs the framework on this target's arrays (one mapping per exported layer of a
                  unit) for verify: per direction (h in processing order, final c); None: no framework.
    cell_layouts: the layouts it writes layers of other cell kinds in (Keras' ConvLSTM2D); a target
                  holds only the cell kinds of its layouts (the canonical blocks, every kind).
    """

    name: str
    layout: schema.Layout | None
    what: str
    summary: str
    paired: bool = False
    unprefixed_single: bool = False
    peepholes: bool = True
    clips: frozenset[str] = frozenset()
    projection: str = "any"
    projection_words: str = ""
    activations: frozenset[str] | None = None
    recurrent_activations: frozenset[str] | None = None
    settable: frozenset[str] = frozenset()
    check: str | None = None
    needs: tuple[str, ...] = ()
    run: Runner | None = field(default=None, compare=False)
    cell_layouts: tuple[schema.Layout, ...] = ()

    @property
    def layouts(self) -> tuple[schema.Layout, ...]:
        """Every layout it writes, one per cell kind it holds."""
        return () if self.layout is None else (self.layout, *self.cell_layouts)

    def layout_for(self, cell: str) -> schema.Layout | None:
        """The layout a layer of this cell kind is written in, None when the target holds none."""
        return next((layout for layout in self.layouts if layout.cell.name == cell), None)

    @property
    def runtime_forget_bias(self) -> float:
        """What the target's cell adds to the forget gate at run time."""
        return self.layout.forget_bias if self.layout is not None else 0.0

    def refusal(self, features: Features) -> str | None:
        """Why this target cannot compute a layer with these features, or None when it can."""
        if self.layout is not None and self.layout_for(features.cell) is None:
            held = ", ".join(dict.fromkeys(layout.cell.name for layout in self.layouts))
            return f"--layout {self.name} holds {held} layers only, and this is a {features.cell}"
        if features.peepholes and not self.peepholes:
            return f"{self.what} has no peephole connections"
        size = features.projection_size
        if size is not None:
            if self.projection == "none":
                return f"{self.what} has no projection"
            if self.projection == "smaller" and size >= features.units:
                return f"{self.what} needs {self.projection_words} (projection {size}, units {features.units})"
        for role, name, allowed in (
            ("gates", features.recurrent_activation, self.recurrent_activations),
            ("cell", features.activation, self.activations),
        ):
            if allowed is None or name in allowed:
                continue
            if len(allowed) == 1:
                (only,) = allowed
                return f"{self.what} computes its {role} with {only} only; this layer uses {activations.shown(name)}"
            which = "recurrent activation" if role == "gates" else "activation"
            return f"{self.what} has no {which} {name!r}"
        for clip in features.clips:
            if clip not in self.clips:
                return f"{self.what} has no {clip}"
        return None

    def unit_arrays(
        self, unit: ExportUnit, runtime_forget_bias: float | None = None, gates: Collection[str] = ()
    ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """(exported layer name, its arrays) for one unit: the unit's name once when `paired`, each
        layer's otherwise. `gates` selects gates of the canonical layout only."""
        if self.paired:
            yield unit.name, self.arrays([layer.weights() for layer in unit.layers], runtime_forget_bias)
        else:
            for layer in unit.layers:
                yield layer.name, self.arrays([layer.weights()], runtime_forget_bias)

    def arrays(self, directions: Sequence[Weights], runtime_forget_bias: float | None = None) -> dict[str, np.ndarray]:
        """The target's arrays for one exported layer: one direction, or a pair when `paired`."""
        layout = self.layout_for(directions[0].cell.name)
        if layout is None:
            raise ValueError(f"--layout {self.name} holds no {directions[0].cell.name} layer")
        runtime = self.runtime_forget_bias if runtime_forget_bias is None else runtime_forget_bias
        normalized = [normalize(w, layout, runtime) for w in directions]
        return slicer.pack(layout, [w.blocks for w in normalized], normalized[0].sizes)

    def read(
        self, arrays: Mapping[str, np.ndarray], names: Sequence[str], runtime_forget_bias: float | None = None
    ) -> list[Weights]:
        """The canonical weights of the directions held in one exported layer's arrays (keys without
        the "L/" prefix), named `names`; the inverse of `arrays`."""
        assert self.layout is not None
        runtime = self.runtime_forget_bias if runtime_forget_bias is None else runtime_forget_bias
        # The layout whose roles the arrays fit (a ConvLSTM2D's kernels have two more axes than an LSTM's).
        shapes = {key: tuple(value.shape) for key, value in arrays.items()}
        layout = next(
            (
                layout
                for layout in self.layouts
                if schema.solve(layout, {role.key: shapes[role.key] for role in layout.roles if role.key in shapes})
            ),
            self.layout,
        )
        found = slicer.unpack(layout, arrays)
        return [Weights(name, dict(blocks), layout.cell, forget_bias=runtime) for name, blocks in zip(names, found)]
