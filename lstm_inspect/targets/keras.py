"""Keras: LSTM.set_weights([kernel, recurrent_kernel(, bias)]) (keras/src/layers/rnn/lstm.py), and
GRU's alike (gru.py), its reset_after read from the bias' shape; keras is imported only to run it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import activations, schema
from . import tensorflow as tensorflow_target
from .base import Target
from .pytorch import compute_dtype

if TYPE_CHECKING:
    import numpy as np

    from ..weights import Weights
    from .base import Outputs

LAYOUT = schema.LAYOUTS["keras"]


def keras_activation(name: str) -> Any:
    """A Keras 3 activation computing what this project calls `name`."""
    activation = activations.ACTIVATIONS.get(name)
    if activation is None:
        return name  # Keras knows more activations than this project computes
    if activation.keras3 is not None:
        return activation.keras3
    from keras import ops

    # Keras 2's hard_sigmoid, clip(0.2x + 0.5, 0, 1): Keras 3's hard_sigmoid is another function.
    return lambda z: ops.clip(0.2 * z + 0.5, 0.0, 1.0)


def run_layer(cls: Any, config: Mapping[str, Any], weights: Sequence[np.ndarray], x: np.ndarray) -> Outputs:
    """A fresh `cls` (keras.layers.LSTM or GRU, or the class of a loaded layer) built from `config`,
    given `weights` by set_weights and run over x [T, B, ...] in one direction; (h for every step,
    the final cell state: an LSTM's c, a GRU's h)."""
    config = {**config, "return_sequences": True, "return_state": True, "go_backwards": False}
    config.pop("name", None)
    return _run(cls.from_config(config), weights, x)


def _run(layer: Any, weights: Sequence[np.ndarray], x: np.ndarray) -> Outputs:
    """A recurrent layer that returns its sequence and state, given `weights` and run over x [T, B, ...]."""
    import numpy as np

    # x is [T, B, ...] (a ConvLSTM's input has spatial axes before its channels); Keras reads [B, T, ...].
    batch_major = (1, 0, *range(2, x.ndim))
    layer.build((x.shape[1], x.shape[0], *x.shape[2:]))
    layer.set_weights([np.asarray(w) for w in weights])
    # With return_state an LSTM returns [y, h, c], a GRU [y, h]: the last is the cell state.
    y, *_, state = layer(np.ascontiguousarray(np.asarray(x, dtype=np.asarray(weights[0]).dtype).transpose(batch_major)))
    return np.asarray(y).transpose(batch_major), np.asarray(state)


def outputs(
    values: Sequence[np.ndarray],
    x: np.ndarray,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    cell: str = "LSTM",
    conv: Mapping[str, object] | None = None,
    **variants: bool,
) -> Outputs:
    """A Keras 3 `cell` layer (LSTM, GRU with its `variants`: reset_after, or ConvLSTM1D/2D/3D with
    the convolution settings `conv`) given [kernel, recurrent_kernel(, bias)] by set_weights, run
    over x [T, B, ...]."""
    import keras
    import numpy as np

    dtype = compute_dtype(np.asarray(values[0]).dtype)
    config: dict[str, Any] = {
        "use_bias": len(values) == 3,
        "activation": keras_activation(activation),
        "recurrent_activation": keras_activation(recurrent_activation),
        "dtype": np.dtype(dtype).name,
        **variants,
    }
    if conv is None:
        config["units"] = values[1].shape[-2]
    else:
        # keras/src/layers/rnn/conv_lstm.py: kernel_size + (in, 4 filters), the recurrent kernel's filters.
        config.update(filters=values[1].shape[-2], kernel_size=tuple(values[0].shape[:-2]), **conv)
    return run_layer(getattr(keras.layers, cell), config, [np.asarray(v, dtype=dtype) for v in values], x)


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """A Keras 3 layer of each direction's cell kind (LSTM, GRU, ConvLSTM2D, ...), given its export
    by set_weights, over its own processing order: in TensorFlow's worker where TensorFlow is
    installed (Keras' default backend, which the worker imports anyway), else here."""
    calls: list[tuple[list[np.ndarray], np.ndarray, dict[str, Any]]] = [
        (
            [layer_arrays[role.key] for role in TARGET.weights_layout(weights).roles if role.key in layer_arrays],
            x if index == 0 else x[::-1],
            {
                "activation": weights.activation,
                "recurrent_activation": weights.recurrent_activation,
                "cell": weights.cell.name,
                "conv": dict(weights.conv) if weights.conv else None,
                **weights.variants,
            },
        )
        for index, (layer_arrays, weights) in enumerate(zip(arrays, directions))
    ]
    if _in_worker():
        return tensorflow_target.run_keras(calls)
    return [outputs(values, xi, **arguments) for values, xi, arguments in calls]


def _in_worker() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def _prepare() -> None:
    if _in_worker():
        tensorflow_target.prepare()


# keras/src/layers/rnn/lstm.py and gru.py: no peepholes, no projection; any activation, since the
# arrays carry none: Keras 3 computes hard_sigmoid_keras3 by the name hard_sigmoid, and Keras 2's
# hard_sigmoid by tf_keras or a clip(0.2x + 0.5, 0, 1) (keras_activation). A GRU of either
# reset_after: its bias (2, 3u) or (3u,). conv_lstm.py: ConvLSTM1D/2D/3D's kernel, recurrent_kernel
# and bias, as the file stores them.
TARGET = Target(
    "keras",
    LAYOUT,
    "keras.layers.{cell}",
    "arrays for keras.layers.LSTM.set_weights (GRU's and ConvLSTM1D/2D/3D's alike): kernel, recurrent_kernel [, bias]",
    peepholes=False,
    projection="none",
    check="keras",
    needs=("keras",),
    run=run,
    prepare=_prepare,
    cell_layouts=(
        schema.LAYOUTS["keras-gru"],
        schema.LAYOUTS["keras-gru-reset-before"],
        *(schema.LAYOUTS[f"keras-convlstm{schema.spatial_rank(cell)}d"] for cell in schema.CONV_LSTMS),
    ),
)


# ---- the original file, loaded by the Keras that wrote it (verify's keras-model check) -------------


def load_model(path: str, keras_version: str | None = None) -> Any:
    """The model as the Keras that wrote it loads it: tf_keras for a file that says Keras 1 or 2
    (the same activation name can mean another function in Keras 3: hard_sigmoid); otherwise
    Keras 3 first, and tf_keras for a file Keras 3 rejects."""
    import importlib.util

    has_tf_keras = importlib.util.find_spec("tf_keras") is not None
    written_by_keras2 = keras_version is not None and not keras_version.startswith("3")
    if not (written_by_keras2 and has_tf_keras):
        import keras

        try:
            return keras.saving.load_model(path, compile=False)
        except Exception:
            if not has_tf_keras:
                raise
    import tf_keras

    return tf_keras.models.load_model(path, compile=False)


def find_layer(model: Any, name: str) -> Any:
    """The object a layer name of this tool's Keras reader names (readers/keras/), in a loaded
    model: `sub/enc` (a nested model's layer), `bi/forward` (a Bidirectional's half), `td` (the
    layer a TimeDistributed wraps), `rnn/cell_0` (a stacked RNN's first cell). Raises ValueError."""
    found, steps = model, name.split("/")
    while True:
        # A wrapper's layer is named after the wrapper (keras/src/layers/core/wrapper.py `layer`).
        while type(found).__name__ == "TimeDistributed":
            found = found.layer
        if not steps:
            return found
        step = steps.pop(0)
        kind = type(found).__name__
        if kind == "Bidirectional" and step in ("forward", "backward"):
            found = found.forward_layer if step == "forward" else found.backward_layer
        elif step.startswith("cell_") and step[5:].isdigit() and hasattr(getattr(found, "cell", None), "cells"):
            found = found.cell.cells[int(step[5:])]
        elif hasattr(found, "get_layer"):
            found = found.get_layer(step)
        else:
            raise ValueError(f"{kind} {getattr(found, 'name', '')!r} has no part {step!r}")


def run_original(model: Any, name: str, pair: str | None, direction: str | None, x: np.ndarray) -> Outputs:
    """One layer of a loaded model (`enc`, a Bidirectional pair's forward or backward half, a
    wrapped or nested layer, a stacked RNN's cell) built afresh from its own config and weights
    and run over x in its processing order."""
    from ..errors import LstmInspectError

    try:
        original = find_layer(model, name)
    except ValueError as e:
        raise LstmInspectError(f"no layer {name} in the model Keras loaded ({e})") from None
    try:
        if not hasattr(original, "cell") and hasattr(original, "state_size"):
            # A stacked RNN's cell, run by an RNN of its own (keras/src/layers/rnn/rnn.py RNN(cell)).
            cell = type(original).from_config(original.get_config())
            rnn = _rnn_class(original)(cell, return_sequences=True, return_state=True)
            return _run(rnn, original.get_weights(), x)
        return run_layer(type(original), original.get_config(), original.get_weights(), x)
    except Exception as e:  # e.g. CuDNNLSTM, which runs on a GPU only
        raise LstmInspectError(f"Keras could not run {name}: {type(e).__name__}: {e}".splitlines()[0]) from None


def _rnn_class(cell: Any) -> Any:
    """keras.layers.RNN of the Keras a cell comes from (Keras 3, or tf_keras for a Keras 2 file)."""
    import importlib

    return importlib.import_module(type(cell).__module__.split(".")[0]).layers.RNN
