"""The store every Keras file opens as, and the HDF5 bytes it reads from (hdf5/: the parser, or
h5py in its worker process, for what the parser does not read)."""

from __future__ import annotations

import copy
import re
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from ...errors import CorruptFile, UnknownName, UnsupportedFormat
from ...records import frozen_record
from ..base import LayerConfig, LayerHint, Origin, TensorInfo
from ..files import check_placeholder
from ..hdf5 import SIGNATURE, Damaged, Dataset, Group, NotUnderstood, OutsideFile, read_tree
from ..ranges import descriptor

if TYPE_CHECKING:  # numpy loads only when a value is read
    import numpy as np

    from ..hdf5.worker import H5pyWorker

__all__ = ["Entry", "HDF5Source", "KerasStore"]


FORMAT_LEGACY_H5 = "keras-h5"


FORMAT_WEIGHTS_H5 = "keras-weights-h5"


FORMAT_KERAS_ZIP = "keras-v3"


# What a tree raises for a path its own listing named but that leads nowhere (Group.__getitem__).
TREE_ERRORS = (KeyError,)


@frozen_record
class Entry:
    """One dataset: its logical name, where it is, what it holds; `layer`: whether it is a layer's
    weight (not optimizer or metric state, not a model's own variable), which a config should name."""

    name: str
    h5_path: str
    shape: tuple[int, ...]
    dtype: str
    bfloat16: bool = False
    layer: bool = True


class KerasStore:
    """An open Keras file. Names, shapes and dtypes are indexed at open; values are read on demand,
    from the HDF5 tree that listed them."""

    def __init__(
        self,
        path: str,
        format: str,
        entries: list[Entry],
        configs: dict[str, LayerConfig],
        hdf5: HDF5Source,
        origin: Origin | None = None,
        source_prefix: str = "",
        checksums: bool = False,
        check: Callable[[], None] | None = None,
    ) -> None:
        """`origin`: Keras' own loader, where the file holds the model config it builds from;
        `checksums`: whether the file holds checksums of its values (a .keras zip's CRC-32 of its
        weights; HDF5 itself keeps none); `check`: run before the first value is read."""
        self.path = path
        self.format = format
        self.origin = origin
        self.checksums = checksums
        self._hdf5 = hdf5
        self._entries = {e.name: e for e in entries}
        self._infos = {e.name: TensorInfo(e.name, e.shape, e.dtype, source_prefix + e.h5_path) for e in entries}
        self._configs = configs
        # Run once, before the first value is read: a whole-member checksum costs a pass over
        # the file, which listing names and shapes must not pay.
        self._check = check
        # A worker process and the open file end with the store, even if close() is never called.
        self._finalizer = weakref.finalize(self, hdf5.close)

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._infos)

    def files(self) -> list[str]:
        return [self.path]

    def read(self, name: str) -> np.ndarray:
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(list(self._entries)[:8]) or "none"
            raise UnknownName(f"{self.path}: no tensor named {name!r} (some of those there: {known})")
        if not self._finalizer.alive:
            raise ValueError(f"{self.path}: the store is closed")
        source = self._infos[name].source
        if not (entry.bfloat16 or entry.dtype.startswith(("int", "uint", "float"))):
            raise UnsupportedFormat(
                f"{self.path}: tensor {name!r} ({source}) is of the HDF5 type {entry.dtype!r}, not numbers; "
                "lstm-inspect reads integer and floating-point weights only"
            )
        if self._check is not None:
            self._check()
            self._check = None
        try:
            value = self._hdf5.read(entry.h5_path)
        except Damaged as e:
            raise CorruptFile(
                f"{self.path}: cannot read tensor {name!r} ({source}): {e}; the file is damaged, "
                "re-download or re-save it"
            ) from None
        except OutsideFile as e:
            raise UnsupportedFormat(
                f"{self.path}: tensor {name!r} ({source}) {e}; lstm-inspect reads only what is inside "
                "the file it is given"
            ) from None
        # A value the worker read may come from a listing by the HDF5 parser: a damaged file can
        # read otherwise to h5py.
        if value.shape != entry.shape or (value.dtype.name != entry.dtype and not entry.bfloat16):
            raise CorruptFile(
                f"{self.path}: tensor {name!r} ({source}) reads otherwise than it lists; the file is "
                "damaged, re-download or re-save it"
            )
        if not value.dtype.isnative:  # a big-endian file: what every consumer expects is native order
            value = value.astype(value.dtype.newbyteorder("="))
        if entry.bfloat16:
            value = _as_bfloat16(value, self.path, name)
        return value

    def layer_configs(self) -> dict[str, LayerConfig]:
        return {scope: copy.deepcopy(cfg) for scope, cfg in self._configs.items()}

    def layer_hints(self) -> dict[str, LayerHint]:
        return {}

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> KerasStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_bfloat16(value: np.ndarray, path: str, name: str) -> np.ndarray:
    # Keras 3 stores bfloat16 as raw 2-byte values tagged with attrs["dtype"] = "bfloat16"
    # (saving_lib H5IOStore.__setitem__); numpy needs ml_dtypes to give them a type.
    try:
        import ml_dtypes
    except ImportError:
        raise UnsupportedFormat(
            f"{path}: tensor {name!r} is bfloat16; install ml_dtypes (`pip install ml_dtypes`) to read it"
        ) from None
    if value.dtype.kind == "V" and value.dtype.itemsize == 2:
        return value.view(ml_dtypes.bfloat16)
    if value.dtype.kind in "iuf":
        return value.astype(ml_dtypes.bfloat16)
    size = value.dtype.itemsize
    raise CorruptFile(f"{path}: tensor {name!r} is tagged bfloat16 but stores {size}-byte opaque values")


