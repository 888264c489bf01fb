"""Open any supported file as a TensorStore: the one place that looks at file formats."""

from __future__ import annotations

import os

from ..errors import LstmInspectError
from . import files
from .base import LayerConfig, Origin, TensorInfo, TensorStore
from .files import check_lfs_pointer
from .formats import plugins
from .formats.probe import Probe
from .urls import display_url, is_url, local_path

__all__ = ["LayerConfig", "Origin", "TensorInfo", "TensorStore", "check_lfs_pointer", "open_store", "reads"]


def open_store(path: str | os.PathLike[str], verify: bool = True, backend: str = "native") -> TensorStore:
    """Open a TF checkpoint (prefix, .index, .data-… or directory), a frozen graph (.pb, .pbtxt),
    a SavedModel directory, a Keras file or an .npz, given as a local path or a URL (s3://, gs://,
    http(s)://, any fsspec URL; file:// reads as a local path).

    The format plugins (formats/) are asked in order which one takes the path; a path none takes
    is refused in one line that says what it looks like and what lstm-inspect reads.

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
    with Probe(path) as probe:
        for plugin in plugins():
            if plugin.accept(probe):
                store: TensorStore = plugin.open_path(probe, verify)
                return store
        raise _refusal(probe)


def _refusal(probe: Probe) -> LstmInspectError:
    """Why no reader takes the path: what stands in for a file, a reader's near miss, or what it looks like."""
    from .formats.unread import refusal, refuse_placeholder  # only on the way to an error

    refuse_placeholder(probe)
    for plugin in plugins():
        near_miss = getattr(plugin, "near_miss", None)
        said = near_miss(probe) if near_miss is not None else None
        if said is not None:
            return said
    return refusal(probe, reads())


def reads() -> str:
    """What lstm-inspect reads, in words: every plugin's READS, in order."""
    said = [plugin.READS for plugin in plugins()]
    return ", ".join(said[:-1]) + " and " + said[-1] if len(said) > 1 else said[0]
