"""What a TensorFlow graph says about its LSTM cells that the weights do not.

A TF1 cell adds its forget bias, applies its activation and clips its state at run time; only the
graph records these (../shared/LAYOUTS.md, "What the graph knows"). This module reads GraphDefs
(tensorflow/core/framework/graph.proto) from a `.meta` MetaGraphDef (core/protobuf/meta_graph.proto),
a frozen `.pb`, a text `.pbtxt` or a SavedModel, and finds each LSTM cell by its structure:

- the gate pre-activations `concat([x, h]) @ kernel + bias` are split four ways (a `Split` or
  `SplitV` with num_split 4) into i, j, f, o (tensorflow/python/ops/rnn_cell_impl.py, served by
  TF 2 from tf_keras/src/layers/rnn/legacy_cells.py);
- the forget bias is the Const added to split output 2 (`BasicLSTMCell` makes it with
  constant_op.constant, so it is named `Const_N`; `LSTMCell` writes `f + forget_bias`: `add/y`);
- the activation is the op applied to split output 1 and to the new cell state; `cell_clip` and
  `proj_clip` are clip_by_value (Minimum and Maximum with scalar Consts, or ClipByValue) on the new
  cell state and on the projection;
- `LSTMBlockCell`, `BlockLSTM` and `BlockLSTMV2` ops keep forget_bias, cell_clip and use_peephole
  as attributes (tensorflow/core/ops/rnn_ops.cc);
- the cell's scope is its kernel variable's, found by following the MatMul's weight operand back
  through Identity, Enter, ReadVariableOp and function arguments to the variable (or, frozen, to
  the Const named like it).

TF 1.x graphs keep a dynamic_rnn loop inline under `…/while/`; TF 2's tf.compat.v1 keeps the loop
body in `graph_def.library` (function.proto), whose node names lack the outer scope and whose
inputs read `node:output_arg:index`: a function argument is followed to the caller's input. A
static graph repeats the cell once per step; every step is read, and a setting that differs between
steps is reported with the nodes that disagree.

Large graphs stay cheap: opening decodes only each node's name and op; a node's inputs and
attributes are decoded when the analysis reaches it (the nodes in a cell's name scope).
"""

from __future__ import annotations

import bisect
import math
import os
import re
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import field
from typing import TYPE_CHECKING, Any

from ..errors import CorruptFile, UnsupportedFormat
from ..records import record
from .base import LayerHint, Setting, TensorInfo
from .files import check_lfs_pointer, read_bounded
from .protobuf import Malformed, as_bytes, decode, fields, varint
from .tf_bundle import dtype_name
from .tf_protos import ENUMS, SCHEMA

if TYPE_CHECKING:  # numpy only for a constant's value: listing a graph needs none of it
    import numpy as np

__all__ = [
    "Graph",
    "GraphHints",
    "MetaGraph",
    "NodeTable",
    "graph_from_dict",
    "graph_hints",
    "layer_hints",
    "read_graph_file",
    "read_graph_def",
    "read_meta_graph",
    "scalar_value",
    "shortest_float32",
    "tensor_array",
    "weight_constants",
    "tensor_dtype",
    "tensor_shape",
]

# Protobuf refuses messages over 2 GiB (the GraphDef limit TensorFlow documents), so a larger file
# is no graph.
MAX_GRAPH_BYTES = 2**31
# Pass-through hops from a MatMul to its variable, or from an argument to its caller: a real graph
# needs a handful; a crafted cycle of Identity nodes needs a bound.
_MAX_HOPS = 256

_VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp", "VariableV1", "_VarHandlesOp", "Const"}
_PASS_THROUGH = {"Identity", "Enter", "ReadVariableOp", "Snapshot", "StopGradient", "RefIdentity", "Switch"}
_ADDS = {"Add", "AddV2", "BiasAdd"}
_CALL_ATTRS = {  # op -> (attributes naming the called functions, inputs before the arguments)
    "While": (("body", "cond"), 0),
    "StatelessWhile": (("body", "cond"), 0),
    "_While": (("body", "cond"), 0),
    "If": (("then_branch", "else_branch"), 1),
    "StatelessIf": (("then_branch", "else_branch"), 1),
    "_If": (("then_branch", "else_branch"), 1),
    "Case": (("branches",), 1),
    "StatelessCase": (("branches",), 1),
    "PartitionedCall": (("f",), 0),
    "StatefulPartitionedCall": (("f",), 0),
}
# The op applied to the candidate or the cell state, by the name numpy_lstm.ACTIVATIONS uses.
_ACTIVATIONS = {
    "Tanh": "tanh", "Relu": "relu", "Sigmoid": "sigmoid", "Relu6": "relu6", "Elu": "elu",
    "Selu": "selu", "Softplus": "softplus", "Softsign": "softsign", "LeakyRelu": "leaky_relu",
    "Gelu": "gelu", "Identity": "linear",
}  # fmt: skip
# The fused LSTM ops (tensorflow/core/ops/rnn_ops.cc): where the weight matrix is among the
# inputs, the cell class that made them, and each attribute's default, which a graph saved with
# stripped_default_attrs leaves out. BlockLSTMV2 has no forget_bias: it adds none.
_FUSED_OPS = {
    "LSTMBlockCell": (3, "LSTMBlockCell", {"forget_bias": 1.0, "cell_clip": 3.0, "use_peephole": False}),
    "BlockLSTM": (4, "LSTMBlockFusedCell", {"forget_bias": 1.0, "cell_clip": 3.0, "use_peephole": False}),
    "BlockLSTMV2": (4, "BlockLSTMV2", {"cell_clip": 0.0, "use_peephole": False}),
}
# The cell's default scope names the class (RNNCell derives it from the class name; TF 0.x used
# the class name itself). Without peepholes, a projection or clips, nothing else tells
# BasicLSTMCell from LSTMCell.
_CELL_SCOPES = {
    "basic_lstm_cell": "BasicLSTMCell", "BasicLSTMCell": "BasicLSTMCell", "lstm_cell": "LSTMCell",
    "LSTMCell": "LSTMCell", "cudnn_compatible_lstm_cell": "CudnnCompatibleLSTMCell",
}  # fmt: skip
# The kernel's own name under its cell's scope, through the TF generations
# (contrib/rnn/python/tools/checkpoint_convert.py lists the renames).
_KERNEL_LEAVES = ("/Linear/Matrix", "/kernel", "/weights", "/W_0", "/Matrix")
_PART = re.compile(r"^(?P<full>.+)/part_\d+$")  # a partitioned variable's pieces


