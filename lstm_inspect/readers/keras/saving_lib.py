"""The Keras 3 layout (keras/src/saving/saving_lib.py): ``layers/<auto_name>/.../vars/<N>``.

Variables are numbered, not named, and containers name their members by class (``lstm``,
``lstm_1``), not by the user's layer name: the walk below maps both back through the model config
where there is one (a ``.keras`` file's config.json), by class and shape where there is none (a
bare ``.weights.h5``).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import field
from typing import Any

from ...errors import CorruptFile
from ...records import record
from ..hdf5 import Dataset, Group
from .model_config import (
    ConfigNode,
    bidirectional_half,
    config_node,
    node_name,
    stacked_cell_name,
    stacked_cells,
    sublayers,
    wrapped_layer,
)
from .store import TREE_ERRORS, Entry, dataset_paths, decode_text, entry_for, natural_key, unique

__all__ = ["LAYER_CONTAINERS", "keras3_entries"]


# Container attributes whose members Keras 3 names by class ("lstm", "lstm_1"), not by layer name
# (saving_lib._save_container_state). Keras 2.13–2.15 wrote `_layer_checkpoint_dependencies`
# where Keras 3 writes `layers` (saving_lib H5IOStore.get keeps a fallback for it).
LAYER_CONTAINERS = ("layers", "_layer_checkpoint_dependencies")


# Root attributes of a Keras 3 file that hold training state, not layers: kept under their path.
_STATE_GROUPS = ("metrics", "compile_metrics", "_compile_metrics", "loss", "compile_loss", "_compile_loss")


# The order in which a layer creates (and Keras 3 saves) its variables, per class: Layer's default
# save_own_variables stores trainable then non-trainable variables, numbered in that order
# (keras/src/layers/layer.py). A rule only names a group when the count matches.
def _dense_vars(config: dict[str, Any]) -> list[str]:
    return ["kernel", "bias"] if config.get("use_bias", True) else ["kernel"]


def _rnn_cell_vars(config: dict[str, Any]) -> list[str]:
    return ["kernel", "recurrent_kernel", "bias"] if config.get("use_bias", True) else ["kernel", "recurrent_kernel"]


def _batch_norm_vars(config: dict[str, Any]) -> list[str]:
    trainable = [n for n, key in (("gamma", "scale"), ("beta", "center")) if config.get(key, True)]
    return [*trainable, "moving_mean", "moving_variance"]


def _layer_norm_vars(config: dict[str, Any]) -> list[str]:
    rms = bool(config.get("rms_scaling", False))
    gamma = ["gamma"] if config.get("scale", True) or rms else []
    beta = ["beta"] if config.get("center", True) and not rms else []
    return gamma + beta


_VAR_NAMES: dict[str, Any] = {
    "Dense": _dense_vars,
    "EinsumDense": lambda c: ["kernel", "bias"] if c.get("bias_axes") else ["kernel"],
    "Conv1D": _dense_vars,
    "Conv2D": _dense_vars,
    "Conv3D": _dense_vars,
    "Conv1DTranspose": _dense_vars,
    "Conv2DTranspose": _dense_vars,
    "Conv3DTranspose": _dense_vars,
    "Embedding": lambda c: ["embeddings"],
    "BatchNormalization": _batch_norm_vars,
    "LayerNormalization": _layer_norm_vars,
    "LSTMCell": _rnn_cell_vars,
    "GRUCell": _rnn_cell_vars,
    "SimpleRNNCell": _rnn_cell_vars,
    "ConvLSTMCell": _rnn_cell_vars,
}


# An RNN layer keeps its variables in its `cell` attribute; the layer config is the cell config.
_RNN_CELL_CLASS = {
    "LSTM": "LSTMCell",
    "GRU": "GRUCell",
    "SimpleRNN": "SimpleRNNCell",
    "ConvLSTM1D": "ConvLSTMCell",
    "ConvLSTM2D": "ConvLSTMCell",
    "ConvLSTM3D": "ConvLSTMCell",
}


def _to_snake_case(name: str) -> str:
    # keras/src/utils/naming.py to_snake_case: how saving_lib names a container's members.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# Without a config, the auto name's class word ("dense" in "dense_3") is the only hint of the class.
_CLASS_BY_WORD = {_to_snake_case(c): c for c in _VAR_NAMES}


@record
class _LayerMaps:
    """The sublayers of a model's config, by Keras 3 auto name, by user name, and their order."""

    count: int
    by_auto_name: dict[str, dict[str, Any]]
    by_user_name: dict[str, dict[str, Any]]
    position: dict[int, int]


@record
class _Walk:
    """What one walk over a Keras 3 file collects, and what it remembers so as to do each thing once."""

    entries: list[Entry] = field(default_factory=list)
    # Keras saves each object once, but HDF5 lets a group be linked from many places, or from
    # inside itself: each group is walked once, so that a small file cannot make the walk endless.
    seen: set[Hashable] = field(default_factory=set)
    # The layer maps of a config node, made once however many containers refer to that node.
    layer_maps: dict[int, tuple[dict[str, Any], _LayerMaps]] = field(default_factory=dict)

    def first_visit(self, group: Group) -> bool:
        if group.key in self.seen:
            return False
        self.seen.add(group.key)
        return True


