"""The file-system layer of the readers: local paths opened as hostile, URLs sent to remote.py.

Every reader opens, sizes, finds and lists its files through the functions here. A local path is
read natively: opened non-blocking and checked with fstat (`open_regular`), so that a FIFO never
blocks `open()`, a device never streams forever, and what a path is gets said in the error
instead of "no such file". A URL (s3://, gs://, http(s)://, any fsspec URL; see urls.py) goes to
remote.py, which reads it by byte ranges; fsspec is imported only then.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..errors import FileNotFound, UnsupportedFormat
from .urls import is_url, url_join, url_split

if TYPE_CHECKING:
    from .remote import Transfers

__all__ = [
    "advise",
    "check_lfs_pointer",
    "check_placeholder",
    "describe_kind",
    "exists",
    "is_dir",
    "is_file",
    "is_url",
    "join",
    "lexists",
    "list_dir",
    "look_up",
    "map_range",
    "new_session",
    "open_regular",
    "opened_size",
    "read_bounded",
    "reset_transfers",
    "size_regular",
    "split",
    "stat_regular",
    "transfers",
]

# A file not fetched from Git LFS is a small text file that starts with this line
# (git-lfs docs/spec.md: pointer files are under 1024 bytes).
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def describe_kind(mode: int) -> str:
    """What a st_mode that is not a regular file is, in words."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def check_lfs_pointer(path: str, head: bytes) -> None:
    """Refuse a Git LFS pointer file (given its first bytes), saying how to get the real content."""
    if head.startswith(_LFS_POINTER):
        raise UnsupportedFormat(
            f"{path}: this is a Git LFS pointer, not the file itself; fetch the content with `git lfs pull`"
        )


def check_placeholder(path: str, head: bytes) -> None:
    """Refuse what stands in for a file, given its first bytes: a Git LFS pointer, or nothing at
    all (an empty file)."""
    check_lfs_pointer(path, head)
    if not head:
        raise UnsupportedFormat(f"{path}: an empty file (0 bytes), not a model; copy or save it again")


def _refuse_unless_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise UnsupportedFormat(f"{path}: is {describe_kind(mode)}; lstm-inspect reads regular files only")


def stat_regular(path: str, what: str = "file") -> os.stat_result:
    """`os.stat(path)`, refused unless it is a regular file: for files checked now and opened later
    (a checkpoint's data shards), which `open_regular` checks again when it opens them."""
    try:
        result = os.stat(path)
    except FileNotFoundError:
        raise FileNotFound(f"{path}: no such {what}") from None
    except OSError as e:
        raise FileNotFound(f"{path}: cannot open ({e.strerror})") from None
    _refuse_unless_regular(path, result.st_mode)
    return result


def open_regular(path: str, what: str = "file") -> BinaryIO:
    """`path` opened for binary reading, refused unless it is a regular file; a URL opens as a
    seekable remote file (remote.RemoteFile) that fetches only the ranges read.

    The file is opened non-blocking and checked with fstat on the open descriptor, so that a FIFO
    swapped in after a stat cannot block the open; `what` names the file in messages ("data shard").
    """
    if is_url(path):
        from .remote import open_remote

        return cast(BinaryIO, open_remote(path, what))  # seek, tell, read, readinto: all the readers use
    return _open_local(path, what)


def _open_local(path: str, what: str) -> io.BufferedReader:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFound(f"{path}: no such {what}") from None
    except OSError as e:
        raise FileNotFound(f"{path}: cannot open ({e.strerror})") from None
    try:
        _refuse_unless_regular(path, os.fstat(fd).st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str, limit: int, what: str = "file") -> bytes:
    """The whole of a small regular file, refused when it is larger than `limit` bytes."""
    if is_url(path):
        from . import remote

        return remote.read_bounded(path, limit, what)
    with _open_local(path, what) as f:
        # The size first: a sparse file claims gigabytes it never stored. Then a bounded read, for
        # files whose size says nothing (/proc files are regular and 0 bytes long).
        size = os.fstat(f.fileno()).st_size
        # read(n) allocates n bytes first: asking for the limit itself (2 GiB for a graph) would
        # fail under a memory limit for any file. What the size says, then the rest in pieces.
        data = f.read(size + 1) if size <= limit else b""
        if len(data) > size:
            pieces, total = [data], len(data)
            while total <= limit and (piece := f.read(min(1 << 20, limit + 1 - total))):
                pieces.append(piece)
                total += len(piece)
            data = b"".join(pieces)
    if size > limit or len(data) > limit:
        found = f"{size:,} bytes" if size > limit else f"more than {limit:,} bytes"
        raise UnsupportedFormat(f"{path}: {found}, too large for a {what} ({limit:,} at most)")
    return data


