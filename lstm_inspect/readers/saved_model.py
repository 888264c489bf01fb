"""SavedModel directories, and object-graph names for TF2 checkpoints.

A SavedModel (tensorflow/core/protobuf/saved_model.proto) is `saved_model.pb` (or `.pbtxt`), one
or more MetaGraphDefs, beside `variables/variables.{index,data-*}`, a TF2 object checkpoint read
by tf_bundle.TFCheckpoint. Its keys are the first path TF's object walk found to each variable,
often positional (`trainable_variables/3/.ATTRIBUTES/VARIABLE_VALUE`, Keras 3's `variables/0`);
the checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH` (trackable_object_graph.proto) records every path.
Each variable is named here by one canonical path (fewest positional steps, then fewest tracking
lists, then shortest, then first in order), so that detection sees `enc/cell/kernel`:

- with Keras metadata (tf_keras `model.save(dir)`: `keras_metadata.pb` from TF 2.5 on,
  tf_keras/protobuf/saved_metadata.proto; before, the SavedUserObject `metadata` in
  saved_model.pb), each layer on the path is named by its Keras name, an RNN's `cell` step is
  dropped and a Bidirectional's halves are `forward` and `backward`: the names and layer configs
  the same model's `.h5` gives (readers/keras/);
- with no positional step, the object path itself (`tf.saved_model.save` of a tf.Module);
- else each variable's own name from saved_model.pb (SavedVariable.name: Keras 3's
  `enc/lstm_cell/kernel`), with the layers that call it where the exported functions show them
  (`sub/enc/lstm_cell/kernel`, _called_names), its cell level dropped and `forward_X`/`backward_X`
  siblings named `forward`/`backward`, as Keras' Bidirectional names its halves.

Two keys can hold one variable: Keras 3's export tracks every variable in `variables` and again
in `_all_variables` (keras/src/export/saved_model.py). Keys that get one name and store the same
bytes (the index's size and CRC-32C) are one variable, listed once.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import field
from typing import TYPE_CHECKING, Any

from ..errors import CorruptFile, FileNotFound, UnknownName, UnsupportedFormat
from ..records import record
from . import files
from .base import LayerConfig, LayerHint, TensorFlowSource, TensorInfo
from .files import is_url, open_regular, read_bounded
from .formats.saved_model import GRAPH_FILES, VARIABLES_DIRECTORY, is_saved_model_dir
from .protobuf import Malformed, decode, varint
from .tf_bundle import TFCheckpoint, _crc32c, _mask
from .tf_protos import ENUMS, SCHEMA
from .urls import display_url

if TYPE_CHECKING:  # tf_graph only for a SavedModel directory: a TF2 checkpoint's names need none of it
    import numpy as np

    from .frozen_graph import FrozenGraph
    from .tf_graph import MetaGraph

__all__ = ["FORMAT", "OBJECT_GRAPH_KEY", "SavedModel", "is_saved_model_dir", "open_saved_model", "with_object_paths"]

FORMAT = "saved-model"
_KERAS_METADATA = "keras_metadata.pb"
_SIDE_FILES = (_KERAS_METADATA, "fingerprint.pb")
# tensorflow/python/checkpoint/checkpoint.py: the object graph's key, and the suffix of a value
# (_OBJECT_ATTRIBUTES_NAME + VARIABLE_VALUE_KEY); slots sit under `.OPTIMIZER_SLOT`.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_ATTRIBUTES = "/.ATTRIBUTES/"
_VALUE = "VARIABLE_VALUE"
_SLOT = "/.OPTIMIZER_SLOT/"
# The object graph and keras metadata of a model of millions of variables stay far below this.
_MAX_METADATA_BYTES = 256 << 20
# Lists TF and Keras keep for tracking (tf.Module.variables, Keras' layer lists): a path through
# them says less than one through named attributes.
_TRACKING = {
    "variables", "trainable_variables", "non_trainable_variables", "_all_variables", "keras_api",
    "layers", "_layer_checkpoint_dependencies", "submodules", "_variables", "_trainable_variables",
    "_non_trainable_variables", "_self_unconditional_checkpoint_dependencies", "_operations",
    "_functional", "layer_metrics", "metrics",
}  # fmt: skip
# An RNN cell's level in a Keras variable name ("lstm_cell", "lstm_cell_1"; keras/legacy_h5.py _CELL_LEVEL).
_CELL_LEVEL = re.compile(r"(?:\w+_)?cell(?:_\d+)?")
_KERAS_LAYER = re.compile(r"^_tf_keras_(layer|rnn_layer|network|model|sequential)$")
_DIRECTIONS = {"forward_layer": "forward", "backward_layer": "backward"}


def _corrupt(path: str, problem: str) -> CorruptFile:
    return CorruptFile(f"{path}: {problem}; the SavedModel is damaged or incomplete")


# --- the checkpoint's object graph -------------------------------------------------------------


def read_object_graph(checkpoint: TFCheckpoint) -> list[dict[str, Any]] | None:
    """The TrackableObjectGraph nodes of a TF2 checkpoint, or None for a TF1 checkpoint.

    Read without numpy (a summary imports none): the scalar string tensor's bytes are its varint
    length, the masked CRC-32C of that length as a uint32, then the bytes; the entry's CRC-32C
    covers the uint32 length, that checksum and the bytes (tensor_bundle.cc WriteStringTensor).
    """
    if OBJECT_GRAPH_KEY not in checkpoint.tensors():
        return None
    # TFCheckpoint reads strings into numpy arrays; this reads the one entry's bytes itself.
    entry = checkpoint._entries[checkpoint._keys[OBJECT_GRAPH_KEY]]
    shard = f"{checkpoint.path}.data-{entry.shard_id:05d}-of-{checkpoint._num_shards:05d}"
    if entry.size > _MAX_METADATA_BYTES or entry.shard_id >= checkpoint._num_shards:
        raise _corrupt(checkpoint.path, f"the object graph entry claims {entry.size} bytes in shard {entry.shard_id}")
    with open_regular(shard, "data shard") as f:
        f.seek(entry.offset)
        raw = f.read(entry.size)
    try:
        length, pos = varint(raw, 0)
        if len(raw) != entry.size or pos + 4 + length != len(raw):
            raise Malformed("the object graph is cut short")
        if checkpoint._verify:
            crc = _crc32c(length.to_bytes(4, "little"))
            if _mask(crc) != int.from_bytes(raw[pos : pos + 4], "little"):
                raise Malformed("the object graph's length fails its CRC-32C check")
            if _mask(_crc32c(raw[pos:], crc)) != entry.crc32c:
                raise Malformed("the object graph fails its CRC-32C check")
        return decode(raw[pos + 4 :], "TrackableObjectGraph", SCHEMA).get("nodes", [])
    except Malformed as e:
        raise _corrupt(shard, str(e)) from None


def _positional(step: str) -> bool:
    # TF names a list's children by their index, str(int): ASCII digits.
    return step.isascii() and step.isdigit()


def canonical_paths(nodes: list[dict[str, Any]]) -> dict[int, list[tuple[str, int]]]:
    """Per node reachable from the root (node 0), its canonical path: (child name, node) steps.

    The cheapest path by (positional steps, steps through tracking lists, steps), ties broken by
    the path's names, so that the choice depends on the graph alone.
    """
    best: dict[int, list[tuple[str, int]]] = {}
    queue: list[tuple[tuple[int, int, int, tuple[str, ...]], int, list[tuple[str, int]]]] = [((0, 0, 0, ()), 0, [])]
    while queue:
        cost, node, path = heapq.heappop(queue)
        if node in best:
            continue
        best[node] = path
        if not 0 <= node < len(nodes):
            continue
        for child in nodes[node].get("children", []):
            target, name = child.get("node_id", 0), child.get("local_name", "")
            if target in best or not 0 <= target < len(nodes):
                continue
            step = (
                cost[0] + _positional(name),
                cost[1] + (name in _TRACKING),
                cost[2] + 1,
                (*cost[3], name),
            )
            heapq.heappush(queue, (step, target, [*path, (name, target)]))
    return best


@record
class _Keras:
    """A Keras object's metadata (a keras_metadata.pb node, or a SavedUserObject's)."""

    identifier: str
    metadata: dict[str, Any]

    @property
    def is_layer(self) -> bool:
        return bool(_KERAS_LAYER.match(self.identifier))


@record
class _Naming:
    """How each checkpoint key is named, and the layer configs found on the way."""

    names: dict[str, str] = field(default_factory=dict)
    configs: dict[str, LayerConfig] = field(default_factory=dict)


def _value_keys(node: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for attribute in node.get("attributes", []):
        key = attribute.get("checkpoint_key")
        if key:
            yield attribute.get("name", _VALUE), key


def _name_keys(
    nodes: list[dict[str, Any]],
    keras: dict[int, _Keras],
    variable_names: dict[int, str],
    only_positional: bool,
) -> _Naming:
    """Names for the keys of an object graph (see the module docstring for the rules).

    only_positional: rename only keys whose own path has a positional step (a TF2 checkpoint
    opened as a checkpoint keeps its keys otherwise, `/.ATTRIBUTES/…` included).
    """
    paths = canonical_paths(nodes)
    naming = _Naming()
    bases: dict[int, str] = {}
    root = keras.get(0)
    keras_version = root.metadata.get("keras_version") if root is not None else None
    for node_id, path in paths.items():
        if not path:
            continue
        bases[node_id] = base = _base_name(nodes[node_id], path, keras, variable_names.get(node_id))
        info = keras.get(node_id)
        if info is not None and info.is_layer and path[-1][0] != "cell" and "class_name" in info.metadata:
            config = info.metadata.get("config")
            naming.configs[base] = LayerConfig(
                str(info.metadata["class_name"]), config if isinstance(config, dict) else {}, keras_version
            )
    # As the .h5 reader does, configs of the layers that hold weights themselves: a Bidirectional's
    # are its halves', a nested model's its layers'.
    naming.configs = {
        scope: config
        for scope, config in naming.configs.items()
        if not any(other.startswith(scope + "/") for other in naming.configs)
    }
    _name_directions(bases, variable_names, nodes)
    if root is not None and root.is_layer:
        # The model's own config names every layer as the same model's .h5 does (readers/keras/).
        from .keras.model_config import layer_configs
        from .keras.store import Entry

        entries = [Entry(base, "", (), "") for base in bases.values()]
        configs = layer_configs(root.metadata, entries, keras_version)
        naming.configs = configs or naming.configs
    for node_id, base in bases.items():
        if 0 <= node_id < len(nodes):
            for attribute, key in _value_keys(nodes[node_id]):
                naming.names[key] = base if attribute == _VALUE else f"{base}{_ATTRIBUTES}{attribute}"
    naming.names.update(_slot_names(nodes, bases))
    if only_positional:
        naming.names = {
            key: name + key[key.index(_ATTRIBUTES) :] if _ATTRIBUTES in key and _ATTRIBUTES not in name else name
            for key, name in naming.names.items()
            if any(_positional(step) for step in key.split(_ATTRIBUTES)[0].split("/"))
            and not any(_positional(step) for step in name.split(_ATTRIBUTES)[0].split("/"))
        }
    return naming


def _base_name(
    node: dict[str, Any], path: list[tuple[str, int]], keras: dict[int, _Keras], variable_name: str | None
) -> str:
    """The name of one object of the graph, reached by `path`."""
    steps = _keras_steps(path, keras) if keras else None
    if steps is not None:
        return "/".join(steps)
    # TF's own key names the variable by a path too: where that path has no positional step,
    # it is kept (of equally good paths, the one the file already uses).
    own = next((key.split(_ATTRIBUTES)[0] for _, key in _value_keys(node)), None)
    if own is not None and not any(_positional(step) for step in own.split("/")):
        return own
    positional = any(_positional(step) for step, _ in path)
    # Without Keras metadata, a positional path gives way to the variable's graph name; an
    # optimizer's variables keep their path (`optimizer/…`), which says what they are.
    if positional and variable_name is not None and not keras and path[0][0] != "optimizer":
        return variable_name
    return "/".join(step for step, _ in path)


def _slot_names(nodes: list[dict[str, Any]], bases: dict[int, str]) -> dict[str, str]:
    """Optimizer slots: `<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>`, keyed by their keys."""
    names = {}
    for node_id, node in enumerate(nodes):
        for slot in node.get("slot_variables", []):
            original, holder = slot.get("original_variable_node_id", -1), slot.get("slot_variable_node_id", -1)
            optimizer = bases.get(node_id)
            if original in bases and optimizer is not None and 0 <= holder < len(nodes):
                for attribute, key in _value_keys(nodes[holder]):
                    name = f"{bases[original]}{_SLOT}{optimizer}/{slot.get('slot_name', '')}"
                    names[key] = name if attribute == _VALUE else f"{name}{_ATTRIBUTES}{attribute}"
    return names


def _keras_steps(path: list[tuple[str, int]], keras: dict[int, _Keras]) -> list[str] | None:
    """The path in Keras' terms: layers by their names, without RNN `cell` steps; None when no
    Keras layer is on it."""
    from .keras.model_config import STACKED_CELLS, config_node, stacked_cell_name, wrapped_layer

    steps: list[str] = []
    any_layer = False
    above: _Keras | None = None  # the Keras layer the previous step reached
    stack = False  # whether the previous step was a StackedRNNCells' `cells` list
    for step, node in path:
        info = keras.get(node)
        if info is not None and info.is_layer:
            any_layer = True
            wrapper = above is not None and wrapped_layer(config_node(above.metadata)) is not None
            if stack and step.isdigit():
                # A stacked RNN's cells are named by their place, as in an .h5 (model_config.stacked_cell_name).
                steps[-1] = stacked_cell_name(int(step))
            elif not (step == "cell" or (step == "layer" and wrapper)):
                # An RNN's cell and a TimeDistributed's layer hold the weights of the layer above.
                steps.append(_DIRECTIONS.get(step) or str(info.metadata.get("name") or step))
            above, stack = info, False
        else:
            stack = step == "cells" and above is not None and above.metadata.get("class_name") == STACKED_CELLS
            steps.append(step)
            above = None
    return steps if any_layer else None


def _name_directions(bases: dict[int, str], variable_names: dict[int, str], nodes: list[dict[str, Any]]) -> None:
    """Variable names `P/forward_X/…` and `P/backward_X/…` (a Keras Bidirectional's halves, named
    "forward_" / "backward_" + the inner layer's name by Keras' bidirectional.py) become
    `P/forward/…`, `P/backward/…`; the cell level of such a name (`…/lstm_cell/kernel`) goes, and
    a stacked RNN's `stacked_rnn_cells/<cell>` is `cell_<i>` as in an .h5 (readers/keras/legacy_h5.py)."""
    from .keras.legacy_h5 import name_stacked_cells

    named = {n: b for n, b in bases.items() if variable_names.get(n) == b}
    # Keras 3's export lists the model's variables in order (`variables/N`): the cells of a stack in theirs.
    order = sorted(named, key=lambda n: min((_key_order(key) for _, key in _value_keys(nodes[n])), default=(True, ())))
    split = [named[n].split("/") for n in order]
    renamed = dict(zip(order, name_stacked_cells(split)))
    named = {n: "/".join(parts) for n, parts in zip(order, split)}
    halves: dict[tuple[str, str], set[str]] = {}
    for base in named.values():
        parts = base.split("/")
        for i, part in enumerate(parts[:-1]):
            for direction in ("forward", "backward"):
                if part.startswith(direction + "_"):
                    halves.setdefault(("/".join(parts[:i]), part[len(direction) + 1 :]), set()).add(direction)
    for node_id, base in named.items():
        parts = base.split("/")
        if len(parts) >= 3 and _CELL_LEVEL.fullmatch(parts[-2]) and len(parts) - 2 not in renamed[node_id]:
            del parts[-2]
        for i, part in enumerate(parts[:-1]):
            for direction in ("forward", "backward"):
                inner = part[len(direction) + 1 :]
                if part.startswith(direction + "_") and halves.get(("/".join(parts[:i]), inner)) == {
                    "forward",
                    "backward",
                }:
                    parts[i] = direction
        bases[node_id] = "/".join(parts)


