"""Opcodes that push plain values: numbers, strings, bytes, buffers.

Split out of `machine` (which runs the loop; `structure` holds the stack and container
opcodes, `stream` the readers of opcode arguments) because these are
the opcodes where a pickle's bulk lives: their arguments are skipped by length and kept as
a prefix (`Blob`), never copied whole, which is what makes the machine fast on big files.
Semantics follow CPython's ``pickle._Unpickler`` (Lib/pickle.py) opcode by opcode.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from functools import lru_cache
from struct import Struct, unpack_from
from typing import Final

from modelward.pickle_analysis.stream import Halt, Malformed, Stopped, Stream
from modelward.pickle_analysis.symbols import HEAD, SMALL, Blob, Opaque

__all__ = ["Halt", "Malformed", "Stopped", "ValueOps", "c_long", "c_strtol_int"]

#: Runs of one fixed-width number opcode (what a pickled list of numbers is, between two
#: APPENDS) are decoded by one regex match and one struct call: same values, same stack,
#: a tenth of the time. Capped at the pickler's batch size.
MAX_RUN: Final = 1000
_RUNS: Final = {
    code: (re.compile(b"(?:%s[\\x00-\\xff]{%d}){2,%d}"
                      % (re.escape(bytes([code])), width, MAX_RUN)), width, fmt)
    for code, width, fmt in ((ord("G"), 8, ">xd"), (ord("J"), 4, "<xi"), (ord("M"), 2, "<xH"),
                             (ord("K"), 1, "<xB"))
}


@lru_cache(maxsize=64)
def _run_struct(fmt: str, count: int) -> Struct:
    return Struct(fmt[0] + fmt[1:] * count)

# Protocol-0 number parsing. ``pickle.load`` is the C unpickler (Modules/_pickle.c), which
# parses NUL-terminated C strings: INT uses ``strtol(s, &end, 0)`` (so ``010`` is octal 8)
# and accepts a NUL where the newline should be; LONG, GET and PUT use PyLong_FromString,
# which also stops at a NUL; FLOAT uses ``PyOS_string_to_double`` on a prefix ending at a
# NUL or the newline. ``pickle._Unpickler`` (joblib's base class) uses ``int()``/``float()``.
# The machine accepts what EITHER accepts: stopping where a real loader goes on would hide
# every opcode after it.
_STRTOL: Final = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD: Final = re.compile(
    rb"[+-]?(?:inf(?:inity)?|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.I)
_LONG_MIN: Final = -(1 << 63)
_LONG_MAX: Final = (1 << 63) - 1


def c_long(line: bytes, base: int) -> int:
    """``PyLong_FromString(line, NULL, base)`` on a NUL-terminated buffer (ValueError if bad)."""
    return int(line.split(b"\0", 1)[0], base)


def c_strtol_int(line: bytes) -> int | bool:
    """What the C unpickler's INT opcode makes of `line` (without its newline)."""
    match = _STRTOL.match(line)
    if match is None:
        end, value = 0, 0
    else:
        digits = match.group(2)
        value = int(digits, 16) if digits[:2] in (b"0x", b"0X") else \
            int(digits, 8) if digits[:1] == b"0" else int(digits)
        value = -value if match.group(1) == b"-" else value
        end = match.end()
    if _LONG_MIN <= value <= _LONG_MAX and (end == len(line) or line[end] == 0):
        return bool(value) if len(line) == 2 and value in (0, 1) else value
    return c_long(line, 0)  # the C code's fallback for what strtol rejects


def _c_float(line: bytes) -> float:
    match = _STRTOD.match(line)
    if match is None or not (match.end() == len(line) or line[match.end()] == 0):
        raise ValueError("could not convert string to float")
    return float(match.group(0))


def _decode_prefix(line: bytes, decode: Callable[[bytes], str]) -> str:
    """Decode the kept prefix of an over-long text argument.

    The cut may fall inside an escape (``\\x4`` of ``\\x41``, a lone trailing backslash):
    decode up to the last backslash instead, so the cut never looks like an error the
    loader would raise (it reads the whole line).
    """
    try:
        return decode(line)
    except ValueError:
        cut = line.rfind(b"\\", max(0, len(line) - 16))
        return decode(line[:cut]) if cut >= 0 else decode(line)


class ValueOps(Stream):
    """Opcode family of `Machine`: the value-pushing opcodes and their argument readers."""

    #: Whether number runs may be decoded in one step (off while tracing every opcode).
    batch: bool = False
    #: `batched_ops` at which the budgets are checked next (the loop counts dispatches).
    batched_check: int = 1 << 14

    def _number_run(self, pos: int) -> int:
        """Push a run of identical number opcodes starting at `pos`; 0 if there is none."""
        code = self.data[pos]
        pattern, width, fmt = _RUNS[code]
        frame_end = getattr(self, "frame_end", -1)  # a run never crosses a FRAME's end
        match = pattern.match(self.data, pos, frame_end if pos < frame_end else self.end)
        if match is None:
            return 0
        end = match.end()
        count = (end - pos) // (width + 1)
        self.stack.extend(_run_struct(fmt, count).unpack_from(self.data, pos))
        self.batched_ops += count - 1
        if self.batched_ops >= self.batched_check:
            self.batched_check = self.batched_ops + (1 << 14)
            self._checkpoint(0, self.limits.max_pickle_ops)
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
        try:
            value: int | bool = c_strtol_int(line)
        except ValueError:
            value = int(line, 0)  # pickle._Unpickler (joblib) is the only other reader
        self.stack.append(value)
        return pos

    def op_binint(self, pos: int) -> int:
        if self.batch:
            end = self._number_run(pos - 1)
            if end:
                return end
        self.stack.append(unpack_from("<i", self.data, pos)[0])
        return pos + 4

    def op_binint1(self, pos: int) -> int:
        if self.batch:
            end = self._number_run(pos - 1)
            if end:
                return end
        self.stack.append(self.data[pos])
        return pos + 1

    def op_binint2(self, pos: int) -> int:
        if self.batch:
            end = self._number_run(pos - 1)
            if end:
                return end
        self.stack.append(unpack_from("<H", self.data, pos)[0])
        return pos + 2

    def op_long(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        if line.endswith(b"L"):
            line = line[:-1]
        try:
            self.stack.append(int(line, 0))
        except ValueError:
            self.stack.append(c_long(line, 0))
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
        try:
            self.stack.append(float(line))
        except ValueError:
            self.stack.append(_c_float(line))
        return pos

    def op_binfloat(self, pos: int) -> int:
        if self.batch:
            end = self._number_run(pos - 1)
            if end:
                return end
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
        if complete:
            text = codecs.escape_decode(line)[0].decode("latin-1")
        else:
            text = _decode_prefix(line, lambda b: codecs.escape_decode(b)[0].decode("latin-1"))
        self._push_text(text, complete)
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
        complete = length == len(line)
        if complete:
            self._push_text(str(line, "raw-unicode-escape"), True)
        else:
            self._push_text(_decode_prefix(line, lambda b: str(b, "raw-unicode-escape")), False)
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
