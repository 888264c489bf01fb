"""The values of a dataset the parser (parser.py) lists: contiguous, compact, or chunked under a
version-1 B-tree and filtered by deflate and shuffle, read into numpy only once the file is known
to hold every byte of them.

Layouts follow FMT3 (see parser.py), checked against libhdf5 1.14: H5Olayout.c, H5Oefl.c,
H5Opline.c (messages), H5Dbtree.c (chunk index), H5Zdeflate.c, H5Zshuffle.c (filters).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from ...records import frozen_record
from .parser import (
    MAX_RANK,
    MSG_DATASPACE,
    MSG_DATATYPE,
    MSG_EXTERNAL_FILES,
    MSG_FILTERS,
    MSG_LAYOUT,
    ParsedFile,
    element_type,
    heap_name,
    uint,
)
from .tree import (
    EXTRA_BUDGET,
    MAX_DEFLATE_RATIO,
    READ_PIECE,
    Budget,
    Damaged,
    NotUnderstood,
    OutsideFile,
    product,
    shown,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_value"]

_LAYOUT_COMPACT, _LAYOUT_CONTIGUOUS, _LAYOUT_CHUNKED, _LAYOUT_VIRTUAL = 0, 1, 2, 3
_FILTER_DEFLATE, _FILTER_SHUFFLE = 1, 2  # H5Zpublic.h
_MAX_CHUNK_BYTES = (1 << 32) - 1  # libhdf5 refuses chunks of 4 GiB or more (H5Dchunk.c H5D__chunk_construct)


@frozen_record
class _Layout:
    """A data layout message (FMT3 IV.A.2.i), what the parser reads of it."""

    kind: int  # _LAYOUT_*
    version: int
    address: int = 0  # contiguous data, or the chunk B-tree's root
    size: int | None = None  # contiguous: bytes stored (versions 3 and 4 say; 1 and 2 do not)
    data: bytes = b""  # compact: the values themselves
    chunk: tuple[int, ...] = ()  # chunked: chunk dimensions, then the element size
    heap_id: tuple[int, int] = (0, 0)  # virtual: global heap collection and object of the mapping


def read_into(file: ParsedFile, address: int, target: Any) -> None:
    """Fill `target` (a writable uint8 buffer) from `address`, checked against the file's size first."""
    total = len(target)
    if address + total > file.size:
        raise Damaged("its values run past the end of the file")
    for start in range(0, total, READ_PIECE):
        piece = target[start : start + READ_PIECE]
        file.raw.seek(address + start)
        if (file.raw.readinto(piece) or 0) != len(piece):  # type: ignore[attr-defined]
            raise Damaged("the file is shorter than it says")


def read_value(file: ParsedFile, address: int) -> np.ndarray:
    """The values of the dataset whose header is at `address`, read into a numpy array that is
    allocated only once the file is known to hold every byte of it."""
    import numpy as np

    found: dict[int, bytes] = {}
    for kind, body in file.messages(address):
        found.setdefault(kind, body)
    layout = _stored_layout(file, found)
    shape = file.dataspace(file.message(address, MSG_DATASPACE))
    if shape is None:
        raise Damaged("a null dataspace: the dataset holds no value")
    typestr = element_type(file.message(address, MSG_DATATYPE))[1]
    if typestr is None:
        raise NotUnderstood("values of a datatype this parser does not read")
    dtype = np.dtype(typestr)
    declared = product(shape) * dtype.itemsize
    if layout.kind != _LAYOUT_CHUNKED and MSG_FILTERS in found:
        raise Damaged("a filter pipeline on a dataset that is not chunked")
    if layout.kind == _LAYOUT_COMPACT:
        if len(layout.data) != declared:
            raise Damaged(f"its shape needs {declared} bytes but it stores {len(layout.data)}")
        return np.frombuffer(layout.data, dtype).reshape(shape).copy()
    if layout.kind == _LAYOUT_CHUNKED:
        return _chunked(file, layout, shape, dtype, _filters(file, found.get(MSG_FILTERS)))
    return _contiguous(file, layout, shape, dtype, declared)


def _stored_layout(file: ParsedFile, found: dict[int, bytes]) -> _Layout:
    """The layout of a dataset whose values are in this file; OutsideFile for those that are not."""
    if MSG_EXTERNAL_FILES in found:
        names = _external_files(file, found[MSG_EXTERNAL_FILES])
        raise OutsideFile(f"keeps its values in other files, {names} (HDF5 external storage)")
    if MSG_LAYOUT not in found:
        raise Damaged("a dataset without a data layout message")
    layout = _layout(file, found[MSG_LAYOUT])
    if layout.kind == _LAYOUT_VIRTUAL:
        sources = _virtual_sources(file, layout)
        raise OutsideFile(f"is an HDF5 virtual dataset, which reads its values from {sources}")
    return layout


