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

import functools
import importlib
import io
import math
import os
import sys
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from queue import Full, Queue
from typing import IO, Protocol, TypeVar, cast, runtime_checkable

import numpy as np

from ..errors import OutputError
from ..records import record
from ..results import ExportResult
from .keys import decode_key, encode_key
from .output import atomic_output, refuse_inputs

__all__ = [
    "Pieces",
    "Streamable",
    "decode_key",
    "encode_key",
    "storable",
    "stored_dtype",
    "use_fastest_crc32",
    "write_npz",
]

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
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise OutputError(
            f"{path}: the array {_shown(key)} has a name that is not valid text; an .npz cannot hold it"
        ) from None
    if size > _MAX_MEMBER_NAME_BYTES:
        raise OutputError(
            f"{path}: the array {_shown(key)} has a {size:,}-byte name, and a zip member's name holds at most "
            f"{_MAX_MEMBER_NAME_BYTES:,}; its layer cannot be exported to an .npz (export the others with --layer)"
        )
    return name


def _shown(key: str) -> str:
    return repr(key if len(key) <= 80 else key[:50] + "…" + key[-30:])


def stored_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype .npy holds values of `dtype` in: bfloat16 and float8 (ml_dtypes, numpy kind "V")
    would be saved as raw void bytes that np.load cannot read back as numbers (numpy/lib/format.py
    stores only builtin dtypes), so they are widened to float32, which holds every value exactly."""
    return np.dtype(np.float32) if dtype.kind == "V" else np.dtype(dtype)


def storable(array: np.ndarray) -> np.ndarray:
    """`array` as .npy can hold it (see stored_dtype)."""
    array = np.asanyarray(array)
    return array.astype(stored_dtype(array.dtype))


@runtime_checkable
class Pieces(Protocol):
    """An array made a piece at a time (slicer.Packed): its shape, dtype and values in C order."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def pieces(self, piece_bytes: int) -> Iterator[np.ndarray]: ...


Streamable = np.ndarray | Pieces


def use_fastest_crc32() -> str:
    """Make zipfile checksum members with the fastest CRC-32 installed, once; its name.

    zipfile computes each member's CRC-32 with its module-level `crc32` (Lib/zipfile.py
    _ZipWriteFile.write and ZipExtFile._update_crc), zlib's, which runs at 2.7-3.2 GB/s here; ISA-L's
    (the `isal` package) and zlib-ng's compute the same function at 9-70 GB/s. Neither is a
    dependency, as neither has wheels for every platform crc32c has (Windows on ARM), so
    `pip install 'lstm-inspect[fast]'` adds ISA-L where it installs, and zlib remains the fallback.
    """
    global _CRC32_NAME
    if _CRC32_NAME is None:
        _CRC32_NAME = "zlib"
        for module, name in (("isal.isal_zlib", "isal"), ("zlib_ng.zlib_ng", "zlib-ng")):
            try:
                crc32 = importlib.import_module(module).crc32
            except ImportError:
                continue
            zipfile.crc32 = crc32  # type: ignore[attr-defined]
            _CRC32_NAME = name
            break
    return _CRC32_NAME


_CRC32_NAME: str | None = None


def write_npz(
    path: str,
    arrays: Iterable[tuple[str, Streamable]],
    progress: Callable[[str, int], None] | None = None,
    *,
    inputs: Iterable[str] = (),
    replace: bool = True,
    stream: IO[bytes] | None = None,
) -> ExportResult:
    """Write (key, array) pairs as an .npz that np.load reads, atomically (see atomic_output for
    `inputs` and `replace`). Member names are the keys through encode_key. An array is a numpy
    array (a view is copied out a piece at a time), or anything with `shape`, `dtype` and
    `pieces(piece_bytes)` giving its values in C order (slicer.Packed).

    progress: called with (key, bytes of values just written) after each piece.
    stream: write to this binary stream instead (stdout for `-o -`), as it goes, not atomically; it
    is refused if it is one of `inputs`, and `path` only names it in messages."""
    use_fastest_crc32()
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
    arrays: Iterable[tuple[str, Streamable]],
    result: ExportResult,
    progress: Callable[[str, int], None] | None,
) -> None:
    written: set[str] = set()
    writeback = _Writeback(f)
    # zipfile writes to an unseekable stream too (a pipe), with a data descriptor after each member.
    output = cast(IO[bytes], f if isinstance(f, _WriteOnly) else _Gathered(f))
    archive = zipfile.ZipFile(output, "w", zipfile.ZIP_STORED, allowZip64=True)
    try:
        batches = _in_background(_batches(_pieces(arrays), _PIECE_BYTES), _PIECES_AHEAD)
        with batches as items, ExitStack() as member_file:
            member: _Member | None = None
            out: IO[bytes] | None = None
            for item in (item for batch in items for item in batch):  # each _Member is followed by its pieces
                if isinstance(item, _Member):
                    if out is not None:
                        member_file.close()
                        _done(result, member)
                    member, name = item, _member_name(path, item.key)
                    if name in written:
                        raise OutputError(
                            f"{path}: two arrays are both named {member.key!r}; an .npz keeps only one of them"
                        )
                    written.add(name)
                    out = member_file.enter_context(archive.open(name, "w", force_zip64=True))
                    out.write(_npy_header(member.descr, member.shape))
                    continue
                assert out is not None and member is not None
                out.write(item)  # type: ignore[call-overload]
                writeback.wrote(item.nbytes)
                if progress is not None:
                    progress(member.key, item.nbytes)
            if out is not None:
                member_file.close()
                _done(result, member)
    except BaseException:
        # What failed (a Ctrl-C among them) is what the user is told: the half-written archive goes
        # with its .part file, unclosed, since zipfile refuses to close one with a member still open
        # (a ValueError in place of the KeyboardInterrupt that left it open); no fp, no close.
        archive.fp = None
        raise
    archive.close()


