"""The .npz writer: (key, array) pairs written member by member, atomically (writers/output.py).

An .npz is a zip of .npy members (numpy/lib/_npyio_impl.py savez). Writing the members one at a
time, instead of handing np.savez every array at once, keeps at most one layer's tensors in memory.

Two threads share the work, as their halves cost about the same (for the benchmark's 682 MB of
LSTM weights, 0.55 s of CPU each): one reads the arrays (the tensors' bytes and CRC-32C, the gate
blocks copied out of them) and hands each over in pieces; the caller's thread writes them
(zipfile's CRC-32 of each member, then write()). The pieces are copies, so the writing side never
holds a tensor the reading side has released: memory stays one layer's tensors plus
_PIECES_AHEAD pieces. Member names are encoded so that no extractor can write outside its folder
(encode_key, decode_key).
"""

from __future__ import annotations

import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from queue import Empty, Queue
from typing import IO, TypeVar, cast

import numpy as np

from ..errors import OutputError
from ..results import ExportResult
from .keys import decode_key, encode_key
from .output import atomic_output, refuse_inputs

__all__ = ["decode_key", "encode_key", "storable", "write_npz"]

# A piece stays in the CPU cache from its copy to its write; a gate block copied out whole
# (4 MiB in the benchmark) does not, and costs each thread 15% more CPU. Pieces of 256 KiB to
# 2 MiB measure the same, and so do 2 to 32 pieces ahead.
_PIECE_BYTES = 1 << 20
_PIECES_AHEAD = 8
# The file name field of a zip header is 16 bits (APPNOTE.TXT 4.4.10); zipfile fails with a
# struct.error past it.
_MAX_MEMBER_NAME_BYTES = 0xFFFF

# How long an export that failed or was interrupted waits for its reading thread to stop.
_ABANDON_SECONDS = 0.2

_T = TypeVar("_T")


def _member_name(path: str, key: str) -> str:
    name = encode_key(key) + ".npy"
    shown = repr(key if len(key) <= 80 else key[:50] + "…" + key[-30:])
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise OutputError(
            f"{path}: the array {shown} has a name that is not valid text; an .npz cannot hold it"
        ) from None
    if size > _MAX_MEMBER_NAME_BYTES:
        raise OutputError(
            f"{path}: the array {shown} has a {size:,}-byte name, and a zip member's name holds at most "
            f"{_MAX_MEMBER_NAME_BYTES:,}; its layer cannot be exported to an .npz (export the others with --layer)"
        )
    return name


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
    *,
    inputs: Iterable[str] = (),
    replace: bool = True,
    stream: IO[bytes] | None = None,
) -> ExportResult:
    """Write (key, array) pairs as an .npz that np.load reads, atomically (see atomic_output for
    `inputs` and `replace`). Member names are the keys through encode_key.

    progress: called with (key, elements written) after each array.
    stream: write to this binary stream instead (stdout for `-o -`), as it goes, not atomically; it
    is refused if it is one of `inputs`, and `path` only names it in messages."""
    result = ExportResult(path)
    if stream is None:
        with atomic_output(path, inputs, replace) as f:
            _write_members(path, f, arrays, result, progress)
        return result
    try:
        opened: os.stat_result | None = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        opened = None  # not a file descriptor (an in-memory stream), so not an input file either
    refuse_inputs(path, inputs, None, opened)
    try:
        _write_members(path, cast(IO[bytes], _WriteOnly(stream)), arrays, result, progress)
        stream.flush()
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    return result


def _write_members(
    path: str,
    f: IO[bytes],
    arrays: Iterable[tuple[str, np.ndarray]],
    result: ExportResult,
    progress: Callable[[str, int], None] | None,
) -> None:
    written: set[str] = set()
    # zipfile writes to an unseekable stream too (a pipe), with a data descriptor after each member.
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with _in_background(_pieces(arrays), _PIECES_AHEAD) as pieces:
            for member in pieces:  # each _Member is followed by its pieces
                assert isinstance(member, _Member)
                key, name = member.key, _member_name(path, member.key)
                if name in written:
                    raise OutputError(f"{path}: two arrays are both named {key!r}; an .npz keeps only one of them")
                written.add(name)
                with archive.open(name, "w", force_zip64=True) as out:
                    np.lib.format.write_array_header_2_0(out, member.header)
                    for piece in islice(pieces, member.pieces):
                        out.write(piece)  # type: ignore[call-overload]  # after a _Member, its arrays
                result.arrays += 1
                result.bytes += member.nbytes
                if progress is not None:
                    progress(key, member.elements)


class _WriteOnly:
    """A stream that zipfile sees as unseekable, so that it writes each member once, as it goes, with
    a data descriptor after it: the same bytes to a pipe or a file, and correct where seeking back to
    a member's header cannot work (a file opened with `>>` appends every write)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.write = stream.write
        self.flush = stream.flush


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

    # A daemon: it never keeps the program alive, so that Ctrl-C during a slow read (a remote
    # file, a stalled disk) ends the program at once; what it reads it only hands to this thread.
    thread = threading.Thread(target=produce, name="lstm-inspect export", daemon=True)
    thread.start()
    finished = False
    try:
        yield consume()
        finished = True
    finally:
        stop.set()
        # Take what it is blocked putting, until it sees `stop`; after an error or Ctrl-C only for
        # a moment: a read it is stuck in is left to end with the program.
        deadline = None if finished else time.monotonic() + _ABANDON_SECONDS
        while thread.is_alive() and (deadline is None or time.monotonic() < deadline):
            with suppress(Empty):
                queue.get(timeout=0.01)
