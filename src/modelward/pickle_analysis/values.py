"""Opcodes that push plain values: numbers, strings, bytes, buffers, and their readers.

Split out of `machine` (which runs the loop and the structural opcodes) because these are
the opcodes where a pickle's bulk lives: their arguments are skipped by length and kept as
a prefix (`Blob`), never copied whole, which is what makes the machine fast on big files.
Semantics follow CPython's ``pickle._Unpickler`` (Lib/pickle.py) opcode by opcode.
"""

from __future__ import annotations

import codecs
from struct import unpack_from
from typing import Final

from modelward.pickle_analysis.symbols import HEAD, SMALL, Blob, Opaque, Value

__all__ = ["Halt", "Malformed", "Stopped", "ValueOps"]

#: Longest protocol-0 text argument decoded whole; longer ones keep a prefix only.
MAX_TEXT_LINE: Final = 1 << 20

class Malformed(Exception):
    """The stream breaks the VM's rules here; a real loader raises at this opcode."""


class Halt(Exception):
    """Stop executing without a further finding (already reported)."""


class Stopped(Exception):
    """STOP was reached."""



class ValueOps:
    """Mixin of `Machine`: readers of opcode arguments and the value-pushing opcodes."""

    data: memoryview
    end: int
    stack: list[Value]

    def _opname(self) -> str:
        raise NotImplementedError  # provided by Machine

    def _line(self, pos: int) -> tuple[bytes, int, int]:
        """The text line at `pos`: (up to MAX_TEXT_LINE bytes of it, its length, next pos)."""
        data = self.data
        step = 128
        i = pos
        end = self.end
        while i < end:
            chunk = bytes(data[i : i + step])
            j = chunk.find(b"\n")
            if j >= 0:
                nl = i + j
                length = nl - pos
                keep = bytes(data[pos : pos + min(length, MAX_TEXT_LINE)])
                return keep, length, nl + 1
            i += len(chunk)
            step = min(step * 4, 1 << 20)
        raise Malformed(f"truncated pickle: {self._opname()} line has no newline")

    def _small_line(self, pos: int) -> tuple[bytes, int]:
        line, length, pos = self._line(pos)
        if length > len(line):
            raise Malformed(f"{self._opname()} argument longer than {MAX_TEXT_LINE} bytes")
        return line, pos

    def _span(self, pos: int, length: int) -> int:
        end = pos + length
        if length < 0 or end > self.end:
            raise Malformed(f"truncated pickle: {self._opname()} needs {length} bytes, "
                            f"{max(0, self.end - pos)} left")
        return end

    def _push_bytes(self, pos: int, length: int, kind: str) -> int:
        end = self._span(pos, length)
        if length <= SMALL:
            self.stack.append(bytes(self.data[pos:end]))
        else:
            self.stack.append(Blob(kind, bytes(self.data[pos : pos + HEAD]), length, pos))
        return end

    def _push_utf8(self, pos: int, length: int) -> int:
        end = self._span(pos, length)
        if length <= SMALL:
            self.stack.append(str(self.data[pos:end], "utf-8", "surrogatepass"))
        else:
            head = bytes(self.data[pos : pos + HEAD]).decode("utf-8", "ignore")
            self.stack.append(Blob("str", head, length, pos))
        return end

    def _push_text(self, value: str | bytes, complete: bool) -> None:
        if len(value) <= SMALL and complete:
            self.stack.append(value)
        else:
            kind = "str" if isinstance(value, str) else "bytes"
            full = value if complete else None
            self.stack.append(Blob(kind, value[:HEAD], len(value), None, full))

    def op_none(self, pos: int) -> int:
        self.stack.append(None)
        return pos

    def op_true(self, pos: int) -> int:
        self.stack.append(True)
        return pos

    def op_false(self, pos: int) -> int:
        self.stack.append(False)
        return pos

    def op_int(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        if line == b"00":
            self.stack.append(False)
        elif line == b"01":
            self.stack.append(True)
        else:
            self.stack.append(int(line, 0))
        return pos

    def op_binint(self, pos: int) -> int:
        self.stack.append(unpack_from("<i", self.data, pos)[0])
        return pos + 4

    def op_binint1(self, pos: int) -> int:
        self.stack.append(self.data[pos])
        return pos + 1

    def op_binint2(self, pos: int) -> int:
        self.stack.append(unpack_from("<H", self.data, pos)[0])
        return pos + 2

    def op_long(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        if line.endswith(b"L"):
            line = line[:-1]
        self.stack.append(int(line, 0))
        return pos

    def _push_long(self, pos: int, length: int) -> int:
        end = self._span(pos, length)
        if length <= 64:
            self.stack.append(int.from_bytes(self.data[pos:end], "little", signed=True))
        else:
            self.stack.append(Opaque(f"int of {length} bytes"))
        return end

    def op_long1(self, pos: int) -> int:
        return self._push_long(pos + 1, self.data[pos])

    def op_long4(self, pos: int) -> int:
        (length,) = unpack_from("<i", self.data, pos)
        if length < 0:
            raise Malformed("LONG pickle has negative byte count")
        return self._push_long(pos + 4, length)

    def op_float(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        self.stack.append(float(line))
        return pos

    def op_binfloat(self, pos: int) -> int:
        self.stack.append(unpack_from(">d", self.data, pos)[0])
        return pos + 8

    def op_string(self, pos: int) -> int:
        line, length, pos = self._line(pos)
        complete = length == len(line)
        if complete and len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
            line = line[1:-1]
        elif complete:
            raise Malformed("the STRING opcode argument must be quoted")
        else:
            line = line[1:]
        value = codecs.escape_decode(line)[0]
        self._push_text(value.decode("latin-1"), complete)
        return pos

    def op_binstring(self, pos: int) -> int:
        (length,) = unpack_from("<i", self.data, pos)
        if length < 0:
            raise Malformed("BINSTRING pickle has negative byte count")
        return self._push_latin1(pos + 4, length)

    def op_short_binstring(self, pos: int) -> int:
        return self._push_latin1(pos + 1, self.data[pos])

    def _push_latin1(self, pos: int, length: int) -> int:
        end = self._span(pos, length)
        if length <= SMALL:
            self.stack.append(str(self.data[pos:end], "latin-1"))
        else:
            self.stack.append(Blob("str", bytes(self.data[pos : pos + HEAD]).decode("latin-1"),
                                   length, pos))
        return end

    def op_unicode(self, pos: int) -> int:
        line, length, pos = self._line(pos)
        self._push_text(str(line, "raw-unicode-escape"), length == len(line))
        return pos

    def op_binunicode(self, pos: int) -> int:
        return self._push_utf8(pos + 4, unpack_from("<I", self.data, pos)[0])

    def op_binunicode8(self, pos: int) -> int:
        return self._push_utf8(pos + 8, unpack_from("<Q", self.data, pos)[0])

    def op_short_binunicode(self, pos: int) -> int:
        return self._push_utf8(pos + 1, self.data[pos])

    def op_binbytes(self, pos: int) -> int:
        return self._push_bytes(pos + 4, unpack_from("<I", self.data, pos)[0], "bytes")

    def op_binbytes8(self, pos: int) -> int:
        return self._push_bytes(pos + 8, unpack_from("<Q", self.data, pos)[0], "bytes")

    def op_short_binbytes(self, pos: int) -> int:
        return self._push_bytes(pos + 1, self.data[pos], "bytes")

    def op_bytearray8(self, pos: int) -> int:
        return self._push_bytes(pos + 8, unpack_from("<Q", self.data, pos)[0], "bytearray")

    def op_next_buffer(self, pos: int) -> int:
        self.stack.append(Opaque("out-of-band buffer"))
        return pos

    def op_readonly_buffer(self, pos: int) -> int:
        self.stack[-1]
        return pos
