"""The library: open a file, list its LSTM layers, take their gate blocks as numpy arrays, and run
each command as one call that returns its result object.

import lstm_inspect
ckpt = lstm_inspect.load("fixtures/tf1_basic/model.ckpt")
forget = ckpt.layer("rnn/basic_lstm_cell").gate("forget")   # .kernel, .recurrent, .bias
ckpt.summary(); ckpt.split(gates=["forget"]); ckpt.export("gates.npz"); ckpt.verify()
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .detect import CLIP_SETTINGS, LayerSpec, UnknownLayer, Variable, detect
from .errors import LstmInspectError, NoLSTMLayers, UnknownName, UnsupportedFormat, warn
from .readers import TensorStore, open_store
from .records import record
from .schema import (
    CELL_KINDS,
    CONV_SETTINGS,
    GATE_PARTS,
    KIND_NAMES,
    LSTM,
    PARTS,
    CellKind,
    Layout,
    Setting,
    canonical_part,
)
from .slicer import Block, cut, plan, view
from .terminal import safe

if TYPE_CHECKING:
    from typing import IO

    import numpy as np

    from .export import Progress
    from .readers.base import TensorInfo
    from .results import ExportResult, SplitStream, Summary, VerifyResult
    from .targets import Features
    from .weights import Weights


@record
class GateBlocks:
    """One gate's blocks: kernel (input_size, units), recurrent (recurrent_size, units), bias (units,),
    where stored recurrent_bias (units,) and an LSTM's peephole (units,)."""

    gate: str
    kernel: np.ndarray
    recurrent: np.ndarray
    bias: np.ndarray | None = None
    recurrent_bias: np.ndarray | None = None
    peephole: np.ndarray | None = None

    def parts(self) -> dict[str, np.ndarray]:
        """The blocks the layer has, by part name."""
        return {part: getattr(self, part) for part in GATE_PARTS if getattr(self, part) is not None}


# Beyond this no trained LSTM weight goes: gates saturate long before (sigmoid(20) is 1 in float32),
# so such a number is a damaged file or a diverged run. Keras .h5 files carry no checksum: one
# flipped exponent bit in a float32 turns 0.5 into 1.7e38 and nothing else notices.
IMPLAUSIBLE_MAGNITUDE = 1e6
# Values are checked this many at a time, so that the check needs no copy of a large tensor.
_CHECK_CHUNK = 1 << 16


def is_float_dtype(dtype: str) -> bool:
    """Whether a TensorInfo dtype name is a floating-point type. ml_dtypes' types (bfloat16,
    float8_*, and also int4) are no numpy floating types whatever their dtype kind, so the name
    tells: "float16", "float32", "float64", "bfloat16", "float8_e4m3fn", ..."""
    return dtype.startswith(("float", "bfloat16"))


def _narrow_float(dtype: np.dtype) -> bool:
    """float8, float6 and float4 (ml_dtypes): numpy cannot store them in .npy files (float8_e5m2
    even claims to be a builtin float and fails there), and no framework runs on them."""
    return dtype.name.startswith("float") and dtype.itemsize < 2


