"""What a path looks like, found out once and only as far as a format plugin asks.

A plugin's `accept` looks at the cheapest facts first: the kind of path and its name cost a
lookup at most; the first bytes cost a read; the member names of a zip cost a read of its end
and its directory. A remote data shard named as one is claimed by its name, so that nothing of a
checkpoint's data is fetched to list it.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import BinaryIO, Literal

from ...errors import FileNotFound
from .. import files
from ..urls import is_url

__all__ = ["HEAD_BYTES", "Probe"]

HEAD_BYTES = 64  # enough for every signature a plugin tests, and for a Git LFS pointer's first line

Kind = Literal["file", "directory", "prefix"]


class Probe:
    """A path as the plugins see it.

    kind: "directory"; "file" (anything else that exists: a FIFO or a device is refused, in
    words, when its bytes are first asked for); "prefix" (nothing there, but `path`.index is: a
    TF checkpoint prefix). A path that is none of these raises FileNotFound.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.remote = is_url(path)
        # A directory given as "dir/" is named by its last part ("dir"), not by "".
        self._stripped = path.rstrip("/" if self.remote else os.sep) or path
        self.name = files.split(self._stripped)[1]
        self.kind: Kind
        if files.exists(path):
            self.kind = "directory" if files.is_dir(path) else "file"
        elif files.exists(path + ".index"):
            self.kind = "prefix"
        else:
            raise FileNotFound(f"{path}: no such file or checkpoint prefix")
        self._file: BinaryIO | None = None

    def _opened(self) -> BinaryIO:
        # Every look at a file's bytes goes through this one descriptor: the name could be swapped
        # for a FIFO between two opens.
        if self._file is None:
            self._file = files.open_regular(self.path)
        return self._file

    @cached_property
    def head(self) -> bytes:
        """The first HEAD_BYTES bytes of a file; b"" for a directory or a prefix."""
        if self.kind != "file":
            return b""
        f = self._opened()
        f.seek(0)
        return f.read(HEAD_BYTES)

    @property
    def is_text(self) -> bool:
        """Whether the file's first bytes read as text: UTF-8 without NULs or other controls than
        whitespace (a multi-byte character cut at the end of the head is still text)."""
        head = self.head
        if not head or any(byte < 0x20 and byte not in b"\t\n\r\f\v" for byte in head) or b"\x7f" in head:
            return False
        for cut in range(4):  # a UTF-8 character is at most 4 bytes long
            try:
                head[: len(head) - cut].decode("utf-8")
                return True
            except UnicodeDecodeError:
                if len(head) < HEAD_BYTES:
                    return False  # the whole file, not a cut: nothing may be left undecoded
        return False

    @cached_property
    def size(self) -> int:
        """The size of a file in bytes; 0 for a directory or a prefix."""
        return files.opened_size(self._opened()) if self.kind == "file" else 0

    @cached_property
    def zip_members(self) -> list[str] | None:
        """The member names when the file is a zip archive (its directory found at the end), else None."""
        if self.kind != "file":
            return None
        from ..zips import member_names  # zipfile only for a file that may be a zip

        return member_names(self._opened())

    def inside(self, name: str) -> str:
        """The path of `name` inside this directory."""
        return files.join(self.path, name)

    @property
    def parent(self) -> str:
        """The directory that holds this path ("" for a bare name in the working directory)."""
        return files.split(self._stripped)[0]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