def _corrupt(path: str, problem: str) -> CorruptFile:
    return CorruptFile(f"{path}: {problem}; the file is damaged or not a TensorFlow graph")


# --- reading ----------------------------------------------------------------------------------


def read_graph_file(path: str, what: str = "graph file") -> bytes:
    """The bytes of a graph file (a regular file, at most 2 GiB, not a Git LFS pointer)."""
    data = read_bounded(path, MAX_GRAPH_BYTES, what)
    check_lfs_pointer(path, data[:64])
    return data


class NodeTable:
    """The nodes of one graph, or of one library function (`function` names it).

    Names and ops are read on opening; a node's inputs and attributes are decoded on first use.
    In a function, `args` are the input argument names (its signature), which nodes read by name.
    """

    def __init__(
        self,
        function: str | None,
        names: list[str],
        ops: list[str],
        decode_node: Callable[[int], dict[str, Any]],
        args: list[str] | None = None,
        decode_inputs: Callable[[int], list[str]] | None = None,
        node_bytes: Callable[[int], bytes] | None = None,
    ) -> None:
        """decode_node(i) gives node i as a decoded NodeDef; decode_inputs(i) only its inputs
        (cheaper: the consumers of a node are found by reading the inputs of its whole scope);
        node_bytes(i) its encoding, from which attr() decodes one attribute."""
        self.function = function
        self.names, self.ops = names, ops
        self.args = args or []
        self._arg_positions = {name: i for i, name in enumerate(self.args)}
        self._decode_node = decode_node
        self._decode_inputs = decode_inputs or (lambda i: self.node(i).get("input", []))
        self._node_bytes = node_bytes
        self._nodes: dict[int, dict[str, Any]] = {}
        self._inputs: dict[int, list[str]] = {}
        self.index = {name: i for i, name in enumerate(names)}
        self._consumers: dict[str, dict[str, list[tuple[int, int]]]] = {}
        self._sorted: list[str] | None = None

    def node(self, i: int) -> dict[str, Any]:
        node = self._nodes.get(i)
        if node is None:
            node = self._nodes[i] = self._decode_node(i)
        return node

    def inputs(self, i: int) -> list[str]:
        """The data inputs of node i (control inputs, `^name`, left out)."""
        inputs = self._inputs.get(i)
        if inputs is None:
            node = self._nodes.get(i)
            listed = node.get("input", []) if node is not None else self._decode_inputs(i)
            inputs = self._inputs[i] = [ref for ref in listed if not ref.startswith("^")]
        return inputs

    def attr(self, i: int, name: str) -> dict[str, Any] | None:
        """One attribute's AttrValue, decoded alone while the node is not decoded whole."""
        node = self._nodes.get(i)
        if node is not None or self._node_bytes is None:
            return self.node(i).get("attr", {}).get(name)
        key = name.encode()
        # An AttrEntry (a map entry) starts with its key: field 1, then the value, field 2.
        prefix = b"\x0a" + bytes([len(key)]) + key if len(key) < 0x80 else None
        for number, value in fields(self._node_bytes(i)):
            if number == 5 and isinstance(value, bytes) and (prefix is None or value.startswith(prefix)):
                entry = decode(value, "AttrEntry", SCHEMA)
                if entry.get("key") == name:
                    return entry.get("value")
        return None

    def where(self, name: str) -> str:
        """A node's place, for messages: its name, and its function's when it is in one."""
        return name if self.function is None else f"{name} in function {self.function}"

    def ref(self, ref: str) -> tuple[int | None, int]:
        """(node index or None for a function argument, output index) of an input reference.

        Graph inputs read `node:port`; function inputs `node:output_arg:index` (function.proto), or an
        argument's name; the index within a node's output list is the output index for the ops the
        analysis follows through ports (Split's one list output, and single-output ops).
        """
        parts = ref.split(":")
        if self.function is not None and len(parts) <= 2 and parts[0] in self._arg_positions:
            return None, self._arg_positions[parts[0]]
        name = parts[0]
        port = parts[-1] if len(parts) > (2 if self.function is not None else 1) else "0"
        if not port.isdigit():
            port = "0"
        return self.index.get(name, -1), int(port)

    def consumers(self, i: int, scope: str | None = None) -> list[tuple[int, int, int]]:
        """(consumer, input position, output index) for each input that reads node i, among the
        nodes whose names start with `scope` (default: node i's own name scope; a cell's ops all
        live in the scope of its split)."""
        name = self.names[i]
        if scope is None:
            scope = name.rpartition("/")[0] + "/" if "/" in name else ""
        by_producer = self._consumers.get(scope)
        if by_producer is None:
            by_producer = self._consumers[scope] = {}
            in_scope = range(len(self.names)) if not scope else self._in_scope(scope)
            for j in in_scope:
                for position, ref in enumerate(self.inputs(j)):
                    producer = ref.split(":", 1)[0]
                    by_producer.setdefault(producer, []).append((j, position))
        found = []
        for j, position in by_producer.get(name, ()):
            k, port = self.ref(self.inputs(j)[position])
            if k == i:
                found.append((j, position, port))
        return found

    def _in_scope(self, scope: str) -> Iterator[int]:
        # Names sorted once: the nodes of a scope are one run of them, found by bisection.
        if self._sorted is None:
            self._sorted = sorted(self.names)
        at = bisect.bisect_left(self._sorted, scope)
        seen: set[int] = set()
        while at < len(self._sorted) and self._sorted[at].startswith(scope):
            i = self.index[self._sorted[at]]
            if i not in seen:  # a name given twice (a damaged graph) is one node here
                seen.add(i)
                yield i
            at += 1


