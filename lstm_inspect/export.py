"""Exporters: gate blocks to .npz, written block by block and atomically.

An .npz is a zip of .npy members (numpy/lib/_npyio_impl.py savez). Writing the members one
at a time, instead of handing np.savez every array at once, keeps at most one layer's
tensors in memory; writing to a temporary file renamed into place leaves nothing behind
when anything fails, Ctrl-C, SIGTERM and SIGHUP included.

Two threads share the work, as their halves cost about the same (for the benchmark's 682 MB
of LSTM weights, 0.55 s of CPU each): one reads the arrays (the tensors' bytes and CRC-32C,
the gate blocks copied out of them) and hands each over in pieces; the caller's thread
writes them (zipfile's CRC-32 of each member, then write()). The pieces are copies, so the
writing side never holds a tensor the reading side has released: memory stays one layer's
tensors plus _PIECES_AHEAD pieces.

The output is treated as carefully as the input: it may not be (or link to) a file the export
reads, nor anything but a regular file; the temporary file carries the writer's pid, so that one
left by a killed run is recognised and removed by the next export to that path; the data and the
rename are synced to disk; member names are encoded so that no extractor can write outside its
folder (encode_key, decode_key).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import signal
import stat
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import groupby, islice
from queue import Empty, Queue
from types import FrameType
from typing import IO, TypeVar, cast

import numpy as np

from .api import Checkpoint
from .errors import OutputError
from .readers.files import describe_kind

# A piece stays in the CPU cache from its copy to its write; a gate block copied out whole
# (4 MiB in the benchmark) does not, and costs each thread 15% more CPU. Pieces of 256 KiB to
# 2 MiB measure the same, and so do 2 to 32 pieces ahead.
_PIECE_BYTES = 1 << 20
_PIECES_AHEAD = 8
# The file name field of a zip header is 16 bits (APPNOTE.TXT 4.4.10); zipfile fails with a
# struct.error past it.
_MAX_MEMBER_NAME_BYTES = 0xFFFF
# `.<output name>.<pid>.<16 hex digits>.part`, beside the output.
_PART_NAME = re.compile(r"(\d+)\.[0-9a-f]{16}\.part")

_T = TypeVar("_T")


def default_output(source_path: str, layout: str = "gates") -> str:
    """`<input file name>.<layout>.npz` in the current directory, for the path of an open file
    (Checkpoint.path: a TF checkpoint's prefix, whichever of its files was given). The whole name
    (`model.h5` gives `model.h5.keras.npz`), so that files of one name and different kinds never
    share an output."""
    return f"{os.path.basename(os.path.normpath(source_path)) or 'checkpoint'}.{layout}.npz"


def output_format(path: str, layout: str) -> str:
    """What `export -o path` writes: "onnx" (a runnable model) for a name ending in .onnx, in any
    case, with --layout onnx; "npz" for a name ending in .npz. Any other name is refused with the
    name to give instead: a file named out.txt or model.h5 holding an npz misleads whoever opens it."""
    _require_file_name(path)
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise _not_a_file(path, mode)  # said before any name is suggested for it
    stem, suffix = os.path.splitext(path)
    if suffix.lower() == ".onnx" and layout == "onnx":
        return "onnx"
    if suffix.lower() == ".npz":
        return "npz"
    if suffix.lower() == ".onnx":
        raise OutputError(
            f"{path}: an .onnx model is written with --layout onnx; add it, or give -o {stem}.npz for the arrays"
        )
    model = f", or -o {stem}.onnx for a runnable ONNX model" if layout == "onnx" else ""
    raise OutputError(f"{path}: export writes an .npz, so the name must end in .npz: give -o {stem}.npz{model}")


def _require_file_name(path: str) -> None:
    if not path:
        raise OutputError("the output file name is empty; give -o FILE.npz, or -o - for stdout")
    if path.endswith(os.sep) or (os.altsep is not None and path.endswith(os.altsep)):
        raise OutputError(f"{path}: names a directory; give a file name, e.g. {os.path.join(path, 'gates.npz')}")


def _not_a_file(path: str, mode: int) -> OutputError:
    if stat.S_ISDIR(mode):
        return OutputError(f"{path}: is a directory; give a file name, e.g. {os.path.join(path, 'gates.npz')}")
    return OutputError(f"{path}: is {describe_kind(mode)}; export writes regular files only (-o - writes to stdout)")


# ---- member names -------------------------------------------------------------------------------

# `%` (the escape itself), `\` (a folder separator on Windows), and the C0 and C1 control
# characters and DEL (a NUL ends a zip name in zipfile's ZipInfo, a newline fakes a listing).
_ESCAPED_CHARACTERS = re.compile(r"[%\\\x00-\x1f\x7f-\x9f]")
# A folder component made of dots and spaces with two dots or more: `..`, and names that Windows,
# which drops a component's trailing dots and spaces, may read as `..` (`.. `, `...`).
_PARENT_COMPONENT = re.compile(r"[. ]*\.[. ]*\.[. ]*")
_DRIVE = re.compile(r"[A-Za-z]:")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def encode_key(key: str) -> str:
    """`key` as an npz member name that stays inside any folder it is extracted to: `%`, `\\` and
    control characters, the dots of a `..` component, a leading `/` and a drive's `:` become
    `%XX` (their code in hex). Ordinary names come back unchanged; decode_key undoes it."""

    def percent(match: re.Match[str]) -> str:
        return f"%{ord(match[0]):02X}"

    parts = [_ESCAPED_CHARACTERS.sub(percent, part) for part in key.split("/")]
    name = "/".join(part.replace(".", "%2E") if _PARENT_COMPONENT.fullmatch(part) else part for part in parts)
    if name.startswith("/"):
        name = "%2F" + name[1:]
    if _DRIVE.match(name):
        name = name[0] + "%3A" + name[2:]
    return name


def decode_key(name: str) -> str:
    """The key an array was exported under, from its name in the npz (`np.load(f).files`)."""
    return _ESCAPE.sub(lambda match: chr(int(match[1], 16)), name)


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


# ---- the output file ----------------------------------------------------------------------------


def check_output(path: str, inputs: Iterable[str] = (), replace: bool = True) -> tuple[str, os.stat_result | None]:
    """Where an export to `path` lands (symbolic links followed) and what is there now; refuses a
    path that is, or links to, one of `inputs`, that is not a regular file, or, unless `replace`,
    that exists. Nothing is written."""
    _require_file_name(path)
    target = os.path.realpath(path)
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror})") from None
    refuse_inputs(path, inputs, target, existing)
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise _not_a_file(path, existing.st_mode)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise OutputError(f"{path}: directory {directory} does not exist")
    if existing is not None and not replace:
        raise _exists(path)
    return target, existing


def refuse_inputs(path: str, inputs: Iterable[str], target: str | None, existing: os.stat_result | None) -> None:
    """Refuse an output (resolved to `target`, now `existing`) that would replace one of `inputs`:
    the same name once links are resolved, or the same file (a hard link) by device and inode."""
    for source in inputs:
        try:
            source_stat: os.stat_result | None = os.stat(source)
        except OSError:
            source_stat = None
        same_inode = existing is not None and source_stat is not None and os.path.samestat(existing, source_stat)
        if same_inode or os.path.realpath(source) == target:
            raise OutputError(
                f"{path}: is the input file {source} (or a link to it); writing there would destroy it, "
                "so choose another output name"
            )


def _exists(path: str) -> OutputError:
    return OutputError(
        f"{path}: exists, and an export replaces a file only when -o names it: give -o {path} to replace it, or --force"
    )


@contextmanager
def atomic_output(path: str, inputs: Iterable[str] = (), replace: bool = True) -> Iterator[IO[bytes]]:
    """A file object that becomes `path` only if the block finishes without an exception.

    inputs: the files the output is made from (TensorStore.files()), never to be replaced.
    replace: whether an existing file at `path` may be replaced (atomically).
    The file gets the mode of the file it replaces, else 0o666 less the umask, as any program's
    new file; its data is synced before the rename, and the rename after it. SIGTERM and SIGHUP
    (when they would kill the program) remove the temporary file and exit with 128 + the signal.
    An OSError while writing becomes an OutputError."""
    target, existing = check_output(path, inputs, replace)
    directory, base = os.path.split(target)
    _remove_stale_parts(directory, base)
    with _Termination() as termination:
        part = None
        try:
            fd, part = _create_part(directory, base)
            with os.fdopen(fd, "wb") as f:
                yield f
                termination.defer()
                if existing is not None:
                    os.fchmod(f.fileno(), stat.S_IMODE(existing.st_mode) & 0o666)
                f.flush()
                # Without it a power loss after the rename can leave an empty file under the final name.
                os.fsync(f.fileno())
            termination.check()
            _commit(part, target, replace, path)
        except BaseException as e:
            termination.defer()
            if part is not None:
                with suppress(FileNotFoundError):
                    os.unlink(part)
            if isinstance(e, OSError):
                raise OutputError(f"{path}: cannot write ({e.strerror or e}); nothing was written") from None
            raise
        _sync_directory(directory)


def _create_part(directory: str, base: str) -> tuple[int, str]:
    part = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(8)}.part")
    # O_EXCL: never a file or a link already there. 0o666, so that the kernel applies the umask
    # (and a default ACL) as it does for any program's new file; mkstemp's 0o600 would not.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    # Held until the file is closed: a writer whose pid means nothing here (another pid namespace)
    # still keeps its file from being taken as stale.
    with suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd, part


def _remove_stale_parts(directory: str, base: str) -> None:
    """Remove the temporary files of earlier exports to `base` whose writer is gone (SIGKILL, a
    power loss): its pid no longer runs and nothing holds its lock."""
    prefix = f".{base}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _PART_NAME.fullmatch(name, len(prefix)) if name.startswith(prefix) else None
        if match is None or _running(int(match[1])):
            continue
        part = os.path.join(directory, name)
        try:
            fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(part)
        except OSError:
            pass  # locked (still being written) or already gone
        finally:
            os.close(fd)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process, or no pid at all: not ours to judge
    return True


def _commit(part: str, target: str, replace: bool, path: str) -> None:
    if replace:
        os.replace(part, target)
        return
    # link() fails on an existing name, where a check then a rename could replace a file another
    # program made in between.
    try:
        os.link(part, target)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if os.path.lexists(target):  # a file system without hard links (FAT, some FUSE)
            raise _exists(path) from None
        os.replace(part, target)
    else:
        os.unlink(part)


def _sync_directory(directory: str) -> None:
    # The rename is durable only once the directory is synced; file systems that cannot sync a
    # directory (EINVAL) have nothing to sync, and a failure here leaves the new file complete.
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Termination:
    """SIGTERM and SIGHUP, while an output is written, end the program as their default action
    would (exit status 128 + the signal), but by an exception, so that the temporary file is removed
    on the way out. Only signals left at their default: an ignored SIGHUP (nohup) stays ignored, and a
    program's own handler stays its own. Once the output is complete or being removed, a signal
    waits for that to finish."""

    SIGNALS = ("SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferred = False
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def __enter__(self) -> _Termination:
        if threading.current_thread() is threading.main_thread():  # Python runs handlers there only
            for name in self.SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            if not self._deferred:
                raise SystemExit(128 + signum)

    def defer(self) -> None:
        self._deferred = True

    def check(self) -> None:
        if self.received is not None:
            raise SystemExit(128 + self.received)

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        if kind is not SystemExit:
            self.check()


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
