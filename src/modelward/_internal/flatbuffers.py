"""A bounded, read-only FlatBuffers reader over a ``memoryview``.

TFLite models are FlatBuffers: tables located through unsigned forward offsets, each with
a vtable (reached by a signed offset) giving its fields' positions. Generated accessors
trust every offset; this reader checks each one against the buffer (tables, vtables,
vectors, strings), counts the elements it hands out against a budget, and reads nothing
but what the caller asks for by field index, so a hostile file yields `FormatError`, not
an out-of-bounds read or a hang. Tables are reached by a fixed schema walk from the root,
so offset cycles cannot make it loop.

Spec: https://flatbuffers.dev/internals/
"""

from __future__ import annotations

import struct
from typing import Final

from modelward.errors import FormatError, ResourceLimitError

__all__ = ["Budget", "Table", "root_table"]

_U32: Final = struct.Struct("<I")
_I32: Final = struct.Struct("<i")
_U16: Final = struct.Struct("<H")


class Budget:
    """How many tables and vector elements a walk may visit."""

    __slots__ = ("left",)

    def __init__(self, items: int) -> None:
        self.left = items

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise ResourceLimitError("flatbuffer has more tables or elements than the budget")


def _need(buf: memoryview, pos: int, n: int, what: str) -> None:
    if pos < 0 or n < 0 or pos + n > len(buf):
        raise FormatError(f"flatbuffer {what} out of bounds", offset=max(pos, 0))


class Table:
    """One table: field access by vtable index, every offset checked.

    Args:
        buf: the whole buffer.
        pos: where the table starts (its soffset to the vtable).
        budget: shared element budget.
    """

    __slots__ = ("budget", "buf", "object_size", "pos", "vtable", "vtable_size")

    def __init__(self, buf: memoryview, pos: int, budget: Budget) -> None:
        budget.spend(1)
        _need(buf, pos, 4, "table")
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        _need(buf, vtable, 4, "vtable")
        vsize, osize = _U16.unpack_from(buf, vtable)[0], _U16.unpack_from(buf, vtable + 2)[0]
        if vsize < 4 or vsize % 2:
            raise FormatError("flatbuffer vtable has a bad size", offset=vtable)
        _need(buf, vtable, vsize, "vtable")
        _need(buf, pos, max(osize, 4), "table body")
        self.buf, self.pos, self.budget = buf, pos, budget
        self.vtable, self.vtable_size, self.object_size = vtable, vsize, osize

    def _field(self, index: int) -> int:
        """Absolute position of field `index`, or 0 when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_size:
            return 0
        rel = _U16.unpack_from(self.buf, self.vtable + slot)[0]
        if rel == 0:
            return 0
        rel = int(rel)
        if rel >= max(self.object_size, 4):
            raise FormatError("flatbuffer field lies outside its table", offset=self.pos)
        return self.pos + rel

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        """A scalar field (struct format such as ``"<I"``, ``"<b"``, ``"<Q"``)."""
        at = self._field(index)
        if not at:
            return default
        size = struct.calcsize(fmt)
        _need(self.buf, at, size, "scalar")
        value: int = struct.unpack_from(fmt, self.buf, at)[0]
        return value

    def _indirect(self, index: int) -> int | None:
        at = self._field(index)
        if not at:
            return None
        _need(self.buf, at, 4, "offset")
        target = at + int(_U32.unpack_from(self.buf, at)[0])
        _need(self.buf, target, 4, "offset target")
        return target

    def table(self, index: int) -> Table | None:
        target = self._indirect(index)
        return None if target is None else Table(self.buf, target, self.budget)

    def vector(self, index: int, elem_size: int) -> tuple[int, int] | None:
        """(start of elements, count) of a vector field, bounds-checked."""
        target = self._indirect(index)
        if target is None:
            return None
        count = _U32.unpack_from(self.buf, target)[0]
        _need(self.buf, target + 4, count * elem_size, "vector")
        return target + 4, count

    def tables(self, index: int, limit: int) -> list[Table]:
        """The tables of a vector-of-tables field (at most `limit`)."""
        vec = self.vector(index, 4)
        if vec is None:
            return []
        start, count = vec
        if count > limit:
            raise ResourceLimitError(f"flatbuffer vector of {count} tables exceeds {limit}",
                                     offset=start)
        self.budget.spend(count)
        out = []
        for i in range(count):
            at = start + 4 * i
            out.append(Table(self.buf, at + _U32.unpack_from(self.buf, at)[0], self.budget))
        return out

    def uints(self, index: int, limit: int) -> list[int]:
        """A vector of uint32/int32 as unsigned ints (at most `limit`)."""
        vec = self.vector(index, 4)
        if vec is None:
            return []
        start, count = vec
        if count > limit:
            raise ResourceLimitError(f"flatbuffer vector of {count} ints exceeds {limit}",
                                     offset=start)
        self.budget.spend(count)
        return [_U32.unpack_from(self.buf, start + 4 * i)[0] for i in range(count)]

    def string(self, index: int, limit: int = 4096) -> str | None:
        """A string field, decoded leniently and cut at `limit` bytes."""
        vec = self.vector(index, 1)
        if vec is None:
            return None
        start, count = vec
        return bytes(self.buf[start : start + min(count, limit)]).decode("utf-8", "replace")


def root_table(buf: memoryview, budget: Budget) -> Table:
    """The root table (uoffset at byte 0).

    Raises:
        FormatError: the offset or the table is out of bounds.
    """
    _need(buf, 0, 8, "header")
    return Table(buf, _U32.unpack_from(buf, 0)[0], budget)
