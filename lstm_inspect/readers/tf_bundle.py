"""Read TensorFlow V2 checkpoints ("tensor bundles") without importing TensorFlow.

A checkpoint is `prefix.index`, a LevelDB-style table mapping tensor names to
BundleEntryProto records, and `prefix.data-NNNNN-of-MMMMM` shards holding the raw
little-endian bytes (tensorflow/core/util/tensor_bundle/tensor_bundle.cc). Opening reads
only the index; `read(name)` reads that tensor's bytes and checks their CRC-32C.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..errors import CorruptFile, FileNotFound, LstmInspectError, UnknownName, UnsupportedFormat, warn
from . import files
from .base import LayerConfig, LayerHint, Origin, TensorFlowSource, TensorInfo
from .files import check_lfs_pointer, is_url, open_regular, opened_size, read_bounded
from .formats.tf_checkpoint import DATA_SUFFIX, INDEX_SUFFIX, META_SUFFIX, STATE_FILE
from .protobuf import Malformed, as_bytes, as_int, fields, varint
from .urls import display_url

if TYPE_CHECKING:  # numpy loads only when a value is read: listing a checkpoint needs none of it
    import numpy as np

    from .saved_model import RenamedStore
    from .tf_graph import GraphHints

__all__ = ["TFCheckpoint", "checkpoint_files", "dtype_name", "open_checkpoint", "resolve_prefix"]

_TABLE_MAGIC = 0xDB4775248B80FB57  # tensorflow/core/lib/io/format.h kTableMagicNumber
_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes, then the 8-byte magic (format.cc)
_TRAILER_SIZE = 5  # compression byte + masked CRC-32C after every block (format.cc ReadBlock)
# TF restarts prefix compression every 16 keys (table_options.h block_restart_interval), so the
# keys of a block add up to at most 16 times its size; a block whose keys expand further was
# made to exhaust memory.
_MAX_KEY_EXPANSION = 16
# numpy cannot make an array, not even an empty one, whose non-zero dimensions multiply past
# 2**63 bytes; 16 bytes is the widest element (complex128).
_MAX_ELEMENTS = 2**63 // 16

# DataType enum (tensorflow/core/framework/types.proto) -> numpy dtype name. Quantized
# types are stored as their plain integers, and TF's own reader returns them as such.
_DTYPE_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 11: "int8", 12: "uint8", 13: "int32",
    14: "bfloat16", 15: "int16", 16: "uint16", 17: "uint16", 18: "complex128", 19: "float16",
    20: "resource", 21: "variant", 22: "uint32", 23: "uint64", 24: "float8_e5m2",
    25: "float8_e4m3fn", 26: "float8_e4m3fnuz", 27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz",
    29: "int4", 30: "uint4", 31: "int2", 32: "uint2", 33: "float4_e2m1fn",
}  # fmt: skip
_ML_DTYPES = {"bfloat16", "int4", "uint4", "int2", "uint2", "float4_e2m1fn"} | {
    name for name in _DTYPE_NAMES.values() if name.startswith("float8")
}


# The blocks of an index file up to this size are checked in Python: a small checkpoint's whole
# index is a few KiB, and the C package costs more to import (~35 ms, through importlib.metadata)
# than that takes, which a summary would pay on every run. Larger indexes and all tensor data go
# through C.
_PYTHON_CRC_LIMIT = 32 * 1024
# TableBuilder::Add flushes a block once it reaches block_size, 256 KiB for a bundle
# (table_builder.cc, table_options.h), so a block is that and one entry more; the index block
# grows by one handle per data block, which makes 64 MiB an index of some 300 GB. A damaged or
# crafted handle claiming more is refused before anything is read.
_MAX_BLOCK = 64 << 20
_CRC32C_TABLE: list[int] = []
# Tensors of this many bytes or more are read through a memory map of their shard; smaller ones,
# whose pages the allocator reuses, into an array (a map costs two system calls and its own pages).
_MAP_AT_LEAST = 1 << 20


def _crc32c(data: bytes | bytearray | memoryview, crc: int = 0, small_index: bool = False) -> int:
    """CRC-32C (Castagnoli) of data, continuing from crc; small_index: a block of a small index file."""
    if not (small_index and len(data) <= _PYTHON_CRC_LIMIT):
        return _c_crc32c()(data, crc)
    if not _CRC32C_TABLE:
        for byte in range(256):
            value = byte
            for _ in range(8):
                value = (value >> 1) ^ (0x82F63B78 if value & 1 else 0)  # the reflected polynomial
            _CRC32C_TABLE.append(value)
    table, crc = _CRC32C_TABLE, crc ^ 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@functools.cache
def _c_crc32c() -> Callable[[Any, int], int]:
    """The crc32c package's C function, loaded from its extension module without running the
    package's __init__, which costs 20-40 ms in importlib.metadata (for its __version__) and
    provides nothing the function needs (crc32c/__init__.py only re-exports _crc32c's names)."""
    import importlib.machinery
    import importlib.util

    module: Any = sys.modules.get("crc32c._crc32c")
    if module is None:
        spec = importlib.util.find_spec("crc32c")  # finds the package; runs nothing of it
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for path in (os.path.join(d, "_crc32c" + s) for d in folders for s in importlib.machinery.EXTENSION_SUFFIXES):
            extension = importlib.util.spec_from_file_location("crc32c._crc32c", path)
            if os.path.isfile(path) and extension is not None and extension.loader is not None:
                module = importlib.util.module_from_spec(extension)
                extension.loader.exec_module(module)
                # A later `import crc32c` finds it loaded, as its __init__ would have loaded it.
                sys.modules["crc32c._crc32c"] = module
                break
    if module is None:  # laid out otherwise: the package as it is
        import crc32c as module
    return cast(Callable[[Any, int], int], module.crc32c)


def _mask(crc: int) -> int:
    # Checksums are stored masked so that a CRC of data containing CRCs stays well mixed
    # (tensorflow/core/lib/hash/crc32c.h Mask).
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclass(slots=True)
class _Entry:
    """A BundleEntryProto (tensor_bundle.proto); slices hold (start, length) per dimension,
    length -1 meaning the whole dimension (tensor_slice.proto)."""

    dtype: int = 0
    shape: tuple[int, ...] = ()
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int = 0
    # A tuple, () for the unpartitioned: a list made per entry costs a tenth of a 100,000-tensor summary.
    slices: tuple[tuple[tuple[int, int], ...], ...] = ()


def _parse_entry(buf: bytes) -> _Entry:
    """A BundleEntryProto. This path reads the fields as TF writes them (dtype, shape, shard_id,
    offset, size, crc32c, in field order and each once: one-byte tags, a one-byte dtype, a shape
    under 128 bytes, numbers of at most 9 bytes) in a third of the time of the general decoder,
    which reads anything else (slices, long or negative numbers, fields in another order, unknown
    fields, a damaged record) and says what is wrong with it."""
    end = len(buf)
    if end < 4 or buf[0] != 0x08 or buf[1] >= 0x80 or buf[2] != 0x12 or buf[3] >= 0x80:
        return _parse_entry_fields(buf)
    # 1: dtype, one byte; 2: shape, length-delimited.
    pos = 4 + buf[3]
    shape = _parse_shape(buf[4:pos])
    # 3: shard_id, 4: offset, 5: size: varints, each left out when 0 (proto3), one byte or more.
    shard_id = offset = size = crc = 0
    try:
        if pos < end and buf[pos] == 0x18:
            shard_id = buf[pos + 1]
            pos += 2
            if shard_id >= 0x80:
                shard_id, pos = _varint_rest(buf, pos, shard_id)
        if pos < end and buf[pos] == 0x20:
            offset = buf[pos + 1]
            pos += 2
            if offset >= 0x80:
                offset, pos = _varint_rest(buf, pos, offset)
        if pos < end and buf[pos] == 0x28:
            size = buf[pos + 1]
            pos += 2
            if size >= 0x80:
                size, pos = _varint_rest(buf, pos, size)
    except IndexError:
        return _parse_entry_fields(buf)
    if pos + 5 == end and buf[pos] == 0x35:  # 6: crc32c, fixed32
        crc = _UINT32(buf, pos + 1)[0]
        pos = end
    if pos != end:
        return _parse_entry_fields(buf)
    return _Entry(buf[1], shape, shard_id, offset, size, crc)


_UINT32 = struct.Struct("<I").unpack_from


# The value of each byte of a varint after its first, by its place: looked up, not computed, as
# numbers in Python cost an object each.
_VARINT_DIGITS = tuple(tuple((byte & 0x7F) << shift for byte in range(256)) for shift in range(7, 63, 7))


def _varint_rest(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """A varint whose first byte, `first`, says more follow from pos; and the position after it.
    IndexError where the record ends inside it or it runs past 9 bytes (a negative number, or one
    the general decoder is left to measure)."""
    value = first & 0x7F
    for digits in _VARINT_DIGITS:
        byte = buf[pos]
        pos += 1
        value += digits[byte]
        if byte < 0x80:
            return value, pos
    raise IndexError


def _parse_entry_fields(buf: bytes) -> _Entry:
    entry = _Entry()
    slices: list[tuple[tuple[int, int], ...]] = []
    for number, value in fields(buf):
        if number == 1:
            entry.dtype = as_int(value)
        elif number == 2:
            entry.shape = _parse_shape(as_bytes(value))
        elif number == 3:
            entry.shard_id = as_int(value, signed=True)
        elif number == 4:
            entry.offset = as_int(value, signed=True)
        elif number == 5:
            entry.size = as_int(value, signed=True)
        elif number == 6:
            entry.crc32c = as_int(value)
        elif number == 7:
            slices.append(tuple(_parse_extent(as_bytes(v)) for n, v in fields(as_bytes(value)) if n == 1))
    if min(entry.shard_id, entry.offset, entry.size) < 0:
        raise Malformed("negative shard, offset or size")
    entry.slices = tuple(slices)
    return entry


def _dim_size(buf: bytes) -> int:
    # TensorShapeProto.Dim: nearly always just `size` (field 1) as one varint, or nothing for 0.
    if not buf:
        return 0
    if buf[0] == 0x08:
        size, pos = varint(buf, 1)
        if pos == len(buf):
            return as_int(size, signed=True)
    return sum(as_int(v, signed=True) for n, v in fields(buf) if n == 1)


# A model has few distinct shapes (Adam alone stores every variable's shape three times): each
# encoding is decoded once. Errors are raised again for every tensor that has them.
@functools.lru_cache(maxsize=1024)
def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in fields(buf):
        if number == 2:
            size = _dim_size(as_bytes(value))
            if size < 0:
                raise Malformed("a dimension of unknown (negative) size")
            dims.append(size)
        elif number == 3 and value:
            raise Malformed("a stored tensor of unknown rank")
    if len(dims) > 64:  # numpy's limit (NPY_MAXDIMS); TF never saves such ranks
        raise Malformed(f"a tensor of rank {len(dims)}")
    if math.prod(d for d in dims if d) > _MAX_ELEMENTS:
        raise Malformed(f"a tensor of shape {dims}, too large for any array")
    return tuple(dims)


def _parse_extent(buf: bytes) -> tuple[int, int]:
    # `length` is in a oneof: absent means the whole dimension, not length 0.
    start, length = 0, -1
    for number, value in fields(buf):
        if number == 1:
            start = as_int(value, signed=True)
        elif number == 2:
            length = as_int(value, signed=True)
    return start, length


# --- the slice key of one piece of a partitioned variable -----------------------------------


def _slice_key(name: bytes, extents: tuple[tuple[int, int], ...]) -> bytes:
    # EncodeTensorNameSlice (saved_tensor_slice_util.cc) with OrderedCode
    # (tensorflow/core/lib/strings/ordered_code.cc): number 0, the escaped name and its
    # separator, the rank, then per dimension start and length (-1 for a full extent).
    escaped = re.sub(rb"[\x00\xff]", lambda m: b"\x00\xff" if m[0] == b"\x00" else b"\xff\x00", name)
    key = bytearray(b"\x00" + escaped + b"\x00\x01")
    rank = len(extents).to_bytes((len(extents).bit_length() + 7) // 8, "big")
    key += bytes([len(rank)]) + rank
    for number in (n for extent in extents for n in extent):
        # Signed numbers: the sign bit, then as many length bits as bytes follow.
        size = (~number if number < 0 else number).bit_length() // 7 + 1
        header = ((1 << size) - 1) << (7 * size)
        body = int.from_bytes(number.to_bytes(size, "big", signed=True), "big")
        key += (body ^ header).to_bytes(size, "big")
    return bytes(key)


# --- the table (tensorflow/core/lib/io/format.cc, block.cc, table.cc) -----------------------


def _block_handle(handle: bytes) -> tuple[int, int]:
    offset, pos = varint(handle, 0)
    size, _ = varint(handle, pos)
    return offset, size


def _check_handle(offset: int, size: int, file_size: int) -> None:
    if offset + size + _TRAILER_SIZE > file_size - _FOOTER_SIZE:
        raise Malformed(f"a block at byte {offset} runs past the end of the file")
    if size > _MAX_BLOCK:
        # What a sparse file claims costs it nothing; holding or checking it would cost this reader.
        raise Malformed(
            f"the block at byte {offset} claims {size:,} bytes; TensorFlow's table blocks hold about 256 KiB"
        )


def _read_block(f: BinaryIO, file_size: int, offset: int, size: int, where: str, verify: bool) -> bytes:
    """One block's contents, its trailer checked; read alone, so that memory follows the blocks."""
    _check_handle(offset, size, file_size)
    f.seek(offset)
    block = f.read(size + _TRAILER_SIZE)
    if len(block) != size + _TRAILER_SIZE:
        raise Malformed(f"the block at byte {offset} is cut short (the file shrank while it was read)")
    stored_crc = int.from_bytes(block[-4:], "little")
    small_index = file_size <= _PYTHON_CRC_LIMIT
    if verify and _mask(_crc32c(memoryview(block)[: size + 1], small_index=small_index)) != stored_crc:
        raise Malformed(f"the block at byte {offset} fails its CRC-32C check")
    if block[size] == 1:
        raise UnsupportedFormat(
            f"{where}: the block at byte {offset} is Snappy-compressed, which TensorFlow 2 never "
            "writes and lstm-inspect does not read; re-save the checkpoint with TensorFlow 2"
        )
    if block[size] != 0:
        raise Malformed(f"the block at byte {offset} has unknown compression type {block[size]}")
    return block[:size]


def _block_records(  # noqa: C901  # one loop, as each call or object per entry costs a large index dearly
    block: bytes, ordered: bool = False, previous: bytes | None = None, index: _Index | None = None
) -> tuple[list[bytes], list[bytes], Malformed | None]:
    """A block's keys and values, in order, and what is wrong with the entry that ends them early
    (None when nothing is), which the caller raises once it has read the entries before it: a
    damaged index is refused for its first problem. ordered: the keys must grow from entry to entry
    (a table's data blocks), from previous, the key before the block's first (None: there is none).

    index: a bundle's entries are read into it instead of listed. A BundleEntryProto as TF writes it
    is read here, field by field as _parse_entry's fast path reads it, with no call or object of its
    own (its _Entry is made when the tensor is read, which a summary never does); _parse_entry reads
    any other record (_read_record), and says what is wrong with it."""
    # Entries are (shared key prefix length, rest of key length, value length, rest of key,
    # value); a uint32 array of restart offsets and its count end the block (block.cc).
    if len(block) < 4:
        raise Malformed("a block is too short to hold its restart count")
    restarts_at = len(block) - 4 - 4 * int.from_bytes(block[-4:], "little")
    if restarts_at < 0:
        raise Malformed("a block's restart array is larger than the block")
    keys: list[bytes] = []
    values: list[bytes] = []
    if index is not None:
        infos, names, needed_from_shard, heads = index.infos, index.keys, index.needed_from_shard, index.heads
    pos, key = 0, b""
    key_budget = _MAX_KEY_EXPANSION * len(block)
    while pos < restarts_at:
        # The three lengths nearly always fit one byte each: read so, they need no varint calls.
        shared, unshared, value_size = block[pos], block[pos + 1], block[pos + 2]
        if shared < 0x80 and unshared < 0x80 and value_size < 0x80:
            pos += 3
        else:
            try:
                shared, pos = varint(block, pos)
                unshared, pos = varint(block, pos)
                value_size, pos = varint(block, pos)
            except Malformed as e:
                return keys, values, e
        if shared > len(key) or pos + unshared + value_size > restarts_at:
            return keys, values, Malformed("a block entry runs past its block")
        key_budget -= shared + unshared
        if key_budget < 0:
            problem = f"the keys of a block expand to more than {_MAX_KEY_EXPANSION} times its size"
            return keys, values, Malformed(problem)
        key = key[:shared] + block[pos : pos + unshared]
        if ordered:
            if previous is not None and key <= previous:
                return keys, values, Malformed("the table's keys are out of order")
            previous = key
        pos += unshared
        end = pos + value_size
        if index is None:
            keys.append(key)
            values.append(block[pos:end])
            pos = end
            continue
        if not index.num_shards:  # the table's first entry
            _read_header(key, block[pos:end], index)
            pos = end
            continue
        try:
            # 1: dtype, 2: shape, as in a record read before (KeyError otherwise; IndexError: a short one).
            dtype, shape, at, size_field, size = heads[block[pos : pos + block[pos + 3] + 4]]
            at += pos
            # 3: shard_id, 4: offset, 5: size: varints, each left out when 0; then 6: crc32c, fixed32.
            # Read here as _varint_rest reads them: a call costs more than the loop.
            shard_id = offset = 0
            if block[at] == 0x18:
                shard_id = block[at + 1]
                at += 2
                if shard_id >= 0x80:
                    shard_id, at = _varint_rest(block, at, shard_id)
            if block[at] == 0x20:
                offset = block[at + 1]
                at += 2
                if offset >= 0x80:
                    offset -= 0x80
                    for digits in _VARINT_DIGITS:
                        byte = block[at]
                        at += 1
                        offset += digits[byte]
                        if byte < 0x80:
                            break
                    else:
                        raise IndexError
            # A tensor's size follows from its dtype and shape: the last one met with this head is
            # nearly always this one's, and its bytes, compared, need not be decoded again.
            if block.startswith(size_field, at):
                at += len(size_field)
            else:
                size_at, size = at, 0
                if block[at] == 0x28:
                    size = block[at + 1]
                    at += 2
                    if size >= 0x80:
                        size, at = _varint_rest(block, at, size)
                if block[at] != 0x35:
                    raise IndexError
                at += 1
                head_size = block[pos + 3] + 4
                heads[block[pos : pos + head_size]] = (dtype, shape, head_size, block[size_at:at], size)
            if at + 4 != end:
                raise IndexError
        except (KeyError, IndexError):
            entry = _read_record(key, block[pos:end], index)
            if entry.slices:
                # A partitioned tensor's own entry has no data: its pieces do (tensor_bundle.cc
                # AddSlice). It is described with them (TFCheckpoint._describe).
                pos = end
                continue
            dtype, shape = dtype_name(entry.dtype), entry.shape
            shard_id, offset, size = entry.shard_id, entry.offset, entry.size
        pos = end
        data_end = offset + size
        if data_end >= needed_from_shard.get(shard_id, 0):
            needed_from_shard[shard_id] = data_end
        # Names are UTF-8; a stray byte shows as \xNN, so that names print and export as text.
        try:
            name = key.decode()  # what nearly every key is: read without naming an error handler
        except UnicodeDecodeError:
            name = key.decode("utf-8", "backslashreplace")
        if name in infos:
            index.name_met_twice = True
        names[name] = key
        infos[name] = TensorInfo(name, shape, dtype, name)
    if index is not None:
        index.last_key = previous
    return keys, values, None


def _table_blocks(f: BinaryIO, where: str, verify: bool) -> Iterator[bytes]:
    """The data blocks of a table file, in order. The footer is read first, and every block handle
    checked against the file's size before any block is read: a sparse file that claims gigabytes
    fails at its footer."""
    file_size = f.seek(0, os.SEEK_END)
    footer = b""
    if file_size >= _FOOTER_SIZE:
        f.seek(file_size - _FOOTER_SIZE)
        footer = f.read(_FOOTER_SIZE)
    if len(footer) != _FOOTER_SIZE or int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise Malformed("no table footer (bad magic number at the end): the file is truncated or not a .index file")
    _, pos = varint(footer, 0)  # the metaindex handle: the bundle keeps nothing there
    _, pos = varint(footer, pos)
    # The index block's keys are only separators between data blocks, never tensor names.
    handles, read_up_to = [], 0
    _, index_handles, problem = _block_records(_read_block(f, file_size, *_block_handle(footer[pos:]), where, verify))
    for handle in index_handles:
        offset, size = _block_handle(handle)
        # Data blocks follow one another (table_builder.cc), so no byte is read twice.
        if offset < read_up_to:
            raise Malformed(f"the block at byte {offset} overlaps the block before it")
        _check_handle(offset, size, file_size)
        read_up_to = offset + size + _TRAILER_SIZE
        handles.append((offset, size))
    if problem is not None:
        raise problem
    files.advise(f, [(offset, offset + size + _TRAILER_SIZE) for offset, size in handles])
    for offset, size in handles:
        yield _read_block(f, file_size, offset, size, where, verify)


def _table_entries(f: BinaryIO, where: str, verify: bool) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) records of a table file, in order."""
    previous = None
    for block in _table_blocks(f, where, verify):
        keys, values, problem = _block_records(block, True, previous)
        yield from zip(keys, values)
        if problem is not None:
            raise problem
        previous = keys[-1] if keys else previous


def _check_header(buf: bytes, where: str) -> int:
    """Parses BundleHeaderProto (tensor_bundle.proto); returns num_shards."""
    num_shards, endianness, min_consumer = 0, 0, 0
    bad_consumers: list[int] = []
    for number, value in fields(buf):
        if number == 1:
            num_shards = as_int(value, signed=True)
        elif number == 2:
            endianness = as_int(value)
        elif number == 3:
            min_consumer, bad_consumers = _version_def(as_bytes(value))
    if endianness != 0:
        raise UnsupportedFormat(f"{where}: written on a big-endian machine, which lstm-inspect does not read")
    # tensor_bundle.cc kTensorBundleVersion = 1, checked by CheckVersions (versions.cc).
    if min_consumer > 1 or 1 in bad_consumers:
        raise UnsupportedFormat(f"{where}: needs a newer tensor-bundle reader (format version > 1)")
    if num_shards < 1:
        raise Malformed(f"the header declares {num_shards} data shards")
    return num_shards


def _version_def(buf: bytes) -> tuple[int, list[int]]:
    """min_consumer and bad_consumers of a VersionDef (versions.proto)."""
    min_consumer, bad_consumers = 0, list[int]()
    for number, value in fields(buf):
        if number == 2:
            min_consumer = as_int(value)
        elif number == 3 and isinstance(value, bytes):  # packed repeated int32
            pos = 0
            while pos < len(value):
                consumer, pos = varint(value, pos)
                bad_consumers.append(consumer)
        elif number == 3:
            bad_consumers.append(as_int(value))
    return min_consumer, bad_consumers


# --- finding the checkpoint -----------------------------------------------------------------


def _unescape(text: bytes) -> bytes:
    # The state file is a text-format proto: strings use C escapes, octal for non-ASCII bytes.
    simple = {b"n": b"\n", b"t": b"\t", b"r": b"\r"}

    def one(m: re.Match[bytes]) -> bytes:
        code = m[1]
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return simple.get(code, code)

    return re.sub(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", one, text, flags=re.S)


# The state file names the latest checkpoint and the ones kept before it (checkpoint_state.proto),
# one short line each: Saver keeps 5 by default (saver.py max_to_keep); 1 MiB allows thousands.
_STATE_FILE_LIMIT = 1 << 20


def _named_by_state_file(directory: str) -> str:
    """The checkpoint path a directory's `checkpoint` state file names (tf.train.latest_checkpoint)."""
    state = files.join(directory, STATE_FILE)
    if not files.lexists(state):
        raise FileNotFound(f"{directory}: {_without_state_file(directory)}")
    text = read_bounded(state, _STATE_FILE_LIMIT, "checkpoint state file")
    check_lfs_pointer(state, text)
    match = re.search(rb'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    if match is None:
        raise CorruptFile(f"{state}: no model_checkpoint_path line; give the checkpoint prefix itself")
    named = os.fsdecode(_unescape(match[1]))
    candidates = _named_candidates(directory, named)
    for path in candidates:
        if files.exists(path + ".index") or files.exists(path):
            return path
    raise FileNotFound(
        f"{state}: names checkpoint {named!r}, but there is no {candidates[0]}.index; "
        "give the checkpoint prefix itself or fix the state file"
    )


def _named_candidates(directory: str, named: str) -> list[str]:
    """Where the checkpoint a state file names may be: as named, then beside the state file (a
    copied checkpoint directory still names the absolute path it was written to)."""
    if not is_url(directory):
        return [os.path.join(directory, named), os.path.join(directory, os.path.basename(named))]
    # In a remote directory a name is followed only within it, or to the same bucket or host: the
    # file is the server's to write, and it must not point the reader at a local path or elsewhere.
    beside = files.join(directory, os.path.basename(named.rstrip("/")))
    if is_url(named):
        named = display_url(named)
        return [named, beside] if named.split("/")[:3] == directory.split("/")[:3] else [beside]
    relative = not named.startswith("/") and ".." not in named.split("/")
    return [files.join(directory, named), beside] if relative else [beside]


def _without_state_file(directory: str) -> str:
    """What to say of a directory without a `checkpoint` state file: the prefixes it holds."""
    # A SavedModel (saved_model.pb beside variables/) keeps its weights as the checkpoint
    # variables/variables (tensorflow/python/saved_model/path_helpers.py get_variables_path).
    variables = files.join(directory, "variables", "variables")
    if files.exists(files.join(directory, "saved_model.pb")) and files.exists(variables + ".index"):
        return (
            "a SavedModel directory, which lstm-inspect does not read as one yet; "
            f"give the checkpoint of its variables instead: {variables}"
        )
    found = sorted(
        files.join(folder, name[: -len(".index")])
        for folder in (directory, files.join(directory, "variables"))
        if files.is_dir(folder)
        for name in files.list_dir(folder)
        if name.endswith(".index")
    )
    hint = f"; give one of these checkpoint prefixes instead: {', '.join(found[:5])}" if found else ""
    return f"this directory has no `checkpoint` state file{hint}"


def resolve_prefix(path: str | os.PathLike[str]) -> str:
    """The checkpoint prefix for a prefix, its .index or .data-… file, or a checkpoint directory.

    Whatever a path is (a FIFO, a device), existing is enough here: the reader's opening says
    what it is, instead of calling it missing.
    """
    path = os.fspath(path)
    if files.is_dir(path):
        path = _named_by_state_file(path)
    prefix = _prefix_of(path)
    if files.exists(prefix + INDEX_SUFFIX):
        return prefix
    if not files.exists(path):
        raise FileNotFound(f"{path}: no such file or checkpoint prefix (there is no {prefix}.index)")
    raise refusal(path) or UnsupportedFormat(
        f"{path}: not a TensorFlow checkpoint (no {prefix}.index next to it); give a checkpoint "
        "prefix, its .index or .data-… file, or a directory holding a `checkpoint` file"
    )


def _prefix_of(path: str) -> str:
    data_suffix = DATA_SUFFIX.search(path)
    if path.endswith(INDEX_SUFFIX):
        return path[: -len(INDEX_SUFFIX)]
    if path.endswith(META_SUFFIX) and files.exists(path[: -len(META_SUFFIX)] + INDEX_SUFFIX):
        return path[: -len(META_SUFFIX)]  # the graph Saver.save wrote beside its checkpoint
    return path[: data_suffix.start()] if data_suffix else path


def refusal(path: str, directory: bool = False) -> LstmInspectError | None:
    """What to say of a path that exists but is no checkpoint, when it is a near miss: which path
    to give instead. None when it looks like nothing a checkpoint is made of."""
    if directory:
        return FileNotFound(f"{path}: {_without_state_file(path)}")
    said = _near_miss(path)  # by its name: a data shard's bytes are not fetched to say what it is
    if said is not None:
        return UnsupportedFormat(f"{path}: {said}")
    with open_regular(path) as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 8))
        magic = int.from_bytes(f.read(8), "little")
    if magic == _TABLE_MAGIC:
        return UnsupportedFormat(
            f"{path}: this is a V1 TensorFlow checkpoint (before 2017), which lstm-inspect does not "
            "read; load it in TensorFlow and save it again with tf.compat.v1.train.Saver()"
        )
    return None


def _near_miss(path: str) -> str | None:
    """Why a file that exists is not a checkpoint, and which path to give instead."""
    directory, base = files.split(path)
    if base == STATE_FILE:
        try:
            named = f"the checkpoint prefix it names, {_named_by_state_file(directory or os.curdir)}"
        except LstmInspectError:
            named = "a checkpoint prefix"
        return f"a checkpoint state file, not a checkpoint; give the directory holding it or {named}"
    if base.endswith(META_SUFFIX):
        weights = path[: -len(META_SUFFIX)]
        return f"a TensorFlow graph (MetaGraphDef), and its checkpoint {weights}.index is not beside it"
    if DATA_SUFFIX.search(base):
        prefix = _prefix_of(path)
        return (
            f"a data shard of the checkpoint {prefix}, whose index {prefix}.index is not beside it; "
            f"copy the .index file next to it and give the prefix {prefix}"
        )
    return None


def checkpoint_files(prefix: str) -> list[str]:
    """The files of the checkpoint at `prefix` that exist: its .index, every .data shard, the .meta
    graph beside it and the directory's `checkpoint` state file; what an export must never replace."""
    directory, base = os.path.split(prefix)
    names = sorted(files.list_dir(directory))
    shards = [os.path.join(directory, n) for n in names if n.startswith(base) and DATA_SUFFIX.match(n, len(base))]
    beside = [prefix + ".index", *shards, prefix + META_SUFFIX, os.path.join(directory, STATE_FILE)]
    return [path for path in beside if os.path.lexists(path)]


# --- the store -------------------------------------------------------------------------------

TF_ORIGIN = Origin("tensorflow")  # tf.train.load_checkpoint reads what this module reads


def dtype_name(code: int) -> str:
    """The numpy dtype name of a TF DataType enum value (types.proto); "unknown-N" when there is none."""
    # Reference types are the base type + 100 (DT_FLOAT_REF = 101).
    name = _DTYPE_NAMES.get(code - 100 if code > 100 else code)
    return f"unknown-{code}" if name is None else name


def _numpy_dtype(name: str) -> np.dtype | None:
    """The numpy dtype of a TensorInfo.dtype name; None for resource, variant and unknown types."""
    import numpy as np

    if name == "string":
        return np.dtype(object)
    if name in _ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    try:
        return np.dtype(name)
    except TypeError:
        return None


@dataclass(slots=True)
class _Index:
    """What opening reads from a bundle's index (_block_records), block by block."""

    where: str
    num_shards: int = 0  # 0 until the header is read
    parsed: dict[bytes, _Entry] = field(default_factory=dict)  # the entries read as _Entry at open
    infos: dict[str, TensorInfo] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)  # each tensor's key, by name
    needed_from_shard: dict[int, int] = field(default_factory=dict)  # the furthest byte a tensor ends at
    # By the head of a record as TF writes it (dtype, then shape): the dtype's name, the shape, the
    # head's size, and the size field of the last such record (0x35 alone for none) and its number.
    heads: dict[bytes, tuple[str, tuple[int, ...], int, bytes, int]] = field(default_factory=dict)
    partitioned: list[bytes] = field(default_factory=list)  # the keys of entries with slices
    name_met_twice: bool = False
    last_key: bytes | None = None  # of the blocks read so far