def _contiguous(
    file: ParsedFile, layout: _Layout, shape: tuple[int, ...], dtype: np.dtype, declared: int
) -> np.ndarray:
    import numpy as np

    # Versions 1 and 2 leave the size to the dataspace (H5Olayout.c).
    if layout.size is not None and layout.size != declared:
        raise Damaged(f"its shape needs {declared} bytes but it stores {layout.size}")
    if declared and layout.address == file.undefined:
        raise Damaged(f"it declares {declared} bytes but the file stores none of them")
    if declared and layout.address + declared > file.size:
        raise Damaged(f"its {declared} bytes run past the end of the file")
    out = np.empty(shape, dtype)
    if declared:
        read_into(file, layout.address, out.reshape(-1).view(np.uint8))
    return out


def _layout(file: ParsedFile, body: bytes) -> _Layout:
    """A data layout message (FMT3 IV.A.2.i; H5Olayout.c H5O__layout_decode)."""
    o, n = file.offset_size, file.length_size
    version = body[0] if body else 0
    if version in (1, 2):
        # dimensionality, class, 5 reserved bytes, [address], dimensions (4 bytes each),
        # [compact: size (4 bytes) and data]
        ndims, kind, at = uint(body, 1, 1), uint(body, 2, 1), 8
        if not 0 < ndims <= MAX_RANK + 1 or kind not in (0, 1, 2):
            raise Damaged("a damaged data layout message")
        address = uint(body, at, o) if kind else 0
        at += o if kind else 0
        dims = tuple(uint(body, at + 4 * i, 4) for i in range(ndims))
        at += 4 * ndims
        if kind == _LAYOUT_COMPACT:
            size = uint(body, at, 4)
            return _Layout(kind, version, data=_compact(body, at + 4, size))
        return _Layout(kind, version, address, chunk=dims if kind == _LAYOUT_CHUNKED else ())
    if version not in (3, 4):
        raise Damaged("a data layout message of an unknown version")
    kind = uint(body, 1, 1)
    if kind == _LAYOUT_COMPACT:
        return _Layout(kind, version, data=_compact(body, 4, uint(body, 2, 2)))
    if kind == _LAYOUT_CONTIGUOUS:
        return _Layout(kind, version, uint(body, 2, o), uint(body, 2 + o, n))
    if kind == _LAYOUT_CHUNKED and version == 3:
        # dimensionality, B-tree address, dimensions (4 bytes each, the last the element size)
        ndims = uint(body, 2, 1)
        if not 2 <= ndims <= MAX_RANK + 1:
            raise Damaged("a damaged data layout message")
        chunk = tuple(uint(body, 3 + o + 4 * i, 4) for i in range(ndims))
        return _Layout(kind, version, uint(body, 3, o), chunk=chunk)
    if kind == _LAYOUT_CHUNKED:
        raise NotUnderstood("a chunk index of a version 4 data layout")
    if kind == _LAYOUT_VIRTUAL and version == 4:
        return _Layout(kind, version, heap_id=(uint(body, 2, o), uint(body, 2 + o, 4)))
    raise Damaged("a data layout message of an unknown class")


def _compact(body: bytes, at: int, size: int) -> bytes:
    data = body[at : at + size]
    if len(data) != size:
        raise Damaged("compact data runs past its message")
    return data


def _external_files(file: ParsedFile, body: bytes) -> str:
    """The file names of an external data files message (FMT3 IV.A.2.h; H5Oefl.c): version 1,
    3 reserved bytes, slots allocated and used, the local heap of the names, then per slot the
    name's offset in that heap, an offset in the file and a size."""
    o, n = file.offset_size, file.length_size
    if body[:1] != b"\1":
        raise Damaged("an external data files message of an unknown version")
    used, names = uint(body, 6, 2), file.local_heap(uint(body, 8, o))
    names_shown = [shown(heap_name(names, uint(body, 8 + o + i * 3 * n, n))) for i in range(min(used, 3))]
    return ", ".join(names_shown) + (f" and {used - 3} more" if used > 3 else "")


def _virtual_sources(file: ParsedFile, layout: _Layout) -> str:
    """The first source file of a virtual dataset's mapping: a global heap object holding a
    version byte (0), the number of entries (a length), then per entry the source file's name
    and the source dataset's, NUL-terminated, and two selections (H5Olayout.c)."""
    address, index = layout.heap_id
    block = file.heap_object(address, index)
    count = uint(block, 1, file.length_size)
    if block[:1] != b"\0" or not count:
        raise Damaged("a damaged virtual dataset mapping")
    first = block[1 + file.length_size :].split(b"\0", 1)[0]
    return shown(first) + (f" and {count - 1} more mappings" if count > 1 else "")


