"""Result objects: what every command found or did, as plain data with to_dict() for --json; and
the builders of summary's and split's (export.py and verify.py build theirs)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import TYPE_CHECKING, cast

from .api import Checkpoint, Layer, is_float_dtype
from .detect import LayerSpec, UnknownLayer
from .errors import LstmInspectError, warn
from .records import frozen_record, record
from .schema import SPATIAL_SIZES, Setting
from .schema import explain as explain_role
from .slicer import Block

if TYPE_CHECKING:
    import numpy as np


def plain(value: object) -> object:
    """dataclasses.asdict for results: dataclasses as dicts, lists and tuples and dicts of them in
    kind; other values as they are, where asdict deep-copies each (results hold numbers, strings
    and None), which made --json of a 20,001-tensor summary cost 180 ms more than its table."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:  # a shape, a summary's rows: asked first, the commonest after scalars
        return [item if type(item) in _SCALARS else plain(item) for item in cast("list[object]", value)]
    fields_of = _FIELDS.get(kind)
    if fields_of is None and hasattr(kind, "__dataclass_fields__"):
        names = tuple(f.name for f in fields(value))  # type: ignore[arg-type]
        fields_of = _FIELDS[kind] = (names, attrgetter(*names) if len(names) > 1 else lambda v: (getattr(v, names[0]),))
    if fields_of is not None:
        names, values = fields_of
        return {name: item if type(item) in _SCALARS else plain(item) for name, item in zip(names, values(value))}
    if isinstance(value, list):
        return [item if type(item) in _SCALARS else plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if isinstance(value, dict):
        return {
            key if type(key) in _SCALARS else plain(key): item if type(item) in _SCALARS else plain(item)
            for key, item in value.items()
        }
    return value


_SCALARS = frozenset((str, int, float, bool, type(None)))
_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[object], tuple]]] = {}


def as_dict(result: object) -> dict:
    """A result dataclass as plain data (plain), for to_dict()."""
    data = plain(result)
    assert isinstance(data, dict)
    return data


# A line per tensor: made in its thousands for a large file, a compiled dataclass (a faster
# __init__ than a record's, for a fixed cost at import).
@dataclass(slots=True)
class TensorLine:
    name: str
    shape: list[int]
    explanation: str


@frozen_record  # made once per layer structure, and shared by its layers
class SettingLine:
    """One setting of a layer as summary reports it: its value, where it was read (or why it is
    assumed and how to override it), and whether it is assumed (the file does not say)."""

    value: object
    source: str
    assumed: bool


@record
class LayerSummary:
    name: str
    cell: str
    framework: str
    layout: str
    gate_order: str  # the framework's own letters, in stored order: "ijfo"
    gates: list[str]  # the same order in canonical names
    input_size: int
    units: int
    recurrent_size: int
    projection: int | None
    peepholes: bool
    forget_bias: float | None  # None for a cell kind without a forget gate (a GRU)
    activation: str
    recurrent_activation: str
    activation_source: str
    params: int
    dtype: str
    pair: str | None
    direction: str | None
    tensors: list[TensorLine]
    # forget_bias, activation, recurrent_activation, and cell_clip, proj_clip where the file says
    settings: dict[str, SettingLine] = field(default_factory=dict)
    kind: str = "LSTM"  # the cell kind: "LSTM", "GRU"
    # The cell kind's variant settings (a GRU's reset_after): the value it computes with, and where from.
    variants: dict[str, Setting] = field(default_factory=dict)
    # A ConvLSTM's convolutions: kernel_size, strides, padding, dilation_rate, data_format, and
    # `source`, where they were read (the model config, or Keras' defaults assumed); None otherwise.
    convolution: dict[str, object] | None = None


@record
class UnknownSummary:
    """A recurrent layer no layout computes (detect.UnknownLayer): what the file says it is, why it is
    not taken for an LSTM, and its tensors, explained where the cell is known well enough to say."""

    name: str
    cell: str | None
    why: str
    params: int
    tensors: list[TensorLine]


@dataclass(slots=True)  # one per variable: thousands (see TensorLine)
class VariableLine:
    name: str
    shape: list[int]
    dtype: str
    params: int
    category: str