@record
class Graph:
    """A GraphDef: its top-level nodes and its library's functions (by name)."""

    top: NodeTable
    functions: dict[str, NodeTable] = field(default_factory=dict)
    _callers: dict[str, list[tuple[NodeTable, int, int]]] | None = None

    def tables(self) -> Iterator[NodeTable]:
        yield self.top
        yield from self.functions.values()

    def callers(self, function: str) -> list[tuple[NodeTable, int, int]]:
        """(table, node, inputs before the arguments) of each node that calls `function`."""
        if self._callers is None:
            self._callers = {}
            for table in self.tables():
                for i, op in enumerate(table.ops):
                    for called, offset in self._called(table, i, op):
                        self._callers.setdefault(called, []).append((table, i, offset))
        return self._callers.get(function, [])

    def _called(self, table: NodeTable, i: int, op: str) -> list[tuple[str, int]]:
        if op in self.functions:
            return [(op, 0)]
        if op not in _CALL_ATTRS:
            return []
        names, offset = _CALL_ATTRS[op]
        called = []
        for name in names:
            value = table.attr(i, name) or {}
            functions = value.get("list", {}).get("func", []) if "list" in value else [value.get("func", {})]
            called += [(f["name"], offset) for f in functions if f.get("name")]
        return called


def _scan_nodes(
    buf: bytes, node_tag: int
) -> tuple[list[str], list[str], list[tuple[int, int, int]], list[tuple[int, Any]]]:
    """Each node's name, op and byte span in a message whose field `node_tag` (tag byte) is a
    repeated NodeDef, and the message's other fields.

    NodeDef writes name (1) and op (2) first (serialisers emit fields in number order), so reading
    them is two short reads per node; a node written otherwise is decoded in full.
    """
    names: list[str] = []
    ops: list[str] = []
    spans: list[tuple[int, int, int]] = []
    others: list[tuple[int, Any]] = []
    pos, end = 0, len(buf)
    try:
        while pos < end:
            if buf[pos] != node_tag:
                pos = _other_field(buf, pos, end, others)
                continue
            # Lengths under 16 KiB (nearly every node) are one or two varint bytes: read inline.
            length = buf[pos + 1]
            if length < 0x80:
                pos += 2
            elif buf[pos + 2] < 0x80:
                length = (length & 0x7F) | buf[pos + 2] << 7
                pos += 3
            else:
                length, pos = varint(buf, pos + 1)
            node_end = pos + length
            if node_end > end:
                raise Malformed("a node runs past the end of the graph")
            name, op, inputs_at = _name_and_op(buf, pos, node_end)
            names.append(name)
            ops.append(op)
            spans.append((pos, inputs_at, node_end))
            pos = node_end
    except IndexError:
        raise Malformed("the graph is cut short inside a node") from None
    if pos > end:
        raise Malformed("the last field runs past the end of the graph")
    return names, ops, spans, others


def _other_field(buf: bytes, pos: int, end: int, others: list[tuple[int, Any]]) -> int:
    """Append the field at `pos` that is not a node to `others`; where the next field starts."""
    tag, pos = varint(buf, pos)
    wire = tag & 7
    if wire == 2:
        length, pos = varint(buf, pos)
        if pos + length > end:
            raise Malformed("a field runs past the end of its message")
        others.append((tag >> 3, buf[pos : pos + length]))
        return pos + length
    if wire == 0:
        value, pos = varint(buf, pos)
        others.append((tag >> 3, value))
        return pos
    if wire in (1, 5):
        return pos + (8 if wire == 1 else 4)
    raise Malformed(f"unexpected protobuf wire type {wire}")


def _name_and_op(buf: bytes, pos: int, node_end: int) -> tuple[str, str, int]:
    """The name and op of the NodeDef in buf[pos:node_end], and where its inputs start (-1 when
    the node was decoded in full, its fields not in number order)."""
    if buf[pos] == 0x0A:
        length = buf[pos + 1]
        at = pos + 2
        if length >= 0x80:
            if buf[pos + 2] < 0x80:
                length, at = (length & 0x7F) | buf[pos + 2] << 7, pos + 3
            else:
                length, at = varint(buf, pos + 1)
        name_end = at + length
        if name_end < node_end and buf[name_end] == 0x12:
            op_length = buf[name_end + 1]
            op_at = name_end + 2
            if op_length >= 0x80:
                op_length, op_at = varint(buf, name_end + 1)
            if op_at + op_length <= node_end:
                name = buf[at:name_end].decode("utf-8", "backslashreplace")
                op = buf[op_at : op_at + op_length].decode("utf-8", "backslashreplace")
                return name, op, op_at + op_length
    head = decode(buf[pos:node_end], "NodeDef", _HEAD_SCHEMA)
    return head.get("name", ""), head.get("op", ""), -1


_HEAD_SCHEMA = {"NodeDef": {n: f for n, f in SCHEMA["NodeDef"].items() if f.name in ("name", "op")}}


def _table(
    buf: bytes, node_tag: int, function: str | None, args: list[str] | None = None
) -> tuple[NodeTable, list[tuple[int, Any]]]:
    names, ops, spans, others = _scan_nodes(buf, node_tag)

    def decode_node(i: int) -> dict[str, Any]:
        start, _, end = spans[i]
        return decode(buf[start:end], "NodeDef", SCHEMA)

    def decode_inputs(i: int) -> list[str]:
        start, at, end = spans[i]
        if at < 0:
            return [as_bytes(v).decode("utf-8", "backslashreplace") for n, v in fields(buf[start:end]) if n == 3]
        # Serialisers write fields in number order, so the inputs (3) follow name and op: read
        # them and stop at the first other field, without decoding the attributes.
        inputs = []
        while at + 1 < end and buf[at] == 0x1A:
            length = buf[at + 1]
            at += 2
            if length >= 0x80:
                length, at = varint(buf, at - 1)
            if at + length > end:
                raise Malformed("an input runs past the end of its node")
            inputs.append(buf[at : at + length].decode("utf-8", "backslashreplace"))
            at += length
        return inputs

    def node_bytes(i: int) -> bytes:
        start, _, end = spans[i]
        return buf[start:end]

    return NodeTable(function, names, ops, decode_node, args, decode_inputs, node_bytes), others


def _functions(library: bytes) -> dict[str, NodeTable]:
    functions = {}
    for number, value in fields(library):
        if number != 1:
            continue
        function_def = as_bytes(value)
        table, others = _table(function_def, 0x1A, None)  # FunctionDef.node_def = 3
        signature: dict[str, Any] = {}
        for other_number, other in others:
            if other_number == 1:
                signature = decode(as_bytes(other), "OpDef", SCHEMA)
        name = signature.get("name", "")
        table.function = name
        table.args = [arg.get("name", "") for arg in signature.get("input_arg", [])]
        table._arg_positions = {arg: i for i, arg in enumerate(table.args)}
        if name:
            functions[name] = table
    return functions


