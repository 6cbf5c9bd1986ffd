"""A bounded reader for the one FlexBuffer shape TFLite Flex ops carry.

A TFLite "Flex" operator (select TF ops) stores the TensorFlow op it runs in its
``custom_options``: a FlexBuffer vector ``[op name, serialized NodeDef]``. The delegate
builds and runs the kernel of the NodeDef's ``op``, not of the operator-code name, so the
scanner must read those bytes. FlexBuffers are schemaless and self-describing: the root
sits at the end of the buffer (last byte: root byte width; the byte before: its packed
type; before that: the root value), offsets point backwards, and each vector stores its
length just before its elements and one packed-type byte per element after them. Only
strings, blobs and the vector holding them are decoded here; every offset and size is
checked against the buffer, so hostile bytes give `FormatError`, never an out-of-bounds
read.

Spec: https://flatbuffers.dev/internals/#flexbuffers
"""

from __future__ import annotations

from typing import Final

from modelward.errors import FormatError, ResourceLimitError

__all__ = ["string_vector"]

_STRING: Final = 5
_VECTOR: Final = 10
_VECTOR_STRING_DEPRECATED: Final = 15
_BLOB: Final = 25
_WIDTHS: Final = (1, 2, 4, 8)


def _uint(buf: memoryview, pos: int, width: int) -> int:
    if pos < 0 or width not in _WIDTHS or pos + width > len(buf):
        raise FormatError("flexbuffer value out of bounds", offset=max(pos, 0))
    return int.from_bytes(buf[pos : pos + width], "little")


def _back(buf: memoryview, pos: int, width: int) -> int:
    """Follow the backward offset stored at `pos` (`width` bytes wide)."""
    target = pos - _uint(buf, pos, width)
    if target < 0 or target >= len(buf):
        raise FormatError("flexbuffer offset points outside the buffer", offset=pos)
    return target


def _sized(buf: memoryview, at: int, width: int, limit: int) -> bytes:
    """The bytes of a string or blob whose size prefix sits `width` bytes before `at`."""
    size = _uint(buf, at - width, width)
    if at + size > len(buf):
        raise FormatError("flexbuffer string runs past the buffer", offset=at)
    if size > limit:
        raise ResourceLimitError(f"flexbuffer string of {size} bytes exceeds {limit}", offset=at)
    return bytes(buf[at : at + size])


def string_vector(data: bytes | memoryview, max_items: int = 16,
                  max_bytes: int = 1 << 20) -> list[bytes | None]:
    """Elements of a root FlexBuffer vector: string/blob bytes, None for anything else.

    Args:
        data: the whole FlexBuffer.
        max_items: most elements read (the rest are ignored).
        max_bytes: largest string or blob accepted.

    Raises:
        FormatError: the root is not a vector of typed elements, or an offset or size is
            out of bounds.
        ResourceLimitError: a string is larger than `max_bytes`.
    """
    buf = memoryview(data)
    if len(buf) < 3:
        raise FormatError("flexbuffer shorter than its root")
    root_width = buf[-1]
    packed = buf[-2]
    root_type, child_width = packed >> 2, 1 << (packed & 3)
    if root_width not in _WIDTHS:
        raise FormatError(f"flexbuffer root width {root_width}", offset=len(buf) - 1)
    if root_type not in (_VECTOR, _VECTOR_STRING_DEPRECATED):
        raise FormatError(f"flexbuffer root has type {root_type}, not a vector",
                          offset=len(buf) - 2)
    root_pos = len(buf) - 2 - root_width
    vector = _back(buf, root_pos, root_width)
    count = _uint(buf, vector - child_width, child_width)
    items: list[bytes | None] = []
    if root_type == _VECTOR_STRING_DEPRECATED:
        types = [(_STRING, child_width)] * min(count, max_items)
    else:
        type_base = vector + count * child_width
        if count > len(buf) or type_base + count > len(buf):
            raise FormatError("flexbuffer vector runs past the buffer", offset=vector)
        types = [(buf[type_base + i] >> 2, 1 << (buf[type_base + i] & 3))
                 for i in range(min(count, max_items))]
    for i, (elem_type, elem_width) in enumerate(types):
        slot = vector + i * child_width
        if elem_type in (_STRING, _BLOB):  # offset: the vector's width; size: the element's
            items.append(_sized(buf, _back(buf, slot, child_width), elem_width, max_bytes))
        else:
            _uint(buf, slot, child_width)
            items.append(None)
    return items
