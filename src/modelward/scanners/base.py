"""The scanner interface: `Artifact` (bounded bytes to read), `Nested`, `Scanner`.

A scanner is a small stateless class: a `name`, the `suffixes` its format usually has
(used only to flag files whose extension lies), its `rules`, `claims(artifact)` deciding
by *content* whether the bytes are its format, and `scan(artifact)` yielding `Finding`s
and `Nested` streams (archive members, decompressed payloads) that the engine analyses
in turn with whichever scanner claims them. Scanners never call each other; embedded
pickles go to `modelward.pickle_analysis.analyze`.

An `Artifact` is a read-only, zero-copy view (``memoryview`` over an ``mmap`` for files
on disk) plus where it sits (file, member chain) and the scan's policy and budgets.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from modelward.errors import ResourceLimitError
from modelward.findings import Finding, Location, Rule, Severity
from modelward.policy import Limits, Policy

__all__ = ["Artifact", "Nested", "ScanBudget", "ScanContext", "ScanOutput", "Scanner"]

HEAD_BYTES = 64 * 1024

Buffer = bytes | bytearray | memoryview


@dataclass(slots=True)
class ScanBudget:
    """Budgets shared by a top-level file and everything nested in it."""

    deadline: float
    decompressed_bytes: int = 0

    def spend_decompressed(self, n: int, limits: Limits) -> None:
        """Account for `n` more decompressed bytes.

        Raises:
            ResourceLimitError: the per-file total is exceeded.
        """
        self.decompressed_bytes += n
        if self.decompressed_bytes > limits.max_total_bytes:
            raise ResourceLimitError(
                f"decompressed data exceeds the per-file budget of {limits.max_total_bytes} bytes",
                hint="raise [tool.modelward.limits] max-total-bytes if this file is trusted "
                "to be large",
            )


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What every scanner of one top-level file shares: policy, budgets, root path.

    Attributes:
        policy: the scan's policy and limits.
        budget: time and decompression budgets of the top-level file.
        fs_path: where the top-level file lives on disk, when it is a file (``None`` for
            bytes scanned from memory). Formats that reference sibling files (ONNX external
            data) resolve them against its folder; scanners only ever *stat* those files.
    """

    policy: Policy
    budget: ScanBudget
    fs_path: str | None = None

    @property
    def limits(self) -> Limits:
        return self.policy.limits

    def check_deadline(self) -> None:
        """Raise when the file's time budget is spent.

        Raises:
            ResourceLimitError: wall-clock budget exceeded.
        """
        if time.monotonic() > self.budget.deadline:
            raise ResourceLimitError(
                f"analysis took longer than {self.limits.max_seconds_per_file:g} s",
                hint="raise [tool.modelward.limits] max-seconds-per-file",
            )


class Artifact:
    """A bounded, read-only stream of bytes to scan, and where it lives.

    Args:
        data: the bytes (a ``memoryview`` over an mmap for files: nothing is copied).
        path: the top-level file, relative to the scanned root, POSIX separators.
        members: member chain from the file down to this stream.
        depth: nesting depth (0 for the file itself).
        context: policy and budgets.
    """

    __slots__ = ("_head", "context", "data", "depth", "format_detail", "members", "path")

    def __init__(
        self,
        data: Buffer,
        *,
        path: str,
        members: tuple[str, ...] = (),
        depth: int = 0,
        context: ScanContext,
    ) -> None:
        self.data = data if isinstance(data, memoryview) else memoryview(data)
        self.path = path
        self.members = members
        self.depth = depth
        self.context = context
        self.format_detail: str | None = None
        self._head: bytes | None = None

    @property
    def name(self) -> str:
        """Base name of the innermost stream (file or member name)."""
        full = self.members[-1] if self.members else self.path
        return full.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """Lower-case extension of `name` including the dot, or ``""``."""
        name = self.name
        dot = name.rfind(".")
        return name[dot:].lower() if dot > 0 else ""

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def head(self) -> bytes:
        """The first 64 KiB (or less), for sniffing."""
        if self._head is None:
            self._head = bytes(self.data[:HEAD_BYTES])
        return self._head

    @property
    def policy(self) -> Policy:
        return self.context.policy

    @property
    def limits(self) -> Limits:
        return self.context.policy.limits

    def view(self, start: int = 0, end: int | None = None) -> memoryview:
        """Zero-copy slice of the data (clamped to its bounds)."""
        return self.data[start:end]

    def read(self, start: int, length: int) -> bytes:
        """Copy `length` bytes from `start` (fewer at the end of data).

        Raises:
            ResourceLimitError: `length` exceeds the member size budget.
        """
        if length > self.limits.max_member_bytes:
            raise ResourceLimitError(
                f"refusing to read {length} bytes at once (limit {self.limits.max_member_bytes})",
                offset=start,
            )
        return bytes(self.data[start : start + length])

    def location(self, offset: int | None = None, node: str | None = None) -> Location:
        """A `Location` inside this artifact."""
        return Location(self.path, self.members, offset, node)

    def finding(
        self,
        rule: Rule,
        message: str,
        *,
        offset: int | None = None,
        node: str | None = None,
        evidence: str | None = None,
        severity: Severity | None = None,
        remediation: str | None = None,
        details: dict[str, str] | None = None,
    ) -> Finding:
        """Build a finding located in this artifact (severity defaults to the rule's)."""
        return Finding(
            rule=rule,
            severity=rule.severity if severity is None else severity,
            message=message,
            location=self.location(offset, node),
            evidence=evidence,
            remediation=remediation,
            details=tuple(sorted((details or {}).items())),
        )

    def check_deadline(self) -> None:
        """Raise `ResourceLimitError` when the file's time budget is spent."""
        self.context.check_deadline()


@dataclass(frozen=True, slots=True)
class Nested:
    """A stream inside an artifact for the engine to analyse in turn.

    Attributes:
        member: its name inside the parent (archive member name, ``<zlib>``, ...).
        data: the bytes, or a callable producing them on demand (decompression happens
            only when the engine gets to the member).
        expect: scanner name the container says this member must be (e.g. ``pickle``
            for a PyTorch ``data.pkl``). When the content is not claimed by that scanner
            the engine reports it rather than trusting the container.
    """

    member: str
    data: Buffer | Callable[[], Buffer]
    expect: str | None = None
    offset: int | None = field(default=None)


ScanOutput = Finding | Nested


class Scanner(abc.ABC):
    """One format: decides by content, then yields findings and nested streams.

    Class attributes:
        name: short format name (``pickle``, ``pytorch``...), used in reports.
        suffixes: usual file extensions of the format (lower case, with dot).
        rules: every rule this scanner can fire (documented in its module docstring).
        priority: among scanners that claim the same bytes, the highest wins (a PyTorch
            zip beats a plain zip).
        executes_code: loading this format can run code by design (pickle family), so an
            extension that hides it is worse.
    """

    name: ClassVar[str]
    suffixes: ClassVar[frozenset[str]] = frozenset()
    rules: ClassVar[tuple[Rule, ...]] = ()
    priority: ClassVar[int] = 0
    executes_code: ClassVar[bool] = False

    @abc.abstractmethod
    def claims(self, artifact: Artifact) -> bool:
        """Whether the bytes are this scanner's format (content only, never the name)."""

    @abc.abstractmethod
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        """Yield findings and nested streams, in location order.

        Raises:
            FormatError: the bytes are malformed beyond what findings can express.
            ResourceLimitError: a budget was exceeded.
        """
