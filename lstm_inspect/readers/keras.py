"""Keras files, read with zipfile, hdf5.py and numpy (h5py only in hdf5.py's worker; never TensorFlow or Keras).

Opening lists names, shapes, dtypes and configs from the HDF5 metadata through hdf5.py's small
interface, parsed in pure Python where hdf5.py reads the file (so that listing imports neither
h5py nor numpy) and by h5py, in a child process, where it does not; the logic below is written
once, over either. Values are read by hdf5.py's parser where it reads their storage (every dataset
h5py writes by default), otherwise by the same worker.

Three layouts, one store:

- ``keras-h5``: the legacy HDF5 layout of Keras 1, Keras 2 (tf.keras, tf_keras) and Keras 3's
  own legacy ``.h5``: a full save keeps layers under ``model_weights/`` and the model config in
  the root attribute ``model_config``; a weights-only save keeps layers at the root. The root (or
  ``model_weights``) lists its layers in the attribute ``layer_names``, each layer group lists its
  datasets in ``weight_names`` (tf_keras/src/saving/legacy/hdf5_format.py
  save_weights_to_hdf5_group; keras/src/legacy/saving/legacy_h5_format.py for Keras 3).
- ``keras-weights-h5``: a Keras 3 ``.weights.h5``: ``layers/<auto_name>/.../vars/<N>`` with no
  model config (keras/src/saving/saving_lib.py H5IOStore).
- ``keras-v3``: a Keras 3 ``.keras`` zip: the same HDF5 layout in the member ``model.weights.h5``
  plus ``config.json``, which alone knows the user's layer names.

Every layer config carries the version of Keras that wrote the file, where the file says it (root
attribute ``keras_version`` of a ``.h5``, ``metadata.json`` of a ``.keras``): Keras 3 gave some
activation names another function (``hard_sigmoid``), so a config alone does not say what it computes.

Logical names are ``<layer scope>/<weight>``: ``enc/kernel``, ``bi/forward/recurrent_kernel``,
``sub/enc/bias``, Keras 1 ``lstm_1/W_i``; optimizer state keeps its prefix
(``optimizer_weights/...`` for the legacy layout, ``optimizer/vars/N`` for Keras 3).
"""

from __future__ import annotations

import bisect
import copy
import io
import json
import os
import re
import struct
import weakref
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from ..errors import CorruptFile, UnknownName, UnsupportedFormat
from .base import LayerConfig, LayerHint, TensorInfo
from .files import open_regular, opened_size
from .hdf5 import (
    MAX_DEFLATE_RATIO,
    Damaged,
    Dataset,
    FileRange,
    Group,
    H5pyWorker,
    NotUnderstood,
    OutsideFile,
    descriptor,
    read_tree,
)

if TYPE_CHECKING:  # numpy loads only when a value is read
    import zipfile  # zipfile only for a .keras file

    import numpy as np

__all__ = ["KerasStore", "open_keras_h5", "open_keras_zip"]

FORMAT_LEGACY_H5 = "keras-h5"
FORMAT_WEIGHTS_H5 = "keras-weights-h5"
FORMAT_KERAS_ZIP = "keras-v3"

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_WEIGHTS_MEMBER = "model.weights.h5"
_CONFIG_MEMBER = "config.json"
# {"keras_version": ..., "date_saved": ...} (keras/src/saving/saving_lib.py _serialize_model_as_json);
# Keras 2.13–2.15 wrote .keras zips too, so the version, not the format, says which Keras it was.
_METADATA_MEMBER = "metadata.json"

# What a tree raises for a path its own listing named but that leads nowhere (Group.__getitem__).
_TREE_ERRORS = (KeyError,)

# TF appends the output index to variable names ("kernel:0"); Keras 3 and Theano do not.
_OUTPUT_INDEX = re.compile(r":\d+$")
# The cell level of an RNN layer's weights ("lstm_cell", "gru_cell_1", Keras 3's attribute "cell").
_CELL_LEVEL = re.compile(r"(?:\w+_)?cell(?:_\d+)?")
# Container attributes whose members Keras 3 names by class ("lstm", "lstm_1"), not by layer name
# (saving_lib._save_container_state). Keras 2.13–2.15 wrote `_layer_checkpoint_dependencies`
# where Keras 3 writes `layers` (saving_lib H5IOStore.get keeps a fallback for it).
_LAYER_CONTAINERS = ("layers", "_layer_checkpoint_dependencies")
# Root attributes of a Keras 3 file that hold training state, not layers: kept under their path.
_STATE_GROUPS = ("metrics", "compile_metrics", "_compile_metrics", "loss", "compile_loss", "_compile_loss")