class Layer:
    """One recurrent layer (an LSTM or a GRU) of an open file. Reads its tensors on first use and keeps
    them until release(). Each stored tensor is checked once, when first read: a non-float dtype is refused, float8 is
    widened to float32, and non-finite or implausibly large values are reported by errors.warn."""

    def __init__(self, spec: LayerSpec, store: TensorStore) -> None:
        self.spec = spec
        self._store = store
        self._values: dict[str, np.ndarray] = {}
        self._checked: set[str] = set()  # kept across release(): one warning per tensor, not per read

    # What detection found, read without touching tensor data.

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cell(self) -> str:
        """The cell class the file's layer is: "LSTMCell", "LSTM", "CuDNNLSTM", ..."""
        return self.spec.cell

    @property
    def layout(self) -> Layout:
        return self.spec.layout

    @property
    def sizes(self) -> dict[str, int]:
        return self.spec.sizes

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def units(self) -> int:
        return self.spec.units

    @property
    def recurrent_size(self) -> int:
        return self.spec.recurrent_size

    @property
    def projection_size(self) -> int | None:
        return self.spec.projection_size

    @property
    def peepholes(self) -> bool:
        return self.spec.peepholes

    @property
    def params(self) -> int:
        return self.spec.params

    @property
    def dtype(self) -> str:
        return self.spec.dtype

    @property
    def settings(self) -> dict[str, Setting]:
        """forget_bias, activation, recurrent_activation (and clips), each with where it was read."""
        return self.spec.settings

    @property
    def forget_bias(self) -> float:
        return self.spec.forget_bias

    @property
    def activation(self) -> str:
        """The cell's activation: "tanh", ..., or "unknown" when the file does not say."""
        return self.spec.activation

    @property
    def recurrent_activation(self) -> str:
        return self.spec.recurrent_activation

    @property
    def activation_source(self) -> str:
        """ "config", "graph", "default" (the framework's own), or "unknown" when nothing says."""
        return self.spec.activation_source

    @property
    def pair(self) -> str | None:
        """The bidirectional pair this layer is a half of."""
        return self.spec.pair

    @property
    def direction(self) -> str | None:
        """ "forward" or "backward" inside a pair."""
        return self.spec.direction

    def activations(self) -> tuple[str, str]:
        """(activation, recurrent_activation) the layer computes; where the file does not say (a bare
        Keras .weights.h5, a TF2 object checkpoint), the layout's defaults, tanh and sigmoid."""
        chosen = []
        for setting, fallback in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
            value = self.settings[setting].value
            default = self.layout.defaults.get(setting)
            chosen.append(str(default.value if default else fallback) if value == "unknown" else str(value))
        return chosen[0], chosen[1]

    def clips(self) -> dict[str, float]:
        """The clip settings the layer has, by name (cell_clip, proj_clip): each clips to ±value.
        A graph clipping to another range (low, high) is refused: TF's cells clip symmetrically
        (clip_by_value(c, -cell_clip, cell_clip), rnn_cell_impl.py), and so does every target."""
        clips = {}
        for name in CLIP_SETTINGS:
            setting = self.settings.get(name)
            if setting is None or setting.value is None:
                continue
            if isinstance(setting.value, (tuple, list)):
                low, high = setting.value
                raise UnsupportedFormat(
                    f"{self._store.path}: layer {self.name!r} clips with {name} to [{low:g}, {high:g}] "
                    f"({setting.source}), not to ±c as TF's cells do; lstm-inspect computes and exports "
                    "symmetric clips only"
                )
            clips[name] = float(setting.value)  # type: ignore[arg-type]
        return clips

    def variants(self) -> dict[str, bool]:
        """The cell kind's variant settings (a GRU's reset_after); where the file does not say (a
        Keras GRU without a bias or a config), the layout's default."""
        chosen = {}
        for name in self.layout.cell.variants:
            setting = self.settings.get(name)
            value = "unknown" if setting is None else setting.value
            if value == "unknown":
                default = self.layout.defaults.get(name)
                value = default.value if default is not None else False
            chosen[name] = bool(value)
        return chosen

    def features(self) -> Features:
        """What the layer needs of an export target (reads no tensor data)."""
        from .targets import Features

        activation, recurrent = self.activations()
        return Features(
            self.peepholes,
            self.projection_size,
            self.units,
            activation,
            recurrent,
            tuple(self.clips()),
            self.layout.cell.name,
            tuple(self.variants().items()),
        )

    def conv(self) -> dict[str, object]:
        """What a ConvLSTM's convolutions do (strides, padding, dilation_rate, data_format), as the
        file says or Keras' defaults; {} for a layer of another cell kind."""
        conv = {}
        for name in CONV_SETTINGS:
            setting = self.settings.get(name)
            default = self.layout.defaults.get(name)
            if setting is not None:
                unsaid = setting.value in ("unknown", None) and default is not None
                conv[name] = default.value if unsaid and default is not None else setting.value
        return conv

    def __repr__(self) -> str:
        return f"<Layer {self.spec.name!r} {self.spec.cell} input={self.spec.input_size} units={self.spec.units}>"

    def blocks(self) -> list[Block]:
        """Where every block sits, without reading anything."""
        return plan(self.spec)

    def read(self, block: Block) -> np.ndarray:
        """The block's values as a contiguous array; its tensor is read on first use."""
        return cut(block, self._tensor(block.tensor))

    def view(self, block: Block) -> np.ndarray:
        """The block as a view of its stored tensor where numpy can make one (what an export streams
        from); it keeps the whole tensor in memory while it lives, release() or not."""
        return view(block, self._tensor(block.tensor))

    def _tensor(self, name: str) -> np.ndarray:
        value = self._values.get(name)
        if value is None:
            advise = getattr(self._store, "advise", None)
            if advise is not None and not self._values:
                # The first tensor read of the layer: a remote file fetches the rest with it (base.py).
                advise([info.name for info in self.spec.tensors.values()])
            value = self._values[name] = self._checked_value(name, self._store.read(name))
        return value

    def _checked_value(self, name: str, value: np.ndarray) -> np.ndarray:
        import numpy as np

        path = self._store.path
        if not is_float_dtype(value.dtype.name):
            # Quantized int8 weights need scales stored elsewhere, and no framework trains
            # integer, bool or complex LSTM weights: any number made of these would be wrong.
            raise UnsupportedFormat(
                f"{path}: tensor {name!r} of LSTM layer {self.spec.name!r} holds {value.dtype.name} values; "
                "LSTM weights are floating point (float16, bfloat16, float32, float64), so lstm-inspect reads no others"
            )
        first = name not in self._checked
        self._checked.add(name)
        if _narrow_float(value.dtype):
            if first:
                warn(f"{path}: tensor {name!r} is {value.dtype.name}; read as float32, which holds each value exactly")
            value = value.astype(np.float32)
        if first:
            self._check_values(name, value)
        return value

    def _check_values(self, name: str, value: np.ndarray) -> None:
        """Warn, in one line, about NaN, infinite and implausibly large values in a stored tensor."""
        import numpy as np

        flat = value.reshape(-1)
        non_finite = huge = 0
        largest = 0.0
        # Magnitudes in the tensor's own numpy float type, or float32 for bfloat16 and float8
        # (which it holds exactly), in one buffer used chunk after chunk: no fresh pages, and a
        # pass over 256 MiB of float32 costs a third of what float64 copies did.
        work = value.dtype if value.dtype.kind == "f" else np.dtype(np.float32)
        buffer = np.empty(min(flat.size, _CHECK_CHUNK), work)
        for start in range(0, flat.size, _CHECK_CHUNK):
            piece = flat[start : start + _CHECK_CHUNK]
            chunk = buffer[: piece.size]
            chunk[...] = piece
            np.abs(chunk, out=chunk)
            if float(chunk.max()) <= IMPLAUSIBLE_MAGNITUDE:  # False for a NaN too
                continue
            chunk = chunk.astype(np.float64)
            finite = chunk[np.isfinite(chunk)]
            non_finite += chunk.size - finite.size
            beyond = finite[finite > IMPLAUSIBLE_MAGNITUDE]
            huge += beyond.size
            largest = max(largest, float(beyond.max())) if beyond.size else largest
        if not (non_finite or huge):
            return
        found = []
        if non_finite:
            found.append(f"{non_finite:,} NaN or infinite")
        if huge:
            found.append(f"{huge:,} beyond ±{IMPLAUSIBLE_MAGNITUDE:,.0f} (up to {largest:.3g})")
        if not self._store.checksums:
            cause = "the file may be damaged (it carries no checksums of its values)"
        else:
            cause = "the file is damaged or the training diverged"
        warn(
            f"{self._store.path}: tensor {name!r}: {' and '.join(found)} of its {flat.size:,} values, "
            f"which no trained LSTM holds; {cause}"
        )

    def gate(self, gate: str) -> GateBlocks:
        """The blocks of one gate; `gate` is a canonical name or an alias of the layer's cell kind
        (LSTM: i, f, c, j, g, o, candidate; GRU: r, z, u, n, h, c, candidate)."""
        name = resolve_gate(gate, self.layout.cell)
        return GateBlocks(name, **{b.part: self.read(b) for b in self.blocks() if b.gate == name})

    def gates(self) -> dict[str, GateBlocks]:
        return {gate: self.gate(gate) for gate in self.layout.cell.gates}

    @property
    def projection(self) -> np.ndarray | None:
        blocks = [b for b in self.blocks() if b.part == "projection"]
        return self.read(blocks[0]) if blocks else None

    def weights(self, views: bool = False) -> Weights:
        """The layer's canonical blocks, with what its cell computes (call release() when done).
        views: the blocks as views of the stored tensors where numpy can make them (see view):
        nothing is copied, and a tensor read through a memory map may be read-only."""
        from .weights import Weights

        activation, recurrent = self.activations()
        take = self.view if views else self.read
        blocks = {(block.gate, block.part): take(block) for block in self.blocks()}
        return Weights(
            self.name,
            blocks,
            self.layout.cell,
            self.forget_bias,
            activation,
            recurrent,
            settings={**self.clips(), **self.variants()},
            conv=self.conv(),
        )

    def load(self) -> None:
        """Read every stored tensor of the layer (each is checked as it is read, see the class)."""
        for name in dict.fromkeys(block.tensor for block in self.blocks()):
            self._tensor(name)

    def release(self) -> None:
        """Forget the tensors read so far (exports of many layers call this to bound memory). A
        tensor the reader mapped from its file is unmapped once no view of it is left (numpy
        keeps the mapping alive while a view of it lives, so that no view can outlive its bytes)."""
        self._values.clear()