@record
class Summary:
    path: str
    format: str
    layers: list[LayerSummary]
    variables: list[VariableLine]  # model variables that are not part of an LSTM layer
    lstm_params: int
    total_params: int  # every model variable, LSTM or not; no optimizer state or bookkeeping
    optimizer_tensors: int
    optimizer_params: int
    bookkeeping: list[VariableLine]
    # Recurrent layers not understood: listed, counted in total_params, never taken for an LSTM.
    unknown: list[UnknownSummary] = field(default_factory=list)

    def to_dict(self) -> dict:
        return as_dict(self)


def _convolution(layer: Layer) -> dict[str, object] | None:
    conv = layer.conv()
    if not conv:
        return None
    # One source for all of them: a config says every one, or none is said and Keras' defaults are assumed.
    setting = layer.settings.get("padding")
    if setting is None or setting.value in ("unknown", None):
        setting = layer.layout.defaults.get("padding")
    source = ("assumed: " if setting is not None and setting.assumed else "") + (setting.source if setting else "")
    kernel = [layer.sizes[size] for size in SPATIAL_SIZES if size in layer.sizes]
    return {"kernel_size": kernel, **conv, "source": source}


def _unknown_summary(unknown: UnknownLayer) -> UnknownSummary:
    lines = []
    for info in unknown.tensors:
        said = unknown.explanations.get(info.name)
        leaf = info.name[len(unknown.name) + 1 :] if info.name.startswith(unknown.name + "/") else info.name
        lines.append(TensorLine(info.name, list(info.shape), f"{leaf} {list(info.shape)} = {said}" if said else ""))
    return UnknownSummary(unknown.name, unknown.cell, unknown.why, unknown.params, lines)


def explain(spec: LayerSpec, said: dict[tuple, str] | None = None) -> list[TensorLine]:
    """One line per stored tensor of the layer saying how its shape decomposes. said: the
    explanations made so far, by layout, role and sizes, kept by a caller that explains many
    layers (a file's thousands of layers are a few structures)."""
    said = {} if said is None else said
    lines = []
    for role, info in spec.tensors.items():
        key = (spec.layout.key, role, *spec.sizes.items())
        text = said.get(key)
        if text is None:
            text = said[key] = explain_role(spec.layout, spec.layout.role(role), spec.sizes)
        lines.append(TensorLine(info.name, list(info.shape), f"{role} {list(info.shape)} = {text}"))
    return lines


def variant_settings(layer: Layer) -> dict[str, Setting]:
    """Each variant setting of the layer's cell kind as it computes with it: what the file says, or
    else the layout's default, marked as assumed."""
    found = {}
    for name, value in layer.variants().items():
        said = layer.settings.get(name)
        if said is not None and said.value != "unknown":
            found[name] = Setting(value, said.source, said.assumed)
        else:
            default = layer.layout.defaults.get(name)
            source = "; ".join(s.source for s in (said, default) if s is not None)
            found[name] = Setting(value, source, True)
    return found


def _setting_lines(settings: Mapping[str, Setting]) -> dict[str, SettingLine]:
    return {
        name: SettingLine(list(v.value) if isinstance(v.value, tuple) else v.value, v.source, v.assumed)
        for name, v in settings.items()
    }


