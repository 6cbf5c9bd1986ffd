"""Opcodes that shape the stack: marks, tuples, lists, dicts, sets and the memo.

They move values around without importing or calling anything, so this opcode family of
`Machine` never reaches the data-flow layer; the opcodes that mutate a container which may
not be a plain one (APPEND, SETITEM, ADDITEMS: a method call on an object) stay in
`machine`. Semantics follow CPython's ``pickle._Unpickler`` (Lib/pickle.py): the mark
stack is its ``metastack``.
"""

from __future__ import annotations

from struct import unpack_from
from typing import Final

from modelward.errors import ResourceLimitError
from modelward.pickle_analysis.stream import Malformed, Stream
from modelward.pickle_analysis.symbols import KEEP_ITEMS, DictSym, ListSym, Opaque, SetSym, Value
from modelward.pickle_analysis.values import c_long

__all__ = ["MAX_TUPLE", "StructureOps"]

#: Longest tuple kept whole; longer ones keep their first `KEEP_ITEMS` items.
MAX_TUPLE: Final = 1 << 16


class StructureOps(Stream):
    """Opcode family of `Machine`: stack, mark, container-building and memo opcodes."""

    #: Stacks saved by MARK, innermost last.
    metastack: list[list[Value]]

    def _pop_mark(self) -> list[Value]:
        items = self.stack
        if not self.metastack:
            raise Malformed(f"{self._opname()} without a MARK")
        self.stack = self.metastack.pop()
        return items

    def _memo_get(self, index: int) -> None:
        try:
            self.stack.append(self.memo[index])
        except KeyError:
            raise Malformed(f"memo value not found at index {index}") from None

    def _memo_full(self) -> ResourceLimitError:
        limit = self.limits.max_pickle_memo
        return ResourceLimitError(
            f"the pickle memoizes more than {limit} values; the rest was not analysed",
            hint="raise [tool.modelward.limits] max-pickle-memo if the file is trusted to be "
            "that large (each entry costs about 150 bytes of memory)",
        )

    def _put(self, index: int) -> None:
        if index < 0:
            raise Malformed("negative PUT argument")
        memo = self.memo
        if len(memo) >= self.limits.max_pickle_memo and index not in memo:
            raise self._memo_full()
        memo[index] = self.stack[-1]

    def op_mark(self, pos: int) -> int:
        self.metastack.append(self.stack)
        self.stack = []
        if len(self.metastack) > self.limits.max_pickle_depth:
            raise ResourceLimitError(f"more than {self.limits.max_pickle_depth} nested MARKs")
        return pos

    def op_pop(self, pos: int) -> int:
        if self.stack:
            del self.stack[-1]
        else:
            self._pop_mark()
        return pos

    def op_pop_mark(self, pos: int) -> int:
        self._pop_mark()
        return pos

    def op_dup(self, pos: int) -> int:
        self.stack.append(self.stack[-1])
        return pos

    def op_empty_tuple(self, pos: int) -> int:
        self.stack.append(())
        return pos

    def op_tuple(self, pos: int) -> int:
        items = self._pop_mark()
        if len(items) > MAX_TUPLE:
            # Memory bound: huge tuples are data, never call arguments that matter.
            items = [*items[:KEEP_ITEMS], Opaque(f"{len(items) - KEEP_ITEMS} more items")]
        self.stack.append(tuple(items))
        return pos

    def op_tuple1(self, pos: int) -> int:
        self.stack[-1] = (self.stack[-1],)
        return pos

    def op_tuple2(self, pos: int) -> int:
        stack = self.stack
        if len(stack) < 2:
            raise IndexError
        stack[-2:] = [(stack[-2], stack[-1])]
        return pos

    def op_tuple3(self, pos: int) -> int:
        stack = self.stack
        if len(stack) < 3:
            raise IndexError
        stack[-3:] = [(stack[-3], stack[-2], stack[-1])]
        return pos

    def op_empty_list(self, pos: int) -> int:
        self.stack.append(ListSym())
        return pos

    def op_list(self, pos: int) -> int:
        items = self._pop_mark()
        self.stack.append(ListSym(items))
        return pos

    def op_empty_dict(self, pos: int) -> int:
        self.stack.append(DictSym())
        return pos

    def op_dict(self, pos: int) -> int:
        items = self._pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for DICT")
        d = DictSym()
        for i in range(0, len(items), 2):
            d.set(items[i], items[i + 1])
        self.stack.append(d)
        return pos

    def op_empty_set(self, pos: int) -> int:
        self.stack.append(SetSym())
        return pos

    def op_frozenset(self, pos: int) -> int:
        items = self._pop_mark()
        self.stack.append(SetSym(items, frozen=True))
        return pos

    def op_get(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        self._memo_get(c_long(line, 10))  # the C unpickler stops at a NUL, int() does not
        return pos

    def op_binget(self, pos: int) -> int:
        self._memo_get(self.data[pos])
        return pos + 1

    def op_long_binget(self, pos: int) -> int:
        self._memo_get(unpack_from("<I", self.data, pos)[0])
        return pos + 4

    def op_put(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        self._put(c_long(line, 10))
        return pos

    def op_binput(self, pos: int) -> int:
        self._put(self.data[pos])
        return pos + 1

    def op_long_binput(self, pos: int) -> int:
        self._put(unpack_from("<I", self.data, pos)[0])
        return pos + 4

    def op_memoize(self, pos: int) -> int:
        memo = self.memo
        size = len(memo)
        if size >= self.limits.max_pickle_memo:
            raise self._memo_full()
        memo[size] = self.stack[-1]
        return pos
