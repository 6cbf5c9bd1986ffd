"""From what a pickle imports and calls to the findings a user sees.

While the machine runs, `DataFlow` (`modelward.pickle_analysis.dataflow`) only records
imports and queues rated calls; when the run ends, `finish` reports each risky call once
(inside the outermost call at least as risky), then the imports no call covered, capping
repeats of one rule for one callable at `MAX_REPEATS`. Kept apart from the data-flow
bookkeeping because wording and de-duplicating findings is its own concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from modelward.findings import Severity
from modelward.pickle_analysis.policy import Verdict
from modelward.pickle_analysis.rules import (
    ATTRIBUTE_POISONING,
    DANGEROUS_GLOBAL,
    REFLECTIVE_CALL,
    UNKNOWN_GLOBAL,
)
from modelward.pickle_analysis.symbols import Call, Global, render

if TYPE_CHECKING:
    from modelward.pickle_analysis.dataflow import DataFlow

__all__ = ["MAX_REPEATS", "finish"]

HIGH: Final = int(Severity.HIGH)
#: Findings of one rule for one callable before the rest are only counted.
MAX_REPEATS: Final = 20


def finish(flow: DataFlow) -> None:
    """Turn queued calls and uncovered imports into findings."""
    counts: dict[tuple[str, str], int] = {}
    unknown_done: set[str] = set()
    for call in flow.events:
        outer = call.outer
        while outer is not None and outer.risk < call.risk:
            outer = outer.outer
        if outer is not None:
            continue
        _call_finding(flow, call, counts, unknown_done)
    for rec in flow.records:
        if rec.covered or (rec.verdict is Verdict.SAFE and not rec.computed):
            continue
        if rec.verdict is Verdict.DANGEROUS:
            _emit(flow, DANGEROUS_GLOBAL, counts, rec.dotted, Severity.CRITICAL,
                  f"imports {rec.dotted} ({rec.capability or 'dangerous'}): {rec.reason}",
                  rec.offset, render(rec.via) if rec.via else rec.dotted)
        elif rec.computed:
            _emit(flow, REFLECTIVE_CALL, counts, rec.dotted, Severity.HIGH,
                  f"obtains {rec.dotted} at load time through {rec.opcode}",
                  rec.offset, render(rec.via) if rec.via else rec.dotted)
        elif rec.dotted not in unknown_done:
            unknown_done.add(rec.dotted)
            _emit(flow, UNKNOWN_GLOBAL, counts, rec.dotted, Severity.MEDIUM,
                  f"imports {rec.dotted}, which is not on the allowlist: {rec.reason}",
                  rec.offset, rec.dotted)
    flow.findings.sort(key=lambda f: (f.location.offset or 0, f.rule.id))


def _call_finding(flow: DataFlow, call: Call, counts: dict[tuple[str, str], int],
                  unknown_done: set[str]) -> None:
    records: set[int] = set()
    flow._walk(flow._roots(call), records, [], [])
    recs = [flow.records[r] for r in sorted(records)]
    for rec in recs:
        rec.covered = True
    evidence = render(call)
    dangerous = [r for r in recs if r.verdict is Verdict.DANGEROUS]
    if call.kind == "build" and isinstance(call.func, Global):
        severity = Severity.CRITICAL if dangerous else Severity.HIGH
        _emit(flow, ATTRIBUTE_POISONING, counts, call.func.dotted, severity,
              f"BUILD overwrites {call.resolved or call.func.dotted} in the loading "
              "process; later code using it runs what the pickle chose",
              call.offset, evidence)
        return
    if call.resolved and call.kind in ("call", "new") and call.risk >= HIGH:
        found = [r for r in flow.records if r.dotted == call.resolved and r.capability]
        what = f"{call.resolved} ({found[-1].capability})" if found else call.resolved
        _emit(flow, REFLECTIVE_CALL, counts, call.resolved, Severity(call.risk),
              f"calls {what}, obtained at load time through data flow", call.offset,
              evidence)
        return
    if dangerous:
        names = ", ".join(dict.fromkeys(r.dotted for r in dangerous))
        caps = ", ".join(dict.fromkeys(r.capability or "dangerous" for r in dangerous))
        _emit(flow, DANGEROUS_GLOBAL, counts, names, Severity.CRITICAL,
              f"runs {names} ({caps}) while loading: {dangerous[0].reason}",
              call.offset, evidence)
        return
    if call.risk >= HIGH:
        _emit(flow, REFLECTIVE_CALL, counts, "<dynamic>", Severity.HIGH,
              "calls a callable computed at load time that cannot be resolved statically",
              call.offset, evidence)
        return
    unknown = False
    for rec in recs:
        if rec.verdict is Verdict.UNKNOWN and rec.dotted not in unknown_done:
            unknown = True
            unknown_done.add(rec.dotted)
            _emit(flow, UNKNOWN_GLOBAL, counts, rec.dotted, Severity.MEDIUM,
                  f"calls {rec.dotted}, which is not on the allowlist (its constructor, "
                  f"__reduce__ or __setstate__ runs with data from the file)",
                  call.offset, evidence)
    reference = flow._reference_calls.get(id(call))
    if reference is not None and not unknown:
        _emit(flow, UNKNOWN_GLOBAL, counts, reference, Severity.MEDIUM,
              f"calls {reference} while loading: it is allowlisted only as a stored "
              "reference (a parameter kept on an estimator or module), which no "
              "library's pickling calls; run on data from the file, such functions "
              "can corrupt memory or exhaust it", call.offset, evidence)


def _emit(flow: DataFlow, rule: object, counts: dict[tuple[str, str], int], key: str,
          severity: Severity, message: str, offset: int, evidence: str) -> None:
    from modelward.findings import Rule

    assert isinstance(rule, Rule)
    n = counts.get((rule.id, key), 0) + 1
    counts[(rule.id, key)] = n
    if n > MAX_REPEATS:
        return
    flow.add(flow.artifact.finding(rule, message, offset=offset, evidence=evidence,
                                   severity=severity))