_T = TypeVar("_T")


class HDF5Source:
    """The HDF5 bytes of a Keras file, in `raw` from `start` on: listed and read by the HDF5
    parser over `parsed` (raw itself, a FileRange, a zip member), by h5py in a worker process for
    what the parser does not read. `member`: the zip member, when the bytes are deflated."""

    def __init__(self, raw: BinaryIO, parsed: BinaryIO, where: str, start: int, size: int, member: str | None = None):
        self._raw, self.parsed, self.where = raw, parsed, where
        self._worker_args = (start, size, member)
        self._worker: H5pyWorker | None = None
        self._tree: Group | None = None

    def index(self, index: Callable[[Group], _T]) -> _T:
        """index(root group), over the parser's tree or, where the parser does not read the
        file, the worker's."""
        try:
            self._check_signature()
            try:
                self._tree = read_tree(self.parsed)
                return index(self._tree)
            except NotUnderstood:
                pass
            self._tree = self.worker().tree()
            return index(self._tree)
        except Damaged as e:
            raise CorruptFile(
                f"{self.where}: the HDF5 file is truncated or damaged ({e}); re-download or re-save it"
            ) from None
        except OutsideFile as e:
            raise UnsupportedFormat(
                f"{self.where}: a link in the file {e}; lstm-inspect reads only what is inside the file it is given"
            ) from None

    def _check_signature(self) -> None:
        self.parsed.seek(0)
        head = self.parsed.read(64)
        if not head.startswith(SIGNATURE):
            check_placeholder(self.where, head)
            raise UnsupportedFormat(f"{self.where}: not an HDF5 file, so not a Keras .h5 file")

    def read(self, h5_path: str) -> np.ndarray:
        """The values of the dataset at `h5_path`. Raises Damaged or OutsideFile."""
        dataset = self._tree.get(h5_path) if self._tree is not None else None
        if not isinstance(dataset, Dataset):
            raise Damaged(f"{h5_path} is no dataset")
        try:
            return dataset.read()
        except NotUnderstood:
            pass  # only the parser raises it: a layout, filter or type that h5py reads
        return self.worker().read(h5_path)

    def worker(self) -> H5pyWorker:
        if self._worker is None:
            fd = descriptor(self._raw)
            if fd is None:
                raise UnsupportedFormat(
                    f"{self.where}: this HDF5 file needs libhdf5 (a format the built-in reader does not read), "
                    "which reads local files only; download it and give the local copy"
                )
            from ..hdf5 import worker  # only for a file the parser does not read

            self._worker = worker.H5pyWorker(fd, *self._worker_args)
        return self._worker

    def close(self) -> None:
        try:
            if self._worker is not None:
                self._worker.close()
        finally:
            self.parsed.close()
            self._raw.close()


def entry_for(name: str, ds: Dataset, layer: bool = True) -> Entry:
    bfloat16 = decode_text(ds.attrs.get("dtype")) == "bfloat16"
    shape = ds.shape if ds.shape is not None else ()
    return Entry(name, ds.name.lstrip("/"), shape, "bfloat16" if bfloat16 else ds.dtype, bfloat16, layer)


def dataset_paths(group: Group) -> list[str]:
    """The datasets under a group, depth first in name order, each object once, under the first
    path that reaches it: h5py's visititems (H5Ovisit) over either HDF5 tree."""
    paths: list[str] = []
    seen: set[Hashable] = {group.key}
    stack = [("", iter(group.items()))]
    while stack:
        prefix, members = stack[-1]
        member = next(members, None)
        if member is None:
            stack.pop()
            continue
        name, child = member
        if child.key in seen:
            continue
        seen.add(child.key)
        if isinstance(child, Dataset):
            paths.append(prefix + name)
        elif isinstance(child, Group):
            stack.append((f"{prefix}{name}/", iter(child.items())))
    return paths


def unique(entries: list[Entry]) -> list[Entry]:
    """Two weights may map to one logical name only in odd files; the later one keeps its HDF5 path."""
    seen: set[str] = set()
    out = []
    for e in entries:
        if e.name in seen:
            e = Entry(e.h5_path, e.h5_path, e.shape, e.dtype, e.bfloat16, e.layer)
        seen.add(e.name)
        out.append(e)
    return out


def natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def decode_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf8", errors="replace")
    return str(value)


def keras_version_of(value: Any) -> str | None:
    """A stored `keras_version` ("2.15.0", b"3.15.1"), or None for anything else."""
    text = decode_text(value) if isinstance(value, (str, bytes)) else None
    return (text or "").strip() or None