class Checkpoint:
    """An open file with its LSTM layers detected. Use as a context manager or call close()."""

    def __init__(self, store: TensorStore, forget_bias: float | None = None) -> None:
        self.store = store
        self.path = store.path
        self.format = store.format
        # What a reader may add (readers/base.py): the model's variables as the file declares them,
        # and why it says nothing beside the weights where it says nothing.
        trainable, unsaid = (getattr(store, hook, lambda: None)() for hook in ("trainable_variables", "unsaid"))
        detection = detect(
            store.tensors(),
            store.layer_configs(),
            forget_bias=forget_bias,
            hints=store.layer_hints(),
            trainable=trainable,
            unsaid=unsaid,
            where=store.path,
        )
        self.layers = [Layer(spec, store) for spec in detection.layers]
        self._detection = detection
        # Recurrent layers no layout computes (summary lists them; no command takes them for an LSTM).
        self.unknown: list[UnknownLayer] = detection.unknown
        # What --layer can name, each to its layers' positions: a layer's name, a bidirectional
        # pair's name, and either as `summary` shows it (terminal.safe) where that differs; so
        # that selecting k of n layers costs k look-ups, not k scans.
        self._positions: dict[str, list[int]] = {}
        shown: dict[str, list[int]] = {}
        for position, layer in enumerate(self.layers):
            for key in (layer.name, layer.spec.pair):
                if key is None:
                    continue
                self._positions.setdefault(key, []).append(position)
                if safe(key) != key:
                    shown.setdefault(safe(key), []).append(position)
        for key, positions in shown.items():
            self._positions.setdefault(key, positions)
        self._by_name = {layer.name: layer for layer in self.layers}

    @property
    def variables(self) -> list[Variable]:
        """Every stored tensor that is no part of a layer, with what it is, in file order."""
        return self._detection.variables

    def variable_groups(self) -> tuple[list[TensorInfo], list[TensorInfo], list[TensorInfo]]:
        """The tensors of `variables` as (model, optimizer, bookkeeping) lists, in file order, made
        without a Variable each."""
        return self._detection.variable_groups()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def layer(self, name: str) -> Layer:
        layer = self._by_name.get(name)
        if layer is not None:
            return layer
        if not self.layers:
            raise NoLSTMLayers(f"{self.path}: no {_KINDS} layer found{self._not_understood()}")
        raise self._unknown(name)

    def _not_understood(self) -> str:
        """What a message about missing layers adds when the file has recurrent layers no layout computes."""
        if not self.unknown:
            return ""
        names = ", ".join(layer.name for layer in self.unknown[:_LISTED_LAYERS])
        return f" (recurrent layers not understood: {names}; `lstm-inspect summary` says what they hold)"

    def _unknown(self, name: str) -> LstmInspectError:
        recurrent = next((layer for layer in self.unknown if layer.name == name), None)
        if recurrent is not None:
            return UnsupportedFormat(
                f"{self.path}: {name} is a recurrent layer lstm-inspect does not understand: {recurrent.why}"
            )
        if not self.layers:
            return NoLSTMLayers(f"{self.path}: no {_KINDS} layer found{self._not_understood()}")
        listed = ", ".join(layer.name for layer in self.layers[:_LISTED_LAYERS])
        if len(self.layers) > _LISTED_LAYERS:
            listed += f", … ({len(self.layers):,} in all: `lstm-inspect summary` lists them)"
        return UnknownName(f"{self.path}: no {_KINDS} layer named {name!r}; layers: {listed}")

    def select(self, names: Iterable[str] = ()) -> list[Layer]:
        """The named layers in file order (all when none are named); a bidirectional pair's name
        selects both halves, and a name may be given as `summary` shows it (control characters
        escaped). Raises when the file has no LSTM layer or a name matches none."""
        if not self.layers and not names:
            said = self._not_understood() or " (see `lstm-inspect summary` for what it holds)"
            raise NoLSTMLayers(f"{self.path}: no {_KINDS} layer found{said}")
        wanted: set[int] = set()
        for name in names:
            positions = self._positions.get(name)
            if positions is None:
                raise self._unknown(name)
            wanted.update(positions)
        return [self.layers[p] for p in sorted(wanted)] if wanted else list(self.layers)

    def units(self, names: Iterable[str] = (), paired: bool = True) -> list[ExportUnit]:
        """The selected layers as units, in file order: with `paired`, the two halves of a
        bidirectional pair that are both selected become one unit (forward first), named after the
        pair; every other layer is a unit of its own."""
        layers = self.select(names)
        halves: dict[str, list[Layer]] = {}
        for layer in layers:
            if layer.pair is not None:
                halves.setdefault(layer.pair, []).append(layer)
        units: list[ExportUnit] = []
        joined: set[str] = set()
        for layer in layers:
            if layer.name in joined:
                continue
            pair = halves.get(layer.pair) if layer.pair is not None else None
            if paired and pair is not None and len(pair) == 2:
                pair.sort(key=lambda half: half.direction != "forward")
                joined.update(half.name for half in pair)
                units.append(ExportUnit(str(layer.pair), pair))
            else:
                units.append(ExportUnit(layer.name, [layer]))
        return units

    # One call per command, keyword arguments named like the command's flags.

    def summary(self) -> Summary:
        """Every layer, its sizes, how its fused tensors decompose, parameter counts, the other variables."""
        from .results import summarize

        return summarize(self)

    def split(
        self,
        layers: Iterable[str] = (),
        gates: Iterable[str] = (),
        parts: Iterable[str] = (),
        values: bool = False,
        max_elements: int | None = None,
    ) -> SplitStream:
        """Per layer, gate and part: shape, where it was cut from, statistics (and values), made one
        layer at a time as the result's `layers` is iterated. max_elements: refuse, before reading
        anything, values of more elements than this in all (None: no limit)."""
        from .results import stream_split

        return stream_split(self, layers, gates, parts, values, max_elements)

    def export(
        self,
        output: str | None,
        layout: str = "gates",
        layers: Iterable[str] = (),
        gates: Iterable[str] = (),
        target_forget_bias: float | None = None,
        progress: Progress | None = None,
        replace: bool = True,
        stream: IO[bytes] | None = None,
    ) -> ExportResult:
        """Write the layers' weights in `layout` to `output` (.npz, or .onnx with the onnx layout)
        or to `stream`; see export.export."""
        from .export import export

        return export(self, output, layout, layers, gates, target_forget_bias, progress, replace, stream)

    def verify(
        self,
        layers: Iterable[str] = (),
        seed: int = 0,
        steps: int = 5,
        batch: int = 3,
        frameworks: Iterable[str] | None = None,
        progress: Progress | None = None,
    ) -> VerifyResult:
        """Every layer run over a seeded random input by the numpy LSTM, every export read back and
        the frameworks that are installed (or those of `frameworks`; [] for none); see verify.verify."""
        from .verify import FRAMEWORKS, verify

        chosen = FRAMEWORKS if frameworks is None else frameworks
        return verify(self, layers, seed=seed, steps=steps, batch=batch, frameworks=chosen, progress=progress)

    def iter_blocks(
        self, layers: Iterable[str] = (), gates: Iterable[str] = (), parts: Iterable[str] = ()
    ) -> Iterator[tuple[Layer, Block]]:
        """(layer, block) for the selected layers, gates and parts, one layer at a time; a gate name
        selects what it names in each layer's cell kind ("c": an LSTM's cell gate, a GRU's candidate)."""
        selected = self.select(layers)
        gate_names = resolve_gates(gates, cell_kinds(selected))
        part_names = {resolve_part(p, cell_kinds(selected)) for p in parts}
        for layer in selected:
            for block in layer.blocks():
                if gate_names and block.gate not in gate_names:
                    continue
                if part_names and block.part not in part_names:
                    continue
                yield layer, block


