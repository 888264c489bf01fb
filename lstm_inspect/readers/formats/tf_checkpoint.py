"""TensorFlow V2 checkpoints (readers/tf_bundle.py), claimed by name alone: a prefix (nothing at the
path, `prefix.index` beside it), its `.index` or `.data-NNNNN-of-NNNNN` file, the `.meta` graph that
Saver.save wrote beside its `.index`, or a directory holding a `checkpoint` state file
(tensorflow/core/util/tensor_bundle/naming.cc; checkpoint_management.py).
Nothing of a data shard is read to know it is one: listing a remote checkpoint fetches its index only.
"""

from __future__ import annotations

import re

from ...errors import LstmInspectError
from .. import files
from ..base import TensorStore
from .probe import Probe

__all__ = ["DATA_SUFFIX", "INDEX_SUFFIX", "READS", "STATE_FILE", "accept", "near_miss", "open_path"]

READS = "TensorFlow checkpoints (a prefix, its .index or .data-… file, or a directory holding a `checkpoint` file)"
INDEX_SUFFIX = ".index"  # naming.cc MetaFilename
META_SUFFIX = ".meta"  # saver.py meta_graph_suffix
DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")  # naming.cc DataFilename
STATE_FILE = "checkpoint"  # checkpoint_management.py: the CheckpointState of a directory


def accept(probe: Probe) -> bool:
    if probe.kind == "prefix":
        return True
    if probe.kind == "directory":
        # What the state file is (a FIFO, an LFS pointer, too large) the reader says.
        return files.lexists(probe.inside(STATE_FILE))
    if probe.name.endswith(META_SUFFIX):
        return files.exists(probe.path[: -len(META_SUFFIX)] + INDEX_SUFFIX)
    return probe.name.endswith(INDEX_SUFFIX) or DATA_SUFFIX.search(probe.name) is not None


def open_path(probe: Probe, verify: bool) -> TensorStore:
    from ..tf_bundle import open_checkpoint

    store: TensorStore = open_checkpoint(probe.path, verify=verify)
    return store


def near_miss(probe: Probe) -> LstmInspectError | None:
    """A directory without a state file, a V1 checkpoint, the graph or the state file given for
    the checkpoint beside it: said by the reader, which says the same to callers of resolve_prefix."""
    from ..tf_bundle import refusal

    return refusal(probe.path, probe.kind == "directory")