# Budgets for the JSON a model file holds, checked before it is decompressed or parsed. A Keras
# layer's config takes 1-3 KB of JSON and 30-100 values (the fixtures' LSTM, Bidirectional and
# Dense configs: 1.7 KB and 70 values a layer, inbound nodes included), so 64 MiB and 4 million
# values hold some 30,000 layers, more than any real model has; json.loads of a config within
# both costs at most about a second and a few hundred MB, where a 240 MB config of nothing but
# `[]` costs 6.5 GB. metadata.json holds a version and a date.
_MAX_JSON_BYTES = {_CONFIG_MEMBER: 64 << 20, _METADATA_MEMBER: 64 << 10}
_MAX_CONFIG_VALUES = 4_000_000  # a JSON value starts after each `[`, `{` and `,`
# Keras configs nest a few levels per nested model; a config nested deeper than this was made to
# overflow the stack of whatever walks or copies it.
_MAX_CONFIG_DEPTH = 200


# ---------------------------------------------------------------------------------------------
# The store


@dataclass(frozen=True)
class _Entry:
    name: str
    h5_path: str
    shape: tuple[int, ...]
    dtype: str
    bfloat16: bool = False


class KerasStore:
    """An open Keras file. Names, shapes and dtypes are indexed at open; values are read on demand,
    from the HDF5 tree that listed them."""

    def __init__(
        self,
        path: str,
        format: str,
        entries: list[_Entry],
        configs: dict[str, LayerConfig],
        hdf5: _HDF5,
        source_prefix: str = "",
        check: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.format = format
        self._hdf5 = hdf5
        self._entries = {e.name: e for e in entries}
        self._infos = {e.name: TensorInfo(e.name, e.shape, e.dtype, source_prefix + e.h5_path) for e in entries}
        self._configs = configs
        # Run once, before the first value is read: a whole-member checksum costs a pass over
        # the file, which listing names and shapes must not pay.
        self._check = check
        # A worker process and the open file end with the store, even if close() is never called.
        self._finalizer = weakref.finalize(self, hdf5.close)

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._infos)

    def files(self) -> list[str]:
        return [self.path]

    def read(self, name: str) -> np.ndarray:
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(list(self._entries)[:8]) or "none"
            raise UnknownName(f"{self.path}: no tensor named {name!r} (some of those there: {known})")
        if not self._finalizer.alive:
            raise ValueError(f"{self.path}: the store is closed")
        source = self._infos[name].source
        if not (entry.bfloat16 or entry.dtype.startswith(("int", "uint", "float"))):
            raise UnsupportedFormat(
                f"{self.path}: tensor {name!r} ({source}) is of the HDF5 type {entry.dtype!r}, not numbers; "
                "lstm-inspect reads integer and floating-point weights only"
            )
        if self._check is not None:
            self._check()
            self._check = None
        try:
            value = self._hdf5.read(entry.h5_path)
        except Damaged as e:
            raise CorruptFile(
                f"{self.path}: cannot read tensor {name!r} ({source}): {e}; the file is damaged, "
                "re-download or re-save it"
            ) from None
        except OutsideFile as e:
            raise UnsupportedFormat(
                f"{self.path}: tensor {name!r} ({source}) {e}; lstm-inspect reads only what is inside "
                "the file it is given"
            ) from None
        # A value the worker read may come from a listing by hdf5.py's parser: a damaged file can
        # read otherwise to h5py.
        if value.shape != entry.shape or (value.dtype.name != entry.dtype and not entry.bfloat16):
            raise CorruptFile(
                f"{self.path}: tensor {name!r} ({source}) reads otherwise than it lists; the file is "
                "damaged, re-download or re-save it"
            )
        if not value.dtype.isnative:  # a big-endian file: what every consumer expects is native order
            value = value.astype(value.dtype.newbyteorder("="))
        if entry.bfloat16:
            value = _as_bfloat16(value, self.path, name)
        return value

    def layer_configs(self) -> dict[str, LayerConfig]:
        return {scope: copy.deepcopy(cfg) for scope, cfg in self._configs.items()}

    def layer_hints(self) -> dict[str, LayerHint]:
        return {}

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> KerasStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_bfloat16(value: np.ndarray, path: str, name: str) -> np.ndarray:
    # Keras 3 stores bfloat16 as raw 2-byte values tagged with attrs["dtype"] = "bfloat16"
    # (saving_lib H5IOStore.__setitem__); numpy needs ml_dtypes to give them a type.
    try:
        import ml_dtypes
    except ImportError:
        raise UnsupportedFormat(
            f"{path}: tensor {name!r} is bfloat16; install ml_dtypes (`pip install ml_dtypes`) to read it"
        ) from None
    if value.dtype.kind == "V" and value.dtype.itemsize == 2:
        return value.view(ml_dtypes.bfloat16)
    if value.dtype.kind in "iuf":
        return value.astype(ml_dtypes.bfloat16)
    size = value.dtype.itemsize
    raise CorruptFile(f"{path}: tensor {name!r} is tagged bfloat16 but stores {size}-byte opaque values")