def size_regular(path: str, what: str = "file") -> int:
    """The size of a regular file (checked now, opened later: a checkpoint's data shards)."""
    if is_url(path):
        from .remote import size_of

        return size_of(path, what)
    return stat_regular(path, what).st_size


def opened_size(f: BinaryIO) -> int:
    """The size of a file that open_regular opened."""
    size = getattr(f, "remote_size", None)
    return size if isinstance(size, int) else os.fstat(f.fileno()).st_size


def advise(f: BinaryIO, ranges: Iterable[tuple[int, int]]) -> None:
    """Say which [start, end) byte ranges of an open file will be read next: a remote file fetches
    them together; a local one needs no telling."""
    hint = getattr(f, "advise", None)
    if hint is not None:
        hint(ranges)


def map_range(f: BinaryIO, offset: int, size: int) -> memoryview | None:
    """Bytes [offset, offset + size) of a file open_regular opened, as a read-only memoryview of a
    memory map of them, which stays mapped while any view of it (a numpy array on it) lives; None
    where the file cannot be mapped (a remote file, a file system without mmap) or `size` is 0:
    read it instead. What a reader of large values uses rather than a fresh buffer per value.

    The caller has checked the range against the file's size: a file cut short afterwards (by
    another program, while it is read) makes a read of a page past its new end a SIGBUS."""
    import mmap

    try:
        fileno = f.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    start = offset - offset % mmap.ALLOCATIONGRANULARITY  # a map starts at a multiple of this
    try:
        mapped = mmap.mmap(fileno, offset + size - start, access=mmap.ACCESS_READ, offset=start)
    except (OSError, ValueError, OverflowError):
        return None
    return memoryview(mapped)[offset - start : offset - start + size]


def exists(path: str) -> bool:
    """os.path.exists, for paths and URLs."""
    if is_url(path):
        from . import remote

        return remote.exists(path)
    return os.path.exists(path)


def lexists(path: str) -> bool:
    """os.path.lexists (a dangling link exists, so that opening it says what it is), for paths and URLs."""
    return exists(path) if is_url(path) else os.path.lexists(path)


def is_dir(path: str) -> bool:
    if is_url(path):
        from . import remote

        return remote.is_dir(path)
    return os.path.isdir(path)


def is_file(path: str) -> bool:
    """os.path.isfile, for paths and URLs (what a remote directory's listing said of its files
    costs no request)."""
    if is_url(path):
        from . import remote

        return remote.exists(path) and not remote.is_dir(path)
    return os.path.isfile(path)


def list_dir(path: str) -> list[str]:
    """The names in a directory; [] where there is none, and over HTTP, which cannot list."""
    if is_url(path):
        from . import remote

        return remote.list_dir(path)
    try:
        return os.listdir(path or ".")
    except OSError:
        return []


def look_up(paths: list[str]) -> None:
    """Look several files up at once ahead of sizing them one by one: remote files in parallel."""
    remote_paths = [path for path in paths if is_url(path)]
    if remote_paths:
        from . import remote

        remote.look_up(remote_paths)


def join(directory: str, *names: str) -> str:
    return url_join(directory, *names) if is_url(directory) else os.path.join(directory, *names)


def split(path: str) -> tuple[str, str]:
    return url_split(path) if is_url(path) else os.path.split(path)


def new_session() -> None:
    """Forget what remote files were looked up and cached as (a store about to open sees them as
    they are now); nothing to do when no URL was read."""
    remote = sys.modules.get(__package__ + ".remote")
    if remote is not None:
        remote.new_session()


def transfers() -> Transfers | None:
    """What crossed the network since reset_transfers(); None when no URL was read."""
    remote: Any = sys.modules.get(__package__ + ".remote")
    if remote is None:
        return None
    counted = remote.transfers()
    return counted if counted.files else None


def reset_transfers() -> None:
    remote = sys.modules.get(__package__ + ".remote")
    if remote is not None:
        remote.reset_transfers()
