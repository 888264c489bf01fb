"""Layer detection: which stored tensors form an LSTM layer, and in which layout.

Works on names and shapes only (plus a Keras model config when the file has one), so it
never reads tensor data and never knows which file format the names came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .layouts import LAYOUTS, Layout
from .readers.base import LayerConfig, TensorInfo

# TF2 object-based checkpoints append this to every variable's object path
# (tensorflow/python/checkpoint/checkpoint.py, _OBJECT_ATTRIBUTES_NAME + VARIABLE_VALUE_KEY).
_TF2_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

# Optimizer slot names TF1 optimizers append (tensorflow/python/training/*.py: slot_creator
# names the slot after the optimizer: Adam, Adam_1, Momentum, RMSProp, RMSProp_1, ...).
_SLOT_LEAF = re.compile(
    r"^(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|AdagradDA|AdagradDA_\d+|Adadelta|Adadelta_\d+|"
    r"Ftrl|Ftrl_\d+|ProximalAdagrad|Nadam|Nadam_\d+|Adamax|Adamax_\d+|ExponentialMovingAverage)$"
)
_OPTIMIZER_PREFIXES = ("optimizer_weights/", "optimizer/", "training/")
_BOOKKEEPING = re.compile(
    r"(^|/)(global_step|beta1_power(_\d+)?|beta2_power(_\d+)?|save_counter|_CHECKPOINTABLE_OBJECT_GRAPH|"
    r"iterations|iter|step|seed_generator_state|keras_api)(/|$)"
)

# Names older TF versions gave the same tensors (contrib/rnn/python/tools/checkpoint_convert.py).
_LEGACY_LEAVES = {
    "weights": "kernel",
    "biases": "bias",
    "Linear/Matrix": "kernel",
    "Linear/Bias": "bias",
    "W_0": "kernel",
    "B": "bias",
    "W_I_diag": "w_i_diag",
    "W_F_diag": "w_f_diag",
    "W_O_diag": "w_o_diag",
    "W_P_0": "projection/kernel",
    "projection/weights": "projection/kernel",
}
_LEGACY_LAST_PARTS = {legacy.rpartition("/")[2] for legacy in _LEGACY_LEAVES}
_KERAS1_ROLES = tuple(f"{p}_{g}" for g in "icfo" for p in "WUb")

# A scope whose own name says GRU (or a GRU's inner scope) never holds an LSTM, whatever the shapes.
_NOT_LSTM_SCOPE = re.compile(r"(gru|(^|/)(gates|candidate)$)", re.IGNORECASE)
_LSTM_WORD = re.compile(r"lstm", re.IGNORECASE)

# Activation names Keras 3 gave another function, and the name numpy_lstm.ACTIVATIONS computes it
# under: Keras 3's hard_sigmoid is relu6(x + 3) / 6 (keras/src/backend/*/nn.py hard_sigmoid), Keras 1
# and 2's clip(0.2x + 0.5, 0, 1) (tf_keras/src/backend.py hard_sigmoid).
_KERAS3_ACTIVATIONS = {"hard_sigmoid": "hard_sigmoid_keras3"}


@dataclass
class LayerSpec:
    """One LSTM layer found in a file: where its tensors are and how to read them."""

    name: str
    cell: str  # "BasicLSTMCell/LSTMCell", "LSTMCell", "LSTM", "CuDNNLSTM", ...
    layout: Layout
    input_size: int
    units: int
    recurrent_size: int
    projection_size: int | None
    tensors: dict[str, TensorInfo]  # role ("kernel", "recurrent_kernel", "bias", "w_f_diag", "W_i", ...) → tensor
    forget_bias: float
    activation: str  # "tanh", or "unknown" when nothing in the file says
    recurrent_activation: str
    activation_source: str  # "config", "default" (the framework's fixed default), "unknown"
    pair: str | None = None  # the bidirectional pair this layer belongs to
    direction: str | None = None  # "forward" / "backward" inside a pair

    @property
    def params(self) -> int:
        return sum(t.size for t in self.tensors.values())

    @property
    def dtype(self) -> str:
        return self.tensors["kernel" if "kernel" in self.tensors else "W_i"].dtype

    @property
    def peepholes(self) -> bool:
        return "w_f_diag" in self.tensors


@dataclass(slots=True)
class Variable:
    """A stored tensor that is not part of an LSTM layer, with what it is."""

    info: TensorInfo
    category: str  # "model", "optimizer", "bookkeeping"


@dataclass
class Detection:
    layers: list[LayerSpec] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)


def categorize(name: str, dtype: str) -> str:
    """ "optimizer", "bookkeeping" or "model" for a tensor that is not part of an LSTM."""
    if name.startswith(_OPTIMIZER_PREFIXES) or ".OPTIMIZER_SLOT" in name:
        return "optimizer"
    base = name[: -len(_TF2_VALUE_SUFFIX)] if name.endswith(_TF2_VALUE_SUFFIX) else name
    if _SLOT_LEAF.match(base.rsplit("/", 1)[-1]):
        return "optimizer"
    if dtype == "string" or _BOOKKEEPING.search(base):
        return "bookkeeping"
    return "model"


def _split_role(name: str) -> tuple[str, str]:
    """(scope, role) for a model tensor name, undoing TF2 suffixes and legacy names."""
    if name.endswith(_TF2_VALUE_SUFFIX):
        name = name[: -len(_TF2_VALUE_SUFFIX)]
    scope, _, leaf = name.rpartition("/")
    # Most leaves are no legacy name: one set look-up spares them the loop, which a summary
    # would otherwise run for each of a large checkpoint's tensors.
    if leaf in _LEGACY_LAST_PARTS:
        for legacy, role in _LEGACY_LEAVES.items():
            if name == legacy or name.endswith("/" + legacy):
                return name[: -len(legacy)].rstrip("/"), role
    if name.endswith("/projection/kernel"):
        return name[: -len("/projection/kernel")], "projection/kernel"
    return scope, leaf


def detect(
    tensors: dict[str, TensorInfo],
    configs: dict[str, LayerConfig] | None = None,
    forget_bias: float | None = None,
) -> Detection:
    """Find every LSTM layer among `tensors`.

    configs: per layer scope, what a Keras model config says (class, units, activations).
    forget_bias: overrides the runtime forget bias of every layer (None: each layout's default).
    """
    configs = configs or {}
    categories = {name: categorize(name, info.dtype) for name, info in tensors.items()}
    scopes: dict[str, dict[str, TensorInfo]] = {}
    for info in tensors.values():
        if categories[info.name] != "model":
            continue
        scope, role = _split_role(info.name)
        scopes.setdefault(scope, {})[role] = info

    result = Detection()
    used: set[str] = set()
    for scope, roles in scopes.items():
        spec = _detect_scope(scope, roles, configs)
        if spec is None:
            continue
        if forget_bias is not None:
            spec.forget_bias = float(forget_bias)
        result.layers.append(spec)
        used.update(t.name for t in spec.tensors.values())
    _pair_directions(result.layers)
    result.variables = [Variable(info, categories[name]) for name, info in tensors.items() if name not in used]
    return result


def _matrix(info: TensorInfo | None) -> bool:
    return info is not None and len(info.shape) == 2


def _vector(info: TensorInfo | None, length: int) -> bool:
    return info is not None and info.shape == (length,)


def _detect_scope(scope: str, roles: dict[str, TensorInfo], configs: dict[str, LayerConfig]) -> LayerSpec | None:
    if _NOT_LSTM_SCOPE.search(scope):
        return None
    if "recurrent_kernel" in roles:
        return _keras(scope, roles, configs)
    if all(r in roles for r in _KERAS1_ROLES):
        return _keras1(scope, roles, configs)
    if "kernel" in roles and "bias" in roles:
        return _tf1(scope, roles)
    return None


def _tf1(scope: str, roles: dict[str, TensorInfo]) -> LayerSpec | None:
    kernel, bias = roles["kernel"], roles["bias"]
    if not _matrix(kernel) or kernel.shape[1] % 4:
        return None
    units = kernel.shape[1] // 4
    if not _vector(bias, 4 * units):
        return None
    projection = roles.get("projection/kernel")
    peepholes = [roles.get(r) for r in ("w_i_diag", "w_f_diag", "w_o_diag")]
    has_peepholes = all(_vector(p, units) for p in peepholes)
    has_projection = _matrix(projection) and projection.shape[0] == units
    # A [rows, 4u] kernel and a [4u] bias is also what a dense layer looks like: only a scope
    # named like an LSTM cell, or one with peepholes or a projection, is taken for one.
    if not (_LSTM_WORD.search(scope) or has_peepholes or has_projection):
        return None
    recurrent_size = projection.shape[1] if has_projection else units
    input_size = kernel.shape[0] - recurrent_size
    if input_size <= 0:
        return None
    used = {"kernel": kernel, "bias": bias}
    if has_peepholes:
        used.update(zip(("w_i_diag", "w_f_diag", "w_o_diag"), peepholes))
    if has_projection:
        used["projection/kernel"] = projection
    cudnn = scope.rsplit("/", 1)[-1].lower().startswith("cudnn_compatible_lstm_cell")
    layout = LAYOUTS["tf1-cudnn-compatible" if cudnn else "tf1"]
    if cudnn:
        cell = "CudnnCompatibleLSTMCell"
    else:
        # Without peepholes or a projection the two cells store the same tensors.
        cell = "LSTMCell" if has_peepholes or has_projection else "(Basic)LSTMCell"
    return LayerSpec(
        name=scope,
        cell=cell,
        layout=layout,
        input_size=input_size,
        units=units,
        recurrent_size=recurrent_size,
        projection_size=recurrent_size if has_projection else None,
        tensors=used,
        forget_bias=layout.forget_bias,
        # The TF1 cells default to tanh and sigmoid; a custom activation is code, never stored.
        activation="tanh",
        recurrent_activation="sigmoid",
        activation_source="default",
    )


def _layer_name(scope: str) -> str:
    # TF2 object checkpoints of Keras layers keep the weights on the layer's `cell` object.
    return scope[: -len("/cell")] if scope.endswith("/cell") else scope


def _activations(config: LayerConfig | None) -> tuple[str, str, str]:
    if config is None:
        return "unknown", "unknown", "unknown"
    activation = config.config.get("activation", "tanh")
    recurrent = config.config.get("recurrent_activation", "sigmoid")
    return _activation_name(activation, config), _activation_name(recurrent, config), "config"


def _activation_name(name: object, config: LayerConfig) -> str:
    """What numpy_lstm.ACTIVATIONS calls the function Keras means by `name` in the version that wrote the file."""
    name = str(name)
    if config.keras_version is not None and config.keras_version.startswith("3"):
        return _KERAS3_ACTIVATIONS.get(name, name)
    return name


def _keras(scope: str, roles: dict[str, TensorInfo], configs: dict[str, LayerConfig]) -> LayerSpec | None:
    kernel, recurrent = roles.get("kernel"), roles["recurrent_kernel"]
    if not (_matrix(kernel) and _matrix(recurrent)):
        return None
    units = recurrent.shape[0]
    if kernel.shape[1] != 4 * units or recurrent.shape[1] != 4 * units:
        return None
    name = _layer_name(scope)
    config = configs.get(name)
    if config is not None and "LSTM" not in config.class_name.upper():
        return None
    used = {"kernel": kernel, "recurrent_kernel": recurrent}
    bias = roles.get("bias")
    cudnn = _vector(bias, 8 * units)
    if bias is not None:
        if not (cudnn or _vector(bias, 4 * units)):
            return None
        used["bias"] = bias
    activation, recurrent_activation, source = _activations(config)
    if cudnn:
        # CuDNNLSTM has no activation options: cuDNN computes sigmoid and tanh.
        activation, recurrent_activation, source = "tanh", "sigmoid", "default"
    layout = LAYOUTS["keras-cudnn" if cudnn else "keras"]
    return LayerSpec(
        name=name,
        cell="CuDNNLSTM" if cudnn else (config.class_name if config else "LSTM"),
        layout=layout,
        input_size=kernel.shape[0],
        units=units,
        recurrent_size=units,
        projection_size=None,
        tensors=used,
        forget_bias=layout.forget_bias,
        activation=activation,
        recurrent_activation=recurrent_activation,
        activation_source=source,
    )


def _keras1(scope: str, roles: dict[str, TensorInfo], configs: dict[str, LayerConfig]) -> LayerSpec | None:
    w_i, u_i = roles["W_i"], roles["U_i"]
    if not (_matrix(w_i) and _matrix(u_i)):
        return None
    input_size, units = w_i.shape
    for gate in "icfo":
        if roles[f"W_{gate}"].shape != (input_size, units) or roles[f"U_{gate}"].shape != (units, units):
            return None
        if not _vector(roles[f"b_{gate}"], units):
            return None
    config = configs.get(scope)
    activation, recurrent_activation, source = _activations(config)
    if config is not None and "recurrent_activation" not in config.config:
        # Keras 1 called it inner_activation and defaulted it to hard_sigmoid (keras 1.2 recurrent.py).
        recurrent_activation = _activation_name(config.config.get("inner_activation", "hard_sigmoid"), config)
    return LayerSpec(
        name=scope,
        cell="LSTM (Keras 1)",
        layout=LAYOUTS["keras1"],
        input_size=input_size,
        units=units,
        recurrent_size=units,
        projection_size=None,
        tensors={r: roles[r] for r in _KERAS1_ROLES},
        forget_bias=0.0,
        activation=activation,
        recurrent_activation=recurrent_activation,
        activation_source=source,
    )


_TF_DIRECTION = re.compile(r"^(?:(?P<prefix>.*)/)?(?P<dir>fw|bw)/(?P<rest>.+)$")
# Keras logical names end in /forward, /backward; TF2 object checkpoints in /forward_layer, /backward_layer.
_KERAS_DIRECTION = re.compile(r"^(?P<prefix>.+)/(?P<dir>forward|backward)(_layer)?$")


def _pair_directions(layers: list[LayerSpec]) -> None:
    """Mark the halves of bidirectional pairs (Keras `bi/forward` and `bi/backward`; TF
    `bidirectional_rnn/fw/<cell>` and `…/bw/<cell>`, the pair named after the enclosing scope)."""
    halves: dict[str, list[tuple[LayerSpec, str]]] = {}
    for layer in layers:
        match = _KERAS_DIRECTION.match(layer.name)
        if match:
            pair, direction = match.group("prefix"), match.group("dir")
        else:
            match = _TF_DIRECTION.match(layer.name)
            if not match:
                continue
            # Cells nested below fw/ (a MultiRNNCell's cell_N) pair with the same path below bw/.
            inner = match.group("rest").rpartition("/")[0]
            pair = "/".join(p for p in (match.group("prefix"), inner) if p) or "bidirectional"
            direction = "forward" if match.group("dir") == "fw" else "backward"
        halves.setdefault(pair, []).append((layer, direction))
    for pair, members in halves.items():
        if sorted(d for _, d in members) == ["backward", "forward"]:
            for layer, direction in members:
                layer.pair, layer.direction = pair, direction
