"""export: the selected layers' weights in a target's layout (targets/), written as an .npz
(writers/npz.py) or, for the onnx target and a name ending in .onnx, as a runnable ONNX model of one
layer or pair (writers/onnx_model.py).

Layers are exported as units: one layer, or for a target that holds both directions in one layer
(Target.paired) a bidirectional pair, forward half first. Every unit is checked against what the
target can express before anything is read or written, and read one unit at a time, its tensors
released before the next: memory stays one unit's tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from .api import Checkpoint, ExportUnit, cell_kinds, resolve_gates
from .errors import UnsupportedFormat, UsageError
from .results import ExportResult
from .targets import TARGETS, Target
from .weights import Weights
from .writers.output import check_output, output_format

if TYPE_CHECKING:
    import numpy as np

# Called with (elements just written, elements in all) as an export goes.
Progress = Callable[[int, int], None]


def target(layout: str) -> Target:
    """The export target a --layout names."""
    found = TARGETS.get(layout)
    if found is None:
        raise UnsupportedFormat(f"unknown layout {layout!r}; layouts: {', '.join(TARGETS)}")
    return found


def export_units(ckpt: Checkpoint, layout: Target, names: Iterable[str] = ()) -> list[ExportUnit]:
    """The units `layout` exports of the layers `names` selects, each checked (no tensor data read)
    so that a refusal comes before anything is written."""
    units = ckpt.units(names, paired=layout.paired)
    for unit in units:
        mismatch = unit.mismatch()
        if mismatch is not None:
            raise UnsupportedFormat(
                f"{unit.name}: cannot export to --layout {layout.name} as one bidirectional layer: {mismatch}; "
                "export the halves one by one with --layer"
            )
        for layer in unit.layers:
            features = layer.features()
            reason = layout.refusal(features)
            if reason is not None:
                able = [t.name for t in TARGETS.values() if t.refusal(features) is None]
                raise UnsupportedFormat(
                    f"{layer.name}: cannot export to --layout {layout.name}: {reason}; "
                    f"layouts that can express it: {', '.join(able)}"
                )
    return units


def unit_arrays(
    unit: ExportUnit, layout: Target, runtime_forget_bias: float | None = None, gates: Iterable[str] = ()
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """(exported layer name, its arrays) for one unit: the unit's name once for a paired target,
    each layer's otherwise. Reads the unit's tensors and releases them when done."""
    try:
        yield from layout.unit_arrays(unit, runtime_forget_bias, resolve_gates(gates))
    finally:
        for layer in unit.layers:
            layer.release()


def arrays(
    units: Sequence[ExportUnit], layout: Target, runtime_forget_bias: float | None = None, gates: Iterable[str] = ()
) -> Iterator[tuple[str, np.ndarray]]:
    """(key, array) of an export, one unit at a time: `L/<key>` per exported layer L, except that a
    target whose single unit loads as it is (Target.unprefixed_single) gets no prefix."""
    prefixed = not (layout.unprefixed_single and len(units) == 1)
    for unit in units:
        for name, layer_arrays in unit_arrays(unit, layout, runtime_forget_bias, gates):
            for key, array in layer_arrays.items():
                yield (f"{name}/{key}" if prefixed else key), array


def read_back(
    exported: Mapping[str, np.ndarray], layout: Target, unit: ExportUnit, prefixed: bool = True
) -> list[Weights]:
    """The canonical weights of `unit` (one per layer or direction) from its export read back."""

    def under(name: str) -> dict[str, np.ndarray]:
        if not prefixed:
            return dict(exported)
        prefix = f"{name}/"
        return {key[len(prefix) :]: value for key, value in exported.items() if key.startswith(prefix)}

    if layout.paired:
        names = [layer.name for layer in unit.layers]
        return layout.read(under(unit.name), names, features=unit.layers[0].features())
    return [w for layer in unit.layers for w in layout.read(under(layer.name), [layer.name], features=layer.features())]


def export(
    ckpt: Checkpoint,
    output: str | None,
    layout: str = "gates",
    layers: Iterable[str] = (),
    gates: Iterable[str] = (),
    target_forget_bias: float | None = None,
    progress: Progress | None = None,
    replace: bool = True,
    stream: IO[bytes] | None = None,
) -> ExportResult:
    """Write the layers `layers` selects (all when none) in `layout` to `output`, or to `stream`
    (stdout for `-o -`, `output` then only names it in messages). A name ending in .onnx with the
    onnx layout writes a runnable model of one layer or pair; otherwise an .npz. `replace`: whether
    an existing file may be replaced (never one the checkpoint reads, nor a non-regular file)."""
    chosen = target(layout)
    gates = list(gates)
    if gates and chosen.layout is not None:
        raise UsageError(
            f"--gate applies to --layout {', '.join(t.name for t in TARGETS.values() if t.layout is None)} only"
        )
    if target_forget_bias is not None and "forget_bias" not in chosen.settable:
        raise UsageError(f"--target-forget-bias applies to --layout {', '.join(_settable('forget_bias'))} only")
    if target_forget_bias is not None and not math.isfinite(target_forget_bias):
        raise UsageError(f"--target-forget-bias {target_forget_bias} is not a finite number")
    kind = "npz" if stream is not None or output is None else output_format(output, layout)
    units = export_units(ckpt, chosen, layers)
    selected = [layer for unit in units for layer in unit.layers]
    resolve_gates(gates, cell_kinds(selected))  # a gate none of the selected layers has, before writing
    without = next((layer for layer in selected if layer.layout.cell.forget_gate is None), None)
    if target_forget_bias is not None and without is not None:
        raise UsageError(
            f"--target-forget-bias: {without.name} is a {without.layout.cell.name}, which has no forget gate; "
            "leave the option out, or choose the LSTM layers with --layer"
        )
    inputs = ckpt.store.files()
    if kind == "onnx":
        return _export_model(ckpt, str(output), units, inputs)
    from .writers.npz import write_npz

    total = sum(info.size for unit in units for layer in unit.layers for info in layer.spec.tensors.values())
    step = None if progress is None else (lambda key, elements: progress(elements, total))
    result = write_npz(
        output or "stdout",
        arrays(units, chosen, target_forget_bias, gates),
        step,
        inputs=inputs,
        replace=replace,
        stream=stream,
    )
    result.layout, result.layers = chosen.name, [unit.name for unit in units]
    return result


def _settable(setting: str) -> list[str]:
    return [t.name for t in TARGETS.values() if setting in t.settable]


def _export_model(ckpt: Checkpoint, output: str, units: list[ExportUnit], inputs: list[str]) -> ExportResult:
    from .writers.onnx_model import import_onnx, write_onnx

    if len(units) != 1:
        listed = ", ".join(unit.name for unit in units)
        kinds = " or ".join(cell.name for cell in cell_kinds(layer for unit in units for layer in unit.layers))
        raise UnsupportedFormat(
            f"{ckpt.path}: an .onnx model holds one {kinds} layer or bidirectional pair, and {len(units)} are "
            f"selected ({listed}); choose one with --layer, or write all of them as arrays with -o OUT.npz"
        )
    import_onnx()
    check_output(output, inputs)  # before reading the weights; the writer checks again
    (unit,) = units
    try:
        size = write_onnx(output, [layer.weights() for layer in unit.layers], unit.name, inputs)
    finally:
        for layer in unit.layers:
            layer.release()
    return ExportResult(
        output,
        arrays=1,
        bytes=size,
        layout="onnx",
        layers=[unit.name],
        format="onnx",
        directions=len(unit.layers),
        cell=unit.layers[0].layout.cell.name,
    )


def gate_arrays(
    ckpt: Checkpoint, layers: Iterable[str] = (), gates: Iterable[str] = ()
) -> Iterator[tuple[str, np.ndarray]]:
    """(key, array) of the canonical gates export of the layers `layers` selects: `L/G/part`,
    `L/projection` and the 0-d `L/forget_bias`, as views of the stored tensors, one layer at a time."""
    canonical = TARGETS["gates"]
    return arrays(export_units(ckpt, canonical, layers), canonical, gates=gates)
