"""`diff`: two files compared layer by layer, on their canonical gate blocks.

Layers are paired by hand (`--map`), then by name, then in file order where their sizes agree.
Each side is read as canonical blocks (slicer), so gate order, fused kernels, transposes and
where each framework keeps its biases never show as differences. What is compared is what the cells
compute with:

- the effective forget-gate bias, stored bias plus the runtime forget bias (weights.fold_forget_bias):
  a forget bias that one side adds at run time and the other keeps in its bias is no change, and
  is reported as such;
- one bias per gate when only one side keeps an input-side and a recurrent-side bias (cuDNN,
  nn.LSTM): their sum (weights.merge_biases), which is what the cell adds;
- zeros for a bias that one side does not have (a layer built without bias).

One pair of layers is in memory at a time: each is released before the next pair is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, field, replace
from typing import TYPE_CHECKING

from .errors import UnknownName
from .records import record
from .schema import BIAS_PARTS, CANONICAL_AXES, Setting
from .weights import Weights, fold_forget_bias, from_blocks, merge_biases

if TYPE_CHECKING:
    import numpy as np

    from .api import Checkpoint, Layer
    from .detect import LayerSpec

# The units whose weights changed most, reported per block.
TOP_UNITS = 3
# Elements of a block compared at once (in float64: 8 MiB per work array).
_SLAB_ELEMENTS = 1 << 20
# Settings that change what a layer computes, compared when both files say them.
_COMPARED_SETTINGS = ("activation", "recurrent_activation")


@record
class UnitChange:
    unit: int
    norm: float  # ‖Δ‖ over the unit's weights in the block


@record
class BlockDiff:
    """One canonical block of a matched pair of layers: how B differs from A."""

    gate: str | None  # None for a layer part (the projection)
    part: str
    shape: list[int]
    max_abs_diff: float
    relative_change: float | None  # ‖B − A‖ / ‖A‖ (Frobenius); None when A is all zeros and B is not
    cosine: float | None  # of A and B as vectors; None when either is all zeros
    top_units: list[UnitChange]  # the units that changed most, largest first (none when nothing changed)
    identical: bool
    within_tolerance: bool

    @property
    def key(self) -> str:
        return self.part if self.gate is None else f"{self.gate}/{self.part}"


@record
class LayerDiff:
    """A matched pair of layers and the verdict on them."""

    a: str
    b: str
    matched_by: str  # "--map", "name" or "position"
    status: str  # "identical", "equal", "changed" or "shape mismatch"
    verdict: str  # one line: "identical", "equal within 1e-06", "changed", "shapes differ: ..."
    sizes_a: dict[str, int]
    sizes_b: dict[str, int]
    forget_bias_a: float
    forget_bias_b: float
    notes: list[str] = field(default_factory=list)
    blocks: list[BlockDiff] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)  # blocks only A has ("forget/peephole")
    only_in_b: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.status in ("identical", "equal")


@record
class DiffResult:
    a: str
    b: str
    format_a: str
    format_b: str
    atol: float
    rtol: float
    layers: list[LayerDiff]
    only_in_a: list[str]  # layers no layer of B was matched with
    only_in_b: list[str]

    @property
    def equal(self) -> bool:
        """Every layer matched and equal within the tolerance: what exit code 0 means."""
        return not self.only_in_a and not self.only_in_b and all(layer.equal for layer in self.layers)

    @property
    def identical(self) -> bool:
        return self.equal and all(layer.status == "identical" for layer in self.layers)

    def to_dict(self) -> dict:
        return {**asdict(self), "equal": self.equal, "identical": self.identical}


# ---- pairing layers ----------------------------------------------------------------------------------


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`A_NAME=B_NAME` strings as a mapping; ValueError names a malformed one. A name holding `=`
    is split at the first `=` that leaves a name on each side."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        a, sep, b = pair.partition("=")
        if not sep or not a or not b:
            raise ValueError(f"{pair!r} is not A_NAME=B_NAME")
        if a in mapping:
            raise ValueError(f"{a!r} is mapped twice")
        mapping[a] = b
    return mapping


def _shape(layer: Layer) -> tuple:
    return (tuple(sorted(layer.spec.sizes.items())), layer.spec.peepholes, layer.spec.direction)


def match_layers(
    a: Checkpoint, b: Checkpoint, mapping: Mapping[str, str] | None = None
) -> tuple[list[tuple[Layer, Layer, str]], list[Layer], list[Layer]]:
    """(pairs of (A layer, B layer, how they were matched), A's unmatched layers, B's), in A's order.

    mapping: A name -> B name, layers or bidirectional pairs (a pair's halves pair by direction).
    Raises NoLSTMLayers when a file has no LSTM layer, UnknownName for a name a file lacks."""
    layers_a, layers_b = a.select(), b.select()
    pairs: dict[str, tuple[Layer, Layer, str]] = {}
    used_b: set[str] = set()

    def pair(layer_a: Layer, layer_b: Layer, how: str) -> None:
        if layer_a.spec.name in pairs or layer_b.spec.name in used_b:
            taken = layer_a.spec.name if layer_a.spec.name in pairs else layer_b.spec.name
            raise UnknownName(f"--map: layer {taken!r} is matched twice")
        pairs[layer_a.spec.name] = (layer_a, layer_b, how)
        used_b.add(layer_b.spec.name)

    for name_a, name_b in (mapping or {}).items():
        for layer_a, layer_b in _mapped(a, b, name_a, name_b):
            pair(layer_a, layer_b, "--map")
    by_name = {layer.spec.name: layer for layer in layers_b}
    for layer_a in layers_a:
        same_name = by_name.get(layer_a.spec.name)
        if layer_a.spec.name not in pairs and same_name is not None and same_name.spec.name not in used_b:
            pair(layer_a, same_name, "name")
    # The rest in file order: each A layer with the first B layer left of the same sizes (and the
    # same direction, for a half of a bidirectional pair).
    for layer_a in layers_a:
        if layer_a.spec.name in pairs:
            continue
        for layer_b in layers_b:
            if layer_b.spec.name not in used_b and _shape(layer_b) == _shape(layer_a):
                pair(layer_a, layer_b, "position")
                break
    matched = [pairs[layer.spec.name] for layer in layers_a if layer.spec.name in pairs]
    return (
        matched,
        [layer for layer in layers_a if layer.spec.name not in pairs],
        [layer for layer in layers_b if layer.spec.name not in used_b],
    )


def _mapped(a: Checkpoint, b: Checkpoint, name_a: str, name_b: str) -> list[tuple[Layer, Layer]]:
    """The layers `--map name_a=name_b` pairs: one with one, or a pair's halves by direction."""
    halves_a, halves_b = a.select([name_a]), b.select([name_b])
    if len(halves_a) != len(halves_b):
        raise UnknownName(
            f"--map {name_a}={name_b}: {name_a!r} is {_count(halves_a)} in {a.path}, "
            f"{name_b!r} {_count(halves_b)} in {b.path}"
        )
    if len(halves_a) > 1:
        halves_b = sorted(halves_b, key=lambda h: [x.spec.direction for x in halves_a].index(h.spec.direction))
    return list(zip(halves_a, halves_b))


def _count(halves: list[Layer]) -> str:
    return "a bidirectional pair" if len(halves) == 2 else "one layer"


# ---- what is compared ---------------------------------------------------------------------------------


def weights_of(layer: Layer) -> Weights:
    """The layer's canonical blocks, as views of its stored tensors where numpy can make them: the
    tensors stay in memory until layer.release() and the blocks are gone, and nothing is copied."""
    blocks = {(b.gate, b.part): layer.view(b) for b in layer.blocks()}
    return from_blocks(layer.spec.name, blocks, layer.spec.forget_bias, layer.layout.cell)


def aligned(a: Weights, b: Weights) -> tuple[Weights, Weights, list[str]]:
    """A and B as the cells compute with them, in one form: the effective forget-gate bias (runtime
    forget bias folded in, forget_bias 0 after), a single bias per gate when only one side keeps
    two, zeros for a bias one side lacks; with notes saying what was done beyond the folding."""
    notes = []
    two_a, two_b = a.has("recurrent_bias"), b.has("recurrent_bias")
    if two_a != two_b:
        a, b = merge_biases(a), merge_biases(b)
        side = "A" if two_a else "B"
        notes.append(f"{side} keeps an input-side and a recurrent-side bias: their sum is compared")
    a, b = fold_forget_bias(a, 0.0), fold_forget_bias(b, 0.0)
    return _zeros_for_missing_biases(a, b, "A", notes), _zeros_for_missing_biases(b, a, "B", notes), notes


def _zeros_for_missing_biases(weights: Weights, other: Weights, side: str, notes: list[str]) -> Weights:
    missing = [key for key in other.blocks if key[1] in BIAS_PARTS and key not in weights.blocks]
    if not missing:
        return weights
    import numpy as np

    notes.append(f"{side} has no {', '.join(sorted({part for _, part in missing}))} for some gates: compared as zeros")
    zeros = {key: np.zeros(weights.units, dtype=weights.dtype) for key in missing}
    return replace(weights, blocks={**weights.blocks, **zeros})


def unit_axis(part: str, ndim: int) -> int:
    """The axis of a canonical block that runs over the layer's units."""
    axes = CANONICAL_AXES[part]
    return ndim - len(axes) + axes.index("units")


def compare_block(gate: str | None, part: str, a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> BlockDiff:
    """How block b differs from block a (the same shape), in float64, a slab of rows at a time: the
    work arrays stay _SLAB_ELEMENTS long, whatever the size of the block."""
    import numpy as np

    axis = unit_axis(part, a.ndim)
    per_unit = np.zeros(a.shape[axis])  # Σ Δ² over each unit's weights
    sum_aa = sum_bb = sum_dd = sum_ab = 0.0  # Σ a², Σ b², Σ Δ², Σ a·b
    max_abs, identical, within = 0.0, True, True
    step = max(1, _SLAB_ELEMENTS // max(1, math.prod(a.shape[1:])))
    # A damaged file's values: inf − inf, squares past float64's range; what they give is the result.
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, a.shape[0], step):
            slab_a = np.asarray(a[start : start + step], np.float64)
            slab_b = np.asarray(b[start : start + step], np.float64)
            flat_a, flat_b = slab_a.ravel(), slab_b.ravel()
            same = bool(np.array_equal(slab_a, slab_b, equal_nan=True))
            squares = float(flat_a @ flat_a)
            if same and math.isfinite(squares):
                # Equal and finite (no NaN or infinity, whose differences are NaN): Δ is 0, and b is a.
                # A diff of a file against its own export is mostly such slabs.
                sum_aa, sum_bb, sum_ab = sum_aa + squares, sum_bb + squares, sum_ab + squares
                continue
            identical = identical and same
            delta = slab_b - slab_a
            squared = delta * delta
            # Equal values (NaN for NaN) are close whatever the tolerance: np.isclose, 25 µs a call, only
            # for slabs that differ (a diff of 6,000 small layers against themselves spent 2 s in it).
            within = within and (same or bool(np.isclose(slab_b, slab_a, rtol=rtol, atol=atol, equal_nan=True).all()))
            if delta.size:
                max_abs = max(max_abs, float(np.nanmax(np.abs(delta))))
            flat_delta = delta.ravel()
            sum_aa += squares
            sum_bb += float(flat_b @ flat_b)
            sum_dd += float(flat_delta @ flat_delta)
            sum_ab += float(flat_a @ flat_b)
            if axis == 0:
                per_unit[start : start + len(delta)] += squared.reshape(len(delta), -1).sum(axis=1)
            else:
                per_unit += squared.sum(axis=tuple(i for i in range(delta.ndim) if i != axis))
    norm_a, norm_b, norm_delta = math.sqrt(sum_aa), math.sqrt(sum_bb), math.sqrt(sum_dd)
    relative = norm_delta / norm_a if norm_a else (0.0 if not norm_delta else None)
    # NaN stays NaN, as np.clip keeps it.
    cosine = None
    if norm_a and norm_b:
        cosine = sum_ab / (norm_a * norm_b)
        cosine = cosine if math.isnan(cosine) else min(1.0, max(-1.0, cosine))
    top: list[UnitChange] = []
    if not identical:
        norms = np.sqrt(per_unit)
        top = [
            UnitChange(int(u), float(norms[u])) for u in np.argsort(-norms, kind="stable")[:TOP_UNITS] if norms[u] > 0
        ]
    return BlockDiff(gate, part, list(a.shape), max_abs, relative, cosine, top, identical, within)


def tolerance_text(atol: float, rtol: float) -> str:
    return f"{atol:g}" + (f" + {rtol:g}·|A|" if rtol else "")


def compare_layers(layer_a: Layer, layer_b: Layer, matched_by: str, atol: float, rtol: float) -> LayerDiff:
    """One matched pair of layers, read, compared and released."""
    spec_a, spec_b = layer_a.spec, layer_b.spec
    result = LayerDiff(
        spec_a.name,
        spec_b.name,
        matched_by,
        "changed",
        "changed",
        dict(spec_a.sizes),
        dict(spec_b.sizes),
        spec_a.forget_bias,
        spec_b.forget_bias,
    )
    if spec_a.sizes != spec_b.sizes:
        result.status = "shape mismatch"
        result.verdict = f"shapes differ: A {_sizes_text(spec_a.sizes)}; B {_sizes_text(spec_b.sizes)}"
        return result
    changes = _setting_changes(spec_a, spec_b)
    try:
        weights_a, weights_b = weights_of(layer_a), weights_of(layer_b)
        if weights_a.dtype != weights_b.dtype:
            result.notes.append(f"A stores {weights_a.dtype}, B {weights_b.dtype}: values are compared as float64")
        weights_a, weights_b, notes = aligned(weights_a, weights_b)
        result.notes += notes
        for key, block_a in weights_a.blocks.items():
            block_b = weights_b.blocks.get(key)
            if block_b is None:
                result.only_in_a.append(_key(*key))
            else:
                result.blocks.append(compare_block(*key, block_a, block_b, atol, rtol))
        result.only_in_b = [_key(*key) for key in weights_b.blocks if key not in weights_a.blocks]
    finally:
        layer_a.release()
        layer_b.release()
    changes = (
        [f"{key} only in A" for key in result.only_in_a] + [f"{key} only in B" for key in result.only_in_b] + changes
    )
    if changes:
        result.verdict = "changed: " + "; ".join(changes)
    elif all(block.identical for block in result.blocks):
        result.status = result.verdict = "identical"
    elif all(block.within_tolerance for block in result.blocks):
        result.status, result.verdict = "equal", f"equal within {tolerance_text(atol, rtol)}"
    else:
        worst = max(result.blocks, key=lambda block: block.max_abs_diff)
        result.verdict = f"changed (largest |Δ| {worst.max_abs_diff:.3g}, in {worst.key})"
    if spec_a.forget_bias != spec_b.forget_bias:
        kept = f"A adds {spec_a.forget_bias:g} to the forget gate at run time, B {spec_b.forget_bias:g}"
        if result.equal:
            result.notes.insert(0, f"only where the forget bias is kept differs, no weight: {kept}")
        else:
            result.notes.insert(0, f"{kept}: the effective forget-gate bias (stored + runtime) is compared")
    return result


def _setting_changes(spec_a: LayerSpec, spec_b: LayerSpec) -> list[str]:
    """What the two layers compute differently whatever their weights: the cell kind, and the
    settings both files say (activations, a GRU's reset_after)."""
    changes = []
    if spec_a.layout.cell.name != spec_b.layout.cell.name:
        changes.append(f"cell kind differs: A {spec_a.layout.cell.name}, B {spec_b.layout.cell.name}")
    for setting in (*_COMPARED_SETTINGS, *spec_a.layout.cell.variants):
        value_a, value_b = (spec.settings.get(setting, Setting("unknown", "")).value for spec in (spec_a, spec_b))
        if "unknown" not in (value_a, value_b) and value_a != value_b:
            changes.append(f"{setting.replace('_', ' ')} differs: A {value_a}, B {value_b}")
    return changes


def _key(gate: str | None, part: str) -> str:
    return part if gate is None else f"{gate}/{part}"


def _sizes_text(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{value} {size}" for size, value in sizes.items())


def diff(
    a: Checkpoint, b: Checkpoint, mapping: Mapping[str, str] | None = None, atol: float = 1e-6, rtol: float = 0.0
) -> DiffResult:
    """Every LSTM layer of `a` compared with its match in `b`, one pair at a time."""
    if atol < 0 or rtol < 0:
        raise ValueError("atol and rtol must not be negative")
    matched, only_a, only_b = match_layers(a, b, mapping)
    return DiffResult(
        a.path,
        b.path,
        a.format,
        b.format,
        atol,
        rtol,
        [compare_layers(layer_a, layer_b, how, atol, rtol) for layer_a, layer_b, how in matched],
        [layer.spec.name for layer in only_a],
        [layer.spec.name for layer in only_b],
    )
