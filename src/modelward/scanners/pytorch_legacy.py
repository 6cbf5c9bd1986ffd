"""Legacy PyTorch checkpoints: the sequential pickle format (torch < 1.6) and the tar format.

``torch.load`` falls back to ``_legacy_load`` for any file not starting with
``PK\\x03\\x04``. It first tries ``tarfile`` (members ``storages``, ``tensors``, ``pickle``,
handled by `modelward.scanners.tar` through `walk_legacy_tar_member`), then reads a
sequence from the file: pickle(MAGIC_NUMBER), pickle(protocol version 1001),
pickle(sys_info), pickle(data) - the object, with persistent ids naming storages -,
pickle(storage keys), then for each key its raw bytes, each preceded by an 8-byte
little-endian element count. Every one of those pickles is unpickled (with
``weights_only=False`` fully, or with the weights-only unpickler), so all are analysed.
The storage layout is followed to find where the raw bytes end: ``torch.load`` ignores what
comes after, which makes it a place to hide a payload for other tools, so it is reported
and handed back to the engine.

Rules:
    MW-PT-008 legacy-format (LOW): a legacy (sequential or tar) checkpoint.
    MW-PT-009 legacy-layout (MEDIUM): layout cannot be followed; the rest is not verified.
    MW-PT-010 legacy-trailing-data (LOW): bytes follow the last storage; torch.load ignores them.
"""

from __future__ import annotations

import pickletools
import struct
from collections.abc import Iterator
from typing import ClassVar, Final

from typing_extensions import override

from modelward.findings import Finding, Rule, RuleId, Severity
from modelward.pickle_analysis import PICKLE_RULES, PickleAnalysis, analyze
from modelward.scanners.base import Artifact, Nested, Scanner, ScanOutput
from modelward.scanners.pytorch import ELEMENT_SIZES

__all__ = ["LegacyTorchScanner", "walk_legacy_tar_member"]

LEGACY_FORMAT: Final = Rule(
    RuleId("MW-PT-008"),
    "legacy-format",
    Severity.LOW,
    "A legacy PyTorch checkpoint (pre-1.6 sequential or tar format). Its pickles are "
    "unpickled one after another; the tar format cannot be loaded with weights_only=True.",
    "Re-save the model with a current torch.save, or better as safetensors.",
    ("https://pytorch.org/docs/stable/notes/serialization.html",),
)
LEGACY_LAYOUT: Final = Rule(
    RuleId("MW-PT-009"),
    "legacy-layout",
    Severity.MEDIUM,
    "The legacy checkpoint's layout (storage keys, storage types, element counts) could not "
    "be followed, so bytes after that point were not verified.",
    "Do not load the checkpoint; obtain it again from a trusted source.",
)
LEGACY_TRAILING: Final = Rule(
    RuleId("MW-PT-010"),
    "legacy-trailing-data",
    Severity.LOW,
    "Bytes follow the last storage of a legacy checkpoint; torch.load ignores them, other "
    "tools may not. They were analysed as a stream of their own.",
    "Find out what appended data to the checkpoint.",
)

LEGACY_RULES: Final[tuple[Rule, ...]] = (LEGACY_FORMAT, LEGACY_LAYOUT, LEGACY_TRAILING)

