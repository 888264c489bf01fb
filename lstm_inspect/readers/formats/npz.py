"""NumPy archives (readers/npz.py): an `.npz` of numeric arrays, such as `lstm-inspect export` writes
(numpy/lib/_npyio_impl.py savez: a zip whose members are all `.npy`), whatever its name."""

from __future__ import annotations

from ..base import TensorStore
from .probe import Probe

__all__ = ["READS", "accept", "open_path"]

READS = "NumPy archives of arrays (.npz, such as lstm-inspect export writes)"
_MEMBER_SUFFIX = ".npy"


def accept(probe: Probe) -> bool:
    """Claimed by name (a damaged `.npz` still hears from the npz reader what is wrong with it) or
    by a zip whose members are all `.npy` arrays."""
    if probe.kind != "file":
        return False
    if probe.name.lower().endswith(".npz"):
        return True
    members = probe.zip_members
    return bool(members) and all(name.endswith(_MEMBER_SUFFIX) for name in members or ())


def open_path(probe: Probe, verify: bool) -> TensorStore:
    from ..npz import open_npz

    store: TensorStore = open_npz(probe.path, verify=verify)
    return store