def keras3_entries(h5: Group, model_config: dict[str, Any] | None, where: str) -> list[Entry]:
    try:
        walk = _Walk()
        _walk_saveable(h5, [], config_node(model_config), None, "model", walk)
    except TREE_ERRORS as e:
        raise CorruptFile(f"{where}: cannot read the HDF5 structure ({e}); the file is damaged") from None
    return unique(walk.entries)


def _walk_saveable(
    group: Group, scope: list[str], node: ConfigNode | None, auto_name: str | None, role: str, walk: _Walk
) -> None:
    """One saved object: its own `vars`, then its children the way saving_lib._save_state wrote them."""
    if not walk.first_visit(group):
        return
    out = walk.entries
    own = group.get("vars")
    if isinstance(own, Group):
        members = {k: v for k, v in own.items() if isinstance(v, Dataset)}
        keys = sorted(members, key=natural_key)
        datasets = [members[k] for k in keys]
        names: list[str | None] = list(_var_names(node, auto_name, role, [d.shape for d in datasets]) or [])
        for key, ds, name in zip(keys, datasets, names or [None] * len(keys)):
            out.append(entry_for("/".join([*scope, name or f"vars/{key}"]), ds))

    children = {k: v for k, v in group.items() if k != "vars" and isinstance(v, Group)}
    # Forward before backward reads better than saving_lib's alphabetical attribute order.
    order = ["cell", "layer", "forward_layer", "backward_layer", *LAYER_CONTAINERS]
    for key in sorted(children, key=lambda k: (order.index(k) if k in order else len(order), natural_key(k))):
        _walk_child(key, children[key], scope, node, role, walk)


def _walk_child(key: str, child: Group, scope: list[str], node: ConfigNode | None, role: str, walk: _Walk) -> None:
    """One attribute of a saved object, as saving_lib._save_state wrote it."""
    if role == "model" and not scope and ("optimizer" in key or key in _STATE_GROUPS):
        for path in dataset_paths(child):
            stored = child[path]
            if isinstance(stored, Dataset):
                walk.entries.append(entry_for(stored.name.lstrip("/"), stored, layer=False))
    elif key in LAYER_CONTAINERS:
        _walk_layer_container(child, scope, node, walk)
    elif key == "cell":
        _walk_saveable(child, scope, _cell_node(node), None, "cell", walk)
    elif key == "cells" and role == "cell":
        _walk_stacked_cells(child, scope, node, walk)
    elif key == "layer" and role == "layer":
        # A wrapper's layer (TimeDistributed: keras/src/layers/core/wrapper.py): its weights are the wrapper's.
        _walk_saveable(child, scope, wrapped_layer(node), None, "layer", walk)
    elif key in ("forward_layer", "backward_layer"):
        direction = key.split("_", 1)[0]
        _walk_saveable(child, [*scope, direction], bidirectional_half(node, direction), None, "layer", walk)
    else:
        sub = config_node(node.config.get(key)) if node is not None else None
        _walk_saveable(child, [*scope, key], sub, None, "attr", walk)


def _layer_maps(node: ConfigNode | None, walk: _Walk) -> _LayerMaps:
    raw = node.raw if node else {}
    cached = walk.layer_maps.get(id(raw))
    if cached is not None and cached[0] is raw:
        return cached[1]
    layer_nodes = [n for n in (sublayers(raw) if node else None) or [] if config_node(n) is not None]
    maps = _LayerMaps(
        len(layer_nodes),
        _auto_names(layer_nodes),
        {name: n for n in layer_nodes if (name := node_name(n))},
        {id(n): i for i, n in enumerate(layer_nodes)},
    )
    walk.layer_maps[id(raw)] = (raw, maps)
    return maps


def _walk_layer_container(group: Group, scope: list[str], node: ConfigNode | None, walk: _Walk) -> None:
    if not walk.first_visit(group):
        return
    maps = _layer_maps(node, walk)
    by_auto_name, by_user_name, position = maps.by_auto_name, maps.by_user_name, maps.position
    resolved = []
    for key, child in group.items():
        if not isinstance(child, Group):
            continue
        # Keras >= 3.? writes the object's own name next to its variables; the config mapping
        # below covers the files written before that.
        own = child.get("vars")
        user_name = decode_text(own.attrs.get("name")) if isinstance(own, Group) else None
        sub = by_user_name.get(user_name) if user_name else None
        if sub is None:
            sub = by_auto_name.get(key)
            if sub is not None and user_name is None:
                user_name = node_name(sub)
        rank = position.get(id(sub), maps.count) if sub is not None else maps.count
        resolved.append((rank, _creation_order(child), key, child, user_name or key, sub))
    for _, _, key, child, user_name, sub in sorted(resolved, key=lambda r: (r[0], r[1])):
        _walk_saveable(child, [*scope, user_name], config_node(sub), key, "layer", walk)


