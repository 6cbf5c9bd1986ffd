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
and a compressed one is inflated on demand under size, ratio and budget caps.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from modelward.errors import FormatError, ResourceLimitError
from modelward.policy import Limits

__all__ = [
    "Anomaly",
    "ZipArchive",
    "ZipEntry",
    "is_zip_head",
    "parse_zip",
]

LOCAL_SIG: Final = b"PK\x03\x04"
CENTRAL_SIG: Final = b"PK\x01\x02"
EOCD_SIG: Final = b"PK\x05\x06"
ZIP64_EOCD_SIG: Final = b"PK\x06\x06"
ZIP64_LOCATOR_SIG: Final = b"PK\x06\x07"
EOCD_SIZE: Final = 22
CENTRAL_SIZE: Final = 46
LOCAL_SIZE: Final = 30
ZIP64_LOCATOR_SIZE: Final = 20
ZIP64_EOCD_SIZE: Final = 56
MAX_COMMENT: Final = 0xFFFF

STORED: Final = 0
DEFLATED: Final = 8
BZIP2: Final = 12
LZMA: Final = 14
#: Methods zipfile can read; miniz (PyTorch) only reads STORED and DEFLATED.
ZIPFILE_METHODS: Final = frozenset({STORED, DEFLATED, BZIP2, LZMA})
MINIZ_METHODS: Final = frozenset({STORED, DEFLATED})

FLAG_ENCRYPTED: Final = 0x0001
FLAG_DESCRIPTOR: Final = 0x0008
FLAG_PATCH: Final = 0x0020
FLAG_STRONG_ENCRYPTION: Final = 0x0040
FLAG_UTF8: Final = 0x0800
FLAG_MASKED_HEADERS: Final = 0x2000

_CHUNK: Final = 1 << 16


