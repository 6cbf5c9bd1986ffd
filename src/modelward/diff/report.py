"""The result of ``modelward diff``: what differs, how much, and whether that is acceptable.

`DiffReport` gathers the structural findings, per-output error statistics, the triggers
synthesised for every input-dependent condition, the divergence search and, per model and
backend, load/run time and where each node really executed. `to_json` renders a canonical
document (sorted keys) so that `report_digest` of a report equals the SHA-256 of the file the
CLI writes: a lineage record (``modelward sign --derived-from``) can cite it by digest.

Rules (findings of the structural diff and of execution):
    MW-DIFF-001 added-conditional-logic (HIGH): the target adds an input-triggered switch.
    MW-DIFF-002 changed-weight (HIGH): a weight changed beyond the conversion's precision.
    MW-DIFF-003 changed-outputs (MEDIUM): outputs were added or removed.
    MW-DIFF-004 removed-check (LOW): comparison/validation operators of the source are gone.
    MW-DIFF-005 output-divergence (HIGH): outputs differ beyond the tolerance.
    MW-DIFF-006 trigger-demonstrated (CRITICAL): a synthesised trigger makes the models disagree.
    MW-DIFF-007 backend-fallback (INFO): nodes ran on another provider than requested.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from modelward.findings import Rule, RuleId, Severity

__all__ = [
    "RULES",
    "SCHEMA_VERSION",
    "BackendRun",
    "DiffFinding",
    "DiffReport",
    "OutputComparison",
    "SearchResult",
    "TriggerResult",
    "render_text",
    "report_digest",
    "to_json",
]

SCHEMA_VERSION: Final = "1"


def _rule(num: int, name: str, sev: Severity, desc: str, fix: str) -> Rule:
    return Rule(RuleId(f"MW-DIFF-{num:03d}"), name, sev, desc, fix)


ADDED_CONDITIONAL: Final = _rule(
    1, "added-conditional-logic", Severity.HIGH,
    "The converted model contains an input-dependent switch (a graph backdoor pattern) that "
    "the source does not have.",
    "Do not deploy the converted model; re-run the conversion from the source in a clean "
    "environment and compare again.")
CHANGED_WEIGHT: Final = _rule(
    2, "changed-weight", Severity.HIGH,
    "A weight of the converted model differs from the source's by more than the conversion's "
    "precision explains.",
    "Find which step changed the weight; re-convert from the source.")
CHANGED_OUTPUTS: Final = _rule(
    3, "changed-outputs", Severity.MEDIUM,
    "The converted model has outputs the source lacks, or lost some.",
    "Check that the extra outputs are expected (they may leak internal values).")
REMOVED_CHECK: Final = _rule(
    4, "removed-check", Severity.LOW,
    "Comparison or validation operators present in the source are absent from the target "
    "(optimisers may fold them legitimately).",
    "Review whether the removed checks guarded the model's behaviour.")
OUTPUT_DIVERGENCE: Final = _rule(
    5, "output-divergence", Severity.HIGH,
    "On the same inputs the two models' outputs differ beyond the tolerance of the conversion.",
    "Inspect the inputs saved as evidence; check the conversion's settings.")
TRIGGER_DEMONSTRATED: Final = _rule(
    6, "trigger-demonstrated", Severity.CRITICAL,
    "An input satisfying an input-dependent condition of the converted model makes it answer "
    "differently from the source: a hidden trigger, demonstrated.",
    "Treat the converted model as compromised; keep the triggering input as evidence.")
BACKEND_FALLBACK: Final = _rule(
    7, "backend-fallback", Severity.INFO,
    "Some nodes ran on another execution provider than the one requested.",
    "Expected for unsupported operators; the comparison covers the mix that really ran.")
RULES: Final = (ADDED_CONDITIONAL, CHANGED_WEIGHT, CHANGED_OUTPUTS, REMOVED_CHECK,
                OUTPUT_DIVERGENCE, TRIGGER_DEMONSTRATED, BACKEND_FALLBACK)


@dataclass(slots=True)
class DiffFinding:
    """One finding of the diff: a rule, where (a graph node or output) and the evidence."""

    rule: Rule
    severity: Severity
    message: str
    node: str | None = None
    evidence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.id, "name": self.rule.name, "severity": self.severity.name,
                "message": self.message, "node": self.node, "evidence": self.evidence,
                "remediation": self.rule.remediation}


@dataclass(slots=True)
class OutputComparison:
    """Error statistics of one output over all inputs.

    Attributes:
        kind: ``classifier``, ``embedding``, ``tensor`` or ``integer``.
        rel_errors: per input, max |target - source| / max |source|.
        agree: per input, whether that input is within the tolerance.
    """

    name: str
    kind: str
    max_abs: float
    rel_error: float
    top1: float | None = None
    cosine_min: float | None = None
    passed: bool = True
    rel_errors: list[float] = field(default_factory=list)
    agree: list[bool] = field(default_factory=list)


@dataclass(slots=True)
class TriggerResult:
    """Trigger synthesis for one input-dependent condition.

    Attributes:
        status: ``demonstrated`` (condition holds and the models disagree), ``no-effect``
            (holds, outputs agree), ``unsolved`` or ``unsupported``.
        input_file: ``.npz`` file holding the triggering input, when saved.
    """

    selector: str
    kind: str
    condition: str
    trigger_nodes: list[str]
    status: str
    detail: str = ""
    input_file: str | None = None
    source_top1: list[int] | None = None
    target_top1: list[int] | None = None
    rel_error: float | None = None
    evaluations: int = 0


@dataclass(slots=True)
class SearchResult:
    """Divergence search: the input where the models disagreed most.

    Attributes:
        best_rel_error: the best disagreement score (relative error plus flipped top-1).
        divergent: the worst input found is beyond the tolerance (counts in the verdict).
    """

    method: str
    restarts: int
    evaluations: int
    best_rel_error: float
    input_file: str | None = None
    divergent: bool = False


@dataclass(slots=True)
class BackendRun:
    """One model on one backend: time spent and where its nodes ran."""

    role: str
    path: str
    backend: str
    device: str
    load_seconds: float
    run_seconds: float
    runs: int
    providers: dict[str, int] = field(default_factory=dict)
    fallback_nodes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DiffReport:
    """Everything ``modelward diff`` found."""

    mode: str
    source: str
    target: str
    precision: str
    tolerance: dict[str, float | str]
    inputs: dict[str, int] = field(default_factory=dict)
    outputs: list[OutputComparison] = field(default_factory=list)
    findings: list[DiffFinding] = field(default_factory=list)
    triggers: list[TriggerResult] = field(default_factory=list)
    search: SearchResult | None = None
    runs: list[BackendRun] = field(default_factory=list)
    graph: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        """``divergent`` (execution differs), ``suspicious`` (structure only) or ``faithful``."""
        if any(not o.passed for o in self.outputs) or any(
                t.status == "demonstrated" for t in self.triggers) or (
                self.search is not None and self.search.divergent):
            return "divergent"
        if any(f.severity >= Severity.MEDIUM for f in self.findings):
            return "suspicious"
        return "faithful"

    @property
    def exit_code(self) -> int:
        """0 faithful, 1 divergent or suspicious."""
        return 0 if self.verdict == "faithful" else 1

    def to_dict(self) -> dict[str, Any]:
        data = {
            "schema_version": SCHEMA_VERSION, "mode": self.mode, "source": self.source,
            "target": self.target, "verdict": self.verdict, "precision": self.precision,
            "tolerance": self.tolerance, "inputs": self.inputs,
            "outputs": [asdict(o) for o in self.outputs],
            "findings": [f.to_dict() for f in sorted(
                self.findings, key=lambda f: (-f.severity, f.rule.id, f.node or ""))],
            "triggers": [asdict(t) for t in self.triggers],
            "search": asdict(self.search) if self.search else None,
            "runs": [asdict(r) for r in self.runs], "graph": self.graph,
            "seconds": round(self.seconds, 3),
        }
        cleaned: dict[str, Any] = _clean(data)
        return cleaned


def _clean(value: Any) -> Any:
    """Floats rounded and non-finite values made JSON-safe (strings)."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(report: DiffReport) -> str:
    """The canonical JSON document (sorted keys, two-space indent, final newline)."""
    return json.dumps(report.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def report_digest(report: DiffReport) -> str:
    """``sha256:<hex>`` of `to_json(report)`, the bytes ``--format json`` writes."""
    return "sha256:" + hashlib.sha256(to_json(report).encode("utf-8")).hexdigest()


def render_text(report: DiffReport) -> str:
    """A plain-text summary for the terminal."""
    lines = [f"modelward diff: {report.verdict.upper()}",
             f"  source: {report.source}", f"  target: {report.target}",
             f"  precision: {report.precision}  tolerance: " + ", ".join(
                 f"{k}={v}" for k, v in report.tolerance.items() if k != "precision"),
             "  inputs: " + ", ".join(f"{v} {k}" for k, v in report.inputs.items())]
    if report.outputs:
        lines.append("outputs:")
        for o in report.outputs:
            extra = ""
            if o.top1 is not None:
                extra += f" top1-agreement={o.top1:.3f}"
            if o.cosine_min is not None:
                extra += f" min-cosine={o.cosine_min:.5f}"
            lines.append(f"  {'ok  ' if o.passed else 'FAIL'} {o.name} ({o.kind}): "
                         f"max-abs={o.max_abs:.3g} rel={o.rel_error:.3g}{extra}")
    if report.triggers:
        lines.append("triggers:")
        for t in report.triggers:
            where = f" -> {t.input_file}" if t.input_file else ""
            flip = (f" top1 source={t.source_top1} target={t.target_top1}"
                    if t.source_top1 is not None else "")
            lines.append(f"  {t.status}: {t.kind} at {t.selector} (condition {t.condition})"
                         f"{flip}{where}" + (f" [{t.detail}]" if t.detail else ""))
    if report.search is not None:
        s = report.search
        lines.append(f"divergence search ({s.method}): {s.evaluations} evaluations, "
                     f"{s.restarts} restarts, worst rel-error {s.best_rel_error:.3g}")
    if report.findings:
        lines.append("findings:")
        for f in sorted(report.findings, key=lambda f: (-f.severity, f.rule.id)):
            lines.append(f"  [{f.severity.name}] {f.rule.id} {f.rule.name}: {f.message}"
                         + (f" (node {f.node})" if f.node else ""))
            if f.evidence:
                lines.append(f"      evidence: {f.evidence}")
    lines.append("backends:")
    for r in report.runs:
        prov = ", ".join(f"{k}: {v}" for k, v in sorted(r.providers.items()))
        lines.append(f"  {r.role}: {r.backend}/{r.device} load {r.load_seconds:.3f}s, "
                     f"{r.runs} runs {r.run_seconds:.3f}s" + (f"; nodes on {prov}" if prov else ""))
        for note in r.notes:
            lines.append(f"      note: {note}")
    return "\n".join(lines) + "\n"
