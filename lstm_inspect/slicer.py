"""Gate slicing: where each canonical block sits in a layer's stored tensors, and back.

`plan(layer)` describes every block (gate, part, shape, the tensor and region it is cut from)
without reading anything; `cut(block, value)` takes the block out of the stored tensor's value,
`view(block, value)` shows it there without a copy where numpy can. `pack` is the inverse, for
export targets: canonical blocks placed into a layout's own tensors; `unpack` reads such tensors
back. Where a block sits comes from the layout's declaration (schema.locate), nowhere else.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from . import schema
from .records import frozen_record

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


class Stored(Protocol):
    """A stored tensor as planning sees it (readers.base.TensorInfo)."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


class Planned(Protocol):
    """What planning needs of a detected layer (detect.LayerSpec)."""

    name: str
    layout: schema.Layout

    @property
    def tensors(self) -> Mapping[str, Stored]:  # role key -> stored tensor
        ...

    @property
    def sizes(self) -> dict[str, int]: ...


@frozen_record
class Block:
    """One gate's part of a layer (or the layer's projection), located in a stored tensor."""

    layer: str
    gate: str | None  # None for a layer part (the projection)
    part: str  # kernel, recurrent, bias, recurrent_bias, peephole, projection
    shape: tuple[int, ...]
    tensor: str  # the stored tensor's name
    region: tuple[tuple[int, int], ...] | None  # per dimension (start, stop); None: the whole tensor
    squeeze: tuple[int, ...] = ()  # axes of the region the block drops
    order: tuple[int, ...] | None = None  # the kept axes in the block's order; None: as stored
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
        if self.order is not None:
            text += " (transposed)"
        if self.transform:
            text += f" ({_TRANSFORM_NOTES[self.transform]})"
        return text


# A block's fields but its layer's and tensor's names, with the role key naming the tensor.
_Placed = tuple[
    str | None,
    str,
    tuple[int, ...],
    str,
    "tuple[tuple[int, int], ...] | None",
    tuple[int, ...],
    "tuple[int, ...] | None",
    str | None,
]


def _place(
    gate: str | None, part: str, shape: tuple[int, ...], location: schema.Location, sizes: Mapping[str, int]
) -> _Placed:
    full = all(region == (0, length) for region, length in zip(location.region, shape))
    return (
        gate,
        part,
        schema.block_shape(part, sizes, location),
        location.role.key,
        None if full else location.region,
        location.squeeze,
        None if location.order == tuple(range(len(location.order))) else location.order,
        location.role.transform,
    )


# Where the blocks sit depends on the layout, the sizes and the stored tensors' roles and shapes,
# never on the layer's name: a file of 6,000 layers of one structure locates its blocks once
# (schema.locate costs half a millisecond a layer, which split, export, verify and diff all pay).
# The layout is kept beside its placements, so that an id reused by another layout misses.
_PLACED: dict[tuple[object, ...], tuple[schema.Layout, tuple[_Placed, ...]]] = {}


def _placed(layer: Planned) -> tuple[_Placed, ...]:
    sizes, tensors = layer.sizes, layer.tensors
    shapes = tuple(sorted((key, tuple(tensor.shape)) for key, tensor in tensors.items()))
    key = (id(layer.layout), tuple(sorted(sizes.items())), shapes)
    found = _PLACED.get(key)
    if found is None or found[0] is not layer.layout:
        placed = tuple(
            _place(gate, part, tuple(tensors[location.role.key].shape), location, sizes)
            for gate, part, location in schema.locations(layer.layout, sizes, set(tensors))
        )
        found = _PLACED[key] = (layer.layout, placed)
    return found[1]


def plan(layer: Planned) -> list[Block]:
    """Every block of `layer`: gate by gate in canonical order, then the layer parts."""
    tensors = layer.tensors
    return [
        Block(layer.name, gate, part, shape, tensors[role].name, region, squeeze, order, transform)
        for gate, part, shape, role, region, squeeze, order, transform in _placed(layer)
    ]


def cut(block: Block, value: np.ndarray) -> np.ndarray:
    """The block's values, taken from the whole stored tensor `value` (a new, contiguous array,
    writable whatever `value` is: a stored tensor may be a read-only memory map)."""
    import numpy as np

    return np.array(view(block, value), order="C", copy=True)


