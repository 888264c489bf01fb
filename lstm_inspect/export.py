"""Exporters: gate blocks to .npz, written block by block and atomically.

An .npz is a zip of .npy members (numpy/lib/_npyio_impl.py savez). Writing the members one
at a time, instead of handing np.savez every array at once, keeps at most one layer's
tensors in memory; writing to a temporary file renamed into place leaves nothing behind
when anything fails, Ctrl-C included.

Two threads share the work, as their halves cost about the same (for the benchmark's 682 MB
of LSTM weights, 0.55 s of CPU each): one reads the arrays (the tensors' bytes and CRC-32C,
the gate blocks copied out of them) and hands each over in pieces; the caller's thread
writes them (zipfile's CRC-32 of each member, then write()). The pieces are copies, so the
writing side never holds a tensor the reading side has released: memory stays one layer's
tensors plus _PIECES_AHEAD pieces.
"""

from __future__ import annotations

import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import groupby, islice
from queue import Empty, Queue
from typing import IO, TypeVar

import numpy as np

from .api import Checkpoint
from .errors import OutputError

_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5", ".index")
# A piece stays in the CPU cache from its copy to its write; a gate block copied out whole
# (4 MiB in the benchmark) does not, and costs each thread 15% more CPU. Pieces of 256 KiB to
# 2 MiB measure the same, and so do 2 to 32 pieces ahead.
_PIECE_BYTES = 1 << 20
_PIECES_AHEAD = 8

_T = TypeVar("_T")


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
            yield block.key, layer.view(block)
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
        with _in_background(_pieces(arrays), _PIECES_AHEAD) as pieces:
            for member in pieces:  # each _Member is followed by its pieces
                key, name = member.key, member.key + ".npy"
                # zipfile cuts a member name at a NUL (ZipInfo.__init__): two arrays stored under one
                # name would leave only one of them readable.
                if zipfile.ZipInfo(name).filename != name or name in written:
                    raise OutputError(f"{path}: the array {key!r} cannot be stored under its own name in an .npz")
                written.add(name)
                with archive.open(name, "w", force_zip64=True) as out:
                    np.lib.format.write_array_header_2_0(out, member.header)
                    for piece in islice(pieces, member.pieces):
                        out.write(piece)
                result.arrays += 1
                result.bytes += member.nbytes
                if progress is not None:
                    progress(key, member.elements)


@dataclass
class _Member:
    """The .npy member of one array, whose bytes follow in `pieces` arrays."""

    key: str
    header: dict
    elements: int
    nbytes: int
    pieces: int


def _pieces(arrays: Iterable[tuple[str, np.ndarray]]) -> Iterator[_Member | np.ndarray]:
    """Per array, its _Member, then its bytes in C order as new arrays of about _PIECE_BYTES each."""
    for key, array in arrays:
        array = storable(array)
        # Rows at a time when the array is a view, as a gate block is (columns of its tensor).
        rows = array.reshape(-1) if array.ndim == 0 or array.flags.c_contiguous else array
        step = max(1, _PIECE_BYTES // max(rows[:1].nbytes, 1))
        starts = range(0, len(rows), step)
        header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
        yield _Member(key, header, array.size, array.nbytes, len(starts))
        for start in starts:
            yield rows[start : start + step].copy()


@dataclass
class _End:
    """The last item from the background thread, with what it raised if anything."""

    error: BaseException | None


@contextmanager
def _in_background(items: Iterator[_T], depth: int) -> Iterator[Iterator[_T]]:
    """`items`, made by a thread of their own at most `depth` ahead of the caller, who gets what
    the thread raises; leaving the block stops the thread."""
    queue: Queue[_T | _End] = Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        error = None
        try:
            for item in items:
                queue.put(item)
                if stop.is_set():
                    break
        except BaseException as e:  # handed to the caller, who shows or handles it
            error = e
        queue.put(_End(error))

    def consume() -> Iterator[_T]:
        while not isinstance(item := queue.get(), _End):
            yield item
        if item.error is not None:
            raise item.error

    # A daemon: a second Ctrl-C while the thread finishes a read must still end the program.
    thread = threading.Thread(target=produce, name="lstm-inspect export", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # take what it is blocked putting, until it sees `stop`
            with suppress(Empty):
                queue.get(timeout=0.01)
