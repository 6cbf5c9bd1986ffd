"""The rules documentation, generated from the rules themselves.

``docs/rules.md`` is the output of ``python -m modelward rules --format markdown`` (``make
docs``); a test fails when the committed file differs, so the documentation cannot drift
from the code. `collect_rules` finds every `Rule` modelward can report: the engine's
``CORE_RULES``, each discovered scanner's ``rules`` (plug-ins included), the pickle
machine's ``PICKLE_RULES``, and any module-level `Rule` constant in ``modelward.scan``,
``modelward.scanners.*`` and ``modelward.pickle_analysis.*`` -- so a rule that a scanner
defines but forgets to list is still documented (and caught by the scanner's own tests).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Final

from modelward.findings import Rule
from modelward.reporting.base import SEVERITY_ORDER, rule_help_uri

__all__ = [
    "RULE_ID_PATTERN",
    "DocumentedRule",
    "collect_rules",
    "rules_json",
    "rules_markdown",
    "rules_text",
]

RULE_ID_PATTERN: Final = re.compile(r"MW-[A-Z]+-\d{3}")
REGENERATE: Final = "python -m modelward rules --format markdown > docs/rules.md"

AREA_TITLES: Final[dict[str, str]] = {
    "CORE": "Scan engine (all files)",
    "PKL": "Pickle",
    "PT": "PyTorch",
    "NPY": "NumPy",
    "KERAS": "Keras",
    "TF": "TensorFlow",
    "ONNX": "ONNX",
    "GGUF": "GGUF",
    "ST": "safetensors",
    "TFLITE": "TensorFlow Lite",
    "ZIP": "Zip archives",
    "TAR": "Tar archives",
    "CMP": "Compressed streams",
    "HF": "Hugging Face configuration files",
    "PY": "Python source (remote code)",
    "DIFF": "modelward diff (source vs converted model)",
}
_PACKAGES: Final = ("modelward.scanners", "modelward.pickle_analysis")
# Rules reported outside scanning; these modules import nothing heavy.
_MODULES: Final = ("modelward.diff.report",)


@dataclass(frozen=True, slots=True)
class DocumentedRule:
    """A rule and who reports it.

    Attributes:
        rule: the rule.
        reported_by: who fires it: ``scan engine``, ``pickle analysis``, ``scanner NAME``,
            or, for a rule only found as a module constant, ``module NAME``.
    """

    rule: Rule
    reported_by: tuple[str, ...]

    @property
    def reporters(self) -> str:
        """`reported_by` as one phrase (``scanners pickle, pytorch``)."""
        scanners = [r.removeprefix("scanner ") for r in self.reported_by
                    if r.startswith("scanner ")]
        others = [r for r in self.reported_by if not r.startswith("scanner ")]
        if scanners:
            others.append(("scanner " if len(scanners) == 1 else "scanners ")
                          + ", ".join(scanners))
        return "; ".join(others)


def _module_rules(module: ModuleType) -> Iterator[Rule]:
    for value in vars(module).values():
        if isinstance(value, Rule):
            yield value
        elif isinstance(value, tuple) and value and all(isinstance(v, Rule) for v in value):
            yield from value


def _package_modules(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    path = getattr(root, "__path__", None)
    if path is None:
        return
    for info in sorted(pkgutil.walk_packages(path, prefix=f"{package}."), key=lambda i: i.name):
        yield importlib.import_module(info.name)


def collect_rules() -> list[DocumentedRule]:
    """Every rule modelward can report, sorted by area then id.

    Raises:
        ValueError: two different rules share an id.
    """
    from modelward import scan
    from modelward.scanners import discover

    found: dict[str, Rule] = {}
    reporters: dict[str, list[str]] = {}
    where: dict[str, str] = {}

    def add(rules: Iterable[Rule], origin: str, reporter: str | None) -> None:
        for rule in rules:
            known = found.setdefault(rule.id, rule)
            if known != rule:
                raise ValueError(f"rule id {rule.id} is defined twice with different contents "
                                 f"({where[rule.id]} and {origin})")
            where.setdefault(rule.id, origin)
            names = reporters.setdefault(rule.id, [])
            if reporter is not None and reporter not in names:
                names.append(reporter)

    add(scan.CORE_RULES, scan.__name__, "scan engine")
    pickle_analysis = importlib.import_module("modelward.pickle_analysis")
    add(getattr(pickle_analysis, "PICKLE_RULES", ()), pickle_analysis.__name__, "pickle analysis")
    for scanner in sorted(discover(), key=lambda s: s.name):
        add(scanner.rules, type(scanner).__module__, f"scanner {scanner.name}")
    add(_module_rules(scan), scan.__name__, None)
    for package in _PACKAGES:
        for module in _package_modules(package):
            add(_module_rules(module), module.__name__, None)
    diff_report = importlib.import_module("modelward.diff.report")
    add(getattr(diff_report, "RULES", ()), diff_report.__name__, "modelward diff")
    for name in _MODULES:
        add(_module_rules(importlib.import_module(name)), name, None)
    docs = [DocumentedRule(rule, tuple(reporters[rule_id] or [f"module {where[rule_id]}"]))
            for rule_id, rule in found.items()]
    return sorted(docs, key=lambda d: (_area_rank(d.rule.area), d.rule.id))


def _area_rank(area: str) -> tuple[int, str]:
    order = list(AREA_TITLES)
    return (order.index(area), "") if area in order else (len(order), area)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rules_markdown(rules: list[DocumentedRule]) -> str:
    """``docs/rules.md``: an index table, then one section per rule (anchor = lower-case id)."""
    out = [
        f"<!-- Generated by `{REGENERATE}` (or `make docs`). Do not edit by hand. -->",
        "",
        "# modelward rules",
        "",
        "Every finding modelward reports carries one of these rule ids. Ids are stable and "
        "never reused; a finding's severity may differ from its rule's default when the "
        "context makes it worse or milder. Ignore a rule with `--ignore ID` or "
        "`ignore = [\"ID\"]` in the policy file (suppressed findings are still counted).",
        "",
        "Severities: " + ", ".join(f"**{s.label}**" for s in SEVERITY_ORDER) + ". "
        "CRITICAL: code runs when the artifact is loaded. HIGH: hidden behaviour at "
        "inference (graph backdoor, file or network access, archive escape). MEDIUM: cannot "
        "be verified safe. LOW: format anomaly. INFO: for the record.",
        "",
        "| Id | Name | Severity | Reported by |",
        "| --- | --- | --- | --- |",
    ]
    for doc in rules:
        rule = doc.rule
        out.append(f"| [{rule.id}](#{rule.id.lower()}) | `{rule.name}` | {rule.severity.label} "
                   f"| {doc.reporters} |")
    area = None
    for doc in rules:
        rule = doc.rule
        if rule.area != area:
            area = rule.area
            out += ["", f"## {rule.area}: {AREA_TITLES.get(rule.area, rule.area)}"]
        out += [
            "",
            f"### {rule.id}",
            "",
            f"**`{rule.name}`** · default severity **{rule.severity.name}** · "
            f"reported by {doc.reporters}",
            "",
            rule.description or "_No description._",
        ]
        if rule.remediation:
            out += ["", f"**Remediation:** {rule.remediation}"]
        if rule.references:
            out += ["", "**References:**", ""] + [f"- <{url}>" for url in rule.references]
    return "\n".join(out) + "\n"


def rules_text(rules: list[DocumentedRule]) -> str:
    """One line per rule: id, default severity, name, first sentence of the description."""
    lines = []
    for doc in rules:
        rule = doc.rule
        first = rule.description.partition(". ")[0].rstrip(".")
        lines.append(f"{rule.id:<14} {rule.severity.label:<8} {rule.name:<28} {first}".rstrip())
    return "\n".join(lines) + "\n"


def rules_json(rules: list[DocumentedRule]) -> str:
    """The rules as a JSON array (id, name, severity, area, texts, provenance, help URI)."""
    data = [
        {
            "id": d.rule.id,
            "name": d.rule.name,
            "severity": d.rule.severity.label,
            "area": d.rule.area,
            "description": d.rule.description,
            "remediation": d.rule.remediation,
            "references": list(d.rule.references),
            "reported_by": list(d.reported_by),
            "help_uri": rule_help_uri(d.rule),
        }
        for d in rules
    ]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

