"""The HDF5 files Keras writes: groups, datasets, attributes and values, with libhdf5 kept at arm's length.

Two sources give the same small interface (Group, Dataset, Node below):

- ``read_tree`` parses the file itself, in pure Python: the metadata without h5py or numpy (together
  about half of a `summary` run), the values with numpy alone. It reads what h5py writes by
  default, the "earliest" file format: superblock v0/v1, version-1 object headers, symbol-table
  groups, attributes of integers, IEEE floats and strings (fixed-length, or variable-length in the
  global heap), and datasets stored contiguous, compact, or in chunks indexed by a version-1 B-tree
  and filtered by deflate and shuffle.
- ``H5pyWorker`` lists and reads with h5py in a child process, for what the parser does not read.
  libhdf5 loops forever on some damaged files, in native code that holds the GIL, where no signal
  handler or timer of this process can stop it; a child process runs under a CPU-time limit and
  is killed as soon as the parent is interrupted.

What the parser finds decides where a file goes, by the exception it raises:

- NotUnderstood: a feature the parser does not read (a newer superblock or object header, links
  or attributes stored densely, shared messages, soft links, other datatypes, chunk indexes or
  filters). The worker reads it with h5py.
- Damaged: the file contradicts itself (an address past its end, a structure that does not parse,
  names out of order, missing chunks). libhdf5 is never asked: on such files it may loop, crash or
  read zeros.
- OutsideFile: the values or objects live in another file (external storage, a virtual dataset,
  an external link). Refused whoever reads: following them would read files the user never named.

Layouts follow the HDF5 File Format Specification version 3.0 (FMT3), checked against libhdf5 1.14:
src/H5Fsuper_cache.c (superblock), H5Ocache.c (object header), H5Gnode.c / H5Gent.c / H5Bcache.c
(symbol tables), H5HLcache.c (local heap), H5HGcache.c (global heap), H5Oattr.c, H5Odtype.c,
H5Osdspace.c, H5Olayout.c, H5Oefl.c, H5Opline.c (messages), H5Dbtree.c (chunk index), H5Zdeflate.c,
H5Zshuffle.c (filters).
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # numpy only where values are read: listing a file must not import it
    import numpy as np

__all__ = [
    "Damaged",
    "Dataset",
    "FileRange",
    "Group",
    "H5pyWorker",
    "Node",
    "NotUnderstood",
    "OutsideFile",
    "read_tree",
]


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


# ---------------------------------------------------------------------------------------------
# The parser

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MSG_DATASPACE, _MSG_LINK_INFO, _MSG_DATATYPE, _MSG_LINK = 0x01, 0x02, 0x03, 0x06
_MSG_EXTERNAL_FILES, _MSG_LAYOUT, _MSG_FILTERS, _MSG_ATTRIBUTE = 0x07, 0x08, 0x0B, 0x0C
_MSG_CONTINUATION, _MSG_SYMBOL_TABLE, _MSG_ATTRIBUTE_INFO = 0x10, 0x11, 0x15
_MSG_FLAG_SHARED = 0x02  # the message lives elsewhere (H5Oprivate.h H5O_MSG_FLAG_SHARED)
_MSG_FLAG_FAIL_IF_UNKNOWN_ALWAYS = 0x80
_LAST_KNOWN_MSG = 0x18  # libhdf5 1.14 knows message types up to this one (H5Oprivate.h)
_MAX_RANK = 32  # H5S_MAX_RANK
_MAX_NAME = 1 << 16  # bytes searched for the NUL that ends a link name in the local heap
# Everything the listing reads is charged to a budget of the file's size plus this, and so is the
# chunk index of each value read: normal metadata is read about once, while crafted addresses
# that point many structures at the same large region (heaps, header chunks, B-tree nodes) would
# otherwise make work and memory grow without bound.
_EXTRA_BUDGET = 16 << 20
# IEEE 754 layouts as the floating-point datatype message stores them (FMT3 IV.A.2.d, class 1):
# bit offset, precision, exponent location and size, mantissa location and size, exponent bias.
_IEEE = {2: (0, 16, 10, 5, 0, 10, 15), 4: (0, 32, 23, 8, 0, 23, 127), 8: (0, 64, 52, 11, 0, 52, 1023)}
# The datatype classes (H5Tpublic.h H5T_class_t) whose values lstm-inspect never reads, by the name
# a dataset's dtype gets (strings are "string"; integers, floats and opaque values get numpy's).
_CLASS_NAMES = {2: "time", 4: "bitfield", 6: "compound", 7: "reference", 8: "enum", 9: "variable-length", 10: "array"}
_LAYOUT_COMPACT, _LAYOUT_CONTIGUOUS, _LAYOUT_CHUNKED, _LAYOUT_VIRTUAL = 0, 1, 2, 3
_FILTER_DEFLATE, _FILTER_SHUFFLE = 1, 2  # H5Zpublic.h
# Deflate cannot expand data more than about 1032:1 (zlib's technical details); nothing stored
# in a file can stand for more than this many times its own size.
MAX_DEFLATE_RATIO = 1100
_DEFAULT_CHUNK_K = 32  # a version-0 superblock stores no K for chunk B-trees (H5Fprivate.h HDF5_BTREE_CHUNK_IK_DEF)
_MAX_CHUNK_BYTES = (1 << 32) - 1  # libhdf5 refuses chunks of 4 GiB or more (H5Dchunk.c H5D__chunk_construct)
# Values are read this many bytes at a time, so that Ctrl-C is seen between pieces of a large one.
_READ_PIECE = 16 << 20


def read_tree(raw: BinaryIO) -> Group:
    """The root group of the HDF5 file in `raw` (seekable, read from offset 0), parsed lazily:
    groups, headers and attribute values are read when first asked for. Raises NotUnderstood or
    Damaged, here or when a part of the tree is first asked for."""
    return _File(raw).root


def _heap_name(heap: bytes, at: int) -> bytes:
    end = heap.find(b"\0", at, at + _MAX_NAME)
    if end < 0:
        raise Damaged("a name in a local heap is not terminated")
    return heap[at:end]


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged(f"{what} that is not UTF-8") from None


def _link_name(raw: bytes) -> str:
    # libhdf5 cannot create a link whose name is empty, "." or holds "/" (H5Gname.c): such a name
    # is one that no path can reach. h5py writes names in UTF-8; Keras never writes another.
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged(f"the HDF5 name {raw!r} is not UTF-8") from None
    if name in ("", ".") or "/" in name:
        raise Damaged(f"a link is named {name!r}, which no path can reach")
    return name


def _add(members: dict[str, int], name: str, address: int) -> None:
    if name in members:
        raise Damaged("two links of one group have the same name")
    members[name] = address


def _uint(data: bytes, at: int, size: int) -> int:
    if at < 0 or at + size > len(data):
        raise Damaged("a structure ends early")
    return int.from_bytes(data[at : at + size], "little")


def _product(values: Any) -> int:
    count = 1
    for value in values:
        count *= value
    return count


class _Budget:
    """Bytes a walk may still read: see _EXTRA_BUDGET."""

    def __init__(self, size: int) -> None:
        self.left = size

    def charge(self, size: int) -> None:
        if size > self.left:
            raise Damaged("structures point at the same bytes over and over")
        self.left -= size


@dataclass(frozen=True)
class _Layout:
    """A data layout message (FMT3 IV.A.2.i), what the parser reads of it."""

    kind: int  # _LAYOUT_*
    version: int
    address: int = 0  # contiguous data, or the chunk B-tree's root
    size: int | None = None  # contiguous: bytes stored (versions 3 and 4 say; 1 and 2 do not)
    data: bytes = b""  # compact: the values themselves
    chunk: tuple[int, ...] = ()  # chunked: chunk dimensions, then the element size
    heap_id: tuple[int, int] = (0, 0)  # virtual: global heap collection and object of the mapping


class _File:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.size = raw.seek(0, io.SEEK_END)
        self._budget = _Budget(self.size + _EXTRA_BUDGET)
        self._headers: dict[int, list[tuple[int, bytes]]] = {}
        self._members: dict[int, dict[str, int]] = {}
        self._attributes: dict[int, dict[str, tuple[bytes, tuple[int, ...] | None, bytes]]] = {}
        self._collections: dict[int, tuple[bytes, dict[int, tuple[int, int]]]] = {}
        # Superblock versions 0 and 1 (FMT3 II.A); 2 and 3 come with version-2 object headers.
        head = self.read(0, 28) if self.size >= 28 else self.read(0, 24)
        if head[:8] != _SIGNATURE:
            raise Damaged("no HDF5 signature at the start of the file")
        if head[8] not in (0, 1):
            raise NotUnderstood(f"a version {head[8]} superblock")
        self.offset_size, self.length_size = o, n = head[13], head[14]
        # symbol table nodes hold up to 2 * leaf K entries, B-tree nodes 2 * internal K children
        self.leaf_k, self.internal_k = _uint(head, 16, 2), _uint(head, 18, 2)
        self.chunk_k = _uint(head, 24, 2) if head[8] == 1 else _DEFAULT_CHUNK_K
        if o not in (2, 4, 8) or n not in (2, 4, 8):
            # libhdf5 also allows 16 and 32 (H5Fsuper_cache.c); no writer uses them
            raise (NotUnderstood if o in (16, 32) and n in (16, 32) else Damaged)("unusual sizes of offsets or lengths")
        self.undefined = (1 << 8 * o) - 1  # the undefined address: all bits set
        fields = self.read(28 if head[8] == 1 else 24, 5 * o + n)
        base, end_of_file = _uint(fields, 0, o), _uint(fields, 2 * o, o)
        # libhdf5 refuses a file shorter than the end address its superblock records (H5Fsuper.c
        # "truncated file"); so does this parser, which would not notice otherwise.
        if end_of_file > self.size:
            raise Damaged(f"it is shorter than its superblock says: {self.size} of {end_of_file} bytes")
        if base != 0:
            raise Damaged("a superblock at the start of the file that says it is elsewhere")
        # The root group's symbol table entry: link name offset (a length, H5Gent.c), header address.
        root = self.node("/", _uint(fields, 4 * o + n, o))
        if not isinstance(root, Group):
            raise Damaged("the root object is not a group")
        self.root = root

    def read(self, address: int, size: int, budget: _Budget | None = None) -> bytes:
        if address + size > self.size:
            raise Damaged("an address or size points past the end of the file")
        (budget or self._budget).charge(size)
        self._raw.seek(address)
        data = self._raw.read(size)
        if len(data) != size:
            raise Damaged("the file is shorter than it says")
        return data

    def read_into(self, address: int, target: Any) -> None:
        """Fill `target` (a writable uint8 buffer) from `address`, checked against the file's size first."""
        total = len(target)
        if address + total > self.size:
            raise Damaged("its values run past the end of the file")
        for start in range(0, total, _READ_PIECE):
            piece = target[start : start + _READ_PIECE]
            self._raw.seek(address + start)
            if (self._raw.readinto(piece) or 0) != len(piece):  # type: ignore[attr-defined]
                raise Damaged("the file is shorter than it says")

    def node(self, name: str, address: int) -> Node:
        kinds = {kind for kind, _ in self.messages(address)}
        # What libhdf5 takes the object for, tested in its order (H5Oint.c H5O__obj_class_real):
        # a group has a symbol table or link info, a dataset a datatype and a dataspace.
        node: Node
        if _MSG_SYMBOL_TABLE in kinds or _MSG_LINK_INFO in kinds:
            node = _Group(self, name, address)
        elif _MSG_DATATYPE in kinds and _MSG_DATASPACE in kinds:
            node = _Dataset(self, name, address)
        elif _MSG_DATATYPE in kinds:
            node = _NamedDatatype(self, name, address)
        else:
            raise Damaged(f"{name} is neither a group, a dataset nor a datatype")
        return node

    def messages(self, address: int) -> list[tuple[int, bytes]]:
        """(type, body) of each message of the version-1 object header at `address`, following
        continuation messages (FMT3 IV.A.1.a: a 16-byte prefix, then 8-byte aligned messages)."""
        cached = self._headers.get(address)
        if cached is not None:
            return cached
        prefix = self.read(address, 16)
        if prefix[0] != 1:
            if prefix[:4] == b"OHDR":
                raise NotUnderstood("an object header of version 2")
            raise Damaged("a damaged object header")
        o, n = self.offset_size, self.length_size
        chunks, seen, messages = [(address + 16, _uint(prefix, 8, 4))], set(), []
        while chunks:
            at, size = chunks.pop(0)
            if at in seen:
                raise Damaged("an object header continues into itself")
            seen.add(at)
            chunk, pos = self.read(at, size), 0
            while pos + 8 <= size:
                kind, length, flags = _uint(chunk, pos, 2), _uint(chunk, pos + 2, 2), chunk[pos + 4]
                body = chunk[pos + 8 : pos + 8 + length]
                if len(body) != length:
                    raise Damaged("an object header message runs past its chunk")
                pos += 8 + length
                if kind == _MSG_CONTINUATION:
                    chunks.append((_uint(body, 0, o), _uint(body, o, n)))
                elif kind > _LAST_KNOWN_MSG and flags & _MSG_FLAG_FAIL_IF_UNKNOWN_ALWAYS:
                    raise Damaged("an object header message of an unknown type that must be understood")
                elif flags & _MSG_FLAG_SHARED:
                    raise NotUnderstood("a shared object header message")
                else:
                    messages.append((kind, body))
        self._headers[address] = messages
        return messages

    def message(self, address: int, kind: int) -> bytes:
        for found, body in self.messages(address):
            if found == kind:
                return body
        raise Damaged(f"a message of type {kind} is missing")

    def local_heap(self, address: int, budget: _Budget | None = None) -> bytes:
        """The data segment of the local heap at `address` (FMT3 III.D)."""
        o, n = self.offset_size, self.length_size
        heap = self.read(address, 8 + 2 * n + o, budget)
        if heap[:5] != b"HEAP\0":
            raise Damaged("a damaged local heap")
        return self.read(_uint(heap, 8 + 2 * n, o), _uint(heap, 8, n), budget)

    def members(self, address: int) -> dict[str, int]:
        """Link name -> object header address, from the group's symbol table: a v1 B-tree of
        symbol table nodes whose names live in a local heap (FMT3 III.A.1, III.C, III.D)."""
        cached = self._members.get(address)
        if cached is not None:
            return cached
        # libhdf5 takes a group with link info for a new-style one (H5Gobj.c H5G__obj_get_linfo)
        if any(kind == _MSG_LINK_INFO for kind, _ in self.messages(address)):
            self._members[address] = members = self._links(address)
            return members
        o, n = self.offset_size, self.length_size
        table = self.message(address, _MSG_SYMBOL_TABLE)
        names = self.local_heap(_uint(table, o, o))
        found: dict[str, int] = {}
        # libhdf5 finds a name by binary search over the keys (H5B.c H5B_find, H5Gnode.c
        # H5G__node_cmp3: child i holds the names in (key i, key i+1]) and then over the sorted
        # entries of a node: every name is checked to lie where that search looks for it, so that
        # what is listed here is what h5py finds.
        nodes: list[tuple[int, int, bytes, bytes | None]] = [(_uint(table, 0, o), -1, b"", None)]
        seen: set[int] = set()
        while nodes:
            at, level, low, high = nodes.pop()
            if at in seen:
                raise Damaged("a B-tree node is linked twice")
            seen.add(at)
            node = self.read(at, 8 + 2 * o)
            # "TREE", node type 0 (group nodes), level, entries used, then siblings (H5Bcache.c)
            used = _uint(node, 6, 2)
            if node[:5] != b"TREE\0" or level not in (-1, node[5]) or used > 2 * self.internal_k:
                raise Damaged("a damaged B-tree node")
            # keys (lengths: offsets into the local heap) and children alternate, key first
            body = self.read(at + 8 + 2 * o, used * (n + o) + n)
            keys = [_heap_name(names, _uint(body, i * (n + o), n)) for i in range(used + 1)]
            for i in range(used):
                child = _uint(body, n + i * (n + o), o)
                bounds = max(low, keys[i]), keys[i + 1] if high is None else min(high, keys[i + 1])
                if node[5]:
                    nodes.append((child, node[5] - 1, *bounds))
                else:
                    self._symbol_node(child, names, bounds, found)
        self._members[address] = found
        return found

    def _links(self, address: int) -> dict[str, int]:
        """A new-style group's links, stored compactly as link messages in its header; h5py writes
        one for a group with a link name that is not ASCII (FMT3 IV.A.2.c, IV.A.2.g)."""
        o, members = self.offset_size, dict[str, int]()
        for kind, body in self.messages(address):
            if kind == _MSG_LINK_INFO:
                # version, flags, [max creation index], fractal heap address: defined when the
                # links are stored densely, in that heap
                if _uint(body, 2 + (8 if _uint(body, 1, 1) & 1 else 0), o) != self.undefined:
                    raise NotUnderstood("dense link storage")
            if kind != _MSG_LINK:
                continue
            # version 1, flags, [link type], [creation order], [name character set], name length
            # (1, 2, 4 or 8 bytes as flags bits 0-1 say), name, then the link's value
            flags, at = _uint(body, 1, 1), 2
            link_type = _uint(body, at, 1) if flags & 8 else 0
            at += (1 if flags & 8 else 0) + (8 if flags & 4 else 0) + (1 if flags & 16 else 0)
            width = 1 << (flags & 3)
            length = _uint(body, at, width)
            raw = body[at + width : at + width + length]
            if body[:1] != b"\1" or len(raw) != length:
                raise Damaged("a damaged link message")
            value = body[at + width + length :]
            if link_type == 64:
                # an external link: value length (2), then version and flags (1), the file's name
                # and the object's path, each NUL-terminated (H5Lexternal.c)
                target = value[3:].split(b"\0", 1)[0]
                raise OutsideFile(f"links to an object in another file, {_shown(target)} (an HDF5 external link)")
            if link_type != 0:
                raise NotUnderstood("a soft or user-defined link")
            _add(members, _link_name(raw), _uint(value, 0, o))
        return members

    def _symbol_node(self, address: int, names: bytes, bounds: tuple[bytes, bytes], members: dict[str, int]) -> None:
        o, n = self.offset_size, self.length_size
        head = self.read(address, 8)
        count = _uint(head, 6, 2)
        if head[:5] != b"SNOD\1" or count > 2 * self.leaf_k:
            raise Damaged("a damaged symbol table node")
        size = n + o + 24  # name offset, header address, cache type, reserved, scratch pad (H5Gent.c)
        entries = self.read(address + 8, count * size)
        previous = bounds[0]
        for at in range(0, len(entries), size):
            raw = _heap_name(names, _uint(entries, at, n))
            if not previous < raw <= bounds[1]:
                raise Damaged("a name out of order in a symbol table")
            # cache type 2 is a soft link: its target is a path, not an object header
            if _uint(entries, at + n + o, 4) == 2:
                raise NotUnderstood("a soft link")
            previous = raw
            _add(members, _link_name(raw), _uint(entries, at + n, o))

    def heap_object(self, address: int, index: int, length: int | None = None) -> bytes:
        """`length` bytes (all, if None) of object `index` of the global heap collection at
        `address` (FMT3 III.E)."""
        cached = self._collections.get(address)
        if cached is None:
            n = self.length_size
            head = self.read(address, 8 + n)
            if head[:5] != b"GCOL\1":
                raise Damaged("a damaged global heap collection")
            collection, objects, pos = self.read(address, _uint(head, 8, n)), {}, 8 + n
            # index (2), reference count (2), reserved (4), size (a length), data padded to 8 bytes;
            # index 0 is the free space that ends the collection
            while pos + 8 + n <= len(collection) and (object_index := _uint(collection, pos, 2)):
                size = _uint(collection, pos + 8, n)
                objects[object_index] = (pos + 8 + n, size)
                pos += 8 + n + (size + 7) // 8 * 8
            cached = self._collections[address] = (collection, objects)
        collection, objects = cached
        start, size = objects.get(index, (0, -1))
        length = size if length is None else length
        if length > size or start + length > len(collection):
            raise Damaged("a reference points outside its global heap object")
        self._budget.charge(length)
        return collection[start : start + length]

    def attributes(self, address: int) -> dict[str, tuple[bytes, tuple[int, ...] | None, bytes]]:
        """name -> (datatype message, shape, data) of each attribute stored in the header."""
        cached = self._attributes.get(address)
        if cached is not None:
            return cached
        found: dict[str, tuple[bytes, tuple[int, ...] | None, bytes]] = {}
        o = self.offset_size
        for kind, body in self.messages(address):
            # An attribute info message with a fractal heap address means dense attribute
            # storage (FMT3 IV.A.2.v), which this parser does not read.
            if kind == _MSG_ATTRIBUTE_INFO:
                if _uint(body, 2 + (2 if _uint(body, 1, 1) & 1 else 0), o) != self.undefined:
                    raise NotUnderstood("dense attribute storage")
            if kind != _MSG_ATTRIBUTE:
                continue
            # version 1 pads name, datatype and dataspace to 8 bytes; version 3 adds the name's
            # character set; versions 2 and 3 may share the datatype or dataspace (H5Oattr.c)
            version = body[0] if body else 0
            if version not in (1, 2, 3):
                raise Damaged("an attribute message of an unknown version")
            if version > 1 and body[1] & 3:
                raise NotUnderstood("an attribute with a shared datatype or dataspace")
            sizes = [_uint(body, 2, 2), _uint(body, 4, 2), _uint(body, 6, 2)]
            pos, parts = 9 if version == 3 else 8, []
            for size in sizes:
                parts.append(body[pos : pos + size])
                pos += (size + 7) // 8 * 8 if version == 1 else size
            name, datatype, dataspace = parts
            if pos > len(body) or name[-1:] != b"\0":
                raise Damaged("a damaged attribute message")
            key = _utf8(name[:-1], "an attribute name")
            if key in found:
                raise Damaged("two attributes of one object have the same name")
            found[key] = (datatype, self.dataspace(dataspace), body[pos:])
        self._attributes[address] = found
        return found

    def dataspace(self, body: bytes) -> tuple[int, ...] | None:
        """A dataspace message (FMT3 IV.A.2.b): version 1 has no type byte and 4 reserved bytes."""
        version, rank = (body[0], body[1]) if len(body) >= 4 else (0, 0)
        if version == 1:
            kind, at = (1 if rank else 0), 8
        elif version == 2:
            kind, at = body[3], 4
        else:
            raise Damaged("a dataspace message of an unknown version")
        if kind == 2:
            return None
        if kind not in (0, 1) or rank > _MAX_RANK:
            raise Damaged("a damaged dataspace message")
        n = self.length_size
        return tuple(_uint(body, at + i * n, n) for i in range(rank)) if kind == 1 else ()

    def attribute_value(self, datatype: bytes, shape: tuple[int, ...] | None, data: bytes) -> Any:
        """An attribute's value, as h5py reads it, in plain Python."""
        if shape is None:
            return None
        count = _product(shape)
        cls, bits, size = _datatype(datatype)
        name = dtype_name(datatype)
        if size <= 0 or count * size > len(data):
            raise Damaged("an attribute holds fewer bytes than its shape needs")
        items = [data[i : i + size] for i in range(0, count * size, size)]
        if name.startswith(("int", "uint")):
            signed = bool(bits & 8)
            values: list[Any] = [int.from_bytes(b, "big" if bits & 1 else "little", signed=signed) for b in items]
        elif name.startswith("float"):
            values = list(struct.unpack(f"{'>' if bits & 1 else '<'}{count}{'efd'[size // 4]}", data[: count * size]))
        elif cls == 3 and bits & 15 < 2:
            # numpy drops the padding NULs of a null-padded string; libhdf5 converts a
            # null-terminated one to that, ending it at its first NUL (H5Tconv.c H5T__conv_s_s)
            values = [b.rstrip(b"\0") if bits & 15 else b.split(b"\0", 1)[0] for b in items]
        elif cls == 9 and name == "string":
            # length (4 bytes), then a global heap ID: collection address, object index (FMT3 IV.A.2.d)
            o = self.offset_size
            ids = [(_uint(b, 0, 4), _uint(b, 4, o), _uint(b, 4 + o, 4)) for b in items]
            # libhdf5 hands a variable-length string over as a C string: it ends at a NUL
            strings = [self.heap_object(at, i, n).split(b"\0", 1)[0] if n else b"" for n, at, i in ids]
            values = [_utf8(b, "a string attribute") for b in strings]
        else:
            raise NotUnderstood("an attribute of a datatype this parser does not read")
        return values[0] if shape == () else values

    # ---- values --------------------------------------------------------------------------------

    def value(self, address: int) -> np.ndarray:
        """The values of the dataset whose header is at `address`, read into a numpy array that is
        allocated only once the file is known to hold every byte of it."""
        import numpy as np

        found: dict[int, bytes] = {}
        for kind, body in self.messages(address):
            found.setdefault(kind, body)
        if _MSG_EXTERNAL_FILES in found:
            names = self._external_files(found[_MSG_EXTERNAL_FILES])
            raise OutsideFile(f"keeps its values in other files, {names} (HDF5 external storage)")
        if _MSG_LAYOUT not in found:
            raise Damaged("a dataset without a data layout message")
        layout = self._layout(found[_MSG_LAYOUT])
        if layout.kind == _LAYOUT_VIRTUAL:
            sources = self._virtual_sources(layout)
            raise OutsideFile(f"is an HDF5 virtual dataset, which reads its values from {sources}")
        shape = self.dataspace(self.message(address, _MSG_DATASPACE))
        if shape is None:
            raise Damaged("a null dataspace: the dataset holds no value")
        typestr = _element_type(self.message(address, _MSG_DATATYPE))[1]
        if typestr is None:
            raise NotUnderstood("values of a datatype this parser does not read")
        dtype = np.dtype(typestr)
        declared = _product(shape) * dtype.itemsize
        if layout.kind != _LAYOUT_CHUNKED and _MSG_FILTERS in found:
            raise Damaged("a filter pipeline on a dataset that is not chunked")
        if layout.kind == _LAYOUT_COMPACT:
            if len(layout.data) != declared:
                raise Damaged(f"its shape needs {declared} bytes but it stores {len(layout.data)}")
            return np.frombuffer(layout.data, dtype).reshape(shape).copy()
        if layout.kind == _LAYOUT_CHUNKED:
            return self._chunked(layout, shape, dtype, self._filters(found.get(_MSG_FILTERS)))
        # Contiguous. Versions 1 and 2 leave the size to the dataspace (H5Olayout.c).
        if layout.size is not None and layout.size != declared:
            raise Damaged(f"its shape needs {declared} bytes but it stores {layout.size}")
        if declared and layout.address == self.undefined:
            raise Damaged(f"it declares {declared} bytes but the file stores none of them")
        if declared and layout.address + declared > self.size:
            raise Damaged(f"its {declared} bytes run past the end of the file")
        out = np.empty(shape, dtype)
        if declared:
            self.read_into(layout.address, out.reshape(-1).view(np.uint8))
        return out

    def _layout(self, body: bytes) -> _Layout:
        """A data layout message (FMT3 IV.A.2.i; H5Olayout.c H5O__layout_decode)."""
        o, n = self.offset_size, self.length_size
        version = body[0] if body else 0
        if version in (1, 2):
            # dimensionality, class, 5 reserved bytes, [address], dimensions (4 bytes each),
            # [compact: size (4 bytes) and data]
            ndims, kind, at = _uint(body, 1, 1), _uint(body, 2, 1), 8
            if not 0 < ndims <= _MAX_RANK + 1 or kind not in (0, 1, 2):
                raise Damaged("a damaged data layout message")
            address = _uint(body, at, o) if kind else 0
            at += o if kind else 0
            dims = tuple(_uint(body, at + 4 * i, 4) for i in range(ndims))
            at += 4 * ndims
            if kind == _LAYOUT_COMPACT:
                size = _uint(body, at, 4)
                return _Layout(kind, version, data=self._compact(body, at + 4, size))
            return _Layout(kind, version, address, chunk=dims if kind == _LAYOUT_CHUNKED else ())
        if version not in (3, 4):
            raise Damaged("a data layout message of an unknown version")
        kind = _uint(body, 1, 1)
        if kind == _LAYOUT_COMPACT:
            return _Layout(kind, version, data=self._compact(body, 4, _uint(body, 2, 2)))
        if kind == _LAYOUT_CONTIGUOUS:
            return _Layout(kind, version, _uint(body, 2, o), _uint(body, 2 + o, n))
        if kind == _LAYOUT_CHUNKED and version == 3:
            # dimensionality, B-tree address, dimensions (4 bytes each, the last the element size)
            ndims = _uint(body, 2, 1)
            if not 2 <= ndims <= _MAX_RANK + 1:
                raise Damaged("a damaged data layout message")
            chunk = tuple(_uint(body, 3 + o + 4 * i, 4) for i in range(ndims))
            return _Layout(kind, version, _uint(body, 3, o), chunk=chunk)
        if kind == _LAYOUT_CHUNKED:
            raise NotUnderstood("a chunk index of a version 4 data layout")
        if kind == _LAYOUT_VIRTUAL and version == 4:
            return _Layout(kind, version, heap_id=(_uint(body, 2, o), _uint(body, 2 + o, 4)))
        raise Damaged("a data layout message of an unknown class")

    @staticmethod
    def _compact(body: bytes, at: int, size: int) -> bytes:
        data = body[at : at + size]
        if len(data) != size:
            raise Damaged("compact data runs past its message")
        return data

    def _external_files(self, body: bytes) -> str:
        """The file names of an external data files message (FMT3 IV.A.2.h; H5Oefl.c): version 1,
        3 reserved bytes, slots allocated and used, the local heap of the names, then per slot the
        name's offset in that heap, an offset in the file and a size."""
        o, n = self.offset_size, self.length_size
        if body[:1] != b"\1":
            raise Damaged("an external data files message of an unknown version")
        used, names = _uint(body, 6, 2), self.local_heap(_uint(body, 8, o))
        shown = [_shown(_heap_name(names, _uint(body, 8 + o + i * 3 * n, n))) for i in range(min(used, 3))]
        return ", ".join(shown) + (f" and {used - 3} more" if used > 3 else "")

    def _virtual_sources(self, layout: _Layout) -> str:
        """The first source file of a virtual dataset's mapping: a global heap object holding a
        version byte (0), the number of entries (a length), then per entry the source file's name
        and the source dataset's, NUL-terminated, and two selections (H5Olayout.c)."""
        address, index = layout.heap_id
        block = self.heap_object(address, index)
        count = _uint(block, 1, self.length_size)
        if block[:1] != b"\0" or not count:
            raise Damaged("a damaged virtual dataset mapping")
        first = block[1 + self.length_size :].split(b"\0", 1)[0]
        return _shown(first) + (f" and {count - 1} more mappings" if count > 1 else "")

    def _filters(self, body: bytes | None) -> list[tuple[int, list[int]]]:
        """(filter id, client data) of each filter of a filter pipeline message, in the order
        they were applied when writing (FMT3 IV.A.2.l; H5Opline.c). Version 1 pads names and an
        odd number of client values to 8 bytes; version 2 stores no name for the library's own."""
        if body is None:
            return []
        version, count = (body[0], body[1]) if len(body) >= 2 else (0, 0)
        if version not in (1, 2):
            raise Damaged("a filter pipeline message of an unknown version")
        filters, at = [], 8 if version == 1 else 2
        for _ in range(count):
            filter_id = _uint(body, at, 2)
            has_name = version == 1 or filter_id >= 256
            name_length = _uint(body, at + 2, 2) if has_name else 0
            at += 4 if has_name else 2
            values = _uint(body, at + 2, 2)  # after the flags
            at += 4 + ((name_length + 7) // 8 * 8 if version == 1 else name_length)
            filters.append((filter_id, [_uint(body, at + 4 * i, 4) for i in range(values)]))
            at += 4 * values + (4 if version == 1 and values % 2 else 0)
        if at > len(body):
            raise Damaged("a damaged filter pipeline message")
        unknown = sorted({f for f, _ in filters} - {_FILTER_DEFLATE, _FILTER_SHUFFLE})
        if unknown:
            raise NotUnderstood(f"HDF5 filter {unknown[0]}")
        return filters

    def _chunked(
        self, layout: _Layout, shape: tuple[int, ...], dtype: np.dtype, filters: list[tuple[int, list[int]]]
    ) -> np.ndarray:
        """A chunked dataset's values: every chunk must be stored, where the B-tree search of
        libhdf5 finds it, once, in bytes no other chunk uses."""
        import numpy as np

        chunk, element = layout.chunk[:-1], layout.chunk[-1]
        if len(chunk) != len(shape) or element != dtype.itemsize or 0 in chunk:
            raise Damaged("chunk dimensions that do not fit the dataset")
        chunk_bytes = _product(chunk) * element
        if chunk_bytes > _MAX_CHUNK_BYTES:
            raise Damaged("chunks of 4 GiB or more")
        expected = _product(-(-d // c) for d, c in zip(shape, chunk))
        declared = _product(shape) * dtype.itemsize
        chunks = self._chunk_index(layout, shape, expected) if layout.address != self.undefined else []
        stored, end = 0, 0
        for _, size, _, at in sorted(chunks, key=lambda c: c[3]):
            if at < end:
                raise Damaged("two chunks share bytes")
            stored, end = stored + size, at + size
        if len(chunks) != expected:
            raise Damaged(
                f"it declares {declared} bytes in {expected} chunks but the file stores {len(chunks)} of "
                f"them ({stored} bytes): a partly written dataset"
            )
        if declared > max(stored, 1) * MAX_DEFLATE_RATIO:
            raise Damaged(f"it declares {declared} bytes but the file stores {stored} for it")
        out = np.empty(shape, dtype)
        for offset, size, mask, at in chunks:
            data = self._raw_chunk(at, size)
            # applied in order when written, undone in reverse; bit i of the mask skips filter i
            for i in reversed(range(len(filters))):
                filter_id, values = filters[i]
                if mask >> i & 1:
                    continue
                if filter_id == _FILTER_DEFLATE:
                    data = _inflate(data, chunk_bytes)
                else:
                    data = _unshuffle(data, values[0] if values else element)
            if len(data) != chunk_bytes:
                raise Damaged(f"a chunk holds {len(data)} bytes where its shape needs {chunk_bytes}")
            region = tuple(slice(o, min(o + c, d)) for o, c, d in zip(offset, chunk, shape))
            block = np.frombuffer(data, dtype).reshape(chunk)
            out[region] = block[tuple(slice(0, r.stop - r.start) for r in region)]
        return out

    def _raw_chunk(self, address: int, size: int) -> bytes:
        if address + size > self.size:
            raise Damaged("a chunk runs past the end of the file")
        self._raw.seek(address)
        data = self._raw.read(size)
        if len(data) != size:
            raise Damaged("the file is shorter than it says")
        return data

    def _chunk_index(
        self, layout: _Layout, shape: tuple[int, ...], expected: int
    ) -> list[tuple[tuple[int, ...], int, int, int]]:
        """(offset, stored size, filter mask, address) of every chunk the version-1 B-tree of a
        chunked dataset lists (FMT3 III.A.1, node type 1; H5Dbtree.c). A key is the chunk's stored
        size (4 bytes), its filter mask (4) and its offset, 8 bytes per dimension plus a last 0
        for the element; child i of a node holds the chunks whose offsets lie in [key i, key
        i+1), which is where libhdf5's binary search looks (H5D__btree_cmp3)."""
        o, ndims, chunk = self.offset_size, len(layout.chunk), layout.chunk[:-1]
        key_size = 8 + 8 * ndims
        budget = _Budget(self.size + _EXTRA_BUDGET)
        found: list[tuple[tuple[int, ...], int, int, int]] = []
        bounds: tuple[tuple[int, ...] | None, tuple[int, ...] | None] = (None, None)
        nodes = [(layout.address, -1, *bounds)]
        seen: set[int] = set()
        while nodes:
            at, level, low, high = nodes.pop()
            if at in seen:
                raise Damaged("a chunk B-tree node is linked twice")
            seen.add(at)
            head = self.read(at, 8 + 2 * o, budget)
            used = _uint(head, 6, 2)
            if head[:5] != b"TREE\1" or level not in (-1, head[5]) or not 0 < used <= 2 * self.chunk_k:
                raise Damaged("a damaged chunk B-tree node")
            body = self.read(at + 8 + 2 * o, used * (key_size + o) + key_size, budget)
            keys = [
                (_uint(body, k, 4), _uint(body, k + 4, 4), tuple(_uint(body, k + 8 + 8 * d, 8) for d in range(ndims)))
                for k in range(0, (used + 1) * (key_size + o), key_size + o)
            ]
            for i in range(used):
                start, end = keys[i][2], keys[i + 1][2]
                if not start < end or (low is not None and start < low) or (high is not None and end > high):
                    raise Damaged("chunk B-tree keys out of order")
                child = _uint(body, key_size + i * (key_size + o), o)
                if head[5]:
                    nodes.append((child, head[5] - 1, start, end))
                    continue
                size, mask = keys[i][0], keys[i][1]
                offset = start[:-1]
                in_grid = all(p % c == 0 and p < d for p, c, d in zip(offset, chunk, shape))
                if start[-1] != 0 or not in_grid or not size or child + size > self.size:
                    raise Damaged("a chunk outside the dataset or the file")
                found.append((offset, size, mask, child))
                if len(found) > expected:
                    raise Damaged("more chunks than the dataset has room for")
        return found


def _inflate(data: bytes, size: int) -> bytes:
    """Deflate-filtered bytes (a zlib stream, H5Zdeflate.c) that must expand to exactly `size`."""
    if size > max(len(data), 1) * MAX_DEFLATE_RATIO:
        raise Damaged("a chunk claims to expand more than deflate can")
    inflater, pieces, done, pending = zlib.decompressobj(), [], 0, data
    try:
        # in pieces, so that Ctrl-C is seen while a large chunk inflates
        while not inflater.eof and done <= size:
            piece = inflater.decompress(pending, min(_READ_PIECE, size + 1 - done))
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                break
            pieces.append(piece)
            done += len(piece)
    except zlib.error as e:
        raise Damaged(f"a chunk does not inflate ({e})") from None
    out = b"".join(pieces)
    if len(out) != size or not inflater.eof:
        raise Damaged(f"a chunk inflates to other than the {size} bytes its shape needs")
    return out


def _unshuffle(data: bytes, element: int) -> bytes:
    """Undo the shuffle filter: byte j of every element was stored together, elements in order,
    j = 0 first; bytes past the last whole element stay as they are (H5Zshuffle.c)."""
    import numpy as np

    count = len(data) // element if element > 1 else 0
    if count < 2:
        return data
    grouped = np.frombuffer(data, np.uint8, count * element).reshape(element, count)
    return grouped.T.tobytes() + data[count * element :]


def _shown(name: bytes) -> str:
    """A file name from the file, quoted for a message."""
    return repr(name.decode("utf-8", errors="backslashreplace"))


def _datatype(body: bytes) -> tuple[int, int, int]:
    """Class, class bit field and size of a datatype message (FMT3 IV.A.2.d)."""
    return (body[0] & 15 if body else -1), _uint(body, 1, 3), _uint(body, 4, 4)


def _element_type(body: bytes) -> tuple[str, str | None]:
    """numpy's name for what h5py makes of a datatype message, and the numpy type string of its
    stored bytes where the parser reads its values."""
    cls, bits, size = _datatype(body)
    # versions 1-4; a variable-length type is a sequence (0) or a string (1)
    if not 1 <= body[0] >> 4 <= 4 or cls > 10 or (cls == 9 and bits & 15 > 1):
        raise Damaged("a damaged datatype message")
    order = ">" if bits & 1 else "<"
    if cls == 0 and size in (1, 2, 4, 8) and (_uint(body, 8, 2), _uint(body, 10, 2)) == (0, 8 * size):
        signed = bool(bits & 8)
        return f"{'int' if signed else 'uint'}{8 * size}", f"{order}{'i' if signed else 'u'}{size}"
    if cls == 1 and size in _IEEE and not bits & 0x40:  # bit 6 is VAX byte order
        layout = (_uint(body, 8, 2), _uint(body, 10, 2), *body[12:16], _uint(body, 16, 4))
        # sign bit position (bits 8-15), mantissa normalization "implied" (bits 4-5 = 2)
        if layout == _IEEE[size] and bits >> 8 == 8 * size - 1 and (bits >> 4) & 3 == 2:
            return f"float{8 * size}", f"{order}f{size}"
    if cls == 3 or (cls == 9 and bits & 15 == 1):  # fixed-length, or variable-length string
        return "string", None
    if cls == 5 and size:  # opaque: h5py gives numpy void; Keras 3 stores bfloat16 so
        return f"void{8 * size}", f"V{size}"
    if cls in _CLASS_NAMES:
        return _CLASS_NAMES[cls], None
    raise NotUnderstood("an integer or float of a layout this parser does not read")


def dtype_name(body: bytes) -> str:
    """numpy's name for what h5py makes of a datatype message (Dataset.dtype)."""
    return _element_type(body)[0]


class _Object(Node):
    def __init__(self, file: _File, name: str, address: int) -> None:
        self._file, self.name, self.key, self._address = file, name, address, address

    @property
    def attrs(self) -> Mapping[str, Any]:
        return _Attributes(self._file.attributes(self._address), lambda stored: self._file.attribute_value(*stored))


class _Attributes(Mapping[str, Any]):
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


class _Group(_Object, Group):
    @property
    def root(self) -> Group:
        return self._file.root

    def items(self) -> list[tuple[str, Node]]:
        members = self._file.members(self._address)
        return [(name, self._file.node(self._child(name), members[name])) for name in sorted(members)]

    def member(self, name: str) -> Node | None:
        address = self._file.members(self._address).get(name)
        return None if address is None else self._file.node(self._child(name), address)


class _Dataset(_Object, Dataset):
    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._file.dataspace(self._file.message(self._address, _MSG_DATASPACE))

    @property
    def dtype(self) -> str:
        return dtype_name(self._file.message(self._address, _MSG_DATATYPE))

    def read(self) -> np.ndarray:
        return self._file.value(self._address)


class _NamedDatatype(_Object):
    """A committed datatype: neither group nor dataset."""


def descriptor(raw: BinaryIO) -> int | None:
    """The OS file descriptor behind an open file, or None for a file object without one (a remote
    file, readers/remote.py)."""
    try:
        return raw.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class FileRange(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start + size) of an open file. A local file is
    read with pread, which never moves the descriptor's offset that a child process shares
    (H5pyWorker); a file without a descriptor (remote) by seek and readinto."""

    def __init__(self, raw: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._raw, self._fd = raw, descriptor(raw)
        self._start, self._size, self._pos = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        view = memoryview(buffer).cast("B")[:n]
        if self._fd is not None:
            got = os.preadv(self._fd, [view], self._start + self._pos)
        else:
            self._raw.seek(self._start + self._pos)
            got = self._raw.readinto(view) or 0
        self._pos += got
        return got


# ---------------------------------------------------------------------------------------------
# h5py, in a child process

# CPU seconds a worker may spend on one request, plus one per this many bytes of the file: reading
# a 1 GB dataset costs h5py about 1 s, inflating one about 5 s; libhdf5's endless loops on damaged
# files spend them all. CPU time, not wall time, so that a busy machine does not fail a file.
WORKER_CPU_SECONDS = 10
_WORKER_BYTES_PER_CPU_SECOND = 16 << 20
_MAX_SOFT_LINKS = 16  # H5L_NUM_LINKS: libhdf5 follows this many soft links in one path
# What h5py raises for what it cannot read in a file, or a zip member damaged under it: in the
# worker these mean "damaged", anything else is a bug there and comes back with its traceback.
_H5PY_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, EOFError, zlib.error)
_BYTES_TAG = "\0bytes"  # marks bytes in the worker's JSON; no HDF5 attribute name holds a NUL


class H5pyWorker:
    """h5py in a child process, opened on the same file descriptor.

    The child lists the whole tree at once (tree()), then reads datasets on demand (read()). It
    runs each request under a CPU-time limit (RLIMIT_CPU, WORKER_CPU_SECONDS plus one second per
    16 MiB of the file) and is killed when the parent is interrupted, so that a libhdf5 loop ends
    in Damaged, and Ctrl-C in KeyboardInterrupt, at once. `start`, `size`: the HDF5 bytes of the
    file; `member`: the zip member holding them, when they are deflated.
    """

    def __init__(self, fd: int, start: int, size: int, member: str | None = None) -> None:
        import subprocess  # here: listing a file the parser reads never starts a process

        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = (
            f"import sys; sys.path.insert(0, {package_root!r}); from lstm_inspect.readers.hdf5 import _serve; _serve()"
        )
        self._size = size
        # One BLAS thread: the worker does no arithmetic, and each thread would reserve memory.
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", code, str(fd), str(start), str(size), member or "", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
            env=env,
        )
        self._failure: str | None = None

    def tree(self) -> Group:
        """The root group, every object and attribute listed by h5py."""
        answer = self._request({"op": "tree"})
        return _ListedTree(self, answer["objects"], answer["root"]).root

    def read(self, path: str) -> np.ndarray:
        """The values of the dataset at `path`, in the stored byte order."""
        import numpy as np

        answer = self._request({"op": "read", "path": path})
        dtype, shape = np.dtype(answer["dtype"]), tuple(answer["shape"])
        if dtype.kind not in "iufV" or dtype.hasobject or any(d < 0 for d in shape):
            raise RuntimeError(f"the h5py worker sent an array of {dtype} {shape}")
        out = np.empty(shape, dtype)
        self._receive_into(out.reshape(-1).view(np.uint8))
        return out

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._failure is not None:
            raise Damaged(self._failure)
        if self._process is None:
            raise ValueError("the h5py worker is closed")
        request["cpu"] = WORKER_CPU_SECONDS + self._size // _WORKER_BYTES_PER_CPU_SECOND
        try:
            assert self._process.stdin is not None
            message = json.dumps(request).encode()
            self._process.stdin.write(len(message).to_bytes(8, "little") + message)
            self._process.stdin.flush()
            header = bytearray(8)
            self._receive_into(header)
            text = bytearray(int.from_bytes(header, "little"))
            self._receive_into(text)
        except BrokenPipeError:
            self._died(request["cpu"])
        except BaseException:
            # Ctrl-C among them: libhdf5 may be in one of its loops, which only a kill ends.
            self.close()
            raise
        answer = json.loads(text, object_hook=_untag)
        if answer.get("ok"):
            return answer  # type: ignore[no-any-return]
        if answer.get("error") == "outside":
            raise OutsideFile(answer["message"])
        if answer.get("error") == "damaged":
            raise Damaged(answer["message"])
        raise RuntimeError(f"the h5py worker failed:\n{answer.get('message')}")

    def _receive_into(self, target: Any) -> None:
        assert self._process is not None and self._process.stdout is not None
        view, done, fd = memoryview(target).cast("B"), 0, self._process.stdout.fileno()
        while done < len(view):
            got = os.readv(fd, [view[done : done + _READ_PIECE]])
            if not got:
                self._died(None)
            done += got

    def _died(self, cpu: int | None) -> None:
        assert self._process is not None
        import signal

        status = self._process.wait()
        self.close()
        if status == -signal.SIGXCPU:
            self._failure = (
                f"libhdf5 did not finish within {cpu or WORKER_CPU_SECONDS} s of CPU time (it loops "
                "forever on some damaged files)"
            )
        else:
            self._failure = f"libhdf5 stopped reading it (exit status {status})"
        raise Damaged(self._failure)


def _untag(value: dict[str, Any]) -> Any:
    return bytes.fromhex(value[_BYTES_TAG]) if len(value) == 1 and _BYTES_TAG in value else value


class _ListedTree:
    """What the worker listed: object key -> {"kind", "attrs", "members" | "shape", "dtype"}."""

    def __init__(self, worker: H5pyWorker, objects: dict[str, dict[str, Any]], root: str) -> None:
        self.worker, self.objects = worker, objects
        self._member_maps: dict[str, dict[str, str]] = {}
        node = self.node("/", root)
        if not isinstance(node, Group):
            raise Damaged("the root object is not a group")
        self.root: Group = node

    def members(self, key: str) -> dict[str, str]:
        """Member name -> object key, of the group `key`: made once, looked up many times."""
        found = self._member_maps.get(key)
        if found is None:
            found = self._member_maps[key] = dict(self.objects[key]["members"])
        return found

    def node(self, name: str, key: str) -> Node:
        kind = self.objects[key]["kind"]
        cls = _ListedGroup if kind == "group" else _ListedDataset if kind == "dataset" else _ListedNode
        return cls(self, name, key)


class _ListedNode(Node):
    def __init__(self, tree: _ListedTree, name: str, key: str) -> None:
        self._tree, self._entry, self._key, self.name, self.key = tree, tree.objects[key], key, name, int(key)

    @property
    def attrs(self) -> Mapping[str, Any]:
        return _Attributes(self._entry["attrs"], lambda value: value)


class _ListedGroup(_ListedNode, Group):
    @property
    def root(self) -> Group:
        return self._tree.root

    def items(self) -> list[tuple[str, Node]]:
        return [(name, self._tree.node(self._child(name), key)) for name, key in self._entry["members"]]

    def member(self, name: str) -> Node | None:
        key = self._tree.members(self._key).get(name)
        return None if key is None else self._tree.node(self._child(name), key)


class _ListedDataset(_ListedNode, Dataset):
    @property
    def shape(self) -> tuple[int, ...] | None:
        shape = self._entry["shape"]
        return None if shape is None else tuple(shape)

    @property
    def dtype(self) -> str:
        return str(self._entry["dtype"])

    def read(self) -> np.ndarray:
        return self._tree.worker.read(self.name)


# ---- the child's side ------------------------------------------------------------------------


def _serve() -> None:
    """The worker: requests (8-byte length, JSON) on stdin; answers the same way on stdout, an
    array's bytes after its answer. Arguments: fd, start, size, zip member (or ""), parent's pid."""
    import resource
    import signal

    fd, start, size, member = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    try:  # Linux: die with the parent (killed by SIGTERM, say), not only at the CPU limit
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (linux/prctl.h)
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(sys.argv[5]):
        return  # the parent is gone already
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to stdout goes where stderr goes, not into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and kills
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a libhdf5 crash leaves no core file behind
    opened: list[Any] = []
    while len(header := requests.read(8)) == 8:
        request = json.loads(requests.read(int.from_bytes(header, "little")))
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        limit = int(used) + 1 + request["cpu"]
        resource.setrlimit(resource.RLIMIT_CPU, (limit, resource.RLIM_INFINITY))
        payload = None
        try:
            if not opened:
                opened.append(_open_h5py(fd, start, size, member))
            if request["op"] == "tree":
                answer: dict[str, Any] = {"ok": True, **_dump(opened[0], size)}
            else:
                payload = _read_h5py(opened[0], request["path"])
                answer = {"ok": True, "dtype": payload.dtype.str, "shape": list(payload.shape)}
        except OutsideFile as e:
            answer = {"ok": False, "error": "outside", "message": str(e)}
        except Damaged as e:
            answer = {"ok": False, "error": "damaged", "message": str(e)}
        except MemoryError:
            answer = {"ok": False, "error": "damaged", "message": "libhdf5 needed more memory than there is"}
        except _H5PY_ERRORS as e:
            answer = {"ok": False, "error": "damaged", "message": f"h5py: {e}"}
        except Exception:
            import traceback

            answer = {"ok": False, "error": "bug", "message": traceback.format_exc()}
        text = json.dumps(answer, default=_tag).encode()
        answers.write(len(text).to_bytes(8, "little") + text)
        if payload is not None:
            answers.write(memoryview(payload.reshape(-1)).cast("B"))
        answers.flush()


def _tag(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES_TAG: value.hex()}
    return str(value)  # numbers h5py gives in types JSON lacks (complex), which Keras never writes


def _open_h5py(fd: int, start: int, size: int, member: str) -> Any:
    import h5py  # type: ignore[import-untyped]

    source: Any = FileRange(io.FileIO(fd, closefd=False), start, size)
    if member:
        import zipfile

        source = zipfile.ZipFile(source).open(member)
    try:
        return h5py.File(source, "r", locking=False)
    except _H5PY_ERRORS as e:
        raise Damaged(f"libhdf5 cannot open it ({e})") from None


def _resolve(h5: Any, group: Any, name: str, hops: int = 0) -> Any:
    """The object the link `name` of `group` leads to, or None; soft links followed here, link by
    link, so that no external link is (libhdf5 would open the other file)."""
    import h5py  # type: ignore[import-untyped]

    if hops > _MAX_SOFT_LINKS:
        raise Damaged("soft links lead round in a circle")
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise OutsideFile(
            f"links to an object in another file, {_shown(os.fsencode(link.filename))} (an HDF5 external link)"
        )
    if isinstance(link, h5py.HardLink):
        return group[name]
    if not isinstance(link, h5py.SoftLink):
        return None  # a user-defined link: libhdf5 does not follow it either
    node = h5 if link.path.startswith("/") else group
    for part in link.path.split("/"):
        if part in ("", "."):
            continue
        node = _resolve(h5, node, part, hops + 1) if isinstance(node, h5py.Group) else None
        if node is None:
            return None
    return node


def _dump(h5: Any, size: int) -> dict[str, Any]:
    """Every object reached from the root, each once, with its attributes and members."""
    import h5py  # type: ignore[import-untyped]

    budget = _Budget(size + _EXTRA_BUDGET)
    objects: dict[str, dict[str, Any]] = {}
    stack = [h5]
    root = str(h5py.h5o.get_info(h5.id).addr)
    while stack:
        obj = stack.pop()
        key = str(h5py.h5o.get_info(obj.id).addr)
        if key in objects:
            continue
        attrs = {name: _plain(obj.attrs[name], budget) for name in obj.attrs}
        entry: dict[str, Any] = {"attrs": attrs}
        if isinstance(obj, h5py.Group):
            members = []
            for raw_name in obj:
                name = _link_name(raw_name) if isinstance(raw_name, bytes) else raw_name
                child = _resolve(h5, obj, name)
                if child is None:
                    continue  # a link that leads nowhere: no member, as h5py's items() skips it
                budget.charge(len(name) + 64)
                members.append([name, str(h5py.h5o.get_info(child.id).addr)])
                stack.append(child)
            entry.update(kind="group", members=members)
        elif isinstance(obj, h5py.Dataset):
            entry.update(kind="dataset", shape=None if obj.shape is None else list(obj.shape), dtype=_h5py_dtype(obj))
        else:
            entry.update(kind="other")
        objects[key] = entry
    return {"objects": objects, "root": root}


def _plain(value: Any, budget: _Budget) -> Any:
    """An h5py attribute value as plain Python, as the parser gives it (Node.attrs)."""
    import h5py  # type: ignore[import-untyped]

    if isinstance(value, h5py.Empty):
        return None
    if getattr(value, "ndim", 0):  # an array; numpy scalars and 0-d arrays have ndim 0
        value = value.ravel().tolist()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    for item in value if isinstance(value, list) else [value]:
        budget.charge(len(item) if isinstance(item, (str, bytes)) else 8)
    return value


def _h5py_dtype(dataset: Any) -> str:
    """Dataset.dtype, from h5py: the same names the parser gives."""
    import h5py  # type: ignore[import-untyped]

    cls = dataset.id.get_type().get_class()
    if cls == h5py.h5t.STRING or (cls == h5py.h5t.VLEN and h5py.check_string_dtype(dataset.dtype) is not None):
        return "string"
    return _CLASS_NAMES.get(cls) or str(dataset.dtype.name)


def _read_h5py(h5: Any, path: str) -> Any:
    """A dataset's values, read by h5py once the checks the parser makes on its own reads pass."""
    import h5py  # type: ignore[import-untyped]
    import numpy as np

    node: Any = h5
    for part in path.split("/"):
        if part in ("", "."):
            continue
        node = _resolve(h5, node, part) if isinstance(node, h5py.Group) else None
        if node is None:
            break
    if not isinstance(node, h5py.Dataset):
        raise Damaged(f"h5py finds no dataset at {path}")
    plist = node.id.get_create_plist()
    if plist.get_external_count():
        names = ", ".join(_shown(plist.get_external(i)[0]) for i in range(min(plist.get_external_count(), 3)))
        raise OutsideFile(f"keeps its values in other files, {names} (HDF5 external storage)")
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        names = ", ".join(_shown(os.fsencode(plist.get_virtual_filename(i))) for i in range(plist.get_virtual_count()))
        raise OutsideFile(f"is an HDF5 virtual dataset, which reads its values from {names}")
    if node.shape is None:
        raise Damaged("a null dataspace: the dataset holds no value")
    declared, stored = node.dtype.itemsize * _product(node.shape), node.id.get_storage_size()
    if layout == h5py.h5d.CHUNKED:
        expected = _product(-(-d // c) for d, c in zip(node.shape, node.chunks))
        present = node.id.get_num_chunks()
        if present != expected:
            raise Damaged(
                f"it declares {declared} bytes in {expected} chunks but the file stores {present} of "
                f"them ({stored} bytes): a partly written dataset"
            )
    # HDF5 lets a dataset declare any shape and store nothing (unwritten space reads as the fill
    # value): refuse what no stored, or compressed, bytes could hold.
    if declared > max(stored, 1) * MAX_DEFLATE_RATIO:
        raise Damaged(f"it declares {declared} bytes but the file stores {stored} for it")
    if declared and not stored:
        raise Damaged(f"it declares {declared} bytes but the file stores none of them")
    value = np.asarray(node[()])
    if value.dtype.kind not in "iufV" or value.dtype.hasobject:
        raise Damaged(f"h5py reads it as {value.dtype}, not as numbers")
    return np.asarray(value, order="C")  # not ascontiguousarray: that makes a scalar 1-d
