"""A bounded, zero-copy reader of the protobuf wire format.

ONNX models and TensorFlow graphs are protobufs. Decoding them with the generated classes
copies every tensor into memory and trusts the input's sizes; this reader walks the wire
format over a ``memoryview`` instead, yielding each field's number, wire type and value
(an int for varints and fixed-width fields, a zero-copy ``memoryview`` for length-delimited
ones), so a scanner can skip tensor payloads and recurse into sub-messages on its own terms.

Spec: https://protobuf.dev/programming-guides/encoding/
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, NamedTuple

from modelward.errors import FormatError

__all__ = [
    "I32", "I64", "LEN", "VARINT", "Field", "as_signed", "as_text", "decode_varint", "iter_fields",
    "packed_varints",
]

VARINT: Final = 0
I64: Final = 1
LEN: Final = 2
SGROUP: Final = 3
EGROUP: Final = 4
I32: Final = 5

_MAX_VARINT_BYTES: Final = 10


class Field(NamedTuple):
    """One field on the wire.

    Attributes:
        number: the field number.
        wire: the wire type (`VARINT`, `I64`, `LEN`, `I32`).
        value: an ``int`` (VARINT, I64, I32 as unsigned) or a ``memoryview`` (LEN).
        offset: where the field's tag starts, relative to the buffer given.
    """

    number: int
    wire: int
    value: int | memoryview
    offset: int


def decode_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; return (value, next position).

    Raises:
        FormatError: truncated or longer than ten bytes.
    """
    result = 0
    shift = 0
    end = len(buf)
    for i in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise FormatError("truncated varint", offset=pos)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        del i
    raise FormatError("varint longer than ten bytes", offset=pos)


def iter_fields(buf: memoryview, base: int = 0) -> Iterator[Field]:
    """Yield the fields of one message, in wire order.

    Args:
        buf: the message bytes (a slice; nothing is copied).
        base: offset of `buf` in the enclosing file, added to each field's `offset`.

    Raises:
        FormatError: malformed tag, truncated value, groups (deprecated, never in ONNX/TF).
    """
    pos = 0
    end = len(buf)
    while pos < end:
        start = pos
        tag, pos = decode_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise FormatError("field number 0", offset=base + start)
        if wire == VARINT:
            value, pos = decode_varint(buf, pos)
            yield Field(number, wire, value, base + start)
        elif wire == LEN:
            length, pos = decode_varint(buf, pos)
            if length > end - pos:
                raise FormatError(
                    f"field {number} claims {length} bytes, only {end - pos} remain",
                    offset=base + start,
                )
            yield Field(number, wire, buf[pos : pos + length], base + start)
            pos += length
        elif wire == I64:
            if pos + 8 > end:
                raise FormatError("truncated 64-bit field", offset=base + start)
            yield Field(number, wire, struct.unpack_from("<Q", buf, pos)[0], base + start)
            pos += 8
        elif wire == I32:
            if pos + 4 > end:
                raise FormatError("truncated 32-bit field", offset=base + start)
            yield Field(number, wire, struct.unpack_from("<I", buf, pos)[0], base + start)
            pos += 4
        else:
            raise FormatError(f"unsupported wire type {wire} (field {number})", offset=base + start)


def as_text(value: int | memoryview, limit: int = 1 << 20) -> str:
    """Decode a LEN field as UTF-8 (replacement characters for bad bytes), bounded.

    Raises:
        FormatError: the field is not length-delimited.
    """
    if not isinstance(value, memoryview):
        raise FormatError("expected a string field, got a number")
    return bytes(value[:limit]).decode("utf-8", errors="replace")


def as_signed(value: int) -> int:
    """Interpret a 64-bit varint as a two's-complement signed integer (int64 fields)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def packed_varints(value: int | memoryview, limit: int = 1 << 16) -> list[int]:
    """Decode a repeated varint field (packed or a single unpacked element), bounded.

    Raises:
        FormatError: malformed varints or more than `limit` elements.
    """
    if isinstance(value, int):
        return [value]
    out: list[int] = []
    pos = 0
    while pos < len(value):
        item, pos = decode_varint(value, pos)
        out.append(item)
        if len(out) > limit:
            raise FormatError(f"more than {limit} packed integers")
    return out
