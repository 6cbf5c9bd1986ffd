"""A bounded, zero-copy zip reader that sees what PyTorch's and Python's readers see.

Why not ``zipfile``: most published scanner bypasses live in the gap between the zip
parser a scanner uses and the one the loader uses. ``torch.load`` reads zips with miniz
(``caffe2/serialize/inline_container.cc``): it takes the central directory at its raw
offset, looks names up case-insensitively (ASCII ``tolower``) with a binary search,
ignores the local header's name, sizes and method, skips CRC checks (PyTorch builds
miniz with ``MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS``) and only refuses encrypted or
non-deflate members. Python's ``zipfile`` (``numpy.load`` for ``.npz``, joblib, keras)
shifts offsets by any prepended bytes, keeps the *last* of duplicate names, truncates
names at NUL, compares the local header name and checks CRCs. This module parses the
archive once, over the artifact's ``memoryview``, and records every place where those
readers could disagree as an `Anomaly`, so that scanners fail closed.

Only headers are read while parsing; a STORED member is returned as a zero-copy view
and a compressed one is inflated on demand under size, ratio and budget caps. The work is
split by idea: `modelward._internal.zipformat` (record layout, `ZipEntry`, `Anomaly`),
`modelward._internal.zipcheck` (header and cross-member disagreements),
`modelward._internal.zipinflate` (member bytes under limits); this module finds the
directories each reader uses and re-exports the public names.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from modelward._internal.zipcheck import check_entries, read_local_headers
from modelward._internal.zipformat import (
    BZIP2,
    CENTRAL_SIG,
    CENTRAL_SIZE,
    DEFLATED,
    EOCD_SIG,
    EOCD_SIZE,
    FLAG_DESCRIPTOR,
    FLAG_ENCRYPTED,
    FLAG_MASKED_HEADERS,
    FLAG_PATCH,
    FLAG_STRONG_ENCRYPTION,
    FLAG_UTF8,
    LOCAL_SIG,
    LOCAL_SIZE,
    LZMA,
    MAX_COMMENT,
    MINIZ_METHODS,
    STORED,
    ZIP64_EOCD_SIG,
    ZIP64_EOCD_SIZE,
    ZIP64_LOCATOR_SIG,
    ZIP64_LOCATOR_SIZE,
    ZIPFILE_METHODS,
    Anomaly,
    ZipEntry,
    decode_name,
    has_zip_tail,
    is_zip_head,
    zip64_extra,
)
from modelward._internal.zipinflate import read_member
from modelward.errors import FormatError, ResourceLimitError
from modelward.policy import Limits

__all__ = [
    "BZIP2",
    "CENTRAL_SIG",
    "CENTRAL_SIZE",
    "DEFLATED",
    "EOCD_SIG",
    "EOCD_SIZE",
    "FLAG_DESCRIPTOR",
    "FLAG_ENCRYPTED",
    "FLAG_MASKED_HEADERS",
    "FLAG_PATCH",
    "FLAG_STRONG_ENCRYPTION",
    "FLAG_UTF8",
    "LOCAL_SIG",
    "LOCAL_SIZE",
    "LZMA",
    "MAX_COMMENT",
    "MINIZ_METHODS",
    "STORED",
    "ZIP64_EOCD_SIG",
    "ZIP64_EOCD_SIZE",
    "ZIP64_LOCATOR_SIG",
    "ZIP64_LOCATOR_SIZE",
    "ZIPFILE_METHODS",
    "Anomaly",
    "ZipArchive",
    "ZipEntry",
    "has_zip_tail",
    "is_zip_head",
    "parse_zip",
]


@dataclass(slots=True)
class ZipArchive:
    """A parsed zip: entries in central directory order and the anomalies found.

    Attributes:
        data: the archive bytes (a view; never copied).
        entries: central directory records in order.
        anomalies: disagreements between readers and hostile constructs.
        eocd_offset: where the end of central directory record sits.
        prepended: the shift zipfile applies to every stored offset: bytes before the
            archive proper (negative when the directory overruns its end record; 0 in
            miniz's view, which takes offsets as stored).
        comment: the archive comment.
        alternates: the archive as the other reader sees it (miniz's directory and raw
            offsets when this is zipfile's view, which it is whenever zipfile can read the
            archive), when both parse and they differ.
    """

    data: memoryview
    entries: list[ZipEntry]
    anomalies: list[Anomaly] = field(default_factory=list)
    eocd_offset: int = 0
    prepended: int = 0
    comment: bytes = b""
    alternates: list[ZipArchive] = field(default_factory=list)

    @property
    def alternate(self) -> ZipArchive | None:
        """The other reader's view, when it differs from this one."""
        return self.alternates[0] if self.alternates else None

    def views(self) -> list[ZipArchive]:
        """This archive, then the other reader's view of it when the two differ.

        The same file is two archives when the end record's offsets do not match where
        the central directory sits (``zipfile`` shifts every offset, its "concat", while
        miniz takes them as stored), when the ZIP64 locator points elsewhere than the
        adjacent ZIP64 record (miniz follows it, zipfile does not), or when the entry
        count disagrees with the records the directory holds (zipfile reads by size,
        miniz by count). Every view must be analysed.
        """
        return [self, *self.alternates]

    def find_ci(self, raw_name: bytes) -> list[ZipEntry]:
        """Entries whose name equals `raw_name` under miniz's ASCII case folding.

        PyTorch looks every record up this way; more than one hit means the loader's
        binary search may pick any of them.
        """
        key = raw_name.lower()
        return [e for e in self.entries if e.raw_name.lower() == key]

    def member_bytes(
        self,
        entry: ZipEntry,
        limits: Limits,
        spend: Callable[[int], None] | None = None,
        crc_result: list[bool] | None = None,
    ) -> memoryview | bytes:
        """The member's uncompressed content, zero-copy when STORED.

        Args:
            entry: the member.
            limits: size and ratio caps.
            spend: called with every decompressed byte count (per-file budget).
            crc_result: when given, receives whether the CRC matched (computing it for
                STORED members reads their bytes).

        Raises:
            FormatError: the member cannot be read (encrypted, unknown method, corrupt).
            ResourceLimitError: the member is larger than the caps allow.
        """
        return read_member(self.data, entry, limits, spend, crc_result)


def _find_eocd(data: memoryview, anomalies: list[Anomaly]) -> int:
    """Offset of the end record both miniz and zipfile choose (the last complete one)."""
    size = len(data)
    window_start = max(0, size - (MAX_COMMENT + EOCD_SIZE))
    window = bytes(data[window_start:])
    positions = []
    pos = window.rfind(EOCD_SIG)
    while pos >= 0:
        positions.append(window_start + pos)
        pos = window.rfind(EOCD_SIG, 0, pos)
    complete = [p for p in positions if size - p >= EOCD_SIZE]
    if not complete:
        raise FormatError("no end of central directory record: not a zip archive")
    if len(positions) > 1:
        anomalies.append(
            Anomaly(
                "multiple-eocd",
                f"{len(positions)} end-of-central-directory signatures; readers that search "
                "forward or stop at another one see a different archive",
                offset=positions[-1],
                evidence=", ".join(str(p) for p in sorted(positions)[:8]),
            )
        )
    return complete[0]


@dataclass(frozen=True, slots=True)
class _Directory:
    """Where one reader takes the central directory from.

    Attributes:
        reader: ``zipfile`` or ``miniz`` (PyTorch).
        n_total: the member count that reader is told.
        cd_size: the directory size it is told.
        cd_offset: the directory offset it is told (as stored).
        shift: what it adds to every stored offset (zipfile's "concat"; 0 for miniz).
        by_size: whether it reads records until `cd_size` bytes are consumed (zipfile,
            which ignores the count) rather than `n_total` records (miniz).
        error: why this reader refuses the end records, when it does.
    """

    reader: str
    n_total: int
    cd_size: int
    cd_offset: int
    shift: int
    by_size: bool
    error: FormatError | None = None

    @property
    def start(self) -> int:
        return self.cd_offset + self.shift

    @property
    def end(self) -> int:
        return self.start + self.cd_size


_ZIP64_FIELDS: Final = "<4sQHHIIQQQQ"


def _zip64_values(data: memoryview, at: int) -> tuple[int, int, int, int, int, int] | None:
    """(disk, cd_disk, n_disk, n_total, cd_size, cd_offset) of the ZIP64 record at `at`."""
    if at < 0 or at + ZIP64_EOCD_SIZE > len(data) or bytes(data[at : at + 4]) != ZIP64_EOCD_SIG:
        return None
    (_, _, _, _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset) = struct.unpack_from(
        _ZIP64_FIELDS, data, at
    )
    return disk, cd_disk, n_disk, n_total, cd_size, cd_offset


def _directories(data: memoryview, eocd: int, anomalies: list[Anomaly]) -> list[_Directory]:
    """Where zipfile, then miniz, take the central directory from.

    Both read the classic end record and, when a ZIP64 locator sits right before it, a
    ZIP64 record, but not the same one: miniz follows the locator's pointer, zipfile
    reads the 56 bytes before the locator (and falls back to the classic record when no
    ZIP64 signature is there). zipfile then shifts every offset by the distance between
    where the directory should end and where it really ends; miniz takes them as stored.
    """
    size = len(data)
    classic = struct.unpack_from("<4xHHHHII", data, eocd)
    zipfile_values: tuple[int, ...] = classic
    miniz_values: tuple[int, ...] = classic
    zipfile_end, miniz_error = eocd, None
    locator = eocd - ZIP64_LOCATOR_SIZE
    if locator >= 0 and bytes(data[locator : locator + 4]) == ZIP64_LOCATOR_SIG:
        (_, _, rel, _) = struct.unpack_from("<4sIQI", data, locator)
        adjacent = locator - ZIP64_EOCD_SIZE
        if rel != adjacent:
            anomalies.append(
                Anomaly(
                    "zip64-locator",
                    "the ZIP64 locator points elsewhere than the record right before it; "
                    "miniz (PyTorch) follows the pointer, zipfile reads the adjacent record, "
                    "so each reads its own central directory (both analysed)",
                    offset=locator,
                    evidence=f"points at {rel}, adjacent record at {adjacent}",
                )
            )
        near = _zip64_values(data, adjacent)
        if near is not None:
            zipfile_values, zipfile_end = near, adjacent
        far = _zip64_values(data, rel)
        if far is None:
            miniz_error = FormatError(
                "ZIP64 end record not found where the locator points", offset=rel
            )
        else:
            miniz_values = far
        records = [r for r in dict.fromkeys((near, far)) if r is not None]
        for record in records:
            fields = zip(classic[3:], record[3:], ("entry count", "size", "offset"), strict=True)
            for old, new, what in fields:
                if old not in (0xFFFF, 0xFFFFFFFF) and old != new:
                    anomalies.append(
                        Anomaly(
                            "zip64-mismatch",
                            f"central directory {what} differs between the ZIP64 record ({new}) "
                            f"and the classic end record ({old}); readers ignoring ZIP64 see "
                            "another archive",
                            offset=eocd,
                        )
                    )
    directories = []
    for reader, values, error in (
        ("zipfile", zipfile_values, None),
        ("miniz", miniz_values, miniz_error),
    ):
        disk, cd_disk, n_disk, n_total, cd_size, cd_offset = values
        if error is None and (disk != 0 or cd_disk != 0 or n_disk != n_total):
            error = FormatError("multi-disk (spanned) zip archives are not supported", offset=eocd)
        shift = zipfile_end - cd_size - cd_offset if reader == "zipfile" else 0
        if reader == "miniz" and error is None and cd_offset + cd_size > size:
            error = FormatError("central directory lies beyond the end of the file", offset=eocd)
        directories.append(
            _Directory(reader, n_total, cd_size, cd_offset, shift, reader == "zipfile", error)
        )
    return directories


def parse_zip(
    data: memoryview,
    limits: Limits,
    check_deadline: Callable[[], None] | None = None,
) -> ZipArchive:
    """Parse the central directories zipfile and miniz use, and local headers (never data).

    Returns:
        The first reader's view that parses (zipfile's, else miniz's), with the other
        one in `ZipArchive.alternates` when both parse and they differ.

    Raises:
        FormatError: no usable central directory.
        ResourceLimitError: more members than ``limits.max_members``.
    """
    anomalies: list[Anomaly] = []
    size = len(data)
    eocd = _find_eocd(data, anomalies)
    (comment_len,) = struct.unpack_from("<H", data, eocd + 20)
    comment = bytes(data[eocd + EOCD_SIZE : eocd + EOCD_SIZE + comment_len])
    trailing = size - (eocd + EOCD_SIZE + comment_len)
    if trailing != 0:
        anomalies.append(
            Anomaly(
                "comment-length",
                f"the end record's comment length ({comment_len}) does not match the "
                f"{size - eocd - EOCD_SIZE} bytes that follow it; data hides after the archive",
                offset=eocd,
            )
        )
    directories = _directories(data, eocd, anomalies)
    for directory in directories:
        if directory.error is None and directory.n_total > limits.max_members:
            raise ResourceLimitError(
                f"archive declares {directory.n_total} members (limit {limits.max_members})",
                offset=eocd,
            )
    concat = directories[0].shift
    if concat != 0:
        anomalies.append(
            Anomaly(
                "prepended-data",
                (
                    f"{concat} bytes precede the archive proper; zipfile shifts every offset "
                    "by them"
                    if concat > 0
                    else "the end record's central directory size and offset overrun it; "
                    f"zipfile shifts every offset by {concat}"
                )
                + " while PyTorch's reader does not, so the two see different members (polyglot)",
                offset=0,
            )
        )
    # Each reader's archive is analysed; either alone is enough to parse.
    views: list[ZipArchive] = []
    seen: set[tuple[tuple[bytes, int | None, int, int, int], ...]] = set()
    error: FormatError | None = None
    for directory in directories:
        if directory.error is not None:
            error = error or directory.error
            continue
        try:
            view = _read_directory(
                data, limits, check_deadline, list(anomalies), eocd, comment, directory
            )
        except FormatError as err:
            error = error or err
            continue
        key = tuple(
            (e.raw_name, e.data_offset, e.compressed_size, e.size, e.method) for e in view.entries
        )
        if key not in seen:
            seen.add(key)
            views.append(view)
    if not views:
        assert error is not None
        raise error
    main = views[0]
    main.alternates = views[1:]
    return main


def _read_directory(
    data: memoryview,
    limits: Limits,
    check_deadline: Callable[[], None] | None,
    anomalies: list[Anomaly],
    eocd: int,
    comment: bytes,
    directory: _Directory,
) -> ZipArchive:
    """Read one reader's central records and their local headers.

    Raises:
        FormatError: the records are not where the offsets say.
        ResourceLimitError: the directory holds more records than ``limits.max_members``.
    """
    size = len(data)
    start, cd_end, concat = directory.start, directory.end, directory.shift
    if start < 0:
        raise FormatError("central directory offset points before the file", offset=eocd)
    entries: list[ZipEntry] = []
    pos = start
    index = 0
    while pos < cd_end if directory.by_size else index < directory.n_total:
        if index >= limits.max_members:
            raise ResourceLimitError(
                f"central directory holds more than {limits.max_members} members", offset=pos
            )
        if check_deadline is not None and index % 4096 == 0:
            check_deadline()
        if pos + CENTRAL_SIZE > size or bytes(data[pos : pos + 4]) != CENTRAL_SIG:
            raise FormatError(f"central directory record {index} is corrupt", offset=pos)
        (
            _,
            _,
            create_ver,
            _,
            flags,
            method,
            _,
            _,
            crc,
            csize,
            usize,
            nlen,
            xlen,
            clen,
            _,
            _,
            ext_attr,
            lho,
        ) = struct.unpack_from("<4sBBHHHHHIIIHHHHHII", data, pos)
        raw_name = bytes(data[pos + CENTRAL_SIZE : pos + CENTRAL_SIZE + nlen])
        extra = bytes(data[pos + CENTRAL_SIZE + nlen : pos + CENTRAL_SIZE + nlen + xlen])
        usize, csize, lho = zip64_extra(extra, usize, csize, lho)
        entries.append(
            ZipEntry(
                index=index,
                raw_name=raw_name,
                name=decode_name(raw_name, flags),
                flags=flags,
                method=method,
                crc=crc,
                compressed_size=csize,
                size=usize,
                header_offset=lho,
                external_attr=ext_attr,
                create_system=create_ver,
                cd_offset=pos,
            )
        )
        pos += CENTRAL_SIZE + nlen + xlen + clen
        index += 1
    if pos > cd_end:
        raise FormatError("central directory overruns its end record", offset=pos)
    if directory.by_size and len(entries) != directory.n_total:
        anomalies.append(
            Anomaly(
                "entry-count",
                f"the end record declares {directory.n_total} members but {len(entries)} "
                "records fill the central directory; zipfile reads every record, PyTorch's "
                "reader (miniz) only the declared count (or refuses the archive), so they "
                "see different members (both analysed)",
                offset=eocd,
                evidence=f"declared {directory.n_total}, found {len(entries)}",
            )
        )
    archive = ZipArchive(data, entries, anomalies, eocd, concat, comment)
    read_local_headers(data, entries, anomalies, concat)
    check_entries(data, entries, anomalies, concat, cd_start=start, cd_end=cd_end)
    return archive
