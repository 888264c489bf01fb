"""The legacy HDF5 layout of Keras 1, Keras 2 (tf.keras, tf_keras) and Keras 3's own legacy `.h5`.

A full save keeps layers under ``model_weights/`` and the model config in the root attribute
``model_config``; a weights-only save keeps layers at the root. The root (or ``model_weights``)
lists its layers in the attribute ``layer_names``, each layer group lists its datasets in
``weight_names`` (tf_keras/src/saving/legacy/hdf5_format.py save_weights_to_hdf5_group;
keras/src/legacy/saving/legacy_h5_format.py for Keras 3).
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import CorruptFile
from ..hdf5 import Dataset, Group
from .model_config import (
    ConfigNode,
    bidirectional_inner_name,
    config_node,
    layer_nodes_by_name,
    parse_config,
    stacked_cell_name,
    wrapped_layer,
)
from .store import Entry, dataset_paths, decode_text, entry_for, natural_key

__all__ = [
    "legacy_layer_entries",
    "legacy_optimizer_entries",
    "model_config_attr",
    "name_stacked_cells",
    "string_list_attr",
]


# TF appends the output index to variable names ("kernel:0"); Keras 3 and Theano do not.
_OUTPUT_INDEX = re.compile(r":\d+$")


# The cell level of an RNN layer's weights ("lstm_cell", "gru_cell_1", Keras 3's attribute "cell").
_CELL_LEVEL = re.compile(r"(?:\w+_)?cell(?:_\d+)?")


def legacy_layer_entries(group: Group, model_config: dict[str, Any] | None, where: str) -> list[Entry]:
    layer_names = string_list_attr(group, "layer_names")
    if layer_names is None:
        layer_names = sorted(
            (k for k, g in group.items() if isinstance(g, Group) and "weight_names" in g.attrs),
            key=natural_key,
        )
    nodes = layer_nodes_by_name(model_config)
    entries: list[Entry] = []
    for layer in layer_names:
        layer_group = group.get(layer)
        if not isinstance(layer_group, Group):
            raise CorruptFile(
                f"{where}: layer {layer!r} is listed in `layer_names` but has no group in the file; "
                "the file is incomplete, re-save it"
            )
        weight_names = string_list_attr(layer_group, "weight_names") or []
        relative = _legacy_relative_names(layer, weight_names, nodes.get(layer))
        for weight_name, rel in zip(weight_names, relative):
            entries.append(_dataset_entry(layer_group, weight_name, f"{layer}/{rel}", where))
    # tf_keras and Keras 3 add the model's own (non-layer) variables here, usually none.
    top = group.get("top_level_model_weights")
    if isinstance(top, Group):
        for weight_name in string_list_attr(top, "weight_names") or []:
            entries.append(_dataset_entry(top, weight_name, _OUTPUT_INDEX.sub("", weight_name), where, layer=False))
    return entries


def legacy_optimizer_entries(group: Group, where: str) -> list[Entry]:
    # Optimizer slots keep their whole path so nothing mistakes them for layer weights.
    names = string_list_attr(group, "weight_names")
    if names is None:
        names = dataset_paths(group)
    return [_dataset_entry(group, n, f"optimizer_weights/{n}", where, layer=False) for n in names]


def _legacy_relative_names(layer: str, weight_names: list[str], node: dict[str, Any] | None) -> list[str]:
    """A layer's weight names relative to the layer: "kernel", "forward/bias", "enc/kernel" (nested
    model), "cell_0/kernel" (a stacked RNN's first cell), Keras 1 "W_i"."""
    inner = bidirectional_inner_name(node)
    split = [_legacy_parts(layer, name, inner) for name in weight_names]
    _unwrap(split, config_node(node))
    _name_directions(split)
    stacked = name_stacked_cells(split)
    dropped = [
        [p for i, p in enumerate(parts[:-1]) if i in keep or not _CELL_LEVEL.fullmatch(p)] + parts[-1:]
        for parts, keep in zip(split, stacked)
    ]
    # Cell levels that tell weights apart (two cells under one layer, stacked some other way) stay.
    if len({tuple(p) for p in dropped}) == len(dropped):
        split = dropped
    return ["/".join(parts) for parts in split]


def _unwrap(split: list[list[str]], node: ConfigNode | None) -> None:
    """Drop the wrapped layer's own name from a TimeDistributed's weight names: Keras 3 writes
    `td/lstm/lstm_cell/kernel`, tf_keras `td/lstm_cell/kernel`; both are the weights of `td`."""
    inner = wrapped_layer(node)
    name = inner.config.get("name") if inner is not None else None
    if not isinstance(name, str):
        return
    for parts in split:
        if len(parts) > 1 and parts[0] == name:
            del parts[0]


# How the stack of an RNN([cell, ...]) scopes its cells' variables: `rnn/stacked_rnn_cells/lstm_cell_1/kernel`
# (StackedRNNCells is a layer named after its class, each cell a layer named after its own).
_STACK_LEVEL = re.compile(r"stacked_rnn_cells(?:_\d+)?")


def name_stacked_cells(split: list[list[str]]) -> list[set[int]]:
    """Rename `stacked_rnn_cells/<cell>` to `cell_<i>`, i the cell's place in its stack (the order
    the layer lists its weights in: cell by cell); per name, the positions of the renamed parts,
    which no cell-level rule may drop."""
    stacks: dict[tuple[str, ...], dict[str, int]] = {}
    renamed: list[set[int]] = []
    for parts in split:
        kept: set[int] = set()
        for i, part in enumerate(parts[:-2]):
            if _STACK_LEVEL.fullmatch(part):
                cells = stacks.setdefault(tuple(parts[:i]), {})
                index = cells.setdefault(parts[i + 1], len(cells))
                parts[i : i + 2] = [stacked_cell_name(index)]
                kept.add(i)
                break
        renamed.append(kept)
    return renamed


def _legacy_parts(layer: str, weight_name: str, bidirectional_inner: str | None) -> list[str]:
    base = _OUTPUT_INDEX.sub("", weight_name)
    parts = [p for p in base.split("/") if p] or [weight_name]
    if len(parts) == 1:
        name = parts[0]
        # Keras 1 names variables "<layer>_<weight>" without a scope: lstm_1_W_i, dense_1_b
        # (keras/layers/recurrent.py LSTM.build, Keras 1.2). Its Bidirectional renames the two
        # copies "forward_<inner>" and "backward_<inner>" before they build (keras/layers/wrappers.py).
        if name.startswith(layer + "_") and len(name) > len(layer) + 1:
            return [name[len(layer) + 1 :]]
        if bidirectional_inner:
            for direction in ("forward", "backward"):
                prefix = f"{direction}_{bidirectional_inner}_"
                if name.startswith(prefix) and len(name) > len(prefix):
                    return [direction, name[len(prefix) :]]
        return parts
    # Keras 2 variables live in the layer's name scope ("enc/lstm_cell/kernel:0"); Keras 3's legacy
    # writer uses variable paths, which may start with the enclosing model's name
    # ("sequential/head/kernel"); TF1 graphs may uniquify the scope ("enc_1/...").
    for i, part in enumerate(parts[:-1]):
        if part == layer:
            return parts[i + 1 :]
    if re.fullmatch(re.escape(layer) + r"_\d+", parts[0]):
        return parts[1:]
    return parts


def _name_directions(split: list[list[str]]) -> None:
    """Rename Bidirectional halves "forward_lstm"/"backward_lstm_1" to "forward"/"backward".

    Keras names the copies "forward_" + name and "backward_" + name (tf_keras
    layers/rnn/bidirectional.py); a part is renamed only when the same position holds both
    directions, so a user layer that happens to be called "forward_x" keeps its name.
    """
    seen = {
        (tuple(parts[:i]), part.split("_", 1)[0])
        for parts in split
        for i, part in enumerate(parts[:-1])
        if part.startswith(("forward_", "backward_"))
    }
    for parts in split:
        original = list(parts)
        for i, part in enumerate(original[:-1]):
            if part.startswith(("forward_", "backward_")):
                direction = part.split("_", 1)[0]
                other = "backward" if direction == "forward" else "forward"
                if (tuple(original[:i]), other) in seen:
                    parts[i] = direction


def _dataset_entry(group: Group, relative_path: str, name: str, where: str, layer: bool = True) -> Entry:
    ds = group.get(relative_path)
    if not isinstance(ds, Dataset):
        raise CorruptFile(
            f"{where}: {group.name.lstrip('/') or 'the root'} lists weight {relative_path!r} but the file "
            "has no such dataset; the file is incomplete or damaged, re-save it"
        )
    return entry_for(name, ds, layer)


def string_list_attr(obj: Group, name: str) -> list[str] | None:
    """A list-of-strings attribute, reassembled when Keras split it into `name0`, `name1`, ...
    to stay under HDF5's 64 KiB header limit (hdf5_format.py load_attributes_from_hdf5_group)."""
    attrs = obj.attrs
    if name in attrs:
        chunks = [attrs[name]]
    elif f"{name}0" in attrs:
        chunks = []
        while f"{name}{len(chunks)}" in attrs:
            chunks.append(attrs[f"{name}{len(chunks)}"])
    else:
        return None
    # A value is a scalar or a flat list (hdf5/tree.py Node.attrs).
    return [decode_text(item) or "" for chunk in chunks for item in (chunk if isinstance(chunk, list) else [chunk])]


def model_config_attr(h5: Group, where: str) -> dict[str, Any] | None:
    raw = h5.attrs.get("model_config")
    if raw is None:
        return None
    return parse_config(decode_text(raw) or "", f"{where}: the `model_config` attribute")
