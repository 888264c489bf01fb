"""lstm-inspect: find the LSTM and GRU layers in TensorFlow checkpoints and Keras files and explain their weights.

import lstm_inspect
ckpt = lstm_inspect.load("fixtures/tf1_basic/model.ckpt")
forget = ckpt.layer("rnn/basic_lstm_cell").gate("forget")   # .kernel, .recurrent, .bias
ckpt.summary(); ckpt.split(gates=["forget"]); ckpt.export("gates.npz"); ckpt.verify()
lstm_inspect.numpy_lstm.run_lstm(ckpt.layers[0].gates(), x, forget_bias=ckpt.layers[0].forget_bias)
lstm_inspect.numpy_cells.run(ckpt.layers[0].weights(), x)   # an LSTM's or a GRU's numpy cell
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (
    CorruptFile,
    FileNotFound,
    LstmInspectError,
    LstmInspectWarning,
    NoLSTMLayers,
    OutputError,
    UnknownName,
    UnsupportedFormat,
    UsageError,
)

if TYPE_CHECKING:  # what the lazy names below are, for type checkers (tests/test_api.py keeps both in step)
    from . import activations, numpy_cells, numpy_gru, numpy_lstm, schema, targets
    from .api import Checkpoint, ExportUnit, GateBlocks, Layer, load

__all__ = [
    "Checkpoint",
    "CorruptFile",
    "ExportUnit",
    "FileNotFound",
    "GateBlocks",
    "Layer",
    "LstmInspectError",
    "LstmInspectWarning",
    "NoLSTMLayers",
    "OutputError",
    "UnknownName",
    "UnsupportedFormat",
    "UsageError",
    "activations",
    "load",
    "numpy_cells",
    "numpy_gru",
    "numpy_lstm",
    "schema",
    "targets",
]

# Loaded on first use, so that `lstm-inspect --help` starts fast (numpy and the readers come with api).
_LAZY_NAMES = {"load": "api", "Checkpoint": "api", "Layer": "api", "GateBlocks": "api", "ExportUnit": "api"}
_LAZY_MODULES = {"activations", "numpy_cells", "numpy_gru", "numpy_lstm", "schema", "targets"}


def __getattr__(name: str) -> object:
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lstm_inspect' has no attribute {name!r}")
