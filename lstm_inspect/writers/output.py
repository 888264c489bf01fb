"""Output files written as carefully as inputs are read.

An output may not be (or link to) a file the command reads, nor anything but a regular file; it is
written to a temporary file beside it and renamed into place only once complete and synced, so
that nothing is left half-written when anything fails (Ctrl-C, SIGTERM and SIGHUP included); the
temporary file carries the writer's pid, so that one left by a killed run is recognised and
removed by the next write to that path; a new file gets 0o666 less the umask, as any program's.
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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import IO

from ..errors import OutputError
from ..readers.files import describe_kind
from ..readers.urls import display_url, is_url

__all__ = ["atomic_output", "check_output", "default_output", "output_format", "refuse_inputs"]

# `.<output name>.<pid>.<16 hex digits>.part`, beside the output.
_PART_NAME = re.compile(r"(\d+)\.[0-9a-f]{16}\.part")


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
    if is_url(path):
        # The output is written beside its name and renamed into place once complete and synced;
        # an object store has no such rename. Written here, it can be copied.
        raise OutputError(
            f"{display_url(path)}: outputs are written to local files only; write it here and copy it "
            "with the storage's own tool"
        )
    if not path:
        raise OutputError("the output file name is empty; give -o FILE.npz, or -o - for stdout")
    if path.endswith(os.sep) or (os.altsep is not None and path.endswith(os.altsep)):
        raise OutputError(f"{path}: names a directory; give a file name, e.g. {os.path.join(path, 'gates.npz')}")


def _not_a_file(path: str, mode: int) -> OutputError:
    if stat.S_ISDIR(mode):
        return OutputError(f"{path}: is a directory; give a file name, e.g. {os.path.join(path, 'gates.npz')}")
    return OutputError(f"{path}: is {describe_kind(mode)}; export writes regular files only (-o - writes to stdout)")


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
