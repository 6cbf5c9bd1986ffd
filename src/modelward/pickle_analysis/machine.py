"""The symbolic pickle VM: every opcode of protocols 0-5, run on symbols, never on objects.

It keeps the stack, the mark stack (CPython's ``metastack``) and the memo exactly as
``pickle._Unpickler`` does (Lib/pickle.py), so it sees the same opcode stream and the
same data flow as a real load, but it imports nothing and calls nothing: imports become
`Global` symbols, calls become `Call` symbols handed to the data-flow layer
(`modelward.pickle_analysis.dataflow`), and big payloads are skipped by length, never
copied. Opcode families live beside it: `values` (numbers, strings, bytes), `structure`
(stack, containers, memo); this module runs the loop and the opcodes that import, call or
mutate. The loop is a 256-entry dispatch table of bound methods that take and return a
byte offset, so an opcode costs one index, one call and nothing else.
"""

from __future__ import annotations

import _compat_pickle
import copyreg
from collections.abc import Callable
from dataclasses import replace
from struct import error as StructError
from struct import unpack_from
from typing import TYPE_CHECKING, Final

from modelward.errors import ResourceLimitError
from modelward.findings import Severity
from modelward.pickle_analysis import joblib as joblib_arrays
from modelward.pickle_analysis.dataflow import DataFlow, ImportRecord
from modelward.pickle_analysis.opcodes import FIXED_ARG, HANDLERS
from modelward.pickle_analysis.rules import (
    MALFORMED_PICKLE,
    PICKLE_RESOURCE_LIMIT,
    SUSPICIOUS_PERSISTENT_ID,
    UNREGISTERED_EXTENSION,
)
from modelward.pickle_analysis.stream import CHECK_EVERY, Halt, Malformed, Stopped
from modelward.pickle_analysis.structure import StructureOps
from modelward.pickle_analysis.symbols import (
    DictSym,
    ListSym,
    Opaque,
    Persistent,
    SetSym,
    Value,
    render,
    to_plain,
)
from modelward.pickle_analysis.values import ValueOps
from modelward.policy import Limits, Policy

if TYPE_CHECKING:
    from modelward.scanners.base import Artifact

__all__ = ["CHECK_EVERY", "Halt", "Machine", "Malformed", "Stopped"]

HIGHEST_PROTOCOL: Final = 5
#: The opcode table under its historical name here (tests and tools import it from here).
_HANDLERS: Final = HANDLERS