MAGIC_NUMBER: Final = 0x1950A86A20F9469CFC6C
_MAGIC_LONG1: Final = b"\x8a\x0a" + MAGIC_NUMBER.to_bytes(10, "little")
_MAGIC_TEXT: Final = b"L" + str(MAGIC_NUMBER).encode() + b"L\n"
_STRING_OPS: Final = frozenset(
    {
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)
_NEUTRAL_OPS: Final = frozenset(
    {
        "PROTO",
        "FRAME",
        "EMPTY_LIST",
        "MARK",
        "LIST",
        "APPEND",
        "APPENDS",
        "BINPUT",
        "LONG_BINPUT",
        "PUT",
        "MEMOIZE",
        "STOP",
    }
)


def _is_magic_pickle(head: bytes) -> bool:
    pos = 0
    if head[:1] == b"\x80" and len(head) >= 2:
        pos = 2
        if head[pos : pos + 1] == b"\x95":  # FRAME (protocol 4+)
            pos += 9
    return head.startswith(_MAGIC_LONG1, pos) or head.startswith(_MAGIC_TEXT, pos)


def string_list(artifact: Artifact, start: int, end: int) -> list[str] | None:
    """The strings of a pickle that is a plain list of strings, else None.

    Reads opcodes with ``pickletools.genops`` (parsing only); anything beyond list and
    string opcodes (memo reads, calls) makes the value unknowable without running it.
    """
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(bytes(artifact.data[start:end])):
            if opcode.name in _STRING_OPS:
                strings.append(arg.decode("latin1") if isinstance(arg, bytes) else str(arg))
            elif opcode.name not in _NEUTRAL_OPS:
                return None
    except (ValueError, struct.error, UnicodeDecodeError):
        return None
    return strings


def _storage_types(analysis: PickleAnalysis) -> dict[str, str]:
    types: dict[str, str] = {}
    for pid in analysis.persistent_ids:
        if (
            isinstance(pid, tuple)
            and len(pid) >= 3
            and pid[0] == "storage"
            and isinstance(pid[2], str)
        ):
            types.setdefault(pid[2], str(pid[1]))
    return types


class LegacyTorchScanner(Scanner):
    """The sequential legacy format: magic, version, sys_info, data, keys, raw storages."""

    name: ClassVar[str] = "pytorch-legacy"
    suffixes: ClassVar[frozenset[str]] = frozenset({".pt", ".pth", ".bin", ".ckpt", ".pkl", ".t7"})
    rules: ClassVar[tuple[Rule, ...]] = LEGACY_RULES + PICKLE_RULES
    priority: ClassVar[int] = 25
    executes_code: ClassVar[bool] = True

    @override
    def claims(self, artifact: Artifact) -> bool:
        return _is_magic_pickle(artifact.head)

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        artifact.format_detail = "pytorch-legacy"
        yield artifact.finding(
            LEGACY_FORMAT,
            "legacy sequential PyTorch checkpoint: five pickles in a row, then raw storages",
        )
        pos = 0
        parts: list[PickleAnalysis] = []
        for what in ("magic number", "protocol version", "sys_info", "data", "storage keys"):
            artifact.check_deadline()
            if pos >= artifact.size:
                yield artifact.finding(
                    LEGACY_LAYOUT, f"file ends before the {what} pickle", offset=pos
                )
                return
            analysis = analyze(artifact, pos)
            yield from analysis.findings
            parts.append(analysis)
            if not analysis.complete or analysis.limit_hit is not None:
                yield artifact.finding(
                    LEGACY_LAYOUT,
                    f"the {what} pickle does not end cleanly; the rest of the file is not verified",
                    offset=pos,
                )
                return
            pos = analysis.end
        keys = string_list(artifact, parts[4].start, parts[4].end)
        if keys is None:
            yield artifact.finding(
                LEGACY_LAYOUT,
                "the storage keys pickle is not a plain list "
                "of strings; raw storages cannot be located",
                offset=parts[4].start,
            )
            yield from self._rest(artifact, pos, "storage keys")
            return
        types = _storage_types(parts[3])
        for key in keys:
            artifact.check_deadline()
            type_name = types.get(key)
            size = ELEMENT_SIZES.get(type_name or "")
            if size is None or pos + 8 > artifact.size:
                why = (
                    f"storage {key!r} has unknown type {type_name!r}"
                    if size is None
                    else f"file ends inside storage {key!r}"
                )
                yield artifact.finding(
                    LEGACY_LAYOUT, why + "; the rest of the file is not verified", offset=pos
                )
                yield from self._rest(artifact, pos, f"storage {key!r}")
                return
            (count,) = struct.unpack_from("<q", artifact.data, pos)
            end = pos + 8 + count * size
            if count < 0 or end > artifact.size:
                yield artifact.finding(
                    LEGACY_LAYOUT,
                    f"storage {key!r} declares {count} elements, beyond the end of the file",
                    offset=pos,
                )
                return
            pos = end
        if pos < artifact.size:
            yield from self._trailing(artifact, pos)

    @staticmethod
    def _trailing(artifact: Artifact, pos: int) -> Iterator[ScanOutput]:
        yield artifact.finding(
            LEGACY_TRAILING,
            f"{artifact.size - pos} bytes follow the last storage; torch.load ignores them",
            offset=pos,
            evidence=repr(bytes(artifact.data[pos : pos + 16])),
        )
        yield Nested("<after storages>", artifact.view(pos), offset=pos)

    @staticmethod
    def _rest(artifact: Artifact, pos: int, after: str) -> Iterator[ScanOutput]:
        if pos < artifact.size:
            yield Nested(f"<after {after}>", artifact.view(pos), offset=pos)


def walk_legacy_tar_member(child: Artifact, kind: str) -> Iterator[Finding]:
    """Analyse every pickle of a legacy tar ``storages`` or ``tensors`` member.

    ``storages``: pickle(count), then per storage pickle((key, location, storage_type)) and
    an 8-byte element count with the raw bytes, then pickle(storage views). ``tensors``:
    pickle(count), then per tensor pickle((key, storage_id, tensor_type)), an int32 ndim,
    4 skipped bytes, ndim sizes, ndim strides and an offset (int64 each).
    """
    pos = 0
    index = 0
    while pos < child.size:
        child.check_deadline()
        analysis = analyze(child, pos)
        yield from analysis.findings
        if not analysis.complete or analysis.limit_hit is not None:
            yield child.finding(
                LEGACY_LAYOUT,
                f"pickle #{index + 1} of {kind} does not end cleanly; the rest is not verified",
                offset=pos,
            )
            return
        pos = analysis.end
        index += 1
        if index == 1:
            continue
        if kind == "storages":
            size = next((ELEMENT_SIZES[n] for n in analysis.imports if n in ELEMENT_SIZES), None)
            if size is None:
                break  # the storage views pickle, which ends the member
            if pos + 8 > child.size:
                yield child.finding(
                    LEGACY_LAYOUT, "storages member ends inside a storage", offset=pos
                )
                return
            (count,) = struct.unpack_from("<q", child.data, pos)
            pos += 8 + max(count, 0) * size
        else:
            if not any(n.startswith("torch.") and n.endswith("Tensor") for n in analysis.imports):
                break
            if pos + 8 > child.size:
                yield child.finding(
                    LEGACY_LAYOUT, "tensors member ends inside a tensor header", offset=pos
                )
                return
            (ndim,) = struct.unpack_from("<i", child.data, pos)
            pos += 8 + max(ndim, 0) * 16 + 8
    if pos > child.size:
        yield child.finding(
            LEGACY_LAYOUT, f"{kind} member declares more data than it holds", offset=child.size
        )
    elif pos < child.size:
        yield child.finding(
            LEGACY_TRAILING,
            f"{child.size - pos} bytes follow the last record of {kind}; torch.load ignores them",
            offset=pos,
        )
        from modelward.pickle_analysis import analyze_stream

        for extra in analyze_stream(child, pos):
            yield from extra.findings


SCANNER: Final = LegacyTorchScanner()