def _read_header(key: bytes, value: bytes, index: _Index) -> None:
    if key != b"":
        raise Malformed("the first entry is not the bundle header")
    index.num_shards = _check_header(value, index.where)


def _read_record(key: bytes, value: bytes, index: _Index) -> _Entry:
    """An entry _block_records does not read itself, read by _parse_entry; its head noted when it is
    one as TF writes it, so that the records after it with the same head are read in the loop."""
    entry = index.parsed[key] = _parse_entry(value)
    if entry.slices:
        index.partitioned.append(key)
    elif len(value) >= 4 and value[0] == 0x08 and value[1] < 0x80 and value[2] == 0x12 and value[3] < 0x80:
        # The head as _parse_entry's fast path reads it: any record with this head and the rest as
        # TF writes it reads alike in either.
        head_size = value[3] + 4
        if head_size <= len(value):
            shape = _parse_shape(value[4:head_size])
            index.heads[value[:head_size]] = (dtype_name(value[1]), shape, head_size, b"\x35", 0)
    return entry


class _Entries(Mapping[bytes, _Entry]):
    """A bundle's entries by key, each read into an _Entry when first asked for (a read asks), from
    the index's blocks, kept as they are; a summary asks for none."""

    def __init__(self, blocks: list[bytes], parsed: dict[bytes, _Entry]) -> None:
        self._blocks, self._parsed = blocks, parsed

    @functools.cached_property
    def _records(self) -> dict[bytes, bytes]:
        records: dict[bytes, bytes] = {}
        for block in self._blocks:  # read whole before: nothing is wrong with them
            keys, values, _ = _block_records(block)
            records.update(zip(keys, values))
        del records[b""]  # the header
        return records

    def __getitem__(self, key: bytes) -> _Entry:
        entry = self._parsed.get(key)
        if entry is None:  # a record _block_records read whole, which _parse_entry reads alike
            entry = self._parsed[key] = _parse_entry(self._records[key])
        return entry

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


