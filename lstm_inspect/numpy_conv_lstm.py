"""A plain numpy ConvLSTM over the canonical gate blocks: the yardstick verify runs a ConvLSTM1D/2D/3D
through, as numpy_lstm.py is an LSTM's.

keras/src/layers/rnn/conv_lstm.py ConvLSTMCell.call (tf_keras layers/rnn/conv_lstm.py alike), per
gate g of i, f, c, o:

    z_g = conv(x, W_g, strides, padding, dilation_rate) + b_g + conv(h, U_g, strides 1, "same")
    c' = σ(z_f)∘c + σ(z_i)∘tanh(z_c),   h' = σ(z_o)∘tanh(c')

where conv is TensorFlow's cross-correlation (ops.conv; nn.convolution): "valid" uses no padding,
"same" pads each spatial axis by max((out − 1)·stride + (k − 1)·dilation + 1 − in, 0), the smaller
half before (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSize).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .activations import numpy_function
from .errors import UnsupportedFormat

if TYPE_CHECKING:
    from .weights import Weights

# The spatial extent verify feeds a layer along each axis: the kernel's reach and two strides more,
# so that even "valid" padding leaves three positions to compare.
_EXTRA_STRIDES = 2


def _ints(value: object, rank: int, what: str) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, int) else tuple(value)  # type: ignore[arg-type]
    if len(values) != rank or not all(isinstance(v, int) and v >= 1 for v in values):
        raise UnsupportedFormat(f"a ConvLSTM's {what} {value!r} is not {rank} positive integers")
    return values


def _conv(
    x: np.ndarray, kernel: np.ndarray, strides: Sequence[int], padding: str, dilation: Sequence[int]
) -> np.ndarray:
    """x [B, *spatial, C] cross-correlated with kernel [*k, C, F]: [B, *out, F]."""
    rank = kernel.ndim - 2
    pads, outs = [(0, 0)], []
    for axis in range(rank):
        size, reach = x.shape[1 + axis], (kernel.shape[axis] - 1) * dilation[axis] + 1
        if padding == "valid":
            out = (size - reach) // strides[axis] + 1
            pads.append((0, 0))
        else:
            out = -(-size // strides[axis])
            total = max((out - 1) * strides[axis] + reach - size, 0)
            pads.append((total // 2, total - total // 2))
        outs.append(max(out, 0))
    padded = np.pad(x, [*pads, (0, 0)])
    y = np.zeros((x.shape[0], *outs, kernel.shape[-1]))
    for offset in np.ndindex(*kernel.shape[:rank]):
        window = tuple(slice(k * d, k * d + (n - 1) * s + 1, s) for k, d, n, s in zip(offset, dilation, outs, strides))
        y += padded[(slice(None),) + window + (slice(None),)] @ kernel[offset]
    return y


def run_conv_lstm(
    gates: Mapping[str, Mapping[str, np.ndarray]],
    x: np.ndarray,
    forget_bias: float = 0.0,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    strides: object = 1,
    padding: str = "valid",
    dilation_rate: object = 1,
    data_format: str | None = "channels_last",
) -> tuple[np.ndarray, np.ndarray]:
    """Run one ConvLSTM layer over x [time, batch, *spatial, channels] (channels first for
    data_format "channels_first": [time, batch, channels, *spatial]) from zero state.

    gates: per canonical gate its blocks "kernel" [*k, in, filters], "recurrent" [*k, filters,
    filters] and optionally "bias" [filters].
    Returns (h for every step [time, batch, *out, filters], the final cell state [batch, *out,
    filters]), in the layer's data format, float64.
    """
    g = {name: {part: np.asarray(v, dtype=np.float64) for part, v in blocks.items()} for name, blocks in gates.items()}
    rank = g["input"]["kernel"].ndim - 2
    strides_, dilation = _ints(strides, rank, "strides"), _ints(dilation_rate, rank, "dilation_rate")
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise UnsupportedFormat(f"a ConvLSTM's padding {padding!r} is neither 'valid' nor 'same'")
    channels_first = data_format == "channels_first"
    xs = np.asarray(x, dtype=np.float64)
    if channels_first:  # compute channels last, as TensorFlow's CPU kernels do
        xs = np.moveaxis(xs, 2, -1)
    act, rec_act = numpy_function(activation), numpy_function(recurrent_activation)
    ones = (1,) * rank
    h = c = np.zeros(0)
    outputs: list[np.ndarray] = []
    with np.errstate(over="ignore", invalid="ignore"):
        for xt in xs:
            z = {}
            for name, blocks in g.items():
                z[name] = _conv(xt, blocks["kernel"], strides_, padding, dilation)
                if "bias" in blocks:
                    z[name] = z[name] + blocks["bias"]
            if not outputs:  # the state takes the shape of the first step's convolutions
                h = c = np.zeros_like(z["input"])
            for name, blocks in g.items():
                z[name] = z[name] + _conv(h, blocks["recurrent"], ones, "same", ones)
            c = rec_act(z["forget"] + forget_bias) * c + rec_act(z["input"]) * act(z["cell"])
            h = rec_act(z["output"]) * act(c)
            outputs.append(h)
    hs, final = np.stack(outputs), c
    if channels_first:
        hs, final = np.moveaxis(hs, -1, 2), np.moveaxis(final, -1, 1)
    return hs, final


def step_shape(weights: Weights) -> tuple[int, ...]:
    """The shape of one step of one sequence verify feeds the layer: its spatial extent (the
    kernel's reach and _EXTRA_STRIDES strides more on each axis) and its channels, in its data format."""
    kernel = weights.kernel
    rank = kernel.ndim - 2
    strides = _ints(weights.conv.get("strides", 1), rank, "strides")
    dilation = _ints(weights.conv.get("dilation_rate", 1), rank, "dilation_rate")
    spatial = tuple((k - 1) * d + 1 + _EXTRA_STRIDES * s for k, d, s in zip(kernel.shape[:rank], dilation, strides))
    channels = int(kernel.shape[-2])
    return (channels, *spatial) if weights.conv.get("data_format") == "channels_first" else (*spatial, channels)


def run_weights(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ConvLSTM layer's canonical weights, with its convolution settings, run over x."""
    conv = weights.conv
    return run_conv_lstm(
        weights.gates(),
        x,
        forget_bias=weights.forget_bias,
        activation=weights.activation,
        recurrent_activation=weights.recurrent_activation,
        strides=conv.get("strides", 1),
        padding=str(conv.get("padding", "valid")),
        dilation_rate=conv.get("dilation_rate", 1),
        data_format=conv.get("data_format") or "channels_last",  # type: ignore[arg-type]
    )
