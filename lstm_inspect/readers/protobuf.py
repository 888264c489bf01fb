"""Protocol buffer wire format, decoded without the protobuf package: just enough for the messages
the readers need (tensor bundle entries, and whatever else a reader decodes field by field).

https://protobuf.dev/programming-guides/encoding/: a message is a run of (tag, value) fields,
tag = field number << 3 | wire type; varints are little-endian base-128.
"""

from __future__ import annotations

__all__ = ["Malformed", "as_bytes", "as_int", "fields", "varint"]


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
