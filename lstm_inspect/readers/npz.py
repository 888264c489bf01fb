"""Read .npz files, this tool's own exports first of all, without pickle.

An .npz is a zip of .npy members (numpy/lib/_npyio_impl.py savez); each member is the magic
`\\x93NUMPY`, a version, a header (a Python dict literal: descr, fortran_order, shape) and the raw
bytes (numpy/lib/format.py). Opening reads the zip directory and each member's header, which
numpy's own header parser checks (`read_array_header_1_0`/`_2_0`: `ast.literal_eval`, a bounded
length); `read(name)` reads one member's bytes. Only arrays of numbers and booleans are read: an
object array would need pickle, which is never used.

Member names are the keys through export.encode_key, so they are decoded with decode_key. In a
gates export (targets/gates.py) the 0-d `L/forget_bias`, `L/cell_clip`, `L/proj_clip` and a GRU's
`L/reset_after` beside a layer's blocks are the layer's settings, not tensors: they are handed to
detection as layer hints.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
from typing import TYPE_CHECKING

from ..errors import CorruptFile, UnknownName, UnsupportedFormat
from ..records import frozen_record
from ..schema import CELL_KINDS
from .base import LayerConfig, LayerHint, Setting, TensorInfo
from .files import check_lfs_pointer, open_regular

if TYPE_CHECKING:
    import numpy as np

__all__ = ["NpzStore", "open_npz"]

FORMAT = "npz"
_MEMBER_SUFFIX = ".npy"
_MAGIC = b"\x93NUMPY"
# numpy/lib/format.py: a header is at most _MAX_HEADER_SIZE (10,000) bytes unless the caller
# trusts the file; the length field follows the magic and the two version bytes.
_MAX_HEADER_BYTES = 10_000
_PREAMBLE = {1: ("<H", 10), 2: ("<I", 12)}  # version -> (length field, bytes before the header)
# The 0-d members of a gates export that are settings of the layer they sit under (targets/gates.py).
_SETTINGS = ("forget_bias", "cell_clip", "proj_clip", *(v for kind in CELL_KINDS.values() for v in kind.variants))
# Values are copied out of zipfile in pieces of this size, so reading a member costs the array
# and one piece, never the member's bytes twice.
_PIECE_BYTES = 1 << 20
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError)


@frozen_record
class _Member:
    info: zipfile.ZipInfo
    descr: str  # the dtype as stored ("<f4", ">f8"), numpy's own spelling
    shape: tuple[int, ...]
    fortran_order: bool
    data_offset: int  # where the values start in the member's bytes
    nbytes: int


class NpzStore:
    """An open .npz; a TensorStore. Opening reads the zip directory and every member's header."""

    format = FORMAT
    origin = None  # numpy writes arrays, and no framework loads them back as a model
    checksums = True  # zipfile checks each member's CRC-32 as it reads it to the end

    def __init__(self, path: str, verify: bool = True) -> None:
        # zipfile checks each member's CRC-32 as it reads the member to its end, --no-verify or not.
        from ..writers.keys import decode_key

        self.path = path
        self._raw = open_regular(path)
        try:
            self._file_size = os.fstat(self._raw.fileno()).st_size
            if self._file_size < 1024:
                check_lfs_pointer(path, self._raw.read(64))
                self._raw.seek(0)
            try:
                self._archive = zipfile.ZipFile(self._raw)
            except _ZIP_ERRORS as e:
                self._raw.seek(0)
                if self._raw.read(2) != b"PK":
                    raise UnsupportedFormat(f"{path}: not a zip archive, so not an .npz") from None
                raise CorruptFile(f"{path}: the .npz zip archive is damaged or truncated ({e})") from None
            self._members: dict[str, _Member] = {}
            self._hidden: set[str] = set()
            for info in self._archive.infolist():
                if not info.filename.endswith(_MEMBER_SUFFIX):
                    raise UnsupportedFormat(
                        f"{path}: holds {info.filename!r}, which is not an .npy array, so this is no .npz numpy wrote"
                    )
                name = decode_key(info.filename[: -len(_MEMBER_SUFFIX)])
                if name in self._members:
                    raise CorruptFile(f"{path}: two arrays are both named {name!r}; the file is damaged")
                self._members[name] = self._index(info)
            self._hints = self._settings()
        except BaseException:
            self._raw.close()
            raise
        self._infos = {
            name: TensorInfo(name, member.shape, _dtype_name(member.descr), member.info.filename)
            for name, member in self._members.items()
            if name not in self._hidden
        }

    # ---- opening ----------------------------------------------------------------------------------

    def _index(self, info: zipfile.ZipInfo) -> _Member:
        """A member's header, checked against its size before anything else is read."""
        import numpy as np

        from .zips import check_member  # the zip directory's sizes against the archive's

        check_member(info, self._file_size, self.path)
        where = f"{self.path}: {info.filename}"
        try:
            with self._archive.open(info) as member:
                head = member.read(12)
                if len(head) < 8 or head[:6] != _MAGIC:
                    raise CorruptFile(f"{where}: not an .npy array (no \\x93NUMPY magic); the file is damaged")
                major, minor = head[6], head[7]
                if major not in _PREAMBLE:
                    raise UnsupportedFormat(
                        f"{where}: .npy format version {major}.{minor}, which lstm-inspect does not read "
                        "(3.0 is only written for structured arrays with non-Latin-1 field names)"
                    )
                field, start = _PREAMBLE[major]
                if len(head) < start:
                    raise CorruptFile(f"{where}: the .npy header is cut short; the file is damaged")
                (length,) = struct.unpack(field, head[8:start])
                if length > _MAX_HEADER_BYTES:
                    raise CorruptFile(f"{where}: a {length:,}-byte .npy header, more than any array needs")
                header = head[start:] + member.read(max(0, length - (len(head) - start)))
                if len(header) < length:
                    raise CorruptFile(f"{where}: the .npy header is cut short; the file is damaged")
        except _ZIP_ERRORS as e:
            raise CorruptFile(f"{where}: cannot be read ({e}); the file is damaged") from None
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        try:
            shape, fortran_order, dtype = reader(io.BytesIO(head[8:start] + header))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
            raise CorruptFile(f"{where}: the .npy header cannot be parsed ({e}); the file is damaged") from None
        if dtype.hasobject:
            raise UnsupportedFormat(
                f"{where}: holds Python objects (an object array), which only pickle can read; "
                "lstm-inspect never unpickles"
            )
        if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biufc":
            raise UnsupportedFormat(f"{where}: holds {dtype} values; lstm-inspect reads arrays of numbers only")
        nbytes = math.prod(shape) * dtype.itemsize
        data_offset = start + length
        if data_offset + nbytes != info.file_size:
            raise CorruptFile(
                f"{where}: holds {info.file_size - data_offset:,} bytes of values, but {dtype} {list(shape)} "
                f"needs {nbytes:,}; the file is damaged or truncated"
            )
        return _Member(info, dtype.str, tuple(shape), bool(fortran_order), data_offset, nbytes)

    def _settings(self) -> dict[str, LayerHint]:
        """The settings a gates export stores beside each layer's blocks, as detection's hints."""
        hints: dict[str, LayerHint] = {}
        for name, member in self._members.items():
            scope, _, leaf = name.rpartition("/")
            if leaf not in _SETTINGS or member.shape != () or member.descr[1] not in "fiu":
                continue
            if not any(f"{scope}/{g}/kernel" in self._members for kind in CELL_KINDS.values() for g in kind.gates):
                continue
            value: float | bool = float(self.read(name))
            if any(leaf in kind.variants for kind in CELL_KINDS.values()):
                # targets/gates.py writes a variant (a GRU's reset_after) as 1.0 or 0.0, nothing else.
                if value not in (0.0, 1.0):
                    raise CorruptFile(f"{self.path}: {name} is {value:g}; an export stores it as 1 or 0")
                value = bool(value)
            hint = hints.setdefault(scope, LayerHint(scope))
            hint.settings[leaf] = Setting(value, f"stored in the export: {name}")
            self._hidden.add(name)
        return hints

    # ---- the TensorStore interface ----------------------------------------------------------------

    def tensors(self) -> dict[str, TensorInfo]:
        return self._infos

    def layer_configs(self) -> dict[str, LayerConfig]:
        return {}

    def layer_hints(self) -> dict[str, LayerHint]:
        return self._hints

    def files(self) -> list[str]:
        return [self.path]

    def read(self, name: str) -> np.ndarray:
        import numpy as np

        member = self._members.get(name)
        if member is None:
            raise UnknownName(f"{self.path}: no array named {name!r}")
        dtype = np.dtype(member.descr)
        values = np.empty(member.nbytes // max(dtype.itemsize, 1), dtype)
        buffer = values.view(np.uint8).data
        try:
            with self._archive.open(member.info) as f:
                f.read(member.data_offset)
                filled = 0
                while filled < member.nbytes:
                    piece = f.read(min(_PIECE_BYTES, member.nbytes - filled))
                    if not piece:
                        break
                    buffer[filled : filled + len(piece)] = piece
                    filled += len(piece)
                f.read(1)  # to the member's end, where zipfile checks its CRC-32
        except _ZIP_ERRORS as e:
            raise CorruptFile(f"{self.path}: array {name!r} cannot be read ({e}); the file is damaged") from None
        if filled != member.nbytes:
            raise CorruptFile(f"{self.path}: array {name!r} is cut short; the file is truncated")
        if not dtype.isnative:
            values = values.astype(dtype.newbyteorder("="))
        if member.fortran_order:
            return values.reshape(member.shape[::-1]).transpose()
        return values.reshape(member.shape)

    def close(self) -> None:
        self._archive.close()
        self._raw.close()

    def __enter__(self) -> NpzStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dtype_name(descr: str) -> str:
    import numpy as np

    return np.dtype(descr).newbyteorder("=").name


def open_npz(path: str | os.PathLike[str], verify: bool = True) -> NpzStore:
    """Open an .npz of numeric arrays (an `lstm-inspect export`, or anything numpy's savez wrote)."""
    return NpzStore(os.fspath(path), verify=verify)
