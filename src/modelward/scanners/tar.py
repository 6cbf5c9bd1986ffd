"""Tar archives (ustar, GNU, pax), including legacy PyTorch tar checkpoints.

Members are listed with Python's ``tarfile`` (the reader ``torch.load``'s legacy path
uses) over a read-only view of the artifact: nothing is extracted, member data is handed
back to the engine as zero-copy slices, and each header read is bounded. Members that
escape the extraction folder (absolute paths, ``..``, links pointing outside, devices)
are reported. Compressed tars (``.tar.gz``) reach this scanner through the compressed
scanner.

A tar holding ``storages``, ``tensors`` and ``pickle`` is a legacy PyTorch checkpoint:
``torch.load`` unpickles every pickle in ``storages`` and ``tensors`` and then ``pickle``,
taking the *last* member of each name; all are analysed.

Rules:
    MW-TAR-001 path-traversal (HIGH): a member name or link target escapes the extraction folder.
    MW-TAR-002 link-member (MEDIUM): a symbolic or hard link inside the archive.
    MW-TAR-003 special-member (MEDIUM): a device, FIFO or sparse member.
    MW-TAR-004 duplicate-member (MEDIUM): several members share a name; readers pick different ones.
    MW-TAR-005 corrupt-archive (MEDIUM): the archive is truncated or a header is corrupt.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward._internal.archive_paths import DRIVE, escape_reason
from modelward.errors import ResourceLimitError
from modelward.findings import Finding, Location, Rule, RuleId, Severity
from modelward.pickle_analysis import PICKLE_RULES
from modelward.scanners.base import Artifact, Nested, Scanner, ScanOutput
from modelward.scanners.pytorch import member_artifact
from modelward.scanners.pytorch_legacy import LEGACY_FORMAT, LEGACY_RULES, walk_legacy_tar_member

__all__ = ["TarScanner", "is_tar_header"]

PATH_TRAVERSAL: Final = Rule(
    RuleId("MW-TAR-001"),
    "path-traversal",
    Severity.HIGH,
    "A member name is absolute or climbs out with '..', or a link points outside the "
    "archive; extracting it writes or reads outside the target folder.",
    "Do not extract the archive; obtain the model from a trusted source.",
    ("https://docs.python.org/3/library/tarfile.html#tarfile-extraction-filter",),
)
LINK_MEMBER: Final = Rule(
    RuleId("MW-TAR-002"),
    "link-member",
    Severity.MEDIUM,
    "A symbolic or hard link; extraction or loaders follow it to content the scan of this "
    "member did not cover.",
    "Replace links by the files they point to.",
)
SPECIAL_MEMBER: Final = Rule(
    RuleId("MW-TAR-003"),
    "special-member",
    Severity.MEDIUM,
    "A device, FIFO or sparse member; extracting devices or FIFOs is dangerous, and sparse "
    "members are laid out differently from what a simple reader sees.",
    "Model archives have no reason to contain these; rebuild the archive.",
)
DUPLICATE_MEMBER: Final = Rule(
    RuleId("MW-TAR-004"),
    "duplicate-member",
    Severity.MEDIUM,
    "Several members share a name: tarfile.getmember (and torch.load) takes the last, "
    "extraction overwrites in order, other tools take the first. All were analysed.",
    "Rebuild the archive with unique names.",
)
CORRUPT_ARCHIVE: Final = Rule(
    RuleId("MW-TAR-005"),
    "corrupt-archive",
    Severity.MEDIUM,
    "The archive is truncated or a header is corrupt; members after that point were not "
    "analysed, while lenient readers may still find them.",
    "Obtain the archive again from a trusted source.",
)

TAR_RULES: Final[tuple[Rule, ...]] = (
    PATH_TRAVERSAL,
    LINK_MEMBER,
    SPECIAL_MEMBER,
    DUPLICATE_MEMBER,
    CORRUPT_ARCHIVE,
)

_MAX_HEADER_READ: Final = 1 << 20
_LEGACY_MEMBERS: Final = frozenset({"storages", "tensors", "pickle"})


def _octal(field: bytes) -> int | None:
    if field[:1] in (b"\x80", b"\xff"):
        return 0  # base-256 number: tarfile accepts it
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def is_tar_header(block: bytes) -> bool:
    """Whether a 512-byte block is a tar header with a valid checksum (as tarfile checks)."""
    if len(block) < 512 or block.count(0) == 512:
        return False
    stored = _octal(block[148:156])
    if stored is None or _octal(block[124:136]) is None:
        return False
    unsigned = sum(block[:148]) + 256 + sum(block[156:512])
    signed = (
        sum(b - 256 if b > 127 else b for b in block[:148])
        + 256
        + sum(b - 256 if b > 127 else b for b in block[156:512])
    )
    return stored in (unsigned, signed)


class _BoundedView(io.RawIOBase):
    """A read-only, seekable file over a memoryview that refuses oversized reads.

    ``tarfile`` only reads headers (and GNU long names / pax records) through it, never
    member data, so each read is capped.
    """

    def __init__(self, view: memoryview, cap: int) -> None:
        self._view = view
        self._pos = 0
        self._cap = cap

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if want > self._cap:
            raise ResourceLimitError(
                f"tar header block of {want} bytes exceeds {self._cap}", offset=self._pos
            )
        chunk = self._view[self._pos : self._pos + want]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._view) - self._pos
        if size > self._cap:
            raise ResourceLimitError(
                f"tar header block of {size} bytes exceeds {self._cap}", offset=self._pos
            )
        data = bytes(self._view[self._pos : self._pos + size])
        self._pos += len(data)
        return data


def _link_escapes(member: tarfile.TarInfo) -> bool:
    target = member.linkname
    if target.startswith("/") or DRIVE.match(target):
        return True
    base = [] if member.islnk() else member.name.split("/")[:-1]
    depth = len([p for p in base if p not in ("", ".")])
    for part in target.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class TarScanner(Scanner):
    """Tar archives: member checks, members back to the engine, legacy torch pickles."""

    name: ClassVar[str] = "tar"
    suffixes: ClassVar[frozenset[str]] = frozenset({".tar"})
    rules: ClassVar[tuple[Rule, ...]] = TAR_RULES + LEGACY_RULES + PICKLE_RULES
    priority: ClassVar[int] = 0

    @override
    def claims(self, artifact: Artifact) -> bool:
        return is_tar_header(artifact.head[:512])

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        members, error = self._members(artifact)
        if error is not None:
            yield artifact.finding(
                CORRUPT_ARCHIVE, error, offset=members[-1].offset if members else 0
            )
        names: dict[str, int] = {}
        for member in members:
            names[member.name] = names.get(member.name, 0) + 1
        legacy = _LEGACY_MEMBERS <= set(names)
        if legacy:
            artifact.format_detail = "pytorch-legacy-tar"
            yield artifact.finding(
                LEGACY_FORMAT,
                "legacy PyTorch tar checkpoint: torch.load unpickles storages, tensors and pickle",
            )
        reported: set[str] = set()
        for member in members:
            yield from self._member_findings(artifact, member, names, reported)
            if not member.isreg():
                continue
            start, size = member.offset_data, member.size
            if start + size > artifact.size:
                yield self._at(
                    artifact,
                    CORRUPT_ARCHIVE,
                    member,
                    f"member data runs {start + size - artifact.size} bytes past the end",
                )
                size = max(0, artifact.size - start)
            data = artifact.view(start, start + size)
            if legacy and member.name in ("storages", "tensors"):
                child = member_artifact(artifact, member.name, data)
                yield from walk_legacy_tar_member(child, member.name)
            elif legacy and member.name in ("pickle", "sys_info"):
                yield Nested(member.name, data, expect="pickle", offset=start)
            else:
                yield Nested(member.name, data, offset=start)

    @staticmethod
    def _at(
        artifact: Artifact,
        rule: Rule,
        member: tarfile.TarInfo,
        message: str,
        evidence: str | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        return Finding(
            rule,
            rule.severity if severity is None else severity,
            message,
            Location(artifact.path, (*artifact.members, member.name), member.offset),
            evidence,
        )

    def _member_findings(
        self, artifact: Artifact, member: tarfile.TarInfo, names: dict[str, int], reported: set[str]
    ) -> Iterator[Finding]:
        why = escape_reason(member.name, backslash_is_separator=True)
        if why is not None:
            yield self._at(
                artifact,
                PATH_TRAVERSAL,
                member,
                f"member name {why}; extraction writes outside the target folder",
                evidence=member.name[:200],
            )
        if member.issym() or member.islnk():
            kind = "symbolic link" if member.issym() else "hard link"
            if _link_escapes(member):
                yield self._at(
                    artifact,
                    PATH_TRAVERSAL,
                    member,
                    f"{kind} points outside the archive",
                    evidence=f"-> {member.linkname[:200]}",
                )
            else:
                yield self._at(
                    artifact,
                    LINK_MEMBER,
                    member,
                    f"{kind} inside the archive",
                    evidence=f"-> {member.linkname[:200]}",
                )
        elif member.ischr() or member.isblk() or member.isfifo():
            yield self._at(artifact, SPECIAL_MEMBER, member, "device or FIFO member")
        elif member.issparse():
            yield self._at(
                artifact,
                SPECIAL_MEMBER,
                member,
                "sparse member: its data is not laid out as stored; not analysed",
            )
        if names.get(member.name, 0) > 1 and member.name not in reported:
            reported.add(member.name)
            yield self._at(
                artifact,
                DUPLICATE_MEMBER,
                member,
                f"{names[member.name]} members are named {member.name!r}; readers "
                "pick different ones",
                evidence=member.name[:200],
            )

    @staticmethod
    def _members(artifact: Artifact) -> tuple[list[tarfile.TarInfo], str | None]:
        limits = artifact.limits
        view = _BoundedView(artifact.data, min(_MAX_HEADER_READ, limits.max_header_bytes))
        members: list[tarfile.TarInfo] = []
        try:
            tar = tarfile.open(fileobj=view, mode="r:", format=tarfile.PAX_FORMAT)
        except ResourceLimitError as err:
            return members, f"oversized header: {err.message}"
        except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeError) as err:
            return members, f"not a readable tar archive: {err}"
        try:
            while True:
                artifact.check_deadline()
                member = tar.next()
                if member is None:
                    return members, None
                members.append(member)
                if len(members) > limits.max_members:
                    raise ResourceLimitError(
                        f"archive has more than {limits.max_members} members", offset=member.offset
                    )
        except ResourceLimitError as err:
            if "tar header block" in err.message:
                return members, f"oversized header: {err.message}"
            raise
        except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeError) as err:
            return members, f"corrupt header after {len(members)} members: {err}"


SCANNER: Final = TarScanner()