def summarize(ckpt: Checkpoint) -> Summary:
    said: dict[tuple, str] = {}
    # What a layer's structure and settings give (a file's thousands of layers are a few of each),
    # worked out once per structure; every layer gets lists and dicts of its own, of frozen
    # SettingLines that the layers of a structure share (summary --json writes their text once).
    shared: dict[tuple, tuple] = {}
    layers = []
    for layer in ckpt.layers:
        s = layer.spec
        dtype = s.dtype
        if not is_float_dtype(dtype):
            warn(
                f"{ckpt.path}: LSTM layer {layer.name!r} stores {dtype} weights, which no framework "
                "trains; split, export and verify refuse them"
            )
        structure = (
            s.layout.key,
            *s.sizes.items(),
            *((role, info.shape) for role, info in s.tensors.items()),
            *s.settings,
            *map(id, s.settings.values()),  # the same Setting objects: detect makes them once per layout
        )
        made = shared.get(structure)
        if made is None:
            layout = s.layout
            made = shared[structure] = (
                layout.framework,
                layout.key,
                layout.letters,
                layout.order,
                s.input_size,
                s.units,
                s.recurrent_size,
                s.projection_size,
                s.peepholes,
                None if layout.cell.forget_gate is None else s.forget_bias,
                s.activation,
                s.recurrent_activation,
                s.activation_source,
                s.params,
                [line.explanation for line in explain(s, said)],
                layout.cell.name,
                variant_settings(layer),
                _convolution(layer) is not None,
                # A value that is a list is each layer's own; the rest are frozen and shared.
                None if any(isinstance(v.value, tuple) for v in s.settings.values()) else _setting_lines(s.settings),
            )
        (framework, key, letters, order, input_size, units, recurrent, projection, peepholes, forget_bias) = made[:10]
        activation, recurrent_activation, activation_source, params, explained, kind, variants, conv, lines = made[10:]
        layers.append(
            LayerSummary(
                s.name,
                s.cell,
                framework,
                key,
                letters,
                list(order),
                input_size,
                units,
                recurrent,
                projection,
                peepholes,
                forget_bias,
                activation,
                recurrent_activation,
                activation_source,
                params,
                dtype,
                s.pair,
                s.direction,
                [TensorLine(info.name, list(info.shape), text) for info, text in zip(s.tensors.values(), explained)],
                dict(lines) if lines is not None else _setting_lines(s.settings),
                kind,
                dict(variants),
                _convolution(layer) if conv else None,
            )
        )

    # What may be 100,000 variables, two thirds of them optimizer slots: those are counted in C.
    model_tensors, slots, kept = ckpt.variable_groups()
    size = math.prod
    model = [VariableLine(i.name, list(i.shape), i.dtype, size(i.shape), "model") for i in model_tensors]
    bookkeeping = [VariableLine(i.name, list(i.shape), i.dtype, size(i.shape), "bookkeeping") for i in kept]
    optimizer_tensors, optimizer_params = len(slots), sum(map(size, map(attrgetter("shape"), slots)))
    lstm_params = sum(layer.params for layer in layers)
    unknown = [_unknown_summary(u) for u in ckpt.unknown]
    return Summary(
        path=ckpt.path,
        format=ckpt.format,
        layers=layers,
        variables=model,
        lstm_params=lstm_params,
        total_params=lstm_params + sum(v.params for v in model) + sum(u.params for u in unknown),
        optimizer_tensors=optimizer_tensors,
        optimizer_params=optimizer_params,
        bookkeeping=bookkeeping,
        unknown=unknown,
    )


@record
class EffectiveBias:
    """The forget gate's bias as the cell uses it: the stored bias plus the runtime forget bias."""

    forget_bias: float
    mean: float
    std: float
    min: float
    max: float
    l2: float


@record
class BlockStats:
    gate: str | None
    # The gate's place in the stored gate order, from 1 (the 3rd of TF's i, j, f, o for forget);
    # None for a part of the whole layer (the projection).
    position: int | None
    part: str
    shape: list[int]
    source: str
    dtype: str
    mean: float
    std: float
    min: float
    max: float
    l2: float
    # On the forget gate's bias only (None elsewhere): the same statistics with the runtime forget bias added.
    effective: EffectiveBias | None = None
    # The numbers when asked for: a list in split()'s result, the block's array in stream_split's.
    values: list | np.ndarray | None = None


@record
class LayerSplit:
    name: str
    cell: str
    framework: str
    gate_order: str  # the framework's letters in stored order: "ijfo"
    # Whether the gates share stored tensors (a fused kernel: position counts blocks in it) or each
    # gate has tensors of its own (Keras 1's W_i, U_i, b_i).
    fused_gates: bool
    forget_bias: float | None  # what the cell adds to the forget gate at run time; None: no forget gate (a GRU)
    forget_bias_source: str  # where that value comes from (Setting.source)
    forget_bias_assumed: bool  # True: the file does not say, the value is the framework's default
    note: str | None = None  # why the layer has no blocks here: none matches the selection
    blocks: list[BlockStats] = field(default_factory=list)
    variants: dict[str, bool] = field(default_factory=dict)  # a GRU's reset_after


@record
class SplitResult:
    path: str
    layers: list[LayerSplit]

    def to_dict(self) -> dict:
        return as_dict(self)

    @property
    def block_count(self) -> int:
        return sum(len(layer.blocks) for layer in self.layers)


