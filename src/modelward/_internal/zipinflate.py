"""Member extraction under limits: a zero-copy view when STORED, bounded inflation otherwise.

Split from the directory parser because it is the only part that touches member data:
every decompressed byte is counted against the member's size and ratio caps and, through
`spend`, against the per-file budget shared by all members (overlapping members, whose
compressed bytes are inflated once per member that claims them, therefore cannot
multiply the work beyond that budget).
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Final

from modelward._internal.zipformat import (
    BZIP2,
    DEFLATED,
    STORED,
    ZIPFILE_METHODS,
    ZipEntry,
)
from modelward.errors import FormatError, ResourceLimitError
from modelward.policy import Limits

__all__ = ["read_member"]

_CHUNK: Final = 1 << 16


def read_member(
    data: memoryview,
    entry: ZipEntry,
    limits: Limits,
    spend: Callable[[int], None] | None = None,
    crc_result: list[bool] | None = None,
) -> memoryview | bytes:
    """The member's uncompressed content, zero-copy when STORED.

    Args:
        data: the archive bytes.
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
    if end > len(data):
        raise FormatError(f"member {entry.name!r} runs past the end of the archive", offset=start)
    raw = data[start:end]
    if entry.method == STORED:
        if crc_result is not None:
            crc_result.append(zlib.crc32(raw) == entry.crc)
        return raw
    if entry.method not in ZIPFILE_METHODS:
        raise FormatError(
            f"member {entry.name!r} uses unsupported compression method {entry.method}",
            offset=start,
        )
    cap = min(limits.max_member_bytes, max(entry.compressed_size, 1) * limits.max_compression_ratio)
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
            raise ResourceLimitError(f"member {entry.name!r} inflates beyond {why}", offset=start)
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
