"""lstm-inspect: find the LSTM layers in TensorFlow checkpoints and Keras files and explain their weights.

import lstm_inspect
ckpt = lstm_inspect.load("fixtures/tf1_basic/model.ckpt")
forget = ckpt.layer("rnn/basic_lstm_cell").gate("forget")   # .kernel, .recurrent, .bias
"""

from __future__ import annotations

from .errors import (
    CorruptFile,
    FileNotFound,
    LstmInspectError,
    NoLSTMLayers,
    OutputError,
    UnknownName,
    UnsupportedFormat,
)

__all__ = [
    "Checkpoint",
    "CorruptFile",
    "FileNotFound",
    "Layer",
    "LstmInspectError",
    "NoLSTMLayers",
    "OutputError",
    "UnknownName",
    "UnsupportedFormat",
    "load",
]

_LAZY = {"load", "Checkpoint", "Layer", "GateBlocks"}


def __getattr__(name: str) -> object:
    # numpy and the readers load on first use, so that `lstm-inspect --help` starts fast.
    if name in _LAZY:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'lstm_inspect' has no attribute {name!r}")
