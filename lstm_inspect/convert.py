"""Layout converters: one layer's canonical gate blocks to and from each framework's arrays.

The gate order of every target comes from `LAYOUTS` (layouts.py), as do its number of bias
vectors and the forget bias its cell adds at run time. A conversion is three small steps, each a
pure function: merge the two cuDNN biases when the target keeps one, move the runtime forget bias
into the forget block of the (input-side) bias when the target's cell adds a different one, then
stack the blocks in the target's order. `layout_arrays` streams a whole export, layer by layer.

What a target cannot compute (peepholes, a projection, another activation) is refused with
`UnsupportedFormat`, naming the layer, the reason and the layouts that can express it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .api import Checkpoint, Layer
from .errors import UnsupportedFormat
from .schema import LAYOUTS, LSTM, Layout

GATES, PEEPHOLE_GATES = LSTM.gates, LSTM.peephole_gates

# `--layout` names, and the LAYOUTS entry each export target follows ("gates" is the canonical form).
TARGETS: tuple[str, ...] = ("gates", "pytorch", "onnx", "keras", "tensorflow")
_TARGET_LAYOUT: dict[str, str] = {"pytorch": "pytorch", "onnx": "onnx", "keras": "keras", "tensorflow": "tf1"}
# Targets that hold both directions of a bidirectional pair in one layer (nn.LSTM `_reverse`
# keys, the ONNX `num_directions` axis); the others keep one layer per direction.
PAIRED_TARGETS: frozenset[str] = frozenset({"pytorch", "onnx"})
DEFAULT_ACTIVATION, DEFAULT_RECURRENT_ACTIVATION = "tanh", "sigmoid"

# onnx/defs/rnn/defs.cc LSTM `activations` (f for the gates, g and h for the cell), each with the
# alpha and beta it takes (consumed in order from activation_alpha/activation_beta). Keys are the
# names numpy_lstm.ACTIVATIONS computes. ONNX HardSigmoid is clip(alpha x + beta, 0, 1): Keras 2's
# hard_sigmoid with alpha 0.2, Keras 3's (hard_sigmoid_keras3) with alpha 1/6, both with beta 0.5.
ONNX_ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "hard_sigmoid": ("HardSigmoid", 0.2, 0.5),
    "hard_sigmoid_keras3": ("HardSigmoid", 1 / 6, 0.5),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
}
# How messages name the activations that one name means two different functions for.
_SHOWN_ACTIVATIONS = {
    "hard_sigmoid": "hard_sigmoid (Keras 2: clip(0.2x + 0.5, 0, 1))",
    "hard_sigmoid_keras3": "hard_sigmoid (Keras 3: clip(x/6 + 0.5, 0, 1))",
}


def _shown(activation: str) -> str:
    return _SHOWN_ACTIVATIONS.get(activation, activation)


def target_layout(target: str) -> Layout:
    """The LAYOUTS entry an export target follows."""
    return LAYOUTS[_TARGET_LAYOUT[target]]


def runtime_forget_bias(target: str, tensorflow_forget_bias: float | None = None) -> float:
    """What the target's cell adds to the forget gate: 0 for PyTorch, ONNX and Keras; the TF1 cell's
    `forget_bias` (default 1.0) for tensorflow."""
    if target == "tensorflow" and tensorflow_forget_bias is not None:
        return float(tensorflow_forget_bias)
    return target_layout(target).forget_bias


@dataclass
class Weights:
    """One direction of one LSTM layer as canonical blocks (../shared/LAYOUTS.md).

    gates: canonical gate → part ("kernel", "recurrent", "bias", "recurrent_bias", "peephole") → block.
    forget_bias: what the cell adds to the forget gate at run time.
    """

    name: str
    gates: dict[str, dict[str, np.ndarray]]
    projection: np.ndarray | None = None
    forget_bias: float = 0.0
    activation: str = DEFAULT_ACTIVATION
    recurrent_activation: str = DEFAULT_RECURRENT_ACTIVATION

    @property
    def input_size(self) -> int:
        return int(self.gates["input"]["kernel"].shape[0])

    @property
    def units(self) -> int:
        return int(self.gates["input"]["kernel"].shape[1])

    @property
    def peepholes(self) -> bool:
        return self.has("peephole")

    @property
    def dtype(self) -> np.dtype:
        return self.gates["input"]["kernel"].dtype

    def has(self, part: str) -> bool:
        return any(part in blocks for blocks in self.gates.values())


def layer_activations(layer: Layer) -> tuple[str, str]:
    """(activation, recurrent_activation); a file that does not say (a bare Keras .weights.h5, a TF2
    object checkpoint) is taken to use the defaults of every framework, tanh and sigmoid."""
    spec = layer.spec
    activation = DEFAULT_ACTIVATION if spec.activation == "unknown" else spec.activation
    recurrent = DEFAULT_RECURRENT_ACTIVATION if spec.recurrent_activation == "unknown" else spec.recurrent_activation
    return activation, recurrent


def weights_of(layer: Layer) -> Weights:
    """Read one layer's blocks (call layer.release() when done with them)."""
    activation, recurrent = layer_activations(layer)
    return Weights(
        name=layer.spec.name,
        gates={gate: dict(blocks.parts()) for gate, blocks in layer.gates().items()},
        projection=layer.projection,
        forget_bias=layer.spec.forget_bias,
        activation=activation,
        recurrent_activation=recurrent,
    )


