"""Generic zip archives, and the archive checks every zip-based format shares.

A zip is a container: its members go back to the engine as nested streams (read lazily,
so a deflated member is inflated only when the engine gets to it). The archive itself can
hurt in three ways: members that escape the folder they are extracted into (``../``,
absolute paths, drive letters, symlinks), members that inflate far beyond their size
(bombs), and constructs that different zip readers resolve differently (duplicate names,
local/central header mismatches, prepended data, overlapping members), which is how
payloads are hidden from scanners. The PyTorch, TorchScript and ``.npz`` scanners reuse
`archive_findings` and `member_nested` from here.

Rules:
    MW-ZIP-001 path-traversal (HIGH): a member name escapes the extraction folder.
    MW-ZIP-002 link-member (HIGH): a member is a symbolic link.
    MW-ZIP-003 decompression-bomb (MEDIUM): members inflate beyond the ratio or size limits.
    MW-ZIP-004 parser-disagreement (MEDIUM): zip readers could see different members or bytes.
    MW-ZIP-005 unreadable-member (MEDIUM): a member is encrypted or uses an unsupported method.
    MW-ZIP-006 crc-mismatch (LOW): a member's CRC-32 does not match its content.
    MW-ZIP-007 trailing-data (LOW): bytes hide after the archive or extra end records exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.archive_paths import escape_reason
from modelward._internal.zipread import (
    ZIPFILE_METHODS,
    ZipArchive,
    ZipEntry,
    has_zip_tail,
    is_zip_head,
    parse_zip,
)
from modelward.findings import Finding, Location, Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Buffer, Nested, Scanner, ScanOutput

__all__ = [
    "ZIP_RULES",
    "ZipScanner",
    "archive_findings",
    "member_nested",
    "open_archive",
    "readable_members",
]

_ZIP_REF: Final = "https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT"

PATH_TRAVERSAL: Final = Rule(
    RuleId("MW-ZIP-001"),
    "path-traversal",
    Severity.HIGH,
    "A member name is absolute, has a drive letter or backslashes, or climbs out with "
    "'..'; extracting the archive writes outside the target folder (zip slip).",
    "Do not extract the archive; obtain the model from a trusted source.",
    ("https://security.snyk.io/research/zip-slip-vulnerability",),
)
LINK_MEMBER: Final = Rule(
    RuleId("MW-ZIP-002"),
    "link-member",
    Severity.HIGH,
    "A member is a symbolic link; extracting it lets later members or loaders read or "
    "write files outside the archive.",
    "Do not extract the archive; model archives have no reason to contain links.",
)
DECOMPRESSION_BOMB: Final = Rule(
    RuleId("MW-ZIP-003"),
    "decompression-bomb",
    Severity.MEDIUM,
    "Members declare an inflated size far beyond their compressed size, or beyond the "
    "size limits; loading exhausts memory or disk, and scanners that give up miss content.",
    "Do not load the archive; if it is trusted, raise max-compression-ratio / "
    "max-total-bytes in [tool.modelward.limits].",
)
PARSER_DISAGREEMENT: Final = Rule(
    RuleId("MW-ZIP-004"),
    "parser-disagreement",
    Severity.MEDIUM,
    "The archive contains a construct (duplicate or case-colliding names, local and central "
    "headers that disagree, prepended data, overlapping members, NUL in names) that zip "
    "readers resolve differently, so a loader may run bytes a scanner never saw. "
    "All candidates were analysed.",
    "Rebuild the archive with a standard tool (torch.save, numpy.savez, zipfile) from "
    "trusted data; do not load this one.",
    (_ZIP_REF,),
)
UNREADABLE_MEMBER: Final = Rule(
    RuleId("MW-ZIP-005"),
    "unreadable-member",
    Severity.MEDIUM,
    "A member is encrypted or compressed with a method the scanner cannot read, so its "
    "content was not analysed.",
    "Treat the member as unverified; ask the publisher for an unencrypted, "
    "deflate-or-stored archive.",
)
CRC_MISMATCH: Final = Rule(
    RuleId("MW-ZIP-006"),
    "crc-mismatch",
    Severity.LOW,
    "A member's CRC-32 does not match its content. PyTorch skips CRC checks and loads "
    "it anyway while zipfile refuses it: a sign of tampering after the archive was written.",
    "Obtain the file again from a trusted source.",
)
TRAILING_DATA: Final = Rule(
    RuleId("MW-ZIP-007"),
    "trailing-data",
    Severity.LOW,
    "Bytes follow the zip end record, or several end records exist; other readers may "
    "take a different one, and the extra bytes are a place to hide a payload.",
    "Rebuild the archive with a standard tool.",
)

ZIP_RULES: Final[tuple[Rule, ...]] = (
    PATH_TRAVERSAL,
    LINK_MEMBER,
    DECOMPRESSION_BOMB,
    PARSER_DISAGREEMENT,
    UNREADABLE_MEMBER,
    CRC_MISMATCH,
    TRAILING_DATA,
)

_ANOMALY_RULES: Final[dict[str, Rule]] = {
    "multiple-eocd": TRAILING_DATA,
    "comment-length": TRAILING_DATA,
    "encrypted": UNREADABLE_MEMBER,
    "unsupported-method": UNREADABLE_MEMBER,
}


def open_archive(artifact: Artifact) -> ZipArchive:
    """Parse the artifact's central directory under its limits.

    Raises:
        FormatError: not a usable zip.
        ResourceLimitError: too many members.
    """
    return parse_zip(artifact.data, artifact.limits, artifact.check_deadline)


def member_location(
    artifact: Artifact, entry: ZipEntry | str, offset: int | None = None
) -> Location:
    """Location of a member (the member chain extended by its name)."""
    name = entry if isinstance(entry, str) else entry.name
    return Location(artifact.path, (*artifact.members, name), offset)


def member_finding(
    artifact: Artifact,
    rule: Rule,
    entry: ZipEntry | str,
    message: str,
    *,
    offset: int | None = None,
    evidence: str | None = None,
    severity: Severity | None = None,
) -> Finding:
    """A finding located at an archive member."""
    return Finding(
        rule,
        rule.severity if severity is None else severity,
        message,
        member_location(artifact, entry, offset),
        evidence,
    )


def archive_findings(artifact: Artifact, archive: ZipArchive) -> Iterator[Finding]:
    """Findings about the archive as a whole: anomalies, escapes, links, bombs."""
    limits = artifact.limits
    views = archive.views()
    anomalies = list(dict.fromkeys(a for view in views for a in view.anomalies))
    for anomaly in anomalies:
        rule = _ANOMALY_RULES.get(anomaly.kind, PARSER_DISAGREEMENT)
        if anomaly.member is None:
            yield artifact.finding(
                rule,
                anomaly.message,
                offset=anomaly.offset,
                evidence=anomaly.evidence,
                details={"kind": anomaly.kind},
            )
        else:
            yield Finding(
                rule,
                rule.severity,
                anomaly.message,
                member_location(artifact, anomaly.member, anomaly.offset),
                anomaly.evidence,
                details=(("kind", anomaly.kind),),
            )
    declared = 0
    seen: set[tuple[bytes, int]] = set()
    for entry in (e for view in views for e in view.entries):
        if (entry.raw_name, entry.cd_offset) in seen:
            continue
        seen.add((entry.raw_name, entry.cd_offset))
        why = escape_reason(entry.name)
        if why is not None:
            yield member_finding(
                artifact,
                PATH_TRAVERSAL,
                entry,
                f"member name {why}; extraction writes outside the target folder",
                offset=entry.cd_offset,
                evidence=entry.name[:200],
            )
        if entry.is_symlink:
            target = None
            if (
                entry.compressed_size <= 4096
                and entry.method == 0
                and entry.data_offset is not None
            ):
                target = bytes(archive.data[entry.data_offset : entry.data_offset + entry.size])
            yield member_finding(
                artifact,
                LINK_MEMBER,
                entry,
                "member is a symbolic link; extracting it redirects reads or "
                "writes outside the archive",
                offset=entry.cd_offset,
                evidence=None if target is None else f"-> {target[:200]!r}",
            )
        if entry.method != 0:
            declared += entry.size
            if entry.size > max(entry.compressed_size, 1) * limits.max_compression_ratio:
                yield member_finding(
                    artifact,
                    DECOMPRESSION_BOMB,
                    entry,
                    f"member declares {entry.size} bytes from {entry.compressed_size} compressed "
                    f"(ratio above {limits.max_compression_ratio})",
                    offset=entry.cd_offset,
                )
            elif entry.size > limits.max_member_bytes:
                yield member_finding(
                    artifact,
                    DECOMPRESSION_BOMB,
                    entry,
                    f"member declares {entry.size} uncompressed bytes, above the "
                    f"{limits.max_member_bytes}-byte member limit",
                    offset=entry.cd_offset,
                )
    if declared > limits.max_total_bytes:
        yield artifact.finding(
            DECOMPRESSION_BOMB,
            f"members declare {declared} uncompressed bytes in total, above the "
            f"{limits.max_total_bytes}-byte limit",
        )


def member_nested(
    artifact: Artifact,
    archive: ZipArchive,
    entry: ZipEntry,
    expect: str | None = None,
    crc_sink: list[ZipEntry] | None = None,
) -> Nested:
    """A lazy nested stream for one member (inflated only when the engine reads it).

    When `crc_sink` is given, the member is appended to it if its CRC turns out wrong
    while it is read (the engine reads it before the scanner's generator resumes, so
    the scanner can report it right after yielding).
    """
    budget = artifact.context.budget
    limits = artifact.limits

    def spend(n: int) -> None:
        budget.spend_decompressed(n, limits)

    def load() -> Buffer:
        if crc_sink is None:
            return archive.member_bytes(entry, limits, spend)
        result: list[bool] = []
        # CRC of STORED members is checked only when small: tensors are never read.
        check = entry.method != 0 or entry.compressed_size <= (1 << 20)
        data = archive.member_bytes(entry, limits, spend, result if check else None)
        if result and not result[0]:
            crc_sink.append(entry)
        return data

    loader: Callable[[], Buffer] = load
    return Nested(entry.name, loader, expect=expect, offset=entry.data_offset)


def crc_findings(artifact: Artifact, bad: list[ZipEntry]) -> Iterator[Finding]:
    """Report (and clear) members whose CRC was found wrong while being read."""
    while bad:
        entry = bad.pop(0)
        yield member_finding(
            artifact,
            CRC_MISMATCH,
            entry,
            "CRC-32 or size does not match the member's content; PyTorch "
            "loads it anyway, zipfile refuses it",
            offset=entry.data_offset,
            evidence=f"declared crc {entry.crc:#010x}",
        )


def readable_members(archive: ZipArchive) -> Iterator[ZipEntry]:
    """Members with content to analyse, across every reader's view, each range once.

    Directories, links and encrypted or unreadable members are left out (the archive
    checks report them); members of different views that resolve to the same bytes are
    yielded once, members whose bytes differ (even if they overlap) each time.
    """
    done: set[tuple[int | None, int, int]] = set()
    for entry in (e for view in archive.views() for e in view.entries):
        if entry.is_dir or entry.is_symlink or entry.is_encrypted:
            continue
        key = (entry.data_offset, entry.compressed_size, entry.method)
        if key in done or entry.data_offset is None or entry.method not in ZIPFILE_METHODS:
            continue
        done.add(key)
        yield entry


class ZipScanner(Scanner):
    """Plain zip archives: archive checks, then every member handed back to the engine."""

    name: ClassVar[str] = "zip"
    suffixes: ClassVar[frozenset[str]] = frozenset({".zip"})
    rules: ClassVar[tuple[Rule, ...]] = ZIP_RULES
    priority: ClassVar[int] = -10

    @override
    def claims(self, artifact: Artifact) -> bool:
        return is_zip_head(artifact.head) or has_zip_tail(artifact.data)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        archive = open_archive(artifact)
        yield from archive_findings(artifact, archive)
        bad: list[ZipEntry] = []
        # Every reader's view when they differ; the same bytes are handed over once.
        for entry in readable_members(archive):
            yield member_nested(artifact, archive, entry, crc_sink=bad)
            yield from crc_findings(artifact, bad)


SCANNER: Final = ZipScanner()