def _graph(buf: bytes) -> Graph:
    top, others = _table(buf, 0x0A, None)  # GraphDef.node = 1
    library = b"".join(as_bytes(value) for number, value in others if number == 2)
    return Graph(top, _functions(library) if library else {})


def graph_from_dict(graph_def: dict[str, Any]) -> Graph:
    """A Graph of an already decoded GraphDef (the text format)."""

    def table(nodes: list[dict[str, Any]], function: str | None, args: list[str] | None = None) -> NodeTable:
        return NodeTable(
            function, [n.get("name", "") for n in nodes], [n.get("op", "") for n in nodes], nodes.__getitem__, args
        )

    functions = {}
    for function_def in graph_def.get("library", {}).get("function", []):
        signature = function_def.get("signature", {})
        name = signature.get("name", "")
        args = [arg.get("name", "") for arg in signature.get("input_arg", [])]
        functions[name] = table(function_def.get("node_def", []), name, args)
    return Graph(table(graph_def.get("node", []), None), functions)


def read_graph_def(data: bytes, path: str, text: bool = False) -> Graph:
    """The Graph of a binary (or, `text`, a text-format) GraphDef; one clear error if it is none."""
    try:
        if text:
            from . import prototext

            return graph_from_dict(prototext.decode(prototext.parse(data), "GraphDef", SCHEMA, ENUMS))
        graph = _graph(data)
    except Malformed as e:
        raise _corrupt(path, str(e)) from None
    if not graph.top.names:
        raise UnsupportedFormat(f"{path}: holds no graph nodes, so it is no GraphDef")
    return graph