# ---- what a target cannot express ---------------------------------------------------------------


def refusal(
    target: str,
    *,
    peepholes: bool,
    projection_size: int | None,
    units: int,
    activation: str,
    recurrent_activation: str,
) -> str | None:
    """Why `target` cannot compute a layer with these features, or None when it can."""
    if target == "pytorch":
        # torch/nn/modules/rnn.py: LSTM has sigmoid gates, tanh, optional proj_size < hidden_size.
        if peepholes:
            return "torch.nn.LSTM has no peephole connections"
        if projection_size is not None and projection_size >= units:
            return f"torch.nn.LSTM needs proj_size < hidden_size (projection {projection_size}, units {units})"
        if recurrent_activation != "sigmoid":
            return f"torch.nn.LSTM computes its gates with sigmoid only; this layer uses {_shown(recurrent_activation)}"
        if activation != "tanh":
            return f"torch.nn.LSTM computes its cell with tanh only; this layer uses {_shown(activation)}"
    elif target == "onnx":
        if projection_size is not None:
            return "the ONNX LSTM operator has no projection"
        for role, name in (("recurrent activation", recurrent_activation), ("activation", activation)):
            if name not in ONNX_ACTIVATIONS:
                return f"the ONNX LSTM operator has no {role} {name!r}"
    elif target == "keras":
        # keras/src/layers/rnn/lstm.py: no peepholes, no projection; any activation, since the
        # arrays carry none: Keras 3 computes hard_sigmoid_keras3 by the name hard_sigmoid, and
        # Keras 2's hard_sigmoid by tf_keras or a clip(0.2x + 0.5, 0, 1) (verify.keras_activation).
        if peepholes:
            return "keras.layers.LSTM has no peephole connections"
        if projection_size is not None:
            return "keras.layers.LSTM has no projection"
    elif target == "tensorflow":
        # rnn_cell_impl.py LSTMCell.call hard-codes sigmoid for the gates; `activation` is an argument.
        if recurrent_activation != "sigmoid":
            return f"TF1 LSTMCell computes its gates with sigmoid only; this layer uses {_shown(recurrent_activation)}"
    return None


def _refuse(name: str, target: str, reason: str, features: dict) -> UnsupportedFormat:
    able = [t for t in TARGETS if t == "gates" or refusal(t, **features) is None]
    return UnsupportedFormat(
        f"{name}: cannot export to --layout {target}: {reason}; layouts that can express it: {', '.join(able)}"
    )


