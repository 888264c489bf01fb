"""Model configs (Keras 1/2/3, Sequential and Functional, nested): what config.json or the
`model_config` attribute says of each layer, checked against budgets before json parses it."""

from __future__ import annotations

import bisect
import copy
import json
from dataclasses import dataclass
from typing import Any

from ...errors import CorruptFile
from ..base import LayerConfig
from .store import Entry

__all__ = ["ConfigNode", "config_node", "layer_configs", "node_name", "parse_config", "sublayers"]

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


@dataclass
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


def layer_configs(
    model_config: dict[str, Any] | None, entries: list[Entry], keras_version: str | None
) -> dict[str, LayerConfig]:
    """LayerConfig per logical scope, for the scopes that hold weights."""
    found: dict[str, LayerConfig] = {}

    def visit(layers: list[Any], prefix: str) -> None:
        for raw in layers:
            node = config_node(raw)
            name = node_name(raw) if node is not None else None
            if node is None or not name:
                continue
            scope = prefix + name
            nested = sublayers(raw)
            if nested is not None:
                visit(nested, scope + "/")
            elif node.class_name == "Bidirectional":
                for direction in ("forward", "backward"):
                    half = bidirectional_half(node, direction)
                    if half is not None:
                        found[f"{scope}/{direction}"] = _layer_config(half, keras_version)
            else:
                found[scope] = _layer_config(node, keras_version)

    visit(sublayers(model_config) or [], "")
    names = sorted(e.name for e in entries)

    def holds_weights(scope: str) -> bool:
        # The first name at or after "scope/" starts with it if any does (a sorted search, so that
        # many layers times many weights stays cheap).
        i = bisect.bisect_left(names, scope + "/")
        return i < len(names) and names[i].startswith(scope + "/")

    return {scope: cfg for scope, cfg in found.items() if holds_weights(scope)}


def _layer_config(node: ConfigNode, keras_version: str | None) -> LayerConfig:
    # As stored: Keras 1's output_dim / inner_activation keep their names (detect.py reads them).
    return LayerConfig(node.class_name, copy.deepcopy(node.config), keras_version)