class TFCheckpoint:
    """An open V2 checkpoint; a TensorStore. Opening reads the .index file only."""

    format = "tf-checkpoint"
    origin = TF_ORIGIN
    checksums = True  # CRC-32C of every index block and every tensor (tensor_bundle.cc)

    def __init__(self, prefix: str, verify: bool = True) -> None:
        self.path = prefix
        self._verify = verify
        self._index_path = prefix + ".index"
        self._shards: dict[int, tuple[BinaryIO, int]] = {}
        index = _Index(self._index_path)
        blocks = []
        with open_regular(self._index_path, "checkpoint index") as f:
            if opened_size(f) < 1024:  # as small as a Git LFS pointer
                check_lfs_pointer(self._index_path, f.read(64))
            try:
                for block in _table_blocks(f, self._index_path, verify):
                    blocks.append(block)
                    _, _, problem = _block_records(block, True, index.last_key, index)
                    if problem is not None:
                        raise problem
                if not index.num_shards:
                    raise Malformed("the first entry is not the bundle header")
            except Malformed as e:
                raise self._corrupt(self._index_path, str(e)) from None
        self._num_shards = index.num_shards
        self._entries = _Entries(blocks, index.parsed)
        self._partitioned = index.partitioned
        self._infos, self._keys = index.infos, index.keys
        if index.partitioned or index.name_met_twice:
            self._describe(self._pieces())
        # A checkpoint without (all of) its data is still worth listing: the shards are checked now,
        # and what is wrong with them is warned of when the store closes, unless a read has failed
        # by then, whose error says it (one line, not a warning and an error saying the same).
        self._used_shards = sorted(index.needed_from_shard)
        self._shard_warnings = self._check_shards(index.needed_from_shard)
        self._graph: GraphHints | None = None
        self._graph_read = False
        self._unsaid = "no graph beside the checkpoint"

    def _pieces(self) -> set[bytes]:
        """The keys of partitioned tensors' pieces, hidden the way TF's CheckpointReader::BuildV2VarMaps
        hides them. A tensor whose pieces are missing fails when read; looking no further than its
        first missing piece keeps the keys built here within those the index holds."""
        pieces = set()
        for key in self._partitioned:
            for extents in dict.fromkeys(self._entries[key].slices):
                piece = _slice_key(key, extents)
                if piece not in self._entries:
                    break
                pieces.add(piece)
        return pieces

    def _describe(self, pieces: set[bytes]) -> None:
        """The TensorInfo of every tensor but the pieces, read from its entry: for an index with
        partitioned tensors, or two keys whose names read alike; _block_records describes the others."""
        self._infos, self._keys = {}, {}
        for key in self._entries:
            if key in pieces:
                continue
            name = key.decode("utf-8", "backslashreplace")
            if name in self._keys:
                raise self._corrupt(self._index_path, f"two tensors are both named {name!r}")
            self._keys[name] = key
            entry = self._entries[key]
            self._infos[name] = TensorInfo(name, entry.shape, dtype_name(entry.dtype), name)

    @staticmethod
    def _corrupt(path: str, problem: str) -> CorruptFile:
        return CorruptFile(f"{path}: {problem}; the file is damaged or incomplete: copy it again or re-save it")

    def _shard_path(self, shard_id: int) -> str:
        return f"{self.path}.data-{shard_id:05d}-of-{self._num_shards:05d}"  # naming.cc DataFilename

    @property
    def _copy_every_shard(self) -> str:
        return f"; copy every .data-*-of-{self._num_shards:05d} file next to the .index file"

    def _check_shards(self, needed_from_shard: dict[int, int]) -> dict[int, str]:
        """What to warn of each data shard that is missing or shorter than the index needs; one that
        is not a regular file is refused. Only shards that some tensor is in are looked at: the
        header's num_shards is a number a damaged file can make huge."""
        problems = {}
        files.look_up([self._shard_path(i) for i in needed_from_shard if i < self._num_shards])
        for shard_id, needed in sorted(needed_from_shard.items()):
            if shard_id >= self._num_shards:
                continue  # reading its tensors says the index is damaged
            path = self._shard_path(shard_id)
            which = f"data shard {shard_id + 1} of {self._num_shards}"
            if not files.lexists(path):
                problems[shard_id] = (
                    f"{path}: {which} is missing: its tensors are listed, but their values cannot be read"
                    f"{self._copy_every_shard}"
                )
                continue
            try:
                size = files.size_regular(path, "data shard")  # a FIFO or a device is refused here
            except FileNotFound as e:  # a dangling link, a folder that cannot be searched
                problems[shard_id] = f"{e}; the values in {which} cannot be read"
                continue
            if size < needed:
                problems[shard_id] = (
                    f"{path}: {which} is {size:,} bytes, but the index places tensor data up to byte "
                    f"{needed:,} in it: the file is cut short (copy it again); tensors past its end cannot be read"
                )
        return problems

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._infos)

    def files(self) -> list[str]:
        if is_url(self.path):  # no local output can be one of these; listing them would cost requests
            return [self._index_path, *(self._shard_path(i) for i in self._used_shards if i < self._num_shards)]
        return checkpoint_files(self.path)

    def layer_configs(self) -> dict[str, LayerConfig]:
        return {}

    def layer_hints(self) -> dict[str, LayerHint]:
        """What the `.meta` graph beside the checkpoint says of each LSTM cell (tf_graph.graph_hints);
        {} without one. A graph that is not this checkpoint's (other variables or shapes) or that
        cannot be read is warned of in one line and ignored."""
        graph = self._read_graph()
        return dict(graph.hints) if graph is not None else {}

    def trainable_variables(self) -> list[str] | None:
        """The graph's trainable_variables collection (None without a graph, or one without it)."""
        graph = self._read_graph()
        return graph.trainable_variables if graph is not None else None

    def unsaid(self) -> str:
        """Why a setting no weight stores is assumed: there is no graph, or it was ignored, or it
        does not show that setting for that cell."""
        self._read_graph()
        return self._unsaid

    def tensorflow_source(self) -> TensorFlowSource:
        return TensorFlowSource("checkpoint", self.path, {name: name for name in self._infos})

    def _read_graph(self) -> GraphHints | None:
        if self._graph_read:
            return self._graph
        self._graph_read = True
        meta = self.path + META_SUFFIX
        if not files.exists(meta):
            return None
        from .tf_graph import graph_hints

        name = files.split(meta)[1]
        try:
            graph = graph_hints(meta, self._infos)
        except LstmInspectError as e:
            warn(f"{e}; read without it")
            self._unsaid = f"its graph {name} could not be read"
            return None
        if not graph.belongs:
            more = f" (and {len(graph.problems) - 1:,} more)" if len(graph.problems) > 1 else ""
            warn(f"{graph.problems[0]}{more}: not this checkpoint's graph, so ignored")
            self._unsaid = f"{name} beside it is another model's graph, ignored"
            return None
        self._graph = graph
        self._unsaid = f"its graph {name} does not show it for this cell"
        return graph

    def read(self, name: str) -> np.ndarray:
        info = self._infos.get(name)
        if info is None:
            raise UnknownName(f"{self.path}: no tensor named {name!r} in this checkpoint")
        dtype = _numpy_dtype(info.dtype)
        if dtype is None:
            raise UnsupportedFormat(f"{self.path}: tensor {name!r} has dtype {info.dtype}, which has no numpy value")
        key = self._keys[name]
        entry = self._entries[key]
        try:
            if not entry.slices:
                return self._read_entry(name, entry, dtype)
            return self._assemble(name, key, entry, dtype)
        except LstmInspectError:
            self._shard_warnings.clear()
            raise

    def advise(self, names: Iterable[str]) -> None:
        """Say which tensors will be read next, so that a remote shard fetches the bytes of those
        that lie together in one request (readers/remote.py); a local shard needs no telling. A
        tensor that cannot be read is left out: reading it says why."""
        if not is_url(self.path):
            return
        for name in names:
            info, key = self._infos.get(name), self._keys.get(name)
            entry = self._entries.get(key) if key is not None else None
            dtype = _numpy_dtype(info.dtype) if info is not None else None
            if key is None or entry is None or dtype is None:
                continue
            pieces = [self._entries.get(_slice_key(key, e)) for e in entry.slices] if entry.slices else [entry]
            for piece in filter(None, pieces):
                try:
                    shard, _ = self._locate(name, piece, dtype)
                except LstmInspectError:
                    continue
                files.advise(shard, [(piece.offset, piece.offset + piece.size)])

    def _assemble(self, name: str, key: bytes, entry: _Entry, dtype: np.dtype) -> np.ndarray:
        import numpy as np

        # A partitioned variable: the full entry lists the slices, each stored under its
        # own slice key (BundleWriter::AddSlice in tensor_bundle.cc).
        if len(set(entry.slices)) != len(entry.slices):
            raise self._corrupt(self._index_path, f"partitioned tensor {name!r} lists a piece twice")
        pieces = []
        for extents in entry.slices:
            spec = ":".join("-" if length < 0 else f"{start},{length}" for start, length in extents)
            piece_name = f"{name} [{spec}]"
            piece = self._entries.get(_slice_key(key, extents))
            if piece is None:
                raise self._corrupt(self._index_path, f"piece {piece_name!r} of a partitioned tensor is missing")
            bounds = [
                (0, dim) if length < 0 else (start, start + length)
                for (start, length), dim in zip(extents, entry.shape)
            ]
            if (
                len(extents) != len(entry.shape)
                or any(low < 0 or high > dim for (low, high), dim in zip(bounds, entry.shape))
                or piece.shape != tuple(high - low for low, high in bounds)
                or piece.dtype != entry.dtype
            ):
                raise self._corrupt(self._index_path, f"piece {piece_name!r} does not fit the full tensor")
            shard, _ = self._locate(piece_name, piece, dtype)  # checks sizes against the files before allocating
            pieces.append((tuple(slice(low, high) for low, high in bounds), piece_name, piece))
            files.advise(shard, [(piece.offset, piece.offset + piece.size)])
        if sum(math.prod(piece.shape) for *_, piece in pieces) != math.prod(entry.shape):
            raise self._corrupt(self._index_path, f"the pieces of partitioned tensor {name!r} do not cover it")
        # Each piece has bytes of its own; pieces sharing bytes would make a tensor larger than the data.
        spans = sorted((piece.shard_id, piece.offset, piece.offset + piece.size) for *_, piece in pieces)
        if any(a[0] == b[0] and b[1] < a[2] for a, b in zip(spans, spans[1:])):
            raise self._corrupt(self._index_path, f"the pieces of partitioned tensor {name!r} share bytes")
        full = np.empty(entry.shape, dtype)
        covered = np.zeros(entry.shape, bool)
        for where, piece_name, piece in pieces:
            if covered[where].any():
                raise self._corrupt(self._index_path, f"the pieces of partitioned tensor {name!r} overlap")
            full[where] = self._read_entry(piece_name, piece, dtype)
            covered[where] = True
        return full

    def _locate(self, name: str, entry: _Entry, dtype: np.dtype) -> tuple[BinaryIO, str]:
        """The open data shard holding a tensor, once its size is checked against dtype, shape and file."""
        count, strings = math.prod(entry.shape), dtype.hasobject
        # A string tensor is varint lengths, their masked CRC, then the bytes, so at least
        # one byte per element (WriteStringTensor in tensor_bundle.cc).
        needed = count + 4 if strings else count * dtype.itemsize
        if entry.size < needed or (entry.size > needed and not strings):
            raise self._corrupt(
                self._index_path,
                f"tensor {name!r} is stored as {entry.size} bytes, but {dtype} {list(entry.shape)} needs {needed}",
            )
        if entry.shard_id >= self._num_shards:
            raise self._corrupt(self._index_path, f"tensor {name!r} is in shard {entry.shard_id}, past the last one")
        path = self._shard_path(entry.shard_id)
        if entry.shard_id not in self._shards:
            which = f"data shard {entry.shard_id + 1} of {self._num_shards}, which holds tensor {name!r}"
            if not files.lexists(path):
                raise FileNotFound(f"{path}: cannot open {which} (no such file){self._copy_every_shard}")
            try:
                f = open_regular(path, "data shard")  # kept open until close()
            except FileNotFound as e:
                raise FileNotFound(f"{e}; it is {which}") from None
            size = opened_size(f)
            self._shards[entry.shard_id] = (f, size)
            if size < 1024:  # as small as a Git LFS pointer
                check_lfs_pointer(path, f.read(64))
        f, file_size = self._shards[entry.shard_id]
        if entry.offset + entry.size > file_size:
            raise self._corrupt(
                path,
                f"tensor {name!r} needs bytes {entry.offset}..{entry.offset + entry.size} of a {file_size}-byte file",
            )
        return f, path

    def _read_entry(self, name: str, entry: _Entry, dtype: np.dtype) -> np.ndarray:
        import numpy as np

        f, path = self._locate(name, entry, dtype)
        # A large tensor is a memory map of its bytes in the shard (files.map_range): no fresh
        # pages to fill (3.3 s for 269 MB through fresh 32 MiB buffers here, against 0.2 s mapped),
        # no copy from the page cache, and each page read only when the CRC or an export touches
        # it. It is unmapped when the last array on it goes (Layer.release).
        mapped = None
        if not dtype.hasobject and entry.size >= _MAP_AT_LEAST:
            mapped = files.map_range(f, entry.offset, entry.size)
        if mapped is not None:
            numbers: np.ndarray | None = np.frombuffer(mapped, np.uint8)
            raw = mapped
        else:
            # np.empty, unlike bytearray, leaves the memory unwritten until the read fills it.
            numbers = None if dtype.hasobject else np.empty(entry.size, np.uint8)
            raw = memoryview(bytearray(entry.size)) if numbers is None else numbers.data
            f.seek(entry.offset)
            if cast(io.RawIOBase, f).readinto(raw) != entry.size:
                raise self._corrupt(path, f"tensor {name!r} is cut short")
        try:
            if numbers is None:
                value, crc = _decode_strings(raw, math.prod(entry.shape), self._verify)
            else:
                # Bundles are little-endian (the header says so, checked on open).
                value = numbers.view(dtype)
                value = value.byteswap() if sys.byteorder == "big" else value
                crc = _crc32c(raw) if self._verify else 0
        except Malformed as e:
            raise self._corrupt(path, f"tensor {name!r}: {e}") from None
        if self._verify and _mask(crc) != entry.crc32c:
            raise self._corrupt(path, f"tensor {name!r} fails its CRC-32C check")
        return value.reshape(entry.shape)

    def close(self) -> None:
        for f, _ in self._shards.values():
            f.close()
        self._shards.clear()
        for message in self._shard_warnings.values():
            warn(message)
        self._shard_warnings.clear()

    def __enter__(self) -> TFCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_strings(raw: memoryview, count: int, verify: bool) -> tuple[np.ndarray, int]:
    """The strings, and the unmasked CRC that BundleEntryProto.crc32c covers: each length as
    uint32 (uint64 past 4 GiB), the stored lengths checksum, then the bytes (WriteStringTensor)."""
    import numpy as np

    lengths, pos = [], 0
    for _ in range(count):
        length, pos = varint(raw, pos)
        lengths.append(length)
    if pos + 4 + sum(lengths) != len(raw):
        raise Malformed("the string lengths do not add up to the stored size")
    crc = 0
    if verify:
        crc = _crc32c(b"".join(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n) for n in lengths))
        if _mask(crc) != int.from_bytes(raw[pos : pos + 4], "little"):
            raise Malformed("the string lengths fail their CRC-32C check")
        crc = _crc32c(raw[pos:], crc)
    pos += 4
    values = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        values[i] = bytes(raw[pos : pos + length])
        pos += length
    return values, crc


