"""Python source files shipped with models (Hugging Face ``trust_remote_code`` modules).

A model folder whose ``config.json`` has an ``auto_map`` makes ``from_pretrained(...,
trust_remote_code=True)`` import its ``modeling_*.py`` / ``configuration_*.py`` /
``tokenization_*.py`` files: arbitrary code, run with the user's rights. The file is
parsed with `ast` (never imported) and what it can do is reported by *when* it runs:
at import or model loading (HIGH), or only when a function is called (MEDIUM, with the
function's name). Evident payloads (exec of decoded data, network plus exec) are
CRITICAL. Ordinary modeling code gets only the INFO note that it is code.

Rules:
    MW-PY-001 executable-code (INFO): the file is Python that trust_remote_code would run.
    MW-PY-002 import-time-capability (HIGH): dangerous calls run at import or model loading.
    MW-PY-003 call-time-capability (MEDIUM): dangerous calls inside a function body.
    MW-PY-004 payload (CRITICAL): exec of decoded or downloaded data, or network plus exec.
    MW-PY-005 obfuscation (MEDIUM): encoded blobs, rot13, builtins lookups hide what runs.
    MW-PY-006 env-exfiltration (HIGH): environment variables read next to network calls.
    MW-PY-007 file-write-outside (MEDIUM): writes or deletes fixed paths outside the folder.
    MW-PY-008 capability-import (LOW): imports process, network, native or pickle modules.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.py_audit import Capability, ModuleReport, PyEvent, analyze_source
from modelward.errors import ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SCANNER", "PythonScanner"]

MAX_SOURCE_BYTES: Final = 8 << 20
MAX_FINDINGS_PER_RULE: Final = 50
_HF_REMOTE_CODE: Final = "https://huggingface.co/docs/transformers/custom_models"
_CODE_STATEMENTS: Final = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                           ast.ClassDef)
_HEAD_PYTHON: Final = re.compile(rb"^(?:import \w|from [\w.]+ import |def \w+\(|class \w+[(:])",
                                 re.M)
_DANGEROUS: Final = frozenset({Capability.PROCESS, Capability.CODE, Capability.NATIVE,
                               Capability.NETWORK, Capability.DESERIALIZE})

EXECUTABLE_CODE: Final = Rule(
    RuleId("MW-PY-001"), "executable-code", Severity.INFO,
    "The file is Python source. Loading a model with trust_remote_code=True imports it, so "
    "it runs with your rights; nothing dangerous was found statically.",
    "Load with trust_remote_code only for repositories you trust, pinned to a reviewed "
    "revision.", (_HF_REMOTE_CODE,),
)
IMPORT_TIME: Final = Rule(
    RuleId("MW-PY-002"), "import-time-capability", Severity.HIGH,
    "Code that runs when the module is imported, or while the loader builds the model "
    "(__init__, post_init, _init_weights), starts processes, opens connections, executes "
    "dynamic code, loads native code or unpickles data. trust_remote_code runs it on load.",
    "Do not load this model with trust_remote_code; review the code or use a version "
    "without custom code.", (_HF_REMOTE_CODE,),
)
CALL_TIME: Final = Rule(
    RuleId("MW-PY-003"), "call-time-capability", Severity.MEDIUM,
    "A function in the model code starts processes, opens connections, executes dynamic "
    "code, loads native code or unpickles data when it is called.",
    "Review the named function before using the model with trust_remote_code.",
    (_HF_REMOTE_CODE,),
)
PAYLOAD: Final = Rule(
    RuleId("MW-PY-004"), "payload", Severity.CRITICAL,
    "The code executes decoded or downloaded data (exec of base64, exec next to network "
    "calls): a hidden payload, not modeling code.",
    "Do not load the model; report the repository.",
)
OBFUSCATION: Final = Rule(
    RuleId("MW-PY-005"), "obfuscation", Severity.MEDIUM,
    "The code hides what it does: long encoded blobs, rot13, or looking up builtins by "
    "name. Modeling code has no reason to.",
    "Decode the hidden part and review it before loading.",
)
ENV_EXFILTRATION: Final = Rule(
    RuleId("MW-PY-006"), "env-exfiltration", Severity.HIGH,
    "The code reads environment variables (where tokens and keys live) in the same place "
    "as it makes network calls.",
    "Do not run the code with credentials in the environment; review where data is sent.",
)
FILE_WRITE: Final = Rule(
    RuleId("MW-PY-007"), "file-write-outside", Severity.MEDIUM,
    "The code writes, moves or deletes fixed paths outside the model folder (home, system "
    "or parent directories).",
    "Review the write; model code should only write caches it is configured to use.",
)
CAPABILITY_IMPORT: Final = Rule(
    RuleId("MW-PY-008"), "capability-import", Severity.LOW,
    "The code imports a module for processes, networking, native code or pickle, though "
    "no call of it was resolved statically.",
    "Check what the module is used for.",
)


def _decode(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _parse(text: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return None


class PythonScanner(Scanner):
    """Python source, analysed statically for what it does on import and on call."""

    name: ClassVar[str] = "python"
    suffixes: ClassVar[frozenset[str]] = frozenset({".py", ".pyw"})
    rules: ClassVar[tuple[Rule, ...]] = (
        EXECUTABLE_CODE, IMPORT_TIME, CALL_TIME, PAYLOAD, OBFUSCATION, ENV_EXFILTRATION,
        FILE_WRITE, CAPABILITY_IMPORT,
    )
    priority: ClassVar[int] = -10  # text formats with a stricter shape are tried first

    @override
    def claims(self, artifact: Artifact) -> bool:
        head = artifact.head
        if not head or b"\x00" in head:
            return False
        if artifact.size > MAX_SOURCE_BYTES:
            return _decode(head[: len(head) - 4]) is not None and bool(_HEAD_PYTHON.search(head))
        text = _decode(bytes(artifact.data))
        if text is None:
            return False
        tree = _parse(text)
        return tree is not None and _looks_like_code(tree)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        if artifact.size > MAX_SOURCE_BYTES:
            raise ResourceLimitError(f"Python source of {artifact.size} bytes is larger than "
                                     f"the {MAX_SOURCE_BYTES} analysed")
        text = _decode(bytes(artifact.data)) or ""
        artifact.format_detail = "python"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = analyze_source(text, artifact.name)
        except SyntaxError as err:
            yield artifact.finding(IMPORT_TIME, "Python source does not parse; it cannot be "
                                   "verified", severity=Severity.MEDIUM, evidence=str(err))
            return
        except (RecursionError, MemoryError) as err:
            raise ResourceLimitError("Python source is nested too deeply to analyse") from err
        artifact.check_deadline()
        yield artifact.finding(EXECUTABLE_CODE, "Python source: loading the model with "
                               "trust_remote_code=True runs this code")
        yield from _findings(artifact, report)


def _looks_like_code(tree: ast.Module) -> bool:
    """A module with definitions, imports, assignments from calls or call statements.

    JSON, requirement lists and bare words parse as Python expressions; they are not code.
    """
    for stmt in tree.body:
        if isinstance(stmt, _CODE_STATEMENTS):
            return True
        if isinstance(stmt, (ast.Expr, ast.Assign)) and isinstance(stmt.value, ast.Call):
            return True
        if isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            return True
    # A call anywhere runs on import: ``g = (lambda x=__import__("os")...: x)``,
    # ``x: f() = 1``, ``f"{f()}"``. Data files (JSON, requirement lists) hold no calls.
    return any(isinstance(node, (ast.Call, ast.Lambda)) for node in ast.walk(tree))



def _findings(artifact: Artifact, report: ModuleReport) -> Iterator[ScanOutput]:
    counts: dict[str, int] = {}
    seen: set[tuple[str, str, str, int]] = set()

    def emit(rule: Rule, message: str, event: PyEvent,
             severity: Severity | None = None) -> Iterator[ScanOutput]:
        key = (rule.id, event.scope, event.name, event.line)
        if key in seen:
            return
        seen.add(key)
        counts[rule.id] = counts.get(rule.id, 0) + 1
        if counts[rule.id] > MAX_FINDINGS_PER_RULE:
            return
        yield artifact.finding(rule, message, node=f"{event.scope}:{event.line}",
                               evidence=event.evidence, severity=severity)

    by_scope: dict[str, set[Capability]] = {}
    for event in report.events:
        by_scope.setdefault(event.scope, set()).add(event.capability)
    for event in report.events:
        when = ("at import / model loading" if event.import_time
                else f"when {event.scope}() is called")
        cap = event.capability
        caps = by_scope[event.scope]
        if event.payload:
            yield from emit(PAYLOAD, f"{event.name} executes decoded or downloaded data {when}",
                            event)
        elif cap in (Capability.CODE, Capability.PROCESS) and Capability.NETWORK in caps:
            yield from emit(PAYLOAD, f"{event.name} runs code or commands next to network calls "
                            f"in {event.scope} ({when})", event,
                            None if event.import_time else Severity.HIGH)
        elif cap in _DANGEROUS:
            rule = IMPORT_TIME if event.import_time else CALL_TIME
            yield from emit(rule, f"{event.name} {cap.value} {when}", event)
        elif cap is Capability.OBFUSCATION:
            yield from emit(OBFUSCATION, f"{event.name}: code {cap.value} ({when})", event,
                            Severity.HIGH if event.high else None)
        elif cap is Capability.ENV and Capability.NETWORK in caps:
            yield from emit(ENV_EXFILTRATION, f"{event.scope} reads the environment and "
                            f"makes network calls ({when})", event,
                            None if event.import_time or event.high else Severity.MEDIUM)
        elif cap is Capability.FILE_WRITE:
            yield from emit(FILE_WRITE, f"{event.name} {cap.value} {when}", event,
                            Severity.HIGH if event.import_time else None)
    used = {e.capability for e in report.events}
    for name, cap, line in report.imports:
        if cap not in used:
            fake = PyEvent(cap, name, "<module>", True, line, f"import {name}")
            yield from emit(CAPABILITY_IMPORT, f"imports {name}, which {cap.value}", fake)


SCANNER: Final = PythonScanner()
