"""The HDF5 tree that the Keras reader walks: groups, datasets and attributes, never values.

Two sources give the same small interface (Group, Dataset, Node below):

- ``read_tree`` parses the metadata itself, in pure Python, so that listing a Keras file imports
  neither h5py nor numpy (together about half of a `summary` run). It reads what h5py writes by
  default, the "earliest" file format: superblock v0/v1, version-1 object headers, symbol-table
  groups, and attributes of integers, IEEE floats and strings (fixed-length, or variable-length
  in the global heap).
- ``h5py_tree`` puts h5py's own objects behind the same interface. h5py alone reads values.

One rule covers the rest: whatever the parser lacks (a newer superblock or object header, new-style
groups, dense attribute storage, shared messages, soft links, other datatypes) or finds
inconsistent raises NotUnderstood, and the caller lists that file with h5py instead, which reads
whatever libhdf5 reads and reports damage the way it always did.

Layouts follow the HDF5 File Format Specification version 3.0, checked against libhdf5 1.14:
src/H5Fsuper_cache.c (superblock), H5Ocache.c (object header), H5Gnode.c / H5Gent.c / H5Bcache.c
(symbol tables), H5HLcache.c (local heap), H5HGcache.c (global heap), H5Oattr.c, H5Odtype.c,
H5Osdspace.c (messages).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, BinaryIO

__all__ = ["Dataset", "Group", "Node", "NotUnderstood", "h5py_tree", "read_tree"]


class Node:
    """An HDF5 object, as reached by a path.

    name:  the absolute path it was reached by ("/model_weights/enc"), like h5py's ``.name``;
    key:   the object's identity: two links to one object give equal keys;
    attrs: attribute name -> value as plain Python: str (a variable-length string), bytes (a
           fixed-length one), int, float, None (an empty attribute), or a flat list of these when
           the attribute is an array.
    """

    name: str
    key: Hashable
    attrs: Mapping[str, Any]


class Group(Node):
    def items(self) -> list[tuple[str, Node]]:
        """The members that lead to an object, in name order (h5py's default order)."""
        raise NotImplementedError

    def get(self, path: str) -> Node | None:
        """The object at `path` ("a/b" from here, "/a/b" from the root), or None."""
        raise NotImplementedError

    def __getitem__(self, path: str) -> Node:
        node = self.get(path)
        if node is None:
            raise KeyError(f"{self.name} has no member {path!r}")
        return node


class Dataset(Node):
    shape: tuple[int, ...] | None  # None for a null dataspace, as h5py
    dtype: str  # numpy's name: "float32", "int64", "void16" (opaque); "string" for any string


class NotUnderstood(Exception):
    """The parser does not read this file's metadata (a feature it lacks, or damage): use h5py."""


# ---------------------------------------------------------------------------------------------
# The parser

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MSG_DATASPACE, _MSG_LINK_INFO, _MSG_DATATYPE, _MSG_LINK, _MSG_ATTRIBUTE = 0x01, 0x02, 0x03, 0x06, 0x0C
_MSG_CONTINUATION, _MSG_SYMBOL_TABLE, _MSG_ATTRIBUTE_INFO = 0x10, 0x11, 0x15
_MSG_FLAG_SHARED = 0x02  # the message lives elsewhere (H5Oprivate.h H5O_MSG_FLAG_SHARED)
_MSG_FLAG_FAIL_IF_UNKNOWN_ALWAYS = 0x80
_LAST_KNOWN_MSG = 0x18  # libhdf5 1.14 knows message types up to this one (H5Oprivate.h)
_MAX_RANK = 32  # H5S_MAX_RANK
_MAX_NAME = 1 << 16  # bytes searched for the NUL that ends a link name in the local heap
# Everything read is charged to a budget of the file's size plus this: normal metadata is read
# about once, while crafted addresses that point many structures at the same large region
# (heaps, header chunks) would otherwise make work and memory grow without bound.
_EXTRA_BUDGET = 16 << 20
# IEEE 754 layouts as the floating-point datatype message stores them (FMT3 IV.A.2.d, class 1):
# bit offset, precision, exponent location and size, mantissa location and size, exponent bias.
_IEEE = {2: (0, 16, 10, 5, 0, 10, 15), 4: (0, 32, 23, 8, 0, 23, 127), 8: (0, 64, 52, 11, 0, 52, 1023)}


def read_tree(raw: BinaryIO) -> Group:
    """The root group of the HDF5 file in `raw` (seekable, read from offset 0), parsed lazily:
    groups, headers and attribute values are read when first asked for. Raises NotUnderstood."""
    return _File(raw).root


def _heap_name(heap: bytes, at: int) -> bytes:
    end = heap.find(b"\0", at, at + _MAX_NAME)
    if end < 0:
        raise NotUnderstood("a name in a local heap is not terminated")
    return heap[at:end]


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotUnderstood(f"{what} that is not UTF-8") from None


def _add(members: dict[str, int], name: str, address: int) -> None:
    if name in members:
        raise NotUnderstood("two links of one group have the same name")
    members[name] = address


def _uint(data: bytes, at: int, size: int) -> int:
    if at < 0 or at + size > len(data):
        raise NotUnderstood("a structure ends early")
    return int.from_bytes(data[at : at + size], "little")


class _File:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.size = raw.seek(0, io.SEEK_END)
        self._budget = self.size + _EXTRA_BUDGET
        self._headers: dict[int, list[tuple[int, bytes]]] = {}
        self._members: dict[int, dict[str, int]] = {}
        self._attributes: dict[int, dict[str, tuple[bytes, tuple[int, ...] | None, bytes]]] = {}
        self._collections: dict[int, tuple[bytes, dict[int, tuple[int, int]]]] = {}
        # Superblock versions 0 and 1 (FMT3 II.A); 2 and 3 come with version-2 object headers.
        head = self.read(0, 24)
        if head[:8] != _SIGNATURE or head[8] not in (0, 1):
            raise NotUnderstood("not an HDF5 file with a version 0 or 1 superblock")
        self.offset_size, self.length_size = o, n = head[13], head[14]
        # symbol table nodes hold up to 2 * leaf K entries, B-tree nodes 2 * internal K children
        self.leaf_k, self.internal_k = _uint(head, 16, 2), _uint(head, 18, 2)
        if o not in (2, 4, 8) or n not in (2, 4, 8):
            raise NotUnderstood("unusual sizes of offsets or lengths")
        self.undefined = (1 << 8 * o) - 1  # the undefined address: all bits set
        fields = self.read(28 if head[8] == 1 else 24, 5 * o + n)
        base, end_of_file = _uint(fields, 0, o), _uint(fields, 2 * o, o)
        # libhdf5 refuses a file shorter than the end address its superblock records (H5Fsuper.c
        # "truncated file"); so does this parser, which would not notice otherwise: it reads no data.
        if base != 0 or end_of_file > self.size:
            raise NotUnderstood("a user block, or a truncated file")
        # The root group's symbol table entry: link name offset (a length, H5Gent.c), header address.
        self.root = self.node("/", _uint(fields, 4 * o + n, o))
        if not isinstance(self.root, Group):
            raise NotUnderstood("the root object is not a group")

    def read(self, address: int, size: int) -> bytes:
        if address + size > self.size or size > self._budget:
            raise NotUnderstood("an address or size points past the end of the file, or bytes are read over and over")
        self._budget -= size
        self._raw.seek(address)
        data = self._raw.read(size)
        if len(data) != size:
            raise NotUnderstood("the file is shorter than it says")
        return data

    def node(self, name: str, address: int) -> Node:
        kinds = {kind for kind, _ in self.messages(address)}
        # What libhdf5 takes the object for, tested in its order (H5Oint.c H5O__obj_class_real):
        # a group has a symbol table or link info, a dataset a datatype and a dataspace.
        if _MSG_SYMBOL_TABLE in kinds or _MSG_LINK_INFO in kinds:
            return _Group(self, name, address)
        if _MSG_DATATYPE in kinds and _MSG_DATASPACE in kinds:
            return _Dataset(self, name, address)
        if _MSG_DATATYPE in kinds:
            return _NamedDatatype(self, name, address)
        raise NotUnderstood(f"{name} is neither a group, a dataset nor a datatype")

    def messages(self, address: int) -> list[tuple[int, bytes]]:
        """(type, body) of each message of the version-1 object header at `address`, following
        continuation messages (FMT3 IV.A.1.a: a 16-byte prefix, then 8-byte aligned messages)."""
        cached = self._headers.get(address)
        if cached is not None:
            return cached
        prefix = self.read(address, 16)
        if prefix[0] != 1:
            raise NotUnderstood("an object header of version 2")
        o, n = self.offset_size, self.length_size
        chunks, seen, messages = [(address + 16, _uint(prefix, 8, 4))], set(), []
        while chunks:
            at, size = chunks.pop(0)
            if at in seen:
                raise NotUnderstood("an object header continues into itself")
            seen.add(at)
            chunk, pos = self.read(at, size), 0
            while pos + 8 <= size:
                kind, length, flags = _uint(chunk, pos, 2), _uint(chunk, pos + 2, 2), chunk[pos + 4]
                body = chunk[pos + 8 : pos + 8 + length]
                if len(body) != length:
                    raise NotUnderstood("an object header message runs past its chunk")
                pos += 8 + length
                if kind == _MSG_CONTINUATION:
                    chunks.append((_uint(body, 0, o), _uint(body, o, n)))
                elif flags & _MSG_FLAG_SHARED or (kind > _LAST_KNOWN_MSG and flags & _MSG_FLAG_FAIL_IF_UNKNOWN_ALWAYS):
                    raise NotUnderstood("a shared or unknown object header message")
                else:
                    messages.append((kind, body))
        self._headers[address] = messages
        return messages

    def message(self, address: int, kind: int) -> bytes:
        for found, body in self.messages(address):
            if found == kind:
                return body
        raise NotUnderstood(f"a message of type {kind} is missing")

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
        heap = self.read(_uint(table, o, o), 8 + 2 * n + o)
        if heap[:5] != b"HEAP\0":
            raise NotUnderstood("a damaged local heap")
        names = self.read(_uint(heap, 8 + 2 * n, o), _uint(heap, 8, n))
        members: dict[str, int] = {}
        # libhdf5 finds a name by binary search over the keys (H5B.c H5B_find, H5Gnode.c
        # H5G__node_cmp3: child i holds the names in (key i, key i+1]) and then over the sorted
        # entries of a node: every name is checked to lie where that search looks for it, so that
        # what is listed here is what h5py finds.
        nodes, seen = [(_uint(table, 0, o), -1, b"", None)], set()
        while nodes:
            at, level, low, high = nodes.pop()
            if at in seen:
                raise NotUnderstood("a B-tree node is linked twice")
            seen.add(at)
            node = self.read(at, 8 + 2 * o)
            # "TREE", node type 0 (group nodes), level, entries used, then siblings (H5Bcache.c)
            used = _uint(node, 6, 2)
            if node[:5] != b"TREE\0" or level not in (-1, node[5]) or used > 2 * self.internal_k:
                raise NotUnderstood("a damaged B-tree node")
            # keys (lengths: offsets into the local heap) and children alternate, key first
            body = self.read(at + 8 + 2 * o, used * (n + o) + n)
            keys = [_heap_name(names, _uint(body, i * (n + o), n)) for i in range(used + 1)]
            for i in range(used):
                child = _uint(body, n + i * (n + o), o)
                bounds = max(low, keys[i]), keys[i + 1] if high is None else min(high, keys[i + 1])
                if node[5]:
                    nodes.append((child, node[5] - 1, *bounds))
                else:
                    self._symbol_node(child, names, bounds, members)
        self._members[address] = members
        return members

    def _links(self, address: int) -> dict[str, int]:
        """A new-style group's links, stored compactly as link messages in its header; h5py writes
        one for a group with a link name that is not ASCII (FMT3 IV.A.2.c, IV.A.2.g)."""
        o, members = self.offset_size, {}
        for kind, body in self.messages(address):
            if kind == _MSG_LINK_INFO:
                # version, flags, [max creation index], fractal heap address: defined when the
                # links are stored densely, in that heap
                if _uint(body, 2 + (8 if _uint(body, 1, 1) & 1 else 0), o) != self.undefined:
                    raise NotUnderstood("dense link storage")
            if kind != _MSG_LINK:
                continue
            # version 1, flags, [link type], [creation order], [name character set], name length
            # (1, 2, 4 or 8 bytes as flags bits 0-1 say), name, then a hard link's address
            flags, at = _uint(body, 1, 1), 2
            link_type = _uint(body, at, 1) if flags & 8 else 0
            at += (1 if flags & 8 else 0) + (8 if flags & 4 else 0) + (1 if flags & 16 else 0)
            width = 1 << (flags & 3)
            length = _uint(body, at, width)
            raw = body[at + width : at + width + length]
            if body[:1] != b"\1" or link_type != 0 or len(raw) != length:
                raise NotUnderstood("a soft or external link, or a damaged link message")
            _add(members, _utf8(raw, "a link name"), _uint(body, at + width + length, o))
        return members

    def _symbol_node(self, address: int, names: bytes, bounds: tuple[bytes, bytes], members: dict[str, int]) -> None:
        o, n = self.offset_size, self.length_size
        head = self.read(address, 8)
        count = _uint(head, 6, 2)
        if head[:5] != b"SNOD\1" or count > 2 * self.leaf_k:
            raise NotUnderstood("a damaged symbol table node")
        size = n + o + 24  # name offset, header address, cache type, reserved, scratch pad (H5Gent.c)
        entries = self.read(address + 8, count * size)
        previous = bounds[0]
        for at in range(0, len(entries), size):
            raw = _heap_name(names, _uint(entries, at, n))
            # cache type 2 is a soft link: its target is a path, not an object header
            if _uint(entries, at + n + o, 4) == 2 or not previous < raw <= bounds[1]:
                raise NotUnderstood("a soft link, or a name out of order")
            previous = raw
            _add(members, _utf8(raw, "a link name"), _uint(entries, at + n, o))

    def heap_object(self, address: int, index: int, length: int) -> bytes:
        """`length` bytes of object `index` of the global heap collection at `address` (FMT3 III.E)."""
        cached = self._collections.get(address)
        if cached is None:
            n = self.length_size
            head = self.read(address, 8 + n)
            if head[:5] != b"GCOL\1":
                raise NotUnderstood("a damaged global heap collection")
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
        if length > size or start + length > len(collection) or length > self._budget:
            raise NotUnderstood("a variable-length string points outside its heap object")
        self._budget -= length
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
            if version not in (1, 2, 3) or (version > 1 and body[1] & 3):
                raise NotUnderstood("a shared or unknown attribute message")
            sizes = [_uint(body, 2, 2), _uint(body, 4, 2), _uint(body, 6, 2)]
            pos, parts = 9 if version == 3 else 8, []
            for size in sizes:
                parts.append(body[pos : pos + size])
                pos += (size + 7) // 8 * 8 if version == 1 else size
            name, datatype, dataspace = parts
            if pos > len(body) or name[-1:] != b"\0":
                raise NotUnderstood("a damaged attribute message")
            key = _utf8(name[:-1], "an attribute name")
            if key in found:
                raise NotUnderstood("two attributes of one object have the same name")
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
            raise NotUnderstood("an unknown dataspace message")
        if kind == 2:
            return None
        if kind not in (0, 1) or rank > _MAX_RANK:
            raise NotUnderstood("a damaged dataspace message")
        n = self.length_size
        return tuple(_uint(body, at + i * n, n) for i in range(rank)) if kind == 1 else ()

    def attribute_value(self, datatype: bytes, shape: tuple[int, ...] | None, data: bytes) -> Any:
        """An attribute's value, as h5py reads it, in plain Python."""
        if shape is None:
            return None
        count = 1
        for dim in shape:
            count *= dim
        cls, bits, size = _datatype(datatype)
        if size <= 0 or count * size > len(data):
            raise NotUnderstood("an attribute holds fewer bytes than its shape needs")
        items = [data[i : i + size] for i in range(0, count * size, size)]
        name = dtype_name(datatype)
        if name.startswith(("int", "uint")):
            order = "big" if bits & 1 else "little"
            values: list[Any] = [int.from_bytes(b, order, signed=bool(bits & 8)) for b in items]
        elif name.startswith("float"):
            values = list(struct.unpack(f"{'>' if bits & 1 else '<'}{count}{'efd'[size // 4]}", data[: count * size]))
        elif cls == 3 and bits & 15 < 2:
            # numpy drops the padding NULs of a null-padded string; libhdf5 converts a
            # null-terminated one to that, ending it at its first NUL (H5Tconv.c H5T__conv_s_s)
            values = [b.rstrip(b"\0") if bits & 15 else b.split(b"\0", 1)[0] for b in items]
        elif cls == 9:
            # length (4 bytes), then a global heap ID: collection address, object index (FMT3 IV.A.2.d)
            o = self.offset_size
            ids = [(_uint(b, 0, 4), _uint(b, 4, o), _uint(b, 4 + o, 4)) for b in items]
            # libhdf5 hands a variable-length string over as a C string: it ends at a NUL
            strings = [self.heap_object(at, i, n).split(b"\0", 1)[0] if n else b"" for n, at, i in ids]
            values = [_utf8(b, "a string attribute") for b in strings]
        else:
            raise NotUnderstood("an attribute of a datatype this parser does not read")
        return values[0] if shape == () else values


def _datatype(body: bytes) -> tuple[int, int, int]:
    """Class, class bit field and size of a datatype message (FMT3 IV.A.2.d)."""
    return (body[0] & 15 if body else -1), _uint(body, 1, 3), _uint(body, 4, 4)


def dtype_name(body: bytes) -> str:
    """numpy's name for what h5py makes of a datatype message, for the datatypes the parser reads."""
    cls, bits, size = _datatype(body)
    if cls == 0 and size in (1, 2, 4, 8) and (_uint(body, 8, 2), _uint(body, 10, 2)) == (0, 8 * size):
        return f"{'int' if bits & 8 else 'uint'}{8 * size}"
    if cls == 1 and size in _IEEE and not bits & 0x40:  # bit 6 is VAX byte order
        layout = (_uint(body, 8, 2), _uint(body, 10, 2), *body[12:16], _uint(body, 16, 4))
        # sign bit position (bits 8-15), mantissa normalization "implied" (bits 4-5 = 2)
        if layout == _IEEE[size] and bits >> 8 == 8 * size - 1 and (bits >> 4) & 3 == 2:
            return f"float{8 * size}"
    if cls == 3 or (cls == 9 and bits & 15 == 1):  # fixed-length, or variable-length string
        return "string"
    if cls == 5:  # opaque: h5py gives numpy void; Keras 3 stores bfloat16 so
        return f"void{8 * size}"
    raise NotUnderstood("a datatype this parser does not read")


class _Object:
    def __init__(self, file: _File, name: str, address: int) -> None:
        self._file, self.name, self.key = file, name, address

    @property
    def attrs(self) -> Mapping[str, Any]:
        return _Attributes(self._file.attributes(self.key), lambda stored: self._file.attribute_value(*stored))


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
    def items(self) -> list[tuple[str, Node]]:
        members = self._file.members(self.key)
        return [(name, self._file.node(self._child(name), members[name])) for name in sorted(members)]

    def get(self, path: str) -> Node | None:
        node: Node = self._file.root if path.startswith("/") else self
        for part in path.split("/"):
            if part in ("", "."):
                continue
            address = self._file.members(node.key).get(part) if isinstance(node, _Group) else None
            if address is None:
                return None
            node = self._file.node(node._child(part), address)  # type: ignore[attr-defined]
        return node

    def _child(self, name: str) -> str:
        return ("" if self.name == "/" else self.name) + "/" + name


class _Dataset(_Object, Dataset):
    @property
    def shape(self) -> tuple[int, ...] | None:  # type: ignore[override]
        return self._file.dataspace(self._file.message(self.key, _MSG_DATASPACE))

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return dtype_name(self._file.message(self.key, _MSG_DATATYPE))


class _NamedDatatype(_Object, Node):
    """A committed datatype: neither group nor dataset."""


# ---------------------------------------------------------------------------------------------
# h5py behind the same interface


def h5py_tree(obj: Any) -> Node:
    """An h5py File, Group, Dataset or Datatype as a Node."""
    import h5py

    if isinstance(obj, h5py.Group):
        return _H5pyGroup(obj)
    if isinstance(obj, h5py.Dataset):
        return _H5pyDataset(obj)
    return _H5pyNode(obj)


class _H5pyNode(Node):
    def __init__(self, obj: Any) -> None:
        self._obj, self.name, self.key = obj, obj.name, obj.id

    @property
    def attrs(self) -> Mapping[str, Any]:
        return _Attributes(self._obj.attrs, _h5py_value)


def _h5py_value(value: Any) -> Any:
    """An h5py attribute value as plain Python, as the parser gives it (Node.attrs)."""
    import h5py

    if isinstance(value, h5py.Empty):
        return None
    if getattr(value, "ndim", 0):  # an array; numpy scalars and 0-d arrays have ndim 0
        return value.ravel().tolist()
    return value.tolist() if hasattr(value, "tolist") else value


class _H5pyGroup(_H5pyNode, Group):
    def items(self) -> list[tuple[str, Node]]:
        # h5py gives None for a link that leads nowhere (a dangling soft link): no member.
        return [(_h5py_name(name), h5py_tree(obj)) for name, obj in self._obj.items() if obj is not None]

    def get(self, path: str) -> Node | None:
        obj = self._obj.get(path)
        return None if obj is None else h5py_tree(obj)


class _H5pyDataset(_H5pyNode, Dataset):
    @property
    def shape(self) -> tuple[int, ...] | None:  # type: ignore[override]
        shape = self._obj.shape
        return None if shape is None else tuple(int(d) for d in shape)

    @property
    def dtype(self) -> str:  # type: ignore[override]
        import h5py

        dtype = self._obj.dtype
        return "string" if dtype.kind in "SUO" or h5py.check_string_dtype(dtype) is not None else dtype.name


def _h5py_name(name: str | bytes) -> str:
    # h5py gives a name that is not UTF-8 as bytes; Keras never writes one. ValueError is one of
    # the h5py errors the Keras reader turns into CorruptFile.
    if isinstance(name, bytes):
        raise ValueError(f"the HDF5 name {name!r} is not UTF-8")
    return name