_T = TypeVar("_T")


class _HDF5:
    """The HDF5 bytes of a Keras file, in `raw` from `start` on: listed and read by hdf5.py's
    parser over `parsed` (raw itself, a FileRange, a zip member), by h5py in a worker process for
    what the parser does not read. `member`: the zip member, when the bytes are deflated."""

    def __init__(self, raw: BinaryIO, parsed: BinaryIO, where: str, start: int, size: int, member: str | None = None):
        self._raw, self.parsed, self.where = raw, parsed, where
        self._worker_args = (start, size, member)
        self._worker: H5pyWorker | None = None
        self._tree: Group | None = None

    def index(self, index: Callable[[Group], _T]) -> _T:
        """index(root group), over the parser's tree or, where the parser does not read the
        file, the worker's."""
        try:
            if not _starts_with_hdf5_signature(self.parsed):
                raise UnsupportedFormat(f"{self.where}: not an HDF5 file, so not a Keras .h5 file")
            try:
                self._tree = read_tree(self.parsed)
                return index(self._tree)
            except NotUnderstood:
                pass
            self._tree = self.worker().tree()
            return index(self._tree)
        except Damaged as e:
            raise CorruptFile(
                f"{self.where}: the HDF5 file is truncated or damaged ({e}); re-download or re-save it"
            ) from None
        except OutsideFile as e:
            raise UnsupportedFormat(
                f"{self.where}: a link in the file {e}; lstm-inspect reads only what is inside the file it is given"
            ) from None

    def read(self, h5_path: str) -> np.ndarray:
        """The values of the dataset at `h5_path`. Raises Damaged or OutsideFile."""
        dataset = self._tree.get(h5_path) if self._tree is not None else None
        if not isinstance(dataset, Dataset):
            raise Damaged(f"{h5_path} is no dataset")
        try:
            return dataset.read()
        except NotUnderstood:
            pass  # only the parser raises it: a layout, filter or type that h5py reads
        return self.worker().read(h5_path)

    def worker(self) -> H5pyWorker:
        if self._worker is None:
            fd = descriptor(self._raw)
            if fd is None:
                raise UnsupportedFormat(
                    f"{self.where}: this HDF5 file needs libhdf5 (a format the built-in reader does not read), "
                    "which reads local files only; download it and give the local copy"
                )
            self._worker = H5pyWorker(fd, *self._worker_args)
        return self._worker

    def close(self) -> None:
        try:
            if self._worker is not None:
                self._worker.close()
        finally:
            self.parsed.close()
            self._raw.close()


def _starts_with_hdf5_signature(source: BinaryIO) -> bool:
    source.seek(0)
    return source.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE


# ---------------------------------------------------------------------------------------------
# Opening files


def open_keras_h5(path: str | os.PathLike[str]) -> KerasStore:
    """Open a Keras HDF5 file: a Keras 1/2/3 ``.h5`` (full save or weights-only) or a Keras 3
    ``.weights.h5``. Raises FileNotFound, UnsupportedFormat (not HDF5, or HDF5 without Keras
    weights) or CorruptFile."""
    path = os.fspath(path)
    raw = open_regular(path)
    hdf5 = _HDF5(raw, raw, path, 0, opened_size(raw))
    try:
        fmt, entries, configs = hdf5.index(lambda root: _index_h5(root, path))
    except BaseException:
        hdf5.close()
        raise
    return KerasStore(path, fmt, entries, configs, hdf5)


