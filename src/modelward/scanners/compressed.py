"""Standalone compressed streams: gzip, zlib (and joblib's legacy ``ZF`` header), bz2, xz,
lzma-alone, lz4 frame and zstd.

This is how compressed joblib dumps, ``.tar.gz`` archives and ``.pt.gz`` checkpoints reach
the scanners that matter: the stream is decompressed incrementally under the member size
limit, the compression-ratio limit and the per-file decompression budget, and the result is
handed back to the engine as one nested stream (``<gzip>``, ``<zlib>``, ...). Concatenated
streams of the same kind are decompressed as one, as ``gzip``, ``bz2``, ``lzma`` and joblib
read them. A corrupt or truncated stream still has its decompressed prefix analysed (a
loader unpickles that much before failing), and the stream is reported. A budget overrun
analyses the prefix and then stops the file as incomplete.

Claims are careful: a zlib stream needs a valid header checksum and a first chunk that
inflates; lzma-alone needs a first chunk that decodes.

Rules:
    MW-CMP-001 unanalysed-stream (MEDIUM): codec library missing; content not analysed.
    MW-CMP-002 corrupt-stream (LOW): truncated or corrupt stream; its decoded prefix was analysed.
    MW-CMP-003 trailing-data (LOW): bytes follow the compressed stream; analysed separately.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol

from typing_extensions import override

from modelward.errors import ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Buffer, Nested, Scanner, ScanOutput

__all__ = ["CompressedScanner", "sniff_codec"]

UNANALYSED_STREAM: Final = Rule(
    RuleId("MW-CMP-001"),
    "unanalysed-stream",
    Severity.MEDIUM,
    "The stream is compressed with a codec whose Python library is not installed, so its "
    "content (often a pickle) was not analysed and is not verified.",
    "Install the optional codec (pip install lz4 / zstandard) and scan again.",
)
CORRUPT_STREAM: Final = Rule(
    RuleId("MW-CMP-002"),
    "corrupt-stream",
    Severity.LOW,
    "The compressed stream is truncated or corrupt. Loaders act on what they decoded before "
    "the error, so that prefix was analysed; the rest is unknown.",
    "Obtain the file again from a trusted source.",
)
TRAILING_DATA: Final = Rule(
    RuleId("MW-CMP-003"),
    "trailing-data",
    Severity.LOW,
    "Bytes follow the end of the compressed stream; decompressors ignore or choke on them, "
    "other tools may read them. They were analysed as a stream of their own.",
    "Find out what appended data to the file.",
)

_CHUNK: Final = 1 << 16
_ZF_HEADER: Final = 2 + 19  # b"ZF" + hex length padded to len(hex(2**64))


class _Decoder(Protocol):
    """The subset of the stdlib decompressor interface the loop uses."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _ZlibDecoder:
    """zlib's decompressobj behind the bz2/lzma interface (max_length, needs_input)."""

    def __init__(self, wbits: int) -> None:
        self._obj = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._obj.eof

    @property
    def unused_data(self) -> bytes:
        return self._obj.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._obj.unconsumed_tail

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if not data:
            data = self._obj.unconsumed_tail
        return self._obj.decompress(data, max(max_length, 0))


class _ZstdDecoder:
    """zstandard's stream reader behind the same interface (bounded output per call)."""

    def __init__(self, data: memoryview) -> None:
        import zstandard

        self._reader = zstandard.ZstdDecompressor().stream_reader(
            bytes(data), read_across_frames=True, read_size=_CHUNK
        )
        self.eof = False
        self.unused_data = b""
        self.needs_input = False

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._reader.read(max_length if max_length > 0 else _CHUNK)
        if not out:
            self.eof = True
        return bytes(out)


def _zlib_header_ok(head: bytes) -> bool:
    if len(head) < 2:
        return False
    cmf, flg = head[0], head[1]
    return (cmf & 0x0F) == 8 and (cmf >> 4) <= 7 and (cmf * 256 + flg) % 31 == 0 and not flg & 0x20


def _first_chunk_decodes(make: Callable[[], _Decoder], data: bytes) -> bool:
    try:
        out = make().decompress(data, 256)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return False
    return bool(out) or len(data) < 64


