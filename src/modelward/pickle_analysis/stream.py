"""What every opcode family of the symbolic pickle VM shares: the stream and its budgets.

The machine is assembled from opcode families (`values`, `structure`, the data-flow layer
and `machine` itself). They all read arguments from the same bytes, push onto the same
stack, name the opcode at fault in the same way and stop the run with the same exceptions;
that common ground lives here, so a family needs nothing from the class that combines them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from modelward.errors import ResourceLimitError
from modelward.pickle_analysis.opcodes import NAMES
from modelward.pickle_analysis.symbols import Value
from modelward.policy import Limits

if TYPE_CHECKING:
    from modelward.scanners.base import Artifact

__all__ = ["CHECK_EVERY", "MAX_LIVE", "MAX_TEXT_LINE", "Halt", "Malformed", "Stopped", "Stream"]

#: Opcodes between deadline / memory checks.
CHECK_EVERY: Final = 1 << 14
#: Stack plus memo entries the machine keeps alive before giving up (memory bound).
MAX_LIVE: Final = 4_000_000
#: Longest protocol-0 text argument decoded whole; longer ones keep a prefix only.
MAX_TEXT_LINE: Final = 1 << 20


class Malformed(Exception):
    """The stream breaks the VM's rules here; a real loader raises at this opcode."""


class Halt(Exception):
    """Stop executing without a further finding (already reported)."""


class Stopped(Exception):
    """STOP was reached."""


class Stream:
    """Base of the opcode families: the bytes, the stack and memo, the budgets.

    `Machine.__init__` sets every attribute declared here.
    """

    artifact: Artifact
    limits: Limits
    data: memoryview
    end: int
    op_pos: int
    stack: list[Value]
    memo: dict[int, Value]
    #: Opcodes executed inside batched number runs beyond the one the dispatch loop counted.
    batched_ops: int = 0

    def _checkpoint(self, ops: int, max_ops: int) -> int:
        """Enforce the budgets; returns the opcode count of the next check."""
        if ops + self.batched_ops >= max_ops:
            raise ResourceLimitError(f"more than {max_ops} opcodes")
        if len(self.stack) + len(self.memo) > MAX_LIVE:
            raise ResourceLimitError(f"more than {MAX_LIVE} live values on the stack and memo")
        self.artifact.check_deadline()
        return min(ops + CHECK_EVERY, max_ops)

    def _opname(self) -> str:
        if self.op_pos >= self.end:
            return "end of data"
        code = self.data[self.op_pos]
        return NAMES.get(code, f"opcode {code:#04x}")

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