def _layer_features(layer: Layer) -> dict:
    activation, recurrent = layer_activations(layer)
    spec = layer.spec
    return {
        "peepholes": spec.peepholes,
        "projection_size": spec.projection_size,
        "units": spec.units,
        "activation": activation,
        "recurrent_activation": recurrent,
    }


def layer_refusal(layer: Layer, target: str) -> str | None:
    """Why `target` cannot compute `layer` (reads no tensor data), or None."""
    return None if target == "gates" else refusal(target, **_layer_features(layer))


def check_layer(layer: Layer, target: str) -> None:
    """Raise UnsupportedFormat when `target` cannot compute `layer` (reads no tensor data)."""
    reason = layer_refusal(layer, target)
    if reason is not None:
        raise _refuse(layer.spec.name, target, reason, _layer_features(layer))


def check_weights(weights: Weights, target: str) -> None:
    """Raise UnsupportedFormat when `target` cannot compute these weights."""
    features: dict[str, Any] = {
        "peepholes": weights.peepholes,
        "projection_size": None if weights.projection is None else int(weights.projection.shape[1]),
        "units": weights.units,
        "activation": weights.activation,
        "recurrent_activation": weights.recurrent_activation,
    }
    reason = refusal(target, **features)
    if reason is not None:
        raise _refuse(weights.name, target, reason, features)


# ---- normalising the blocks for a target ------------------------------------------------------------


def merge_biases(weights: Weights) -> Weights:
    """The same layer with one bias per gate: a recurrent-side (cuDNN) bias added into the input-side one."""
    if not weights.has("recurrent_bias"):
        return weights
    gates = {}
    for gate, blocks in weights.gates.items():
        blocks = dict(blocks)
        recurrent_bias = blocks.pop("recurrent_bias", None)
        if recurrent_bias is not None:
            bias = blocks.get("bias")
            blocks["bias"] = recurrent_bias.copy() if bias is None else bias + recurrent_bias
        gates[gate] = blocks
    return replace(weights, gates=gates)


def fold_forget_bias(weights: Weights, runtime: float) -> Weights:
    """The same layer for a cell that adds `runtime` to its forget gate: the difference from the
    source's forget bias moves into the forget block of the (input-side) bias, in its dtype."""
    delta = weights.forget_bias - runtime
    if delta == 0:
        return replace(weights, forget_bias=float(runtime))
    forget = dict(weights.gates["forget"])
    bias = forget.get("bias")
    if bias is None:
        bias = np.zeros(weights.units, dtype=weights.dtype)
    with np.errstate(over="ignore"):
        folded = bias + np.asarray(delta, dtype=bias.dtype)
    if not np.isfinite(folded).all() and np.isfinite(bias).all():
        raise UnsupportedFormat(
            f"{weights.name}: a forget bias of {delta:+g} moved into its {bias.dtype.name} forget-gate bias "
            f"overflows {bias.dtype.name}; choose a target forget bias nearer {weights.forget_bias:g}"
        )
    forget["bias"] = folded
    return replace(weights, gates={**weights.gates, "forget": forget}, forget_bias=float(runtime))


def normalize(weights: Weights, target: str, tensorflow_forget_bias: float | None = None) -> Weights:
    """`weights` as `target` holds them: one bias when it keeps one, its runtime forget bias."""
    if len(target_layout(target).bias_parts) == 1:
        weights = merge_biases(weights)
    return fold_forget_bias(weights, runtime_forget_bias(target, tensorflow_forget_bias))


# ---- stacking ---------------------------------------------------------------------------------------------


def _stack(weights: Weights, order: Sequence[str], part: str) -> np.ndarray:
    """The gates' `part` blocks side by side in `order`: (rows, 4u) for matrices, (4u,) for vectors."""
    return np.concatenate([weights.gates[gate][part] for gate in order], axis=-1)


