"""The library: open a file, list its LSTM layers, take their gate blocks as numpy arrays.

import lstm_inspect
ckpt = lstm_inspect.load("fixtures/tf1_basic/model.ckpt")
forget = ckpt.layer("rnn/basic_lstm_cell").gate("forget")   # .kernel, .recurrent, .bias
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .detect import LayerSpec, Variable, detect
from .errors import NoLSTMLayers, UnknownName
from .readers import TensorStore, open_store
from .schema import GATE_PARTS, LSTM, PARTS, canonical_part
from .slicer import Block, cut, plan, view

if TYPE_CHECKING:
    import numpy as np


@dataclass
class GateBlocks:
    """One gate's blocks: kernel (input_size, units), recurrent (recurrent_size, units), bias (units,)."""

    gate: str
    kernel: np.ndarray
    recurrent: np.ndarray
    bias: np.ndarray | None = None
    recurrent_bias: np.ndarray | None = None
    peephole: np.ndarray | None = None

    def parts(self) -> dict[str, np.ndarray]:
        """The blocks the layer has, by part name."""
        return {part: getattr(self, part) for part in GATE_PARTS if getattr(self, part) is not None}


class Layer:
    """One LSTM layer of an open file. Reads its tensors on first use and keeps them until release()."""

    def __init__(self, spec: LayerSpec, store: TensorStore) -> None:
        self.spec = spec
        self._store = store
        self._values: dict[str, np.ndarray] = {}

    def __getattr__(self, attribute: str) -> object:
        # name, cell, layout, input_size, units, recurrent_size, projection_size, forget_bias, ...
        if attribute.startswith("_") or attribute == "spec":
            raise AttributeError(attribute)
        return getattr(self.spec, attribute)

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
            value = self._values[name] = self._store.read(name)
        return value

    def gate(self, gate: str) -> GateBlocks:
        """The blocks of one gate; `gate` is a canonical name or an alias (i, f, c, j, g, o, candidate)."""
        name = resolve_gate(gate)
        return GateBlocks(name, **{b.part: self.read(b) for b in self.blocks() if b.gate == name})

    def gates(self) -> dict[str, GateBlocks]:
        return {gate: self.gate(gate) for gate in LSTM.gates}

    @property
    def projection(self) -> np.ndarray | None:
        blocks = [b for b in self.blocks() if b.part == "projection"]
        return self.read(blocks[0]) if blocks else None

    def release(self) -> None:
        """Forget the tensors read so far (exports of many layers call this to bound memory)."""
        self._values.clear()


class Checkpoint:
    """An open file with its LSTM layers detected. Use as a context manager or call close()."""

    def __init__(self, store: TensorStore, forget_bias: float | None = None) -> None:
        self.store = store
        self.path = store.path
        self.format = store.format
        detection = detect(store.tensors(), store.layer_configs(), forget_bias=forget_bias, hints=store.layer_hints())
        self.layers = [Layer(spec, store) for spec in detection.layers]
        self.variables: list[Variable] = detection.variables

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        if not self.layers:
            raise NoLSTMLayers(f"{self.path}: no LSTM layer found")
        valid = ", ".join(layer.name for layer in self.layers)
        raise UnknownName(f"{self.path}: no LSTM layer named {name!r}; layers: {valid}")

    def select(self, names: Iterable[str] = ()) -> list[Layer]:
        """The named layers in file order (all when none are named); a bidirectional pair's name
        selects both halves. Raises when the file has no LSTM layer or a name matches none."""
        if not self.layers:
            raise NoLSTMLayers(f"{self.path}: no LSTM layer found (see `lstm-inspect summary` for what it holds)")
        wanted: set[str] = set()
        for name in names:
            halves = [layer.name for layer in self.layers if name in (layer.name, layer.spec.pair)]
            if not halves:
                self.layer(name)  # raises UnknownName listing the layers
            wanted.update(halves)
        return [layer for layer in self.layers if layer.name in wanted] if wanted else list(self.layers)

    def iter_blocks(
        self, layers: Iterable[str] = (), gates: Iterable[str] = (), parts: Iterable[str] = ()
    ) -> Iterator[tuple[Layer, Block]]:
        """(layer, block) for the selected layers, gates and parts, one layer at a time."""
        gate_names = {resolve_gate(g) for g in gates}
        part_names = {resolve_part(p) for p in parts}
        for layer in self.select(layers):
            for block in layer.blocks():
                if gate_names and block.gate not in gate_names:
                    continue
                if part_names and block.part not in part_names:
                    continue
                yield layer, block


def resolve_gate(gate: str) -> str:
    name = LSTM.gate(gate)
    if name is None:
        raise UnknownName(f"unknown gate {gate!r}; gates: {LSTM.alias_text()}")
    return name


def resolve_part(part: str) -> str:
    name = canonical_part(part)
    if name is None:
        raise UnknownName(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
    return name


def load(
    path: str | os.PathLike[str],
    forget_bias: float | None = None,
    verify: bool = True,
    backend: str = "native",
) -> Checkpoint:
    """Open a TF checkpoint or Keras file and detect its LSTM layers.

    forget_bias: the runtime forget bias to assume for every layer (default: each
    framework's own, 1.0 for TF1 cells, 0.0 for Keras and CudnnCompatibleLSTMCell).
    verify: check checksums of what is read. backend: "native" or "tensorflow".
    """
    return Checkpoint(open_store(path, verify=verify, backend=backend), forget_bias=forget_bias)
