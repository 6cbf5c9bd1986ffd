"""Standalone chat-template files (``chat_template.jinja``).

Newer transformers releases save a model's chat template as its own file beside
``tokenizer_config.json``, and inference servers render it exactly like the
``chat_template`` field, so it carries the same template-injection risk (CVE-2024-34359).
The file is claimed by content alone: UTF-8 text that starts with a Jinja tag, parses as a
Jinja template, and reads the ``messages`` variable every chat template iterates; other
text is left to the engine's "unknown format" handling. It is then audited by
`modelward._internal.jinja_audit` and reported with the Hugging Face template rules
(MW-HF-003/004/005), which this scanner shares with `hfconfig`.

Rules:
    MW-HF-003 template-injection (HIGH): the template reaches Python internals.
    MW-HF-004 template-unparseable (MEDIUM): the template could not be verified.
    MW-HF-005 template-unverified (MEDIUM): constructs chat templates do not use, or
        work bounded only by huge constants (denial of service).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Final

import jinja2
from jinja2 import nodes as n
from typing_extensions import override

from modelward._internal.jinja_audit import MAX_TEMPLATE_CHARS, IssueKind, audit_template
from modelward._internal.jinja_audit import parse_template as _parse
from modelward.findings import Rule
from modelward.scanners.base import Artifact, Scanner, ScanOutput
from modelward.scanners.hfconfig import (
    TEMPLATE_INJECTION,
    TEMPLATE_UNPARSEABLE,
    TEMPLATE_UNVERIFIED,
)

__all__ = ["SCANNER", "ChatTemplateScanner"]

_RULES: Final[dict[IssueKind, Rule]] = {
    IssueKind.INJECTION: TEMPLATE_INJECTION,
    IssueKind.UNPARSEABLE: TEMPLATE_UNPARSEABLE,
    IssueKind.UNVERIFIED: TEMPLATE_UNVERIFIED,
}
_MAX_BYTES: Final = 4 * MAX_TEMPLATE_CHARS
_MARKERS: Final = (b"{%", b"{{", b"{#")


def _text(artifact: Artifact) -> str | None:
    if artifact.size > _MAX_BYTES or not artifact.head.lstrip().startswith(_MARKERS):
        return None
    if b"messages" not in artifact.head and b"messages" not in bytes(artifact.view()):
        return None
    try:
        return bytes(artifact.view()).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_chat_template(text: str) -> bool:
    try:
        tree = _parse(text)
    except (jinja2.TemplateSyntaxError, RecursionError, MemoryError, ValueError, TypeError,
            OverflowError):
        return False
    return any(name.name == "messages" and name.ctx == "load" for name in tree.find_all(n.Name))


class ChatTemplateScanner(Scanner):
    """A Jinja chat template saved as its own file."""

    name: ClassVar[str] = "chat-template"
    suffixes: ClassVar[frozenset[str]] = frozenset({".jinja", ".j2"})
    rules: ClassVar[tuple[Rule, ...]] = (TEMPLATE_INJECTION, TEMPLATE_UNPARSEABLE,
                                         TEMPLATE_UNVERIFIED)

    @override
    def claims(self, artifact: Artifact) -> bool:
        text = _text(artifact)
        return text is not None and _is_chat_template(text)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        text = _text(artifact) or ""
        artifact.format_detail = "jinja-chat-template"
        for issue in audit_template(text):
            line = f" (template line {issue.line})" if issue.line else ""
            yield artifact.finding(_RULES[issue.kind], issue.message + line,
                                   node="chat_template", evidence=issue.evidence)


SCANNER: Final = ChatTemplateScanner()
