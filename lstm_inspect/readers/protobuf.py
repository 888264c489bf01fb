"""Protocol buffer wire format, decoded without the protobuf package: just enough for the messages
the readers need (tensor bundle entries, and whatever else a reader decodes field by field).

https://protobuf.dev/programming-guides/encoding/: a message is a run of (tag, value) fields,
tag = field number << 3 | wire type; varints are little-endian base-128.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["Field", "Malformed", "Schema", "as_bytes", "as_int", "decode", "fields", "varint"]


class Malformed(Exception):
    """A structural problem in a binary record; the reader that meets it adds the file name."""


def varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 64:
        if pos >= len(buf):
            raise Malformed("a varint runs past the end of its record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise Malformed("a varint is longer than 10 bytes")


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    # A list, and one-byte varints (nearly every tag, small number and length) read inline: an
    # index of 20,000 tensors decodes some 120,000 fields, so this loop sets how fast a summary
    # starts.
    fields: list[tuple[int, int | bytes]] = []
    append = fields.append
    pos, end = 0, len(buf)
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = varint(buf, pos)
        wire = tag & 7
        value: int | bytes
        if wire == 0:
            value = buf[pos] if pos < end else 0x80  # 0x80: let _varint report the missing byte
            if value < 0x80:
                pos += 1
            else:
                value, pos = varint(buf, pos)
        elif wire == 2:
            length = buf[pos] if pos < end else 0x80
            if length < 0x80:
                pos += 1
            else:
                length, pos = varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        elif wire == 1:
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        else:
            raise Malformed(f"unexpected protobuf wire type {wire}")
        append((tag >> 3, value))
    # Only the last field can run past the end: doing so ends the loop.
    if pos > end:
        raise Malformed("a protobuf field runs past the end of its record")
    return fields


def as_int(value: int | bytes, signed: bool = False) -> int:
    if not isinstance(value, int):
        raise Malformed("a number field holds bytes")
    return value - (1 << 64) if signed and value >= 1 << 63 else value


def as_bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise Malformed("a message field holds a number")
    return value


# --- messages decoded by schema ---------------------------------------------------------------
#
# A schema maps a message name to {field number: Field}; the messages themselves (TensorFlow's,
# Keras') are declared as data in tf_protos.py. decode() turns one binary message into a dict
# keyed by field name: repeated fields are lists (packed numbers an array.array where the type
# allows), map fields dicts, absent fields absent. prototext.decode() gives the same dicts for the
# text format, from the same schema.


class Field(NamedTuple):
    """One field of a message: its name, its kind, whether it repeats, whether it is a map.

    kind: "string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "float", "double",
    "enum:<Enum>", or the name of a message in the schema. A map field's kind names its entry
    message, whose fields 1 and 2 are the key and the value (protobuf.dev encoding: maps).
    """

    name: str
    kind: str
    repeated: bool = False
    map: bool = False


Schema = Mapping[str, Mapping[int, Field]]

# Nested messages deeper than this were made to exhaust the stack; TensorFlow's own messages nest
# a few levels (AttrValue -> ListValue -> NameAttrList -> AttrValue for function attributes).
MAX_DEPTH = 64


def decode(buf: bytes, message: str, schema: Schema, depth: int = 0) -> dict[str, Any]:
    """The fields of one binary message that `schema` declares for `message`; others are skipped."""
    if depth > MAX_DEPTH:
        raise Malformed(f"messages nested more than {MAX_DEPTH} deep")
    declared = schema[message]
    out: dict[str, Any] = {}
    for number, value in fields(buf):
        field = declared.get(number)
        if field is None:
            continue
        if field.repeated and isinstance(value, bytes) and (field.kind in _NUMBERS or field.kind[:5] == "enum:"):
            store(out, field, _packed(value, field.kind), schema)
        else:
            store(out, field, _scalar(value, field, schema, depth), schema)
    return out


def store(out: dict[str, Any], field: Field, value: Any, schema: Schema) -> None:
    """Put one decoded value of `field` into its message's dict as protobuf reads a field that
    occurs again (protobuf.dev encoding: "last one wins" and merging): repeated fields append (a
    packed run extends), maps update, a message merges into the one before, a scalar replaces it."""
    name = field.name
    if field.map:
        key_field = schema[field.kind].get(1)
        default = "" if key_field is None or key_field.kind in ("string", "bytes") else 0
        out.setdefault(name, {})[value.get("key", default)] = value.get("value")
    elif field.repeated:
        have = out.get(name)
        if not isinstance(value, (list, array.array)):
            out.setdefault(name, []).append(value)
        elif have is None:
            out[name] = value
        elif type(have) is type(value):
            have.extend(value)
        else:
            out[name] = [*have, *value]
    elif field.kind in schema and name in out:
        _merge(out[name], value, field.kind, schema)
    else:
        out[name] = value


def _merge(into: dict[str, Any], other: dict[str, Any], message: str, schema: Schema) -> None:
    for field in schema[message].values():
        if field.name not in other:
            continue
        value = other[field.name]
        if field.map:
            into.setdefault(field.name, {}).update(value)
        elif field.repeated:
            store(into, field, value if isinstance(value, array.array) else list(value), schema)
        else:
            store(into, field, value, schema)


_NUMBERS = {"bool", "int32", "int64", "uint32", "uint64", "float", "double"}
_PACKED_ARRAYS = {"float": "f", "double": "d"}  # array typecodes


def _scalar(value: int | bytes, field: Field, schema: Schema, depth: int) -> Any:
    kind = field.kind
    if kind in ("string", "bytes"):
        raw = as_bytes(value)
        return raw.decode("utf-8", "backslashreplace") if kind == "string" else raw
    if kind in schema:
        return decode(as_bytes(value), kind, schema, depth + 1)
    if kind == "float":
        if not isinstance(value, int) or value >> 32:
            raise Malformed(f"field {field.name} is not a 32-bit float")
        return struct.unpack("<f", value.to_bytes(4, "little"))[0]
    if kind == "double":
        if not isinstance(value, int):
            raise Malformed(f"field {field.name} is not a 64-bit float")
        return struct.unpack("<d", value.to_bytes(8, "little"))[0]
    if kind == "bool":
        return bool(as_int(value))
    # int32 and enums are sign-extended varints too (protobuf.dev encoding: signed integers).
    return as_int(value, signed=kind in ("int32", "int64") or kind.startswith("enum:"))


def _packed(buf: bytes, kind: str) -> array.array[Any] | list[Any]:
    """A packed repeated field's numbers (protobuf.dev encoding: packed repeated fields)."""
    typecode = _PACKED_ARRAYS.get(kind)
    if typecode is not None:
        values = array.array(typecode)
        if len(buf) % values.itemsize:
            raise Malformed(f"a packed {kind} field of {len(buf)} bytes")
        values.frombytes(buf)
        if sys.byteorder == "big":
            values.byteswap()
        return values
    numbers, pos, end = [], 0, len(buf)
    signed = kind in ("int32", "int64")
    while pos < end:
        number, pos = varint(buf, pos)
        numbers.append(number - (1 << 64) if signed and number >= 1 << 63 else number)
    if kind == "bool":
        return [bool(n) for n in numbers]
    return numbers
