"""Zip record layout: signatures, sizes, flags, and the records parsed from them.

The constants and plain data classes every part of the zip reader shares
(`modelward._internal.zipread` parses the directory, `modelward._internal.zipcheck`
compares what readers see, `modelward._internal.zipinflate` returns member bytes), and
the two cheap content checks format detection uses (`is_zip_head`, `has_zip_tail`).
Nothing here reads member data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from modelward.errors import FormatError

__all__ = [
    "Anomaly",
    "ZipEntry",
    "decode_name",
    "has_zip_tail",
    "is_zip_head",
    "zip64_extra",
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


def decode_name(raw: bytes, flags: int) -> str:
    """The name as ``zipfile`` decodes it: UTF-8 when flagged, else cp437."""
    if flags & FLAG_UTF8:
        return raw.decode("utf-8", errors="replace")
    return raw.decode("cp437")


def zip64_extra(extra: bytes, usize: int, csize: int, lho: int) -> tuple[int, int, int]:
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
