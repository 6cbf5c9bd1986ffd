"""GGUF files (llama.cpp, Ollama, LM Studio, llama-cpp-python).

A typed key/value header, then raw tensors. Loading runs no code, so the risks sit in
the header: counts and sizes that corrupt a loader's memory (TALOS-2024-1912..1916),
layouts where two tensor names alias the same bytes or read past the file, and chat
templates that inference servers render with Jinja, where a template that reaches
Python internals runs commands on the server (CVE-2024-34359,
https://github.com/abetlen/llama-cpp-python/security/advisories/GHSA-56xg-wfcc-g829).
The header is parsed here, bounded; tensor data is never read.

Rules:
    MW-GGUF-001 malformed-header (MEDIUM): a count, length or version the file cannot hold.
    MW-GGUF-002 template-injection (HIGH): a chat template reaches Python internals.
    MW-GGUF-003 template-unparseable (MEDIUM): a chat template does not parse.
    MW-GGUF-004 template-unverified (MEDIUM): a chat template uses constructs chat templates do not.
    MW-GGUF-005 tensor-layout (MEDIUM): tensor infos out of range, overlapping or invalid.
    MW-GGUF-006 duplicate-name (MEDIUM): a key or tensor name appears twice.
    MW-GGUF-007 big-endian (LOW): the file is big-endian GGUF.
    MW-GGUF-008 unaccounted-bytes (LOW): data-section bytes that belong to no tensor.
    MW-GGUF-009 header-value (MEDIUM): a metadata value loaders interpret differently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.gguf_reader import (
    T_STRING,
    ExploitPatternError,
    GgufHeader,
    HeaderProblem,
    read_header,
)
from modelward._internal.jinja_audit import IssueKind, audit_template
from modelward.errors import FormatError, ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SCANNER", "GgufScanner"]

_SSTI_REFS: Final = (
    "https://github.com/abetlen/llama-cpp-python/security/advisories/GHSA-56xg-wfcc-g829",
    "https://nvd.nist.gov/vuln/detail/CVE-2024-34359",
)

MALFORMED_HEADER: Final = Rule(
    RuleId("MW-GGUF-001"), "malformed-header", Severity.MEDIUM,
    "A count, string length or version in the GGUF header is impossible for the file. "
    "llama.cpp's reader had heap overflows from such fields; a truncated download looks "
    "the same.",
    "Download the file again from a trusted source; do not load it as it is.",
    ("https://talosintelligence.com/vulnerability_reports/TALOS-2024-1913",),
)
TEMPLATE_INJECTION: Final = Rule(
    RuleId("MW-GGUF-002"), "template-injection", Severity.HIGH,
    "The chat template stored in the model reaches Python internals (dunder attributes, "
    "|attr, module handles). Servers that render templates outside a Jinja sandbox run "
    "whatever the template reaches: server-side template injection.",
    "Do not serve this model. Replace tokenizer.chat_template with the template of the "
    "original model and render templates in a sandboxed Jinja environment.",
    _SSTI_REFS,
)
TEMPLATE_UNPARSEABLE: Final = Rule(
    RuleId("MW-GGUF-003"), "template-unparseable", Severity.MEDIUM,
    "The chat template does not parse as Jinja, so it could not be verified; other "
    "template engines may still render part of it.",
    "Compare the template with the original model's and replace it.",
)
TEMPLATE_UNVERIFIED: Final = Rule(
    RuleId("MW-GGUF-004"), "template-unverified", Severity.MEDIUM,
    "The chat template uses something chat templates do not (unknown filters or method "
    "calls, web-framework globals, template loading), so it cannot be verified safe.",
    "Read the template; if it is not the original model's, replace it.",
    _SSTI_REFS,
)
TENSOR_LAYOUT: Final = Rule(
    RuleId("MW-GGUF-005"), "tensor-layout", Severity.MEDIUM,
    "A tensor info is inconsistent with the file: unknown type, bad dimensions, "
    "misaligned, overlapping another tensor or reaching past the end. Loaders then read "
    "memory they should not, and aliased tensors can hide modified weights.",
    "Do not load the file; obtain it again from a trusted source.",
    ("https://talosintelligence.com/vulnerability_reports/TALOS-2024-1915",),
)
DUPLICATE_NAME: Final = Rule(
    RuleId("MW-GGUF-006"), "duplicate-name", Severity.MEDIUM,
    "A metadata key or tensor name appears twice. Readers keep the first or the last, so "
    "a scanner and a loader can see different values.",
    "Do not load the file until the duplicate is explained.",
)
BIG_ENDIAN: Final = Rule(
    RuleId("MW-GGUF-007"), "big-endian", Severity.LOW,
    "The file is big-endian GGUF. It was analysed as such, but most loaders assume "
    "little-endian and misread every count.",
    "Use a little-endian build of the model unless the target platform is big-endian.",
)
UNACCOUNTED_BYTES: Final = Rule(
    RuleId("MW-GGUF-008"), "unaccounted-bytes", Severity.LOW,
    "Bytes in the data section belong to no tensor. Loaders ignore them, which makes "
    "them a place to hide a payload for another stage.",
    "Check where the extra bytes come from.",
)
HEADER_VALUE: Final = Rule(
    RuleId("MW-GGUF-009"), "header-value", Severity.MEDIUM,
    "A metadata value is outside what loaders agree on (alignment, nested arrays), so "
    "they lay out or read the file differently.",
    "Obtain the file again from a trusted source.",
)

_PROBLEM_RULES: Final[dict[str, Rule]] = {
    "tensor": TENSOR_LAYOUT, "duplicate": DUPLICATE_NAME, "endian": BIG_ENDIAN,
    "gap": UNACCOUNTED_BYTES, "header": HEADER_VALUE,
}
_ISSUE_RULES: Final[dict[IssueKind, Rule]] = {
    IssueKind.INJECTION: TEMPLATE_INJECTION,
    IssueKind.UNVERIFIED: TEMPLATE_UNVERIFIED,
    IssueKind.UNPARSEABLE: TEMPLATE_UNPARSEABLE,
}


class GgufScanner(Scanner):
    """GGUF v1-v3, either byte order: header sanity and chat-template audit."""

    name: ClassVar[str] = "gguf"
    suffixes: ClassVar[frozenset[str]] = frozenset({".gguf"})
    rules: ClassVar[tuple[Rule, ...]] = (
        MALFORMED_HEADER, TEMPLATE_INJECTION, TEMPLATE_UNPARSEABLE, TEMPLATE_UNVERIFIED,
        TENSOR_LAYOUT, DUPLICATE_NAME, BIG_ENDIAN, UNACCOUNTED_BYTES, HEADER_VALUE,
    )

    @override
    def claims(self, artifact: Artifact) -> bool:
        return artifact.head.startswith(b"GGUF")

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        try:
            header = read_header(artifact)
        except ResourceLimitError:
            raise
        except ExploitPatternError as err:
            yield artifact.finding(TENSOR_LAYOUT, err.message, offset=err.offset, node=err.node,
                                   evidence=err.evidence, severity=Severity.HIGH)
            return
        except FormatError as err:
            yield artifact.finding(MALFORMED_HEADER, f"GGUF header is malformed: {err.message}",
                                   offset=err.offset)
            return
        artifact.format_detail = f"gguf-v{header.version}" + ("-be" if header.big_endian else "")
        for problem in header.problems:
            yield _problem_finding(artifact, problem)
        yield from _templates(artifact, header)


def _problem_finding(artifact: Artifact, problem: HeaderProblem) -> ScanOutput:
    rule = _PROBLEM_RULES[problem.kind]
    return artifact.finding(
        rule, problem.message, offset=problem.offset, node=problem.node,
        evidence=problem.evidence, severity=Severity.HIGH if problem.high else None,
    )


def _templates(artifact: Artifact, header: GgufHeader) -> Iterator[ScanOutput]:
    for kv in header.kvs:
        if kv.key != "tokenizer.chat_template" and not kv.key.startswith(
                "tokenizer.chat_template."):
            continue
        if kv.vtype != T_STRING:
            yield artifact.finding(TEMPLATE_UNVERIFIED, f"{kv.key} is not a string",
                                   offset=kv.offset, node=kv.key)
            continue
        artifact.check_deadline()
        text = kv.value if isinstance(kv.value, str) else None
        if text is None:
            yield artifact.finding(TEMPLATE_UNPARSEABLE,
                                   f"chat template of {kv.length} bytes is too large to audit",
                                   offset=kv.offset, node=kv.key)
            continue
        for issue in audit_template(text):
            where = f" (template line {issue.line})" if issue.line else ""
            yield artifact.finding(_ISSUE_RULES[issue.kind], issue.message + where,
                                   offset=kv.offset, node=kv.key, evidence=issue.evidence)


SCANNER: Final = GgufScanner()