def open_keras_zip(path: str | os.PathLike[str], verify: bool = True) -> KerasStore:
    """Open a Keras 3 ``.keras`` zip: weights from its ``model.weights.h5`` (read in place, not
    extracted), layer names and configs from its ``config.json``.

    verify: before the first value is read, check the weights member against the CRC-32 that
    the zip directory holds for it (HDF5 itself keeps no checksums)."""
    path = os.fspath(path)
    raw = open_regular(path)
    hdf5: _HDF5 | None = None
    try:
        file_size = opened_size(raw)
        archive = _open_zip(raw, path)
        names = set(archive.namelist())
        if _WEIGHTS_MEMBER not in names:
            if "model.weights.npz" in names:
                raise UnsupportedFormat(
                    f"{path}: the weights were saved as npz (weights_format='npz'), which lstm-inspect "
                    "does not read; re-save the model with the default h5 weights format"
                )
            raise CorruptFile(
                f"{path}: this .keras archive has no {_WEIGHTS_MEMBER}; it is incomplete, re-save the model"
            )
        if _CONFIG_MEMBER not in names:
            raise CorruptFile(
                f"{path}: this .keras archive has no {_CONFIG_MEMBER}, so its layer names are unknown; "
                f"re-save the model, or extract {_WEIGHTS_MEMBER} and open that as a weights file"
            )
        model_config = _read_json_member(archive, _CONFIG_MEMBER, file_size, path)
        keras_version = None
        if _METADATA_MEMBER in names:
            keras_version = _version(_read_json_member(archive, _METADATA_MEMBER, file_size, path).get("keras_version"))
        where = f"{path} ({_WEIGHTS_MEMBER})"
        hdf5 = _weights_member(archive, raw, file_size, path, where)
        check = _crc_check(hdf5.parsed, archive.getinfo(_WEIGHTS_MEMBER).CRC, path) if verify else None
        entries = hdf5.index(lambda root: _keras3_entries(root, model_config, where))
        configs = _layer_configs(model_config, entries, keras_version)
    except BaseException:
        if hdf5 is not None:
            hdf5.close()
        raw.close()
        raise
    return KerasStore(path, FORMAT_KERAS_ZIP, entries, configs, hdf5, source_prefix=f"{_WEIGHTS_MEMBER}:", check=check)


def _crc_check(member: BinaryIO, expected: int, path: str) -> Callable[[], None]:
    def check() -> None:
        crc = 0
        member.seek(0)
        while chunk := member.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
        if crc != expected:
            raise CorruptFile(
                f"{path}: {_WEIGHTS_MEMBER} fails its CRC-32 check; the file is damaged, re-download or "
                "re-save it (--no-verify reads it anyway)"
            )

    return check


def _index_h5(h5: Group, where: str) -> tuple[str, list[_Entry], dict[str, LayerConfig]]:
    try:
        # Keras 1, 2 and 3 all write their version beside the config (tf_keras hdf5_format.py
        # save_model_to_hdf5, keras/src/legacy/saving/legacy_h5_format.py), and on the weights group.
        model_weights = h5.get("model_weights")
        keras_version = _version(h5.attrs.get("keras_version"))
        if isinstance(model_weights, Group):
            model_config = _model_config_attr(h5, where)
            entries = _legacy_layer_entries(model_weights, model_config, where)
            optimizer_weights = h5.get("optimizer_weights")
            if isinstance(optimizer_weights, Group):
                entries += _legacy_optimizer_entries(optimizer_weights, where)
            keras_version = keras_version or _version(model_weights.attrs.get("keras_version"))
            return FORMAT_LEGACY_H5, _unique(entries), _layer_configs(model_config, entries, keras_version)
        if _string_list_attr(h5, "layer_names") is not None:
            model_config = _model_config_attr(h5, where)
            entries = _legacy_layer_entries(h5, model_config, where)
            return FORMAT_LEGACY_H5, _unique(entries), _layer_configs(model_config, entries, keras_version)
        if any(isinstance(h5.get(k), Group) for k in (*_LAYER_CONTAINERS, "vars")):
            return FORMAT_WEIGHTS_H5, _keras3_entries(h5, None, where), {}
    except _TREE_ERRORS as e:
        raise CorruptFile(f"{where}: cannot read the HDF5 structure ({e}); the file is damaged") from None
    raise UnsupportedFormat(
        f"{where}: an HDF5 file without Keras weights (no `layer_names` attribute, no `model_weights` "
        "group, no Keras 3 `layers` group); lstm-inspect reads Keras .h5, .weights.h5 and .keras files"
    )


# ---------------------------------------------------------------------------------------------
# Legacy layout: Keras 1, Keras 2, Keras 3's legacy .h5


def _legacy_layer_entries(group: Group, model_config: dict[str, Any] | None, where: str) -> list[_Entry]:
    layer_names = _string_list_attr(group, "layer_names")
    if layer_names is None:
        layer_names = sorted(
            (k for k, g in group.items() if isinstance(g, Group) and "weight_names" in g.attrs),
            key=_natural_key,
        )
    nodes = _layer_nodes_by_name(model_config)
    entries: list[_Entry] = []
    for layer in layer_names:
        layer_group = group.get(layer)
        if not isinstance(layer_group, Group):
            raise CorruptFile(
                f"{where}: layer {layer!r} is listed in `layer_names` but has no group in the file; "
                "the file is incomplete, re-save it"
            )
        weight_names = _string_list_attr(layer_group, "weight_names") or []
        relative = _legacy_relative_names(layer, weight_names, nodes.get(layer))
        for weight_name, rel in zip(weight_names, relative):
            entries.append(_dataset_entry(layer_group, weight_name, f"{layer}/{rel}", where))
    # tf_keras and Keras 3 add the model's own (non-layer) variables here, usually none.
    top = group.get("top_level_model_weights")
    if isinstance(top, Group):
        for weight_name in _string_list_attr(top, "weight_names") or []:
            entries.append(_dataset_entry(top, weight_name, _OUTPUT_INDEX.sub("", weight_name), where))
    return entries