# --- a checkpoint under other names ------------------------------------------------------------


class RenamedStore:
    """A TF checkpoint whose tensors are listed under other names (read through the checkpoint)."""

    def __init__(
        self,
        checkpoint: TFCheckpoint,
        names: dict[str, str],
        *,
        path: str | None = None,
        format: str | None = None,
        configs: dict[str, LayerConfig] | None = None,
        hints: dict[str, LayerHint] | None = None,
        beside: list[str] | None = None,
        unsaid: str | None = None,
    ) -> None:
        """beside: the other files it belongs with (saved_model.pb, keras_metadata.pb); unsaid: why
        a setting no weight stores is assumed (see readers/base.py)."""
        self.path = path or checkpoint.path
        self.format = format or checkpoint.format
        self.origin, self.checksums = checkpoint.origin, checkpoint.checksums
        self._checkpoint = checkpoint
        self._configs = configs or {}
        self._hints = hints or {}
        self._beside = beside or []
        self._unsaid = unsaid
        self._infos: dict[str, TensorInfo] = {}
        self._keys: dict[str, str] = {}
        stored = checkpoint.tensors()
        wanted: dict[str, list[str]] = {}
        for key in sorted(stored, key=_key_order):
            wanted.setdefault(names.get(key, key), []).append(key)
        for name, keys in wanted.items():
            keys = _distinct(checkpoint, keys)
            for key in keys:
                shown = name if len(keys) == 1 else key  # different variables under one name: keys
                info = stored[key]
                self._infos[shown] = TensorInfo(shown, info.shape, info.dtype, key)
                self._keys[shown] = key

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._infos)

    def read(self, name: str) -> np.ndarray:
        key = self._keys.get(name)
        if key is None:
            raise UnknownName(f"{self.path}: no tensor named {name!r}")
        return self._checkpoint.read(key)

    def advise(self, names: Iterable[str]) -> None:
        self._checkpoint.advise(self._keys[name] for name in names if name in self._keys)

    def files(self) -> list[str]:
        return [*self._checkpoint.files(), *self._beside]

    def layer_configs(self) -> dict[str, LayerConfig]:
        return dict(self._configs)

    def layer_hints(self) -> dict[str, LayerHint]:
        return dict(self._hints)

    def unsaid(self) -> str | None:
        return self._unsaid

    def tensorflow_source(self) -> TensorFlowSource:
        return TensorFlowSource("checkpoint", self._checkpoint.path, dict(self._keys))

    def close(self) -> None:
        self._checkpoint.close()

    def __enter__(self) -> RenamedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key_order(key: str) -> tuple[bool, tuple[Any, ...]]:
    """Keys in the model's order: a public path before one through a private attribute
    (`variables/0` before `_all_variables/0`, whose order Keras 3's export does not keep), then in
    natural order: a Keras model's `variables/N` are its variables in the model's order, which the
    index's byte order (`variables/10` before `variables/2`) is not."""
    from .keras.store import natural_key

    return any(step.startswith("_") for step in key.split("/")[:-2]), natural_key(key)


