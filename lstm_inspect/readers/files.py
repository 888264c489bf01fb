"""Opening input files as hostile: regular files only, bounded reads.

Every reader opens its files through `open_regular`, so that a FIFO never blocks `open()`, a
device never streams forever, and what a path is gets said in the error instead of "no such file".
"""

from __future__ import annotations

import io
import os
import stat

from ..errors import FileNotFound, UnsupportedFormat

__all__ = ["check_lfs_pointer", "describe_kind", "open_regular", "read_bounded", "stat_regular"]

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


def open_regular(path: str, what: str = "file") -> io.BufferedReader:
    """`path` opened for binary reading, refused unless it is a regular file.

    The file is opened non-blocking and checked with fstat on the open descriptor, so that a FIFO
    swapped in after a stat cannot block the open; `what` names the file in messages ("data shard").
    """
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
    with open_regular(path, what) as f:
        # The size first: a sparse file claims gigabytes it never stored. Then a bounded read, for
        # files whose size says nothing (/proc files are regular and 0 bytes long).
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        found = f"{size:,} bytes" if size > limit else f"more than {limit:,} bytes"
        raise UnsupportedFormat(f"{path}: {found}, too large for a {what} ({limit:,} at most)")
    return data
