"""SavedModel directories (readers/saved_model.py): a `saved_model.pb` or `saved_model.pbtxt`
beside `variables/` (tensorflow/python/saved_model/path_helpers.py, constants.py)."""

from __future__ import annotations

import os

from ...errors import LstmInspectError, UnsupportedFormat
from ..base import TensorStore
from .probe import Probe

__all__ = ["GRAPH_FILES", "READS", "VARIABLES_DIRECTORY", "accept", "is_saved_model_dir", "near_miss", "open_path"]

READS = "SavedModel directories"
GRAPH_FILES = ("saved_model.pb", "saved_model.pbtxt")  # constants.py SAVED_MODEL_FILENAME_PB / _PBTXT
VARIABLES_DIRECTORY = "variables"  # constants.py VARIABLES_DIRECTORY


def is_saved_model_dir(path: str) -> bool:
    """Whether a local directory holds a SavedModel's graph."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, name)) for name in GRAPH_FILES)


def accept(probe: Probe) -> bool:
    # Local only: the SavedModel reader finds its files with os.path.
    return probe.kind == "directory" and not probe.remote and is_saved_model_dir(probe.path)


def open_path(probe: Probe, verify: bool) -> TensorStore:
    from ..saved_model import open_saved_model

    store: TensorStore = open_saved_model(probe.path)
    return store


def near_miss(probe: Probe) -> LstmInspectError | None:
    """The `variables/` directory or the text graph of a SavedModel, given for the SavedModel (the
    binary saved_model.pb opens as its SavedModel: frozen_graph.py tells it by its content)."""
    if probe.remote or (probe.kind, probe.name) not in (("directory", VARIABLES_DIRECTORY), ("file", GRAPH_FILES[1])):
        return None
    saved_model = probe.parent or os.curdir
    if not is_saved_model_dir(saved_model):
        return None
    part = "variables directory" if probe.kind == "directory" else "graph"
    return UnsupportedFormat(f"{probe.path}: the {part} of the SavedModel {saved_model}; give that directory")
