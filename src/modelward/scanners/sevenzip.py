"""7z archives: members analysed when py7zr is installed, never passed as clean.

ReversingLabs' "nullifAI" models (February 2025) were PyTorch checkpoints re-packed with
7z instead of the zip ``torch.save`` writes: ``torch.load`` cannot open them, but loaders
and pipelines that unpack archives first can, and scanners that did not know the format
reported nothing. With the optional ``py7zr`` (the ``compression`` extra) the header is
parsed, member names, links and declared sizes are checked as for zip archives, and each
member is decompressed in memory (never to disk; see `modelward._internal.sevenzip_read`)
under the member, ratio and per-file limits and handed back to the engine. Without
py7zr, or when the archive is encrypted or uses a coder py7zr lacks, a MEDIUM finding
says what was not analysed, with what the signature header tells about it.

Rules:
    MW-SEVENZIP-001 unanalysed-archive (MEDIUM): a 7z archive or member was not analysed.
    MW-SEVENZIP-002 path-traversal (HIGH): a member name escapes the extraction folder.
    MW-SEVENZIP-003 link-member (HIGH): a member is a symbolic link or junction.
    MW-SEVENZIP-004 decompression-bomb (MEDIUM): members declare sizes beyond the limits.
    MW-SEVENZIP-005 crc-mismatch (LOW): a member's CRC does not match its content.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Final

from typing_extensions import override

from modelward._internal import sevenzip_read
from modelward._internal.archive_paths import escape_reason
from modelward._internal.sevenzip_read import SevenZipListing, SevenZipMember
from modelward.errors import FormatError, ResourceLimitError
from modelward.findings import Finding, Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Buffer, Nested, Scanner, ScanOutput
from modelward.scanners.zip import member_finding

__all__ = ["SevenZipScanner"]

SIGNATURE: Final = b"7z\xbc\xaf\x27\x1c"
_HEADER: Final = 32
_NULLIFAI: Final = (
    "https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face"
)

UNANALYSED_ARCHIVE: Final = Rule(
    RuleId("MW-SEVENZIP-001"),
    "unanalysed-archive",
    Severity.MEDIUM,
    "A 7z archive, or a member of one, whose content was not analysed: py7zr (the optional "
    "7z decoder) is not installed, the archive or member is encrypted, or it uses a coder "
    "py7zr cannot decode. Such members are often a pickled model re-packed to evade "
    "scanners, as in the nullifAI models.",
    "Install the compression extra (pip install 'modelward[compression]') and scan again; "
    "otherwise extract the archive with a trusted tool and scan the extracted files. Prefer "
    "publishers who ship models as safetensors or torch.save zips.",
    (_NULLIFAI,),
)
PATH_TRAVERSAL: Final = Rule(
    RuleId("MW-SEVENZIP-002"),
    "path-traversal",
    Severity.HIGH,
    "A 7z member name is absolute, has a drive letter or backslashes, or climbs out with "
    "'..'; extracting the archive writes outside the target folder.",
    "Do not extract the archive; obtain the model from a trusted source.",
    ("https://security.snyk.io/research/zip-slip-vulnerability",),
)
LINK_MEMBER: Final = Rule(
    RuleId("MW-SEVENZIP-003"),
    "link-member",
    Severity.HIGH,
    "A 7z member is a symbolic link or junction; extracting it lets later members or "
    "loaders read or write files outside the archive.",
    "Do not extract the archive; model archives have no reason to contain links.",
)
DECOMPRESSION_BOMB: Final = Rule(
    RuleId("MW-SEVENZIP-004"),
    "decompression-bomb",
    Severity.MEDIUM,
    "Members declare an uncompressed size far beyond the archive's size, or beyond the size "
    "limits; extracting exhausts memory or disk, and scanners that give up miss content.",
    "Do not extract the archive; if it is trusted, raise max-compression-ratio / "
    "max-member-bytes / max-total-bytes in [tool.modelward.limits].",
)
CRC_MISMATCH: Final = Rule(
    RuleId("MW-SEVENZIP-005"),
    "crc-mismatch",
    Severity.LOW,
    "A member's CRC-32 does not match its content; 7-Zip reports an error but still writes "
    "the file. A sign of tampering after the archive was written. The content was analysed.",
    "Obtain the file again from a trusted source.",
)


def _signature_note(data: memoryview) -> tuple[str, str | None]:
    """What the 32-byte signature header says, for the not-analysed message."""
    if len(data) < _HEADER:
        return (
            f"7z signature but only {len(data)} bytes (the signature header needs {_HEADER})",
            None,
        )
    major, minor = data[6], data[7]
    (start_crc,) = struct.unpack_from("<I", data, 8)
    offset, size, _ = struct.unpack_from("<QQI", data, 12)
    notes = []
    if zlib.crc32(bytes(data[12:32])) != start_crc:
        notes.append("the start header CRC does not match")
    end = _HEADER + offset + size
    if end > len(data):
        notes.append(f"the header it points at ends at byte {end}, past the file")
    message = (
        f"7z archive (format {major}.{minor}, {len(data) - _HEADER} bytes of packed data "
        "and headers)" + (f"; {' and '.join(notes)}" if notes else "")
    )
    return message, f"next header at {_HEADER + offset}, {size} bytes"


class SevenZipScanner(Scanner):
    """7z archives: member checks and in-memory extraction with py7zr, else not analysed."""

    name: ClassVar[str] = "7z"
    suffixes: ClassVar[frozenset[str]] = frozenset({".7z"})
    rules: ClassVar[tuple[Rule, ...]] = (
        UNANALYSED_ARCHIVE,
        PATH_TRAVERSAL,
        LINK_MEMBER,
        DECOMPRESSION_BOMB,
        CRC_MISMATCH,
    )
    priority: ClassVar[int] = 0

    @override
    def claims(self, artifact: Artifact) -> bool:
        return artifact.head.startswith(SIGNATURE)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        artifact.format_detail = "7z"
        data = artifact.data
        summary, evidence = _signature_note(data)
        py7zr = sevenzip_read.load_py7zr()
        if py7zr is None or len(data) < _HEADER:
            why = "py7zr is not installed" if py7zr is None else "nothing could be analysed"
            yield artifact.finding(
                UNANALYSED_ARCHIVE,
                f"{summary}; its members were not analysed ({why})",
                offset=0,
                evidence=evidence,
            )
            return
        try:
            listing = sevenzip_read.list_archive(py7zr, data, artifact.limits.max_members)
        except FormatError as err:
            if isinstance(err, ResourceLimitError):
                raise
            yield artifact.finding(
                UNANALYSED_ARCHIVE,
                f"{summary}; its members were not analysed: {err.message}",
                offset=0,
                evidence=evidence,
            )
            return
        artifact.format_detail = f"7z ({len(listing.members)} members)"
        header_at, header_size = struct.unpack_from("<QQ", data, 12)
        if not listing.members and (header_at > 0 or _HEADER + header_at + header_size < len(data)):
            yield artifact.finding(
                UNANALYSED_ARCHIVE,
                f"{summary}; the header lists no members, so the packed bytes were not "
                "analysed",
                offset=_HEADER,
                evidence=evidence,
            )
        yield from _archive_findings(artifact, listing)
        bad_crc: list[SevenZipMember] = []
        for member in listing.members:
            artifact.check_deadline()
            if member.is_dir or member.is_link:
                continue
            if member.unsupported is not None:
                yield member_finding(
                    artifact,
                    UNANALYSED_ARCHIVE,
                    member.name,
                    f"member not analysed: {member.unsupported}",
                    evidence=" + ".join(member.methods) or None,
                )
                continue
            if member.size > artifact.limits.max_member_bytes:
                continue  # reported by _archive_findings; refusing beats a partial read
            yield Nested(member.name, b"" if member.empty else _loader(artifact, py7zr, member,
                                                                        bad_crc))
            while bad_crc:
                bad = bad_crc.pop()
                yield member_finding(
                    artifact,
                    CRC_MISMATCH,
                    bad.name,
                    "CRC-32 does not match the member's content; 7-Zip reports an error "
                    "but still extracts it",
                )


def _archive_findings(artifact: Artifact, listing: SevenZipListing) -> Iterator[Finding]:
    """Findings about the archive as a whole: encryption, escapes, links, bombs."""
    limits = artifact.limits
    if listing.encrypted:
        yield artifact.finding(
            UNANALYSED_ARCHIVE,
            "7z archive with encrypted (7zAES) content; encrypted members were not analysed",
            offset=0,
        )
    declared = 0
    for member in listing.members:
        why = escape_reason(member.name)
        if why is not None:
            yield member_finding(
                artifact,
                PATH_TRAVERSAL,
                member.name,
                f"member name {why}; extraction writes outside the target folder",
                evidence=member.name[:200],
            )
        if member.is_link:
            yield member_finding(
                artifact,
                LINK_MEMBER,
                member.name,
                "member is a symbolic link or junction; extracting it redirects reads or "
                "writes outside the archive",
            )
        declared += member.size
        if member.size > limits.max_member_bytes:
            yield member_finding(
                artifact,
                DECOMPRESSION_BOMB,
                member.name,
                f"member declares {member.size} uncompressed bytes, above the "
                f"{limits.max_member_bytes}-byte member limit; not analysed",
            )
    if declared > max(artifact.size, 1) * limits.max_compression_ratio:
        yield artifact.finding(
            DECOMPRESSION_BOMB,
            f"members declare {declared} uncompressed bytes from a {artifact.size}-byte "
            f"archive (ratio above {limits.max_compression_ratio})",
        )
    if declared > limits.max_total_bytes:
        yield artifact.finding(
            DECOMPRESSION_BOMB,
            f"members declare {declared} uncompressed bytes in total, above the "
            f"{limits.max_total_bytes}-byte limit",
        )


def _loader(
    artifact: Artifact, py7zr: Any, member: SevenZipMember, bad_crc: list[SevenZipMember]
) -> Callable[[], Buffer]:
    """A callable decompressing `member` in memory when the engine gets to it."""
    budget = artifact.context.budget
    limits = artifact.limits

    def spend(n: int) -> None:
        budget.spend_decompressed(n, limits)
        artifact.check_deadline()

    def load() -> Buffer:
        data, crc_ok = sevenzip_read.extract_member(
            py7zr,
            artifact.data,
            member,
            cap=min(member.size, limits.max_member_bytes),
            work_budget=limits.max_total_bytes - budget.decompressed_bytes,
            on_write=spend,
            on_extra_work=spend,
        )
        if not crc_ok:
            bad_crc.append(member)
        return data

    return load


SCANNER: Final = SevenZipScanner()