def _legacy_optimizer_entries(group: Group, where: str) -> list[_Entry]:
    # Optimizer slots keep their whole path so nothing mistakes them for layer weights.
    names = _string_list_attr(group, "weight_names")
    if names is None:
        names = _dataset_paths(group)
    return [_dataset_entry(group, n, f"optimizer_weights/{n}", where) for n in names]


def _legacy_relative_names(layer: str, weight_names: list[str], node: dict[str, Any] | None) -> list[str]:
    """A layer's weight names relative to the layer: "kernel", "forward/bias", "enc/kernel" (nested
    model), Keras 1 "W_i"."""
    inner = _bidirectional_inner_name(node)
    split = [_legacy_parts(layer, name, inner) for name in weight_names]
    _name_directions(split)
    dropped = [[p for p in parts[:-1] if not _CELL_LEVEL.fullmatch(p)] + parts[-1:] for parts in split]
    # A StackedRNNCells layer has one cell level per cell; there the cell level is what tells
    # the weights apart, so it stays.
    if len({tuple(p) for p in dropped}) == len(dropped):
        split = dropped
    return ["/".join(parts) for parts in split]


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


def _dataset_entry(group: Group, relative_path: str, name: str, where: str) -> _Entry:
    ds = group.get(relative_path)
    if not isinstance(ds, Dataset):
        raise CorruptFile(
            f"{where}: {group.name.lstrip('/') or 'the root'} lists weight {relative_path!r} but the file "
            "has no such dataset; the file is incomplete or damaged, re-save it"
        )
    return _entry(name, ds)


def _entry(name: str, ds: Dataset) -> _Entry:
    bfloat16 = _decode(ds.attrs.get("dtype")) == "bfloat16"
    shape = ds.shape if ds.shape is not None else ()
    return _Entry(name, ds.name.lstrip("/"), shape, "bfloat16" if bfloat16 else ds.dtype, bfloat16)


def _dataset_paths(group: Group) -> list[str]:
    """The datasets under a group, depth first in name order, each object once, under the first
    path that reaches it: h5py's visititems (H5Ovisit) over either HDF5 tree."""
    paths: list[str] = []
    seen: set[Hashable] = {group.key}
    stack = [("", iter(group.items()))]
    while stack:
        prefix, members = stack[-1]
        member = next(members, None)
        if member is None:
            stack.pop()
            continue
        name, child = member
        if child.key in seen:
            continue
        seen.add(child.key)
        if isinstance(child, Dataset):
            paths.append(prefix + name)
        elif isinstance(child, Group):
            stack.append((f"{prefix}{name}/", iter(child.items())))
    return paths


def _string_list_attr(obj: Group, name: str) -> list[str] | None:
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
    # A value is a scalar or a flat list (hdf5.py Node.attrs).
    return [_decode(item) or "" for chunk in chunks for item in (chunk if isinstance(chunk, list) else [chunk])]