def _bias_or_zeros(weights: Weights, order: Sequence[str], part: str) -> np.ndarray:
    """A bias vector stacked in `order`, zeros for gates that have none (a folded forget bias
    gives a layer without biases one for the forget gate only)."""
    zeros = np.zeros(weights.units, dtype=weights.dtype)
    return np.concatenate([weights.gates[gate].get(part, zeros) for gate in order])


def _unstack(array: np.ndarray, order: Sequence[str]) -> dict[str, np.ndarray]:
    """Inverse of _stack: the last axis cut in four, per gate."""
    return {gate: np.ascontiguousarray(block) for gate, block in zip(order, np.split(array, 4, axis=-1))}


def _peephole_order(order: Sequence[str]) -> list[str]:
    return [gate for gate in order if gate in PEEPHOLE_GATES]


def _assemble(
    name: str,
    order: Sequence[str],
    parts: Mapping[str, np.ndarray | None],
    forget_bias: float,
    projection: np.ndarray | None = None,
) -> Weights:
    """Weights from per-part stacked arrays in `order` (parts that are None are absent)."""
    gates: dict[str, dict[str, np.ndarray]] = {gate: {} for gate in GATES}
    for part, stacked in parts.items():
        if stacked is None:
            continue
        for gate, block in _unstack(stacked, order).items():
            gates[gate][part] = block
    return Weights(name, gates, projection, float(forget_bias))


# ---- PyTorch: torch.nn.LSTM state_dict ------------------------------------------------------------------

PYTORCH_SUFFIXES = ("_l0", "_l0_reverse")


def to_pytorch(directions: Sequence[Weights]) -> dict[str, np.ndarray]:
    """`weight_ih_l0` (4H, in), `weight_hh_l0` (4H, rec), `bias_ih_l0`, `bias_hh_l0` (4H),
    `weight_hr_l0` (proj, H); the second direction with `_reverse`. Rows in order i, f, g, o."""
    for weights in directions:
        check_weights(weights, "pytorch")
    normalized = [normalize(weights, "pytorch") for weights in directions]
    order = target_layout("pytorch").order
    # nn.LSTM(bias=False) has no bias keys at all; bias=True has both, in every direction.
    with_bias = any(w.has("bias") or w.has("recurrent_bias") for w in normalized)
    out: dict[str, np.ndarray] = {}
    for weights, suffix in zip(normalized, PYTORCH_SUFFIXES):
        out[f"weight_ih{suffix}"] = np.ascontiguousarray(_stack(weights, order, "kernel").T)
        out[f"weight_hh{suffix}"] = np.ascontiguousarray(_stack(weights, order, "recurrent").T)
        if with_bias:
            out[f"bias_ih{suffix}"] = _bias_or_zeros(weights, order, "bias")
            out[f"bias_hh{suffix}"] = _bias_or_zeros(weights, order, "recurrent_bias")
        if weights.projection is not None:
            out[f"weight_hr{suffix}"] = np.ascontiguousarray(weights.projection.T)
    return out


def from_pytorch(arrays: Mapping[str, np.ndarray], name: str = "") -> list[Weights]:
    """The directions held in an nn.LSTM state_dict (one layer, keys without a prefix)."""
    order = target_layout("pytorch").order
    directions = []
    for suffix in PYTORCH_SUFFIXES:
        if f"weight_ih{suffix}" not in arrays:
            break
        parts = {
            "kernel": arrays[f"weight_ih{suffix}"].T,
            "recurrent": arrays[f"weight_hh{suffix}"].T,
            "bias": arrays.get(f"bias_ih{suffix}"),
            "recurrent_bias": arrays.get(f"bias_hh{suffix}"),
        }
        projection = arrays.get(f"weight_hr{suffix}")
        projection = None if projection is None else np.ascontiguousarray(projection.T)
        directions.append(_assemble(name, order, parts, runtime_forget_bias("pytorch"), projection))
    return directions


