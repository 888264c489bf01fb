"""Keras files, read with zipfile, readers/hdf5/ and numpy (h5py only in its worker; never TensorFlow or Keras).

Opening lists names, shapes, dtypes and configs from the HDF5 metadata through hdf5/'s small
interface, parsed in pure Python where its parser reads the file (so that listing imports neither
h5py nor numpy) and by h5py, in a child process, where it does not; the logic of this package is
written once, over either. Values are read by the parser where it reads their storage (every
dataset h5py writes by default), otherwise by the same worker.

Where each part lives: store.py (the store, and the HDF5 bytes it reads from), legacy_h5.py (the
Keras 1/2 layout), saving_lib.py (the Keras 3 layout), model_config.py (what a model config says
of each layer), archive.py (the ``.keras`` zip); this module opens HDF5 files and says which
layout they hold.

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

import os
from typing import Any

from ...errors import CorruptFile, UnsupportedFormat
from ..base import LayerConfig, Origin
from ..files import open_regular, opened_size
from ..hdf5 import Group
from .archive import open_keras_zip
from .legacy_h5 import legacy_layer_entries, legacy_optimizer_entries, model_config_attr, string_list_attr
from .model_config import layer_configs
from .saving_lib import LAYER_CONTAINERS, keras3_entries
from .store import (
    FORMAT_LEGACY_H5,
    FORMAT_WEIGHTS_H5,
    TREE_ERRORS,
    Entry,
    HDF5Source,
    KerasStore,
    keras_version_of,
    unique,
)

__all__ = ["KerasStore", "open_keras_h5", "open_keras_zip"]


def open_keras_h5(path: str | os.PathLike[str]) -> KerasStore:
    """Open a Keras HDF5 file: a Keras 1/2/3 ``.h5`` (full save or weights-only) or a Keras 3
    ``.weights.h5``. Raises FileNotFound, UnsupportedFormat (not HDF5, or HDF5 without Keras
    weights) or CorruptFile."""
    path = os.fspath(path)
    raw = open_regular(path)
    hdf5 = HDF5Source(raw, raw, path, 0, opened_size(raw))
    try:
        fmt, entries, configs, origin = hdf5.index(lambda root: _index_h5(root, path))
    except BaseException:
        hdf5.close()
        raise
    return KerasStore(path, fmt, entries, configs, hdf5, origin)


def _index_h5(h5: Group, where: str) -> tuple[str, list[Entry], dict[str, LayerConfig], Origin | None]:
    try:
        # Keras 1, 2 and 3 all write their version beside the config (tf_keras hdf5_format.py
        # save_model_to_hdf5, keras/src/legacy/saving/legacy_h5_format.py), and on the weights group.
        model_weights = h5.get("model_weights")
        keras_version = keras_version_of(h5.attrs.get("keras_version"))
        if isinstance(model_weights, Group):
            model_config = model_config_attr(h5, where)
            entries = legacy_layer_entries(model_weights, model_config, where)
            optimizer_weights = h5.get("optimizer_weights")
            if isinstance(optimizer_weights, Group):
                entries += legacy_optimizer_entries(optimizer_weights, where)
            keras_version = keras_version or keras_version_of(model_weights.attrs.get("keras_version"))
            configs = layer_configs(model_config, entries, keras_version, where)
            return FORMAT_LEGACY_H5, unique(entries), configs, _origin(model_config, keras_version)
        if string_list_attr(h5, "layer_names") is not None:
            model_config = model_config_attr(h5, where)
            entries = legacy_layer_entries(h5, model_config, where)
            configs = layer_configs(model_config, entries, keras_version, where)
            return FORMAT_LEGACY_H5, unique(entries), configs, _origin(model_config, keras_version)
        if any(isinstance(h5.get(k), Group) for k in (*LAYER_CONTAINERS, "vars")):
            return FORMAT_WEIGHTS_H5, keras3_entries(h5, None, where), {}, None
    except TREE_ERRORS as e:
        raise CorruptFile(f"{where}: cannot read the HDF5 structure ({e}); the file is damaged") from None
    raise UnsupportedFormat(
        f"{where}: an HDF5 file without Keras weights (no `layer_names` attribute, no `model_weights` "
        "group, no Keras 3 `layers` group); lstm-inspect reads Keras .h5, .weights.h5 and .keras files"
    )


def _origin(model_config: dict[str, Any] | None, keras_version: str | None) -> Origin | None:
    # load_model builds the model from `model_config`; a weights-only save has none
    # (tf_keras saving/legacy/hdf5_format.py load_model_from_hdf5: "No model config found").
    return Origin("keras-model", keras_version, ".h5") if model_config is not None else None
