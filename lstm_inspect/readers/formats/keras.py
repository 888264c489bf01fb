"""Keras files (readers/keras/): an HDF5 file (a Keras 1/2/3 `.h5`, a Keras 3 `.weights.h5`) or a
Keras 3 `.keras` zip (keras/src/saving/saving_lib.py: config.json, metadata.json, model.weights.h5).

Claimed by name (`.keras`, `.h5`, `.hdf5`: a file cut short or of another kind still hears from
the Keras reader what is wrong with it), by the HDF5 signature, or by the members of a zip.
"""

from __future__ import annotations

from ...errors import LstmInspectError, UnsupportedFormat
from ..base import TensorStore
from ..hdf5.tree import SIGNATURE as HDF5_SIGNATURE
from .probe import Probe

__all__ = ["CONFIG_MEMBER", "METADATA_MEMBER", "NPZ_WEIGHTS_MEMBER", "READS", "WEIGHTS_MEMBER", "accept", "open_path"]

READS = "Keras files (.keras, .h5, .weights.h5)"
ZIP_SUFFIX = ".keras"
HDF5_SUFFIXES = (".h5", ".hdf5")
WEIGHTS_MEMBER = "model.weights.h5"
NPZ_WEIGHTS_MEMBER = "model.weights.npz"  # saving_lib's weights_format="npz"
CONFIG_MEMBER = "config.json"
# {"keras_version": ..., "date_saved": ...} (saving_lib.py _serialize_model_as_json); Keras
# 2.13–2.15 wrote .keras zips too, so the version, not the format, says which Keras it was.
METADATA_MEMBER = "metadata.json"


def accept(probe: Probe) -> bool:
    if probe.kind != "file":
        return False
    if probe.name.endswith((ZIP_SUFFIX, *HDF5_SUFFIXES)) or probe.head.startswith(HDF5_SIGNATURE):
        return True
    members = probe.zip_members
    return members is not None and is_keras_archive(members)


def is_keras_archive(members: list[str]) -> bool:
    """Whether a zip's members are those of a `.keras` file, whatever its name."""
    names = set(members)
    return bool(names & {WEIGHTS_MEMBER, NPZ_WEIGHTS_MEMBER}) or {CONFIG_MEMBER, METADATA_MEMBER} <= names


def open_path(probe: Probe, verify: bool) -> TensorStore:
    from ..keras import open_keras_h5, open_keras_zip

    if probe.head.startswith(HDF5_SIGNATURE) or probe.name.endswith(HDF5_SUFFIXES):
        return open_keras_h5(probe.path)
    return open_keras_zip(probe.path, verify=verify)


def near_miss(probe: Probe) -> LstmInspectError | None:
    """A model config on its own (config.json, or a model.to_json() file): the weights are elsewhere."""
    head = probe.head.lstrip()
    if probe.kind == "file" and head.startswith(b"{") and b'"class_name"' in head:
        return UnsupportedFormat(
            f"{probe.path}: a Keras model config, which holds no weights; give the .keras file it came "
            f"from, or the weights file (.weights.h5, .h5) saved with it"
        )
    return None
