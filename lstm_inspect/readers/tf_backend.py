"""Open a TF checkpoint through TensorFlow's own reader (tf.train.load_checkpoint).

For cross-checking the native reader (`open_store(..., backend="tensorflow")`); TensorFlow
is imported only when this backend is used.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from ..errors import CorruptFile, FileNotFound, UnknownName
from .base import LayerConfig, LayerHint, TensorInfo
from .files import stat_regular
from .tf_bundle import TF_ORIGIN, checkpoint_files, dtype_name, resolve_prefix

__all__ = ["TFBackendCheckpoint", "open_with_tensorflow"]


class TFBackendCheckpoint:
    """A TensorStore over tf.train.load_checkpoint; same names, shapes and dtypes as the native reader."""

    format = "tf-checkpoint"
    origin = TF_ORIGIN
    checksums = True

    def __init__(self, prefix: str) -> None:
        import tensorflow as tf  # type: ignore[import-untyped]

        self.path = prefix
        self._errors = tf.errors
        try:
            self._reader = tf.train.load_checkpoint(prefix)
        except tf.errors.OpError as e:
            raise CorruptFile(f"{prefix}: TensorFlow cannot read this checkpoint: {e.message}") from None
        shapes = self._reader.get_variable_to_shape_map()
        dtypes = self._reader.get_variable_to_dtype_map()
        # The native reader lists tensors in file order: the index sorts keys by their bytes.
        self._infos = {
            name: TensorInfo(name, tuple(shapes[name]), dtype_name(dtypes[name].as_datatype_enum), name)
            for name in sorted(shapes, key=lambda name: name.encode("utf-8", "surrogateescape"))
        }

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._infos)

    def files(self) -> list[str]:
        return checkpoint_files(self.path)

    def read(self, name: str) -> np.ndarray:
        info = self._infos.get(name)
        if info is None:
            raise UnknownName(f"{self.path}: no tensor named {name!r} in this checkpoint")
        try:
            value = self._reader.get_tensor(name)
        except self._errors.NotFoundError as e:
            raise FileNotFound(f"{self.path}: tensor {name!r}: {e.message}") from None
        except self._errors.OpError as e:
            raise CorruptFile(f"{self.path}: tensor {name!r}: {e.message}") from None
        # TF returns a scalar string tensor as bare bytes.
        return np.asarray(value, dtype=object if info.dtype == "string" else None)

    def layer_configs(self) -> dict[str, LayerConfig]:
        return {}

    def layer_hints(self) -> dict[str, LayerHint]:
        return {}

    def close(self) -> None:
        self._reader = None

    def __enter__(self) -> TFBackendCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_with_tensorflow(path: str | os.PathLike[str]) -> TFBackendCheckpoint:
    """Open a TF checkpoint (prefix, .index or .data-… file, or directory) with TensorFlow itself."""
    prefix = resolve_prefix(path)
    # TensorFlow opens the files itself, and its open() of a FIFO blocks: the files that are there
    # are checked first (a file swapped in after that still can; this backend is for cross-checks).
    stat_regular(prefix + ".index", "checkpoint index")
    for shard in glob.glob(glob.escape(prefix) + ".data-*"):
        stat_regular(shard, "data shard")
    return TFBackendCheckpoint(prefix)
