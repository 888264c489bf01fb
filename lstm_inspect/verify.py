"""verify: every layer run over a seeded random input, by the numpy LSTM on its split blocks (the
baseline), by the numpy LSTM on every export layout written and read back, and by the frameworks
themselves where they are installed: torch.nn.LSTM on the PyTorch export, onnxruntime on the
.onnx model, Keras 3 on the Keras export, and Keras' own loader on the original file when it is a
full Keras model. The result holds the largest absolute difference from the baseline per layer
and target; nothing here prints.

Frameworks are imported only here, only when verify runs, and only if installed. torch and Keras
compute in float32 (float64 for float64 weights), onnxruntime in float32; the tolerance follows the
weights' dtype and the size of the outputs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .api import Checkpoint, Layer
from .convert import (
    TARGETS,
    ExportUnit,
    Weights,
    layer_activations,
    layer_refusal,
    layout_arrays,
    pair_mismatch,
    pair_units,
    read_layout,
    weights_of,
)
from .errors import LstmInspectError
from .export import decode_key, write_npz
from .numpy_lstm import ACTIVATIONS, run_lstm
from .readers.urls import is_url

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

# Column order of the report: numpy on each export read back, then the frameworks.
FRAMEWORKS: tuple[str, ...] = ("torch", "onnxruntime", "keras", "keras-model")
CHECKS: tuple[str, ...] = tuple(f"numpy:{t}" for t in TARGETS) + FRAMEWORKS
_NEEDS = {"torch": ("torch",), "onnxruntime": ("onnx", "onnxruntime"), "keras": ("keras",), "keras-model": ("keras",)}
_KERAS_MODEL_FORMATS = ("keras-v3", "keras-h5")
# The export each framework runs on (the original Keras model needs none).
_FRAMEWORK_LAYOUT = {"torch": "pytorch", "onnxruntime": "onnx", "keras": "keras", "keras-model": None}

Outputs = tuple[np.ndarray, np.ndarray]  # (h for every step [T, B, out] in processing order, final c [B, units])


@dataclass
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


@dataclass
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


@dataclass
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
        data = asdict(self)
        data["ok"] = self.ok
        for layer, entry in zip(self.layers, data["layers"]):
            entry["ok"] = layer.ok
        return data


def tolerance_for(dtype: str, *outputs: np.ndarray) -> float:
    scale = max([1.0] + [float(np.abs(o).max()) for o in outputs if o.size])
    return TOLERANCES.get(dtype, DEFAULT_TOLERANCE) * scale


def installed(*modules: str) -> bool:
    return all(_installed(m) for m in modules)


@functools.cache
def _installed(module: str) -> bool:
    # find_spec scans sys.path for a module not yet imported: once per module, not per layer.
    return importlib.util.find_spec(module) is not None


def _compute_dtype(dtype: np.dtype) -> type:
    return np.float64 if dtype == np.float64 else np.float32


# ---- the framework runs (each imports its framework) ----------------------------------------------------


def torch_outputs(state: Mapping[str, np.ndarray], x: np.ndarray) -> list[Outputs]:
    """torch.nn.LSTM built from a state_dict's shapes, loaded with load_state_dict(strict=True) and
    run over x [T, B, in]; per direction (h in processing order, final c)."""
    import torch

    dtype = _compute_dtype(state["weight_ih_l0"].dtype)
    hidden = state["weight_hh_l0"].shape[0] // 4
    projection = state.get("weight_hr_l0")
    bidirectional = "weight_ih_l0_reverse" in state
    lstm = torch.nn.LSTM(
        state["weight_ih_l0"].shape[1],
        hidden,
        bias="bias_ih_l0" in state,
        proj_size=0 if projection is None else projection.shape[0],
        bidirectional=bidirectional,
        dtype=torch.float64 if dtype == np.float64 else torch.float32,
    )
    lstm.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=dtype)) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        y, (_, c) = lstm(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)))
    y, c = y.numpy(), c.numpy()
    out = y.shape[2] // (2 if bidirectional else 1)
    results = [(y[:, :, :out], c[0])]
    if bidirectional:
        # nn.LSTM aligns the reverse direction's outputs with the input steps: undo that.
        results.append((y[::-1, :, out:], c[1]))
    return results


def onnxruntime_outputs(model: str | bytes, x: np.ndarray) -> list[Outputs]:
    """An .onnx model (path or bytes) run by onnxruntime on the CPU; per direction (h in processing order, c)."""
    import onnxruntime  # type: ignore[import-untyped]

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    y, _, c = session.run(None, {"X": np.ascontiguousarray(x, dtype=dtype)})
    results = [(y[:, 0], c[0])]
    if y.shape[1] == 2:
        results.append((y[::-1, 1], c[1]))  # ONNX too stores the reverse direction in input order
    return results


def keras_activation(name: str) -> Any:
    """A Keras 3 activation computing what numpy_lstm calls `name`."""
    if name == "hard_sigmoid":
        from keras import ops  # type: ignore[import-untyped]

        # numpy_lstm's hard_sigmoid is Keras 2's clip(0.2x + 0.5, 0, 1); Keras 3's own
        # (keras/src/activations/activations.py) is relu6(x + 3) / 6, a different function.
        return lambda z: ops.clip(0.2 * z + 0.5, 0.0, 1.0)
    if name == "hard_sigmoid_keras3":
        return "hard_sigmoid"
    return name


def run_keras_layer(cls: Any, config: Mapping[str, Any], weights: Sequence[np.ndarray], x: np.ndarray) -> Outputs:
    """A fresh `cls` (keras.layers.LSTM, or the class of a loaded layer) built from `config`, given
    `weights` by set_weights and run over x [T, B, in] in one direction; (h for every step, final c)."""
    config = {**config, "return_sequences": True, "return_state": True, "go_backwards": False}
    config.pop("name", None)
    layer = cls.from_config(config)
    layer.build((x.shape[1], x.shape[0], x.shape[2]))
    layer.set_weights([np.asarray(w) for w in weights])
    y, _, c = layer(np.ascontiguousarray(np.asarray(x, dtype=np.asarray(weights[0]).dtype).transpose(1, 0, 2)))
    return np.asarray(y).transpose(1, 0, 2), np.asarray(c)


def keras_outputs(
    weights: Sequence[np.ndarray], x: np.ndarray, activation: str = "tanh", recurrent_activation: str = "sigmoid"
) -> Outputs:
    """A Keras 3 LSTM given [kernel, recurrent_kernel(, bias)] by set_weights, run over x [T, B, in]."""
    import keras  # type: ignore[import-untyped]

    dtype = _compute_dtype(np.asarray(weights[0]).dtype)
    config = {
        "units": weights[1].shape[0],
        "use_bias": len(weights) == 3,
        "activation": keras_activation(activation),
        "recurrent_activation": keras_activation(recurrent_activation),
        "dtype": np.dtype(dtype).name,
    }
    return run_keras_layer(keras.layers.LSTM, config, [np.asarray(w, dtype=dtype) for w in weights], x)


def load_keras_model(path: str, keras_version: str | None = None) -> Any:
    """The model as the Keras that wrote it loads it: tf_keras for a file that says Keras 1 or 2
    (the same activation name can mean another function in Keras 3: hard_sigmoid); otherwise
    Keras 3 first, and tf_keras for a file Keras 3 rejects."""
    written_by_keras2 = keras_version is not None and not keras_version.startswith("3")
    if not (written_by_keras2 and installed("tf_keras")):
        import keras  # type: ignore[import-untyped]

        try:
            return keras.saving.load_model(path, compile=False)
        except Exception:
            if not installed("tf_keras"):
                raise
    import tf_keras  # type: ignore[import-untyped]

    return tf_keras.models.load_model(path, compile=False)


def keras_model_layer(model: Any, layer: Layer) -> Any:
    """The Keras layer object for one of our layers: `enc`, or a Bidirectional `bi`'s forward/backward half."""
    spec = layer.spec
    if spec.pair is not None:
        wrapper = model.get_layer(spec.pair)
        return wrapper.forward_layer if spec.direction == "forward" else wrapper.backward_layer
    return model.get_layer(spec.name)


