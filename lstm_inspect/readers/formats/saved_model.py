"""SavedModel directories (readers/saved_model.py), local or remote: a `saved_model.pb` or
`saved_model.pbtxt` beside `variables/` (tensorflow/python/saved_model/path_helpers.py, constants.py)."""

from __future__ import annotations

import os

from ...errors import LstmInspectError, UnsupportedFormat
from .. import files
from ..base import TensorStore
from ..urls import is_url
from .probe import Probe

__all__ = ["GRAPH_FILES", "READS", "VARIABLES_DIRECTORY", "accept", "is_saved_model_dir", "near_miss", "open_path"]

READS = "SavedModel directories"
GRAPH_FILES = ("saved_model.pb", "saved_model.pbtxt")  # constants.py SAVED_MODEL_FILENAME_PB / _PBTXT
VARIABLES_DIRECTORY = "variables"  # constants.py VARIABLES_DIRECTORY


def is_saved_model_dir(path: str) -> bool:
    """Whether a directory (local or remote) holds a SavedModel's graph."""
    if not is_url(path):
        return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, name)) for name in GRAPH_FILES)
    # A remote directory's listing (one request, where the file system lists: S3, GCS) says
    # which of the names are there; over HTTP, which lists nothing, each name is looked up.
    listed = files.list_dir(path)
    return any(files.is_file(files.join(path, name)) for name in GRAPH_FILES if not listed or name in listed)


def accept(probe: Probe) -> bool:
    return probe.kind == "directory" and is_saved_model_dir(probe.path)


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
