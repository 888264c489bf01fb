"""Frozen TensorFlow graphs: a GraphDef (binary `.pb` or text `.pbtxt`) whose variables are Consts.

`convert_variables_to_constants` (tensorflow/python/framework/graph_util_impl.py), the usual TF1
deployment step, replaces every variable by a Const of the variable's name holding its value, so
the weights are named as in the checkpoint they came from (`rnn/basic_lstm_cell/kernel`, or an
older generation's `…/weights`, `…/Linear/Matrix`) and detection treats them alike. The same graph
says what the weights do not (forget bias, activation, clips): tf_graph.layer_hints().

Opening decodes node names and ops, then the weight Consts' shapes and dtypes; a value is turned
into an array when it is read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import CorruptFile, UnknownName, UnsupportedFormat
from .base import LayerConfig, LayerHint, TensorFlowSource, TensorInfo
from .formats.frozen_graph import looks_like_text_graph
from .protobuf import Malformed
from .tf_bundle import TF_ORIGIN
from .tf_graph import (
    Graph,
    layer_hints,
    read_graph_def,
    read_graph_file,
    tensor_array,
    tensor_dtype,
    tensor_shape,
    weight_constants,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FORMAT", "FrozenGraph", "looks_like_text_graph", "open_frozen_graph"]

FORMAT = "tf-frozen-graph"


class FrozenGraph:
    """An open frozen graph; a TensorStore whose tensors are the graph's weight Consts."""

    format = FORMAT
    origin = TF_ORIGIN  # tf.compat.v1 imports the GraphDef
    checksums = False  # a GraphDef holds none

    def __init__(self, path: str, graph: Graph, where: str | None = None, kind: str = "graph") -> None:
        """`graph` read from `path`; `where` names the file in messages when it is not `path`
        (the saved_model.pb of a SavedModel directory, `kind` "saved_model")."""
        self.path = path
        self._where = where or path
        self._kind = kind
        self._graph = graph
        self._infos: dict[str, TensorInfo] = {}
        self._tensors: dict[str, dict[str, Any]] = {}
        table = graph.top
        try:
            for i in weight_constants(graph):
                name = table.names[i]
                tensor = (table.attr(i, "value") or {}).get("tensor") or {}
                shape = tensor_shape(tensor.get("tensor_shape"))
                if shape is None:
                    raise Malformed(f"Const {name!r} has no known shape")
                self._infos[name] = TensorInfo(name, shape, tensor_dtype(tensor), f"Const {name}")
                self._tensors[name] = tensor
            self._hints = layer_hints(graph)
        except Malformed as e:
            raise CorruptFile(f"{self._where}: {e}; the file is damaged or not a TensorFlow graph") from None

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._infos)

    def read(self, name: str) -> np.ndarray:
        tensor = self._tensors.get(name)
        if tensor is None:
            raise UnknownName(f"{self._where}: no weight named {name!r} in this graph")
        try:
            return tensor_array(tensor, f"Const {name!r}")
        except Malformed as e:
            raise CorruptFile(f"{self._where}: {e}; the file is damaged or not a TensorFlow graph") from None

    def files(self) -> list[str]:
        return [self._where]

    def layer_configs(self) -> dict[str, LayerConfig]:
        return {}

    def layer_hints(self) -> dict[str, LayerHint]:
        return dict(self._hints)

    def unsaid(self) -> str:
        return "the graph does not show it for this cell"

    def tensorflow_source(self) -> TensorFlowSource:
        # A frozen weight is the Const of the variable's name: TensorFlow knows it by that name.
        return TensorFlowSource(self._kind, self._where, {name: name for name in self._infos})

    def close(self) -> None:
        pass

    def __enter__(self) -> FrozenGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_frozen_graph(path: str | os.PathLike[str]) -> Any:
    """Open a binary `.pb` or text `.pbtxt` GraphDef; a `.pb` that is a SavedModel's
    saved_model.pb is opened as that SavedModel."""
    path = os.fspath(path)
    data = read_graph_file(path)
    text = path.endswith(".pbtxt") or looks_like_text_graph(data[:64])
    if not text and _is_saved_model(data):
        from .saved_model import open_saved_model

        return open_saved_model(os.path.dirname(path) or ".", saved_model_file=path)
    graph = read_graph_def(data, path, text=text)
    store = FrozenGraph(path, graph)
    if not store.tensors():
        raise UnsupportedFormat(
            f"{path}: a TensorFlow graph without weights (no Const read as a variable); "
            "it is not frozen: give the checkpoint its variables were saved in"
        )
    return store


def _is_saved_model(data: bytes) -> bool:
    # SavedModel (saved_model.proto) starts with saved_model_schema_version (field 1, varint: tag
    # 0x08) and then meta_graphs (field 2); a GraphDef starts with node (field 1, bytes: 0x0a).
    return data[:1] == b"\x08" and b"\x12" in data[1:12]