def is_zip_head(head: bytes) -> bool:
    """Whether bytes start like a zip (a local header, or the end record of an empty zip)."""
    return head.startswith((LOCAL_SIG, EOCD_SIG, b"PK00PK\x03\x04"))


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A place where zip readers could disagree, or a hostile construct.

    Attributes:
        kind: stable key (``duplicate-name``, ``name-mismatch``, ...) scanners map to rules.
        message: one sentence for the user.
        member: the member's name, when the anomaly is about one member.
        offset: byte offset in the archive.
        evidence: the triggering fragment.
    """

    kind: str
    message: str
    member: str | None = None
    offset: int | None = None
    evidence: str | None = None


@dataclass(slots=True)
class ZipEntry:
    """One central directory record, plus what its local header says.

    Attributes:
        index: position in the central directory (0 = what PyTorch takes the folder from).
        raw_name: the name bytes exactly as stored (what miniz compares).
        name: the name as ``zipfile`` decodes it (UTF-8 flag, else cp437), before NUL truncation.
        flags: general-purpose bit flags of the central record.
        method: compression method of the central record.
        crc: CRC-32 of the central record.
        compressed_size: compressed size (ZIP64-resolved).
        size: uncompressed size (ZIP64-resolved).
        header_offset: local header offset as stored (miniz uses it as is).
        external_attr: external attributes (unix mode in the high 16 bits).
        create_system: host system of the creator (3 = unix).
        cd_offset: where this central record sits in the archive.
        data_offset: first byte of member data, or None when the local header is unusable.
        local_name: the local header's name bytes.
    """

    index: int
    raw_name: bytes
    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    external_attr: int
    create_system: int
    cd_offset: int
    data_offset: int | None = None
    local_name: bytes | None = None

    @property
    def zipfile_name(self) -> str:
        """The name ``zipfile.namelist()`` shows (truncated at the first NUL)."""
        return self.name.split("\x00", 1)[0]

    @property
    def is_dir(self) -> bool:
        """A directory for miniz: trailing slash or the DOS directory attribute."""
        return self.raw_name.endswith(b"/") or bool(self.external_attr & 0x10)

    @property
    def unix_mode(self) -> int:
        return (self.external_attr >> 16) & 0xFFFF if self.create_system == 3 else 0

    @property
    def is_symlink(self) -> bool:
        return (self.unix_mode & 0o170000) == 0o120000

    @property
    def is_encrypted(self) -> bool:
        return bool(self.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))

    @property
    def data_end(self) -> int | None:
        return None if self.data_offset is None else self.data_offset + self.compressed_size


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
        if entry.data_offset is None:
            raise FormatError(
                f"member {entry.name!r} has no readable local header", offset=entry.header_offset
            )
        if entry.is_encrypted:
            raise FormatError(f"member {entry.name!r} is encrypted", offset=entry.header_offset)
        start, end = entry.data_offset, entry.data_offset + entry.compressed_size
        if end > len(self.data):
            raise FormatError(
                f"member {entry.name!r} runs past the end of the archive", offset=start
            )
        raw = self.data[start:end]
        if entry.method == STORED:
            if crc_result is not None:
                crc_result.append(zlib.crc32(raw) == entry.crc)
            return raw
        if entry.method not in ZIPFILE_METHODS:
            raise FormatError(
                f"member {entry.name!r} uses unsupported compression method {entry.method}",
                offset=start,
            )
        cap = min(
            limits.max_member_bytes, max(entry.compressed_size, 1) * limits.max_compression_ratio
        )
        out = bytearray()
        crc = 0
        for chunk in _inflate(raw, entry.method, cap + 1):
            out += chunk
            crc = zlib.crc32(chunk, crc)
            if spend is not None:
                spend(len(chunk))
            if len(out) > cap:
                why = (
                    "the size budget"
                    if cap == limits.max_member_bytes
                    else f"a compression ratio of {limits.max_compression_ratio}"
                )
                raise ResourceLimitError(
                    f"member {entry.name!r} inflates beyond {why}", offset=start
                )
        if crc_result is not None:
            crc_result.append(crc == entry.crc and len(out) == entry.size)
        return bytes(out)


def _inflate(raw: memoryview, method: int, cap: int) -> Iterator[bytes]:
    """Decompress `raw` incrementally, yielding chunks, stopping after `cap` bytes."""
    decomp: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor
    try:
        if method == DEFLATED:
            decomp = zlib.decompressobj(-15)
            produced = 0
            for pos in range(0, max(len(raw), 1), _CHUNK):
                data = decomp.decompress(raw[pos : pos + _CHUNK], _CHUNK)
                while True:
                    if data:
                        produced += len(data)
                        yield data
                        if produced >= cap:
                            return
                    if not decomp.unconsumed_tail:
                        break
                    data = decomp.decompress(decomp.unconsumed_tail, _CHUNK)
                if decomp.eof:
                    return
            tail = decomp.flush()
            if tail:
                yield tail
            return
        if method == BZIP2:
            decomp = bz2.BZ2Decompressor()
        else:
            decomp = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_zip_lzma_filters(raw))
            raw = raw[4 + struct.unpack_from("<H", raw, 2)[0] :]
        produced = 0
        for pos in range(0, max(len(raw), 1), _CHUNK):
            data = decomp.decompress(raw[pos : pos + _CHUNK], _CHUNK)
            while True:
                if data:
                    produced += len(data)
                    yield data
                    if produced >= cap:
                        return
                if decomp.eof or decomp.needs_input:
                    break
                data = decomp.decompress(b"", _CHUNK)
            if decomp.eof:
                return
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError, struct.error) as err:
        raise FormatError(f"corrupt compressed member: {err}") from err


def _zip_lzma_filters(raw: memoryview) -> list[dict[str, object]]:
    """The LZMA1 filter from a zip LZMA member's 4-byte header plus properties."""
    if len(raw) < 4:
        raise FormatError("truncated LZMA member header")
    (psize,) = struct.unpack_from("<H", raw, 2)
    props = bytes(raw[4 : 4 + psize])
    # zipfile does the same: decode the properties through the LZMA1 filter helper.
    return [lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)]  # type: ignore[attr-defined]


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & FLAG_UTF8:
        return raw.decode("utf-8", errors="replace")
    return raw.decode("cp437")


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
        usize, csize, lho = _zip64_extra(extra, usize, csize, lho)
        entries.append(
            ZipEntry(
                index=index,
                raw_name=raw_name,
                name=_decode_name(raw_name, flags),
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
    _read_local_headers(archive, concat)
    _check_entries(archive, cd_start=start, cd_end=cd_end)
    return archive


def _zip64_extra(extra: bytes, usize: int, csize: int, lho: int) -> tuple[int, int, int]:
    """Resolve 0xFFFFFFFF sizes/offset from the ZIP64 extra field (id 0x0001)."""
    if 0xFFFFFFFF not in (usize, csize, lho):
        return usize, csize, lho
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            values = [v[0] for v in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if lho == 0xFFFFFFFF and values:
                lho = values.pop(0)
            return usize, csize, lho
        pos += 4 + length
    raise FormatError("ZIP64 sizes announced but no ZIP64 extra field")


def _read_local_headers(archive: ZipArchive, concat: int) -> None:
    data, anomalies = archive.data, archive.anomalies
    size = len(data)
    for entry in archive.entries:
        lho = entry.header_offset + concat
        if lho + LOCAL_SIZE > size or bytes(data[lho : lho + 4]) != LOCAL_SIG:
            anomalies.append(
                Anomaly(
                    "bad-local-header",
                    "the central directory points at no local header; "
                    "the member cannot be read and readers disagree on what it holds",
                    entry.name,
                    lho,
                )
            )
            continue
        (_, _, lflags, lmethod, _, _, _, _, _, nlen, xlen) = struct.unpack_from(
            "<4sHHHHHIIIHH", data, lho
        )
        entry.local_name = bytes(data[lho + LOCAL_SIZE : lho + LOCAL_SIZE + nlen])
        entry.data_offset = lho + LOCAL_SIZE + nlen + xlen
        if entry.local_name != entry.raw_name:
            anomalies.append(
                Anomaly(
                    "name-mismatch",
                    "local header name differs from the central directory name; PyTorch "
                    "ignores it, zipfile refuses the member, stream readers trust it",
                    entry.name,
                    lho,
                    repr(entry.local_name[:120]),
                )
            )
        if lmethod != entry.method:
            anomalies.append(
                Anomaly(
                    "method-mismatch",
                    f"local header says compression method {lmethod}, central directory says "
                    f"{entry.method}; stream readers and directory readers decode differently",
                    entry.name,
                    lho,
                )
            )
        if (lflags ^ entry.flags) & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION):
            anomalies.append(
                Anomaly(
                    "flag-mismatch",
                    "local and central headers disagree on whether the member is encrypted",
                    entry.name,
                    lho,
                )
            )


def _check_entries(archive: ZipArchive, cd_start: int, cd_end: int) -> None:
    anomalies = archive.anomalies
    seen: dict[bytes, ZipEntry] = {}
    seen_ci: dict[bytes, ZipEntry] = {}
    size = len(archive.data)
    spans: list[tuple[int, int, ZipEntry]] = []
    for entry in archive.entries:
        if entry.raw_name in seen:
            anomalies.append(
                Anomaly(
                    "duplicate-name",
                    f"name also used by member #{seen[entry.raw_name].index}; zipfile keeps the "
                    "last one, PyTorch's binary search may pick either, extractors the first",
                    entry.name,
                    entry.cd_offset,
                )
            )
        elif entry.raw_name.lower() in seen_ci:
            anomalies.append(
                Anomaly(
                    "duplicate-name",
                    "name differs only in case from member "
                    f"#{seen_ci[entry.raw_name.lower()].index}"
                    "; PyTorch looks names up case-insensitively and may pick either",
                    entry.name,
                    entry.cd_offset,
                )
            )
        seen.setdefault(entry.raw_name, entry)
        seen_ci.setdefault(entry.raw_name.lower(), entry)
        if b"\x00" in entry.raw_name:
            anomalies.append(
                Anomaly(
                    "nul-in-name",
                    "member name contains a NUL byte; zipfile and C readers truncate it there, "
                    "miniz compares the full name",
                    entry.name,
                    entry.cd_offset,
                    repr(entry.raw_name[:120]),
                )
            )
        if entry.is_encrypted or entry.flags & (FLAG_PATCH | FLAG_MASKED_HEADERS):
            anomalies.append(
                Anomaly(
                    "encrypted",
                    "member is encrypted (or a patch); it cannot be analysed",
                    entry.name,
                    entry.cd_offset,
                )
            )
        elif entry.method not in ZIPFILE_METHODS:
            anomalies.append(
                Anomaly(
                    "unsupported-method",
                    f"compression method {entry.method} is not one the scanner can read",
                    entry.name,
                    entry.cd_offset,
                )
            )
        elif entry.method not in MINIZ_METHODS:
            anomalies.append(
                Anomaly(
                    "unsupported-method",
                    f"compression method {entry.method} is read by zipfile but refused by PyTorch",
                    entry.name,
                    entry.cd_offset,
                )
            )
        if entry.method == STORED and entry.compressed_size != entry.size:
            anomalies.append(
                Anomaly(
                    "size-mismatch",
                    f"stored member declares {entry.compressed_size} stored bytes but "
                    f"{entry.size} uncompressed; readers return different contents",
                    entry.name,
                    entry.cd_offset,
                )
            )
        if (entry.external_attr & 0x10) and not entry.raw_name.endswith(b"/") and entry.size:
            anomalies.append(
                Anomaly(
                    "dir-attribute",
                    "member with data carries the DOS directory attribute; miniz (PyTorch) reads "
                    "it as empty while zipfile returns its bytes",
                    entry.name,
                    entry.cd_offset,
                )
            )
        end = entry.data_end
        if end is not None and entry.data_offset is not None:
            if end > size:
                anomalies.append(
                    Anomaly(
                        "truncated",
                        "member data runs past the end of the file",
                        entry.name,
                        entry.data_offset,
                    )
                )
            elif entry.compressed_size and entry.data_offset < cd_end and end > cd_start:
                anomalies.append(
                    Anomaly(
                        "overlap",
                        "member data overlaps the central directory",
                        entry.name,
                        entry.data_offset,
                    )
                )
            spans.append((entry.header_offset + archive.prepended, end, entry))
    spans.sort(key=lambda s: (s[0], s[1]))
    reach, owner = -1, None
    for begin, end, entry in spans:
        if owner is not None and begin < reach:
            anomalies.append(
                Anomaly(
                    "overlap",
                    f"member overlaps member #{owner.index} ({owner.name!r}); overlapping members "
                    "are a zip-bomb technique and make readers disagree",
                    entry.name,
                    begin,
                )
            )
        if end > reach:
            reach, owner = end, entry


def has_zip_tail(data: memoryview) -> bool:
    """Whether an end record near the end points at a central directory (cheap check).

    Catches zips with bytes prepended (self-extracting archives, polyglots) that
    `is_zip_head` misses; ``zipfile`` opens those.
    """
    size = len(data)
    if size < EOCD_SIZE:
        return False
    window_start = max(0, size - (MAX_COMMENT + EOCD_SIZE))
    window = bytes(data[window_start:])
    pos = window.rfind(EOCD_SIG)
    while pos >= 0 and len(window) - pos < EOCD_SIZE:
        pos = window.rfind(EOCD_SIG, 0, pos)
    if pos < 0:
        return False
    eocd = window_start + pos
    if (
        eocd >= ZIP64_LOCATOR_SIZE
        and bytes(data[eocd - ZIP64_LOCATOR_SIZE : eocd - 16]) == ZIP64_LOCATOR_SIG
    ):
        return True
    (_, _, _, _, n_total, cd_size, cd_offset, _) = struct.unpack_from("<4sHHHHIIH", data, eocd)
    if n_total == 0:
        return bool(cd_size == 0)
    start = eocd - cd_size
    return 0 <= start and bytes(data[start : start + 4]) == CENTRAL_SIG and cd_offset <= start
