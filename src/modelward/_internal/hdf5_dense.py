"""HDF5 dense attribute storage: the fractal heap and the v2 B-tree name index.

An object header switches to dense attribute storage when it holds many attributes (more
than 8 by default once ``libver`` allows the 1.8 format): the attribute messages then live
as objects of a *fractal heap*, and a *version 2 B-tree* (record type 8) lists the heap IDs
of those messages by name hash. h5py and Keras read such attributes transparently, so a
scanner that cannot follow them would have to fall back to a byte search that attackers can
dodge (reordered JSON keys, ``\\u`` escapes). This module follows exactly that path:
B-tree header, internal and leaf nodes, then heap IDs resolved through the heap's doubling
table (root direct block, or indirect blocks of direct blocks), plus huge objects found
through the heap's own type 1 B-tree. It does not undo I/O filters (a filtered heap is
reported as unsupported). Every address is bounds-checked, every node is visited once and
every loop is bounded.

Spec: https://docs.hdfgroup.org/hdf5/develop/_f_m_t3.html (III.G fractal heap, III.A.2 v2
B-trees, IV.A.2.v attribute info message).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Final, Protocol

from modelward.errors import FormatError

__all__ = ["dense_attribute_messages"]

_MAX_RECORDS: Final = 200_000
_MAX_NODES: Final = 100_000
_MAX_DEPTH: Final = 64
_PREFIX: Final = 10  # v2 B-tree node: signature, version, type, checksum


class _Reader(Protocol):
    """What is needed of `modelward._internal.hdf5._Reader`."""

    buf: memoryview
    offsets: int
    lengths: int
    undefined: int

    def need(self, pos: int, n: int) -> None: ...
    def uint(self, pos: int, n: int) -> int: ...
    def addr(self, value: int) -> int: ...


def _enc_size(value: int) -> int:
    """Bytes HDF5 uses to encode numbers up to `value` (``H5VM_limit_enc_size``)."""
    return (max(value, 1).bit_length() - 1) // 8 + 1


def _signature(r: _Reader, pos: int, sig: bytes) -> None:
    r.need(pos, 6)
    if bytes(r.buf[pos : pos + 4]) != sig:
        raise FormatError(f"bad {sig.decode()} signature", offset=pos)


def _btree_records(r: _Reader, header: int, want_type: int) -> Iterator[memoryview]:
    """Every record of the v2 B-tree whose header is at `header` (absolute)."""
    _signature(r, header, b"BTHD")
    kind = r.buf[header + 5]
    if kind != want_type:
        raise FormatError(f"v2 B-tree of type {kind}, expected {want_type}", offset=header)
    node_size = r.uint(header + 6, 4)
    rec_size = r.uint(header + 10, 2)
    depth = r.uint(header + 12, 2)
    pos = header + 16
    root = r.uint(pos, r.offsets)
    root_count = r.uint(pos + r.offsets, 2)
    if rec_size == 0 or node_size <= _PREFIX or depth > _MAX_DEPTH:
        raise FormatError("bad v2 B-tree parameters", offset=header)
    if root == r.undefined or root_count == 0:
        return
    # Widths of the child record counts, as H5B2 computes them from the node size.
    max_leaf = (node_size - _PREFIX) // rec_size
    nrec_size = _enc_size(max_leaf)
    cum_max = [max_leaf]
    cum_size = [0]
    for level in range(1, depth + 1):
        ptr = r.offsets + nrec_size + (cum_size[level - 1] if level > 1 else 0)
        max_int = (node_size - _PREFIX - ptr) // (rec_size + ptr)
        if max_int <= 0:
            raise FormatError("v2 B-tree nodes too small for their pointers", offset=header)
        cum_max.append((max_int + 1) * cum_max[level - 1] + max_int)
        cum_size.append(_enc_size(cum_max[level]))
    stack = [(r.addr(root), root_count, depth)]
    seen: set[int] = set()
    total = 0
    while stack:
        node, count, level = stack.pop()
        if node in seen or len(seen) >= _MAX_NODES:
            raise FormatError("v2 B-tree revisits a node or has too many", offset=node)
        seen.add(node)
        _signature(r, node, b"BTLF" if level == 0 else b"BTIN")
        if r.buf[node + 5] != want_type:
            raise FormatError("v2 B-tree node of the wrong type", offset=node)
        pos = node + 6
        r.need(pos, count * rec_size)
        total += count
        if total > _MAX_RECORDS:
            raise FormatError("v2 B-tree has too many records", offset=node)
        for i in range(count):
            yield r.buf[pos + i * rec_size : pos + (i + 1) * rec_size]
        if level == 0:
            continue
        pos += count * rec_size
        extra = cum_size[level - 1] if level > 1 else 0
        for _ in range(count + 1):
            child = r.uint(pos, r.offsets)
            child_count = r.uint(pos + r.offsets, nrec_size)
            pos += r.offsets + nrec_size + extra
            stack.append((r.addr(child), child_count, level - 1))


class _FractalHeap:
    """Managed and huge objects of one fractal heap (no I/O filters)."""

    def __init__(self, r: _Reader, header: int) -> None:
        self.r = r
        _signature(r, header, b"FRHP")
        o, n = r.offsets, r.lengths
        pos = header + 5
        self.id_len = r.uint(pos, 2)
        filters = r.uint(pos + 2, 2)
        self.flags = r.buf[pos + 4]
        pos += 5 + 4  # flags, max managed object size
        pos += n  # next huge object id
        self.huge_btree = r.uint(pos, o)
        pos += o + n + o + n + n + n + n + n + n + n + n  # free space .. tiny count
        self.width = r.uint(pos, 2)
        self.start_block = r.uint(pos + 2, n)
        self.max_direct = r.uint(pos + 2 + n, n)
        max_heap_bits = r.uint(pos + 2 + 2 * n, 2)
        pos += 2 + 2 * n + 2 + 2
        self.root = r.uint(pos, o)
        self.root_rows = r.uint(pos + o, 2)
        if filters:
            raise FormatError("fractal heap uses I/O filters (not followed)", offset=header)
        if (self.width == 0 or self.width > 65536 or self.start_block == 0
                or self.start_block & (self.start_block - 1)
                or self.max_direct < self.start_block
                or self.max_direct & (self.max_direct - 1) or not 0 < max_heap_bits <= 64):
            raise FormatError("bad fractal heap doubling table", offset=header)
        self.off_size = (max_heap_bits + 7) // 8
        self.len_size = min(_enc_size(self.max_direct), _enc_size(r.uint(header + 10, 4)))
        self.header = header
        self.max_direct_rows = (self.max_direct.bit_length() - self.start_block.bit_length()) + 2
        self._blocks: list[tuple[int, int, int]] | None = None  # (heap offset, size, address)
        self._huge: dict[int, tuple[int, int]] | None = None  # id -> (address, length)

    def _row_size(self, row: int) -> int:
        return self.start_block if row == 0 else self.start_block << (row - 1)

    def _direct_blocks(self) -> list[tuple[int, int, int]]:
        if self._blocks is not None:
            return self._blocks
        r = self.r
        blocks: list[tuple[int, int, int]] = []
        if self.root == r.undefined:
            self._blocks = blocks
            return blocks
        if self.root_rows == 0:
            blocks.append((0, self.start_block, r.addr(self.root)))
            self._blocks = blocks
            return blocks
        stack = [(r.addr(self.root), self.root_rows, 0)]
        seen: set[int] = set()
        while stack:
            block, rows, depth = stack.pop()
            if block in seen or len(seen) >= _MAX_NODES or depth > _MAX_DEPTH or rows > 64:
                raise FormatError("fractal heap indirect blocks loop or nest too deeply",
                                  offset=block)
            seen.add(block)
            _signature(r, block, b"FHIB")
            pos = block + 5 + r.offsets
            base = r.uint(pos, self.off_size)
            pos += self.off_size
            offset = base
            for row in range(rows):
                size = self._row_size(row)
                for _ in range(self.width):
                    child = r.uint(pos, r.offsets)
                    pos += r.offsets
                    if child != r.undefined:
                        if row < self.max_direct_rows:
                            blocks.append((offset, size, r.addr(child)))
                        else:
                            child_rows = (size.bit_length()
                                          - (self.start_block * self.width).bit_length()) + 1
                            stack.append((r.addr(child), child_rows, depth + 1))
                    offset += size
                    if len(blocks) > _MAX_NODES:
                        raise FormatError("fractal heap has too many blocks", offset=block)
        blocks.sort()
        self._blocks = blocks
        return blocks

    def managed(self, offset: int, length: int) -> tuple[int, int]:
        """File position and length of the managed object at heap `offset`."""
        blocks = self._direct_blocks()
        i = bisect.bisect_right(blocks, (offset, 1 << 64, 0)) - 1
        if i >= 0:
            start, size, address = blocks[i]
            if start <= offset < start + size:
                if offset + length > start + size:
                    raise FormatError("fractal heap object overruns its block", offset=address)
                _signature(self.r, address, b"FHDB")
                at = address + (offset - start)
                self.r.need(at, length)
                return at, length
        raise FormatError(f"fractal heap offset {offset} is in no direct block",
                          offset=self.header)

    def huge(self, key: int) -> tuple[int, int]:
        """File position and length of huge object `key` (found through the type 1 B-tree)."""
        r = self.r
        if self.huge_btree == r.undefined:
            raise FormatError("huge object without a huge-object B-tree", offset=self.header)
        if self._huge is None:
            o, n = r.offsets, r.lengths
            self._huge = {}
            for rec in _btree_records(r, r.addr(self.huge_btree), 1):
                self._huge[int.from_bytes(rec[o + n : o + 2 * n], "little")] = (
                    r.addr(int.from_bytes(rec[:o], "little")),
                    int.from_bytes(rec[o : o + n], "little"))
        found = self._huge.get(key)
        if found is None:
            raise FormatError(f"huge object {key} not in its B-tree", offset=self.header)
        r.need(*found)
        return found

    def get(self, heap_id: memoryview) -> tuple[int, int]:
        """Resolve one heap ID (managed or huge; tiny objects are never attributes)."""
        kind = (heap_id[0] >> 4) & 0x3
        if kind == 0:
            p = 1 + self.off_size
            offset = int.from_bytes(heap_id[1:p], "little")
            length = int.from_bytes(heap_id[p : p + self.len_size], "little")
            return self.managed(offset, length)
        if kind == 1:
            return self.huge(int.from_bytes(heap_id[1:], "little"))
        raise FormatError(f"fractal heap ID of type {kind} not followed", offset=self.header)


def dense_attribute_messages(
    r: _Reader, heap_address: int, name_index: int,
    deadline: Callable[[], None] | None = None,
) -> Iterator[tuple[memoryview, int]]:
    """Attribute messages kept in dense storage, with the file offset of each.

    Args:
        r: the HDF5 reader.
        heap_address: fractal heap address from the attribute info message (relative).
        name_index: address of the name-index v2 B-tree (relative).
        deadline: called every few records, may raise to stop.

    Raises:
        FormatError: a structure on the path is malformed or not supported.
    """
    heap = _FractalHeap(r, r.addr(heap_address))
    if name_index == r.undefined:
        return
    for i, rec in enumerate(_btree_records(r, r.addr(name_index), 8)):
        if deadline is not None and not i & 0xFF:
            deadline()
        at, length = heap.get(rec[:8])  # record: 8-byte heap ID, flags, order, hash
        yield r.buf[at : at + length], at