# ---- verify ------------------------------------------------------------------------------------------------


def _numpy_outputs(weights: Weights, source: Weights, x: np.ndarray) -> Outputs:
    return run_lstm(
        weights.gates,
        x,
        forget_bias=weights.forget_bias,
        projection=weights.projection,
        activation=source.activation,
        recurrent_activation=source.recurrent_activation,
    )


def _diff(got: Outputs, expected: Outputs) -> float:
    h, c = got
    # inf - inf is NaN, a failed check; the weights that made it were reported when read.
    with np.errstate(invalid="ignore"):
        return float(max(np.abs(np.asarray(h, np.float64) - expected[0]).max(), np.abs(c - expected[1]).max()))


class _Run:
    """State shared by one verify call: scratch directory, the Keras model (loaded once)."""

    def __init__(self, ckpt: Checkpoint, scratch: str) -> None:
        self.ckpt = ckpt
        self.scratch = scratch
        self.layer_configs = ckpt.store.layer_configs()
        self._keras_model: Any = None
        self._keras_model_error: str | None = None

    def keras_model(self) -> Any:
        if self._keras_model is None and self._keras_model_error is None and is_url(self.ckpt.path):
            # Keras opens what it loads itself; a URL would be fetched whole, or not at all.
            self._keras_model_error = "Keras' own loader reads local files only: verify a local copy to run it"
        if self._keras_model is None and self._keras_model_error is None:
            path = self.ckpt.path
            if self.ckpt.format == "keras-h5":
                # HDF5 refuses a second open of a file that our reader holds open with other
                # locking flags ("file locking flag values don't match"): let Keras read a copy.
                path = os.path.join(self.scratch, "model.h5")
                shutil.copyfile(self.ckpt.path, path)
            try:
                versions = {c.keras_version for c in self.layer_configs.values()}
                self._keras_model = load_keras_model(path, versions.pop() if len(versions) == 1 else None)
            except Exception as e:  # any loader failure is a fact to report, not a crash of verify
                self._keras_model_error = f"Keras could not load the file: {type(e).__name__}: {e}".splitlines()[0]
        if self._keras_model is None:
            raise LstmInspectError(self._keras_model_error)
        return self._keras_model


