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
        alternate: the archive as the other reader sees it (miniz's raw offsets when this
            is zipfile's shifted view, or the reverse), when both parse and they differ.
    """

    data: memoryview
    entries: list[ZipEntry]
    anomalies: list[Anomaly] = field(default_factory=list)
    eocd_offset: int = 0
    prepended: int = 0
    comment: bytes = b""
    alternate: ZipArchive | None = None

    def views(self) -> list[ZipArchive]:
        """This archive, then the other reader's view of it when the two differ.

        When the end record's offsets do not match where the central directory sits,
        ``zipfile`` shifts every offset (its "concat") while miniz (PyTorch) takes them
        as stored: the same file is two archives, and both must be analysed.
        """
        return [self] if self.alternate is None else [self, self.alternate]

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


def parse_zip(
    data: memoryview,
    limits: Limits,
    check_deadline: Callable[[], None] | None = None,
) -> ZipArchive:
    """Parse the central directory and local headers (never member data).

    Raises:
        FormatError: no usable central directory.
        ResourceLimitError: more members than ``limits.max_members``.
    """
    anomalies: list[Anomaly] = []
    size = len(data)
    eocd = _find_eocd(data, anomalies)
    (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len) = struct.unpack_from(
        "<4sHHHHIIH", data, eocd
    )
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
    zip64_eocd_at = None
    locator = eocd - ZIP64_LOCATOR_SIZE
    if locator >= 0 and bytes(data[locator : locator + 4]) == ZIP64_LOCATOR_SIG:
        (_, _, rel, _) = struct.unpack_from("<4sIQI", data, locator)
        zip64_eocd_at = rel
        if rel != locator - ZIP64_EOCD_SIZE:
            anomalies.append(
                Anomaly(
                    "zip64-locator",
                    "the ZIP64 locator points elsewhere than the record right before it; "
                    "miniz (PyTorch) follows the pointer, zipfile reads the adjacent record",
                    offset=locator,
                )
            )
        if rel + ZIP64_EOCD_SIZE > size or bytes(data[rel : rel + 4]) != ZIP64_EOCD_SIG:
            raise FormatError("ZIP64 end record not found where the locator points", offset=rel)
        (_, _, _, _, disk, cd_disk, n_disk64, n_total64, cd_size64, cd_offset64) = (
            struct.unpack_from("<4sQHHIIQQQQ", data, rel)
        )
        for old, new, what in (
            (n_total, n_total64, "entry count"),
            (cd_size, cd_size64, "size"),
            (cd_offset, cd_offset64, "offset"),
        ):
            if old not in (0xFFFF, 0xFFFFFFFF) and old != new:
                anomalies.append(
                    Anomaly(
                        "zip64-mismatch",
                        f"central directory {what} differs between the ZIP64 record ({new}) "
                        "and the "
                        f"classic end record ({old}); readers ignoring ZIP64 see another archive",
                        offset=eocd,
                    )
                )
        n_disk, n_total, cd_size, cd_offset = n_disk64, n_total64, cd_size64, cd_offset64
    if disk != 0 or cd_disk != 0 or n_disk != n_total:
        raise FormatError("multi-disk (spanned) zip archives are not supported", offset=eocd)
    if n_total > limits.max_members:
        raise ResourceLimitError(
            f"archive declares {n_total} members (limit {limits.max_members})", offset=eocd
        )
    # zipfile trusts where the directory really is and shifts every offset by the
    # difference ("concat"); miniz uses the stored offset as is.
    cd_end = zip64_eocd_at if zip64_eocd_at is not None else eocd
    concat = cd_end - cd_size - cd_offset
    if concat == 0:
        return _read_directory(
            data, limits, check_deadline, anomalies, eocd, comment, n_total, cd_offset, cd_end, 0
        )
    anomalies.append(
        Anomaly(
            "prepended-data",
            (
                f"{concat} bytes precede the archive proper; zipfile shifts every offset by them"
                if concat > 0
                else "the end record's central directory size and offset overrun it; zipfile "
                f"shifts every offset by {concat}"
            )
            + " while PyTorch's reader does not, so the two see different members (polyglot)",
            offset=0,
        )
    )
    # Two readers, two archives: zipfile's shifted view and miniz's raw one (which needs
    # the directory inside the file). Both are analysed; either alone is enough to parse.
    views: list[ZipArchive] = []
    error: FormatError | None = None
    for shift in (concat, 0):
        if shift == 0 and cd_offset + cd_size > size:
            continue
        try:
            views.append(
                _read_directory(
                    data,
                    limits,
                    check_deadline,
                    list(anomalies),
                    eocd,
                    comment,
                    n_total,
                    cd_offset,
                    cd_end if shift else cd_offset + cd_size,
                    shift,
                )
            )
        except FormatError as err:
            error = error or err
    if not views:
        assert error is not None
        raise error
    main = views[0]
    if len(views) > 1:
        main.alternate = views[1]
    return main


def _read_directory(
    data: memoryview,
    limits: Limits,
    check_deadline: Callable[[], None] | None,
    anomalies: list[Anomaly],
    eocd: int,
    comment: bytes,
    n_total: int,
    cd_offset: int,
    cd_end: int,
    concat: int,
) -> ZipArchive:
    """Read `n_total` central records from ``cd_offset + concat`` and their local headers.

    `concat` is the shift ``zipfile`` applies to every stored offset (0 for miniz).

    Raises:
        FormatError: the records are not where the offsets say.
    """
    size = len(data)
    start = cd_offset + concat
    if start < 0:
        raise FormatError("central directory offset points before the file", offset=eocd)
    entries: list[ZipEntry] = []
    pos = start
    for index in range(n_total):
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
    if pos > cd_end:
        raise FormatError("central directory overruns its end record", offset=pos)
    archive = ZipArchive(data, entries, anomalies, eocd, concat, comment)
    read_local_headers(data, entries, anomalies, concat)
    check_entries(data, entries, anomalies, concat, cd_start=start, cd_end=cd_end)
    return archive