class MetaGraph:
    """A MetaGraphDef: the graph, the named collections, and what the SavedModel adds.

    graph: the GraphDef, decoded on first use (a Keras SavedModel is named without it).
    collections: name -> CollectionDef as decoded (node_list / bytes_list values).
    object_graph: a SavedModel's SavedObjectGraph (saved_object_graph.proto), decoded, or None.
    """

    def __init__(
        self,
        path: str,
        graph: bytes | Graph,
        collections: dict[str, dict[str, Any]],
        tags: list[str],
        tensorflow_version: str | None,
        object_graph: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self._graph = graph
        self.collections, self.tags, self.tensorflow_version = collections, tags, tensorflow_version
        self.object_graph = object_graph

    @property
    def graph(self) -> Graph:
        if isinstance(self._graph, bytes):
            try:
                graph = _graph(self._graph)
            except Malformed as e:
                raise _corrupt(self.path, str(e)) from None
            if not graph.top.names:
                raise UnsupportedFormat(f"{self.path}: holds no graph (a MetaGraphDef without nodes)")
            self._graph = graph
        return self._graph


def read_meta_graph(buf: bytes, path: str) -> MetaGraph:
    """A binary MetaGraphDef: its small parts decoded at once, its graph when first used."""
    try:
        graph_def = b""
        collections: dict[str, dict[str, Any]] = {}
        info: dict[str, Any] = {}
        object_graph = None
        for number, value in fields(buf):
            if number == 2:
                graph_def += as_bytes(value)  # a message field given twice is merged: concatenate
            elif number == 1:
                info = decode(as_bytes(value), "MetaInfoDef", SCHEMA)
            elif number == 4:
                entry = decode(as_bytes(value), "CollectionEntry", SCHEMA)
                collections[entry.get("key", "")] = entry.get("value") or {}
            elif number == 7:
                object_graph = decode(as_bytes(value), "SavedObjectGraph", SCHEMA)
    except Malformed as e:
        raise _corrupt(path, str(e)) from None
    return MetaGraph(path, graph_def, collections, info.get("tags", []), info.get("tensorflow_version"), object_graph)


# --- tensors (tensor.proto) -------------------------------------------------------------------


def tensor_shape(shape: dict[str, Any] | None) -> tuple[int, ...] | None:
    """A TensorShapeProto's dimensions; None for an unknown rank or an unknown (-1) dimension."""
    if shape is None:
        return ()
    if shape.get("unknown_rank"):
        return None
    dims = tuple(dim.get("size", 0) for dim in shape.get("dim", []))
    return None if any(d < 0 for d in dims) else dims


def tensor_dtype(tensor: dict[str, Any]) -> str:
    return dtype_name(tensor.get("dtype", 0))


_SCALAR_FIELDS = {"float32": "float_val", "float64": "double_val", "int32": "int_val", "int64": "int64_val"}
_SCALAR_FORMATS = {"float32": "<f", "float64": "<d", "float16": "<e", "int32": "<i", "int64": "<q"}


def scalar_value(tensor: dict[str, Any] | None) -> float | None:
    """The value of a one-element numeric TensorProto (a graph constant), without numpy."""
    if tensor is None:
        return None
    shape = tensor_shape(tensor.get("tensor_shape"))
    if shape is None or math.prod(shape) != 1:
        return None
    dtype = tensor_dtype(tensor)
    content = tensor.get("tensor_content")
    if content:
        form = _SCALAR_FORMATS.get(dtype)
        if form is None or len(content) != struct.calcsize(form):
            return None
        value = float(struct.unpack(form, content)[0])
    elif dtype == "float16":
        # half_val holds the 16 bits as an int32 (tensor.proto).
        values = tensor.get("half_val") or [0]
        value = float(struct.unpack("<e", (int(values[0]) & 0xFFFF).to_bytes(2, "little"))[0])
    else:
        name = _SCALAR_FIELDS.get(dtype)
        if name is None:
            return None
        values = tensor.get(name)
        # An empty value list means all zeros (tensor.proto: a Const of default values).
        value = float(values[0]) if values is not None and len(values) else 0.0
    return shortest_float32(value) if dtype in ("float32", "float16") else value


# A TensorProto may list fewer values than its shape holds: the last one repeats (tensor.cc
# Tensor::FromProto). A crafted Const could so claim any size from a few bytes; a filled tensor
# larger than this is refused.
MAX_FILLED_ELEMENTS = 1 << 26
_VALUE_FIELDS = {
    "float32": "float_val", "float64": "double_val", "int32": "int_val", "int16": "int_val",
    "int8": "int_val", "uint8": "int_val", "uint16": "int_val", "int64": "int64_val", "bool": "bool_val",
    "uint32": "uint32_val", "uint64": "uint64_val", "complex64": "scomplex_val", "complex128": "dcomplex_val",
    "string": "string_val", "float16": "half_val", "bfloat16": "half_val",
}  # fmt: skip


def tensor_array(tensor: dict[str, Any], what: str) -> np.ndarray:
    """The value of a TensorProto as a numpy array (a copy); `what` names it in errors.

    tensor_content holds the raw little-endian bytes; else the typed field for the dtype holds the
    values, half-precision types as their 16 bits in half_val (tensor.proto).
    """
    import numpy as np

    from .tf_bundle import _numpy_dtype

    shape = tensor_shape(tensor.get("tensor_shape"))
    dtype_text = tensor_dtype(tensor)
    dtype = _numpy_dtype(dtype_text)
    if shape is None or dtype is None:
        raise Malformed(f"{what}: a constant of unknown shape or of dtype {dtype_text}")
    count = math.prod(shape)
    content = tensor.get("tensor_content")
    if content and dtype_text != "string":
        if len(content) != count * dtype.itemsize:
            raise Malformed(f"{what}: {len(content)} bytes of content for {dtype_text} {list(shape)}")
        value = np.frombuffer(content, dtype).reshape(shape).copy()
        return value.byteswap() if sys.byteorder == "big" else value  # tensor_content is little-endian
    name = _VALUE_FIELDS.get(dtype_text)
    values = tensor.get(name, []) if name else []
    if dtype_text in ("complex64", "complex128"):
        pairs = np.asarray(values, np.float64)
        values = pairs[0::2] + 1j * pairs[1::2]
    if len(values) > count:
        raise Malformed(f"{what}: {len(values)} values for {dtype_text} {list(shape)}")
    if len(values) < count and count > MAX_FILLED_ELEMENTS:
        raise Malformed(f"{what}: a constant of {count:,} elements made from {len(values)} values")
    if dtype_text in ("float16", "bfloat16"):
        array = np.asarray([int(v) & 0xFFFF for v in values], np.uint16).view(dtype)
    elif dtype_text == "string":
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    else:
        array = np.asarray(values, dtype=dtype)
    if len(array) < count:
        fill = array[-1] if len(array) else np.zeros((), dtype)
        array = np.concatenate([array, np.full(count - len(array), fill, dtype=array.dtype)])
    return array.reshape(shape)


def shortest_float32(value: float) -> float:
    """The shortest decimal with the same float32 value: 0.3, not 0.30000001192092896, for a
    float32 constant or attribute written as 0.3."""
    if not math.isfinite(value):
        return value
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


# --- finding the cells ------------------------------------------------------------------------


@record
class _Found:
    """What one step of one cell says: per setting, the Setting read at this step."""

    scope: str
    cell: str | None
    settings: dict[str, Setting] = field(default_factory=dict)
    # Further readings of a setting within the step (the activation applied to the new cell
    # state, beside the one on the candidate): they must agree with the first.
    more: list[tuple[str, Setting]] = field(default_factory=list)


class _Matcher:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.scope = ""  # the name scope of the cell being read: its ops' consumers are there

    def consumers(self, table: NodeTable, i: int) -> list[tuple[int, int, int]]:
        return table.consumers(i, self.scope)

    # Following values back to where they come from.

    def producer(self, table: NodeTable, ref: str, hops: int = 0) -> tuple[NodeTable, int, int] | None:
        """(table, node, output) that computes `ref`, through function arguments to their callers."""
        if hops > _MAX_HOPS:
            return None
        i, port = table.ref(ref)
        if i is None:
            for caller_table, caller, offset in self.graph.callers(table.function or ""):
                inputs = caller_table.inputs(caller)
                if offset + port < len(inputs):
                    found = self.producer(caller_table, inputs[offset + port], hops + 1)
                    if found is not None:
                        return found
            return None
        if i < 0:
            return None
        return table, i, port

    def source(self, table: NodeTable, ref: str, hops: int = 0) -> tuple[NodeTable, int] | None:
        """The node behind `ref` once pass-through ops (Identity, Enter, ...) are skipped."""
        found = self.producer(table, ref, hops)
        while found is not None and hops < _MAX_HOPS:
            table, i, _ = found
            if table.ops[i] not in _PASS_THROUGH:
                return table, i
            inputs = table.inputs(i)
            if not inputs:
                return None
            hops += 1
            found = self.producer(table, inputs[0], hops)
        return None

    def variable(self, table: NodeTable, ref: str) -> str | None:
        """The name of the variable (or frozen Const) that `ref` reads."""
        found = self.source(table, ref)
        if found is None:
            return None
        table, i = found
        op = table.ops[i]
        if op in _VARIABLE_OPS:
            return table.names[i]
        if op in ("ConcatV2", "Concat"):
            # A partitioned variable is read as the concatenation of its parts (variables.py
            # PartitionedVariable._concat): all parts `X/part_N` of one X.
            inputs = table.inputs(i)
            values = inputs[:-1] if op == "ConcatV2" else inputs[1:]
            parts = [self.variable(table, value) for value in values]
            fulls = {m["full"] for m in (_PART.match(p or "") for p in parts) if m}
            if len(fulls) == 1 and all(parts):
                return fulls.pop()
        return None

    def variable_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape the graph gives a variable (its op's `shape`) or a frozen Const (its value's)."""
        table = self.graph.top
        i = table.index.get(name)
        if i is None:
            return None
        if table.ops[i] == "Const":
            return tensor_shape(((table.attr(i, "value") or {}).get("tensor") or {}).get("tensor_shape"))
        return tensor_shape((table.attr(i, "shape") or {}).get("shape"))

    def constant(self, table: NodeTable, ref: str) -> tuple[float, str] | None:
        """(value, where) of the scalar Const that `ref` reads, if it reads one."""
        found = self.source(table, ref)
        if found is None:
            return None
        table, i = found
        if table.ops[i] != "Const":
            return None
        value = scalar_value((table.attr(i, "value") or {}).get("tensor"))
        return None if value is None else (value, table.where(table.names[i]))

    # The cell around one four-way split.

    def cells(self) -> Iterator[_Found]:
        for table in self.graph.tables():
            for i, op in enumerate(table.ops):
                if op in ("Split", "SplitV"):
                    found = self.split_cell(table, i)
                elif op in _FUSED_OPS:
                    found = self.fused_cell(table, i)
                else:
                    continue
                if found is not None:
                    yield found

    def split_cell(self, table: NodeTable, split: int) -> _Found | None:
        if (table.attr(split, "num_split") or {}).get("i") != 4:
            return None
        inputs = table.inputs(split)
        if len(inputs) < 2:
            return None
        gates = inputs[1] if table.ops[split] == "Split" else inputs[0]
        kernel = self.kernel(table, gates)
        if kernel is None:
            return None
        scope = _cell_scope(kernel)
        outputs: dict[int, list[tuple[int, int]]] = {}
        name = table.names[split]
        self.scope = name.rpartition("/")[0] + "/" if "/" in name else ""
        for consumer, position, port in self.consumers(table, split):
            outputs.setdefault(port, []).append((consumer, position))
        where = table.where(table.names[split])
        found = _Found(scope, None)
        settings = found.settings
        peepholes: list[str] = []

        forget = self.forget_bias(table, outputs.get(2, []), where)
        if forget is None:
            # Not a TF1 cell's split: in Keras' order (i, f, c, o) output 2 is the candidate.
            return None
        settings["forget_bias"] = forget
        candidate = self.activation_of(table, outputs.get(1, []))
        if candidate is not None:
            settings["activation"] = Setting(candidate[0], f"graph: {candidate[1]}")
        gate = self.gate_activation(table, outputs.get(0, []), peepholes)
        if gate is not None:
            settings["recurrent_activation"] = Setting(gate[0], f"graph: {gate[1]}")
        self.gate_activation(table, outputs.get(2, []), peepholes)
        output_gate = self.gate_activation(table, outputs.get(3, []), peepholes)
        if output_gate is not None:
            self.cell_output(table, output_gate[2], found)
        settings["use_peepholes"] = Setting(
            bool(peepholes),
            f"graph: peephole weights {', '.join(sorted(set(peepholes)))}"
            if peepholes
            else f"graph: no peephole weights in the gates after {where}",
        )
        clipped = settings.get("cell_clip")
        projected = settings.get("num_proj")
        if peepholes or (clipped and clipped.value is not None) or (projected and projected.value is not None):
            found.cell = "LSTMCell"  # only LSTMCell has these (rnn_cell_impl.py)
        else:
            found.cell = _CELL_SCOPES.get(table.names[split].rpartition("/")[0].rpartition("/")[2])
        return found

    def kernel(self, table: NodeTable, gates: str) -> str | None:
        """The kernel variable of `concat([x, h]) @ kernel (+ bias)`."""
        found = self.producer(table, gates)
        hops = 0
        while found is not None and hops < _MAX_HOPS:
            table, i, _ = found
            op = table.ops[i]
            inputs = table.inputs(i)
            if op in ("MatMul", "BatchMatMulV2", "BatchMatMul") and len(inputs) == 2:
                return self.variable(table, inputs[1])
            if op not in _ADDS and op not in _PASS_THROUGH or not inputs:
                return None
            # The bias is added to the MatMul: follow the operand that is not a variable.
            nxt = inputs[0]
            if op in _ADDS and len(inputs) == 2 and self.variable(table, inputs[0]) is not None:
                nxt = inputs[1]
            found = self.producer(table, nxt, hops)
            hops += 1
        return None

    def forget_bias(self, table: NodeTable, readers: list[tuple[int, int]], where: str) -> Setting | None:
        for consumer, position in readers:
            op = table.ops[consumer]
            if op in ("Add", "AddV2"):
                inputs = table.inputs(consumer)
                if len(inputs) != 2:
                    continue
                constant = self.constant(table, inputs[1 - position])
                if constant is not None:
                    return Setting(constant[0], f"graph: {constant[1]}")
            elif op == "Sigmoid":
                return Setting(0.0, f"graph: nothing is added to the forget gate ({where}:2) before its sigmoid")
        return None

    def activation_of(self, table: NodeTable, readers: list[tuple[int, int]]) -> tuple[str, str] | None:
        for consumer, _ in readers:
            op = table.ops[consumer]
            if op in _ACTIVATIONS:
                return _ACTIVATIONS[op], table.where(table.names[consumer])
            if op == "Mul":
                return "linear", f"{table.where(table.names[consumer])} multiplies the candidate as it is"
            if op not in _ADDS:
                return op.lower(), table.where(table.names[consumer])
        return None

    def gate_activation(
        self, table: NodeTable, readers: list[tuple[int, int]], peepholes: list[str]
    ) -> tuple[str, str, int] | None:
        """(activation, where, node) of a gate: the op after its split output and any peephole
        additions (`+ w_diag * c`), noting the peephole variables."""
        for consumer, _ in readers:
            node, hops = consumer, 0
            while table.ops[node] in ("Add", "AddV2") and hops < _MAX_HOPS:
                inputs = table.inputs(node)
                for ref in inputs:
                    peephole = self.peephole(table, ref)
                    if peephole:
                        peepholes.append(peephole)
                nexts = self.consumers(table, node)
                if not nexts:
                    return None
                node, hops = nexts[0][0], hops + 1
            op = table.ops[node]
            if op in _ACTIVATIONS or op in ("HardSigmoid",):
                return _ACTIVATIONS.get(op, op.lower()), table.where(table.names[node]), node
        return None

    def peephole(self, table: NodeTable, ref: str) -> str | None:
        found = self.producer(table, ref)
        if found is None:
            return None
        table, i, _ = found
        if table.ops[i] != "Mul":
            return None
        for operand in table.inputs(i):
            variable = self.variable(table, operand)
            if variable is not None:
                return variable
        return None

    def cell_output(self, table: NodeTable, output_gate: int, found: _Found) -> None:
        """From the output gate's sigmoid: h = o * act(clip(c)), then the projection and its clip."""
        settings = found.settings
        for consumer, position, _ in self.consumers(table, output_gate):
            if table.ops[consumer] != "Mul":
                continue
            inputs = table.inputs(consumer)
            if len(inputs) != 2:
                continue
            other = self.producer(table, inputs[1 - position])
            if other is None:
                continue
            state_table, state, _ = other
            op = state_table.ops[state]
            activation = Setting(
                _ACTIVATIONS.get(op, "linear"), f"graph: {state_table.where(state_table.names[state])}"
            )
            if op in _ACTIVATIONS:
                state_inputs = state_table.inputs(state)
                clipped = self.producer(state_table, state_inputs[0]) if state_inputs else None
            else:
                clipped = other
            found.more.append(("activation", activation))
            clip = self.clip(*clipped[:2]) if clipped is not None else None
            settings["cell_clip"] = clip or Setting(
                None, f"graph: the cell state is not clipped ({state_table.where(state_table.names[state])})"
            )
            self.projection(table, consumer, settings)
            return

    def clip(self, table: NodeTable, node: int) -> Setting | None:
        """clip_by_value(t, -c, c) at `node`: Maximum(Minimum(t, c), -c) (clip_ops.py), either
        order, or one ClipByValue op."""
        op = table.ops[node]
        inputs = table.inputs(node)
        if op == "ClipByValue" and len(inputs) == 3:
            low, high = self.constant(table, inputs[1]), self.constant(table, inputs[2])
            if low is not None and high is not None:
                return _clip_setting(low, high, table.where(table.names[node]))
            return None
        if op not in ("Maximum", "Minimum") or len(inputs) != 2:
            return None
        outer = self.constant(table, inputs[1])
        inner = self.producer(table, inputs[0])
        if outer is None or inner is None:
            return None
        inner_table, inner_node, _ = inner
        expected = "Minimum" if op == "Maximum" else "Maximum"
        inner_inputs = inner_table.inputs(inner_node)
        if inner_table.ops[inner_node] != expected or len(inner_inputs) != 2:
            return None
        bound = self.constant(inner_table, inner_inputs[1])
        if bound is None:
            return None
        low, high = (outer, bound) if op == "Maximum" else (bound, outer)
        return _clip_setting(low, high, table.where(table.names[node]))

    def projection(self, table: NodeTable, output: int, settings: dict[str, Setting]) -> None:
        for consumer, position, _ in self.consumers(table, output):
            inputs = table.inputs(consumer)
            if table.ops[consumer] != "MatMul" or position != 0 or len(inputs) != 2:
                continue
            kernel = self.variable(table, inputs[1])
            if kernel is None:
                continue
            shape = self.variable_shape(kernel)
            size = shape[1] if shape is not None and len(shape) == 2 else None
            settings["num_proj"] = Setting(size, f"graph: projection {kernel}")
            clip = None
            for after, _, _ in self.consumers(table, consumer):
                later = self.consumers(table, after)
                clip = self.clip(table, later[0][0]) if later else None
                clip = clip or self.clip(table, after)
                if clip is not None:
                    break
            settings["proj_clip"] = clip or Setting(
                None, f"graph: the projection is not clipped ({table.where(table.names[consumer])})"
            )
            return
        settings["num_proj"] = Setting(None, "graph: no projection after the output gate")
        settings["proj_clip"] = Setting(None, "graph: no projection, so no projection clip")

    def fused_cell(self, table: NodeTable, i: int) -> _Found | None:
        weights_at, cell, defaults = _FUSED_OPS[table.ops[i]]
        inputs = table.inputs(i)
        if len(inputs) <= weights_at:
            return None
        kernel = self.variable(table, inputs[weights_at])
        if kernel is None:
            return None
        found = _Found(_cell_scope(kernel), cell)
        op_where = table.where(table.names[i])
        attrs = table.node(i).get("attr", {})
        for name, default in defaults.items():
            value = attrs.get(name, {})
            key = "b" if isinstance(default, bool) else "f"
            if key in value:
                read = shortest_float32(value[key]) if key == "f" else value[key]
                source = f"op attribute: {op_where} {name}"
            else:
                read, source = (
                    default,
                    f"op default: {table.ops[i]} {name} = {default} (tensorflow/core/ops/rnn_ops.cc)",
                )
            if name == "cell_clip":
                # The kernels clip only when cell_clip > 0 (tensorflow/core/kernels/rnn/lstm_ops.cc).
                read = read if read > 0 else None
            found.settings["use_peepholes" if name == "use_peephole" else name] = Setting(read, source)
        if "forget_bias" not in defaults:
            found.settings["forget_bias"] = Setting(0.0, f"op: {op_where} ({table.ops[i]} has no forget bias)")
        # The ops compute sigmoid gates and tanh (lstm_ops.h) and have no projection.
        found.settings["activation"] = Setting("tanh", f"op: {op_where} (computes tanh)")
        found.settings["recurrent_activation"] = Setting("sigmoid", f"op: {op_where} (computes sigmoid)")
        found.settings["num_proj"] = Setting(None, f"op: {op_where} (no projection)")
        found.settings["proj_clip"] = Setting(None, f"op: {op_where} (no projection)")
        return found


def _clip_setting(low: tuple[float, str], high: tuple[float, str], where: str) -> Setting:
    # TF's cells clip symmetrically (clip_by_value(c, -cell_clip, cell_clip)); another range is
    # reported as it is, (low, high), for the caller to refuse.
    value: float | tuple[float, float] = high[0] if low[0] == -high[0] else (low[0], high[0])
    # The bounds are Consts of the clip's own scope (clip_by_value/Minimum/y, clip_by_value/y).
    return Setting(value, f"graph: {where}")


def _cell_scope(kernel: str) -> str:
    for leaf in _KERNEL_LEAVES:
        if kernel.endswith(leaf):
            return kernel[: -len(leaf)]
    return kernel.rpartition("/")[0]


def layer_hints(graph: Graph) -> dict[str, LayerHint]:
    """A LayerHint per LSTM cell scope the graph holds, keyed by the scope of its weights.

    A setting every step agrees on is in `settings`; one whose steps (or places within a step)
    disagree is in `conflicts`, one Setting per distinct value, each naming its node.
    """
    steps: dict[str, list[_Found]] = {}
    for step in _Matcher(graph).cells():
        steps.setdefault(step.scope, []).append(step)
    hints = {}
    for scope, found in steps.items():
        cells = [f.cell for f in found if f.cell]
        hint = LayerHint(scope, cells[0] if cells and len(set(cells)) == 1 else None)
        readings: dict[str, list[Setting]] = {}
        for step in found:
            for name, setting in [*step.settings.items(), *step.more]:
                readings.setdefault(name, []).append(setting)
        for name, settings in readings.items():
            distinct: dict[Any, Setting] = {}
            for reading in settings:
                distinct.setdefault(_key(reading.value), reading)
            if len(distinct) == 1:
                hint.settings[name] = next(iter(distinct.values()))
            else:
                hint.conflicts[name] = tuple(distinct.values())
        hints[scope] = hint
    return hints


def _key(value: Any) -> Any:
    # NaN is not equal to itself; it is one reading all the same.
    return "nan" if isinstance(value, float) and math.isnan(value) else value


# --- the weights of a frozen graph -------------------------------------------------------------


def weight_constants(graph: Graph) -> list[int]:
    """The top-level Consts that are weights, in graph order.

    convert_variables_to_constants (graph_util_impl.py) turns each variable into a Const of the
    variable's name and keeps its readers: `X/read` (Identity) for a reference variable, and
    `X/Read/ReadVariableOp` turned into an Identity for a resource variable. A Const read so is a
    weight; so is one used as a MatMul's or BiasAdd's second operand (a graph stripped of its
    Identity nodes by optimize_for_inference). Every other Const (`add/y`, `concat/axis`,
    shapes) is a graph constant.
    """
    table = graph.top
    weights: set[int] = set()
    for i, op in enumerate(table.ops):
        if op in ("Identity", "ReadVariableOp", "MatMul", "BiasAdd"):
            inputs = table.inputs(i)
            if op in ("Identity", "ReadVariableOp"):
                j = table.index.get(inputs[0].split(":", 1)[0]) if inputs else None
                if j is not None and table.ops[j] == "Const" and table.names[i].startswith(table.names[j] + "/"):
                    weights.add(j)
            elif len(inputs) == 2:
                found = _Matcher(graph).source(table, inputs[1])
                if found is not None and found[0] is table and table.ops[found[1]] == "Const":
                    weights.add(found[1])
    return sorted(weights)


# --- the graph beside a checkpoint -------------------------------------------------------------


@record
class GraphHints:
    """What a `.meta` file says beside its checkpoint.

    hints: per LSTM cell scope, what the graph says (layer_hints()).
    trainable_variables: the graph's `trainable_variables` collection (variable names, in order; a
        partitioned variable by its full name), or None when the graph has no such collection.
    variables: every variable the graph declares (its collections' VariableDefs, else its variable
        ops), as TensorInfo with the shape and dtype the graph gives (shape () when unknown).
    problems: why the graph does not belong to the checkpoint ([] when it does): variables of other
        shapes, or a checkpoint holding none of the graph's variables.
    """

    path: str
    hints: dict[str, LayerHint]
    trainable_variables: list[str] | None
    variables: dict[str, TensorInfo]
    problems: list[str]

    @property
    def belongs(self) -> bool:
        return not self.problems


def graph_hints(meta_path: str | os.PathLike[str], tensors: dict[str, TensorInfo]) -> GraphHints:
    """Read the `.meta` at `meta_path` beside the checkpoint whose tensors are `tensors`.

    Raises CorruptFile / UnsupportedFormat (one line) when the file is no MetaGraphDef; a graph of
    another model is no error: `problems` says so, for the caller to warn and ignore it.
    """
    path = os.fspath(meta_path)
    meta = read_meta_graph(read_graph_file(path, "meta graph"), path)
    graph = meta.graph
    try:
        hints = layer_hints(graph)
        variables = declared_variables(meta)
    except Malformed as e:
        raise _corrupt(path, str(e)) from None
    trainable = _collection_variables(meta, "trainable_variables")
    names = None if trainable is None else list(dict.fromkeys(name for name, _ in trainable))
    return GraphHints(path, hints, names, variables, _problems(path, variables, tensors))


def _collection_variables(meta: MetaGraph, collection: str) -> list[tuple[str, tuple[int, ...] | None]] | None:
    """(name, full shape if partitioned) of each VariableDef in a collection (variable.proto)."""
    values = meta.collections.get(collection, {}).get("bytes_list", {}).get("value")
    if values is None:
        return None
    found: list[tuple[str, tuple[int, ...] | None]] = []
    for raw in values:
        definition = decode(raw, "VariableDef", SCHEMA)
        name = definition.get("variable_name", "").rsplit(":", 1)[0]
        sliced = definition.get("save_slice_info_def")
        if sliced and sliced.get("full_name"):
            found.append((sliced["full_name"], tuple(sliced.get("full_shape", ()))))
        elif name:
            found.append((name, None))
    return found


def declared_variables(meta: MetaGraph) -> dict[str, TensorInfo]:
    """The variables the graph declares, with the shape and dtype its variable ops give."""
    table = meta.graph.top
    shapes: dict[str, TensorInfo] = {}
    for i, op in enumerate(table.ops):
        if op in ("VariableV2", "Variable", "VarHandleOp", "VariableV1"):
            shape = tensor_shape((table.attr(i, "shape") or {}).get("shape"))
            dtype = dtype_name((table.attr(i, "dtype") or {}).get("type", 0))
            shapes[table.names[i]] = TensorInfo(table.names[i], shape or (), dtype, f"graph: {table.names[i]}")
    listed = (_collection_variables(meta, "variables") or []) + (
        _collection_variables(meta, "trainable_variables") or []
    )
    if not listed:
        return shapes
    declared = {}
    for name, full_shape in listed:
        if full_shape is not None:
            parts = [info for part, info in shapes.items() if _PART.match(part) and part.rsplit("/", 1)[0] == name]
            dtype = parts[0].dtype if parts else "unknown-0"
            declared[name] = TensorInfo(name, full_shape, dtype, f"graph: {name} (partitioned)")
        elif name in shapes:
            declared[name] = shapes[name]
        else:
            declared[name] = TensorInfo(name, (), "unknown-0", f"graph: {name}")
    return declared


def _problems(path: str, variables: dict[str, TensorInfo], tensors: dict[str, TensorInfo]) -> list[str]:
    common = [name for name in variables if name in tensors]
    if variables and not common:
        return [
            f"{path}: declares none of the checkpoint's variables (its graph has {len(variables)}, "
            f"e.g. {next(iter(variables))!r})"
        ]
    problems = []
    for name in common:
        graph_shape, stored_shape = variables[name].shape, tensors[name].shape
        known = variables[name].source.endswith("(partitioned)") or graph_shape != ()
        if known and graph_shape != stored_shape:
            problems.append(
                f"{path}: variable {name!r} is {list(graph_shape)} in the graph but {list(stored_shape)} "
                "in the checkpoint"
            )
    return problems