def verify(
    ckpt: Checkpoint,
    layers: Iterable[str] = (),
    seed: int = 0,
    steps: int = 5,
    batch: int = 3,
    frameworks: Iterable[str] = FRAMEWORKS,
    per_structure: int | None = FULL_CHECKS_PER_STRUCTURE,
) -> VerifyResult:
    """Run every selected layer through the baseline, every export layout and the frameworks.

    Layers named in `layers` are all checked in full; of a whole-file selection, the first
    `per_structure` units of each structure are, and the others are read (so that their values
    are checked) and marked `covered_by` the first unit of their structure (None: check all)."""
    frameworks = [f for f in FRAMEWORKS if f in set(frameworks)]
    if any(f.startswith("keras") for f in frameworks):
        # TensorFlow, Keras' default backend, logs to stderr at import time unless told not to.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    names = list(layers)
    units = []
    for unit in pair_units(ckpt.select(names), paired=True):
        # Halves that differ cannot be one bidirectional layer: check them one by one.
        units += [ExportUnit(layer.name, [layer]) for layer in unit.layers] if pair_mismatch(unit) else [unit]
    limit = None if names else per_structure
    result = VerifyResult(ckpt.path, seed, steps, batch, [*(f"numpy:{t}" for t in TARGETS), *frameworks], [])
    checked: dict[tuple, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="lstm-inspect-verify-") as scratch:
        run = _Run(ckpt, scratch)
        for unit in units:
            alike = checked.setdefault(_structure(unit), [])
            try:
                if limit is None or len(alike) < limit:
                    alike.append(unit.name)
                    result.layers += _verify_unit(run, unit, seed, steps, batch, frameworks)
                else:
                    result.layers += _covered(unit, alike[0])
            finally:
                for layer in unit.layers:
                    layer.release()
    return result


def _structure(unit: ExportUnit) -> tuple:
    """What decides the code path of every check: per layer its layout, sizes, features,
    activations, dtype and forget bias. Units of one structure differ in their values only."""
    return tuple(
        (
            s.layout.key,
            s.cell,
            s.input_size,
            s.units,
            s.recurrent_size,
            s.projection_size,
            s.peepholes,
            tuple(s.tensors),
            *layer_activations(layer),
            s.dtype,
            s.forget_bias,
            s.direction,
        )
        for layer, s in ((layer, layer.spec) for layer in unit.layers)
    )


def _covered(unit: ExportUnit, like: str) -> list[LayerCheck]:
    reports = []
    for layer in unit.layers:
        layer.load()
        dtype = layer.spec.dtype
        reports.append(LayerCheck(layer.name, dtype, tolerance_for(dtype), covered_by=like))
    return reports


