"""Open any supported file as a TensorStore: the one place that looks at file formats."""

from __future__ import annotations

import os

from ..errors import FileNotFound, UnsupportedFormat
from . import files
from .base import LayerConfig, TensorInfo, TensorStore
from .files import check_lfs_pointer, open_regular
from .urls import display_url, is_url, local_path

__all__ = ["LayerConfig", "TensorInfo", "TensorStore", "check_lfs_pointer", "open_store"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def open_store(path: str | os.PathLike[str], verify: bool = True, backend: str = "native") -> TensorStore:
    """Open a TF checkpoint (prefix, .index, .data-… or directory), a frozen graph (.pb, .pbtxt),
    a SavedModel directory, a Keras file or an .npz, given as a local path or a URL (s3://, gs://,
    http(s)://, any fsspec URL; file:// reads as a local path).

    verify: check CRC-32C checksums of what is read (TF checkpoints).
    backend: "native" (default) or "tensorflow" (tf.train.load_checkpoint, for cross-checks).
    """
    path = local_path(os.fspath(path))
    if is_url(path):
        path = display_url(path)  # from here on, the URL's secrets stay inside remote.py
    if backend == "tensorflow":
        from .tf_backend import open_with_tensorflow

        return open_with_tensorflow(path)
    if backend != "native":
        raise ValueError(f"unknown backend {backend!r}")
    files.new_session()
    if not files.exists(path) and not files.exists(path + ".index"):
        raise FileNotFound(f"{path}: no such file or checkpoint prefix")
    if not is_url(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")) or os.path.isfile(
            os.path.join(path, "saved_model.pbtxt")
        ):
            from .saved_model import open_saved_model

            return open_saved_model(path)
        if path.endswith((".pb", ".pbtxt")) and not os.path.isdir(path):  # a frozen GraphDef, or a saved_model.pb
            from .frozen_graph import open_frozen_graph

            return open_frozen_graph(path)
    # A remote data shard is not sniffed: summary must fetch nothing of a checkpoint's data.
    if files.exists(path) and not files.is_dir(path) and not (is_url(path) and _is_tf_file(path)):
        # A FIFO or a device is refused here, in words, before anything reads from it. Both looks
        # go through the one descriptor: the name could be swapped for a FIFO between two opens.
        with open_regular(path) as f:
            head = f.read(64)
            is_hdf5, is_zip, is_npz = head.startswith(_HDF5_SIGNATURE), False, path.lower().endswith(".npz")
            if not is_hdf5 and not path.endswith((".h5", ".hdf5")):
                import zipfile  # only for files: a TF prefix names none, and zipfile costs ~10 ms to import

                is_zip = zipfile.is_zipfile(f)  # reads at most the last 64 KiB
                if is_zip and not is_npz and not path.endswith(".keras"):
                    from .npz import accept

                    is_npz = accept(f)  # a zip of .npy members, whatever its name
        check_lfs_pointer(path, head)
        if is_hdf5:
            from .keras import open_keras_h5

            return open_keras_h5(path)
        if path.endswith((".h5", ".hdf5")):
            raise UnsupportedFormat(f"{path}: not an HDF5 file, so not a Keras .h5 (it lacks the HDF5 signature)")
        if is_npz and not _is_tf_file(path):
            from .npz import open_npz

            return open_npz(path, verify=verify)
        # A .keras file cut short has lost its zip directory: still send it to the zip reader to say so.
        if (is_zip or path.endswith(".keras")) and not _is_tf_file(path):
            from .keras import open_keras_zip

            return open_keras_zip(path, verify=verify)
    from .tf_bundle import open_checkpoint

    return open_checkpoint(path, verify=verify)


def _is_tf_file(path: str) -> bool:
    base = os.path.basename(path)
    return base.endswith(".index") or ".data-" in base
