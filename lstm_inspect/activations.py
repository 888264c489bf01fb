"""The activation functions a layer may use, declared once: what each computes, how messages show
it, and how the export targets that can express it spell it.

Names are this project's: the framework's own name where it is unambiguous, and
`hard_sigmoid_keras3` for the function Keras 3 computes under the name `hard_sigmoid`
(relu6(x + 3) / 6 = clip(x/6 + 0.5, 0, 1), keras/src/backend/*/nn.py hard_sigmoid), which is not
the clip(0.2x + 0.5, 0, 1) that Keras 1 and 2 compute under it (tf_keras/src/backend.py).
numpy is imported only when a function is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .records import frozen_record

if TYPE_CHECKING:
    import numpy as np


@frozen_record
class Activation:
    """name: this project's; shown: for messages; onnx: the ONNX RNN activation (op, alpha, beta)
    (onnx/defs/rnn/defs.cc; alpha and beta are consumed in order from activation_alpha/_beta),
    None when ONNX has none; keras3: the name Keras 3 computes it by, None when it has none;
    tf_op: the graph op TensorFlow applies for it (what a .meta graph shows)."""

    name: str
    shown: str
    onnx: tuple[str, float | None, float | None] | None
    keras3: str | None
    tf_op: str | None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    import numpy as np

    # exp overflows to inf for very negative x, and 1 / (1 + inf) is the right 0.0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _tanh(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.tanh(x)


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _hard_sigmoid_keras3(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _relu(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.maximum(x, 0.0)


def _linear(x: np.ndarray) -> np.ndarray:
    return x


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", "sigmoid", ("Sigmoid", None, None), "sigmoid", "Sigmoid"),
        Activation("tanh", "tanh", ("Tanh", None, None), "tanh", "Tanh"),
        # ONNX HardSigmoid is clip(alpha x + beta, 0, 1).
        Activation(
            "hard_sigmoid", "hard_sigmoid (Keras 2: clip(0.2x + 0.5, 0, 1))", ("HardSigmoid", 0.2, 0.5), None, None
        ),
        Activation(
            "hard_sigmoid_keras3",
            "hard_sigmoid (Keras 3: clip(x/6 + 0.5, 0, 1))",
            ("HardSigmoid", 1 / 6, 0.5),
            "hard_sigmoid",
            None,
        ),
        Activation("relu", "relu", ("Relu", None, None), "relu", "Relu"),
        Activation("linear", "linear", ("Affine", 1.0, 0.0), "linear", "Identity"),
    )
}

_NUMPY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "hard_sigmoid": _hard_sigmoid,
    "hard_sigmoid_keras3": _hard_sigmoid_keras3,
    "relu": _relu,
    "linear": _linear,
}

# Keras 3 gave these names another function than Keras 1 and 2 did.
_KERAS3_RENAMED = {"hard_sigmoid": "hard_sigmoid_keras3"}


def numpy_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy implementation of an activation; KeyError for one this project does not compute."""
    return _NUMPY[name]


def known(name: str) -> bool:
    return name in _NUMPY


def shown(name: str) -> str:
    """How messages name an activation (the two hard_sigmoids say which function they are)."""
    activation = ACTIVATIONS.get(name)
    return activation.shown if activation else name


def from_keras(name: object, keras_version: str | None) -> str:
    """This project's name for what Keras computes under `name`, in the version that wrote the file."""
    text = str(name)
    if keras_version is not None and keras_version.startswith("3"):
        return _KERAS3_RENAMED.get(text, text)
    return text


def from_tf_op(op: str) -> str | None:
    """This project's name for the activation a TensorFlow graph op computes, or None."""
    return next((a.name for a in ACTIVATIONS.values() if a.tf_op == op), None)