def _verify_unit(
    run: _Run, unit: ExportUnit, seed: int, steps: int, batch: int, frameworks: Sequence[str]
) -> list[LayerCheck]:
    sources = [weights_of(layer) for layer in unit.layers]
    first = sources[0]
    dtype = _compute_dtype(first.dtype)
    x: np.ndarray = np.random.default_rng(seed).standard_normal((steps, batch, first.input_size)).astype(dtype)
    # Each direction's input in its own processing order: a backward half reads the sequence reversed.
    inputs = [x, x[::-1]][: len(sources)]
    reports = [
        LayerCheck(layer.name, w.dtype.name, tolerance_for(w.dtype.name)) for layer, w in zip(unit.layers, sources)
    ]
    if not first.units:
        for report in reports:
            report.note = "0 units: the layer computes nothing, so there is nothing to compare"
        return reports
    missing = [a for w in sources for a in (w.activation, w.recurrent_activation) if a not in ACTIVATIONS]
    if missing:
        for report in reports:
            report.note = f"the numpy LSTM has no activation {missing[0]!r}; nothing to compare with"
        return reports
    baselines = [_numpy_outputs(w, w, xi) for w, xi in zip(sources, inputs)]
    for report, baseline in zip(reports, baselines):
        report.tolerance = tolerance_for(report.dtype, *baseline)

    # What each layout cannot express, asked before exporting (convert's own refusal logic).
    refused: dict[str, str] = {}
    for target in TARGETS:
        reasons = [reason for layer in unit.layers if (reason := layer_refusal(layer, target))]
        if reasons:
            refused[target] = reasons[0]

    def record(target: str, runner: Callable[[], list[Outputs]]) -> None:
        """Run `runner` for all directions, or note on every layer why it could not run. A framework
        that raises on our export fails the check; an error in our own code keeps its traceback."""
        note = error = None
        try:
            # Damaged weights (reported when read) overflow in casts and computations alike.
            with np.errstate(over="ignore", invalid="ignore"):
                outputs = runner()
        except LstmInspectError as e:
            note = str(e)
        except Exception as e:
            if target not in FRAMEWORKS:
                raise
            error = f"{type(e).__name__}: {e}".splitlines()[0]
        else:
            for report, got, expected in zip(reports, outputs, baselines):
                report.checks.append(Check(target, _diff(got, expected)))
            return
        for report in reports:
            report.checks.append(Check(target, note=note, error=error))

    names = [layer.name for layer in unit.layers]
    exports: dict[str, dict[str, np.ndarray]] = {}
    for target in TARGETS:
        if target in refused:
            for report in reports:
                report.checks.append(Check(f"numpy:{target}", note=f"refused: {refused[target]}"))
            continue

        def numpy_on_export(target: str = target) -> list[Outputs]:
            path = os.path.join(run.scratch, f"{target}.npz")
            write_npz(path, layout_arrays(run.ckpt, target, names))
            with np.load(path) as npz:
                arrays = exports[target] = {decode_key(key): npz[key] for key in npz.files}
            # A pytorch export of one layer or pair has no `L/` prefix (convert.layout_arrays).
            read = read_layout(arrays, target, unit, prefixed=target != "pytorch")
            return [
                _numpy_outputs(replace(w, activation=s.activation, recurrent_activation=s.recurrent_activation), s, xi)
                for w, s, xi in zip(read, sources, inputs)
            ]

        record(f"numpy:{target}", numpy_on_export)

    runners: dict[str, Callable[[], list[Outputs]]] = {
        "torch": lambda: torch_outputs(exports["pytorch"], x),
        "onnxruntime": lambda: _onnxruntime(run, unit, x),
        "keras": lambda: _keras(exports["keras"], unit, sources, inputs),
        "keras-model": lambda: _keras_model(run, unit, inputs),
    }
    for framework in frameworks:
        if framework == "keras-model" and not (run.ckpt.format in _KERAS_MODEL_FORMATS and run.layer_configs):
            continue  # not a Keras model file (a bare weights file has no config to build the model from)
        absent = [m for m in _NEEDS[framework] if not installed(m)]
        layout = _FRAMEWORK_LAYOUT[framework]
        if absent or (layout is not None and layout in refused):
            note = f"not installed: {', '.join(absent)}" if absent else f"refused: {refused[str(layout)]}"
            for report in reports:
                report.checks.append(Check(framework, note=note))
            continue
        record(framework, runners[framework])
    return reports


def _onnxruntime(run: _Run, unit: ExportUnit, x: np.ndarray) -> list[Outputs]:
    from .onnx_model import export_onnx

    path = os.path.join(run.scratch, "model.onnx")
    export_onnx(run.ckpt, path, [layer.name for layer in unit.layers])
    return onnxruntime_outputs(path, x)


def _keras(
    arrays: Mapping[str, np.ndarray], unit: ExportUnit, sources: Sequence[Weights], inputs: Sequence[np.ndarray]
) -> list[Outputs]:
    outputs = []
    for layer, source, xi in zip(unit.layers, sources, inputs):
        keys = [f"{layer.name}/{k}" for k in ("kernel", "recurrent_kernel", "bias")]
        weights = [arrays[k] for k in keys if k in arrays]
        outputs.append(keras_outputs(weights, xi, source.activation, source.recurrent_activation))
    return outputs


def _keras_model(run: _Run, unit: ExportUnit, inputs: Sequence[np.ndarray]) -> list[Outputs]:
    model = run.keras_model()
    outputs = []
    for layer, xi in zip(unit.layers, inputs):
        try:
            original = keras_model_layer(model, layer)
        except ValueError as e:
            raise LstmInspectError(f"no layer {layer.name} in the model Keras loaded ({e})") from None
        try:
            outputs.append(run_keras_layer(type(original), original.get_config(), original.get_weights(), xi))
        except Exception as e:  # e.g. CuDNNLSTM, which runs on a GPU only
            raise LstmInspectError(
                f"Keras could not run {layer.name}: {type(e).__name__}: {e}".splitlines()[0]
            ) from None
    return outputs
