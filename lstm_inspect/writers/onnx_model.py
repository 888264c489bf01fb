"""A runnable ONNX model of one LSTM or GRU layer or bidirectional pair: one node of the layer's cell
kind (targets/onnx.py OPERATORS), weights as initializers.

Needs the optional `onnx` package (`pip install 'lstm-inspect[onnx]'`), imported only in here.
The model has a single required input `X` [seq_length, batch_size, input_size] (the operator's
default layout, onnx/defs/rnn/defs.cc) and the outputs `Y` [seq_length, num_directions,
batch_size, hidden_size], `Y_h` (and an LSTM's `Y_c`) [num_directions, batch_size, hidden_size].
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..activations import ACTIVATIONS
from ..errors import OutputError
from ..slicer import Packed
from .output import atomic_output

if TYPE_CHECKING:
    from ..weights import Weights

# LSTM-14 and GRU-14 are the versions that onnxruntime and most converters have run longest; IR 7 is the IR
# version that introduced opset 14 (onnx/docs/Versioning.md), so older runtimes load the file too.
OPSET = 14
IR_VERSION = 7
_DTYPE = np.dtype("<f4")  # raw_data is little-endian (onnx.proto TensorProto.raw_data)
# A protobuf message, an .onnx model included, is at most 2 GiB (protobuf's limit); larger models
# keep their weights in external files, which this writer does not write.
_PROTOBUF_LIMIT = 2**31 - 1
_PIECE_BYTES = 1 << 20


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
    model, arrays = _skeleton(directions, name)
    for tensor in model.graph.initializer:
        tensor.raw_data = np.ascontiguousarray(arrays[tensor.name].array(), dtype=_DTYPE).tobytes()
    return model


def _skeleton(directions: Sequence[Weights], name: str) -> tuple[Any, dict[str, Packed]]:
    """The model with its initializers' values left out (their dims, type and name only, checked by
    onnx.checker as graph inputs), and the arrays that hold those values, made a piece at a time."""
    onnx = import_onnx()
    from onnx import TensorProto, helper

    from ..targets import onnx as target

    # Beside the node's inputs, its attributes' values (a GRU's linear_before_reset), set below.
    arrays = {key: packed for key, packed in target.TARGET.packing(directions).items() if isinstance(packed, Packed)}
    # float32 whatever the weights: half-precision ones widen to it exactly, and onnxruntime's LSTM
    # runs float only ("LSTM operator does not support double yet"), so float64 ones are rounded.
    elem_type = TensorProto.FLOAT
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
    stored = [k for k in operator.inputs if k in arrays]
    inputs = [k if k == "X" or k in stored else "" for k in operator.inputs]
    while inputs[-1] == "":
        inputs.pop()
    initializers = []
    for key in stored:
        tensor = TensorProto(name=key, data_type=elem_type)
        tensor.dims.extend(arrays[key].shape)
        initializers.append(tensor)

    node = helper.make_node(first.cell.name, inputs, list(operator.outputs), name=name, **attributes)
    graph_inputs = [helper.make_tensor_value_info("X", elem_type, ["seq_length", "batch_size", input_size])]
    sequence = helper.make_tensor_value_info(operator.outputs[0], elem_type, ["seq_length", dirs, "batch_size", hidden])
    states = [
        helper.make_tensor_value_info(out, elem_type, [dirs, "batch_size", hidden]) for out in operator.outputs[1:]
    ]
    outputs = [sequence, *states]

    def model_of(graph: Any) -> Any:
        return helper.make_model(
            graph,
            producer_name="lstm-inspect",
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            doc_string=f"{first.cell.name} layer {name} exported by lstm-inspect",
        )

    # The checker wants an initializer's values with it; the same node fed by graph inputs of the
    # same types and shapes checks everything else without them.
    declared = [helper.make_tensor_value_info(key, elem_type, list(arrays[key].shape)) for key in stored]
    onnx.checker.check_model(model_of(helper.make_graph([node], name, graph_inputs + declared, outputs)))
    return model_of(helper.make_graph([node], name, graph_inputs, outputs, initializer=initializers)), arrays


def serialized(directions: Sequence[Weights], name: str) -> Iterator[bytes | np.ndarray]:
    """The bytes of build_model(directions, name).SerializeToString(), made a piece at a time.

    Protocol Buffers write a message's fields in field-number order, each length-delimited one as
    its tag, its length and its bytes (protobuf's encoding.md): ModelProto fields 1-6, then graph
    (7), then opset_import (8); in the GraphProto node (1) and name (2), initializer (5), then
    input, output (11, 12); in each TensorProto dims, data_type, name (1, 2, 8), then raw_data (9).
    Every length is known before a value is made, so the values are written as they are made."""
    model, arrays = _skeleton(directions, name)
    graph = model.graph
    tensors = [(tensor.SerializeToString(), arrays[tensor.name]) for tensor in graph.initializer]
    # onnx/onnx.proto: ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data = 9.
    encoded = [(_field(9, packed.size * _DTYPE.itemsize), head, packed) for head, packed in tensors]
    sizes = [len(head) + len(tag) + packed.size * _DTYPE.itemsize for tag, head, packed in encoded]
    graph_before, graph_after = _split(graph, 5)
    model_before, model_after = _split(model, 7)
    graph_size = len(graph_before) + sum(len(_field(5, size)) + size for size in sizes) + len(graph_after)
    if len(model_before) + len(_field(7, graph_size)) + graph_size + len(model_after) > _PROTOBUF_LIMIT:
        raise OutputError(
            f"{name}: its ONNX model would be more than 2 GiB, which an .onnx file cannot hold (protobuf's "
            "limit); write the W, R, B, P arrays with -o OUT.npz"
        )
    yield model_before + _field(7, graph_size) + graph_before
    for (tag, head, packed), size in zip(encoded, sizes):
        yield _field(5, size) + head + tag
        for piece in packed.pieces(_PIECE_BYTES):
            yield np.ascontiguousarray(piece, dtype=_DTYPE)
    yield graph_after + model_after


def _split(message: Any, number: int) -> tuple[bytes, bytes]:
    """A message's serialized fields numbered below `number`, and those above it."""
    before, after = type(message)(), type(message)()
    before.CopyFrom(message)
    after.CopyFrom(message)
    for field, _ in message.ListFields():
        if field.number >= number:
            before.ClearField(field.name)
        if field.number <= number:
            after.ClearField(field.name)
    return before.SerializeToString(), after.SerializeToString()


def _field(number: int, length: int) -> bytes:
    """The tag of length-delimited field `number` and a length (protobuf's varints)."""
    return _varint(number << 3 | 2) + _varint(length)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_onnx(path: str, directions: Sequence[Weights], name: str, inputs: Iterable[str] = ()) -> int:
    """Write the model of one layer or pair to `path`, atomically, never over one of `inputs`
    (writers/output.py: a full disk is an OutputError, and nothing is left behind), a piece at a
    time from the layer's tensors; its size."""
    size = 0
    with atomic_output(path, inputs) as f:
        for piece in serialized(directions, name):
            f.write(cast(Any, piece))  # bytes, or a contiguous array: both buffers
            size += len(piece) if isinstance(piece, bytes) else piece.nbytes
    return size