def view(block: Block, value: np.ndarray) -> np.ndarray:
    """The block inside the whole stored tensor `value`, without a copy where numpy can make a view."""
    if block.region is not None:
        value = value[tuple(slice(a, b) for a, b in block.region)]
    if block.squeeze:
        value = value.squeeze(axis=block.squeeze)
    if block.order is not None:
        value = value.transpose(block.order)
    if block.transform is not None:
        value = _TRANSFORMS[block.transform](value)
    return value


# ---- export targets: canonical blocks into a layout's own tensors, and back -------------------------

Blocks = Mapping[tuple[str | None, str], "np.ndarray"]  # (gate or None, part) -> canonical block


def pack(layout: schema.Layout, directions: Sequence[Blocks], sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The layout's tensors holding these blocks, whole (see packing)."""
    return {key: packed.array() for key, packed in packing(layout, directions, sizes).items()}


def packing(layout: schema.Layout, directions: Sequence[Blocks], sizes: Mapping[str, int]) -> dict[str, Packed]:
    """The layout's tensors holding these blocks, one Blocks per direction (one, or a bidirectional
    pair for a layout that holds both: along its Direction axis, or under its direction suffixes),
    each as a Packed that makes its values a piece at a time from the blocks (which may be views of
    the stored tensors). An optional role is written when any of its blocks is given; one that must
    be there is zeros where its bias blocks are missing."""
    import numpy as np

    dtype = np.dtype(next(iter(directions[0].values())).dtype)
    if layout.has_direction_axis:
        groups = [("", list(enumerate(directions)))]
    else:
        suffixes = layout.direction_suffixes or ("",)
        if len(directions) > len(suffixes):
            raise ValueError(f"layout {layout.key} holds one direction per layer")
        groups = [(suffix, [(0, blocks)]) for suffix, blocks in zip(suffixes, directions)]
    sizes = {**sizes, "direction": len(directions)}
    sizes_key = tuple(sorted(sizes.items()))
    out: dict[str, Packed] = {}
    for suffix, group in groups:
        for role in layout.roles:
            placed = tuple(
                (location, block)
                for index, blocks in group
                for (gate, part), block in blocks.items()
                if (location := _locate(layout, role, gate, part, sizes, sizes_key, index)) is not None
            )
            if not placed:
                if role.optional:
                    continue
                if any(part not in schema.BIAS_PARTS for part in role.parts()):
                    raise ValueError(f"layout {layout.key}: nothing to write into {role.key}")
            out[role.key + suffix] = Packed(schema.role_shape(role, sizes), dtype, placed)
    return out


def _locate(
    layout: schema.Layout,
    role: schema.Role,
    gate: str | None,
    part: str,
    sizes: Mapping[str, int],
    sizes_key: tuple[tuple[str, int], ...],
    direction: int,
) -> schema.Location | None:
    """schema.locate, once per layout, role, block, sizes and direction (see _PLACED): an export of
    6,000 layers of one structure to a framework's layout asked it 480,000 times."""
    key = (id(layout), role.key, gate, part, sizes_key, direction)
    found = _LOCATED.get(key)
    if found is None or found[0] is not layout:
        found = _LOCATED[key] = (layout, schema.locate(layout, role, gate, part, sizes, direction))
    return found[1]


_LOCATED: dict[tuple[object, ...], tuple[schema.Layout, schema.Location | None]] = {}


# A block whose rows are another array's columns (a transposed view) is copied this many of its
# columns at a time: the source rows each tile reads stay in the CPU cache from one target row to
# the next. Copied whole, a [128, 2048] piece of a transposed [2048, 8192] kernel runs at a third
# of the speed (780 MB/s against 2.6 GB/s here); 32 to 256 measure alike.
_TILE = 64


@frozen_record
class Packed:
    """One tensor of a target layout: where each canonical block lands in it (its placements, as
    schema.locate says), made whole (`array`) or as consecutive pieces in C order (`pieces`), each
    piece filled from the blocks' own values, so that a view of a stored tensor is read a piece
    at a time and never copied whole. Where no block lands, the tensor holds zeros."""

    shape: tuple[int, ...]
    dtype: np.dtype
    placements: tuple[tuple[schema.Location, np.ndarray], ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def array(self) -> np.ndarray:
        """The whole tensor, as a new array."""
        return self._fill([(0, n) for n in self.shape], 0)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        # np.asarray(packed) works as on the arrays Target.unit_arrays gave before it streamed.
        whole = self.array()
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def pieces(self, piece_bytes: int) -> Iterator[np.ndarray]:
        """The tensor's values in C order, as new arrays of about `piece_bytes` (at least one
        element's worth): slabs of consecutive indices along the first axis whose slab fits,
        the axes before it taking one index at a time."""
        if self.size == 0:
            return
        if self.ndim == 0:
            yield self.array()
            return
        itemsize = self.dtype.itemsize
        last = self.ndim - 1  # one element at a time, when even one exceeds piece_bytes
        axis = next((k for k in range(self.ndim) if math.prod(self.shape[k + 1 :]) * itemsize <= piece_bytes), last)
        step = max(1, piece_bytes // (math.prod(self.shape[axis + 1 :]) * itemsize))
        rest = [(0, n) for n in self.shape[axis + 1 :]]
        for prefix in itertools.product(*(range(n) for n in self.shape[:axis])):
            leading = [(i, i + 1) for i in prefix]
            for start in range(0, self.shape[axis], step):
                yield self._fill([*leading, (start, min(start + step, self.shape[axis])), *rest], axis)

    def _fill(self, bounds: list[tuple[int, int]], first: int) -> np.ndarray:
        """The tensor's values within `bounds` (per axis, [start, stop)), as a new array without
        the axes before `first` (each of which `bounds` holds at one index)."""
        import numpy as np

        shape = tuple(stop - start for start, stop in bounds[first:])
        overlaps = []
        covered = 0
        for location, block in self.placements:
            common = [(max(a, r0), min(b, r1)) for (a, b), (r0, r1) in zip(bounds, location.region)]
            if all(low < high for low, high in common):
                overlaps.append((location, block, common))
                covered += math.prod(high - low for low, high in common)
        # Blocks never overlap one another: a piece they cover whole needs no zeros first.
        piece = (np.empty if covered == math.prod(shape) else np.zeros)(shape, self.dtype)
        for location, block, common in overlaps:
            target = piece[
                tuple(slice(low - a, high - a) for (low, high), (a, _) in zip(common[first:], bounds[first:]))
            ]
            dropped = tuple(i - first for i in location.squeeze if i >= first)
            if dropped:
                target = target.squeeze(axis=dropped)
            # The block's axes in the tensor's order, cut to what this piece holds of it; an axis
            # before `first` is one index, which the piece does not have.
            source = block.transpose(_inverse(location.order))
            kept = [i for i in range(len(bounds)) if i not in location.squeeze]
            source = source[
                tuple(slice(common[i][0] - location.region[i][0], common[i][1] - location.region[i][0]) for i in kept)
            ]
            leading = tuple(j for j, i in enumerate(kept) if i < first)
            if leading:
                source = source.squeeze(axis=leading)
            _assign(target, source)
        return piece


@functools.cache
def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes `order` (np.argsort of it, without numpy's call per piece: an
    export of 6,000 small layers fills 18,000 pieces from 96,000 blocks)."""
    return tuple(sorted(range(len(order)), key=order.__getitem__))


def _assign(target: np.ndarray, source: np.ndarray) -> None:
    """target[...] = source, tile by tile when the source's last axis is not its contiguous one."""
    if source.ndim < 2 or abs(source.strides[-1]) <= source.itemsize or source.shape[-1] <= _TILE:
        target[...] = source
        return
    for start in range(0, source.shape[-1], _TILE):
        target[..., start : start + _TILE] = source[..., start : start + _TILE]


def unpack(layout: schema.Layout, arrays: Mapping[str, np.ndarray]) -> list[dict[tuple[str | None, str], np.ndarray]]:
    """The canonical blocks of each direction held in a layout's tensors (the inverse of pack), as
    views of `arrays` where numpy can make them (verify reads a whole export back this way)."""
    suffixes = layout.direction_suffixes or ("",)
    found = []
    for suffix in suffixes:
        present = {role.key: arrays[role.key + suffix] for role in layout.roles if role.key + suffix in arrays}
        if present:
            found.append(present)
    result = []
    for present in found:
        sizes = schema.solve(layout, {key: tuple(value.shape) for key, value in present.items()})
        if sizes is None:
            raise ValueError(f"the arrays do not fit layout {layout.key}")
        for d in range(sizes.get("direction", 1)):
            blocks = {}
            for gate, part, location in schema.locations(layout, sizes, set(present), d):
                value = present[location.role.key]
                blocks[(gate, part)] = view(Block("", *_place(gate, part, tuple(value.shape), location, sizes)), value)
            result.append(blocks)
    return result
