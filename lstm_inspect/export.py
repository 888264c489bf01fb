"""Exporters: gate blocks to .npz, written block by block and atomically.

An .npz is a zip of .npy members (numpy/lib/_npyio_impl.py savez). Writing the members one
at a time, instead of handing np.savez every array at once, keeps at most one layer's
tensors in memory; writing to a temporary file renamed into place leaves nothing behind
when anything fails, Ctrl-C included.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from typing import IO

import numpy as np

from .api import Checkpoint
from .errors import OutputError

_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5", ".index")


def default_output(source_path: str, layout: str = "gates") -> str:
    """`<checkpoint name>.<layout>.npz` in the current directory."""
    name = os.path.basename(os.path.normpath(source_path))
    if ".data-" in name:
        name = name[: name.index(".data-")]
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{name or 'checkpoint'}.{layout}.npz"


@contextmanager
def atomic_output(path: str) -> Iterator[IO[bytes]]:
    """A file object that becomes `path` only if the block finishes without an exception."""
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory; give a file name, e.g. {os.path.join(path, 'gates.npz')}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"{path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part", dir=directory)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@dataclass
class ExportResult:
    path: str
    arrays: int = 0
    bytes: int = 0

    def to_dict(self) -> dict:
        return {"path": self.path, "arrays": self.arrays, "bytes": self.bytes}


def gate_arrays(
    ckpt: Checkpoint, layers: Iterable[str] = (), gates: Iterable[str] = ()
) -> Iterator[tuple[str, np.ndarray]]:
    """(key, array) for the default layout: `L/G/part`, `L/projection`, and 0-d `L/forget_bias`.
    One layer at a time: its tensors are released before the next layer is read."""
    for layer, blocks in groupby(ckpt.iter_blocks(layers, gates), key=lambda pair: pair[0]):
        for _, block in blocks:
            yield block.key, layer.read(block)
        yield f"{layer.name}/forget_bias", np.array(layer.spec.forget_bias, dtype=np.float32)
        layer.release()


def storable(array: np.ndarray) -> np.ndarray:
    """`array` as .npy can hold it: bfloat16 and float8 (ml_dtypes, numpy kind "V") would be saved
    as raw void bytes that np.load cannot read back as numbers (numpy/lib/format.py stores only
    builtin dtypes), so they are widened to float32, which holds every value exactly."""
    array = np.asanyarray(array)
    return array.astype(np.float32) if array.dtype.kind == "V" else array


def write_npz(
    path: str,
    arrays: Iterable[tuple[str, np.ndarray]],
    progress: Callable[[str, int], None] | None = None,
) -> ExportResult:
    """Write (key, array) pairs as an .npz that np.load reads, atomically.

    progress: called with (key, elements written) after each array."""
    result = ExportResult(path)
    try:
        _write_members(path, arrays, result, progress)
    except OSError as e:
        # A full disk or a failing device while writing, closing or renaming: atomic_output has
        # already removed the temporary file.
        raise OutputError(f"{path}: cannot write ({e.strerror or e}); nothing was written") from None
    return result


def _write_members(
    path: str,
    arrays: Iterable[tuple[str, np.ndarray]],
    result: ExportResult,
    progress: Callable[[str, int], None] | None,
) -> None:
    written: set[str] = set()
    with atomic_output(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays:
            name = key + ".npy"
            # zipfile cuts a member name at a NUL (ZipInfo.__init__): two arrays stored under one
            # name would leave only one of them readable.
            if zipfile.ZipInfo(name).filename != name or name in written:
                raise OutputError(f"{path}: the array {key!r} cannot be stored under its own name in an .npz")
            written.add(name)
            array = np.require(storable(array), requirements="C")  # keeps 0-d arrays 0-d
            with archive.open(name, "w", force_zip64=True) as member:
                # The header, then the array's own buffer: np.lib.format.write_array would copy the
                # data once more through tobytes() for a zip member, which is not a real file.
                np.lib.format.write_array_header_2_0(member, np.lib.format.header_data_from_array_1_0(array))
                member.write(memoryview(array.reshape(-1)).cast("B"))
            result.arrays += 1
            result.bytes += array.nbytes
            if progress is not None:
                progress(key, array.size)
