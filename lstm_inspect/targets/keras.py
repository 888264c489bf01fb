"""Keras: LSTM.set_weights([kernel, recurrent_kernel(, bias)]) (keras/src/layers/rnn/lstm.py); keras
is imported only to run it."""

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
    """A fresh `cls` (keras.layers.LSTM, or the class of a loaded layer) built from `config`, given
    `weights` by set_weights and run over x [T, B, in] in one direction; (h for every step, final c)."""
    import numpy as np

    config = {**config, "return_sequences": True, "return_state": True, "go_backwards": False}
    config.pop("name", None)
    layer = cls.from_config(config)
    layer.build((x.shape[1], x.shape[0], x.shape[2]))
    layer.set_weights([np.asarray(w) for w in weights])
    y, _, c = layer(np.ascontiguousarray(np.asarray(x, dtype=np.asarray(weights[0]).dtype).transpose(1, 0, 2)))
    return np.asarray(y).transpose(1, 0, 2), np.asarray(c)


def run(arrays: Sequence[Mapping[str, np.ndarray]], directions: Sequence[Weights], x: np.ndarray) -> list[Outputs]:
    """A Keras 3 LSTM per direction, given its export by set_weights, over its own processing order."""
    import keras
    import numpy as np

    outputs = []
    for index, (layer_arrays, weights) in enumerate(zip(arrays, directions)):
        dtype = compute_dtype(weights.dtype)
        values = [np.asarray(layer_arrays[role.key], dtype=dtype) for role in LAYOUT.roles if role.key in layer_arrays]
        config = {
            "units": weights.units,
            "use_bias": "bias" in layer_arrays,
            "activation": keras_activation(weights.activation),
            "recurrent_activation": keras_activation(weights.recurrent_activation),
            "dtype": np.dtype(dtype).name,
        }
        outputs.append(run_layer(keras.layers.LSTM, config, values, x if index == 0 else x[::-1]))
    return outputs


# keras/src/layers/rnn/lstm.py: no peepholes, no projection; any activation, since the arrays carry
# none: Keras 3 computes hard_sigmoid_keras3 by the name hard_sigmoid, and Keras 2's hard_sigmoid
# by tf_keras or a clip(0.2x + 0.5, 0, 1) (keras_activation).
TARGET = Target(
    "keras",
    LAYOUT,
    "keras.layers.LSTM",
    "arrays for keras.layers.LSTM.set_weights: kernel, recurrent_kernel [, bias]",
    peepholes=False,
    projection="none",
    check="keras",
    needs=("keras",),
    run=run,
)