def _distinct(checkpoint: TFCheckpoint, keys: list[str]) -> list[str]:
    """The keys that store different values; of keys whose index entries agree on dtype, shape,
    size and CRC-32C (one variable held twice), one: a public path over one through a private
    attribute (`variables/0` over `_all_variables/0`), then the first in order."""
    kept: dict[tuple[Any, ...], str] = {}
    for key in sorted(keys, key=_key_order):
        if checkpoint._entries[checkpoint._keys[key]].slices:
            kept[(key,)] = key
            continue
        kept.setdefault(_stored(checkpoint, key), key)
    return sorted(kept.values())


def with_object_paths(checkpoint: TFCheckpoint) -> TFCheckpoint | RenamedStore:
    """A TF2 checkpoint whose positional keys (`model/variables/3/.ATTRIBUTES/VARIABLE_VALUE`) are
    renamed by the object graph (`model/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE`); any other
    checkpoint as it is. The hook tf_bundle.open_checkpoint calls for a checkpoint with positional
    keys (tf_bundle.POSITIONAL_KEY)."""
    nodes = read_object_graph(checkpoint)
    if not nodes:
        return checkpoint
    naming = _name_keys(nodes, {}, {}, only_positional=True)
    if not naming.names:
        return checkpoint
    return RenamedStore(checkpoint, naming.names)


