"""What an export target is: a framework's layout plus what it can express, as data.

Each target module (pytorch.py, onnx.py, ...) declares one `Target`; `targets/__init__.py` lists
them. A target packs canonical blocks into its layout (weights.normalize, then slicer.packing: each
array made a piece at a time from views of the stored tensors, or whole), reads
its own arrays back (slicer.unpack), says why it cannot compute a layer (`refusal`, from its
declared abilities), and may run its framework on its export for `verify` (framework imported
inside `run`, only when verify asks).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING

from .. import activations, schema, slicer
from ..records import frozen_record
from ..weights import Weights, normalize

if TYPE_CHECKING:
    import numpy as np

    from ..api import ExportUnit

    # An exported array: whole, or a slicer.Packed made a piece at a time (what writers/npz.py streams).
    Streamable = np.ndarray | slicer.Packed

# What a framework's run gives per direction: (h for every step [T, B, out] in processing order, final c).
Outputs = tuple["np.ndarray", "np.ndarray"]
Runner = Callable[[Sequence[Mapping[str, "np.ndarray"]], Sequence[Weights], "np.ndarray"], list[Outputs]]


@frozen_record
class Features:
    """What a layer needs of a target, read from the file without reading tensor data."""

    peepholes: bool
    projection_size: int | None
    units: int
    activation: str
    recurrent_activation: str
    clips: tuple[str, ...] = ()  # the clip settings the layer has ("cell_clip", "proj_clip")
    cell: str = "LSTM"  # the cell kind (schema.CELL_KINDS): a ConvLSTM2D needs a layout of its own
    variants: tuple[tuple[str, bool], ...] = ()  # the cell kind's variant settings: (("reset_after", True),)


@frozen_record
class Target:
    """One `--layout`.

    layout:       the schema layout it writes (None: the canonical gate blocks).
    cell_layouts: the layouts it writes layers of other cell kinds (or variants) in: a layer goes
                  into the first of `layouts` that holds it (schema.Layout.holds).
    what:         how messages name what computes it, {cell} the layer's cell kind ("torch.nn.{cell}").
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
    prepare:      called once before verify's first unit when it will run the framework: one that
                  runs in a worker process starts it then, so that its import overlaps verify's work.
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
    prepare: Callable[[], None] | None = field(default=None, compare=False)

    @property
    def layouts(self) -> tuple[schema.Layout, ...]:
        """Every layout it writes, one for each cell kind and variant it can hold."""
        return () if self.layout is None else (self.layout, *self.cell_layouts)

    def layout_for(self, cell: schema.CellKind, variants: Mapping[str, object]) -> schema.Layout | None:
        """The layout a layer of `cell` with these variant settings is written in, or None."""
        return next((layout for layout in self.layouts if layout.holds(cell, variants)), None)

    def what_for(self, cell: str) -> str:
        """How messages name what computes a layer of this cell kind: "torch.nn.GRU"."""
        return self.what.format(cell=cell)

    @property
    def runtime_forget_bias(self) -> float:
        """What the target's cell adds to the forget gate at run time."""
        return self.layout.forget_bias if self.layout is not None else 0.0

    def refusal(self, features: Features) -> str | None:
        """Why this target cannot compute a layer with these features, or None when it can."""
        what = self.what_for(features.cell)
        reason = self._layout_refusal(features, what)
        if reason is not None:
            return reason
        if features.peepholes and not self.peepholes:
            return f"{what} has no peephole connections"
        size = features.projection_size
        if size is not None:
            if self.projection == "none":
                return f"{what} has no projection"
            if self.projection == "smaller" and size >= features.units:
                return f"{what} needs {self.projection_words} (projection {size}, units {features.units})"
        for role, name, allowed in (
            ("gates", features.recurrent_activation, self.recurrent_activations),
            ("cell", features.activation, self.activations),
        ):
            if allowed is None or name in allowed:
                continue
            if len(allowed) == 1:
                (only,) = allowed
                return f"{what} computes its {role} with {only} only; this layer uses {activations.shown(name)}"
            which = "recurrent activation" if role == "gates" else "activation"
            return f"{what} has no {which} {name!r}"
        for clip in features.clips:
            if clip not in self.clips:
                return f"{what} has no {clip}"
        return None

    def _layout_refusal(self, features: Features, what: str) -> str | None:
        """Why none of the target's layouts holds a layer of this cell kind and variant, or None."""
        if self.layout is None:
            return None  # the canonical blocks hold every cell kind
        cell, variants = schema.CELL_KINDS[features.cell], dict(features.variants)
        kinds = [layout for layout in self.layouts if layout.cell.name == cell.name]
        if not kinds:
            return f"--layout {self.name} holds no {cell.name} layers"
        if any(layout.holds(cell, variants) for layout in kinds):
            return None
        for name in cell.variants:
            fixed = kinds[0].fixed.get(name)
            if fixed is not None and bool(fixed.value) != bool(variants.get(name)):
                value = bool(variants.get(name))
                return (
                    f"{what} {schema.variant_words(name, fixed.value)}; this layer "
                    f"{schema.variant_words(name, value)} ({name}={value})"
                )
        return f"{what} cannot hold this {cell.name} layer"

    def unit_arrays(
        self, unit: ExportUnit, runtime_forget_bias: float | None = None, gates: Collection[str] = ()
    ) -> Iterator[tuple[str, Mapping[str, Streamable]]]:
        """(exported layer name, its arrays) for one unit: the unit's name once when `paired`, each
        layer's otherwise. `gates` selects gates of the canonical layout only. The arrays are made
        a piece at a time from views of the stored tensors (slicer.Packed), valid until the
        unit's layers are released."""
        if self.paired:
            yield unit.name, self.packing([layer.weights(views=True) for layer in unit.layers], runtime_forget_bias)
        else:
            for layer in unit.layers:
                yield layer.name, self.packing([layer.weights(views=True)], runtime_forget_bias)

    def weights_layout(self, weights: Weights) -> schema.Layout:
        """The layout these weights are written in (a layer the target refuses has none)."""
        layout = self.layout_for(weights.cell, weights.variants)
        if layout is None:
            raise ValueError(f"--layout {self.name} holds no layer like {weights.name}")
        return layout

    def arrays(self, directions: Sequence[Weights], runtime_forget_bias: float | None = None) -> dict[str, np.ndarray]:
        """The target's arrays for one exported layer: one direction, or a pair when `paired`."""
        import numpy as np

        return {key: np.asarray(packed) for key, packed in self.packing(directions, runtime_forget_bias).items()}

    def packing(self, directions: Sequence[Weights], runtime_forget_bias: float | None = None) -> dict[str, Streamable]:
        """The same arrays, each as a slicer.Packed that makes its values a piece at a time (or,
        for a small array of the target's own, an array)."""
        layout = self.weights_layout(directions[0])
        runtime = self.runtime_forget_bias if runtime_forget_bias is None else runtime_forget_bias
        normalized = [normalize(w, layout, runtime) for w in directions]
        return dict(slicer.packing(layout, [w.blocks for w in normalized], normalized[0].sizes))

    def read(
        self,
        arrays: Mapping[str, np.ndarray],
        names: Sequence[str],
        runtime_forget_bias: float | None = None,
        features: Features | None = None,
    ) -> list[Weights]:
        """The canonical weights of the directions held in one exported layer's arrays (keys without
        the "L/" prefix), named `names`; the inverse of `arrays`. `features`: those of the layer the
        arrays were exported from, which say the cell kind and its variants (default: an LSTM)."""
        assert self.layout is not None
        runtime = self.runtime_forget_bias if runtime_forget_bias is None else runtime_forget_bias
        cell = schema.CELL_KINDS[features.cell] if features is not None else self.layout.cell
        variants: dict[str, float] = dict(features.variants) if features is not None else {}
        layout = self.layout_for(cell, variants) or self.layout
        # What the layout fixes is what the arrays compute, whatever the source did.
        variants.update({name: bool(s.value) for name, s in layout.fixed.items() if name in cell.variants})
        found = slicer.unpack(layout, arrays)
        return [
            Weights(name, dict(blocks), layout.cell, forget_bias=runtime, settings=dict(variants))
            for name, blocks in zip(names, found)
        ]