# ---- ONNX: the LSTM operator's W, R, B, P ----------------------------------------------------------


def to_onnx(directions: Sequence[Weights]) -> dict[str, np.ndarray]:
    """`W` [dirs, 4H, in], `R` [dirs, 4H, H], `B` [dirs, 8H] (input-side then recurrent-side),
    `P` [dirs, 3H] when peepholed; gates in order i, o, f, c, peepholes i, o, f."""
    for weights in directions:
        check_weights(weights, "onnx")
    normalized = [normalize(weights, "onnx") for weights in directions]
    order = target_layout("onnx").order
    out = {
        "W": np.stack([_stack(w, order, "kernel").T for w in normalized]),
        "R": np.stack([_stack(w, order, "recurrent").T for w in normalized]),
    }
    if any(w.has("bias") or w.has("recurrent_bias") for w in normalized):
        out["B"] = np.stack(
            [
                np.concatenate([_bias_or_zeros(w, order, "bias"), _bias_or_zeros(w, order, "recurrent_bias")])
                for w in normalized
            ]
        )
    if any(w.peepholes for w in normalized):
        peephole_order = _peephole_order(order)
        out["P"] = np.stack(
            [np.concatenate([w.gates[gate]["peephole"] for gate in peephole_order]) for w in normalized]
        )
    return out


def from_onnx(arrays: Mapping[str, np.ndarray], name: str = "") -> list[Weights]:
    order = target_layout("onnx").order
    directions = []
    for d in range(arrays["W"].shape[0]):
        units = arrays["R"].shape[2]
        bias = arrays["B"][d] if "B" in arrays else None
        parts = {
            "kernel": arrays["W"][d].T,
            "recurrent": arrays["R"][d].T,
            "bias": None if bias is None else bias[: 4 * units],
            "recurrent_bias": None if bias is None else bias[4 * units :],
        }
        weights = _assemble(name, order, parts, runtime_forget_bias("onnx"))
        if "P" in arrays:
            for gate, block in zip(_peephole_order(order), np.split(arrays["P"][d], 3)):
                weights.gates[gate]["peephole"] = np.ascontiguousarray(block)
        directions.append(weights)
    return directions


# ---- Keras: LSTM.set_weights([kernel, recurrent_kernel, bias]) -----------------------------------------


def to_keras(weights: Weights) -> dict[str, np.ndarray]:
    """`kernel` (in, 4u), `recurrent_kernel` (u, 4u), `bias` (4u,), columns in order i, f, c, o."""
    check_weights(weights, "keras")
    weights = normalize(weights, "keras")
    order = target_layout("keras").order
    out = {"kernel": _stack(weights, order, "kernel"), "recurrent_kernel": _stack(weights, order, "recurrent")}
    # A Keras LSTM(use_bias=False) has no bias weight; keep the source's choice.
    if weights.has("bias"):
        out["bias"] = _bias_or_zeros(weights, order, "bias")
    return out


def from_keras(arrays: Mapping[str, np.ndarray], name: str = "") -> Weights:
    parts = {"kernel": arrays["kernel"], "recurrent": arrays["recurrent_kernel"], "bias": arrays.get("bias")}
    return _assemble(name, target_layout("keras").order, parts, runtime_forget_bias("keras"))


# ---- TensorFlow 1: LSTMCell variables ----------------------------------------------------------------

_TF_PEEPHOLE = {gate: f"w_{gate[0]}_diag" for gate in PEEPHOLE_GATES}  # rnn_cell_impl.py LSTMCell.build