# --- the SavedModel directory -------------------------------------------------------------------


@record
class SavedModel:
    """What saved_model.pb says: the MetaGraph lstm-inspect reads (the `serve` one, else the first)."""

    path: str
    meta: MetaGraph


def read_saved_model(path: str) -> SavedModel:
    """saved_model.pb (binary) or saved_model.pbtxt (text)."""
    from .tf_graph import read_graph_file, read_meta_graph

    data = read_graph_file(path, "SavedModel")
    try:
        if path.endswith(".pbtxt"):
            from . import prototext

            saved = prototext.decode(prototext.parse(data), "SavedModel", SCHEMA, ENUMS)
            metas = [_meta_from_dict(m, path) for m in saved.get("meta_graphs", [])]
        else:
            metas = [read_meta_graph(raw, path) for raw in _meta_graph_bytes(data)]
    except Malformed as e:
        raise _corrupt(path, str(e)) from None
    if not metas:
        raise UnsupportedFormat(f"{path}: holds no MetaGraphDef, so it is no SavedModel")
    served = [m for m in metas if "serve" in m.tags]
    return SavedModel(path, (served or metas)[0])


def _meta_graph_bytes(data: bytes) -> list[bytes]:
    from .protobuf import as_bytes, fields

    return [as_bytes(value) for number, value in fields(data) if number == 2]


