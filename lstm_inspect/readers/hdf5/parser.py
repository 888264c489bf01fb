"""The HDF5 parser: the metadata of the files h5py writes by default, read in pure Python.

It reads the "earliest" file format: superblock v0/v1, version-1 object headers, symbol-table
groups, compact link messages, attributes of integers, IEEE floats and strings (fixed-length, or
variable-length in the global heap). Values are read by values.py, with numpy; listing imports
neither numpy nor h5py.

Layouts follow the HDF5 File Format Specification version 3.0 (FMT3), checked against libhdf5 1.14:
src/H5Fsuper_cache.c (superblock), H5Ocache.c (object header), H5Gnode.c / H5Gent.c / H5Bcache.c
(symbol tables), H5HLcache.c (local heap), H5HGcache.c (global heap), H5Oattr.c, H5Odtype.c,
H5Osdspace.c (messages).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from .tree import (
    CLASS_NAMES,
    EXTRA_BUDGET,
    SIGNATURE,
    Attributes,
    Budget,
    Damaged,
    Dataset,
    Group,
    Node,
    NotUnderstood,
    OutsideFile,
    link_name,
    product,
    shown,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ParsedFile", "dtype_name", "element_type", "read_tree", "uint"]

MSG_DATASPACE, MSG_LINK_INFO, MSG_DATATYPE, MSG_LINK = 0x01, 0x02, 0x03, 0x06
MSG_EXTERNAL_FILES, MSG_LAYOUT, MSG_FILTERS, MSG_ATTRIBUTE = 0x07, 0x08, 0x0B, 0x0C
MSG_CONTINUATION, MSG_SYMBOL_TABLE, MSG_ATTRIBUTE_INFO = 0x10, 0x11, 0x15
_MSG_FLAG_SHARED = 0x02  # the message lives elsewhere (H5Oprivate.h H5O_MSG_FLAG_SHARED)
_MSG_FLAG_FAIL_IF_UNKNOWN_ALWAYS = 0x80
_LAST_KNOWN_MSG = 0x18  # libhdf5 1.14 knows message types up to this one (H5Oprivate.h)
MAX_RANK = 32  # H5S_MAX_RANK
_MAX_NAME = 1 << 16  # bytes searched for the NUL that ends a link name in the local heap
# IEEE 754 layouts as the floating-point datatype message stores them (FMT3 IV.A.2.d, class 1):
# bit offset, precision, exponent location and size, mantissa location and size, exponent bias.
_IEEE = {2: (0, 16, 10, 5, 0, 10, 15), 4: (0, 32, 23, 8, 0, 23, 127), 8: (0, 64, 52, 11, 0, 52, 1023)}
_DEFAULT_CHUNK_K = 32  # a version-0 superblock stores no K for chunk B-trees (H5Fprivate.h HDF5_BTREE_CHUNK_IK_DEF)


def read_tree(raw: BinaryIO) -> Group:
    """The root group of the HDF5 file in `raw` (seekable, read from offset 0), parsed lazily:
    groups, headers and attribute values are read when first asked for. Raises NotUnderstood or
    Damaged, here or when a part of the tree is first asked for."""
    return ParsedFile(raw).root


def heap_name(heap: bytes, at: int) -> bytes:
    end = heap.find(b"\0", at, at + _MAX_NAME)
    if end < 0:
        raise Damaged("a name in a local heap is not terminated")
    return heap[at:end]


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged(f"{what} that is not UTF-8") from None


def _add(members: dict[str, int], name: str, address: int) -> None:
    if name in members:
        raise Damaged("two links of one group have the same name")
    members[name] = address


def uint(data: bytes, at: int, size: int) -> int:
    if at < 0 or at + size > len(data):
        raise Damaged("a structure ends early")
    return int.from_bytes(data[at : at + size], "little")


class ParsedFile:
    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.size = raw.seek(0, io.SEEK_END)
        self._budget = Budget(self.size + EXTRA_BUDGET)
        self._headers: dict[int, list[tuple[int, bytes]]] = {}
        self._members: dict[int, dict[str, int]] = {}
        self._attributes: dict[int, dict[str, tuple[bytes, tuple[int, ...] | None, bytes]]] = {}
        self._collections: dict[int, tuple[bytes, dict[int, tuple[int, int]]]] = {}
        # Superblock versions 0 and 1 (FMT3 II.A); 2 and 3 come with version-2 object headers.
        head = self.read(0, 28) if self.size >= 28 else self.read(0, 24)
        if head[:8] != SIGNATURE:
            raise Damaged("no HDF5 signature at the start of the file")
        if head[8] not in (0, 1):
            raise NotUnderstood(f"a version {head[8]} superblock")
        self.offset_size, self.length_size = o, n = head[13], head[14]
        # symbol table nodes hold up to 2 * leaf K entries, B-tree nodes 2 * internal K children
        self.leaf_k, self.internal_k = uint(head, 16, 2), uint(head, 18, 2)
        self.chunk_k = uint(head, 24, 2) if head[8] == 1 else _DEFAULT_CHUNK_K
        if o not in (2, 4, 8) or n not in (2, 4, 8):
            # libhdf5 also allows 16 and 32 (H5Fsuper_cache.c); no writer uses them
            raise (NotUnderstood if o in (16, 32) and n in (16, 32) else Damaged)("unusual sizes of offsets or lengths")
        self.undefined = (1 << 8 * o) - 1  # the undefined address: all bits set
        fields = self.read(28 if head[8] == 1 else 24, 5 * o + n)
        base, end_of_file = uint(fields, 0, o), uint(fields, 2 * o, o)
        # libhdf5 refuses a file shorter than the end address its superblock records (H5Fsuper.c
        # "truncated file"); so does this parser, which would not notice otherwise.
        if end_of_file > self.size:
            raise Damaged(f"it is shorter than its superblock says: {self.size} of {end_of_file} bytes")
        if base != 0:
            raise Damaged("a superblock at the start of the file that says it is elsewhere")
        # The root group's symbol table entry: link name offset (a length, H5Gent.c), header address.
        root = self.node("/", uint(fields, 4 * o + n, o))
        if not isinstance(root, Group):
            raise Damaged("the root object is not a group")
        self.root = root

    def read(self, address: int, size: int, budget: Budget | None = None) -> bytes:
        if address + size > self.size:
            raise Damaged("an address or size points past the end of the file")
        (budget or self._budget).charge(size)
        self.raw.seek(address)
        data = self.raw.read(size)
        if len(data) != size:
            raise Damaged("the file is shorter than it says")
        return data

    def node(self, name: str, address: int) -> Node:
        kinds = {kind for kind, _ in self.messages(address)}
        # What libhdf5 takes the object for, tested in its order (H5Oint.c H5O__obj_class_real):
        # a group has a symbol table or link info, a dataset a datatype and a dataspace.
        node: Node
        if MSG_SYMBOL_TABLE in kinds or MSG_LINK_INFO in kinds:
            node = _Group(self, name, address)
        elif MSG_DATATYPE in kinds and MSG_DATASPACE in kinds:
            node = _Dataset(self, name, address)
        elif MSG_DATATYPE in kinds:
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
        chunks, seen, messages = [(address + 16, uint(prefix, 8, 4))], set(), []
        while chunks:
            at, size = chunks.pop(0)
            if at in seen:
                raise Damaged("an object header continues into itself")
            seen.add(at)
            chunk, pos = self.read(at, size), 0
            while pos + 8 <= size:
                kind, length, flags = uint(chunk, pos, 2), uint(chunk, pos + 2, 2), chunk[pos + 4]
                body = chunk[pos + 8 : pos + 8 + length]
                if len(body) != length:
                    raise Damaged("an object header message runs past its chunk")
                pos += 8 + length
                if kind == MSG_CONTINUATION:
                    chunks.append((uint(body, 0, o), uint(body, o, n)))
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

    def local_heap(self, address: int, budget: Budget | None = None) -> bytes:
        """The data segment of the local heap at `address` (FMT3 III.D)."""
        o, n = self.offset_size, self.length_size
        heap = self.read(address, 8 + 2 * n + o, budget)
        if heap[:5] != b"HEAP\0":
            raise Damaged("a damaged local heap")
        return self.read(uint(heap, 8 + 2 * n, o), uint(heap, 8, n), budget)

    def members(self, address: int) -> dict[str, int]:
        """Link name -> object header address, from the group's symbol table: a v1 B-tree of
        symbol table nodes whose names live in a local heap (FMT3 III.A.1, III.C, III.D)."""
        cached = self._members.get(address)
        if cached is not None:
            return cached
        # libhdf5 takes a group with link info for a new-style one (H5Gobj.c H5G__obj_get_linfo)
        if any(kind == MSG_LINK_INFO for kind, _ in self.messages(address)):
            self._members[address] = members = self._links(address)
            return members
        o, n = self.offset_size, self.length_size
        table = self.message(address, MSG_SYMBOL_TABLE)
        names = self.local_heap(uint(table, o, o))
        found: dict[str, int] = {}
        # libhdf5 finds a name by binary search over the keys (H5B.c H5B_find, H5Gnode.c
        # H5G__node_cmp3: child i holds the names in (key i, key i+1]) and then over the sorted
        # entries of a node: every name is checked to lie where that search looks for it, so that
        # what is listed here is what h5py finds.
        nodes: list[tuple[int, int, bytes, bytes | None]] = [(uint(table, 0, o), -1, b"", None)]
        seen: set[int] = set()
        while nodes:
            at, level, low, high = nodes.pop()
            if at in seen:
                raise Damaged("a B-tree node is linked twice")
            seen.add(at)
            node = self.read(at, 8 + 2 * o)
            # "TREE", node type 0 (group nodes), level, entries used, then siblings (H5Bcache.c)
            used = uint(node, 6, 2)
            if node[:5] != b"TREE\0" or level not in (-1, node[5]) or used > 2 * self.internal_k:
                raise Damaged("a damaged B-tree node")
            # keys (lengths: offsets into the local heap) and children alternate, key first
            body = self.read(at + 8 + 2 * o, used * (n + o) + n)
            keys = [heap_name(names, uint(body, i * (n + o), n)) for i in range(used + 1)]
            for i in range(used):
                child = uint(body, n + i * (n + o), o)
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
            if kind == MSG_LINK_INFO:
                # version, flags, [max creation index], fractal heap address: defined when the
                # links are stored densely, in that heap
                if uint(body, 2 + (8 if uint(body, 1, 1) & 1 else 0), o) != self.undefined:
                    raise NotUnderstood("dense link storage")
            if kind != MSG_LINK:
                continue
            # version 1, flags, [link type], [creation order], [name character set], name length
            # (1, 2, 4 or 8 bytes as flags bits 0-1 say), name, then the link's value
            flags, at = uint(body, 1, 1), 2
            link_type = uint(body, at, 1) if flags & 8 else 0
            at += (1 if flags & 8 else 0) + (8 if flags & 4 else 0) + (1 if flags & 16 else 0)
            width = 1 << (flags & 3)
            length = uint(body, at, width)
            raw = body[at + width : at + width + length]
            if body[:1] != b"\1" or len(raw) != length:
                raise Damaged("a damaged link message")
            value = body[at + width + length :]
            if link_type == 64:
                # an external link: value length (2), then version and flags (1), the file's name
                # and the object's path, each NUL-terminated (H5Lexternal.c)
                target = value[3:].split(b"\0", 1)[0]
                raise OutsideFile(f"links to an object in another file, {shown(target)} (an HDF5 external link)")
            if link_type != 0:
                raise NotUnderstood("a soft or user-defined link")
            _add(members, link_name(raw), uint(value, 0, o))
        return members

    def _symbol_node(self, address: int, names: bytes, bounds: tuple[bytes, bytes], members: dict[str, int]) -> None:
        o, n = self.offset_size, self.length_size
        head = self.read(address, 8)
        count = uint(head, 6, 2)
        if head[:5] != b"SNOD\1" or count > 2 * self.leaf_k:
            raise Damaged("a damaged symbol table node")
        size = n + o + 24  # name offset, header address, cache type, reserved, scratch pad (H5Gent.c)
        entries = self.read(address + 8, count * size)
        previous = bounds[0]
        for at in range(0, len(entries), size):
            raw = heap_name(names, uint(entries, at, n))
            if not previous < raw <= bounds[1]:
                raise Damaged("a name out of order in a symbol table")
            # cache type 2 is a soft link: its target is a path, not an object header
            if uint(entries, at + n + o, 4) == 2:
                raise NotUnderstood("a soft link")
            previous = raw
            _add(members, link_name(raw), uint(entries, at + n, o))

    def heap_object(self, address: int, index: int, length: int | None = None) -> bytes:
        """`length` bytes (all, if None) of object `index` of the global heap collection at
        `address` (FMT3 III.E)."""
        cached = self._collections.get(address)
        if cached is None:
            n = self.length_size
            head = self.read(address, 8 + n)
            if head[:5] != b"GCOL\1":
                raise Damaged("a damaged global heap collection")
            collection, objects, pos = self.read(address, uint(head, 8, n)), {}, 8 + n
            # index (2), reference count (2), reserved (4), size (a length), data padded to 8 bytes;
            # index 0 is the free space that ends the collection
            while pos + 8 + n <= len(collection) and (object_index := uint(collection, pos, 2)):
                size = uint(collection, pos + 8, n)
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
            if kind == MSG_ATTRIBUTE_INFO:
                if uint(body, 2 + (2 if uint(body, 1, 1) & 1 else 0), o) != self.undefined:
                    raise NotUnderstood("dense attribute storage")
            if kind != MSG_ATTRIBUTE:
                continue
            # version 1 pads name, datatype and dataspace to 8 bytes; version 3 adds the name's
            # character set; versions 2 and 3 may share the datatype or dataspace (H5Oattr.c)
            version = body[0] if body else 0
            if version not in (1, 2, 3):
                raise Damaged("an attribute message of an unknown version")
            if version > 1 and body[1] & 3:
                raise NotUnderstood("an attribute with a shared datatype or dataspace")
            sizes = [uint(body, 2, 2), uint(body, 4, 2), uint(body, 6, 2)]
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
        if kind not in (0, 1) or rank > MAX_RANK:
            raise Damaged("a damaged dataspace message")
        n = self.length_size
        return tuple(uint(body, at + i * n, n) for i in range(rank)) if kind == 1 else ()

    def attribute_value(self, datatype: bytes, shape: tuple[int, ...] | None, data: bytes) -> Any:
        """An attribute's value, as h5py reads it, in plain Python."""
        if shape is None:
            return None
        count = product(shape)
        cls, bits, size = datatype_fields(datatype)
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
            ids = [(uint(b, 0, 4), uint(b, 4, o), uint(b, 4 + o, 4)) for b in items]
            # libhdf5 hands a variable-length string over as a C string: it ends at a NUL
            strings = [self.heap_object(at, i, n).split(b"\0", 1)[0] if n else b"" for n, at, i in ids]
            values = [_utf8(b, "a string attribute") for b in strings]
        else:
            raise NotUnderstood("an attribute of a datatype this parser does not read")
        return values[0] if shape == () else values