def sniff_codec(head: bytes) -> tuple[str, int] | None:
    """The codec of a stream and where its compressed data starts, or None."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip", 0
    if (
        head.startswith(b"BZh")
        and len(head) >= 10
        and head[3:4] in b"123456789"
        and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    ):
        return "bz2", 0
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz", 0
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4", 0
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd", 0
    if head.startswith(b"ZF") and len(head) > _ZF_HEADER:
        try:
            int(head[2:_ZF_HEADER].decode("ascii").strip(), 16)
        except (UnicodeDecodeError, ValueError):
            return None
        start = _ZF_HEADER + (1 if head[_ZF_HEADER : _ZF_HEADER + 1] == b" " else 0)
        if _zlib_header_ok(head[start:]):
            return "zlib-zf", start
        return None
    if _zlib_header_ok(head) and _first_chunk_decodes(lambda: _ZlibDecoder(15), head[:4096]):
        return "zlib", 0
    if (
        head.startswith(b"\x5d\x00\x00")
        and len(head) >= 13
        and _first_chunk_decodes(lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE), head[:4096])
    ):
        return "lzma", 0
    return None


def _decoder(codec: str, data: memoryview) -> _Decoder:
    if codec == "gzip":
        return _ZlibDecoder(31)
    if codec in ("zlib", "zlib-zf"):
        return _ZlibDecoder(15)
    if codec == "bz2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    if codec == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    if codec == "lz4":
        import lz4.frame  # type: ignore[import-untyped]

        return lz4.frame.LZ4FrameDecompressor()  # type: ignore[no-any-return]
    return _ZstdDecoder(data)


_MAGIC: Final = {
    "gzip": b"\x1f\x8b",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "lz4": b"\x04\x22\x4d\x18",
}


@dataclass
class _Outcome:
    """What decompression found, filled in while the engine reads the stream."""

    corrupt: str | None = None
    over_budget: ResourceLimitError | None = None
    end: int | None = None
    done: bool = False
    output: int = field(default=0)


def _decompress(codec: str, data: memoryview, artifact: Artifact, outcome: _Outcome) -> bytes:
    """Decompress all streams of `codec` in `data` under the limits; never raises for bad data."""
    limits = artifact.limits
    cap = min(limits.max_member_bytes, max(len(data), 1) * limits.max_compression_ratio)
    out = bytearray()
    pos = 0
    decoder = _decoder(codec, data)
    try:
        while True:
            artifact.check_deadline()
            if codec == "zstd":
                chunk = decoder.decompress(b"", _CHUNK)
                if not chunk:
                    pos = len(data)
                    break
            else:
                needs = getattr(decoder, "needs_input", True)
                feed = bytes(data[pos : pos + _CHUNK]) if needs else b""
                if needs:
                    pos += len(feed)
                chunk = decoder.decompress(feed, _CHUNK)
            if chunk:
                artifact.context.budget.spend_decompressed(len(chunk), limits)
                out += chunk
                if len(out) > cap:
                    outcome.over_budget = ResourceLimitError(
                        f"{codec} stream inflates beyond {cap} bytes (member size or "
                        f"compression ratio limit); only its first {cap} bytes were analysed"
                    )
                    del out[cap:]
                    break
            if decoder.eof:
                pos -= len(decoder.unused_data or b"")
                magic = _MAGIC.get(codec)
                rest = data[pos:]
                if codec in ("zlib", "zlib-zf") and _zlib_header_ok(bytes(rest[:2])):
                    decoder = _decoder(codec, rest)
                    continue
                if magic is not None and bytes(rest[: len(magic)]) == magic:
                    decoder = _decoder(codec, rest)
                    continue
                break
            if pos >= len(data) and not chunk and getattr(decoder, "needs_input", True):
                outcome.corrupt = f"{codec} stream ends before its end marker (truncated)"
                break
    except ResourceLimitError as err:
        outcome.over_budget = err
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError, RuntimeError) as err:
        outcome.corrupt = f"{codec} stream is corrupt: {err}"[:300]
    except Exception as err:  # lz4/zstandard raise their own error types
        if type(err).__module__.split(".")[0] not in ("lz4", "zstandard", "_lz4"):
            raise
        outcome.corrupt = f"{codec} stream is corrupt: {err}"[:300]
    outcome.end = pos
    outcome.output = len(out)
    outcome.done = True
    return bytes(out)


class CompressedScanner(Scanner):
    """One compressed stream in, one nested decompressed stream out."""

    name: ClassVar[str] = "compressed"
    suffixes: ClassVar[frozenset[str]] = frozenset(
        {
            ".gz",
            ".gzip",
            ".z",
            ".zlib",
            ".bz2",
            ".xz",
            ".lzma",
            ".lz4",
            ".zst",
            ".zstd",
            ".tgz",
        }
    )
    rules: ClassVar[tuple[Rule, ...]] = (UNANALYSED_STREAM, CORRUPT_STREAM, TRAILING_DATA)
    priority: ClassVar[int] = 5

    @override
    def claims(self, artifact: Artifact) -> bool:
        return sniff_codec(artifact.head) is not None

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        sniffed = sniff_codec(artifact.head)
        if sniffed is None:
            return
        codec, start = sniffed
        artifact.format_detail = codec
        if codec in ("lz4", "zstd"):
            module = "lz4.frame" if codec == "lz4" else "zstandard"
            try:
                __import__(module)
            except ImportError:
                yield artifact.finding(
                    UNANALYSED_STREAM,
                    f"{codec} stream not analysed: the {module} library is not installed",
                    evidence=repr(artifact.head[:8]),
                )
                return
        body = artifact.view(start)
        outcome = _Outcome()

        def load() -> Buffer:
            return _decompress(codec, body, artifact, outcome)

        yield Nested(f"<{codec.split('-')[0]}>", load, offset=start)
        if not outcome.done:  # the engine refused to go deeper; nothing was decompressed
            return
        if outcome.corrupt is not None:
            yield artifact.finding(
                CORRUPT_STREAM,
                f"{outcome.corrupt}; the {outcome.output} bytes decoded before it were analysed",
                offset=start,
            )
        end = start + (outcome.end or 0)
        if outcome.over_budget is None and outcome.corrupt is None and end < artifact.size:
            rest = artifact.view(end)
            if any(rest[i] for i in range(min(len(rest), 4096))) or len(rest) > 4096:
                yield artifact.finding(
                    TRAILING_DATA,
                    f"{artifact.size - end} bytes follow the {codec} stream",
                    offset=end,
                    evidence=repr(bytes(rest[:16])),
                )
                yield Nested(f"<after {codec.split('-')[0]}>", rest, offset=end)
        if outcome.over_budget is not None:
            raise outcome.over_budget


SCANNER: Final = CompressedScanner()
