"""Model configs (Keras 1/2/3, Sequential and Functional, nested): what config.json or the
`model_config` attribute says of each layer, checked against budgets before json parses it."""

from __future__ import annotations

import bisect
import copy
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ...errors import CorruptFile, warn
from ...records import record
from ..base import LayerConfig
from .store import Entry

__all__ = [
    "STACKED_CELLS",
    "ConfigNode",
    "config_node",
    "layer_configs",
    "node_name",
    "parse_config",
    "rnn_cell",
    "stacked_cell_name",
    "stacked_cells",
    "sublayers",
    "wrapped_layer",
]

# Budgets for the JSON a model file holds, checked before it is decompressed or parsed. A Keras
# layer's config takes 1-3 KB of JSON and 30-100 values (the fixtures' LSTM, Bidirectional and
# Dense configs: 1.7 KB and 70 values a layer, inbound nodes included), so 64 MiB and 4 million
# values hold some 30,000 layers, more than any real model has; json.loads of a config within
# both costs at most about a second and a few hundred MB, where a 240 MB config of nothing but
# `[]` costs 6.5 GB. metadata.json holds a version and a date.
MAX_CONFIG_BYTES = 64 << 20
_MAX_CONFIG_VALUES = 4_000_000  # a JSON value starts after each `[`, `{` and `,`


# Keras configs nest a few levels per nested model; a config nested deeper than this was made to
# overflow the stack of whatever walks or copies it.
_MAX_CONFIG_DEPTH = 200


def parse_config(text: str | bytes, what: str) -> dict[str, Any]:
    """A model config, refused before json.loads where it exceeds the budgets (MAX_CONFIG_BYTES, _MAX_CONFIG_VALUES)."""
    limit = MAX_CONFIG_BYTES
    if len(text) > limit:
        raise CorruptFile(f"{what} is larger than {limit} bytes, more than a model config can be; the file is damaged")
    marks: tuple[Any, ...] = (b"[", b"{", b",") if isinstance(text, bytes) else ("[", "{", ",")
    values = sum(text.count(mark) for mark in marks)
    if values > _MAX_CONFIG_VALUES:
        raise CorruptFile(
            f"{what} holds some {values} JSON values, more than the {_MAX_CONFIG_VALUES} a model config can; "
            "the file is damaged"
        )
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CorruptFile(f"{what} is not valid JSON ({e}); the file is damaged, re-save the model") from None
    if not isinstance(config, dict):
        raise CorruptFile(f"{what} is not a JSON object; the file is damaged, re-save the model")
    level, depth = [config], 0
    while level:
        depth += 1
        if depth > _MAX_CONFIG_DEPTH:
            raise CorruptFile(f"{what} nests deeper than {_MAX_CONFIG_DEPTH} levels; the file is damaged")
        level = [v for c in level if isinstance(c, (dict, list)) for v in (c.values() if isinstance(c, dict) else c)]
    return config


@record
class ConfigNode:
    """What config.json says about the object saved at one group."""

    class_name: str
    config: dict[str, Any]
    raw: dict[str, Any]


def config_node(raw: Any) -> ConfigNode | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("class_name"), str):
        return None
    config = raw.get("config")
    # Keras 1 and Keras 2.0–2.2.2 Sequential configs are the bare list of layers.
    return ConfigNode(raw["class_name"], config if isinstance(config, dict) else {}, raw)


def node_name(raw: dict[str, Any]) -> str | None:
    config = raw.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    return raw["name"] if isinstance(raw.get("name"), str) else None


def sublayers(raw: dict[str, Any] | None) -> list[Any] | None:
    if raw is None:
        return None
    config = raw.get("config")
    if isinstance(config, list):
        return config
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        return config["layers"]
    return None


