"""A byte range of an open file as a file of its own: a stored zip member, the HDF5 bytes that
h5py's worker reads (and, as Seekable, what a remote file's position is). Shared by zips.py, hdf5/
and remote.py; nothing of it is needed to list a local TF checkpoint."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO, cast

__all__ = ["FileRange", "Seekable", "descriptor"]


def descriptor(raw: BinaryIO) -> int | None:
    """The OS file descriptor behind an open file, or None for a file object without one (a remote
    file, readers/remote.py)."""
    try:
        return raw.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class Seekable(io.RawIOBase):
    """A read-only file of known length that keeps its own position: what FileRange and
    remote.RemoteFile share. Each reads its bytes its own way (readinto) and says its length."""

    _pos = 0

    def _length(self) -> int:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length()}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos


class FileRange(Seekable):
    """A read-only, seekable view of bytes [start, start + size) of an open file. A local file is
    read with pread, which never moves the descriptor's offset that a child process shares
    (H5pyWorker); a file without a descriptor (remote) by seek and readinto."""

    def __init__(self, raw: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._raw, self._fd = raw, descriptor(raw)
        self._start, self._size, self._pos = start, size, 0

    @property
    def start(self) -> int:
        """Where the range starts in the file."""
        return self._start

    def _length(self) -> int:
        return self._size

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        view = memoryview(buffer).cast("B")[:n]
        if self._fd is not None:
            got = os.preadv(self._fd, [view], self._start + self._pos)
        else:
            self._raw.seek(self._start + self._pos)
            # every file open_regular opens has readinto (a local one, remote.RemoteFile); BinaryIO does not say so
            got = cast(io.RawIOBase, self._raw).readinto(view) or 0
        self._pos += got
        return got