def to_tensorflow(weights: Weights, forget_bias: float | None = None) -> dict[str, np.ndarray]:
    """`kernel` (in + rec, 4u) = [input; recurrent] rows, `bias` (4u,), columns in order i, j, f, o;
    `w_i_diag`, `w_f_diag`, `w_o_diag` and `projection/kernel` when present. `forget_bias` is what
    the TF1 cell will add at run time (default 1.0, its own default); the bias is adjusted for it."""
    check_weights(weights, "tensorflow")
    weights = normalize(weights, "tensorflow", forget_bias)
    order = target_layout("tensorflow").order
    out = {
        "kernel": np.concatenate([_stack(weights, order, "kernel"), _stack(weights, order, "recurrent")], axis=0),
        "bias": _bias_or_zeros(weights, order, "bias"),
    }
    for gate in PEEPHOLE_GATES:
        if "peephole" in weights.gates[gate]:
            out[_TF_PEEPHOLE[gate]] = weights.gates[gate]["peephole"]
    if weights.projection is not None:
        out["projection/kernel"] = weights.projection
    return out


def from_tensorflow(arrays: Mapping[str, np.ndarray], forget_bias: float | None = None, name: str = "") -> Weights:
    kernel, bias = arrays["kernel"], arrays["bias"]
    projection = arrays.get("projection/kernel")
    recurrent_size = projection.shape[1] if projection is not None else bias.shape[0] // 4
    input_size = kernel.shape[0] - recurrent_size
    parts = {"kernel": kernel[:input_size], "recurrent": kernel[input_size:], "bias": bias}
    order = target_layout("tensorflow").order
    weights = _assemble(name, order, parts, runtime_forget_bias("tensorflow", forget_bias), projection)
    for gate, key in _TF_PEEPHOLE.items():
        if key in arrays:
            weights.gates[gate]["peephole"] = arrays[key]
    return weights


# ---- the canonical layout (export.gate_arrays) read back ------------------------------------------------


def from_gates(arrays: Mapping[str, np.ndarray], name: str) -> Weights:
    """One layer from `L/G/part`, `L/projection` and `L/forget_bias` keys."""
    gates: dict[str, dict[str, np.ndarray]] = {gate: {} for gate in GATES}
    prefix = f"{name}/"
    for key, value in arrays.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :].split("/")
        if len(rest) == 2 and rest[0] in gates:
            gates[rest[0]][rest[1]] = value
    forget_bias = arrays.get(f"{name}/forget_bias")
    return Weights(name, gates, arrays.get(f"{name}/projection"), 0.0 if forget_bias is None else float(forget_bias))


# ---- exporting a checkpoint ---------------------------------------------------------------------------------


@dataclass
class ExportUnit:
    """What one exported layer holds: one LSTM layer, or a bidirectional pair's forward then backward half."""

    name: str
    layers: list[Layer]

    @property
    def bidirectional(self) -> bool:
        return len(self.layers) == 2


def pair_units(layers: Sequence[Layer], paired: bool = True) -> list[ExportUnit]:
    """`layers` as export units, in file order: with `paired`, the two halves of a bidirectional
    pair that are both among `layers` become one unit (forward first), named after the pair."""
    units: list[ExportUnit] = []
    joined: set[str] = set()
    by_pair: dict[str, list[Layer]] = {}
    for layer in layers:
        if layer.spec.pair is not None:
            by_pair.setdefault(layer.spec.pair, []).append(layer)
    for layer in layers:
        if layer.name in joined:
            continue
        pair = layer.spec.pair
        halves = list(by_pair[pair]) if pair is not None else []
        if pair is not None and paired and len(halves) == 2:
            halves.sort(key=lambda half: half.spec.direction != "forward")
            joined.update(half.name for half in halves)
            units.append(ExportUnit(pair, halves))
        else:
            units.append(ExportUnit(layer.name, [layer]))
    return units


def pair_mismatch(unit: ExportUnit) -> str | None:
    """Why the two halves of a pair cannot be one bidirectional layer (they differ), or None."""
    if not unit.bidirectional:
        return None

    def shape(layer: Layer) -> tuple:
        s = layer.spec
        return (s.input_size, s.units, s.projection_size, s.peepholes, *layer_activations(layer), s.dtype)

    forward, backward = unit.layers
    if shape(forward) == shape(backward):
        return None
    return (
        f"its halves {forward.name} and {backward.name} differ (input, units, projection, peepholes, "
        f"activations, dtype: {shape(forward)} vs {shape(backward)})"
    )


