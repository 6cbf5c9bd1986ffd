"""Symbolic analysis of pickle streams: what loading them would import and call.

The pickle machine (`machine`) runs every opcode of protocols 0-5 on symbols instead of
objects: it never imports or calls anything from the stream. The data-flow layer
(`dataflow`) classifies imports through `policy.classify`, follows callables computed at
load time, analyses pickles nested in the data, and turns the trace into findings whose
evidence is readable pseudo-Python (`symbols.render`).

Public API (used by every scanner that meets a pickle)::

    analyze(artifact, start=0, end=None) -> PickleAnalysis      # one pickle
    analyze_stream(artifact, start=0) -> list[PickleAnalysis]   # pickles back to back
    looks_like_pickle(head) -> bool                             # content sniff
    PICKLE_RULES                                                # every MW-PKL rule
"""

from __future__ import annotations

from dataclasses import dataclass
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
    return PickleAnalysis(
        findings=tuple(machine.findings),
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
    from dataclasses import replace

    return replace(analysis, findings=(finding, *analysis.findings))