def _meta_from_dict(meta: dict[str, Any], path: str) -> MetaGraph:
    from .tf_graph import MetaGraph, graph_from_dict

    info = meta.get("meta_info_def", {})
    graph = graph_from_dict(meta.get("graph_def", {}))
    tags, version = info.get("tags", []), info.get("tensorflow_version")
    return MetaGraph(path, graph, meta.get("collection_def", {}), tags, version, meta.get("object_graph_def"))


def _keras_objects(directory: str, saved: SavedModel, nodes: list[dict[str, Any]] | None) -> dict[int, _Keras]:
    """Keras metadata per checkpoint object-graph node: keras_metadata.pb's nodes located by
    their node_path (`root.layer_with_weights-0.cell`), or else the SavedUserObject metadata of
    saved_model.pb's object graph (TF < 2.5), whose nodes are the checkpoint's."""
    found: dict[int, _Keras] = {}
    metadata_path = files.join(directory, _KERAS_METADATA)
    if nodes is not None and files.is_file(metadata_path):
        raw = read_bounded(metadata_path, _MAX_METADATA_BYTES, "Keras metadata file")
        try:
            entries = decode(raw, "SavedMetadata", SCHEMA).get("nodes", [])
        except Malformed as e:
            raise _corrupt(metadata_path, str(e)) from None
        for entry in entries:
            node_id = _follow(nodes, entry.get("node_path", ""))
            if node_id is not None:
                found[node_id] = _Keras(entry.get("identifier", ""), _json(entry.get("metadata", ""), metadata_path))
        return found
    object_graph = saved.meta.object_graph
    if object_graph is None or nodes is None or not _aligned(object_graph.get("nodes", []), nodes):
        return found
    for node_id, node in enumerate(object_graph.get("nodes", [])):
        user = node.get("user_object") or {}
        if user.get("metadata"):
            found[node_id] = _Keras(user.get("identifier", ""), _json(user["metadata"], saved.path))
    return found