def export_units(ckpt: Checkpoint, target: str, names: Iterable[str] = ()) -> list[ExportUnit]:
    """The layers `target` will export, pairs joined where it holds both directions in one layer;
    each checked (no tensor data read) so that a refusal comes before anything is written."""
    units = pair_units(ckpt.select(names), paired=target in PAIRED_TARGETS)
    for unit in units:
        mismatch = pair_mismatch(unit)
        if mismatch is not None:
            raise UnsupportedFormat(
                f"{unit.name}: cannot export to --layout {target} as one bidirectional layer: {mismatch}; "
                "export the halves one by one with --layer"
            )
        for layer in unit.layers:
            check_layer(layer, target)
    return units


def unit_arrays(
    unit: ExportUnit, target: str, tensorflow_forget_bias: float | None = None
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """(layer name, target arrays) for one unit: one entry for pytorch and onnx, one per layer otherwise.
    Reads the unit's tensors and releases them when done."""
    try:
        if target in PAIRED_TARGETS:
            directions = [weights_of(layer) for layer in unit.layers]
            yield unit.name, (to_pytorch if target == "pytorch" else to_onnx)(directions)
        else:
            for layer in unit.layers:
                weights = weights_of(layer)
                if target == "keras":
                    yield layer.name, to_keras(weights)
                else:
                    yield layer.name, to_tensorflow(weights, tensorflow_forget_bias)
    finally:
        for layer in unit.layers:
            layer.release()


def layout_arrays(
    ckpt: Checkpoint,
    target: str,
    names: Iterable[str] = (),
    tensorflow_forget_bias: float | None = None,
    gates: Iterable[str] = (),
) -> Iterator[tuple[str, np.ndarray]]:
    """(key, array) of an export in `target` layout, one layer at a time (for export.write_npz).

    Keys are `L/<name>` per exported layer L; a pytorch export of exactly one layer or pair has
    no `L/` prefix, so that nn.LSTM.load_state_dict takes it as it is. `gates` selects gates of
    the `gates` layout only. Refusals are raised here, before the first array is produced.
    """
    if target not in TARGETS:
        raise UnsupportedFormat(f"unknown layout {target!r}; layouts: {', '.join(TARGETS)}")
    names = [layer.name for layer in ckpt.select(names)]
    if target == "gates":
        from .export import gate_arrays

        return gate_arrays(ckpt, names, gates)
    units = export_units(ckpt, target, names)
    prefixed = not (target == "pytorch" and len(units) == 1)

    def generate() -> Iterator[tuple[str, np.ndarray]]:
        for unit in units:
            for name, arrays in unit_arrays(unit, target, tensorflow_forget_bias):
                for key, array in arrays.items():
                    yield (f"{name}/{key}" if prefixed else key), array

    return generate()


def read_layout(
    arrays: Mapping[str, np.ndarray],
    target: str,
    unit: ExportUnit,
    prefixed: bool = True,
    tensorflow_forget_bias: float | None = None,
) -> list[Weights]:
    """The canonical weights of `unit` (one per layer / direction) from an export read back."""

    def sub(name: str) -> dict[str, np.ndarray]:
        if not prefixed:
            return dict(arrays)
        prefix = f"{name}/"
        return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}

    if target == "pytorch":
        return from_pytorch(sub(unit.name), unit.name)
    if target == "onnx":
        return from_onnx(sub(unit.name), unit.name)
    if target == "keras":
        return [from_keras(sub(layer.name), layer.name) for layer in unit.layers]
    if target == "tensorflow":
        return [from_tensorflow(sub(layer.name), tensorflow_forget_bias, layer.name) for layer in unit.layers]
    return [from_gates(arrays, layer.name) for layer in unit.layers]
