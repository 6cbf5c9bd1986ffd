"""The finding model: what every scanner reports and every renderer shows.

A `Finding` says what was found (`rule`, `message`), where (`location`: file, archive
member chain, byte offset or graph node), why it is dangerous (`message`, `rule.description`),
and what to do (`remediation`, defaulting to the rule's). Severities are ordered, so
`max()` and `>=` work unaided. Rule ids are stable and never reused; every rule is
documented in `docs/rules.md`, which is generated from the rules themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

__all__ = ["Finding", "Location", "Rule", "RuleId", "Severity"]

RuleId = NewType("RuleId", str)


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered, so `max()` and `>=` work unaided.

    CRITICAL: code runs when the artifact is loaded.
    HIGH: hidden behaviour at inference (graph backdoor, file/network access, archive escape).
    MEDIUM: cannot be verified safe (unknown import, custom operator, unparseable member).
    LOW: format anomaly.
    INFO: for the record.
    """

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a level name such as ``"high"`` (case-insensitive).

        Raises:
            ValueError: the name is not a severity.
        """
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = "|".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r}; expected one of {names}") from None

    @property
    def label(self) -> str:
        """Lower-case name, as used on the command line and in JSON."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Rule:
    """A documented check. `id` is stable (``MW-PKL-001``) and never reused.

    Attributes:
        id: stable identifier, ``MW-<AREA>-<NNN>``.
        name: short kebab-case name (``dangerous-global``).
        severity: default severity of its findings.
        description: why this matters, for the rules documentation.
        remediation: what a user should do when it fires.
        references: URLs of advisories, specs or write-ups.
    """

    id: RuleId
    name: str
    severity: Severity
    description: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()

    @property
    def area(self) -> str:
        """The rule area, e.g. ``PKL`` for ``MW-PKL-001``."""
        return self.id.split("-")[1]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding sits.

    Attributes:
        path: the scanned file, relative to the scanned root (POSIX separators).
        members: chain of archive members / nested streams from the file down.
        offset: byte offset inside the innermost member (or the file), if known.
        node: graph node, layer or key name, if the format has such things.
    """

    path: str
    members: tuple[str, ...] = ()
    offset: int | None = None
    node: str | None = None

    @property
    def member(self) -> str | None:
        """The member chain joined with ``!`` (``archive.zip!model/data.pkl``)."""
        return "!".join(self.members) if self.members else None

    def __str__(self) -> str:
        text = self.path
        if self.members:
            text += "!" + "!".join(self.members)
        if self.offset is not None:
            text += f"@{self.offset}"
        if self.node is not None:
            text += f"#{self.node}"
        return text

    def sort_key(self) -> tuple[str, tuple[str, ...], int, str]:
        offset = -1 if self.offset is None else self.offset
        return (self.path, self.members, offset, self.node or "")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a scanner found.

    Attributes:
        rule: the rule that fired.
        severity: how bad this instance is (may differ from the rule's default).
        message: one sentence: what was found and why it matters.
        location: where it was found.
        evidence: the triggering fragment, e.g. ``os.system('id')``.
        remediation: what to do; defaults to the rule's remediation.
        details: extra machine-readable facts (shown in JSON/SARIF properties).
    """

    rule: Rule
    severity: Severity
    message: str
    location: Location
    evidence: str | None = None
    remediation: str | None = None
    details: tuple[tuple[str, str], ...] = field(default=())

    @property
    def advice(self) -> str:
        """The remediation to show: this finding's own, else its rule's."""
        return self.remediation or self.rule.remediation

    def sort_key(self) -> tuple[int, tuple[str, tuple[str, ...], int, str], str]:
        """Worst first, then by location, then by rule id."""
        return (-int(self.severity), self.location.sort_key(), self.rule.id)
