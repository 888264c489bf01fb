"""verify: every layer run over a seeded random input, by the numpy LSTM on its split blocks (the
baseline), by the numpy LSTM on every export target's arrays written and read back, by each
target's own framework where it is installed (Target.run: torch.nn.LSTM on the PyTorch export,
onnxruntime on the .onnx model, Keras 3 on the Keras export, a TF1 LSTMCell on the TensorFlow
export), and by the framework that wrote the file when it can load it (a full Keras model, by
Keras' own loader; a TF checkpoint, frozen graph or SavedModel, by TensorFlow's own cell of the
class the graph shows with the weights TensorFlow reads). The result holds the largest absolute
difference from the baseline per layer and check; nothing here prints.

Frameworks are imported only inside the target modules, only when verify runs, and only if
installed. torch and Keras compute in float32 (float64 for float64 weights), onnxruntime in
float32; the tolerance follows the weights' dtype and the size of the outputs.

Memory stays one unit's worth: a unit's source blocks are views of its stored tensors (memory maps
for a local TF checkpoint), and its export to each target is written, read back member by member,
run by numpy and by the target's framework, and let go before the next target's.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .api import Checkpoint, ExportUnit
from .errors import LstmInspectError, UsageError
from .export import Progress, arrays, read_back, stored_bytes
from .numpy_cells import run as run_numpy
from .numpy_cells import step_shape as numpy_step_shape
from .readers.urls import is_url
from .results import Check, LayerCheck, VerifyResult
from .targets import TARGETS, Target
from .targets import keras as keras_target
from .targets import tensorflow as tensorflow_target
from .targets.base import Outputs
from .weights import Weights
from .writers.npz import decode_key, write_npz

# Largest accepted |difference| per unit of output scale, by the weights' dtype: float32 rounding
# over a few steps stays near 1e-6; a forget bias folded into a half-precision bias is rounded to
# that type (a float16 ulp at 1.0 is 1e-3, a bfloat16 one 8e-3).
TOLERANCES: dict[str, float] = {"float64": 1e-5, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
DEFAULT_TOLERANCE = 1e-4

# A whole-file verify runs every check on this many units of each structure (see _structure) and
# reads the others' weights, whose values Layer checks: the exports and the frameworks take the
# same code path for every unit of one structure, and a full run costs tens of milliseconds a
# unit (an .npz per layout written and read back, a Keras layer built), minutes for 6,000 layers.
# Layers named with --layer are all checked in full. (README.md and `verify --help` say 16.)
FULL_CHECKS_PER_STRUCTURE = 16

# The checks that run the file's own framework on the original file (its origin, see _origin):
# Keras' loader on a Keras model file; TensorFlow's own cell on a file TensorFlow wrote.
KERAS_MODEL = "keras-model"
TF_CELL = "tf-cell"

# Column order of the report: numpy on each target read back, then each target's framework, then
# the original file's own.
FRAMEWORKS: tuple[str, ...] = (*(t.check for t in TARGETS.values() if t.check), KERAS_MODEL, TF_CELL)
CHECKS: tuple[str, ...] = (*(f"numpy:{name}" for name in TARGETS), *FRAMEWORKS)


def tolerance_for(dtype: str, *outputs: np.ndarray) -> float:
    scale = max([1.0] + [float(np.abs(o).max()) for o in outputs if o.size])
    return TOLERANCES.get(dtype, DEFAULT_TOLERANCE) * scale


def installed(*modules: str) -> bool:
    return all(_installed(m) for m in modules)


@functools.cache
def _installed(module: str) -> bool:
    # find_spec scans sys.path for a module not yet imported: once per module, not per layer.
    return importlib.util.find_spec(module) is not None


def _origin(ckpt: Checkpoint) -> str | None:
    """The Keras version that wrote a full Keras model file ("" when it does not say), which Keras'
    own loader can then load; None for any other file (a bare weights file has no config to build
    the model from)."""
    origin = ckpt.store.origin
    if origin is None or origin.loader != "keras-model":
        return None
    return origin.keras_version or ""


def _numpy_outputs(weights: Weights, x: np.ndarray) -> Outputs:
    return run_numpy(weights, x)


def _diff(got: Outputs, expected: Outputs) -> float:
    h, c = got
    # inf - inf is NaN, a failed check; the weights that made it were reported when read.
    with np.errstate(invalid="ignore"):
        return float(max(np.abs(np.asarray(h, np.float64) - expected[0]).max(), np.abs(c - expected[1]).max()))


class _Run:
    """State shared by one verify call: scratch directory, the original Keras model (loaded once)."""

    def __init__(self, ckpt: Checkpoint, scratch: str) -> None:
        self.ckpt = ckpt
        self.scratch = scratch
        self.keras_version = _origin(ckpt)
        self.tensorflow = tensorflow_target.original_source(ckpt.store)
        self._model: Any = None
        self._model_error: str | None = None

    def keras_model(self) -> Any:
        if self._model is None and self._model_error is None:
            self._model_error = self._load()
        if self._model is None:
            raise LstmInspectError(self._model_error or "Keras could not load the file")
        return self._model

    def _load(self) -> str | None:
        path = self.ckpt.path
        if is_url(path):
            # Keras opens what it loads itself; a URL would be fetched whole, or not at all.
            return "Keras' own loader reads local files only: verify a local copy to run it"
        origin = self.ckpt.store.origin
        if origin is not None and (origin.suffix == ".h5" or not path.endswith(origin.suffix)):
            # HDF5 refuses a second open of a file that our reader holds open with other locking
            # flags ("file locking flag values don't match"), and load_model picks its reader by
            # the name's suffix: let Keras read a copy, named so.
            copy = os.path.join(self.scratch, "model" + origin.suffix)
            shutil.copyfile(self.ckpt.path, copy)
            path = copy
        try:
            self._model = keras_target.load_model(path, self.keras_version or None)
        except Exception as e:  # any loader failure is a fact to report, not a crash of verify
            return f"Keras could not load the file: {type(e).__name__}: {e}".splitlines()[0]
        return None


def verify(
    ckpt: Checkpoint,
    layers: Iterable[str] = (),
    seed: int = 0,
    steps: int = 5,
    batch: int = 3,
    frameworks: Iterable[str] = FRAMEWORKS,
    per_structure: int | None = FULL_CHECKS_PER_STRUCTURE,
    progress: Progress | None = None,
) -> VerifyResult:
    """Run every selected layer through the baseline, every export target and the frameworks.

    Layers named in `layers` are all checked in full; of a whole-file selection, the first
    `per_structure` units of each structure are, and the others are read (so that their values
    are checked) and marked `covered_by` the first unit of their structure (None: check all).
    frameworks: the framework checks to run (FRAMEWORKS names; none: numpy's only).
    progress: called with (bytes, bytes in all) after each step of each unit, a step being the
    unit's stored bytes read, checked or run once."""
    wanted = set(frameworks)
    unknown = sorted(wanted - set(FRAMEWORKS))
    if unknown:
        raise UsageError(f"unknown framework {unknown[0]!r}; frameworks: {', '.join(FRAMEWORKS)}")
    chosen = [f for f in FRAMEWORKS if f in wanted]
    if chosen:
        # TensorFlow, Keras' default backend, logs to stderr at import time unless told not to.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = list(layers)
    units = []
    for unit in ckpt.units(names, paired=True):
        # Halves that differ cannot be one bidirectional layer: check them one by one.
        units += [ExportUnit(layer.name, [layer]) for layer in unit.layers] if unit.mismatch() else [unit]
    limit = None if names else per_structure
    result = VerifyResult(ckpt.path, seed, steps, batch, [*(f"numpy:{t}" for t in TARGETS), *chosen], [])
    checked: dict[tuple[object, ...], list[str]] = {}
    full, first_of = [], []  # per unit: checked in full; the first unit of its structure
    for unit in units:
        alike = checked.setdefault(_structure(unit), [])
        full.append(limit is None or len(alike) < limit)
        if full[-1]:
            alike.append(unit.name)
        first_of.append(alike[0])
    counter = _Steps(progress, units, full, 1 + len(TARGETS) + len(chosen))
    reports: list[list[LayerCheck]] = [[] for _ in units]
    # The units only read go first, while the worker started by _prepare imports TensorFlow (4-5 s
    # here, in which the first full unit would wait for it): 6,000 layers of one structure read
    # 5,984 of them in that time. The report keeps the file's order.
    order = sorted(range(len(units)), key=lambda position: full[position])
    with tempfile.TemporaryDirectory(prefix="lstm-inspect-verify-") as scratch:
        run = _Run(ckpt, scratch)
        if any(full):
            _prepare(run, chosen)
        frozen = False
        for position in order:
            unit = units[position]
            try:
                if full[position]:
                    reports[position] = _verify_unit(run, unit, seed, steps, batch, chosen, counter)
                    if not frozen:
                        # The first unit imported the frameworks, whose millions of objects every
                        # full collection of the garbage collector would walk again: with torch,
                        # Keras and TensorFlow, the layers after it took twice as long (6,000 layers:
                        # 1.7 s of collections). They live as long as the process anyway.
                        gc.freeze()
                        frozen = True
                else:
                    reports[position] = _covered(unit, first_of[position])
            finally:
                for layer in unit.layers:
                    layer.release()
            counter.finish(unit)
    result.layers = [report for unit_reports in reports for report in unit_reports]
    return result


def _prepare(run: _Run, frameworks: Sequence[str]) -> None:
    """Start the chosen frameworks that run in a worker process (Target.prepare), all at once."""
    prepares = [t.prepare for t in TARGETS.values() if t.check in frameworks and installed(*t.needs) and t.prepare]
    if TF_CELL in frameworks and run.tensorflow is not None and installed(*tensorflow_target.NEEDS):
        prepares.append(tensorflow_target.prepare)
    for prepare in dict.fromkeys(prepares):
        prepare()


class _Steps:
    """Progress of a verify by bytes: each unit counts its stored bytes once per step (a unit only
    read, one step; a unit checked in full, its baseline, each target and each framework)."""

    def __init__(
        self, progress: Progress | None, units: Sequence[ExportUnit], full: Sequence[bool], steps: int
    ) -> None:
        self.progress = progress
        self.bytes = {id(unit): stored_bytes(unit) for unit in units}
        self.steps = {id(unit): steps if in_full else 1 for unit, in_full in zip(units, full)}
        self.total = sum(self.bytes[key] * self.steps[key] for key in self.bytes)
        self.done: dict[int, int] = {}

    def step(self, unit: ExportUnit) -> None:
        if self.done.get(id(unit), 0) < self.steps[id(unit)]:
            self.done[id(unit)] = self.done.get(id(unit), 0) + 1
            if self.progress is not None:
                self.progress(self.bytes[id(unit)], self.total)

    def finish(self, unit: ExportUnit) -> None:
        """The steps a unit skipped (a refused target, a layer that computes nothing), at once."""
        while self.done.get(id(unit), 0) < self.steps[id(unit)]:
            self.step(unit)


def _structure(unit: ExportUnit) -> tuple[object, ...]:
    """What decides the code path of every check: per layer its layout, sizes, features,
    activations, dtype and forget bias. Units of one structure differ in their values only."""
    return tuple(
        (
            layer.layout.key,
            layer.cell,
            tuple(sorted(layer.sizes.items())),
            layer.peepholes,
            tuple(layer.spec.tensors),
            *layer.activations(),
            tuple(sorted(layer.clips().items())),
            tuple(sorted(layer.variants().items())),
            layer.dtype,
            layer.forget_bias,
            layer.direction,
            repr(layer.conv()),
        )
        for layer in unit.layers
    )


def _covered(unit: ExportUnit, like: str) -> list[LayerCheck]:
    reports = []
    for layer in unit.layers:
        layer.load()
        reports.append(LayerCheck(layer.name, layer.dtype, tolerance_for(layer.dtype), covered_by=like))
    return reports


class _Unit:
    """One unit's run: its source weights, the input each direction reads, the baseline outputs,
    and the reports the checks are added to."""

    def __init__(self, run: _Run, unit: ExportUnit, seed: int, steps: int, batch: int) -> None:
        self.run, self.unit = run, unit
        self.sources = [layer.weights(views=True) for layer in unit.layers]
        first = self.sources[0]
        dtype = np.float64 if first.dtype == np.float64 else np.float32
        step_shape = numpy_step_shape(first)
        self.x: np.ndarray = np.random.default_rng(seed).standard_normal((steps, batch, *step_shape)).astype(dtype)
        # Each direction's input in its own processing order: a backward half reads the sequence reversed.
        self.inputs = [self.x, self.x[::-1]][: len(self.sources)]
        self.reports = [
            LayerCheck(layer.name, w.dtype.name, tolerance_for(w.dtype.name))
            for layer, w in zip(unit.layers, self.sources)
        ]
        self.baselines: list[Outputs] = []
        self.exports: dict[str, list[dict[str, np.ndarray]]] = {}

    def note_all(self, check: str, note: str | None = None, error: str | None = None) -> None:
        for report in self.reports:
            report.checks.append(Check(check, note=note, error=error))

    def record(
        self, check: str, runner: Callable[[], list[Outputs]], framework: bool, direction: int | None = None
    ) -> None:
        """Run `runner` for all directions (or the one `direction` names: its outputs alone), or note
        on those layers why it could not run. A framework that raises on our export fails the
        check; an error in our own code keeps its traceback."""
        reports, baselines = self.reports, self.baselines
        if direction is not None:
            reports, baselines = reports[direction : direction + 1], baselines[direction : direction + 1]
        try:
            # Damaged weights (reported when read) overflow in casts and computations alike.
            with np.errstate(over="ignore", invalid="ignore"):
                outputs = runner()
        except LstmInspectError as e:
            for report in reports:
                report.checks.append(Check(check, note=str(e)))
        except Exception as e:
            if not framework:
                raise
            for report in reports:
                report.checks.append(Check(check, error=f"{type(e).__name__}: {e}".splitlines()[0]))
        else:
            for report, got, expected in zip(reports, outputs, baselines):
                report.checks.append(Check(check, _diff(got, expected)))


def _verify_unit(
    run: _Run, unit: ExportUnit, seed: int, steps: int, batch: int, frameworks: Sequence[str], counter: _Steps
) -> list[LayerCheck]:
    state = _Unit(run, unit, seed, steps, batch)
    first = state.sources[0]
    if not first.units or not first.input_size:
        for report in state.reports:
            report.note = (
                f"{first.units} units, {first.input_size} inputs: the layer computes nothing, so there is "
                "nothing to compare"
            )
        return state.reports
    missing = [a for w in state.sources for a in (w.activation, w.recurrent_activation) if not _computes(a)]
    if missing:
        for report in state.reports:
            report.note = f"the numpy {first.cell.name} has no activation {missing[0]!r}; nothing to compare with"
        return state.reports
    state.baselines = [_numpy_outputs(w, xi) for w, xi in zip(state.sources, state.inputs)]
    for report, baseline in zip(state.reports, state.baselines):
        report.tolerance = tolerance_for(report.dtype, *baseline)
    counter.step(unit)

    # What each target cannot express, asked before exporting (its own declared abilities).
    refused = {
        name: reason
        for name, target in TARGETS.items()
        if (reason := next((r for layer in unit.layers if (r := target.refusal(layer.features()))), None))
    }
    # Target by target, numpy on its export read back, then its framework on the same export,
    # which then goes: one target's export in memory at a time. Those whose framework runs in a
    # worker process (Target.prepare) come last, so that the worker imports while the others run;
    # the report's columns keep CHECKS' order.
    for name, target in sorted(TARGETS.items(), key=lambda item: item[1].prepare is not None):
        if name in refused:
            state.note_all(f"numpy:{name}", note=f"refused: {refused[name]}")
        else:
            state.record(f"numpy:{name}", functools.partial(_numpy_on_export, state, target), framework=False)
        counter.step(unit)
        if _framework_check(state, name, target, refused, frameworks):
            counter.step(unit)
        state.exports.pop(name, None)
    _original_checks(state, frameworks, counter)
    columns = {check: position for position, check in enumerate(CHECKS)}
    for report in state.reports:
        report.checks.sort(key=lambda c: columns.get(c.target, len(columns)))
    return state.reports


def _original_checks(state: _Unit, frameworks: Sequence[str], counter: _Steps) -> None:
    """The file's own framework on the original file: Keras' loader, TensorFlow's own cell."""
    if KERAS_MODEL in frameworks and state.run.keras_version is not None:
        if not installed("keras"):
            state.note_all(KERAS_MODEL, "not installed: keras")
        else:
            # Each half on its own: a half Keras cannot run is named in its own row only.
            for direction in range(len(state.unit.layers)):
                state.record(KERAS_MODEL, functools.partial(_keras_model, state, direction), True, direction)
        counter.step(state.unit)
    source = state.run.tensorflow
    if TF_CELL in frameworks and source is not None:
        absent = [m for m in tensorflow_target.NEEDS if not installed(m)]
        if absent:
            state.note_all(TF_CELL, f"not installed: {', '.join(absent)}")
        else:
            run_original = functools.partial(tensorflow_target.run_original, source, state.unit.layers, state.inputs)
            state.record(TF_CELL, run_original, framework=True)
        counter.step(state.unit)


def _framework_check(
    state: _Unit, name: str, target: Target, refused: Mapping[str, str], frameworks: Sequence[str]
) -> bool:
    """The target's framework on its export (whether it has a chosen one)."""
    check, run_framework = target.check, target.run
    if check is None or check not in frameworks or run_framework is None:
        return False
    absent = [m for m in target.needs if not installed(m)]
    if absent:
        state.note_all(check, f"not installed: {', '.join(absent)}")
    elif name in refused:
        state.note_all(check, f"refused: {refused[name]}")
    elif name in state.exports:
        state.record(check, functools.partial(run_framework, state.exports[name], state.sources, state.x), True)
    return True


def _computes(activation: str) -> bool:
    from .activations import known

    return known(activation)


def _numpy_on_export(state: _Unit, target: Target) -> list[Outputs]:
    """The unit exported to `target`, written as an .npz, read back and run by the numpy LSTM."""
    path = os.path.join(state.run.scratch, f"{target.name}.npz")
    write_npz(path, arrays([state.unit], target, keep=True))  # the unit's tensors, read once
    with np.load(path) as npz:  # member by member: one unit's export, once
        exported = {decode_key(key): npz[key] for key in npz.files}
    os.unlink(path)
    prefixed = not target.unprefixed_single  # a single unit: unprefixed for such a target
    state.exports[target.name] = _per_layer(exported, target, state.unit, prefixed)
    read = read_back(exported, target, state.unit, prefixed)
    # A framework's arrays hold no activations, no clips and no convolution settings (its cell's
    # arguments): those are the source's; the canonical blocks keep the clips (L/cell_clip), read
    # back as they are.
    return [
        _numpy_outputs(
            replace(
                w,
                activation=s.activation,
                recurrent_activation=s.recurrent_activation,
                settings=w.settings if target.layout is None else s.settings,
                cell=s.cell,
                conv=s.conv,
            ),
            xi,
        )
        for w, s, xi in zip(read, state.sources, state.inputs)
    ]


def _per_layer(
    exported: Mapping[str, np.ndarray], target: Target, unit: ExportUnit, prefixed: bool
) -> list[dict[str, np.ndarray]]:
    """An export's arrays as the target's framework takes them: one mapping for a paired target's
    unit, one per layer otherwise, keys without the layer prefix."""
    names = [unit.name] if target.paired else [layer.name for layer in unit.layers]
    if not prefixed:
        return [dict(exported)]
    return [
        {key[len(name) + 1 :]: value for key, value in exported.items() if key.startswith(name + "/")} for name in names
    ]


def _keras_model(state: _Unit, direction: int) -> list[Outputs]:
    """One half of the unit (or its only layer) as the file's own Keras model runs it."""
    model = state.run.keras_model()
    layer = state.unit.layers[direction]
    return [keras_target.run_original(model, layer.name, layer.pair, layer.direction, state.inputs[direction])]