@record
class ExportUnit:
    """What one exported layer holds: one LSTM layer, or a bidirectional pair's forward then backward half."""

    name: str
    layers: list[Layer]

    @property
    def bidirectional(self) -> bool:
        return len(self.layers) == 2

    def mismatch(self) -> str | None:
        """Why the two halves of a pair cannot be one bidirectional layer (they differ), or None."""
        if not self.bidirectional:
            return None

        def shape(layer: Layer) -> tuple[object, ...]:
            return (
                layer.input_size,
                layer.units,
                layer.projection_size,
                layer.peepholes,
                *layer.activations(),
                layer.dtype,
                layer.layout.cell.name,
                *layer.variants().values(),
            )

        forward, backward = self.layers
        if shape(forward) == shape(backward):
            return None
        return (
            f"its halves {forward.name} and {backward.name} differ (input, units, projection, peepholes, "
            f"activations, dtype, cell kind and its variants: {shape(forward)} vs {shape(backward)})"
        )


# An unknown name's message lists this many layers: a file of thousands would make it a page.
_LISTED_LAYERS = 20


# How messages name the layers this tool finds: "LSTM or GRU".
_KINDS = " or ".join(KIND_NAMES)


def resolve_gate(gate: str, cell: CellKind = LSTM) -> str:
    """The canonical gate of `cell` that `gate` names (a name or an alias)."""
    return next(iter(resolve_gates([gate], [cell])))