def block_title(layer: str, gate: str | None, part: str, shape: Sequence[int]) -> str:
    """How messages and `split --values` name a block: "rnn/lstm_cell forget kernel [12, 64]"."""
    return " ".join([layer, *([gate] if gate else []), part, "[" + ", ".join(str(d) for d in shape) + "]"])


# Statistics are gathered this many elements at a time, in float64: a block of a large layer
# needs no float64 copy of itself.
_STATS_CHUNK = 1 << 16


def _pieces(array: np.ndarray) -> Iterator[np.ndarray]:
    """`array` in pieces of about _STATS_CHUNK elements (whole rows of a matrix), without copies."""
    if not array.size:
        return
    if array.ndim <= 1:
        flat = array.reshape(-1)
        for start in range(0, flat.size, _STATS_CHUNK):
            yield flat[start : start + _STATS_CHUNK]
        return
    rows = array.reshape(-1, array.shape[-1])
    step = max(1, _STATS_CHUNK // max(rows.shape[1], 1))
    for start in range(0, len(rows), step):
        yield rows[start : start + step]


def statistics(array: np.ndarray) -> tuple[float, float, float, float, float]:
    """(mean, std, min, max, L2 norm) in float64, piece by piece: the pieces' means and sums of
    squared deviations are combined as Chan, Golub and LeVeque's pairwise update does, which is
    as exact as numpy's two passes. NaN propagates; a zero-sized block gives zeros."""
    import numpy as np

    count, mean, squared_deviations, squares = 0, 0.0, 0.0, 0.0
    low, high = math.inf, -math.inf
    work = None  # one float64 buffer for every piece's deviations: no fresh pages per piece
    # Non-finite values (already reported by Layer's value check) make NaN and inf statistics,
    # which is what they are: no warning about inf - inf on top. The reductions are numpy's
    # ufuncs themselves: a split of thousands of small layers spends its time in these calls.
    with np.errstate(invalid="ignore", over="ignore"):
        for piece in _pieces(array):
            n = piece.size
            if not n:
                continue
            if work is None:
                work = np.empty(min(array.size, _STATS_CHUNK + piece.shape[-1]), np.float64)
            deviations = work[:n].reshape(piece.shape)
            # Summed and subtracted in float64 as numpy casts, a buffer at a time: no float64 copy.
            piece_mean = float(np.add.reduce(piece, axis=None, dtype=np.float64)) / n
            np.subtract(piece, piece_mean, out=deviations, dtype=np.float64)
            piece_deviations = float(np.vdot(deviations, deviations))
            delta, total = piece_mean - mean, count + n
            if math.isfinite(delta):
                mean += delta * n / total
            else:  # an infinity, which the update would subtract from itself: inf stays inf
                mean = (mean * count + piece_mean * n) / total
            squared_deviations += piece_deviations + delta * delta * count * n / total
            # Σ x² = Σ (x − m)² + n m², both terms at least 0: no cancellation. An infinite value's
            # deviation is NaN, its square is not: those pieces sum their squares themselves.
            if math.isfinite(piece_mean):
                squares += piece_deviations + n * piece_mean * piece_mean
            else:
                flat = piece.reshape(-1).astype(np.float64)
                squares += float(flat @ flat)
            # Minimum and maximum are exact in the stored dtype.
            piece_low, piece_high = (
                float(np.minimum.reduce(piece, axis=None)),
                float(np.maximum.reduce(piece, axis=None)),
            )
            # As numpy's min and max: a NaN, once seen, stays.
            if low == low and not piece_low >= low:
                low = piece_low
            if high == high and not piece_high <= high:
                high = piece_high
            count = total
    if not count:
        return (0.0,) * 5
    return mean, math.sqrt(squared_deviations / count), low, high, math.sqrt(squares)


@functools.cache
def _dtype_name(dtype: np.dtype) -> str:
    # numpy builds a dtype's name anew each time it is asked, which a split of 6,000 layers notices.
    return dtype.name


def block_stats(
    layer: Layer, block: Block, values: bool = False, position: int | None = None, add: float | None = None
) -> BlockStats:
    """One block's statistics; with `values`, its array (a view of the layer's tensor where numpy can
    make one). position: the gate's place in the stored order; add: a runtime forget bias, for the
    statistics of the block as the cell uses it (`effective`)."""
    import numpy as np

    array = layer.view(block)
    mean, std, low, high, l2 = statistics(array)
    effective = None
    if add is not None:
        # A bias vector: its float64 copy is as small as the block itself.
        effective = EffectiveBias(add, *statistics(array.astype(np.float64) + add))
    return BlockStats(
        gate=block.gate,
        position=position,
        part=block.part,
        shape=list(block.shape),
        source=block.source,
        dtype=_dtype_name(array.dtype),
        mean=mean,
        std=std,
        min=low,
        max=high,
        l2=l2,
        effective=effective,
        values=array if values else None,
    )


@record
class SplitStream:
    """split's result made as it is read: `layers` yields one LayerSplit at a time."""

    path: str
    block_count: int  # how many blocks the layers hold in all, known before any is read
    layers: Iterator[LayerSplit]


def stream_split(
    ckpt: Checkpoint,
    layers: Iterable[str] = (),
    gates: Iterable[str] = (),
    parts: Iterable[str] = (),
    values: bool = False,
    max_elements: int | None = None,
) -> SplitStream:
    """split, one layer at a time: each LayerSplit is computed when it is taken, with `values` each
    block's array. One layer's tensors are in memory at a time, so those arrays are valid until
    the next layer is taken. Unknown names, and with `values` a selection of more than
    `max_elements` numbers, are refused here, before anything is read."""
    selected = list(ckpt.iter_blocks(layers, gates, parts))
    chosen = ckpt.select(layers)
    if len(chosen) > len({id(layer) for layer, _ in selected}):
        empty = _without_blocks(ckpt.path, chosen, selected, gates, parts)
    else:
        empty = {}
    if values and max_elements is not None:
        _check_value_count(selected, max_elements)
    return SplitStream(ckpt.path, len(selected), _split_layers(chosen, selected, values, empty))


def _without_blocks(
    path: str,
    chosen: Sequence[Layer],
    selected: Sequence[tuple[Layer, Block]],
    gates: Iterable[str],
    parts: Iterable[str],
) -> dict[str, str]:
    """Why each chosen layer that has no block of the selection has none, by layer name (a layer
    without peepholes and --part peephole); refused when no chosen layer has any."""
    having = {id(layer) for layer, _ in selected}
    asked = " ".join([*(f"--gate {g}" for g in gates), *(f"--part {p}" for p in parts)])
    notes = {}
    for layer in chosen:
        if id(layer) in having:
            continue
        blocks = layer.blocks()
        held = ", ".join(dict.fromkeys(b.part for b in blocks if b.gate is not None)) + " of each gate"
        whole = ", ".join(dict.fromkeys(b.part for b in blocks if b.gate is None))
        held += f", and the layer's {whole}" if whole else ""
        notes[layer.name] = f"no block matches {asked}: the layer holds {held}"
    if not selected:
        first = next(iter(notes))
        others = f" (and {len(notes) - 1:,} more layer(s) alike)" if len(notes) > 1 else ""
        raise LstmInspectError(f"{path}: {first}{others}: {notes[first]}")
    return notes


def _check_value_count(selected: Sequence[tuple[Layer, Block]], max_elements: int) -> None:
    total = 0
    for _, block in selected:
        total += math.prod(block.shape)
        if total > max_elements:
            everything = sum(math.prod(b.shape) for _, b in selected)
            raise LstmInspectError(
                f"--values would print {everything:,} numbers, more than --max-elements {max_elements:,}, which "
                f"{block_title(block.layer, block.gate, block.part, block.shape)} goes past; narrow the selection "
                "with --layer, --gate and --part, raise --max-elements, or write the values to a file with "
                "`lstm-inspect export`"
            )


def _layer_split(layer: Layer, note: str | None = None) -> LayerSplit:
    layout = layer.layout
    setting = layer.settings.get("forget_bias")
    return LayerSplit(
        name=layer.name,
        cell=layer.cell,
        framework=layout.framework,
        gate_order=layout.letters,
        fused_gates=any(len(role.letters()) > 1 for role in layout.roles),
        forget_bias=None if layout.cell.forget_gate is None else layer.forget_bias,
        forget_bias_source=setting.source if setting is not None else "",
        forget_bias_assumed=setting.assumed if setting is not None else False,
        note=note,
        variants=layer.variants(),
    )


def _split_layers(
    chosen: Sequence[Layer], selected: Sequence[tuple[Layer, Block]], values: bool, empty: Mapping[str, str]
) -> Iterator[LayerSplit]:
    blocks_of: dict[int, list[Block]] = {}
    for layer, block in selected:
        blocks_of.setdefault(id(layer), []).append(block)
    for layer in chosen:
        blocks = blocks_of.get(id(layer))
        if blocks is None:
            yield _layer_split(layer, empty[layer.name])
            continue
        entry = _layer_split(layer)
        positions = {gate: index for index, gate in enumerate(layer.layout.order, 1)}
        forget_gate = layer.layout.cell.forget_gate
        entry.blocks = [
            block_stats(
                layer,
                block,
                values,
                positions.get(block.gate) if block.gate is not None else None,
                layer.forget_bias if block.gate == forget_gate and block.part == "bias" else None,
            )
            for block in blocks
        ]
        yield entry
        # The arrays are views of the layer's tensors: they go with the tensors, whoever holds the entry.
        for stats in entry.blocks:
            stats.values = None
        layer.release()


def split(
    ckpt: Checkpoint,
    layers: Iterable[str] = (),
    gates: Iterable[str] = (),
    parts: Iterable[str] = (),
    values: bool = False,
) -> SplitResult:
    """Per selected layer, gate and part: shape, where it was cut from, statistics (and values, as
    lists of Python floats). Holds every value asked for: the CLI streams stream_split instead."""
    import numpy as np

    def as_list(array: object) -> list | None:
        # float64 first: tolist() of bfloat16 would give ml_dtypes scalars, not floats.
        return None if array is None else np.asarray(array).astype(np.float64).tolist()

    out = [
        replace(entry, blocks=[replace(stats, values=as_list(stats.values)) for stats in entry.blocks])
        for entry in stream_split(ckpt, layers, gates, parts, values).layers
    ]
    return SplitResult(ckpt.path, out)


# ---- export --------------------------------------------------------------------------------------------


@record
class ExportResult:
    """What an export wrote: where, how many arrays and bytes, in which layout, of which layers
    (unit names: a bidirectional pair exported as one layer is named after the pair)."""

    path: str
    arrays: int = 0
    bytes: int = 0
    layout: str = "gates"
    layers: list[str] = field(default_factory=list)
    format: str = "npz"  # "npz", or "onnx" for a runnable model
    directions: int | None = None  # the ONNX model's LSTM or GRU node: 1, or 2 for a pair
    cell: str | None = None  # the ONNX model's node: "LSTM" or "GRU"

    def to_dict(self) -> dict:
        return as_dict(self)


# ---- verify --------------------------------------------------------------------------------------------------


@record
class Check:
    """One target's run of one layer: the largest |difference| from the baseline, or why there is none."""

    target: str
    max_abs_diff: float | None = None
    note: str | None = None  # "refused: …", "not installed: torch", …
    error: str | None = None  # the framework failed on our export: a failed check

    def passed(self, tolerance: float) -> bool:
        if self.error is not None:
            return False
        return self.max_abs_diff is None or self.max_abs_diff <= tolerance


@record
class LayerCheck:
    name: str
    dtype: str
    tolerance: float  # already scaled by the size of the baseline outputs
    checks: list[Check] = field(default_factory=list)
    note: str | None = None  # why the layer could not be run at all
    # Not run: the unit of the same structure whose checks cover this layer's code paths.
    covered_by: str | None = None

    @property
    def ok(self) -> bool:
        return all(check.passed(self.tolerance) for check in self.checks)

    def check(self, target: str) -> Check | None:
        return next((c for c in self.checks if c.target == target), None)


@record
class VerifyResult:
    path: str
    seed: int
    steps: int
    batch: int
    targets: list[str]
    layers: list[LayerCheck]

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers)

    def failures(self) -> list[tuple[LayerCheck, Check]]:
        return [(layer, c) for layer in self.layers for c in layer.checks if not c.passed(layer.tolerance)]

    def to_dict(self) -> dict:
        data = as_dict(self)
        data["ok"] = self.ok
        for layer, entry in zip(self.layers, data["layers"]):
            entry["ok"] = layer.ok
        return data
