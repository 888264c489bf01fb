"""A runnable ONNX model of one LSTM or GRU layer or bidirectional pair: one node of the layer's cell
kind (targets/onnx.py OPERATORS), weights as initializers.

Needs the optional `onnx` package (`pip install 'lstm-inspect[onnx]'`), imported only in here.
The model has a single required input `X` [seq_length, batch_size, input_size] (the operator's
default layout, onnx/defs/rnn/defs.cc) and the outputs `Y` [seq_length, num_directions,
batch_size, hidden_size], `Y_h` (and an LSTM's `Y_c`) [num_directions, batch_size, hidden_size].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..activations import ACTIVATIONS
from ..errors import OutputError
from .output import atomic_output

if TYPE_CHECKING:
    from ..weights import Weights

# LSTM-14 and GRU-14 are the versions that onnxruntime and most converters have run longest; IR 7 is the IR
# version that introduced opset 14 (onnx/docs/Versioning.md), so older runtimes load the file too.
OPSET = 14
IR_VERSION = 7


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise OutputError(
            "writing an .onnx model needs the onnx package: pip install 'lstm-inspect[onnx]' "
            "(or write the W, R, B, P arrays with -o OUT.npz)"
        ) from None
    return onnx


def build_model(directions: Sequence[Weights], name: str) -> Any:
    """The onnx.ModelProto of one node of the layer's cell kind (LSTM, GRU): forward, or
    bidirectional for a (forward, backward) pair."""
    onnx = import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    from ..targets import onnx as target

    arrays = target.TARGET.arrays(directions)
    # float32 whatever the weights: half-precision ones widen to it exactly, and onnxruntime's LSTM
    # runs float only ("LSTM operator does not support double yet"), so float64 ones are rounded.
    dtype, elem_type = np.float32, TensorProto.FLOAT
    first = directions[0]
    operator = target.OPERATORS[first.cell.name]
    hidden, input_size, dirs = first.units, first.input_size, len(directions)

    activations, alphas, betas = [], [], []
    for _ in directions:
        for setting in operator.activations:
            spelled = ACTIVATIONS[getattr(first, setting)].onnx
            assert spelled is not None  # the onnx target refuses the others
            op, alpha, beta = spelled
            activations.append(op)
            alphas += [] if alpha is None else [alpha]
            betas += [] if beta is None else [beta]
    attributes: dict[str, Any] = {
        "hidden_size": hidden,
        "direction": "bidirectional" if dirs == 2 else "forward",
        "activations": activations,
        **target.attribute_values(first),
    }
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas

    # Inputs in operator order (X, W, R, B, sequence_lens, initial_h[, initial_c, P]); "" skips one.
    weights = [k for k in operator.inputs if k in arrays]
    initializers = [numpy_helper.from_array(np.asarray(arrays[k], dtype=dtype), name=k) for k in weights]
    inputs = [k if k == "X" or k in weights else "" for k in operator.inputs]
    while inputs[-1] == "":
        inputs.pop()

    node = helper.make_node(first.cell.name, inputs, list(operator.outputs), name=name, **attributes)
    sequence = helper.make_tensor_value_info(operator.outputs[0], elem_type, ["seq_length", dirs, "batch_size", hidden])
    states = [
        helper.make_tensor_value_info(out, elem_type, [dirs, "batch_size", hidden]) for out in operator.outputs[1:]
    ]
    graph = helper.make_graph(
        [node],
        name,
        [helper.make_tensor_value_info("X", elem_type, ["seq_length", "batch_size", input_size])],
        [sequence, *states],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="lstm-inspect",
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        doc_string=f"{first.cell.name} layer {name} exported by lstm-inspect",
    )
    onnx.checker.check_model(model)
    return model


def write_onnx(path: str, directions: Sequence[Weights], name: str, inputs: Iterable[str] = ()) -> int:
    """Write the model of one layer or pair to `path`, atomically, never over one of `inputs`
    (writers/output.py: a full disk is an OutputError, and nothing is left behind); its size."""
    data = build_model(directions, name).SerializeToString()
    with atomic_output(path, inputs) as f:
        f.write(data)
    return len(data)