def _decode(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf8", errors="replace")
    return str(value)


def _model_config_attr(h5: Group, where: str) -> dict[str, Any] | None:
    raw = h5.attrs.get("model_config")
    if raw is None:
        return None
    return _parse_config(_decode(raw) or "", f"{where}: the `model_config` attribute")


def _parse_config(text: str | bytes, what: str) -> dict[str, Any]:
    """A model config, refused before json.loads where it exceeds the budgets (_MAX_JSON_BYTES)."""
    limit = _MAX_JSON_BYTES[_CONFIG_MEMBER]
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


# ---------------------------------------------------------------------------------------------
# Keras 3 layout: layers/<auto_name>/.../vars/<N>


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


@dataclass
class _Node:
    """What config.json says about the object saved at one group."""

    class_name: str
    config: dict[str, Any]
    raw: dict[str, Any]


@dataclass
class _LayerMaps:
    """The sublayers of a model's config, by Keras 3 auto name, by user name, and their order."""

    count: int
    by_auto_name: dict[str, dict[str, Any]]
    by_user_name: dict[str, dict[str, Any]]
    position: dict[int, int]


@dataclass
class _Walk:
    """What one walk over a Keras 3 file collects, and what it remembers so as to do each thing once."""

    entries: list[_Entry] = field(default_factory=list)
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


def _keras3_entries(h5: Group, model_config: dict[str, Any] | None, where: str) -> list[_Entry]:
    try:
        walk = _Walk()
        _walk_saveable(h5, [], _node(model_config), None, "model", walk)
    except _TREE_ERRORS as e:
        raise CorruptFile(f"{where}: cannot read the HDF5 structure ({e}); the file is damaged") from None
    return _unique(walk.entries)


def _walk_saveable(
    group: Group, scope: list[str], node: _Node | None, auto_name: str | None, role: str, walk: _Walk
) -> None:
    """One saved object: its own `vars`, then its children the way saving_lib._save_state wrote them."""
    if not walk.first_visit(group):
        return
    out = walk.entries
    own = group.get("vars")
    if isinstance(own, Group):
        members = {k: v for k, v in own.items() if isinstance(v, Dataset)}
        keys = sorted(members, key=_natural_key)
        datasets = [members[k] for k in keys]
        names: list[str | None] = list(_var_names(node, auto_name, role, [d.shape for d in datasets]) or [])
        for key, ds, name in zip(keys, datasets, names or [None] * len(keys)):
            out.append(_entry("/".join([*scope, name or f"vars/{key}"]), ds))

    children = {k: v for k, v in group.items() if k != "vars" and isinstance(v, Group)}
    # Forward before backward reads better than saving_lib's alphabetical attribute order.
    order = ["cell", "forward_layer", "backward_layer", *_LAYER_CONTAINERS]
    for key in sorted(children, key=lambda k: (order.index(k) if k in order else len(order), _natural_key(k))):
        child = children[key]
        if role == "model" and not scope and ("optimizer" in key or key in _STATE_GROUPS):
            for path in _dataset_paths(child):
                stored = child[path]
                if isinstance(stored, Dataset):
                    out.append(_entry(stored.name.lstrip("/"), stored))
        elif key in _LAYER_CONTAINERS:
            _walk_layer_container(child, scope, node, walk)
        elif key == "cell":
            _walk_saveable(child, scope, _cell_node(node), None, "cell", walk)
        elif key in ("forward_layer", "backward_layer"):
            direction = key.split("_", 1)[0]
            _walk_saveable(child, [*scope, direction], _bidirectional_half(node, direction), None, "layer", walk)
        else:
            sub = _node(node.config.get(key)) if node is not None else None
            _walk_saveable(child, [*scope, key], sub, None, "attr", walk)


def _layer_maps(node: _Node | None, walk: _Walk) -> _LayerMaps:
    raw = node.raw if node else {}
    cached = walk.layer_maps.get(id(raw))
    if cached is not None and cached[0] is raw:
        return cached[1]
    layer_nodes = [n for n in (_sublayers(raw) if node else None) or [] if _node(n) is not None]
    maps = _LayerMaps(
        len(layer_nodes),
        _auto_names(layer_nodes),
        {name: n for n in layer_nodes if (name := _node_name(n))},
        {id(n): i for i, n in enumerate(layer_nodes)},
    )
    walk.layer_maps[id(raw)] = (raw, maps)
    return maps


def _walk_layer_container(group: Group, scope: list[str], node: _Node | None, walk: _Walk) -> None:
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
        user_name = _decode(own.attrs.get("name")) if isinstance(own, Group) else None
        sub = by_user_name.get(user_name) if user_name else None
        if sub is None:
            sub = by_auto_name.get(key)
            if sub is not None and user_name is None:
                user_name = _node_name(sub)
        rank = position.get(id(sub), maps.count) if sub is not None else maps.count
        resolved.append((rank, _natural_key(key), key, child, user_name or key, sub))
    for _, _, key, child, user_name, sub in sorted(resolved, key=lambda r: (r[0], r[1])):
        _walk_saveable(child, [*scope, user_name], _node(sub), key, "layer", walk)


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


def _var_names(node: _Node | None, auto_name: str | None, role: str, shapes: list[Any]) -> list[str] | None:
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
    bias (g*u,), or (2, g*u) for GRU(reset_after=True)."""
    if len(shapes) not in (2, 3) or any(s is None for s in shapes):
        return None
    kernel, recurrent = shapes[0], shapes[1]
    if len(kernel) != 2 or len(recurrent) != 2 or kernel[1] != recurrent[1] or recurrent[0] == 0:
        return None
    if recurrent[1] % recurrent[0] != 0:
        return None
    if len(shapes) == 2:
        return ["kernel", "recurrent_kernel"]
    if tuple(shapes[2]) in ((recurrent[1],), (2, recurrent[1])):
        return ["kernel", "recurrent_kernel", "bias"]
    return None


def _cell_node(node: _Node | None) -> _Node | None:
    if node is None:
        return None
    explicit = _node(node.config.get("cell"))
    if explicit is not None:
        return explicit
    cell_class = _RNN_CELL_CLASS.get(node.class_name)
    return _Node(cell_class, node.config, node.raw) if cell_class else None


# ---------------------------------------------------------------------------------------------
# Model configs (Keras 1/2/3, Sequential and Functional, nested)


def _node(raw: Any) -> _Node | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("class_name"), str):
        return None
    config = raw.get("config")
    # Keras 1 and Keras 2.0–2.2.2 Sequential configs are the bare list of layers.
    return _Node(raw["class_name"], config if isinstance(config, dict) else {}, raw)


def _node_name(raw: dict[str, Any]) -> str | None:
    config = raw.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    return raw["name"] if isinstance(raw.get("name"), str) else None


def _sublayers(raw: dict[str, Any] | None) -> list[Any] | None:
    if raw is None:
        return None
    config = raw.get("config")
    if isinstance(config, list):
        return config
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        return config["layers"]
    return None


def _layer_nodes_by_name(model_config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    layers = _sublayers(model_config) or []
    return {name: n for n in layers if _node(n) is not None and (name := _node_name(n))}


def _bidirectional_inner_name(raw: dict[str, Any] | None) -> str | None:
    node = _node(raw)
    if node is None or node.class_name != "Bidirectional":
        return None
    inner = node.config.get("layer")
    return _node_name(inner) if isinstance(inner, dict) else None


def _bidirectional_half(node: _Node | None, direction: str) -> _Node | None:
    if node is None or node.class_name != "Bidirectional":
        return None
    forward = _node(node.config.get("layer"))
    if direction == "forward" or forward is None:
        return forward
    backward = _node(node.config.get("backward_layer"))
    if backward is not None:
        return backward
    # Without an explicit backward_layer, Keras builds it from the forward config with
    # go_backwards flipped and the name prefixed (tf_keras layers/rnn/bidirectional.py).
    config = dict(forward.config)
    config["go_backwards"] = not config.get("go_backwards", False)
    if isinstance(config.get("name"), str):
        config["name"] = "backward_" + config["name"]
    return _Node(forward.class_name, config, {**forward.raw, "config": config})


def _layer_configs(
    model_config: dict[str, Any] | None, entries: list[_Entry], keras_version: str | None
) -> dict[str, LayerConfig]:
    """LayerConfig per logical scope, for the scopes that hold weights."""
    found: dict[str, LayerConfig] = {}

    def visit(layers: list[Any], prefix: str) -> None:
        for raw in layers:
            node = _node(raw)
            name = _node_name(raw) if node is not None else None
            if node is None or not name:
                continue
            scope = prefix + name
            nested = _sublayers(raw)
            if nested is not None:
                visit(nested, scope + "/")
            elif node.class_name == "Bidirectional":
                for direction in ("forward", "backward"):
                    half = _bidirectional_half(node, direction)
                    if half is not None:
                        found[f"{scope}/{direction}"] = _layer_config(half, keras_version)
            else:
                found[scope] = _layer_config(node, keras_version)

    visit(_sublayers(model_config) or [], "")
    names = sorted(e.name for e in entries)

    def holds_weights(scope: str) -> bool:
        # The first name at or after "scope/" starts with it if any does (a sorted search, so that
        # many layers times many weights stays cheap).
        i = bisect.bisect_left(names, scope + "/")
        return i < len(names) and names[i].startswith(scope + "/")

    return {scope: cfg for scope, cfg in found.items() if holds_weights(scope)}


def _layer_config(node: _Node, keras_version: str | None) -> LayerConfig:
    # As stored: Keras 1's output_dim / inner_activation keep their names (detect.py reads them).
    return LayerConfig(node.class_name, copy.deepcopy(node.config), keras_version)


def _version(value: Any) -> str | None:
    """A stored `keras_version` ("2.15.0", b"3.15.1"), or None for anything else."""
    text = _decode(value) if isinstance(value, (str, bytes)) else None
    return (text or "").strip() or None


# ---------------------------------------------------------------------------------------------
# Zip access


def _zip_errors() -> tuple[type[Exception], ...]:
    """What zipfile raises for a damaged member: a bad header or CRC-32, a broken deflate stream, an
    early end."""
    import zipfile

    return (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error)


def _open_zip(raw: BinaryIO, path: str) -> zipfile.ZipFile:
    import zipfile

    try:
        return zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raw.seek(0)
        if raw.read(2) != b"PK":
            raise UnsupportedFormat(f"{path}: not a zip archive, so not a .keras file") from None
        raise CorruptFile(f"{path}: the .keras zip archive is damaged or truncated ({e}); re-save the model") from None


def _check_member(info: zipfile.ZipInfo, file_size: int, path: str) -> None:
    """Refuse member sizes the archive cannot hold before anything is allocated or read."""
    import zipfile

    if info.flag_bits & 0x1:
        raise UnsupportedFormat(f"{path}: {info.filename} is encrypted")
    fits = info.header_offset + info.compress_size <= file_size
    if info.compress_type == zipfile.ZIP_STORED:
        plausible = info.file_size == info.compress_size
    else:
        plausible = info.file_size <= max(info.compress_size, 1) * MAX_DEFLATE_RATIO
    if not (fits and plausible):
        raise CorruptFile(
            f"{path}: the zip entry {info.filename} declares {info.file_size} bytes "
            f"({info.compress_size} stored) but the archive is {file_size} bytes; the file is damaged"
        )


def _read_json_member(archive: zipfile.ZipFile, member: str, file_size: int, path: str) -> dict[str, Any]:
    """config.json or metadata.json, within its budget before it is decompressed or parsed."""
    info = archive.getinfo(member)
    _check_member(info, file_size, path)
    budget = _MAX_JSON_BYTES[member]
    if info.file_size > budget:
        raise CorruptFile(
            f"{path}: {member} claims {info.file_size} bytes, more than the {budget} a .keras file's {member} "
            "can take; the file is damaged"
        )
    pieces, total = [], 0
    try:
        # The size in the zip directory may lie: read in pieces, to at most one past the budget
        # (zipfile inflates as much as one read asks for before it applies the size it was told).
        with archive.open(info) as f:
            while total <= budget and (piece := f.read(min(1 << 20, budget + 1 - total))):
                pieces.append(piece)
                total += len(piece)
    except _zip_errors() as e:
        raise CorruptFile(f"{path}: cannot read {member} ({e}); the file is damaged") from None
    data = b"".join(pieces)
    if len(data) > budget:
        raise CorruptFile(f"{path}: {member} holds more than the {info.file_size} bytes it claims; the file is damaged")
    return _parse_config(data, f"{path}: {member}")


def _weights_member(archive: zipfile.ZipFile, raw: BinaryIO, file_size: int, path: str, where: str) -> _HDF5:
    import zipfile

    info = archive.getinfo(_WEIGHTS_MEMBER)
    _check_member(info, file_size, path)
    if info.compress_type != zipfile.ZIP_STORED:
        # Keras writes it stored; a re-zipped archive is read through zipfile (seekable, slower).
        errors: tuple[type[Exception], ...] = (*_zip_errors(), NotImplementedError)
        try:
            member = archive.open(info)
        except errors as e:
            raise CorruptFile(f"{path}: cannot open {_WEIGHTS_MEMBER} ({e}); the file is damaged") from None
        return _HDF5(raw, _ZipMember(member, path), where, 0, file_size, _WEIGHTS_MEMBER)  # type: ignore[arg-type]
    # A stored member is a plain byte range after its local header (APPNOTE 4.3.7: 30 fixed
    # bytes, then the name and extra field, whose lengths may differ from the central directory's).
    raw.seek(info.header_offset)
    header = raw.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise CorruptFile(f"{path}: the local header of {_WEIGHTS_MEMBER} is damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.file_size > file_size:
        raise CorruptFile(f"{path}: {_WEIGHTS_MEMBER} runs past the end of the archive; the file is truncated")
    # buffered: the parser makes many small reads close together
    parsed = io.BufferedReader(FileRange(raw, start, info.file_size))
    return _HDF5(raw, parsed, where, start, info.file_size)


class _ZipMember(io.RawIOBase):
    """A deflated zip member, seekable through zipfile, whose damage (a bad CRC-32, a broken
    deflate stream, an early end) is a CorruptFile naming the archive, wherever it is read."""

    def __init__(self, member: zipfile.ZipExtFile, path: str) -> None:
        super().__init__()
        self._member, self._path = member, path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._member.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._guarded(lambda: self._member.seek(offset, whence))  # type: ignore[no-any-return]

    def readinto(self, buffer: Any) -> int:
        data = self._guarded(lambda: self._member.read(len(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._member.close()
        super().close()

    def _guarded(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except _zip_errors() as e:
            raise CorruptFile(f"{self._path}: {_WEIGHTS_MEMBER} is damaged ({e}); re-download or re-save it") from None


# ---------------------------------------------------------------------------------------------
# Helpers


def _natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _unique(entries: list[_Entry]) -> list[_Entry]:
    """Two weights may map to one logical name only in odd files; the later one keeps its HDF5 path."""
    seen: set[str] = set()
    out = []
    for e in entries:
        if e.name in seen:
            e = _Entry(e.h5_path, e.h5_path, e.shape, e.dtype, e.bfloat16)
        seen.add(e.name)
        out.append(e)
    return out