def layer_nodes_by_name(model_config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    layers = sublayers(model_config) or []
    return {name: n for n in layers if config_node(n) is not None and (name := node_name(n))}


def bidirectional_inner_name(raw: dict[str, Any] | None) -> str | None:
    node = config_node(raw)
    if node is None or node.class_name != "Bidirectional":
        return None
    inner = node.config.get("layer")
    return node_name(inner) if isinstance(inner, dict) else None


def bidirectional_half(node: ConfigNode | None, direction: str) -> ConfigNode | None:
    if node is None or node.class_name != "Bidirectional":
        return None
    forward = config_node(node.config.get("layer"))
    if direction == "forward" or forward is None:
        return forward
    backward = config_node(node.config.get("backward_layer"))
    if backward is not None:
        return backward
    # Without an explicit backward_layer, Keras builds it from the forward config with
    # go_backwards flipped and the name prefixed (tf_keras layers/rnn/bidirectional.py).
    config = dict(forward.config)
    config["go_backwards"] = not config.get("go_backwards", False)
    if isinstance(config.get("name"), str):
        config["name"] = "backward_" + config["name"]
    return ConfigNode(forward.class_name, config, {**forward.raw, "config": config})


# The stack of an RNN([cell, cell, ...]) (keras/src/layers/rnn/stacked_rnn_cells.py, tf_keras alike):
# its cells have no names of their own that every format keeps (a .keras names them by class,
# `lstm_cell_1`; an .h5 by the cell's name scope), so each is named by its place: `rnn/cell_0`.
STACKED_CELLS = "StackedRNNCells"


def stacked_cell_name(index: int) -> str:
    """The name of the index-th cell of a stacked RNN, under the RNN layer's own: "cell_0"."""
    return f"cell_{index}"


def stacked_cells(node: ConfigNode | None) -> list[ConfigNode] | None:
    """The cells of an RNN layer whose cell is a StackedRNNCells (or a list of cells), in order; None otherwise."""
    if node is None:
        return None
    cell = node.config.get("cell")
    stack = config_node(cell)
    if stack is not None and stack.class_name == STACKED_CELLS:
        cell = stack.config.get("cells")
    if not isinstance(cell, list):
        return None
    return [c for c in (config_node(raw) for raw in cell) if c is not None]


def wrapped_layer(node: ConfigNode | None) -> ConfigNode | None:
    """The layer a TimeDistributed (or any other single-layer Wrapper but Bidirectional) wraps: its
    weights are the wrapped layer's, named after the wrapper (keras/src/layers/core/wrapper.py
    keeps it as the attribute `layer`)."""
    if node is None or node.class_name == "Bidirectional":
        return None
    return config_node(node.config.get("layer"))


def rnn_cell(node: ConfigNode | None) -> ConfigNode | None:
    """The one cell of an RNN(cell) layer (keras.layers.RNN(LSTMCell(16))), None for any other layer."""
    cell = config_node(node.config.get("cell")) if node is not None else None
    return None if cell is None or cell.class_name == STACKED_CELLS else cell


def _leaf_configs(node: ConfigNode, scope: str, shown: str | None = None) -> Iterator[tuple[str, ConfigNode, str]]:
    """(scope, the config of what holds the weights there, the class name to show) for one layer:
    a Bidirectional's halves, a wrapper's layer under the wrapper's name, a stacked RNN's cells,
    an RNN(cell) as its cell; `shown` wraps the class name ("TimeDistributed(LSTM)")."""
    nested = sublayers(node.raw)
    if nested is not None:
        for raw in nested:
            child = config_node(raw)
            name = node_name(raw) if child is not None else None
            if child is not None and name:
                yield from _leaf_configs(child, f"{scope}/{name}" if scope else name)
        return
    if node.class_name == "Bidirectional":
        for direction in ("forward", "backward"):
            half = bidirectional_half(node, direction)
            if half is not None:
                yield from _leaf_configs(half, f"{scope}/{direction}")
        return
    inner = wrapped_layer(node)
    if inner is not None:
        yield from _leaf_configs(inner, scope, f"{node.class_name}({{}})")
        return
    wrap = shown or "{}"
    cells = stacked_cells(node)
    if cells is not None:
        for index, member in enumerate(cells):
            yield f"{scope}/{stacked_cell_name(index)}", member, wrap.format(member.class_name)
        return
    cell = rnn_cell(node)
    if cell is not None:
        yield scope, cell, wrap.format(f"{node.class_name}({cell.class_name})")
        return
    yield scope, node, wrap.format(node.class_name)


# Classes whose layers hold weights (Keras' own; a config naming one of these with no weights in the
# file is a file that lost them). Layers such as InputLayer, Dropout or Lambda hold none.
_WEIGHTED = re.compile(r"(?i)(lstm|gru|rnn|dense|conv|embedding|normalization)")


def layer_configs(
    model_config: dict[str, Any] | None,
    entries: Sequence[Entry],
    keras_version: str | None,
    where: str | None = None,
) -> dict[str, LayerConfig]:
    """LayerConfig per logical scope, for the scopes that hold weights. With `where` (the file, for
    the message), warns in one line of layers the config names whose weights the file lacks and of
    layer weights no config entry names."""
    found: dict[str, LayerConfig] = {}
    # Keras 1 and 2.0–2.2.2 Sequential configs may be a bare list of layers under "config".
    root = config_node(model_config) or (ConfigNode("Model", {}, model_config) if model_config else None)
    if root is not None and sublayers(root.raw) is not None:
        for scope, node, shown in _leaf_configs(root, ""):
            found[scope] = LayerConfig(shown, copy.deepcopy(node.config), keras_version)
    names = sorted(e.name for e in entries)

    def holds_weights(scope: str) -> bool:
        # The first name at or after "scope/" starts with it if any does (a sorted search, so that
        # many layers times many weights stays cheap).
        i = bisect.bisect_left(names, scope + "/")
        return i < len(names) and names[i].startswith(scope + "/")

    held = {scope: cfg for scope, cfg in found.items() if holds_weights(scope)}
    if found and where is not None:
        _check_weights(found, held, entries, where)
    return held


def _check_weights(
    found: dict[str, LayerConfig], held: dict[str, LayerConfig], entries: Sequence[Entry], where: str
) -> None:
    missing = [scope for scope, cfg in found.items() if scope not in held and _WEIGHTED.search(cfg.class_name)]
    scopes = sorted(found)

    def named(name: str) -> bool:
        i = bisect.bisect_right(scopes, name) - 1
        return i >= 0 and name.startswith(scopes[i] + "/")

    orphans = list(dict.fromkeys(e.name.rpartition("/")[0] or e.name for e in entries if e.layer and not named(e.name)))
    if not (missing or orphans):
        return
    said = []
    if missing:
        layers = ", ".join(f"{scope!r} ({found[scope].class_name})" for scope in missing[:_LISTED])
        said.append(f"the model config names {_more(layers, missing)} but the file holds no weights for it")
    if orphans:
        listed = ", ".join(repr(scope) for scope in orphans[:_LISTED])
        said.append(f"the file holds weights under {_more(listed, orphans)} that no layer of the config names")
    warn(f"{where}: {'; '.join(said)}; the rest is read as it is (re-save the model to mend it)")


# A warning names this many layers or scopes, then says how many more there are.
_LISTED = 5


def _more(listed: str, items: list[str]) -> str:
    return listed + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")