class Machine(StructureOps, ValueOps, DataFlow):
    """One run of the VM over ``artifact.data[start:end]``.

    Args:
        artifact: the bytes and where they live.
        start: offset of the first opcode.
        end: offset the stream may not read past (``None``: end of data).
        nesting: how many pickles this one is nested in (for depth limits).
    """

    def __init__(self, artifact: Artifact, start: int, end: int | None, nesting: int = 0) -> None:
        total = len(artifact.data)
        self.end = total if end is None else max(0, min(end, total))
        self.data = artifact.data[: self.end]
        self.start = start
        self.pos = start
        self.op_pos = start
        self.stack: list[Value] = []
        self.metastack: list[list[Value]] = []
        self.memo: dict[int, Value] = {}
        self.proto = 0
        self.protocol: int | None = None
        self.complete = False
        self.truncated = False
        self.extra_imports: list[str] = []
        self.persistent_ids: list[object] = []
        self.limits: Limits = artifact.limits
        self.policy: Policy = artifact.policy
        self.table = self._build_table()
        self.joblib = True
        # joblib reads inline arrays from the file, not from the current FRAME: inside a
        # frame its array bytes sit after the frame end (`file_pos`), see `_joblib_array`.
        self.frame_end = -1
        self.file_pos = -1
        self.in_frame_tail = False
        #: Byte ranges of raw inline arrays joblib reads as data (pickle.load: as opcodes).
        self.raw_spans: list[tuple[int, int]] = []
        DataFlow.__init__(self, artifact, nesting)

    # ----------------------------------------------------------------- driver

    def run(self, trace: list[tuple[int, int]] | None = None) -> None:
        """Execute until STOP, the end of data, a malformed opcode or a budget.

        Args:
            trace: when given, receives ``(offset, opcode)`` of every opcode executed
                (slower; tests compare it with ``pickletools.genops``).
        """
        data = self.data
        table = self.table
        pos = self.pos
        ops = 0
        max_ops = self.limits.max_pickle_ops
        check_at = min(CHECK_EVERY, max_ops)
        self.batch = trace is None
        try:
            try:
                if trace is None:
                    while True:
                        self.op_pos = pos
                        pos = table[data[pos]](pos + 1)
                        ops += 1
                        if ops == check_at:
                            check_at = self._checkpoint(ops, max_ops)
                else:
                    while True:
                        self.op_pos = pos
                        trace.append((pos, data[pos]))
                        pos = table[data[pos]](pos + 1)
                        ops += 1
                        if ops == check_at:
                            check_at = self._checkpoint(ops, max_ops)
            finally:
                self.ops = ops + self.batched_ops
        except Stopped as stop:
            self.complete = True
            self.pos = int(stop.args[0])
        except Malformed as err:
            self.pos = self.op_pos
            self._malformed(str(err))
        except IndexError:
            self.pos = self.op_pos
            self._malformed(self._index_error_text())
        except StructError:
            self.pos = self.op_pos
            self._malformed(f"truncated argument of {self._opname()}")
        except (ValueError, OverflowError) as err:
            self.pos = self.op_pos
            self._malformed(f"bad argument of {self._opname()}: {str(err)[:120]}")
        except RecursionError:
            self.pos = self.op_pos
            self._limit("structure nested too deeply to analyse")
        except ResourceLimitError as err:
            self.pos = self.op_pos
            self._limit(err.message)
        except Halt:
            self.pos = self.op_pos
        self.finish()

    def _index_error_text(self) -> str:
        if self.op_pos >= self.end:
            return "truncated pickle: data ends before STOP"
        code = self.data[self.op_pos]
        if self.op_pos + 1 + FIXED_ARG.get(code, 0) > self.end:
            return f"truncated argument of {self._opname()}"
        return f"stack underflow or missing MARK at {self._opname()}"

    def _malformed(self, message: str) -> None:
        self.truncated = message.startswith("truncated")
        self.add(self.artifact.finding(
            MALFORMED_PICKLE, f"malformed pickle: {message}; a loader fails here after running "
            "the opcodes before it", offset=self.op_pos,
            evidence=f"{self._opname()} at byte {self.op_pos}",
        ))

    def _limit(self, message: str) -> None:
        self.limit_hit = message
        self.add(self.artifact.finding(
            PICKLE_RESOURCE_LIMIT, f"pickle analysis stopped: {message}", offset=self.op_pos))

    # ----------------------------------------------------------------- opcodes

    def op_proto(self, pos: int) -> int:
        proto = self.data[pos]
        if proto > HIGHEST_PROTOCOL:
            raise Malformed(f"unsupported pickle protocol: {proto}")
        self.proto = proto
        if self.protocol is None:
            self.protocol = proto
        return pos + 1

    def op_frame(self, pos: int) -> int:
        (size,) = unpack_from("<Q", self.data, pos)
        pos += 8
        if pos + size > self.end:
            # The C unpickler fails here, but pickle._Unpickler (joblib's) runs the opcodes
            # there are, so they are analysed too.
            self.add(self.artifact.finding(
                MALFORMED_PICKLE, f"FRAME of {size} bytes runs past the end of data; "
                "pickle.load fails here, joblib.load runs the opcodes that follow",
                offset=self.op_pos, evidence=f"FRAME at byte {self.op_pos}"))
        self.frame_end = min(pos + size, self.end)
        self.file_pos = self.frame_end
        return pos

    def op_stop(self, pos: int) -> int:
        self.result = self.stack.pop()
        raise Stopped(pos)

    def op_append(self, pos: int) -> int:
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is ListSym:
            target.extend([value])
        else:
            self.method_call(target, "append", (value,))
        return pos

    def op_appends(self, pos: int) -> int:
        items = self._pop_mark()
        target = self.stack[-1]
        if type(target) is ListSym:
            target.extend(items)
        else:
            self.method_call(target, "extend", tuple(items))
        return pos

    def op_setitem(self, pos: int) -> int:
        value = self.stack.pop()
        key = self.stack.pop()
        target = self.stack[-1]
        if type(target) is DictSym:
            target.set(key, value)
        else:
            self.method_call(target, "__setitem__", (key, value))
        return pos

    def op_setitems(self, pos: int) -> int:
        items = self._pop_mark()
        target = self.stack[-1]
        if len(items) % 2:
            raise Malformed("odd number of items for SETITEMS")
        if type(target) is DictSym:
            for i in range(0, len(items), 2):
                target.set(items[i], items[i + 1])
        else:
            self.method_call(target, "__setitem__", tuple(items))
        return pos

    def op_additems(self, pos: int) -> int:
        items = self._pop_mark()
        target = self.stack[-1]
        if type(target) is SetSym and not target.frozen:
            target.extend(items)
        else:
            self.method_call(target, "add", tuple(items))
        return pos

    def _names(self, pos: int, encoding: str) -> tuple[str, str, int]:
        module, pos = self._small_line(pos)
        name, pos = self._small_line(pos)
        return module.decode(encoding), name.decode(encoding), pos

    def op_global(self, pos: int) -> int:
        module, name, pos = self._names(pos, "utf-8")
        self.stack.append(self.import_global(module, name, "GLOBAL"))
        return pos

    def op_stack_global(self, pos: int) -> int:
        name = self.stack.pop()
        module = self.stack.pop()
        self.stack.append(self.stack_global(module, name))
        return pos

    def op_inst(self, pos: int) -> int:
        module, name, pos = self._names(pos, "ascii")
        klass = self.import_global(module, name, "INST")
        args = tuple(self._pop_mark())
        self.stack.append(self.call("call", klass, args))
        return pos

    def op_obj(self, pos: int) -> int:
        args = self._pop_mark()
        if not args:
            raise Malformed("OBJ without a class")
        self.stack.append(self.call("call", args[0], tuple(args[1:])))
        return pos

    def op_newobj(self, pos: int) -> int:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.stack.append(self.call("new", cls, args))
        return pos

    def op_newobj_ex(self, pos: int) -> int:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.stack.append(self.call("new", cls, args, kwargs))
        return pos

    def op_reduce(self, pos: int) -> int:
        args = self.stack.pop()
        self.stack[-1] = self.call("call", self.stack[-1], args)
        return pos

    def op_build(self, pos: int) -> int:
        state = self.stack.pop()
        inst = self.stack[-1]
        self.build(inst, state)
        wrapper = joblib_arrays.wrapper_name(inst, state) if self.joblib else None
        if wrapper is not None:
            return self._joblib_array(pos, wrapper, state)
        return pos

    def _joblib_array(self, pos: int, wrapper: str, state: Value) -> int:
        """Skip (or analyse) the array bytes joblib's unpickler reads right after BUILD."""
        payload = joblib_arrays.inline_payload(wrapper, state)
        if payload is None:
            return pos
        self.stack[-1] = Opaque(f"ndarray from {wrapper.rsplit('.', 1)[-1]}")
        self.saw_joblib = True
        if payload.error:
            # Fail closed: joblib skips bytes whose extent is unknown here, then runs what
            # follows them; nothing after this point can be analysed.
            self.add(self.artifact.finding(
                MALFORMED_PICKLE, f"joblib array whose size cannot be determined "
                f"({payload.error}): joblib.load skips bytes this analysis cannot locate and "
                "runs the opcodes after them, which are not analysed", offset=self.op_pos,
                severity=Severity.HIGH, evidence=f"BUILD of {wrapper} at byte {self.op_pos}"))
            raise Halt
        if pos >= self.frame_end:
            return self._array_bytes(pos, payload)
        # Inside a frame joblib reads the array from the file, after the frame, while the
        # opcodes go on inside the frame; after it they resume behind the array.
        self.file_pos = self._array_bytes(self.file_pos, payload)
        if self.in_frame_tail:
            return pos
        self.in_frame_tail = True
        try:
            self._run_until(pos, self.frame_end)
        finally:
            self.in_frame_tail = False
        return self.file_pos

    def _array_bytes(self, pos: int, payload: joblib_arrays.Payload) -> int:
        """Skip (or analyse) one inline array starting at `pos`; where it ends."""
        if payload.nested_pickle:
            return self.inline_pickle(pos, "joblib object array")
        start = pos
        if payload.aligned:
            if pos >= self.end:
                raise Malformed("truncated joblib array: padding byte missing")
            pos = self._span(pos + 1, self.data[pos])
        end = self._span(pos, payload.nbytes)
        if len(self.raw_spans) < 1 << 16:
            self.raw_spans.append((start, end))
        return end

    def _run_until(self, pos: int, stop: int) -> None:
        """Run the opcodes of ``data[pos:stop]`` (the rest of a frame) in place."""
        data, table = self.data, self.table
        count = 0
        while pos < stop:
            self.op_pos = pos
            pos = table[data[pos]](pos + 1)
            count += 1
            if count % CHECK_EVERY == 0:
                self.artifact.check_deadline()
        if pos != stop:
            raise Malformed("an opcode runs past the end of its frame")

    def op_ext1(self, pos: int) -> int:
        self._ext(self.data[pos])
        return pos + 1

    def op_ext2(self, pos: int) -> int:
        self._ext(unpack_from("<H", self.data, pos)[0])
        return pos + 2

    def op_ext4(self, pos: int) -> int:
        self._ext(unpack_from("<i", self.data, pos)[0])
        return pos + 4

    def _ext(self, code: int) -> None:
        key = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
        if key:
            self.stack.append(self.import_global(key[0], key[1], f"EXT({code})"))
            return
        if code <= 0:
            raise Malformed("EXT specifies code <= 0")
        self.add(self.artifact.finding(
            UNREGISTERED_EXTENSION,
            f"EXT opcode names extension code {code}, which copyreg's registry does not hold; "
            "what it imports depends on the loading process",
            offset=self.op_pos, evidence=f"{self._opname()} {code}",
        ))
        record = ImportRecord("copyreg._extension_registry", f"code {code}", self.op_pos,
                              "EXT", covered=True)
        self.stack.append(self.add_record(record))

    def op_persid(self, pos: int) -> int:
        line, pos = self._small_line(pos)
        self._persistent(line.decode("ascii"))
        return pos

    def op_binpersid(self, pos: int) -> int:
        self._persistent(self.stack.pop())
        return pos

    def _persistent(self, pid: Value) -> None:
        self.persistent_ids.append(to_plain(pid))
        if self.is_computed(pid):
            self.add(self.artifact.finding(
                SUSPICIOUS_PERSISTENT_ID,
                "persistent id is computed by calls or holds imported objects",
                offset=self.op_pos, evidence=f"persistent_load({render(pid)})",
            ))
        self.stack.append(Persistent(pid, self.op_pos))

    def op_bad(self, pos: int) -> int:
        raise Malformed(f"invalid opcode {self.data[pos - 1]:#04x}")

    def inline_pickle(self, pos: int, label: str) -> int:
        """Run a pickle embedded in the stream at `pos` (joblib object arrays); its end."""
        if self.nesting >= 8:
            raise ResourceLimitError("inline pickles nested too deeply")
        sub = Machine(self.artifact, pos, self.end, self.nesting + 1)
        sub.joblib = False  # joblib reads it with a plain Unpickler
        sub.run()
        for finding in sub.findings:
            self.add(replace(finding, message=f"{label}: {finding.message}"))
        self.extra_imports.extend(rec.dotted for rec in sub.records)
        self.extra_imports.extend(sub.extra_imports)
        self.persistent_ids.extend(sub.persistent_ids)
        if not sub.complete:
            self.truncated = sub.truncated
            self.limit_hit = sub.limit_hit
            raise Halt
        return sub.pos

    # ----------------------------------------------------------------- table

    def _build_table(self) -> list[Callable[[int], int]]:
        table: list[Callable[[int], int]] = [self.op_bad] * 256
        for code, name in HANDLERS.items():
            table[code] = getattr(self, name)
        return table

    def import_global(self, module: str, name: str, opcode: str) -> Value:
        """Resolve an import as ``find_class`` would (Python 2 names mapped below protocol 3)."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        return self.imported(module, name, opcode)

