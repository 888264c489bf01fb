"""Zip archives, read as hostile: the directory, member sizes checked against the archive before
anything is allocated, bounded reads, stored members as plain byte ranges, damage as CorruptFile.

Every reader of a zip-based format goes through these (the Keras `.keras` reader, the sniffing of
PyTorch archives and `.npz` files in formats/), so that a bomb, a lying size or a broken deflate
stream ends in one line whichever reader meets it. zipfile is imported only when a zip is read:
listing a TF checkpoint needs none of it.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import CorruptFile, UnsupportedFormat
from .files import check_placeholder
from .ranges import FileRange

if TYPE_CHECKING:
    import zipfile

__all__ = [
    "MAX_DEFLATE_RATIO",
    "ZipMember",
    "check_member",
    "member_names",
    "open_zip",
    "read_member",
    "stored_range",
    "zip_errors",
]

# Deflate cannot expand data more than about 1032:1 (zlib's technical details); nothing stored
# deflated (a zip member, an HDF5 chunk) can stand for more than this many times its own size.
MAX_DEFLATE_RATIO = 1100
ZIP_SIGNATURE = b"PK"
# APPNOTE 4.3.7: a local file header is 30 fixed bytes, then the name and extra field.
_LOCAL_HEADER = 30
_LOCAL_SIGNATURE = b"PK\x03\x04"


def zip_errors() -> tuple[type[Exception], ...]:
    """What zipfile raises for a damaged member: a bad header or CRC-32, a broken deflate stream, an
    early end."""
    import zipfile

    return (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error)


def member_names(f: BinaryIO) -> list[str] | None:
    """The member names of the zip archive in the open file `f`, or None when it is none (no zip
    directory where one should be, or a damaged one). Reads the end of the file and the directory."""
    import zipfile

    try:
        f.seek(0)
        with zipfile.ZipFile(f) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None


def open_zip(raw: BinaryIO, path: str, what: str, remedy: str = "re-save it") -> zipfile.ZipFile:
    """The zip archive in `raw`; `what` names the format in messages (".keras"), `remedy` says
    what to do about a damaged one."""
    import zipfile

    try:
        return zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raw.seek(0)
        head = raw.read(64)
        if not head.startswith(ZIP_SIGNATURE):
            check_placeholder(path, head)
            raise UnsupportedFormat(f"{path}: not a zip archive, so not a {what} file") from None
        raise CorruptFile(f"{path}: the {what} zip archive is damaged or truncated ({e}); {remedy}") from None


def check_member(info: zipfile.ZipInfo, file_size: int, path: str) -> None:
    """Refuse member sizes the archive cannot hold before anything is allocated or read."""
    import zipfile

    if info.flag_bits & 0x1:
        raise UnsupportedFormat(f"{path}: {info.filename} is encrypted")
    fits = info.header_offset + info.compress_size <= file_size
    if info.compress_type == zipfile.ZIP_STORED:
        plausible = info.file_size == info.compress_size
    else:
        plausible = info.file_size <= max(info.compress_size, 1) * MAX_DEFLATE_RATIO
    if not (fits and plausible):
        raise CorruptFile(
            f"{path}: the zip entry {info.filename} declares {info.file_size} bytes "
            f"({info.compress_size} stored) but the archive is {file_size} bytes; the file is damaged"
        )


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, path: str) -> bytes:
    """The bytes of a member that check_member passed, refused past `budget` bytes whatever the
    directory claims: read in pieces, to at most one past the budget (zipfile inflates as much as
    one read asks for before it applies the size it was told)."""
    member = info.filename
    pieces, total = [], 0
    try:
        with archive.open(info) as f:
            while total <= budget and (piece := f.read(min(1 << 20, budget + 1 - total))):
                pieces.append(piece)
                total += len(piece)
    except zip_errors() as e:
        raise CorruptFile(f"{path}: cannot read {member} ({e}); the file is damaged") from None
    data = b"".join(pieces)
    if len(data) > budget:
        raise CorruptFile(f"{path}: {member} holds more than the {info.file_size} bytes it claims; the file is damaged")
    return data


def stored_range(raw: BinaryIO, info: zipfile.ZipInfo, file_size: int, path: str) -> FileRange:
    """A stored (uncompressed) member as a plain byte range of the archive, after its local header,
    whose name and extra field lengths may differ from the central directory's (APPNOTE 4.3.7)."""
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER)
    if len(header) != _LOCAL_HEADER or header[:4] != _LOCAL_SIGNATURE:
        raise CorruptFile(f"{path}: the local header of {info.filename} is damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + _LOCAL_HEADER + name_length + extra_length
    if start + info.file_size > file_size:
        raise CorruptFile(f"{path}: {info.filename} runs past the end of the archive; the file is truncated")
    return FileRange(raw, start, info.file_size)


class ZipMember(io.RawIOBase):
    """A deflated zip member, seekable through zipfile, whose damage (a bad CRC-32, a broken
    deflate stream, an early end) is a CorruptFile naming the archive, wherever it is read."""

    def __init__(self, member: zipfile.ZipExtFile, path: str, name: str) -> None:
        super().__init__()
        self._member, self._path, self._name = member, path, name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._member.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._guarded(lambda: self._member.seek(offset, whence))  # type: ignore[no-any-return]

    def readinto(self, buffer: Any) -> int:
        data = self._guarded(lambda: self._member.read(len(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._member.close()
        super().close()

    def _guarded(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except zip_errors() as e:
            raise CorruptFile(f"{self._path}: {self._name} is damaged ({e}); re-download or re-save it") from None
