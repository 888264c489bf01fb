"""Every recurrent cell kind and every framework's weight layout, declared once, as data.

A *cell kind* names its gates and what they may carry (LSTM: input, forget, cell, output; peepholes
on input, forget and output; a runtime forget bias on forget). A *layout* is how one framework
stores one layer (one direction) of that cell: its *roles*, the stored tensors, each with the leaf
names files give it and what each of its axes holds:

- `Dim(size)`: the whole of one size ("input", "units", "recurrent", "projection");
- `Gates(letters)`: one block of `units` per gate, in the framework's own letter order;
- `Parts(segments)`: consecutive parts, such as a fused kernel's input rows then recurrent rows;
- `PartIndex(parts)`: one index per part (a `(2, 3u)` bias: input-side row, recurrent-side row);
- `PartsOfGates(parts, letters)`: per part, one block per gate (cuDNN's `[8u]` bias);
- `Direction()`: the direction of a bidirectional pair (the ONNX operator's first axis).

Everything else derives from these declarations and nothing else spells a gate letter, a gate
count or a role name: detection solves a layer's sizes from the stored shapes and checks every
axis (`solve`), the slicer locates each canonical block in its role (`locate`), summary explains
each stored shape (`explain`), and export targets pack canonical blocks into their own roles, the
inverse of `locate`. Adding a layout is adding an entry to LAYOUTS; a cell kind, a CellKind and its
layouts. Sources are named per entry; ../shared/LAYOUTS.md collects them.

The canonical blocks (../shared/LAYOUTS.md): per gate `kernel` (input, units), `recurrent`
(recurrent, units), `bias`, `recurrent_bias` and `peephole` (units,); per layer `projection`
(units, projection). recurrent is the projection size when the layer projects, else units.

This module imports nothing heavy: `summary` detects layers without numpy.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import field

from .records import frozen_record

# ---- cell kinds ----------------------------------------------------------------------------------


@frozen_record
class CellKind:
    """A recurrent cell: its gates in canonical order and the names users may give them.

    aliases: every accepted gate name or framework letter (lower case) -> canonical gate.
    peephole_gates: the gates a peephole connection may feed (LSTMCell w_i_diag, w_f_diag, w_o_diag).
    forget_gate: the gate a runtime forget bias is added to, if the cell kind has one.
    foreign_scope: a regular expression for scopes whose name says they hold another cell kind
                   (a GRU's, or its inner gates/candidate scopes): never one of these, whatever
                   the shapes.
    layer_parts: the parts a layer of the kind may hold beside its gates' (an LSTM's projection).
    settings:    what detection reports for every layer of the kind, each with where it was read.
    variants:    settings that change what the same blocks compute (a GRU's reset_after): a
                 layout may fix them, and a target holds a layer only in a layout that agrees.
    inner_recurrent_bias: per gate, the variant under which its recurrent-side bias sits inside
                 another gate's product, so that it cannot be added into the input-side bias.
    """

    name: str
    gates: tuple[str, ...]
    aliases: Mapping[str, str]
    peephole_gates: tuple[str, ...] = ()
    forget_gate: str | None = None
    foreign_scope: str | None = None
    layer_parts: tuple[str, ...] = ("projection",)
    settings: tuple[str, ...] = ("forget_bias", "activation", "recurrent_activation")
    variants: tuple[str, ...] = ()
    inner_recurrent_bias: Mapping[str, str] = field(default_factory=dict)

    def gate(self, name: str) -> str | None:
        """The canonical gate for a name or letter (case-insensitive), or None."""
        return self.aliases.get(name.strip().lower())

    def alias_text(self) -> str:
        """The gates with their aliases, for messages: "input (i), forget (f), ..."."""
        shown = []
        for gate in self.gates:
            others = [a for a, g in self.aliases.items() if g == gate and a != gate]
            shown.append(f"{gate} ({', '.join(others)})" if others else gate)
        return ", ".join(shown)

    @property
    def parts(self) -> tuple[str, ...]:
        """The canonical parts a layer of this kind may hold, in the order blocks are listed."""
        return tuple(p for p in GATE_PARTS if p != "peephole" or self.peephole_gates) + self.layer_parts

    def letter(self, gate: str) -> str:
        """The gate's first one-letter alias: how this project's own layouts letter it."""
        return next(a for a, g in self.aliases.items() if g == gate and len(a) == 1)

    def adds_recurrent_bias(self, gate: str, settings: Mapping[str, object]) -> bool:
        """Whether `gate`'s recurrent-side bias may be added into its input-side one, for a layer
        with these settings (not a reset-after GRU's candidate: r∘(h·Wh + bh) is no sum)."""
        variant = self.inner_recurrent_bias.get(gate)
        return variant is None or not settings.get(variant)


LSTM = CellKind(
    "LSTM",
    ("input", "forget", "cell", "output"),
    # TF calls the candidate j, Keras c, PyTorch g; "candidate" is what the literature calls it.
    {
        **{g: g for g in ("input", "forget", "cell", "output")},
        "i": "input",
        "f": "forget",
        "c": "cell",
        "j": "cell",
        "g": "cell",
        "candidate": "cell",
        "o": "output",
    },
    peephole_gates=("input", "forget", "output"),
    forget_gate="forget",
    foreign_scope=r"(?i)(gru|(^|/)(gates|candidate)$)",
)

# A GRU step (../shared/LAYOUTS.md, "GRU layouts"), r the reset gate, z the update gate, n the candidate:
#     r = σ(x·Wx_r + h·Wh_r + b_r [+ bh_r]),  z = σ(x·Wx_z + h·Wh_z + b_z [+ bh_z])
#     n = tanh(x·Wx_n + b_n + r∘(h·Wh_n + bh_n))    reset after the recurrent matmul (reset_after)
#     n = tanh(x·Wx_n + (r∘h)·Wh_n + b_n)           reset before it
#     h' = z∘h + (1 − z)∘n
# Keras and ONNX call the update gate z and the candidate h, PyTorch z and n, TF1's GRUCell u and c.
GRU = CellKind(
    "GRU",
    ("reset", "update", "candidate"),
    {
        **{g: g for g in ("reset", "update", "candidate")},
        "r": "reset",
        "z": "update",
        "u": "update",
        "n": "candidate",
        "h": "candidate",
        "c": "candidate",
    },
    layer_parts=(),
    settings=("reset_after", "activation", "recurrent_activation"),
    variants=("reset_after",),
    inner_recurrent_bias={"candidate": "reset_after"},
)


# How messages and summary say what a variant's value makes the cell compute.
VARIANT_WORDS: dict[str, dict[bool, str]] = {
    "reset_after": {
        True: "applies the reset gate after the recurrent matmul",
        False: "applies the reset gate before the recurrent matmul",
    },
}


def variant_words(setting: str, value: object) -> str:
    """ "applies the reset gate after the recurrent matmul" for reset_after True."""
    return VARIANT_WORDS[setting][bool(value)]


# keras/src/layers/rnn/conv_lstm.py ConvLSTMCell (tf_keras layers/rnn/conv_lstm.py alike): an LSTM
# whose every product is a convolution, x * W over the input's spatial axes with the layer's
# strides, padding and dilation, h * U with strides 1 and "same" padding; i, f, c, o as an LSTM's.
# One kind per rank (ConvLSTM1D/2D/3D): what a target holds or a numpy cell computes depends on it.
CONV_SETTINGS: tuple[str, ...] = ("strides", "padding", "dilation_rate", "data_format")
# The kernel's spatial sizes, in the order its axes hold them (the canonical kernel block keeps them first).
SPATIAL_SIZES: tuple[str, ...] = ("kernel_1", "kernel_2", "kernel_3")


def _conv_lstm(rank: int) -> CellKind:
    return CellKind(
        f"ConvLSTM{rank}D",
        LSTM.gates,
        LSTM.aliases,
        forget_gate=LSTM.forget_gate,
        foreign_scope=LSTM.foreign_scope,
        layer_parts=(),  # no projection
        settings=(*LSTM.settings, *CONV_SETTINGS),
    )


CONV_LSTMS: tuple[CellKind, ...] = tuple(_conv_lstm(rank) for rank in (1, 2, 3))

CELL_KINDS: dict[str, CellKind] = {kind.name: kind for kind in (LSTM, GRU, *CONV_LSTMS)}
# How messages name the layers this tool finds, "LSTM or GRU": a ConvLSTM is an LSTM.
KIND_NAMES: tuple[str, ...] = (LSTM.name, GRU.name)


def spatial_rank(cell: CellKind) -> int:
    """How many spatial axes the kernels of a cell kind have: 0 for an LSTM, 2 for a ConvLSTM2D."""
    # Names first: comparing a dataclass compares every field, and summary asks per layer and axis.
    return next((rank for rank, kind in enumerate(CONV_LSTMS, 1) if kind.name == cell.name and kind == cell), 0)


# Parts of a gate, in the order blocks are listed; then the parts of a whole layer.
GATE_PARTS: tuple[str, ...] = ("kernel", "recurrent", "bias", "recurrent_bias", "peephole")
LAYER_PARTS: tuple[str, ...] = ("projection",)
PARTS: tuple[str, ...] = GATE_PARTS + LAYER_PARTS
BIAS_PARTS: tuple[str, ...] = ("bias", "recurrent_bias")
PART_ALIASES: dict[str, str] = {"recurrent_kernel": "recurrent"}

# The axes of each canonical block, by the size each one spans; sizes a role has beyond these (a
# ConvLSTM's kernel dimensions) come first, in the role's order.
CANONICAL_AXES: dict[str, tuple[str, ...]] = {
    "kernel": ("input", "units"),
    "recurrent": ("recurrent", "units"),
    "bias": ("units",),
    "recurrent_bias": ("units",),
    "peephole": ("units",),
    "projection": ("units", "projection"),
}

# How explanations name each size and part.
_SIZE_WORDS = {"input": "input", "units": "units", "recurrent": "recurrent", "projection": "projected"}
_CONV_SIZE_WORDS = {"input": "input channels", "units": "filters", "recurrent": "recurrent channels"}
_PART_WORDS = {
    "kernel": "input kernel",
    "recurrent": "recurrent kernel",
    "bias": "bias",
    "recurrent_bias": "recurrent bias",
    "peephole": "peephole",
    "projection": "projection",
}
_BIAS_SIDE_WORDS = {"bias": "input-side", "recurrent_bias": "recurrent-side"}


def canonical_part(name: str) -> str | None:
    """The canonical part for a part name or alias, or None."""
    name = PART_ALIASES.get(name.strip().lower(), name.strip().lower())
    return name if name in PARTS else None


# ---- axes --------------------------------------------------------------------------------------------


@frozen_record
class Dim:
    """The whole of one size."""

    size: str


@frozen_record
class Gates:
    """One block of `units` per gate, in the order of the framework's own gate letters."""

    letters: str


@frozen_record
class Parts:
    """Consecutive segments, one per part, each spanning one size: ((part, size), ...)."""

    segments: tuple[tuple[str, str], ...]


@frozen_record
class PartIndex:
    """One index per part; a block takes its part's index and loses the axis."""

    parts: tuple[str, ...]


@frozen_record
class PartsOfGates:
    """Per part, one block of `units` per gate: part-major, then the gates in letter order."""

    parts: tuple[str, ...]
    letters: str


@frozen_record
class Direction:
    """One index per direction of a bidirectional pair (forward, then backward); a block loses it."""


Axis = Dim | Gates | Parts | PartIndex | PartsOfGates | Direction


# ---- roles and layouts -----------------------------------------------------------------------------


@frozen_record
class Role:
    """One stored tensor of a layout.

    key:       the layout's own name for it ("kernel", "W_i", "weight_ih_l0").
    axes:      what each axis holds.
    part:      the part it holds, unless an axis says (Parts, PartIndex, PartsOfGates).
    gate:      the one gate (a framework letter) it holds, unless an axis says (Gates, PartsOfGates).
    names:     the leaf names files give it, under the layer's scope, newest first (default: key).
    optional:  the layer may lack it (no bias, no peepholes, no projection).
    evidence:  its presence alone tells a layer of this layout from a look-alike (a dense layer
               stores [rows, 4u] and [4u] too; it never stores peepholes).
    transform: a reordering the stored values need beyond slicing ("cudnn-input", "transpose").
    """

    key: str
    axes: tuple[Axis, ...]
    part: str | None = None
    gate: str | None = None
    names: tuple[str, ...] = ()
    optional: bool = False
    evidence: bool = False
    transform: str | None = None

    @property
    def leaf_names(self) -> tuple[str, ...]:
        return self.names or (self.key,)

    def parts(self) -> tuple[str, ...]:
        for axis in self.axes:
            if isinstance(axis, Parts):
                return tuple(part for part, _ in axis.segments)
            if isinstance(axis, (PartIndex, PartsOfGates)):
                return axis.parts
        return (self.part,) if self.part else ()

    def letters(self) -> str:
        """The gate letters this role holds, in stored order ("" for a layer-level part)."""
        for axis in self.axes:
            if isinstance(axis, (Gates, PartsOfGates)):
                return axis.letters
        return self.gate or ""


@frozen_record
class Setting:
    """One setting of a layer and where it was read: what summary shows and --json carries.

    value:   the setting ("tanh", 1.0, ...).
    source:  where it came from, for people: "graph: rnn/basic_lstm_cell/Const_1", "config: enc",
             "--forget-bias", or for a value the file does not say, the assumption and how to
             override it.
    assumed: True when the file does not say and `value` is a framework's default.
    """

    value: object
    source: str
    assumed: bool = False


# Layout.framework's words in prose.
FRAMEWORK_NAMES = {"tensorflow": "TensorFlow", "keras": "Keras"}


@frozen_record
class Layout:
    """How one framework stores one layer (one direction) of one cell kind.

    forget_bias:  what the framework's cell adds to the forget gate at run time; never stored.
    cell_names:   the class name shown for a detected layer: the first entry whose roles are all
                  present (e.g. peepholes make a TF1 cell an LSTMCell), the last one unconditional.
    scope_pattern: detection: a regular expression the layer's scope must contain, unless a present
                  role is evidence; scope_required: one it must contain whatever is present.
    config_class: detection: a regular expression a Keras config's class name must match when the
                  file has a config for the layer; a layout without one is never taken for a layer
                  the file has a config for. cell_from_config: the config's class is the cell name.
    fixed:        settings the cell computes whatever code built it (cuDNN: sigmoid and tanh).
    defaults:     settings the file does not store, assumed (Setting.assumed) unless the file's
                  graph or config says.
    config_keys:  per setting, the Keras config keys that hold it, first found wins.
    min_sizes:    detection: the least each size may be (a fused kernel with no input rows would
                  be ambiguous).
    direction_suffixes: for a target whose bidirectional layer keeps each direction under its own
                  keys, the suffix of each direction's role keys (nn.LSTM's "_reverse").
    config_sizes: per size, where a Keras config says it: (key, index into a list value or None),
                  first found wins; detection refuses a layer whose weights say otherwise.
    """

    key: str
    framework: str
    cell: CellKind
    roles: tuple[Role, ...]
    forget_bias: float = 0.0
    cell_names: tuple[tuple[tuple[str, ...], str], ...] = ()
    scope_pattern: str | None = None
    scope_required: str | None = None
    config_class: str | None = None
    cell_from_config: bool = False
    fixed: Mapping[str, Setting] = field(default_factory=dict)
    defaults: Mapping[str, Setting] = field(default_factory=dict)
    config_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_sizes: Mapping[str, int] = field(default_factory=dict)
    direction_suffixes: tuple[str, ...] = ()
    config_sizes: Mapping[str, tuple[tuple[str, int | None], ...]] = field(default_factory=dict)

    @property
    def framework_name(self) -> str:
        """The framework as prose names it ("Keras", "TensorFlow")."""
        return FRAMEWORK_NAMES.get(self.framework, self.framework)

    def role(self, key: str) -> Role:
        for role in self.roles:
            if role.key == key:
                return role
        raise KeyError(f"layout {self.key} has no role {key!r}")

    @functools.cached_property  # asked per layer by summary: once per layout, not 10,000 times
    def letters(self) -> str:
        """The framework's gate letters in stored order, each once ("ijfo")."""
        seen: dict[str, None] = {}
        for role in self.roles:
            if role.part != "peephole":
                for letter in role.letters():
                    seen.setdefault(letter)
        return "".join(seen)

    @functools.cached_property
    def order(self) -> tuple[str, ...]:
        """The same order in canonical gate names."""
        return tuple(self.gate_of(letter) for letter in self.letters)

    def gate_of(self, letter: str) -> str:
        gate = self.cell.gate(letter)
        if gate is None:
            raise KeyError(f"layout {self.key}: {letter!r} names no {self.cell.name} gate")
        return gate

    def letter_of(self, gate: str, letters: str) -> str | None:
        for letter in letters:
            if self.gate_of(letter) == gate:
                return letter
        return None

    @property
    def bias_parts(self) -> tuple[str, ...]:
        """The bias parts this layout can hold: ("bias",) or ("bias", "recurrent_bias")."""
        return tuple(p for p in BIAS_PARTS if any(p in role.parts() for role in self.roles))

    @property
    def has_direction_axis(self) -> bool:
        return any(isinstance(axis, Direction) for role in self.roles for axis in role.axes)

    def cell_name(self, present: set[str]) -> str:
        for needs, name in self.cell_names:
            if all(key in present for key in needs):
                return name
        return self.framework

    def holds(self, cell: CellKind, variants: Mapping[str, object]) -> bool:
        """Whether a layer of `cell` with these variant settings (reset_after) can be stored in this
        layout: the same cell kind, and every variant the layout fixes the layer's own."""
        return self.cell.name == cell.name and all(
            bool(variants.get(name)) == bool(setting.value)
            for name, setting in self.fixed.items()
            if name in cell.variants
        )


# ---- sizes from shapes ------------------------------------------------------------------------------

Sizes = dict[str, int]


def _terms(axis: Axis) -> dict[str, int]:
    """The sizes an axis spans, with multiplicities: its length is their weighted sum."""
    if isinstance(axis, Dim):
        return {axis.size: 1}
    if isinstance(axis, Gates):
        return {"units": len(axis.letters)}
    if isinstance(axis, Parts):
        terms: dict[str, int] = {}
        for _, size in axis.segments:
            terms[size] = terms.get(size, 0) + 1
        return terms
    if isinstance(axis, PartIndex):
        return {}
    if isinstance(axis, PartsOfGates):
        return {"units": len(axis.parts) * len(axis.letters)}
    return {"direction": 1}


def _fixed_length(axis: Axis) -> int | None:
    return len(axis.parts) if isinstance(axis, PartIndex) else None


Equation = tuple[dict[str, int], int]  # (size -> weight, total): sum(weight * size) == total


def _equations(layout: Layout, shapes: Mapping[str, tuple[int, ...]]) -> list[Equation] | None:
    """What the shapes of the present roles say about the sizes; None when an axis cannot fit."""
    equations: list[Equation] = []
    for key, shape in shapes.items():
        role = layout.role(key)
        if len(shape) != len(role.axes):
            return None
        for axis, length in zip(role.axes, shape):
            fixed = _fixed_length(axis)
            if fixed is None:
                equations.append((_terms(axis), length))
            elif length != fixed:
                return None
    # The recurrent rows are the projection's outputs when the layer projects, else its units.
    projected = any("projection" in layout.role(key).parts() for key in shapes)
    equations.append(({"recurrent": 1, "projection" if projected else "units": -1}, 0))
    return equations


def _solved(equations: list[Equation]) -> Sizes | None:
    """The sizes every equation holds for, found one unknown at a time; None when they contradict
    each other, do not divide, or say too little."""
    sizes: Sizes = {}
    pending = equations
    while pending:
        unsolved = []
        for terms, total in pending:
            unknown = [s for s in terms if s not in sizes]
            rest = total - sum(weight * sizes[s] for s, weight in terms.items() if s in sizes)
            if len(unknown) > 1:
                unsolved.append((terms, total))
            elif not unknown and rest != 0:
                return None
            elif unknown:
                if rest % terms[unknown[0]]:
                    return None
                sizes[unknown[0]] = rest // terms[unknown[0]]
        if len(unsolved) == len(pending):
            return None  # under-determined: the shapes say too little
        pending = unsolved
    return sizes


def solve(layout: Layout, shapes: Mapping[str, tuple[int, ...]]) -> Sizes | None:
    """The layer's sizes from the shapes of its present roles (role key -> shape), or None when the
    shapes do not fit the layout: every axis of every present role must check out."""
    equations = _equations(layout, shapes)
    sizes = None if equations is None else _solved(equations)
    if sizes is None or any(value < layout.min_sizes.get(size, 0) for size, value in sizes.items()):
        return None
    return sizes


def role_shape(role: Role, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of a role for a layer of these sizes (the inverse of solve)."""
    return tuple(
        _fixed_length(axis) or sum(weight * sizes[size] for size, weight in _terms(axis).items()) for axis in role.axes
    )


# ---- where each canonical block sits -------------------------------------------------------------------


@frozen_record
class Location:
    """Where one canonical block sits in a role's tensor.

    region:  per axis of the stored tensor, (start, stop).
    squeeze: the axes the block drops (a part or direction index).
    order:   the remaining axes, permuted into the canonical block's order.
    """

    role: Role
    region: tuple[tuple[int, int], ...]
    squeeze: tuple[int, ...]
    order: tuple[int, ...]

    @property
    def whole(self) -> bool:
        return not self.squeeze and self.order == tuple(range(len(self.order)))


def _segment(axis: Axis, sizes: Mapping[str, int], part: str, letter: str | None, direction: int):
    """(start, stop, label) of a block along one axis; label None: the axis is dropped."""
    units = sizes.get("units", 0)
    if isinstance(axis, Dim):
        return 0, sizes[axis.size], axis.size
    if isinstance(axis, Gates):
        k = axis.letters.index(letter or "")
        return k * units, (k + 1) * units, "units"
    if isinstance(axis, Parts):
        start = 0
        for segment_part, size in axis.segments:
            if segment_part == part:
                return start, start + sizes[size], size
            start += sizes[size]
        raise KeyError(part)
    if isinstance(axis, PartIndex):
        i = axis.parts.index(part)
        return i, i + 1, None
    if isinstance(axis, PartsOfGates):
        k = (axis.parts.index(part) * len(axis.letters) + axis.letters.index(letter or "")) * units
        return k, k + units, "units"
    return direction, direction + 1, None


def locate(layout: Layout, role: Role, gate: str | None, part: str, sizes: Mapping[str, int], direction: int = 0):
    """The Location of `gate`'s `part` (gate None for a layer part) in `role`, or None if it holds none."""
    if part not in role.parts():
        return None
    letter = None
    if gate is not None:
        letter = layout.letter_of(gate, role.letters())
        if letter is None:
            return None
    elif role.letters():
        return None
    region, labels = [], []
    for axis in role.axes:
        start, stop, label = _segment(axis, sizes, part, letter, direction)
        region.append((start, stop))
        labels.append(label)
    kept = [i for i, label in enumerate(labels) if label is not None]
    canonical = CANONICAL_AXES[part]
    # Sizes the canonical block does not name (a ConvLSTM kernel's spatial axes) lead, in role order.
    ranked = sorted(
        range(len(kept)),
        key=lambda j: (canonical.index(labels[kept[j]]) if labels[kept[j]] in canonical else -1, j),
    )
    squeeze = tuple(i for i, label in enumerate(labels) if label is None)
    return Location(role, tuple(region), squeeze, tuple(ranked))


def block_shape(part: str, sizes: Mapping[str, int], location: Location) -> tuple[int, ...]:
    kept = [stop - start for i, (start, stop) in enumerate(location.region) if i not in location.squeeze]
    return tuple(kept[j] for j in location.order)


def locations(layout: Layout, sizes: Mapping[str, int], present: set[str], direction: int = 0) -> Iterator:
    """(gate, part, Location) of every canonical block the present roles hold: gate by gate in
    canonical order, parts in GATE_PARTS order, then the layer parts (gate None)."""
    roles = [role for role in layout.roles if role.key in present]
    for gate in layout.cell.gates:
        for part in GATE_PARTS:
            for role in roles:
                location = locate(layout, role, gate, part, sizes, direction)
                if location is not None:
                    yield gate, part, location
                    break
    for part in LAYER_PARTS:
        for role in roles:
            location = locate(layout, role, None, part, sizes, direction)
            if location is not None:
                yield None, part, location
                break


# ---- explanations ------------------------------------------------------------------------------------------


def _gates_text(layout: Layout, letters: str) -> str:
    # A role holding only some of the cell's gates (TF1 GRUCell's gates/kernel: r, u) names them.
    named = f" ({', '.join(letters)})" if len(letters) < len(layout.cell.gates) else ""
    return f"{len(letters)} gates{named}"


def _size_text(layout: Layout, sizes: Mapping[str, int], size: str) -> str:
    # A ConvLSTM's units are its filters, its input and recurrent sizes channels.
    word = (_CONV_SIZE_WORDS if spatial_rank(layout.cell) else _SIZE_WORDS).get(size, size)
    if size == "recurrent" and "projection" in sizes:
        word = "projected recurrent"
    return f"{sizes[size]} {word}"


def _axis_text(layout: Layout, sizes: Mapping[str, int], axis: Axis) -> str:
    units = f"{sizes.get('units', 0)} {'filters' if spatial_rank(layout.cell) else 'units'}"
    if isinstance(axis, Dim):
        return _size_text(layout, sizes, axis.size)
    if isinstance(axis, Gates):
        return f"{_gates_text(layout, axis.letters)} × {units}"
    if isinstance(axis, Parts):
        return " + ".join(_size_text(layout, sizes, size) for _, size in axis.segments)
    if isinstance(axis, PartIndex):
        return f"{len(axis.parts)} ({', '.join(_BIAS_SIDE_WORDS.get(p, p) for p in axis.parts)})"
    if isinstance(axis, PartsOfGates):
        sides = ", ".join(_BIAS_SIDE_WORDS.get(p, p) for p in axis.parts)
        return f"{len(axis.parts)} ({sides}) × {_gates_text(layout, axis.letters)} × {units}"
    return f"{sizes.get('direction', 1)} directions"


def explain(layout: Layout, role: Role, sizes: Mapping[str, int]) -> str:
    """What a stored shape is made of: "[12 input + 64 recurrent, 4 gates × 64 units]"."""
    texts: list[str] = []
    # A ConvLSTM kernel's spatial sizes are said together: "3 × 3 kernel".
    for spatial, axes in itertools.groupby(role.axes, lambda a: isinstance(a, Dim) and a.size in SPATIAL_SIZES):
        if spatial:
            texts.append(" × ".join(str(sizes[a.size]) for a in axes if isinstance(a, Dim)) + " kernel")
        else:
            texts += [_axis_text(layout, sizes, axis) for axis in axes]
    text = "[" + ", ".join(texts) + "]"
    if role.gate is not None:
        gate = layout.gate_of(role.gate)
        text += f": {gate}-gate {_PART_WORDS[role.part]}" if role.part else f": the {gate} gate"
    return text


# ---- the layouts ---------------------------------------------------------------------------------------------

# Detection adds why the file does not say and how to override it (detect._assumed).
_TF1_DEFAULT = "TF1 default"
_KERAS_DEFAULT = "Keras' default; the file has no model config to say"
_CUDNN_FIXED = "cuDNN computes its LSTM with sigmoid and tanh only"

# rnn_cell_impl.py BasicLSTMCell/LSTMCell.call: i, j, f, o = split(concat([x, h], 1) @ kernel + bias, 4, 1);
# LSTMCell.build: w_i_diag, w_f_diag, w_o_diag, projection/kernel. Older names for the same tensors
# (contrib/rnn/python/tools/checkpoint_convert.py): TF 1.0–1.2 weights/biases, TF 0.x
# Linear/Matrix and Linear/Bias, LSTMCell W_0 (first shard), B, W_*_diag, W_P_0.
# A TF1 cell's fused kernel rows: the input rows, then the recurrent rows (concat([x, h], 1) @ kernel).
_FUSED_ROWS = (("kernel", "input"), ("recurrent", "recurrent"))
_TF1_ROLES = (
    Role(
        "kernel",
        (Parts(_FUSED_ROWS), Gates("ijfo")),
        names=("kernel", "weights", "Linear/Matrix", "W_0"),
    ),
    Role("bias", (Gates("ijfo"),), part="bias", names=("bias", "biases", "Linear/Bias", "B")),
    *(
        Role(
            f"w_{letter}_diag",
            (Dim("units"),),
            part="peephole",
            gate=letter,
            names=(f"w_{letter}_diag", f"W_{letter.upper()}_diag"),
            optional=True,
            evidence=True,
        )
        for letter in "ifo"
    ),
    Role(
        "projection/kernel",
        (Dim("units"), Dim("projection")),
        part="projection",
        names=("projection/kernel", "projection/weights", "W_P_0"),
        optional=True,
        evidence=True,
    ),
)

# keras/src/layers/rnn/lstm.py LSTMCell.build and tf_keras: kernel (in, 4u), recurrent_kernel (u, 4u),
# bias (4u), columns i, f, c, o; unit_forget_bias only initialises the bias.
_KERAS_ROLES = (
    Role("kernel", (Dim("input"), Gates("ifco")), part="kernel"),
    Role("recurrent_kernel", (Dim("recurrent"), Gates("ifco")), part="recurrent"),
    Role("bias", (Gates("ifco"),), part="bias", optional=True),
)
_KERAS_CONFIG_KEYS = {"activation": ("activation",), "recurrent_activation": ("recurrent_activation",)}
# Where a Keras config says each size, to check against the weights (detect.py _check_config_sizes).
_KERAS_CONFIG_SIZES: dict[str, tuple[tuple[str, int | None], ...]] = {"units": (("units", None),)}
# Keras 1 called the gates' activation inner_activation and defaulted it to hard_sigmoid.
_KERAS1_DEFAULTS = {
    "activation": Setting("tanh", _KERAS_DEFAULT, assumed=True),
    "recurrent_activation": Setting("hard_sigmoid", _KERAS_DEFAULT, assumed=True),
}
_KERAS1_CONFIG_KEYS = {
    "activation": ("activation",),
    "recurrent_activation": ("recurrent_activation", "inner_activation"),
}
# Keras 1 called the units output_dim.
_KERAS1_CONFIG_SIZES: dict[str, tuple[tuple[str, int | None], ...]] = {"units": (("output_dim", None), ("units", None))}


def _keras1_roles(letters: str) -> tuple[Role, ...]:
    """Keras 1's one array per gate and part: W_<g> (in, u), U_<g> (u, u), b_<g> (u,), gate by gate."""
    return tuple(
        Role(f"{prefix}_{letter}", axes, part=part, gate=letter)
        for letter in letters
        for prefix, axes, part in (
            ("W", (Dim("input"), Dim("units")), "kernel"),
            ("U", (Dim("recurrent"), Dim("units")), "recurrent"),
            ("b", (Dim("units"),), "bias"),
        )
    )


def _keras_cudnn(key: str, cell: CellKind, letters: str, fixed: Mapping[str, Setting]) -> Layout:
    """A Keras 2 CuDNNLSTM or CuDNNGRU: kernel and recurrent_kernel per gate block in cuDNN memory
    order (transforms), the bias input-side gates then recurrent-side gates."""
    return Layout(
        key,
        "keras",
        cell,
        (
            Role("kernel", (Dim("input"), Gates(letters)), part="kernel", transform="cudnn-input"),
            Role("recurrent_kernel", (Dim("recurrent"), Gates(letters)), part="recurrent", transform="transpose"),
            Role("bias", (PartsOfGates(("bias", "recurrent_bias"), letters),)),
        ),
        cell_names=(((), f"CuDNN{cell.name}"),),
        config_class=f"(?i){cell.name.lower()}",
        config_sizes=_KERAS_CONFIG_SIZES,
        fixed=fixed,
    )


def _gates_export(key: str, cell: CellKind, defaults: Mapping[str, Setting]) -> Layout:
    """The layout of this tool's gates export of one cell kind: `<gate>/<part>` in the canonical
    axes, gates lettered by the cell kind's own first letters (targets/gates.py writes it)."""
    return Layout(
        key,
        "lstm-inspect",
        cell,
        (
            *(
                Role(
                    f"{gate}/{part}",
                    tuple(Dim(size) for size in CANONICAL_AXES[part]),
                    part=part,
                    gate=cell.letter(gate),
                    optional=part not in ("kernel", "recurrent"),
                )
                for gate in cell.gates
                for part in GATE_PARTS
                if part != "peephole" or gate in cell.peephole_gates
            ),
            *(
                Role(part, tuple(Dim(size) for size in CANONICAL_AXES[part]), part=part, optional=True)
                for part in cell.layer_parts
            ),
        ),
        cell_names=(((), "gates export"),),
        defaults={
            **defaults,
            "activation": Setting("unknown", "a gates export does not store activations"),
            "recurrent_activation": Setting("unknown", "a gates export does not store activations"),
        },
    )


# ---- GRU layouts (../shared/LAYOUTS.md "GRU layouts") -------------------------------------------------

_RESET_BEFORE_TF1 = "TF1 GRUCell.call: concat([x, r∘h]) @ candidate/kernel"
_CUDNN_GRU = "cuDNN's GRU computes r∘(h·R + b_R)"
_CUDNN_GRU_FIXED = "cuDNN computes its GRU with sigmoid and tanh only"
_KERAS_GRU_DEFAULT = "Keras' GRU default (reset_after=True since Keras 2.3); the file has no model config to say"

# rnn_cell_impl.py GRUCell (tf_keras legacy_cells.py in TF 2): gates/kernel [in + h, 2u] whose columns
# split r, u; gates/bias [2u] (initialised to 1.0, stored); candidate/kernel [in + h, u] applied to
# concat([x, r∘h]). TF 1.0–1.2 named them …/weights and …/biases (contrib/rnn/python/tools/
# checkpoint_convert.py), TF 0.x GRUCell/Gates/Linear/Matrix and …/Bias, GRUCell/Candidate/Linear/….
_TF1_GRU_GATES = (
    Role(
        "gates/kernel",
        (Parts(_FUSED_ROWS), Gates("ru")),
        names=("gates/kernel", "gates/weights", "Gates/Linear/Matrix"),
    ),
    Role("gates/bias", (Gates("ru"),), part="bias", names=("gates/bias", "gates/biases", "Gates/Linear/Bias")),
)
_TF1_GRU_ROLES = (
    *_TF1_GRU_GATES,
    Role(
        "candidate/kernel",
        (Parts(_FUSED_ROWS), Dim("units")),
        gate="c",
        names=("candidate/kernel", "candidate/weights", "Candidate/Linear/Matrix"),
    ),
    Role(
        "candidate/bias",
        (Dim("units"),),
        part="bias",
        gate="c",
        names=("candidate/bias", "candidate/biases", "Candidate/Linear/Bias"),
    ),
)

# keras/src/layers/rnn/gru.py GRUCell and tf_keras gru.py: kernel (in, 3u), recurrent_kernel (u, 3u),
# columns z, r, h; reset_after=True keeps bias (2, 3u), an input-side and a recurrent-side row, and
# computes r∘(h·U_h + b_h); reset_after=False keeps (3u,) and computes (r∘h)·U_h.
_KERAS_GRU_KERNELS = (
    Role("kernel", (Dim("input"), Gates("zrh")), part="kernel"),
    Role("recurrent_kernel", (Dim("recurrent"), Gates("zrh")), part="recurrent"),
)
_KERAS_GRU_CONFIG_KEYS = {**_KERAS_CONFIG_KEYS, "reset_after": ("reset_after",)}
_KERAS_GRU_DEFAULTS = {
    "activation": Setting("tanh", _KERAS_DEFAULT, assumed=True),
    "recurrent_activation": Setting("sigmoid", _KERAS_DEFAULT, assumed=True),
}


def _keras_gru(key: str, bias: Role | None, reset_after: Setting | None) -> Layout:
    return Layout(
        key,
        "keras",
        GRU,
        (*_KERAS_GRU_KERNELS, *((bias,) if bias else ())),
        cell_names=(((), "GRU"),),
        config_class=r"(?i)gru",
        cell_from_config=True,
        fixed={"reset_after": reset_after} if reset_after else {},
        defaults={
            **_KERAS_GRU_DEFAULTS,
            **({} if reset_after else {"reset_after": Setting(True, _KERAS_GRU_DEFAULT, assumed=True)}),
        },
        config_keys=_KERAS_GRU_CONFIG_KEYS,
        config_sizes=_KERAS_CONFIG_SIZES,
    )


_GRU_SOURCE_LAYOUTS: tuple[Layout, ...] = (
    # tf_keras cudnn_gru.py CuDNNGRU: kernel (in, 3u) and recurrent_kernel (u, 3u) columns z, r, h, bias
    # (6u,) = input-side z, r, h then recurrent-side; reset after the recurrent matmul. Each kernel
    # gate block in cuDNN memory order, converted by Keras' own loader as CuDNNLSTM's is (tf_keras
    # saving/legacy/hdf5_format.py _convert_rnn_weights, convert_gru_weights: the bias reshaped (2, -1)).
    _keras_cudnn(
        "keras-cudnn-gru",
        GRU,
        "zrh",
        {
            "reset_after": Setting(True, _CUDNN_GRU),
            "recurrent_activation": Setting("sigmoid", _CUDNN_GRU_FIXED),
            "activation": Setting("tanh", _CUDNN_GRU_FIXED),
        },
    ),
    _keras_gru(
        "keras-gru",
        Role("bias", (PartIndex(("bias", "recurrent_bias")), Gates("zrh"))),
        Setting(True, "a (2, 3u) bias: Keras' GRU(reset_after=True)"),
    ),
    _keras_gru(
        "keras-gru-reset-before",
        Role("bias", (Gates("zrh"),), part="bias"),
        Setting(False, "a (3u,) bias: Keras' GRU(reset_after=False)"),
    ),
    # GRU(use_bias=False): the shapes do not say where the reset gate applies; the config does.
    _keras_gru("keras-gru-no-bias", None, None),
    # Keras 1 recurrent.py GRU.build: W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h; step computes
    # hh = activation(x_h + (r∘h_tm1)·U_h); inner_activation (the gates') defaulted to hard_sigmoid.
    Layout(
        "keras1-gru",
        "keras",
        GRU,
        _keras1_roles("zrh"),
        cell_names=(((), "GRU (Keras 1)"),),
        config_class=r"(?i)gru",
        fixed={"reset_after": Setting(False, "Keras 1's GRU.step: (r∘h_tm1)·U_h")},
        defaults=_KERAS1_DEFAULTS,
        config_keys=_KERAS1_CONFIG_KEYS,
        config_sizes=_KERAS1_CONFIG_SIZES,
    ),
    # contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py CudnnCompatibleGRUCell (TF 1.x; its CudnnGRU
    # saveable writes the same names): GRUCell's gates/kernel and gates/bias (r, u; the two cuDNN
    # biases summed), and the candidate's input_projection/kernel [in, u], hidden_projection/kernel
    # [u, u] with a bias each: candidate = x·W + b_W + r∘(h·R + b_R), cuDNN's reset-after GRU.
    Layout(
        "tf1-cudnn-compatible-gru",
        "tensorflow",
        GRU,
        (
            *_TF1_GRU_GATES,
            *(
                Role(
                    f"candidate/{projection}/{leaf}",
                    axes,
                    part=part,
                    gate="c",
                    names=tuple(f"candidate/{projection}/{name}" for name in names),
                )
                for projection, part, axes, leaf, names in (
                    ("input_projection", "kernel", (Dim("input"), Dim("units")), "kernel", ("kernel", "weights")),
                    (
                        "hidden_projection",
                        "recurrent",
                        (Dim("recurrent"), Dim("units")),
                        "kernel",
                        ("kernel", "weights"),
                    ),
                    ("input_projection", "bias", (Dim("units"),), "bias", ("bias", "biases")),
                    ("hidden_projection", "recurrent_bias", (Dim("units"),), "bias", ("bias", "biases")),
                )
            ),
        ),
        cell_names=(((), "CudnnCompatibleGRUCell"),),
        fixed={
            "reset_after": Setting(True, _CUDNN_GRU),
            "recurrent_activation": Setting("sigmoid", _CUDNN_GRU_FIXED),
            "activation": Setting("tanh", _CUDNN_GRU_FIXED),
        },
        min_sizes={"input": 1},
    ),
    Layout(
        "tf1-gru",
        "tensorflow",
        GRU,
        _TF1_GRU_ROLES,
        cell_names=(((), "GRUCell"),),
        # GRUCell.call hard-codes sigmoid for the gates; the candidate's activation is an argument.
        fixed={
            "reset_after": Setting(False, _RESET_BEFORE_TF1),
            "recurrent_activation": Setting("sigmoid", "TF1 GRUCell computes its gates with sigmoid"),
        },
        defaults={"activation": Setting("tanh", _TF1_DEFAULT, assumed=True)},
        min_sizes={"input": 1},
    ),
)


def _keras_conv_lstm(cell: CellKind) -> Layout:
    """A Keras ConvLSTM1D/2D/3D (keras/src/layers/rnn/conv_lstm.py ConvLSTMCell.build): kernel
    (*kernel_size, input channels, 4 filters), recurrent_kernel (*kernel_size, filters, 4 filters),
    bias (4 filters,); gates i, f, c, o on the last axis, as an LSTM's. The filters are its units."""
    rank = spatial_rank(cell)
    spatial = tuple(Dim(size) for size in SPATIAL_SIZES[:rank])
    # Keras 3's defaults (conv_lstm2d.py ConvLSTM2D.__init__); tf_keras' recurrent_activation was hard_sigmoid.
    assumed = "Keras 3's default; the file has no model config to say"
    return Layout(
        f"keras-convlstm{rank}d",
        "keras",
        cell,
        (
            Role("kernel", (*spatial, Dim("input"), Gates("ifco")), part="kernel"),
            Role("recurrent_kernel", (*spatial, Dim("recurrent"), Gates("ifco")), part="recurrent"),
            Role("bias", (Gates("ifco"),), part="bias", optional=True),
        ),
        cell_names=(((), cell.name),),
        config_class=r"(?i)convlstm",
        cell_from_config=True,
        defaults={
            "activation": Setting("tanh", assumed, assumed=True),
            "recurrent_activation": Setting("sigmoid", assumed + " (tf_keras' is hard_sigmoid)", assumed=True),
            "strides": Setting([1] * rank, assumed, assumed=True),
            "padding": Setting("valid", assumed, assumed=True),
            "dilation_rate": Setting([1] * rank, assumed, assumed=True),
            "data_format": Setting("channels_last", assumed, assumed=True),
        },
        config_keys={**_KERAS_CONFIG_KEYS, **{setting: (setting,) for setting in CONV_SETTINGS}},
        config_sizes={
            "units": (("filters", None),),
            **{size: (("kernel_size", axis),) for axis, size in enumerate(SPATIAL_SIZES[:rank])},
        },
    )


SOURCE_LAYOUTS: tuple[Layout, ...] = (
    # tf_keras cudnn_recurrent.py CuDNNLSTM: bias = input-side i, f, c, o then recurrent-side (8u);
    # each kernel gate block in cuDNN memory order, converted by Keras' own loader
    # (tf_keras saving/legacy/hdf5_format.py _convert_rnn_weights: input blocks
    # `k.T.reshape(k.shape, order="F")`, recurrent blocks `k.T`).
    _keras_cudnn(
        "keras-cudnn",
        LSTM,
        "ifco",
        {"recurrent_activation": Setting("sigmoid", _CUDNN_FIXED), "activation": Setting("tanh", _CUDNN_FIXED)},
    ),
    Layout(
        "keras",
        "keras",
        LSTM,
        _KERAS_ROLES,
        cell_names=(((), "LSTM"),),
        config_class=r"(?i)lstm",
        cell_from_config=True,
        defaults={
            "activation": Setting("tanh", _KERAS_DEFAULT, assumed=True),
            "recurrent_activation": Setting("sigmoid", _KERAS_DEFAULT, assumed=True),
        },
        config_keys=_KERAS_CONFIG_KEYS,
        config_sizes=_KERAS_CONFIG_SIZES,
    ),
    # Keras 1 recurrent.py LSTM.build: W_i, U_i, b_i, W_c, U_c, b_c, W_f, ... one array per gate and
    # part; inner_activation (the gates') defaulted to hard_sigmoid.
    Layout(
        "keras1",
        "keras",
        LSTM,
        _keras1_roles("icfo"),
        cell_names=(((), "LSTM (Keras 1)"),),
        config_class=r"(?i)lstm",
        defaults=_KERAS1_DEFAULTS,
        config_keys=_KERAS1_CONFIG_KEYS,
        config_sizes=_KERAS1_CONFIG_SIZES,
    ),
    # cudnn_rnn_ops.py CudnnCompatibleLSTMCell: LSTMCell's variables under its own scope name,
    # forget_bias=0.0 (cuDNN adds none).
    Layout(
        "tf1-cudnn-compatible",
        "tensorflow",
        LSTM,
        _TF1_ROLES[:2],
        forget_bias=0.0,
        cell_names=(((), "CudnnCompatibleLSTMCell"),),
        scope_required=r"(^|/)cudnn_compatible_lstm_cell[^/]*$",
        fixed={
            "recurrent_activation": Setting("sigmoid", _CUDNN_FIXED),
            "activation": Setting("tanh", _CUDNN_FIXED),
            "forget_bias": Setting(0.0, "CudnnCompatibleLSTMCell adds no forget bias (cuDNN has none)"),
        },
        min_sizes={"input": 1},
    ),
    # A [rows, 4u] kernel and a [4u] bias is also what a dense layer looks like: only a scope named
    # like an LSTM cell, or one with peepholes or a projection, is taken for one.
    Layout(
        "tf1",
        "tensorflow",
        LSTM,
        _TF1_ROLES,
        forget_bias=1.0,
        # Without peepholes or a projection, BasicLSTMCell and LSTMCell store the same tensors.
        cell_names=(
            (("w_f_diag",), "LSTMCell"),
            (("projection/kernel",), "LSTMCell"),
            ((), "(Basic)LSTMCell"),
        ),
        scope_pattern=r"(?i)lstm",
        # LSTMCell.call hard-codes sigmoid for the gates; the cell activation is an argument.
        fixed={"recurrent_activation": Setting("sigmoid", "TF1 LSTM cells compute their gates with sigmoid")},
        defaults={
            "activation": Setting("tanh", _TF1_DEFAULT, assumed=True),
            "forget_bias": Setting(1.0, _TF1_DEFAULT, assumed=True),
        },
        min_sizes={"input": 1},
    ),
    *_GRU_SOURCE_LAYOUTS,
    # This tool's own `export --layout gates` (targets/gates.py): every canonical block under its
    # layer as `L/<gate>/<part>`, in the canonical axes, and `L/projection`. The 0-d L/forget_bias
    # (L/reset_after for a GRU; and L/cell_clip, L/proj_clip) are settings, which readers/npz.py
    # hands detection as hints.
    _gates_export(
        "gates-export",
        LSTM,
        {"forget_bias": Setting(0.0, "the export holds no L/forget_bias; assumed 0 (--forget-bias sets it)", True)},
    ),
    _gates_export(
        "gates-export-gru",
        GRU,
        {"reset_after": Setting(True, "the export holds no L/reset_after; assumed True", True)},
    ),
    *(_keras_conv_lstm(cell) for cell in CONV_LSTMS),
)

# Layouts no file this tool reads is in, only exports.
TARGET_LAYOUTS: tuple[Layout, ...] = (
    # torch/nn/modules/rnn.py LSTM: weight_ih_l0 (4H, in) rows i, f, g, o; weight_hh_l0 (4H, rec);
    # bias_ih_l0, bias_hh_l0 (4H); weight_hr_l0 (proj, H); the reverse direction with "_reverse".
    Layout(
        "pytorch",
        "pytorch",
        LSTM,
        (
            Role("weight_ih_l0", (Gates("ifgo"), Dim("input")), part="kernel"),
            Role("weight_hh_l0", (Gates("ifgo"), Dim("recurrent")), part="recurrent"),
            Role("bias_ih_l0", (Gates("ifgo"),), part="bias", optional=True),
            Role("bias_hh_l0", (Gates("ifgo"),), part="recurrent_bias", optional=True),
            Role("weight_hr_l0", (Dim("projection"), Dim("units")), part="projection", optional=True),
        ),
        direction_suffixes=("", "_reverse"),
    ),
    # onnx/defs/rnn/defs.cc LSTM: W [dirs, 4H, in], R [dirs, 4H, H], B [dirs, 8H] = [Wb, Rb], P [dirs, 3H];
    # gates i, o, f, c; peepholes i, o, f.
    Layout(
        "onnx",
        "onnx",
        LSTM,
        (
            Role("W", (Direction(), Gates("iofc"), Dim("input")), part="kernel"),
            Role("R", (Direction(), Gates("iofc"), Dim("recurrent")), part="recurrent"),
            Role("B", (Direction(), PartsOfGates(("bias", "recurrent_bias"), "iofc")), optional=True),
            Role("P", (Direction(), Gates("iof")), part="peephole", optional=True),
        ),
    ),
    # torch/nn/modules/rnn.py GRU: weight_ih_l0 (3H, in) rows r, z, n; weight_hh_l0 (3H, H); bias_ih_l0,
    # bias_hh_l0 (3H); n = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn)): the reset gate after the matmul.
    Layout(
        "pytorch-gru",
        "pytorch",
        GRU,
        (
            Role("weight_ih_l0", (Gates("rzn"), Dim("input")), part="kernel"),
            Role("weight_hh_l0", (Gates("rzn"), Dim("recurrent")), part="recurrent"),
            Role("bias_ih_l0", (Gates("rzn"),), part="bias", optional=True),
            Role("bias_hh_l0", (Gates("rzn"),), part="recurrent_bias", optional=True),
        ),
        fixed={"reset_after": Setting(True, "torch.nn.GRU computes r∘(W_hn h + b_hn)")},
        direction_suffixes=("", "_reverse"),
    ),
    # onnx/defs/rnn/defs.cc GRU: W [dirs, 3H, in], R [dirs, 3H, H], B [dirs, 6H] = [Wb, Rb], gates z, r, h;
    # the node's linear_before_reset says where the reset gate applies, so both kinds of GRU fit.
    Layout(
        "onnx-gru",
        "onnx",
        GRU,
        (
            Role("W", (Direction(), Gates("zrh"), Dim("input")), part="kernel"),
            Role("R", (Direction(), Gates("zrh"), Dim("recurrent")), part="recurrent"),
            Role("B", (Direction(), PartsOfGates(("bias", "recurrent_bias"), "zrh")), optional=True),
        ),
    ),
)

# Every layout by key: those files are read in (tried by detection in SOURCE_LAYOUTS' order), and
# those only written (targets/ packs canonical blocks into any of them, "keras" and "tf1" included).
LAYOUTS: dict[str, Layout] = {layout.key: layout for layout in (*SOURCE_LAYOUTS, *TARGET_LAYOUTS)}


# ---- cells recognised by name and not modelled ----------------------------------------------------


@frozen_record
class Unmodelled:
    """A cell known by its scope name whose computation no layout here models: detection lists its
    scope as a recurrent layer not understood, never as a layer of any layout.

    layout: what its tensors hold, for summary's explanations only (nothing claims or exports it);
            its scope_required is the scope name the cell gives itself.
    why:    what the cell computes that no LSTM layout does.
    """

    name: str
    why: str
    layout: Layout


# contrib/rnn/python/ops/rnn_cell.py CoupledInputForgetGateLSTMCell.call: W (sharded: W_0, W_1, ...)
# [input + num_proj, 3u] and B [3u] split j, f, o; c = f∘c + (1 − f)∘tanh(j): the input gate is
# 1 − f. Peepholes W_F_diag, W_O_diag; projection W_P (W_P_0, ...).
COUPLED_LSTM = CellKind(
    "coupled-gate LSTM",
    ("cell", "forget", "output"),
    {"cell": "cell", "forget": "forget", "output": "output", "j": "cell", "f": "forget", "o": "output"},
    peephole_gates=("forget", "output"),
    forget_gate="forget",
)

# contrib/rnn/python/ops/rnn_cell.py LayerNormBasicLSTMCell: _linear's kernel [input + u, 4u] split
# i, j, f, o, a bias only when layer_norm=False; _norm gives each of input, transform, forget,
# output and the new state its own gamma and beta [u].
_NORMED = ("input", "transform", "forget", "output", "state")

UNMODELLED: tuple[Unmodelled, ...] = (
    Unmodelled(
        "CoupledInputForgetGateLSTMCell",
        "its input gate is 1 − forget gate: 3 gate blocks (j, f, o) where an LSTM has 4, so no LSTM layout computes it",
        Layout(
            "tf1-coupled",
            "tensorflow",
            COUPLED_LSTM,
            (
                Role("W_0", (Parts((("kernel", "input"), ("recurrent", "recurrent"))), Gates("jfo"))),
                Role("B", (Gates("jfo"),), part="bias", optional=True),
                Role("W_F_diag", (Dim("units"),), part="peephole", gate="f", optional=True),
                Role("W_O_diag", (Dim("units"),), part="peephole", gate="o", optional=True),
                Role("W_P_0", (Dim("units"), Dim("projection")), part="projection", optional=True),
            ),
            forget_bias=1.0,
            scope_required=r"(^|/)coupled_input_forget_gate_lstm_cell[^/]*$",
        ),
    ),
    Unmodelled(
        "LayerNormBasicLSTMCell",
        "it normalises each gate's pre-activation and the new cell state (a gamma and beta each), "
        "which no LSTM layout computes",
        Layout(
            "tf1-layer-norm",
            "tensorflow",
            LSTM,
            (
                Role("kernel", (Parts((("kernel", "input"), ("recurrent", "recurrent"))), Gates("ijfo"))),
                Role("bias", (Gates("ijfo"),), part="bias", optional=True),
                *(
                    Role(f"{normed}/{leaf}", (Dim("units"),), optional=True)
                    for normed in _NORMED
                    for leaf in ("gamma", "beta")
                ),
            ),
            forget_bias=1.0,
            scope_required=r"(^|/)layer_norm_basic_lstm_cell[^/]*$",
        ),
    ),
)