class _Writeback:
    """Starts the disk writes of what is written so far, every _WRITEBACK bytes, so that the sync
    before the output's rename (writers/output.py) waits for the last few pieces only: syncing
    256 MiB written to the page cache took 0.11-0.2 s here, a fifth of the export. Linux's
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) starts them and does not wait (Python's os
    has no binding for it: libc's, through ctypes); elsewhere, and for a pipe, nothing is done."""

    def __init__(self, f: IO[bytes]) -> None:
        self.fd: int | None = None
        self.pending = 0
        self.call = _sync_file_range()
        if self.call is not None:
            with suppress(AttributeError, OSError, ValueError):
                self.fd = f.fileno()

    def wrote(self, nbytes: int) -> None:
        self.pending += nbytes
        if self.fd is None or self.call is None or self.pending < _WRITEBACK:
            return
        self.pending = 0
        if self.call(self.fd, 0, 0, _SYNC_FILE_RANGE_WRITE) != 0:  # a pipe (ESPIPE): the final sync only
            self.fd = None


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], call)


_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h
_WRITEBACK = 32 << 20


@functools.lru_cache(maxsize=256)
def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """The .npy header of an array (format 2.0, as the members always were): numpy builds it from
    a dict's repr, 20 µs a member, which the same few shapes of thousands of layers need once."""
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


class _Gathered:
    """The output file as zipfile sees it: small writes gathered in memory and written about
    _GATHER_BYTES at a time, between members, and seeks within what is gathered done there.
    zipfile writes a member's header, its data, then seeks back to the header to fill in its
    CRC-32 and size (Lib/zipfile.py _ZipWriteFile.close); on a file, each seek writes out the
    buffer, so the 78,000 members of an export of 6,000 small layers cost 234,000 seeks and as
    many writes (3.5 s). Writes of _DIRECT_BYTES or more (pieces of large tensors) go to the file
    as they come."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.base = f.tell()  # where the gathered bytes go in the file, and where `f` stands
        self.gathered = bytearray()
        self.position = 0  # within the gathered bytes

    def tell(self) -> int:
        return self.base + self.position

    def write(self, data: bytes) -> int:  # or a numpy piece: anything with the buffer protocol
        size = len(data) if type(data) is bytes else memoryview(data).nbytes
        if self.position != len(self.gathered):  # over what is gathered (a member's header)
            self.gathered[self.position : self.position + size] = memoryview(data).cast("B")
        elif size >= _DIRECT_BYTES:
            self._spill()
            self.f.write(data)
            self.base += size
            return size
        else:  # numpy adds itself to a bytearray as numbers: its bytes through a memoryview
            self.gathered += data if type(data) is bytes else memoryview(data).cast("B")
        self.position += size
        if self.position >= 4 * _GATHER_BYTES and self.position == len(self.gathered):
            self._spill()  # a member of many small writes (zipfile's central directory)
        return size

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = offset if whence == os.SEEK_SET else self.tell() + offset
        if whence not in (os.SEEK_SET, os.SEEK_CUR):
            raise io.UnsupportedOperation("seek from the end")
        if self.base <= target <= self.base + len(self.gathered):
            self.position = target - self.base
            # Written out after a member, when zipfile seeks back to the end: a header it rewrites
            # then never lies before what is gathered.
            if self.position == len(self.gathered) >= _GATHER_BYTES:
                self._spill()
        else:
            self._spill()
            self.f.seek(target)
            self.base = target
        return target

    def flush(self) -> None:
        self._spill()
        self.f.flush()

    def _spill(self) -> None:
        """Write what is gathered and stand where `position` is."""
        if self.gathered:
            self.f.write(self.gathered)
            if self.position != len(self.gathered):
                self.f.seek(self.base + self.position)
        self.base += self.position
        self.gathered = bytearray()
        self.position = 0


_GATHER_BYTES = 1 << 16
_DIRECT_BYTES = 1 << 12


def _batches(items: Iterator[_T], piece_bytes: int) -> Iterator[list[_T]]:
    """`items` in lists holding about `piece_bytes` of pieces at most (or one larger piece): the
    reading thread hands over a list at a time, as a thread switch per item of a small layer's
    thirteen arrays cost more than making them."""
    batch: list[_T] = []
    size = 0
    for item in items:
        nbytes = item.nbytes if isinstance(item, np.ndarray) else 0
        if batch and (size + nbytes > piece_bytes or len(batch) >= _BATCH_ITEMS):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += nbytes
    if batch:
        yield batch


_BATCH_ITEMS = 512


def _done(result: ExportResult, member: _Member | None) -> None:
    assert member is not None
    result.arrays += 1
    result.bytes += member.nbytes


class _WriteOnly:
    """A stream that zipfile sees as unseekable, so that it writes each member once, as it goes, with
    a data descriptor after it: the same bytes to a pipe or a file, and correct where seeking back to
    a member's header cannot work (a file opened with `>>` appends every write)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.write = stream.write
        self.flush = stream.flush


