"""Symbolic analysis of pickle streams: what loading them would import and call.

The pickle machine (`machine`) runs every opcode of protocols 0-5 on symbols instead of
objects: it never imports or calls anything from the stream. Its opcode families sit beside
it (`values`, `structure`, on the shared `stream` base; the table is in `opcodes`). The
data-flow layer (`dataflow`) classifies imports through `policy.classify`, follows
callables computed at load time (names folded by `strings`), analyses pickles nested in
the data, and turns the trace into findings whose evidence is readable pseudo-Python
(`symbols.render`).

Public API (used by every scanner that meets a pickle)::

    analyze(artifact, start=0, end=None) -> PickleAnalysis      # one pickle
    analyze_stream(artifact, start=0) -> list[PickleAnalysis]   # pickles back to back
    looks_like_pickle(head) -> bool                             # content sniff
    PICKLE_RULES                                                # every MW-PKL rule
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from modelward.findings import Finding
from modelward.pickle_analysis.rules import (
    DATA_AFTER_STOP,
    MULTIPLE_PICKLES,
    PICKLE_RULES,
)
from modelward.pickle_analysis.sniff import looks_like_pickle
from modelward.pickle_analysis.symbols import render

if TYPE_CHECKING:
    from modelward.scanners.base import Artifact

__all__ = ["PICKLE_RULES", "PickleAnalysis", "analyze", "analyze_stream", "looks_like_pickle"]


@dataclass(frozen=True)
class PickleAnalysis:
    """What one pickle would do when loaded.

    Attributes:
        findings: findings located in the artifact (``artifact.location(offset)``).
        start: offset of the pickle's first opcode.
        end: offset after STOP, or where analysis stopped.
        complete: STOP was reached.
        imports: dotted names of every global imported, in order.
        persistent_ids: each persistent id as plain Python data (tuples, str, int; imports
            as dotted strings, anything computed as its pseudo-Python rendering).
        protocol: the protocol of the first PROTO opcode, if any.
        joblib: the stream holds joblib ``NumpyArrayWrapper`` inline arrays.
        limit_hit: the budget that stopped the analysis, if one did.
        result: pseudo-Python of the object STOP returns (bounded), if reached.
    """

    findings: tuple[Finding, ...]
    start: int
    end: int
    complete: bool
    imports: tuple[str, ...]
    persistent_ids: tuple[object, ...]
    protocol: int | None
    joblib: bool = False
    limit_hit: str | None = None
    result: str | None = None


def analyze(artifact: Artifact, start: int = 0, end: int | None = None) -> PickleAnalysis:
    """Symbolically run ONE pickle starting at byte `start` of ``artifact.data``.

    Never raises for bad content: truncation, garbage and budgets become findings.

    Args:
        artifact: the bytes, where they live, policy and limits.
        start: offset of the first opcode.
        end: offset the pickle may not read past (default: end of data).
    """
    from modelward.pickle_analysis.machine import Machine

    machine = Machine(artifact, start, end)
    machine.run()
    imports = [rec.dotted for rec in machine.records]
    imports.extend(machine.extra_imports)
    findings = list(machine.findings)
    if machine.saw_joblib:
        findings.extend(_as_plain_pickle(artifact, start, end, findings, machine.raw_spans))
    return PickleAnalysis(
        findings=tuple(findings),
        start=start,
        end=machine.pos,
        complete=machine.complete,
        imports=tuple(imports),
        persistent_ids=tuple(machine.persistent_ids),
        protocol=machine.protocol,
        joblib=machine.saw_joblib,
        limit_hit=machine.limit_hit,
        result=render(machine.result) if machine.complete else None,
    )


def _as_plain_pickle(artifact: Artifact, start: int, end: int | None,
                     seen: list[Finding], raw_spans: list[tuple[int, int]]) -> list[Finding]:
    """Findings of a joblib stream read the way ``pickle.load`` reads it.

    To ``pickle.load`` a ``NumpyArrayWrapper`` is an ordinary object and the inline array
    bytes after it are opcodes: a file can be a clean array for ``joblib.load`` and a
    payload for ``pickle.load``. Real joblib arrays read as opcodes are garbage (the run
    stops at them with a LOW malformed finding, dropped here). Reported: every CRITICAL
    finding, and MEDIUM or worse ones located in raw array bytes. Object arrays' nested
    pickles read in line see the outer memo, so their names get mixed up (``subclass.dtype``
    for ``numpy.dtype``): imports that merely fail are not worth a finding, but a mix-up
    that reaches a dangerous callable is.
    """
    from modelward.findings import Severity
    from modelward.pickle_analysis.machine import Machine

    plain = Machine(artifact, start, end)
    plain.joblib = False
    plain.run()
    known = {(f.rule.id, f.location.offset) for f in seen}
    extra: list[Finding] = []
    for finding in plain.findings:
        offset = finding.location.offset
        if finding.severity < Severity.MEDIUM or finding.rule.id == "MW-PKL-010" \
                or (finding.rule.id, offset) in known:
            continue
        in_raw = offset is not None and any(a <= offset < b for a, b in raw_spans)
        if finding.severity < Severity.CRITICAL and not in_raw:
            continue
        extra.append(replace(finding, message="read by pickle.load (joblib's inline array "
                             f"bytes taken as opcodes): {finding.message}"))
    return extra


def analyze_stream(artifact: Artifact, start: int = 0) -> list[PickleAnalysis]:
    """Analyse every pickle stacked back to back from `start`, and what trails them.

    A second pickle after the first STOP is analysed and flagged (MW-PKL-008); bytes after
    the last STOP that do not look like a pickle are reported (MW-PKL-007).
    """
    results: list[PickleAnalysis] = []
    total = len(artifact.data)
    pos = start
    while True:
        analysis = analyze(artifact, pos)
        if results:
            extra = artifact.finding(
                MULTIPLE_PICKLES,
                f"pickle #{len(results) + 1} starts at byte {pos}, after the STOP of the "
                "previous one; loaders that read several objects run it",
                offset=pos, evidence=repr(bytes(artifact.data[pos : pos + 16])))
            analysis = _with_finding(analysis, extra)
        results.append(analysis)
        if not analysis.complete or analysis.limit_hit is not None:
            return results
        pos = analysis.end
        if pos >= total:
            return results
        artifact.check_deadline()
        head = bytes(artifact.data[pos : pos + 4096])
        if not looks_like_pickle(head, artifact.data[pos:]):
            trailing = artifact.finding(
                DATA_AFTER_STOP, f"{total - pos} bytes follow the final STOP opcode",
                offset=pos, evidence=repr(head[:32]))
            results.append(PickleAnalysis((trailing,), pos, total, False, (), (), None))
            return results


def _with_finding(analysis: PickleAnalysis, finding: Finding) -> PickleAnalysis:
    return replace(analysis, findings=(finding, *analysis.findings))