def _filters(file: ParsedFile, body: bytes | None) -> list[tuple[int, list[int]]]:
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
        filter_id = uint(body, at, 2)
        has_name = version == 1 or filter_id >= 256
        name_length = uint(body, at + 2, 2) if has_name else 0
        at += 4 if has_name else 2
        values = uint(body, at + 2, 2)  # after the flags
        at += 4 + ((name_length + 7) // 8 * 8 if version == 1 else name_length)
        filters.append((filter_id, [uint(body, at + 4 * i, 4) for i in range(values)]))
        at += 4 * values + (4 if version == 1 and values % 2 else 0)
    if at > len(body):
        raise Damaged("a damaged filter pipeline message")
    unknown = sorted({f for f, _ in filters} - {_FILTER_DEFLATE, _FILTER_SHUFFLE})
    if unknown:
        raise NotUnderstood(f"HDF5 filter {unknown[0]}")
    return filters


def _chunked(
    file: ParsedFile, layout: _Layout, shape: tuple[int, ...], dtype: np.dtype, filters: list[tuple[int, list[int]]]
) -> np.ndarray:
    """A chunked dataset's values: every chunk must be stored, where the B-tree search of
    libhdf5 finds it, once, in bytes no other chunk uses."""
    import numpy as np

    chunk, element = layout.chunk[:-1], layout.chunk[-1]
    if len(chunk) != len(shape) or element != dtype.itemsize or 0 in chunk:
        raise Damaged("chunk dimensions that do not fit the dataset")
    chunk_bytes = product(chunk) * element
    if chunk_bytes > _MAX_CHUNK_BYTES:
        raise Damaged("chunks of 4 GiB or more")
    expected = product(-(-d // c) for d, c in zip(shape, chunk))
    declared = product(shape) * dtype.itemsize
    chunks = _chunk_index(file, layout, shape, expected) if layout.address != file.undefined else []
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
        data = _raw_chunk(file, at, size)
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


def _raw_chunk(file: ParsedFile, address: int, size: int) -> bytes:
    if address + size > file.size:
        raise Damaged("a chunk runs past the end of the file")
    file.raw.seek(address)
    data = file.raw.read(size)
    if len(data) != size:
        raise Damaged("the file is shorter than it says")
    return data


def _chunk_index(
    file: ParsedFile, layout: _Layout, shape: tuple[int, ...], expected: int
) -> list[tuple[tuple[int, ...], int, int, int]]:
    """(offset, stored size, filter mask, address) of every chunk the version-1 B-tree of a
    chunked dataset lists (FMT3 III.A.1, node type 1; H5Dbtree.c). A key is the chunk's stored
    size (4 bytes), its filter mask (4) and its offset, 8 bytes per dimension plus a last 0
    for the element; child i of a node holds the chunks whose offsets lie in [key i, key
    i+1), which is where libhdf5's binary search looks (H5D__btree_cmp3)."""
    o, ndims, chunk = file.offset_size, len(layout.chunk), layout.chunk[:-1]
    key_size = 8 + 8 * ndims
    budget = Budget(file.size + EXTRA_BUDGET)
    found: list[tuple[tuple[int, ...], int, int, int]] = []
    bounds: tuple[tuple[int, ...] | None, tuple[int, ...] | None] = (None, None)
    nodes = [(layout.address, -1, *bounds)]
    seen: set[int] = set()
    while nodes:
        at, level, low, high = nodes.pop()
        if at in seen:
            raise Damaged("a chunk B-tree node is linked twice")
        seen.add(at)
        head = file.read(at, 8 + 2 * o, budget)
        used = uint(head, 6, 2)
        if head[:5] != b"TREE\1" or level not in (-1, head[5]) or not 0 < used <= 2 * file.chunk_k:
            raise Damaged("a damaged chunk B-tree node")
        body = file.read(at + 8 + 2 * o, used * (key_size + o) + key_size, budget)
        keys = [
            (uint(body, k, 4), uint(body, k + 4, 4), tuple(uint(body, k + 8 + 8 * d, 8) for d in range(ndims)))
            for k in range(0, (used + 1) * (key_size + o), key_size + o)
        ]
        for i in range(used):
            start, end = keys[i][2], keys[i + 1][2]
            if not start < end or (low is not None and start < low) or (high is not None and end > high):
                raise Damaged("chunk B-tree keys out of order")
            child = uint(body, key_size + i * (key_size + o), o)
            if head[5]:
                nodes.append((child, head[5] - 1, start, end))
                continue
            size, mask = keys[i][0], keys[i][1]
            offset = start[:-1]
            in_grid = all(p % c == 0 and p < d for p, c, d in zip(offset, chunk, shape))
            if start[-1] != 0 or not in_grid or not size or child + size > file.size:
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
            piece = inflater.decompress(pending, min(READ_PIECE, size + 1 - done))
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