def datatype_fields(body: bytes) -> tuple[int, int, int]:
    """Class, class bit field and size of a datatype message (FMT3 IV.A.2.d)."""
    return (body[0] & 15 if body else -1), uint(body, 1, 3), uint(body, 4, 4)


def element_type(body: bytes) -> tuple[str, str | None]:
    """numpy's name for what h5py makes of a datatype message, and the numpy type string of its
    stored bytes where the parser reads its values."""
    cls, bits, size = datatype_fields(body)
    # versions 1-4; a variable-length type is a sequence (0) or a string (1)
    if not 1 <= body[0] >> 4 <= 4 or cls > 10 or (cls == 9 and bits & 15 > 1):
        raise Damaged("a damaged datatype message")
    order = ">" if bits & 1 else "<"
    if cls == 0 and size in (1, 2, 4, 8) and (uint(body, 8, 2), uint(body, 10, 2)) == (0, 8 * size):
        signed = bool(bits & 8)
        return f"{'int' if signed else 'uint'}{8 * size}", f"{order}{'i' if signed else 'u'}{size}"
    if cls == 1 and size in _IEEE and not bits & 0x40:  # bit 6 is VAX byte order
        layout = (uint(body, 8, 2), uint(body, 10, 2), *body[12:16], uint(body, 16, 4))
        # sign bit position (bits 8-15), mantissa normalization "implied" (bits 4-5 = 2)
        if layout == _IEEE[size] and bits >> 8 == 8 * size - 1 and (bits >> 4) & 3 == 2:
            return f"float{8 * size}", f"{order}f{size}"
    if cls == 3 or (cls == 9 and bits & 15 == 1):  # fixed-length, or variable-length string
        return "string", None
    if cls == 5 and size:  # opaque: h5py gives numpy void; Keras 3 stores bfloat16 so
        return f"void{8 * size}", f"V{size}"
    if cls in CLASS_NAMES:
        return CLASS_NAMES[cls], None
    raise NotUnderstood("an integer or float of a layout this parser does not read")


def dtype_name(body: bytes) -> str:
    """numpy's name for what h5py makes of a datatype message (Dataset.dtype)."""
    return element_type(body)[0]


class _Object(Node):
    def __init__(self, file: ParsedFile, name: str, address: int) -> None:
        self._file, self.name, self.key, self._address = file, name, address, address

    @property
    def attrs(self) -> Mapping[str, Any]:
        return Attributes(self._file.attributes(self._address), lambda stored: self._file.attribute_value(*stored))


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
        return self._file.dataspace(self._file.message(self._address, MSG_DATASPACE))

    @property
    def dtype(self) -> str:
        return dtype_name(self._file.message(self._address, MSG_DATATYPE))

    def read(self) -> np.ndarray:
        from .values import read_value  # numpy, and the code that reads values, only for a value

        return read_value(self._file, self._address)


class _NamedDatatype(_Object):
    """A committed datatype: neither group nor dataset."""
