"""Result objects: what `summary` and `split` found, as plain data with to_dict() for --json."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .api import Checkpoint, Layer
from .detect import LayerSpec
from .schema import explain as explain_role
from .slicer import Block


@dataclass
class TensorLine:
    name: str
    shape: list[int]
    explanation: str


@dataclass
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
    forget_bias: float
    activation: str
    recurrent_activation: str
    activation_source: str
    params: int
    dtype: str
    pair: str | None
    direction: str | None
    tensors: list[TensorLine]


@dataclass
class VariableLine:
    name: str
    shape: list[int]
    dtype: str
    params: int
    category: str


@dataclass
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

    def to_dict(self) -> dict:
        return asdict(self)


def explain(spec: LayerSpec) -> list[TensorLine]:
    """One line per stored tensor of the layer saying how its shape decomposes."""
    return [
        TensorLine(
            info.name,
            list(info.shape),
            f"{role} {list(info.shape)} = {explain_role(spec.layout, spec.layout.role(role), spec.sizes)}",
        )
        for role, info in spec.tensors.items()
    ]


def summarize(ckpt: Checkpoint) -> Summary:
    layers = [
        LayerSummary(
            name=s.name,
            cell=s.cell,
            framework=s.layout.framework,
            layout=s.layout.key,
            gate_order=s.layout.letters,
            gates=list(s.layout.order),
            input_size=s.input_size,
            units=s.units,
            recurrent_size=s.recurrent_size,
            projection=s.projection_size,
            peepholes=s.peepholes,
            forget_bias=s.forget_bias,
            activation=s.activation,
            recurrent_activation=s.recurrent_activation,
            activation_source=s.activation_source,
            params=s.params,
            dtype=s.dtype,
            pair=s.pair,
            direction=s.direction,
            tensors=explain(s),
        )
        for s in (layer.spec for layer in ckpt.layers)
    ]

    def line(v: object) -> VariableLine:
        info = v.info
        return VariableLine(info.name, list(info.shape), info.dtype, info.size, v.category)

    model = [line(v) for v in ckpt.variables if v.category == "model"]
    optimizer = [v for v in ckpt.variables if v.category == "optimizer"]
    lstm_params = sum(layer.params for layer in layers)
    return Summary(
        path=ckpt.path,
        format=ckpt.format,
        layers=layers,
        variables=model,
        lstm_params=lstm_params,
        total_params=lstm_params + sum(v.params for v in model),
        optimizer_tensors=len(optimizer),
        optimizer_params=sum(v.info.size for v in optimizer),
        bookkeeping=[line(v) for v in ckpt.variables if v.category == "bookkeeping"],
    )


@dataclass
class BlockStats:
    gate: str | None
    part: str
    shape: list[int]
    source: str
    dtype: str
    mean: float
    std: float
    min: float
    max: float
    l2: float
    values: list | None = None


@dataclass
class LayerSplit:
    name: str
    cell: str
    gate_order: str
    forget_bias: float
    blocks: list[BlockStats] = field(default_factory=list)


@dataclass
class SplitResult:
    path: str
    layers: list[LayerSplit]

    def to_dict(self) -> dict:
        return asdict(self)


def block_stats(layer: Layer, block: Block, values: bool = False) -> BlockStats:
    import numpy as np

    array = layer.read(block)
    data = array.astype(np.float64)
    # A zero-sized block (a layer with no inputs) has no statistics; report zeros, not NaN.
    mean, std, low, high = (data.mean(), data.std(), data.min(), data.max()) if data.size else (0.0,) * 4
    return BlockStats(
        gate=block.gate,
        part=block.part,
        shape=list(block.shape),
        source=block.source,
        dtype=str(array.dtype),
        mean=float(mean),
        std=float(std),
        min=float(low),
        max=float(high),
        l2=float(np.sqrt((data * data).sum())),
        values=array.tolist() if values else None,
    )


def split(
    ckpt: Checkpoint,
    layers: Iterable[str] = (),
    gates: Iterable[str] = (),
    parts: Iterable[str] = (),
    values: bool = False,
) -> SplitResult:
    """Per selected layer, gate and part: shape, where it was cut from, statistics (and values)."""
    out: dict[str, LayerSplit] = {}
    for layer, block in ckpt.iter_blocks(layers, gates, parts):
        entry = out.get(layer.name)
        if entry is None:
            entry = out[layer.name] = LayerSplit(
                layer.name, layer.spec.cell, layer.spec.layout.letters, layer.spec.forget_bias
            )
        entry.blocks.append(block_stats(layer, block, values))
    return SplitResult(ckpt.path, list(out.values()))