def resolve_gates(gates: Iterable[str], cells: Iterable[CellKind] = CELL_KINDS.values()) -> set[str]:
    """The canonical gates the names in `gates` name in any of `cells`; a name that none of them
    knows is an UnknownName listing their gates."""
    kinds = list(cells)
    found: set[str] = set()
    for gate in gates:
        names = {name for cell in kinds if (name := cell.gate(gate)) is not None}
        if not names:
            listed = "; ".join(
                f"{cell.name}: {cell.alias_text()}" if len(kinds) > 1 else cell.alias_text() for cell in kinds
            )
            raise UnknownName(f"unknown gate {gate!r}; gates: {listed}")
        found |= names
    return found


def cell_kinds(layers: Iterable[Layer]) -> list[CellKind]:
    """The cell kinds of these layers, each once, in order."""
    return list({layer.layout.cell.name: layer.layout.cell for layer in layers}.values())


def resolve_part(part: str, cells: Iterable[CellKind] = CELL_KINDS.values()) -> str:
    """The canonical part `part` names, if a layer of one of `cells` can hold it (a GRU has no
    peepholes and no projection)."""
    kinds = list(cells)
    known = [p for p in PARTS if any(p in cell.parts for cell in kinds)]
    name = canonical_part(part)
    if name is None or name not in known:
        raise UnknownName(f"unknown part {part!r}; parts: {', '.join(known)}")
    return name


def load(
    path: str | os.PathLike[str],
    forget_bias: float | None = None,
    verify: bool = True,
    backend: str = "native",
) -> Checkpoint:
    """Open a TF checkpoint or Keras file and detect its LSTM and GRU layers.

    forget_bias: the runtime forget bias to assume for every layer (default: each
    framework's own, 1.0 for TF1 cells, 0.0 for Keras and CudnnCompatibleLSTMCell).
    verify: check checksums of what is read. backend: "native" or "tensorflow".
    """
    with _collection_paused():
        return Checkpoint(open_store(path, verify=verify, backend=backend), forget_bias=forget_bias)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No garbage collection while a file's index is parsed and its layers detected: that makes
    tens of thousands of small objects for a large index (an _Entry, a TensorInfo, tuples per
    tensor), none of them garbage, and the collector's passes over them, each longer as they
    grow, cost 40 % of the parse of a 20,001-tensor index."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
