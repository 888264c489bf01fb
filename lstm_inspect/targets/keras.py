"""Keras: LSTM.set_weights([kernel, recurrent_kernel(, bias)]) (keras/src/layers/rnn/lstm.py), and
GRU's alike (gru.py), its reset_after read from the bias' shape; keras is imported only to run it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import activations, schema
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
    given `weights` by set_weights and run over x [T, B, in] in one direction; (h for every step,
    the final cell state: an LSTM's c, a GRU's h)."""
    import numpy as np

    config = {**config, "return_sequences": True, "return_state": True, "go_backwards": False}
    config.pop("name", None)
    layer = cls.from_config(config)
    layer.build((x.shape[1], x.shape[0], x.shape[2]))
    layer.set_weights([np.asarray(w) for w in weights])
    # With return_state an LSTM returns [y, h, c], a GRU [y, h]: the last is the cell state.
    y, *_, state = layer(np.ascontiguousarray(np.asarray(x, dtype=np.asarray(weights[0]).dtype).transpose(1, 0, 2)))
    return np.asarray(y).transpose(1, 0, 2), np.asarray(state)


def outputs(
    values: Sequence[np.ndarray],
    x: np.ndarray,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    cell: str = "LSTM",
    **variants: bool,
) -> Outputs:
    """A Keras 3 `cell` layer (LSTM, GRU with its `variants`: reset_after) given [kernel,
    recurrent_kernel(, bias)] by set_weights, run over x [T, B, in]."""
    import keras
    import numpy as np

    dtype = compute_dtype(np.asarray(values[0]).dtype)
    config = {
        "units": values[1].shape[0],
        "use_bias": len(values) == 3,
        "activation": keras_activation(activation),
        "recurrent_activation": keras_activation(recurrent_activation),
        "dtype": np.dtype(dtype).name,
        **variants,
    }
    return run_layer(getattr(keras.layers, cell), config, [np.asarray(v, dtype=dtype) for v in values], x)


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """A Keras 3 layer of each direction's cell kind, given its export by set_weights, over its own
    processing order."""
    return [
        outputs(
            [layer_arrays[role.key] for role in TARGET.weights_layout(weights).roles if role.key in layer_arrays],
            x if index == 0 else x[::-1],
            weights.activation,
            weights.recurrent_activation,
            weights.cell.name,
            **weights.variants,
        )
        for index, (layer_arrays, weights) in enumerate(zip(arrays, directions))
    ]


# keras/src/layers/rnn/lstm.py and gru.py: no peepholes, no projection; any activation, since the
# arrays carry none: Keras 3 computes hard_sigmoid_keras3 by the name hard_sigmoid, and Keras 2's
# hard_sigmoid by tf_keras or a clip(0.2x + 0.5, 0, 1) (keras_activation). A GRU of either
# reset_after: its bias (2, 3u) or (3u,).
TARGET = Target(
    "keras",
    LAYOUT,
    "keras.layers.{cell}",
    "arrays for keras.layers.LSTM.set_weights (GRU's alike): kernel, recurrent_kernel [, bias]",
    peepholes=False,
    projection="none",
    check="keras",
    needs=("keras",),
    run=run,
    cell_layouts=(schema.LAYOUTS["keras-gru"], schema.LAYOUTS["keras-gru-reset-before"]),
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


def run_original(model: Any, name: str, pair: str | None, direction: str | None, x: np.ndarray) -> Outputs:
    """One layer of a loaded model (`enc`, or a Bidirectional pair's forward or backward half) built
    afresh from its own config and weights and run over x in its processing order."""
    from ..errors import LstmInspectError

    try:
        if pair is not None:
            wrapper = model.get_layer(pair)
            original = wrapper.forward_layer if direction == "forward" else wrapper.backward_layer
        else:
            original = model.get_layer(name)
    except ValueError as e:
        raise LstmInspectError(f"no layer {name} in the model Keras loaded ({e})") from None
    try:
        return run_layer(type(original), original.get_config(), original.get_weights(), x)
    except Exception as e:  # e.g. CuDNNLSTM, which runs on a GPU only
        raise LstmInspectError(f"Keras could not run {name}: {type(e).__name__}: {e}".splitlines()[0]) from None