# How many objects below a group _creation_order looks at: a layer's variables are a few datasets.
_ORDER_PROBE = 256


def _creation_order(group: Group) -> Any:
    """Where a group sits in the order Keras saved it: HDF5 lists members by name, but allocates
    each dataset's object header after the last (a dataset's header is larger than the small
    blocks libhdf5 frees when a group's heap grows, which a later small group header may reuse),
    so the lowest header address of the datasets below a group is the order saving_lib._save_state
    wrote them in, which is the model's layer order: what a file without a config is listed in.
    A group with no dataset (or a reader without addresses) sorts by its own key, then its name."""
    lowest: int | None = None
    pending, seen = [group], {group.key}
    while pending and len(seen) <= _ORDER_PROBE:
        for _, child in pending.pop().items():
            if isinstance(child, Group):
                if child.key not in seen:
                    seen.add(child.key)
                    pending.append(child)
            elif isinstance(child, Dataset) and isinstance(child.key, int):
                lowest = child.key if lowest is None else min(lowest, child.key)
    if lowest is not None:
        return (0, lowest)
    own = group.key if isinstance(group.key, int) else natural_key(str(group.key))
    return (1, own)


def _walk_stacked_cells(group: Group, scope: list[str], node: ConfigNode | None, walk: _Walk) -> None:
    """The `cells` of a StackedRNNCells, each named by its place in the stack (model_config.stacked_cell_name):
    the members are named by class (`lstm_cell`, `lstm_cell_1`, `gru_cell`), in the config's order
    of the cells where there is one, else in the order they were saved."""
    if not walk.first_visit(group):
        return
    cells = stacked_cells(node) or []
    by_auto_name = {name: index for index, name in enumerate(_auto_names([cell.raw for cell in cells]))}
    members = [(key, child) for key, child in group.items() if isinstance(child, Group)]
    members.sort(key=lambda m: (by_auto_name.get(m[0], len(cells)), _creation_order(m[1])))
    for index, (key, child) in enumerate(members):
        cell = cells[by_auto_name[key]] if key in by_auto_name else None
        _walk_saveable(child, [*scope, stacked_cell_name(index)], cell, key, "cell", walk)


def _auto_names(layer_nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Keras 3's container names: class in snake case, numbered from the second of a class on
    (saving_lib._save_container_state), in the order of the model's layers."""
    names: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for raw in layer_nodes:
        base = _to_snake_case(raw["class_name"])
        if base in counts:
            counts[base] += 1
            names[f"{base}_{counts[base]}"] = raw
        else:
            counts[base] = 0
            names[base] = raw
    return names


def _var_names(node: ConfigNode | None, auto_name: str | None, role: str, shapes: list[Any]) -> list[str] | None:
    if node is not None:
        rule = _VAR_NAMES.get(node.class_name)
        if rule is not None:
            names = rule(node.config)
            return names if len(names) == len(shapes) else None
    elif auto_name is not None:
        cls = _CLASS_BY_WORD.get(re.sub(r"_\d+$", "", auto_name))
        if cls is not None:
            names = _VAR_NAMES[cls]({})
            return names if len(names) == len(shapes) else None
    if role == "cell":
        return _rnn_names_by_shape(shapes)
    return None


def _rnn_names_by_shape(shapes: list[Any]) -> list[str] | None:
    """An RNN cell's variables without a config: kernel (in, g*u), recurrent_kernel (u, g*u) and
    bias (g*u,), or (2, g*u) for GRU(reset_after=True); a ConvLSTM cell's kernels lead with the
    same spatial sizes (conv_lstm.py: kernel_size + (in, 4u), kernel_size + (u, 4u))."""
    if len(shapes) not in (2, 3) or any(s is None for s in shapes):
        return None
    kernel, recurrent = tuple(shapes[0]), tuple(shapes[1])
    if len(kernel) < 2 or len(kernel) != len(recurrent) or kernel[:-2] != recurrent[:-2]:
        return None
    if kernel[-1] != recurrent[-1] or recurrent[-2] == 0 or recurrent[-1] % recurrent[-2] != 0:
        return None
    if len(shapes) == 2:
        return ["kernel", "recurrent_kernel"]
    if tuple(shapes[2]) in ((recurrent[-1],), (2, recurrent[-1])):
        return ["kernel", "recurrent_kernel", "bias"]
    return None


def _cell_node(node: ConfigNode | None) -> ConfigNode | None:
    """What an RNN layer's `cell` holds: the config of its cell (a StackedRNNCells' node, whose
    `cells` model_config.stacked_cells reads through the layer's node), or for an LSTM, GRU or
    ConvLSTM layer the layer's own config under its cell's class."""
    if node is None:
        return None
    if stacked_cells(node) is not None:
        return node
    explicit = config_node(node.config.get("cell"))
    if explicit is not None:
        return explicit
    cell_class = _RNN_CELL_CLASS.get(node.class_name)
    return ConfigNode(cell_class, node.config, node.raw) if cell_class else None