# A key with a number for a path component (`model/variables/3/.ATTRIBUTES/VARIABLE_VALUE`): TF2's
# positional names, which only the object graph renames (saved_model.with_object_paths). Most TF2
# checkpoints name every variable by attribute (`model/layer_with_weights-0/...`): their object
# graph is not even read, nor its reader imported. Searched for in all the keys at once, each
# after a "/" (see open_checkpoint): a pattern that starts with a literal is looked for by sre's
# fast prefix scan, where "(?:^|/)" was tried at every position of the 3 MB of a 100,000-tensor
# index (64 ms against 9).
POSITIONAL_KEY = re.compile(r"/[0-9]+(?:/|$)", re.M)


def open_checkpoint(path: str | os.PathLike[str], verify: bool = True) -> TFCheckpoint | RenamedStore:
    """Open a TF V2 checkpoint given as its prefix, .index or .data-… file, or directory.

    verify: check the CRC-32C of every index block on open and of every tensor read.
    """
    path = os.fspath(path)
    checkpoint = TFCheckpoint(resolve_prefix(display_url(path) if is_url(path) else path), verify=verify)
    # One search through all the keys, a line each, each after a "/". What follows .ATTRIBUTES is
    # never a number (VARIABLE_VALUE, OBJECT_CONFIG_JSON), so the whole key may be searched.
    if not POSITIONAL_KEY.search("/" + "\n/".join(checkpoint.tensors())):
        return checkpoint
    from .saved_model import with_object_paths  # positional TF2 keys named by the object graph

    return with_object_paths(checkpoint)
