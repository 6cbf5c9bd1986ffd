"""Where zip readers disagree: local headers against the directory, and member against member.

`modelward._internal.zipread` reads the central directory; this module then compares
what each record says with its local header (name, method, encryption flag) and with the
other records (duplicate or case-colliding names, NUL in names, overlapping data), and
records every disagreement as an `Anomaly`. It never reads member data.
"""

from __future__ import annotations

import struct

from modelward._internal.zipformat import (
    FLAG_ENCRYPTED,
    FLAG_MASKED_HEADERS,
    FLAG_PATCH,
    FLAG_STRONG_ENCRYPTION,
    LOCAL_SIG,
    LOCAL_SIZE,
    MINIZ_METHODS,
    STORED,
    ZIPFILE_METHODS,
    Anomaly,
    ZipEntry,
)

__all__ = ["check_entries", "read_local_headers"]


def read_local_headers(
    data: memoryview, entries: list[ZipEntry], anomalies: list[Anomaly], concat: int
) -> None:
    """Fill each entry's local name and data offset, recording header disagreements.

    `concat` is the shift ``zipfile`` applies to stored offsets (0 in miniz's view).
    """
    size = len(data)
    for entry in entries:
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


def check_entries(
    data: memoryview,
    entries: list[ZipEntry],
    anomalies: list[Anomaly],
    prepended: int,
    cd_start: int,
    cd_end: int,
) -> None:
    """Record anomalies about single entries and between entries (names, overlaps)."""
    seen: dict[bytes, ZipEntry] = {}
    seen_ci: dict[bytes, ZipEntry] = {}
    size = len(data)
    spans: list[tuple[int, int, ZipEntry]] = []
    for entry in entries:
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
            spans.append((entry.header_offset + prepended, end, entry))
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