def _follow(nodes: list[dict[str, Any]], node_path: str) -> int | None:
    steps = node_path.split(".")
    if not steps or steps[0] != "root":
        return None
    node = 0
    for step in steps[1:]:
        children = {c.get("local_name"): c.get("node_id", -1) for c in nodes[node].get("children", [])}
        node = children.get(step, -1)
        if not 0 <= node < len(nodes):
            return None
    return node


def _json(text: str, path: str) -> dict[str, Any]:
    import json  # for Keras metadata only: opening a TF2 checkpoint needs none of it

    try:
        value = json.loads(text, object_hook=_untupled)
    except (ValueError, RecursionError):
        raise _corrupt(path, "a Keras metadata entry is not valid JSON") from None
    return value if isinstance(value, dict) else {}


def _untupled(value: dict[str, Any]) -> Any:
    # tf_keras writes a tuple in its metadata as {"class_name": "__tuple__", "items": [...]}
    # (tf_keras/src/saving/legacy/saved_model/json_utils.py Encoder): a ConvLSTM's strides; .h5
    # configs keep a list.
    if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list) and len(value) == 2:
        return value["items"]
    return value


def _aligned(saved_nodes: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> bool:
    """Whether saved_model.pb's object graph and the checkpoint's number their nodes alike (TF
    writes both from one object walk; anything else is not trusted)."""
    if len(saved_nodes) != len(nodes):
        return False
    return all(
        [c.get("local_name") for c in a.get("children", [])] == [c.get("local_name") for c in b.get("children", [])]
        for a, b in zip(saved_nodes, nodes)
    )


def open_saved_model(
    directory: str | os.PathLike[str], saved_model_file: str | None = None
) -> RenamedStore | FrozenGraph:
    """Open a SavedModel directory (saved_model.pb + variables/) as a TensorStore.

    Without variables/, the graph's frozen-style Consts are the weights where it has them; a
    SavedModel with neither is refused in one line.
    """
    directory = os.fspath(directory)
    directory = display_url(directory).rstrip("/") if is_url(directory) else directory
    if saved_model_file is None:
        name = next((n for n in GRAPH_FILES if files.is_file(files.join(directory, n))), None)
        if name is None:
            raise FileNotFound(f"{directory}: no saved_model.pb in this directory, so it is no SavedModel")
        saved_model_file = files.join(directory, name)
    saved = read_saved_model(saved_model_file)
    prefix = files.join(directory, VARIABLES_DIRECTORY, "variables")
    if not files.is_file(prefix + ".index"):
        return _without_variables(directory, saved)
    # Keras' own saved metadata and the fingerprint belong with the graph (keras_metadata.pb since
    # TF 2.5, fingerprint.pb since TF 2.12: saved_model/constants.py).
    beside = [saved_model_file, *(p for n in _SIDE_FILES if files.is_file(p := files.join(directory, n)))]
    checkpoint = TFCheckpoint(prefix)
    try:
        nodes = read_object_graph(checkpoint)
        keras = _keras_objects(directory, saved, nodes)
        if nodes is None:
            # A TF1 SavedModel (saved_model.Builder): variables under their graph names, and the
            # graph saying what the weights do not.
            return RenamedStore(
                checkpoint,
                {},
                path=directory,
                format=FORMAT,
                hints=_graph_hints(saved),
                beside=beside,
                unsaid="its graph does not show it for this cell",
            )
        variable_names = _variable_names(saved, nodes, checkpoint, called=not keras)
        naming = _name_keys(nodes, keras, variable_names, only_positional=False)
        hints = {} if keras or saved.meta.object_graph else _graph_hints(saved)
        return RenamedStore(
            checkpoint, naming.names, path=directory, format=FORMAT, configs=naming.configs, hints=hints, beside=beside
        )
    except BaseException:
        checkpoint.close()
        raise


def _variable_names(
    saved: SavedModel, nodes: list[dict[str, Any]], checkpoint: TFCheckpoint, called: bool
) -> dict[int, str]:
    """Each variable's own name (SavedVariable.name); `called`: as the layers that call it name it,
    where the exported functions show that (_called_names)."""
    object_graph = saved.meta.object_graph
    if object_graph is None or not _aligned(object_graph.get("nodes", []), nodes):
        return {}
    names = {
        i: node["variable"]["name"]
        for i, node in enumerate(object_graph.get("nodes", []))
        if (node.get("variable") or {}).get("name")
    }
    if called:
        names.update(_called_names(saved, names, nodes, checkpoint))
    return names


# A name scope TF made unique in a function graph: the name, then `_<n>`
# (tensorflow/python/framework/ops.py Graph.unique_name).
_UNIQUIFIED = re.compile(r"_[0-9]+")


def _called_names(
    saved: SavedModel, names: dict[int, str], nodes: list[dict[str, Any]], checkpoint: TFCheckpoint
) -> dict[int, str]:
    """Variable names with the layers that call them, from the exported functions' name scopes.

    Keras 3's `model.export` tracks no layer objects, only flat lists of variables
    (keras/src/backend/tensorflow/export.py TFExportArchive._backend_track_layer), and a variable's
    own name is the scope it was built in (`enc/lstm_cell/kernel`): a nested model's layer is built
    before the model encloses it, and a TimeDistributed builds its layer inside its own scope
    (`td/lstm_1/lstm_cell/kernel`). The traced call says how the model runs it: a function's last
    inputs are the variables it captures, the object-graph nodes `bound_inputs` lists in order
    (tensorflow/python/saved_model/function_serialization.py), and the ReadVariableOp reading one is
    named by the scopes of the call, each layer's name made unique by TF (`functional_1/sub_1/enc_1/
    lstm_cell_1/Cast/ReadVariableOp`; a TimeDistributed calls its layer's `call`, no scope of its own:
    `functional_1/td_1/lstm_cell_1/…`). A variable is named by its own name's scopes that the call
    shows, after the call's enclosing layers but the outermost (the exported model itself), each
    without the suffix TF gave the variable's own layer: `sub/enc/lstm_cell/kernel`,
    `td/lstm_cell/kernel`. A variable no function reads, or whose layer the call does not show,
    keeps its name; one tracked twice (`_all_variables`) takes the name of the one read that
    stores the same bytes.
    """
    renamed: dict[int, str] = {}
    for node_id, read_in in _read_scopes(saved, names).items():
        name = names.get(node_id)
        called = [c for c in (_as_called(name, scope) for scope in read_in) if c is not None] if name else []
        if called:
            renamed[node_id] = max(called, key=lambda c: c[0])[1]  # the call that shows most of its layers
    by_bytes: dict[tuple[str, tuple[Any, ...]], set[str]] = {}
    for node_id, new_name in renamed.items():
        for _, key in _value_keys(nodes[node_id]):
            by_bytes.setdefault((names[node_id], _stored(checkpoint, key)), set()).add(new_name)
    for node_id, name in names.items():
        if node_id not in renamed:
            for _, key in _value_keys(nodes[node_id]):
                same = by_bytes.get((name, _stored(checkpoint, key)), set())
                if len(same) == 1:
                    renamed[node_id] = next(iter(same))
    return renamed


def _read_scopes(saved: SavedModel, names: dict[int, str]) -> dict[int, list[list[str]]]:
    """Per variable node, the name scopes of the ReadVariableOps that read it in each function."""
    concrete = (saved.meta.object_graph or {}).get("concrete_functions", {})
    if not concrete:
        return {}
    graph = saved.meta.graph
    scopes: dict[int, list[list[str]]] = {}
    for function_name, function in concrete.items():
        table = graph.functions.get(function_name)
        bound = list(function.get("bound_inputs", []) if isinstance(function, dict) else [])
        if table is None or not bound or len(bound) > len(table.args):
            continue
        captured = dict(zip(table.args[len(table.args) - len(bound) :], bound))
        for i, op in enumerate(table.ops):
            if op == "ReadVariableOp":
                inputs = table.inputs(i)
                node_id = captured.get(inputs[0]) if inputs else None
                if node_id in names:
                    scopes.setdefault(node_id, []).append(table.names[i].split("/")[:-1])
    return scopes


def _as_called(name: str, scope: list[str]) -> tuple[int, str] | None:
    """(how many of its layers the call shows, the name) of a variable `name` read in `scope`, or
    None when the call does not show the variable's own layer (see _called_names)."""
    own = name.split("/")
    layers, leaf = own[:-1], own[-1]
    kept: list[str] = []
    at = len(scope)  # the scopes left to match, scope[:at]; op scopes (`Cast`) follow the layers'
    first = None
    for layer in reversed(layers):
        match = next((k for k in range(at - 1, -1, -1) if _is_scope_of(scope[k], layer)), None)
        if match is not None:
            kept.insert(0, layer)
            at, first = match, match
    if first is None or not layers or kept[0] != layers[0]:
        return None
    suffix = scope[first][len(layers[0]) :]
    enclosing = [
        s[: -len(suffix)] if suffix and s.endswith(suffix) and len(s) > len(suffix) else s for s in scope[1:first]
    ]
    return len(kept), "/".join([*enclosing, *kept, leaf])


def _is_scope_of(scope: str, layer: str) -> bool:
    return scope == layer or (scope.startswith(layer) and _UNIQUIFIED.fullmatch(scope[len(layer) :]) is not None)


def _stored(checkpoint: TFCheckpoint, key: str) -> tuple[Any, ...]:
    """What tells two keys' values apart without reading them: the index entry's dtype, shape,
    size and CRC-32C (a key the index lacks: itself)."""
    index = checkpoint._keys.get(key)
    if index is None:
        return (key,)
    entry = checkpoint._entries[index]
    return (entry.dtype, entry.shape, entry.size, entry.crc32c)


def _graph_hints(saved: SavedModel) -> dict[str, LayerHint]:
    from .tf_graph import layer_hints

    try:
        return layer_hints(saved.meta.graph)
    except Malformed as e:
        raise _corrupt(saved.path, str(e)) from None


def _without_variables(directory: str, saved: SavedModel) -> FrozenGraph:
    from .frozen_graph import FrozenGraph

    store = FrozenGraph(directory, saved.meta.graph, where=saved.path, kind="saved_model")
    if not store.tensors():
        raise UnsupportedFormat(
            f"{directory}: a SavedModel without variables/ (no variables/variables.index), and its graph "
            "holds no weights; copy the variables/ directory beside saved_model.pb"
        )
    store.format = FORMAT
    return store
