"""Who calls what with what: the data-flow half of the pickle machine.

The opcode layer (`machine`) hands every import, call, BUILD and container mutation to
this layer, which

- classifies each import through `policy.classify` (with a per-run cache);
- resolves callables computed at load time: ``getattr(x, 'name')``, ``import_module``,
  ``sys.modules[...]``, ``operator.attrgetter``/``methodcaller``, ``functools.partial``,
  names assembled from strings for ``STACK_GLOBAL`` and attributes poisoned by ``BUILD``;
- rates each call by the worst callable it touches (callee, arguments, nested calls) and
  remembers which riskier call contains it, so a finding shows the whole chain once;
- analyses bytes that are themselves pickles (recursively, depth-limited; `nested`);
- turns all that into findings when the run ends (`finish`, in `flow_findings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from modelward.findings import Finding, Severity
from modelward.pickle_analysis import flow_findings
from modelward.pickle_analysis.allowlist import CALLED_POSITIONS, REFERENCE_ONLY
from modelward.pickle_analysis.nested import analyse_nested
from modelward.pickle_analysis.policy import Classification, Verdict, classify
from modelward.pickle_analysis.stream import Malformed
from modelward.pickle_analysis.strings import const_str, eval_str
from modelward.pickle_analysis.symbols import (
    Blob,
    Call,
    DictSym,
    Global,
    ListSym,
    Opaque,
    Persistent,
    Value,
    render,
)

if TYPE_CHECKING:
    from modelward.pickle_analysis.machine import Machine
    from modelward.scanners.base import Artifact

__all__ = ["DataFlow", "ImportRecord"]

CRITICAL: Final = int(Severity.CRITICAL)
HIGH: Final = int(Severity.HIGH)
MEDIUM: Final = int(Severity.MEDIUM)

GETATTRS: Final = frozenset({"builtins.getattr", "__builtin__.getattr"})
IMPORTERS: Final = frozenset({
    "importlib.import_module", "builtins.__import__", "importlib.__import__",
    "importlib._bootstrap._gcd_import", "pkgutil.resolve_name",
})
GETITEMS: Final = frozenset({
    "operator.getitem", "_operator.getitem", "builtins.dict.get", "builtins.dict.__getitem__",
})
ATTRGETTERS: Final = frozenset({"operator.attrgetter", "_operator.attrgetter"})
METHODCALLERS: Final = frozenset({"operator.methodcaller", "_operator.methodcaller"})
PARTIALS: Final = frozenset({"functools.partial", "_functools.partial", "functools.partialmethod"})
#: ``partial(f, ...)`` only stores `f` and its arguments (``functools.partial.__reduce__`` makes
#: ``partial(f)`` plus a BUILD of ``(f, args, kwds, dict)``): building one calls nothing, so
#: one whose `f` is a plain import is judged by `f` and its arguments, not as indirection.
PLAIN_PARTIALS: Final = frozenset({"functools.partial", "_functools.partial"})
#: Callables that deserialize their argument: bytes handed to them are analysed as pickles.
LOADERS: Final = frozenset({
    "pickle.loads", "pickle.load", "_pickle.loads", "_pickle.load", "pickle._loads",
    "pickle._load", "cPickle.loads", "dill.loads", "dill.load", "dill._dill.loads",
    "cloudpickle.loads", "joblib.load", "torch.load", "torch.serialization.load",
    "numpy.load", "numpy.loads", "numpy.core.multiarray.loads", "pandas.read_pickle",
    "marshal.loads", "yaml.load", "yaml.unsafe_load", "io.BytesIO", "_io.BytesIO",
    "shelve.open", "copyreg._reconstructor",
})
#: First characters of str values worth sniffing as pickles (protocol 2 header, text ops).
_PICKLE_TEXT_START: Final = frozenset("\x80(c]}")
#: Nodes visited when rating one call, and nesting of pickles analysed inside pickles.
WALK_BUDGET: Final = 256
MAX_NESTED_PICKLES: Final = 4


@dataclass(slots=True)
class ImportRecord:
    """One import the pickle performs, and what the policy says about it."""

    module: str
    name: str
    offset: int
    opcode: str
    verdict: Verdict = Verdict.UNKNOWN
    capability: str | None = None
    reason: str = ""
    via: Call | None = None
    covered: bool = False
    computed: bool = False

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module


def _severity(verdict: Verdict) -> int:
    if verdict is Verdict.DANGEROUS:
        return CRITICAL
    return MEDIUM if verdict is Verdict.UNKNOWN else 0


def _not_str(value: Value) -> bool:
    """Whether `value` can never be a ``str`` at load time (STACK_GLOBAL then fails)."""
    if isinstance(value, Blob):
        return value.kind != "str"
    return value is None or isinstance(value, (bytes, int, float, tuple, DictSym, ListSym))


class DataFlow:
    """Mixin of `Machine`: imports, calls and their findings."""

    data: memoryview
    end: int
    op_pos: int
    ops: int
    result: Value

    def __init__(self, artifact: Artifact, nesting: int) -> None:
        self.artifact = artifact
        self.nesting = nesting
        self.records: list[ImportRecord] = []
        self.events: list[Call] = []
        self.findings: list[Finding] = []
        self.poisoned: dict[str, Value] = {}
        self._classes: dict[tuple[str, str], Classification] = {}
        self._nested_done: set[object] = set()
        #: ids of ``partial(<plain import>, ...)`` calls, whose callee is not walked.
        self._plain_partials: set[int] = set()
        #: call id -> allowlisted reference-only function it calls while loading.
        self._reference_calls: dict[int, str] = {}
        self.saw_joblib = False
        self.limit_hit: str | None = None
        self.ops = 0
        self.result = None

    def spawn(self, start: int, end: int | None, artifact: Artifact | None = None) -> Machine:
        """A machine for a pickle nested in this one's data (`artifact`: held elsewhere)."""
        from modelward.pickle_analysis.machine import Machine  # the class that mixes this in

        return Machine(artifact or self.artifact, start, end, self.nesting + 1)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    # ----------------------------------------------------------------- imports

    def classify(self, module: str, name: str) -> Classification:
        key = (module, name)
        found = self._classes.get(key)
        if found is None:
            found = classify(module, name or "*", self.artifact.policy)
            self._classes[key] = found
        return found

    def add_record(self, record: ImportRecord, via: Call | None = None,
                   is_module: bool = False) -> Global:
        if record.reason == "":
            cls = self.classify(record.module, record.name)
            record.verdict, record.capability = cls.verdict, cls.capability
            record.reason = cls.reason
        record.via = via
        self.records.append(record)
        return Global(record.dotted, record.offset, len(self.records) - 1, via, is_module)

    def imported(self, module: str, name: str, opcode: str, via: Call | None = None) -> Value:
        """The value an import yields: a `Global`, or what BUILD poisoned that name with."""
        dotted = f"{module}.{name}"
        glob = self.add_record(ImportRecord(module, name, self.op_pos, opcode,
                                            computed=via is not None), via)
        if dotted in self.poisoned:
            self.records[glob.record].covered = True
            return self.poisoned[dotted]
        return glob

    def derived(self, base: Global, attr: str, via: Call) -> Global:
        """``getattr(base, attr)`` when `base` is an import or a module."""
        rec = self.records[base.record]
        if base.is_module:
            module, name = base.dotted, attr
        else:
            module, name = rec.module, f"{rec.name}.{attr}" if rec.name else attr
        record = ImportRecord(module, name, self.op_pos, "getattr", computed=True)
        return self.add_record(record, via)

    def module(self, dotted: str, via: Call) -> Global:
        return self.add_record(ImportRecord(dotted, "", self.op_pos, "import", computed=True),
                               via, is_module=True)

    def stack_global(self, module: Value, name: Value) -> Value:
        mod_s, name_s = self.const_str(module), self.const_str(name)
        if mod_s is not None and name_s is not None:
            return self.imported(mod_s, name_s, "STACK_GLOBAL")
        mod_e, name_e = self.eval_str(module), self.eval_str(name)
        if isinstance(mod_e, str) and isinstance(name_e, str):
            via = Call("call", Opaque("STACK_GLOBAL"), (module, name), self.op_pos)
            return self.imported(mod_e, name_e, "STACK_GLOBAL", via=via)
        if _not_str(module) or _not_str(name):
            raise Malformed("STACK_GLOBAL requires str")
        via = Call("call", Opaque("STACK_GLOBAL"), (module, name), self.op_pos)
        record = ImportRecord("<computed>", render(via), self.op_pos, "STACK_GLOBAL",
                              Verdict.UNKNOWN, None, "import name computed at load time",
                              computed=True)
        return self.add_record(record, via)

    # ----------------------------------------------------------------- constants

    def const_str(self, value: Value) -> str | None:
        """`value` as a ``str`` if it is a string constant of the stream."""
        return const_str(value, self.data)

    def eval_str(self, value: Value) -> str | bytes | None:
        """`value` folded to a constant if pure string functions compute it from constants."""
        return eval_str(value, self.data)

    # ----------------------------------------------------------------- calls

    def call(self, kind: str, func: Value, args: Value, kwargs: Value = None) -> Value:
        """A call the unpickler makes; returns the symbol it pushes."""
        if not isinstance(func, (Global, Call, Persistent, Opaque)):
            raise Malformed(f"call of a non-callable {render(func, 60)}")
        call = Call(kind, func, args, self.op_pos, kwargs)
        result = self._result_of(call)
        self.assess(call)
        return result

    def method_call(self, target: Value, method: str, args: tuple[Value, ...]) -> None:
        """APPEND/SETITEM/ADDITEMS on something that is not a plain container."""
        if not isinstance(target, (Global, Call, Persistent, Opaque)):
            raise Malformed(f"{method} on {render(target, 60)}")
        call = Call(method, target, args, self.op_pos)
        if isinstance(target, Global):
            call.resolved = f"{target.dotted}.{method}"
        self.assess(call)

    def build(self, inst: Value, state: Value) -> None:
        """BUILD: ``inst.__setstate__(state)`` or ``inst.__dict__.update(state)``."""
        call = Call("build", inst, (state,), self.op_pos)
        if isinstance(inst, Call):
            inst.state = state
        if isinstance(inst, Global):
            self._poison(inst, state, call)
            return
        if isinstance(inst, (Call, Persistent, Opaque)):
            self.assess(call)

    def _poison(self, target: Global, state: Value, call: Call) -> None:
        names: list[str] = []
        for part in (state if isinstance(state, tuple) and len(state) == 2 else (state,)):
            if isinstance(part, DictSym):
                for key, value in part.items:
                    if isinstance(key, str):
                        names.append(key)
                        self.poisoned[f"{target.dotted}.{key}"] = value
        self.assess(call)
        call.risk = max(call.risk, HIGH)
        call.resolved = ", ".join(f"{target.dotted}.{n}" for n in names[:8]) or target.dotted
        if call not in self.events:
            self.events.append(call)

    def _result_of(self, call: Call) -> Value:
        func, args = call.func, call.args
        if call.kind != "call" or not isinstance(args, tuple):
            return call
        if isinstance(func, Call) and isinstance(func.func, Global) \
                and isinstance(func.args, tuple):
            inner = func.func.dotted
            if inner in ATTRGETTERS and len(args) == 1 and isinstance(args[0], Global):
                name = self.const_str(func.args[0]) if func.args else None
                if name:
                    result: Global = args[0]
                    for part in name.split("."):
                        result = self.derived(result, part, call)
                    return result
            return call
        if not isinstance(func, Global):
            return call
        dotted = func.dotted
        if dotted in GETATTRS and len(args) >= 2 and isinstance(args[0], Global):
            name = self.const_str(args[1])
            if name:
                return self.derived(args[0], name, call)
        elif dotted in IMPORTERS and args:
            name = self.const_str(args[0])
            if name:
                return self.module(name.replace(":", "."), call)
        elif dotted in GETITEMS and len(args) >= 2 and isinstance(args[0], Global) \
                and args[0].dotted == "sys.modules":
            name = self.const_str(args[1])
            if name:
                return self.module(name, call)
        return call

    def _callee(self, func: Value, args: Value) -> tuple[Global | None, bool]:
        """The callable a call really runs, and whether it was computed at load time."""
        if isinstance(func, Global):
            return func, func.via is not None
        if isinstance(func, Call) and func.kind == "call" and isinstance(func.func, Global) \
                and isinstance(func.args, tuple) and func.args:
            inner = func.func.dotted
            if inner in PARTIALS:
                target, _ = self._callee(func.args[0], ())
                return target, True
            if inner in METHODCALLERS and isinstance(args, tuple) and args \
                    and isinstance(args[0], Global):
                name = self.const_str(func.args[0])
                if name:
                    return self.derived(args[0], name, func), True
        return None, True

    def _plain_partial(self, call: Call) -> bool:
        """``functools.partial(f, ...)`` with `f` a plain import: stores, never calls."""
        func, args = call.func, call.args
        if call.kind != "call" or not isinstance(func, Global) or func.via is not None \
                or func.dotted not in PLAIN_PARTIALS or not isinstance(args, tuple) or not args:
            return False
        target = args[0]
        return isinstance(target, Global) and target.via is None and not target.is_module

    def _called_arguments(self, call: Call, dotted: str) -> int:
        """Risk of what a safe callable calls among its arguments (`CALLED_POSITIONS`)."""
        risk = 0
        args = call.args
        if not isinstance(args, tuple):
            return HIGH
        for position in CALLED_POSITIONS.get(dotted, ()):
            if position >= len(args) or isinstance(args[position], (str, bytes)):
                continue
            value = args[position]
            if not isinstance(value, Global) or value.via is not None:
                risk = max(risk, HIGH)
            elif value.dotted in REFERENCE_ONLY:
                self._reference_calls.setdefault(id(call), value.dotted)
                risk = max(risk, MEDIUM)
        return risk

    def assess(self, call: Call) -> None:
        """Rate a call by the worst callable it touches; queue it when it matters."""
        if self._plain_partial(call):
            self._plain_partials.add(id(call))
            assert isinstance(call.func, Global)
            self.records[call.func.record].covered = True
        records: set[int] = set()
        inner: list[Call] = []
        blobs: list[Value] = []
        self._walk(self._roots(call), records, inner, blobs)
        risk = max((_severity(self.records[r].verdict) for r in records), default=0)
        if any(self.records[r].computed for r in records):
            risk = max(risk, HIGH)
        if call.kind in ("call", "new"):
            callee, computed = self._callee(call.func, call.args)
            if callee is None:
                risk = max(risk, HIGH)
            elif computed:
                call.resolved = callee.dotted
                rec = self.records[callee.record]
                risk = max(risk, CRITICAL if rec.verdict is Verdict.DANGEROUS else HIGH)
            loader = False
            if callee is not None and not computed and callee.dotted in REFERENCE_ONLY:
                self._reference_calls[id(call)] = callee.dotted
                risk = max(risk, MEDIUM)
            if callee is not None and callee.dotted in CALLED_POSITIONS and not computed:
                risk = max(risk, self._called_arguments(call, callee.dotted))
            if callee is not None:
                judged = self.classify(*self._split(callee))
                loader = callee.dotted in LOADERS or getattr(judged, "deserializes_argument", False)
                if getattr(judged, "calls_arguments", False) and isinstance(call.args, tuple) \
                        and any(isinstance(a, (Call, Persistent)) or
                                (isinstance(a, Global) and a.via is not None) for a in call.args):
                    # A safe callable that calls its arguments runs a computed callable.
                    risk = max(risk, HIGH)
        else:
            loader = False
        if (loader or risk >= HIGH) and self.nesting < MAX_NESTED_PICKLES:
            for value in blobs:
                if analyse_nested(self, call, value):
                    risk = max(risk, HIGH)
        call.risk = risk
        if risk:
            self.events.append(call)
            for child in inner:
                if child is not call and child.risk and child.outer is None:
                    child.outer = call

    def _roots(self, call: Call) -> tuple[Value, ...]:
        if id(call) in self._plain_partials:
            return (call.args, call.kwargs)
        return (call.func, call.args, call.kwargs)

    def _walk(self, roots: tuple[Value, ...], records: set[int], calls: list[Call],
              blobs: list[Value]) -> None:
        todo: list[Value] = list(roots)
        seen: set[int] = set()
        budget = WALK_BUDGET
        while todo and budget > 0:
            value = todo.pop()
            budget -= 1
            if value is None or isinstance(value, (bool, int, float)):
                continue
            if isinstance(value, str):
                if value[:1] in _PICKLE_TEXT_START and len(value) > 2:
                    blobs.append(value)
                continue
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, Global):
                if self.records[value.record].verdict is not Verdict.SAFE \
                        or self.records[value.record].computed:
                    records.add(value.record)
                if value.via is not None:
                    todo.append(value.via)
            elif isinstance(value, Call):
                calls.append(value)
                if id(value) in self._plain_partials:
                    todo.extend((value.args, value.kwargs))
                else:
                    todo.extend((value.func, value.args, value.kwargs))
            elif isinstance(value, tuple):
                todo.extend(value)
            elif isinstance(value, ListSym):
                todo.extend(value.items)
            elif isinstance(value, DictSym):
                for k, v in value.items:
                    todo.append(k)
                    todo.append(v)
            elif isinstance(value, Persistent):
                todo.append(value.pid)
            elif isinstance(value, (bytes, Blob)):
                blobs.append(value)

    def _split(self, glob: Global) -> tuple[str, str]:
        rec = self.records[glob.record]
        return rec.module, rec.name

    def is_computed(self, value: Value) -> bool:
        records: set[int] = set()
        calls: list[Call] = []
        self._walk((value,), records, calls, [])
        return bool(calls) or any(
            self.records[r].verdict is not Verdict.SAFE for r in records)

    # ----------------------------------------------------------------- findings

    def finish(self) -> None:
        """Turn queued calls and uncovered imports into findings (see `flow_findings`)."""
        flow_findings.finish(self)
