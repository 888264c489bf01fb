"""TensorFlow 1: an LSTMCell's or a GRUCell's variables under its scope (tensorflow/python/ops/rnn_cell_impl.py)."""

from __future__ import annotations

from .. import schema
from .base import Target

# LSTMCell.call hard-codes sigmoid for the gates; the cell activation, peepholes, the projection
# and both clips are constructor arguments. GRUCell.call hard-codes sigmoid too, and multiplies the
# state by the reset gate before the candidate's matmul (tf1-gru fixes reset_after False).
TARGET = Target(
    "tensorflow",
    schema.LAYOUTS["tf1"],
    "TF1 {cell}Cell",
    "a TF1 LSTMCell's variables: kernel (input rows, then recurrent rows), bias [, w_i_diag, w_f_diag, "
    "w_o_diag, projection/kernel]; a GRUCell's gates/kernel, gates/bias, candidate/kernel, candidate/bias",
    clips=frozenset({"cell_clip", "proj_clip"}),
    recurrent_activations=frozenset({"sigmoid"}),
    settable=frozenset({"forget_bias"}),
    cell_layouts=(schema.LAYOUTS["tf1-gru"],),
)
