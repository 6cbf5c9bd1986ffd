"""What every report renderer shares: the `Renderer` interface and its options.

A renderer turns a `ScanReport` into one document (text, JSON, SARIF) and returns it as a
string; writing it somewhere is the caller's job (the CLI writes stdout or a file
atomically). Renderers hold no state, so one instance serves every report.

The helpers here are shared facts that more than one output must agree on: where a rule
is documented (`rule_help_uri`), the stable identity of a finding across runs
(`finding_fingerprint`), and how untrusted strings (names and evidence taken from hostile
files) are made safe to print on a terminal (`printable`).
"""

from __future__ import annotations

import abc
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import ClassVar, Final

from modelward.findings import Finding, Rule, Severity
from modelward.results import ScanReport

__all__ = [
    "RULES_DOC_URL",
    "SEVERITY_ORDER",
    "RenderOptions",
    "Renderer",
    "finding_fingerprint",
    "printable",
    "rule_help_uri",
]

RULES_DOC_URL: Final = "https://github.com/modelward/modelward/blob/main/docs/rules.md"
"""Where ``docs/rules.md`` is published; each rule has an anchor of its lower-cased id."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render, beyond the report itself.

    Attributes:
        verbose: show every finding (INFO and LOW too), full evidence, details, digests.
        quiet: text only: print the summary line and nothing else.
        color: text only: emit ANSI colours and styles.
        width: text only: line width (the CLI passes the terminal's width on a terminal).
    """

    verbose: bool = False
    quiet: bool = False
    color: bool = False
    width: int = 100


class Renderer(abc.ABC):
    """Turns a `ScanReport` into one document.

    Class attributes:
        name: the ``--format`` value that selects this renderer.
        media_type: MIME type of the output, for services that serve reports.
    """

    name: ClassVar[str]
    media_type: ClassVar[str] = "text/plain"

    @abc.abstractmethod
    def render(self, report: ScanReport, options: RenderOptions | None = None) -> str:
        """Return the whole document; text ends with a newline."""


def rule_help_uri(rule: Rule) -> str:
    """URL of the rule's section in ``docs/rules.md`` (headings are bare rule ids)."""
    return f"{RULES_DOC_URL}#{rule.id.lower()}"


def finding_fingerprint(finding: Finding) -> str:
    """A stable identity for a finding across runs (hex SHA-256, first 32 digits).

    It covers what makes a finding *that* finding: the rule, the file, the member chain,
    the offset or node and the evidence; never the message wording or timings, so a
    reworded message does not reopen an alert that was already triaged.
    """
    loc = finding.location
    parts = [
        finding.rule.id,
        loc.path,
        "!".join(loc.members),
        "" if loc.offset is None else str(loc.offset),
        loc.node or "",
        finding.evidence or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


_KEEP_CONTROLS: Final = frozenset("\n")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Escape control and format characters so untrusted text cannot drive a terminal.

    File names, member names and evidence come from the scanned artifact. Printed raw,
    an ESC sequence could rewrite the screen (hide a finding, fake a clean verdict) and
    bidirectional overrides (U+202E, "Trojan Source") could reorder what is shown. Every
    character of Unicode category ``Cc`` or ``Cf`` becomes a visible ``\\xNN`` /
    ``\\uNNNN`` escape; newlines survive only when `keep_newlines` is true.
    """
    out: list[str] = []
    for char in text:
        if (keep_newlines and char in _KEEP_CONTROLS) or unicodedata.category(char) not in (
            "Cc", "Cf", "Cs", "Zl", "Zp",
        ):
            out.append(char)
            continue
        code = ord(char)
        out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                   else f"\\U{code:08x}")
    return "".join(out)


SEVERITY_ORDER: Final[tuple[Severity, ...]] = tuple(sorted(Severity, reverse=True))
"""Severities worst first, the order every summary lists them in."""