@record
class _Member:
    """The .npy member of one array, whose bytes follow as arrays, up to the next _Member."""

    key: str
    descr: str
    shape: tuple[int, ...]
    nbytes: int


def _pieces(arrays: Iterable[tuple[str, Streamable]]) -> Iterator[_Member | np.ndarray]:
    """Per array, its _Member, then its bytes in C order as new arrays of about _PIECE_BYTES each."""
    for key, array in arrays:
        packed = _is_pieces(array)
        values = array if packed else np.asanyarray(array)
        dtype = stored_dtype(values.dtype)
        yield _Member(key, _descr(dtype), tuple(values.shape), math.prod(values.shape) * dtype.itemsize)
        pieces = cast(Pieces, values).pieces(_PIECE_BYTES) if packed else _rows(cast(np.ndarray, values), _PIECE_BYTES)
        for piece in pieces:
            yield piece if piece.dtype == dtype else piece.astype(dtype)
        # Let go of the array before the next is made: a view holds its whole stored tensor.
        del array, values, pieces


def _is_pieces(array: object) -> bool:
    """Whether `array` is made a piece at a time (Pieces), asked once per type: isinstance against
    the runtime-checkable protocol looks up each of its members, 30 µs a call, which the arrays of
    6,000 layers make seconds."""
    kind = type(array)
    if kind not in _PIECES_TYPES:
        _PIECES_TYPES[kind] = not isinstance(array, np.ndarray) and isinstance(array, Pieces)
    return _PIECES_TYPES[kind]


_PIECES_TYPES: dict[type, bool] = {}


@functools.lru_cache(maxsize=64)
def _descr(dtype: np.dtype) -> str:
    return cast(str, np.lib.format.dtype_to_descr(dtype))


def _rows(array: np.ndarray, piece_bytes: int) -> Iterator[np.ndarray]:
    """An array's values in C order as new arrays of about `piece_bytes`: rows at a time when it is
    a view, as a gate block is (columns of its tensor)."""
    rows = array.reshape(-1) if array.ndim == 0 or array.flags.c_contiguous else array
    step = max(1, piece_bytes // max(rows[:1].nbytes, 1))
    for start in range(0, len(rows), step):
        yield rows[start : start + step].copy()


@record
class _End:
    """The last item from the background thread, with what it raised if anything."""

    error: BaseException | None


@contextmanager
def _in_background(items: Iterator[_T], depth: int) -> Iterator[Iterator[_T]]:
    """`items`, made by a thread of their own at most `depth` ahead of the caller, who gets what
    the thread raises; leaving the block stops the thread, waiting for it _ABANDON_SECONDS at
    most (it stops at its next item: a Ctrl-C must not wait for a slow read to finish)."""
    queue: Queue[_T | _End] = Queue(depth)
    stop = threading.Event()

    def put(item: _T | _End) -> None:
        while not stop.is_set():
            with suppress(Full):
                queue.put(item, timeout=_POLL)
                return

    def produce() -> None:
        error = None
        try:
            for item in items:
                put(item)
                if stop.is_set():
                    break
        except BaseException as e:  # handed to the caller, who shows or handles it
            error = e
        put(_End(error))

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
        # A finished thread has handed over its end; after an error or Ctrl-C it stops at its next
        # item, and a read it is stuck in is left to end with the program.
        thread.join(None if finished else _ABANDON_SECONDS)


# How often a blocked producer looks whether it should stop.
_POLL = 0.02
