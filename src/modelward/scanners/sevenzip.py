"""7z archives: recognised, never passed as clean.

ReversingLabs' "nullifAI" models (February 2025) were PyTorch checkpoints re-packed with
7z instead of the zip ``torch.save`` writes: ``torch.load`` cannot open them, but loaders
and pipelines that unpack archives first can, and scanners that did not know the format
reported nothing. modelward has no 7z decoder (the format's LZMA/BCJ coder chains and
encoded headers need a full parser, and py7zr is not a dependency), so a 7z archive gets
a MEDIUM finding saying its content was not analysed, with what the signature header
tells about it, instead of the INFO "unknown format" a stranger file gets.

Rules:
    MW-SEVENZIP-001 unanalysed-archive (MEDIUM): a 7z archive; its members were not analysed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward.findings import Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["SevenZipScanner"]

SIGNATURE: Final = b"7z\xbc\xaf\x27\x1c"
_HEADER: Final = 32

UNANALYSED_ARCHIVE: Final = Rule(
    RuleId("MW-SEVENZIP-001"),
    "unanalysed-archive",
    Severity.MEDIUM,
    "A 7z archive. modelward does not decode 7z, so its members (often a pickled model "
    "re-packed to evade scanners, as in the nullifAI models) were not analysed.",
    "Extract the archive with a trusted tool and scan the extracted files; prefer "
    "publishers who ship models as safetensors or torch.save zips.",
    (
        "https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face",
    ),
)


class SevenZipScanner(Scanner):
    """Recognises 7z archives by their signature and reports them as not analysed."""

    name: ClassVar[str] = "7z"
    suffixes: ClassVar[frozenset[str]] = frozenset({".7z"})
    rules: ClassVar[tuple[Rule, ...]] = (UNANALYSED_ARCHIVE,)
    priority: ClassVar[int] = 0

    @override
    def claims(self, artifact: Artifact) -> bool:
        return artifact.head.startswith(SIGNATURE)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        artifact.format_detail = "7z"
        data = artifact.data
        if len(data) < _HEADER:
            yield artifact.finding(
                UNANALYSED_ARCHIVE,
                f"7z signature but only {len(data)} bytes (the signature header needs "
                f"{_HEADER}); nothing could be analysed",
                offset=0,
            )
            return
        major, minor = data[6], data[7]
        (start_crc,) = struct.unpack_from("<I", data, 8)
        offset, size, _ = struct.unpack_from("<QQI", data, 12)
        notes = []
        if zlib.crc32(bytes(data[12:32])) != start_crc:
            notes.append("the start header CRC does not match")
        end = _HEADER + offset + size
        if end > len(data):
            notes.append(f"the header it points at ends at byte {end}, past the file")
        yield artifact.finding(
            UNANALYSED_ARCHIVE,
            f"7z archive (format {major}.{minor}, {len(data) - _HEADER} bytes of packed data "
            "and headers) whose members were not analysed"
            + (f"; {' and '.join(notes)}" if notes else ""),
            offset=0,
            evidence=f"next header at {_HEADER + offset}, {size} bytes",
        )


SCANNER: Final = SevenZipScanner()
