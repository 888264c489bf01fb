"""The interface both HDF5 sources give (the parser, parser.py; h5py in a worker, worker.py), and
what they share: the exceptions that say where a file goes, and the budgets that bound the work."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..zips import MAX_DEFLATE_RATIO  # the deflate filter's limit is zip's

if TYPE_CHECKING:  # numpy only where values are read: listing a file must not import it
    import numpy as np

__all__ = [
    "CLASS_NAMES",
    "EXTRA_BUDGET",
    "MAX_DEFLATE_RATIO",
    "READ_PIECE",
    "SIGNATURE",
    "Attributes",
    "Budget",
    "Damaged",
    "Dataset",
    "Group",
    "Node",
    "NotUnderstood",
    "OutsideFile",
    "link_name",
    "product",
    "shown",
]

SIGNATURE = b"\x89HDF\r\n\x1a\n"  # at the start of the file (FMT3 II.A); Keras never writes a user block
# Everything the listing reads is charged to a budget of the file's size plus this, and so is the
# chunk index of each value read: normal metadata is read about once, while crafted addresses
# that point many structures at the same large region (heaps, header chunks, B-tree nodes) would
# otherwise make work and memory grow without bound.
EXTRA_BUDGET = 16 << 20
# The datatype classes (H5Tpublic.h H5T_class_t) whose values lstm-inspect never reads, by the name
# a dataset's dtype gets (strings are "string"; integers, floats and opaque values get numpy's).
CLASS_NAMES = {2: "time", 4: "bitfield", 6: "compound", 7: "reference", 8: "enum", 9: "variable-length", 10: "array"}
# Values are read this many bytes at a time, so that Ctrl-C is seen between pieces of a large one.
READ_PIECE = 16 << 20


class Node:
    """An HDF5 object, as reached by a path.

    name:  the absolute path it was reached by ("/model_weights/enc"), like h5py's ``.name``;
    key:   the object's identity, its header's address: two links to one object give equal keys;
    attrs: attribute name -> value as plain Python: str (a variable-length string), bytes (a
           fixed-length one), int, float, None (an empty attribute), or a flat list of these when
           the attribute is an array.
    """

    name: str
    key: Hashable

    @property
    def attrs(self) -> Mapping[str, Any]:
        raise NotImplementedError


class Group(Node):
    @property
    def root(self) -> Group:
        """The file's root group."""
        raise NotImplementedError

    def items(self) -> list[tuple[str, Node]]:
        """The members that lead to an object, in name order (h5py's default order)."""
        raise NotImplementedError

    def member(self, name: str) -> Node | None:
        """The object the link `name` of this group leads to, or None."""
        raise NotImplementedError

    def get(self, path: str) -> Node | None:
        """The object at `path` ("a/b" from here, "/a/b" from the root), or None."""
        node: Node | None = self.root if path.startswith("/") else self
        for part in path.split("/"):
            if part in ("", "."):
                continue
            node = node.member(part) if isinstance(node, Group) else None
            if node is None:
                return None
        return node

    def __getitem__(self, path: str) -> Node:
        node = self.get(path)
        if node is None:
            raise KeyError(f"{self.name} has no member {path!r}")
        return node

    def _child(self, name: str) -> str:
        return ("" if self.name == "/" else self.name) + "/" + name


class Dataset(Node):
    @property
    def shape(self) -> tuple[int, ...] | None:
        """None for a null dataspace, as h5py."""
        raise NotImplementedError

    @property
    def dtype(self) -> str:
        """numpy's name: "float32", "int64", "void16" (opaque); "string" for any string; the HDF5
        class ("compound", "enum", "array", ...) for the other types, whose values lstm-inspect
        never reads."""
        raise NotImplementedError

    def read(self) -> np.ndarray:
        """All values, in the stored byte order. Raises NotUnderstood, Damaged or OutsideFile."""
        raise NotImplementedError


class NotUnderstood(Exception):
    """The parser does not read this feature of the file: h5py, in the worker, may."""


class Damaged(Exception):
    """The file contradicts itself; the message says where. Never handed to libhdf5."""


class OutsideFile(Exception):
    """What was asked for lives in another file; the message names it, as the predicate of a sentence
    whose subject is the dataset or the link ("keeps its values in '/etc/passwd' ...")."""


class Attributes(Mapping[str, Any]):
    """Attributes as Node.attrs gives them, from either source: `stored` maps each name to what
    `decode` turns into its plain Python value, which happens only when that value is asked for."""

    def __init__(self, stored: Mapping[str, Any], decode: Callable[[Any], Any]) -> None:
        self._stored, self._decode = stored, decode

    def __getitem__(self, name: str) -> Any:
        return self._decode(self._stored[name])

    def __contains__(self, name: object) -> bool:
        return name in self._stored  # without decoding the value

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)


class Budget:
    """Bytes a walk may still read: see EXTRA_BUDGET."""

    def __init__(self, size: int) -> None:
        self.left = size

    def charge(self, size: int) -> None:
        if size > self.left:
            raise Damaged("structures point at the same bytes over and over")
        self.left -= size


def link_name(raw: bytes) -> str:
    # libhdf5 cannot create a link whose name is empty, "." or holds "/" (H5Gname.c): such a name
    # is one that no path can reach. h5py writes names in UTF-8; Keras never writes another.
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged(f"the HDF5 name {raw!r} is not UTF-8") from None
    if name in ("", ".") or "/" in name:
        raise Damaged(f"a link is named {name!r}, which no path can reach")
    return name


def product(values: Any) -> int:
    count = 1
    for value in values:
        count *= value
    return count


def shown(name: bytes) -> str:
    """A file name from the file, quoted for a message."""
    return repr(name.decode("utf-8", errors="backslashreplace"))
