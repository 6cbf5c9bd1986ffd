"""safetensors files: the safe baseline, checked the way the reference loader checks them.

A little-endian ``uint64`` header length, a JSON header mapping tensor names to
``{"dtype", "shape", "data_offsets"}`` (plus an optional ``__metadata__`` of string to
string), then the raw tensor bytes. Loading runs no code, so the format is what
users should prefer; what can still go wrong is a header that different readers
interpret differently (duplicate keys, offsets that overlap or leave gaps, sizes that
disagree with dtype and shape), which lets a scanner or converter see other tensors
than the loader, and oversized headers that exhaust memory. The rules mirror
``Metadata::validate`` of the reference implementation
(https://github.com/huggingface/safetensors/blob/main/safetensors/src/tensor.rs);
only the header is read, so a file of any size scans in microseconds.

Rules:
    MW-ST-001 header-length (MEDIUM): the header length prefix is impossible or too large.
    MW-ST-002 header-json (MEDIUM): the header is not a valid safetensors JSON object.
    MW-ST-003 duplicate-key (MEDIUM): a JSON key appears twice in the header.
    MW-ST-004 tensor-layout (MEDIUM): offsets overlap, leave gaps, or disagree with dtype/shape.
    MW-ST-005 metadata (MEDIUM): ``__metadata__`` is not a bounded string-to-string map.
    MW-ST-006 unknown-field (LOW): a tensor entry carries fields loaders ignore.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Final

from typing_extensions import override

from modelward.errors import ResourceLimitError
from modelward.findings import Rule, RuleId, Severity
from modelward.scanners.base import Artifact, Scanner, ScanOutput

__all__ = ["DTYPE_BITS", "SCANNER", "SafetensorsScanner"]

# The reference loader refuses headers above 100 MB (MAX_HEADER_SIZE in tensor.rs).
REFERENCE_MAX_HEADER: Final = 100_000_000
MAX_METADATA_BYTES: Final = 1 << 20
MAX_FINDINGS_PER_RULE: Final = 20
_SPEC: Final = "https://github.com/huggingface/safetensors/blob/main/safetensors/src/tensor.rs"
_WS: Final = b" \t\r\n"

# Dtypes of the reference implementation and their size in bits (sub-byte MX types
# F4/F6 arrived in safetensors 0.5, F8_E8M0 and C64 with them).
DTYPE_BITS: Final[dict[str, int]] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
    "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
_USIZE_MAX: Final = (1 << 64) - 1
_KNOWN_FIELDS: Final = frozenset({"dtype", "shape", "data_offsets"})

HEADER_LENGTH: Final = Rule(
    RuleId("MW-ST-001"), "header-length", Severity.MEDIUM,
    "The 8-byte header length is zero, points past the end of the file, or exceeds the "
    "100 MB the reference loader accepts; the file is truncated or built to exhaust memory.",
    "Download the file again; do not load it with readers that trust the length.",
    (_SPEC,),
)
HEADER_JSON: Final = Rule(
    RuleId("MW-ST-002"), "header-json", Severity.MEDIUM,
    "The header is not the JSON object safetensors defines (UTF-8, tensor entries with a "
    "known dtype, a shape of non-negative integers and two offsets). Loaders reject it or, "
    "worse, read it differently from each other.",
    "Obtain the file again from a trusted source.",
    (_SPEC,),
)
DUPLICATE_KEY: Final = Rule(
    RuleId("MW-ST-003"), "duplicate-key", Severity.MEDIUM,
    "A key appears twice in the JSON header. The reference loader keeps the last entry, "
    "other JSON readers may keep the first: a scanner, converter or reviewer can be shown "
    "one tensor while the loader uses another.",
    "Do not load the file until the duplicate is explained; re-save it with safetensors.",
    (_SPEC,),
)
TENSOR_LAYOUT: Final = Rule(
    RuleId("MW-ST-004"), "tensor-layout", Severity.MEDIUM,
    "Tensor offsets overlap, leave gaps, reach past the data, or disagree with dtype and "
    "shape. The reference loader refuses such files; lenient readers alias or skip bytes, "
    "which hides data from reviews.",
    "Re-save the weights with the safetensors library from a trusted copy.",
    (_SPEC,),
)
METADATA: Final = Rule(
    RuleId("MW-ST-005"), "metadata", Severity.MEDIUM,
    "`__metadata__` must map strings to strings; other values are refused by the reference "
    "loader, and very large metadata is a place to smuggle data.",
    "Inspect the metadata; re-save the file without unexpected entries.",
    (_SPEC,),
)
UNKNOWN_FIELD: Final = Rule(
    RuleId("MW-ST-006"), "unknown-field", Severity.LOW,
    "A tensor entry has fields other than dtype, shape and data_offsets; loaders ignore "
    "them, so they can carry data no tool looks at.",
    "Re-save the file with the safetensors library.",
    (_SPEC,),
)


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    begin: int
    end: int
    nbytes: int | None  # expected from dtype and shape; None when those are invalid


class _DuplicateTracker:
    """`object_pairs_hook` that records duplicated keys instead of silently keeping one."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []

    def __call__(self, pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in pairs:
            if key in out:
                self.duplicates.append(key)
            out[key] = value  # last wins, like serde_json into a HashMap
        return out


class SafetensorsScanner(Scanner):
    """Checks the safetensors header; never reads tensor data."""

    name: ClassVar[str] = "safetensors"
    suffixes: ClassVar[frozenset[str]] = frozenset({".safetensors"})
    rules: ClassVar[tuple[Rule, ...]] = (
        HEADER_LENGTH, HEADER_JSON, DUPLICATE_KEY, TENSOR_LAYOUT, METADATA, UNKNOWN_FIELD,
    )

    @override
    def claims(self, artifact: Artifact) -> bool:
        head = artifact.head
        if len(head) < 10:
            return False
        (length,) = struct.unpack_from("<Q", head, 0)
        if length < 2:
            return False
        body = head[8:40].lstrip(_WS)
        return body[:1] == b"{" and body[1:].lstrip(_WS)[:1] in (b'"', b"}")

    @override
    def scan(self, artifact: Artifact) -> Iterator[ScanOutput]:
        size = artifact.size
        (length,) = struct.unpack_from("<Q", artifact.data, 0)
        if length > size - 8:
            yield artifact.finding(
                HEADER_LENGTH, f"header length {length} exceeds the {size - 8} bytes after the "
                "length prefix; the file is truncated or the length is forged",
                offset=0, evidence=str(length))
            return
        if length > artifact.limits.max_header_bytes:
            raise ResourceLimitError(
                f"safetensors header of {length} bytes exceeds the header budget", offset=8,
                hint="raise [tool.modelward.limits] max-header-bytes")
        if length > REFERENCE_MAX_HEADER:
            yield artifact.finding(
                HEADER_LENGTH, f"header of {length} bytes is larger than the "
                f"{REFERENCE_MAX_HEADER} the reference loader accepts", offset=0,
                evidence=str(length))
        artifact.format_detail = "safetensors"
        raw = artifact.read(8, length)
        tracker = _DuplicateTracker()
        try:
            text = raw.decode("utf-8")
            header = json.loads(text, object_pairs_hook=tracker)
        except UnicodeDecodeError as err:
            yield artifact.finding(HEADER_JSON, "header is not valid UTF-8",
                                   offset=8 + err.start)
            return
        except (ValueError, RecursionError) as err:
            yield artifact.finding(HEADER_JSON, f"header is not valid JSON: {err}", offset=8)
            return
        if not isinstance(header, dict):
            yield artifact.finding(HEADER_JSON, "header is JSON but not an object", offset=8,
                                   evidence=type(header).__name__)
            return
        for key in dict.fromkeys(tracker.duplicates):
            yield artifact.finding(
                DUPLICATE_KEY, f"key {key!r} appears more than once in the header; readers "
                "disagree on which entry counts", offset=8, node=key, evidence=key)
        yield from self._metadata(artifact, header.pop("__metadata__", None))
        tensors: list[_Tensor] = []
        for index, (name, entry) in enumerate(header.items()):
            if index % 4096 == 4095:
                artifact.check_deadline()
            problem, tensor = _parse_entry(name, entry)
            if problem is not None:
                yield artifact.finding(HEADER_JSON, problem, offset=8, node=name,
                                       evidence=_short(entry))
            if tensor is not None:
                tensors.append(tensor)
            if isinstance(entry, dict) and set(entry) - _KNOWN_FIELDS:
                extra = sorted(set(entry) - _KNOWN_FIELDS)
                yield artifact.finding(UNKNOWN_FIELD, f"tensor entry has unknown field(s) "
                                       f"{', '.join(extra)}", offset=8, node=name,
                                       evidence=_short({k: entry[k] for k in extra}))
        count = 0
        for message, node, evidence in _layout(tensors, size - 8 - length):
            count += 1
            if count > MAX_FINDINGS_PER_RULE:
                yield artifact.finding(TENSOR_LAYOUT, "more layout problems not listed",
                                       offset=8 + length)
                break
            yield artifact.finding(TENSOR_LAYOUT, message, offset=8 + length, node=node,
                                   evidence=evidence)

    def _metadata(self, artifact: Artifact, meta: object) -> Iterator[ScanOutput]:
        if meta is None:
            return
        if not isinstance(meta, dict):
            yield artifact.finding(METADATA, "__metadata__ is not an object", offset=8,
                                   node="__metadata__", evidence=_short(meta))
            return
        bad = [k for k, v in meta.items() if not isinstance(v, str)]
        if bad:
            yield artifact.finding(
                METADATA, f"__metadata__ has {len(bad)} non-string value(s); the reference "
                "loader refuses the file", offset=8, node="__metadata__",
                evidence=_short({k: meta[k] for k in bad[:3]}))
        total = sum(len(k) + len(v) for k, v in meta.items() if isinstance(v, str))
        if total > MAX_METADATA_BYTES:
            yield artifact.finding(
                METADATA, f"__metadata__ holds {total} characters of text; metadata is "
                "normally a few short strings", offset=8, node="__metadata__",
                severity=Severity.LOW, evidence=str(total))


def _short(value: object, limit: int = 160) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_usize(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _USIZE_MAX


def _parse_entry(name: str, entry: object) -> tuple[str | None, _Tensor | None]:
    """Validate one tensor entry; return a problem and the tensor's placement if known."""
    if not isinstance(entry, dict):
        return f"entry {name!r} is not an object", None
    missing = sorted(_KNOWN_FIELDS - set(entry))
    if missing:
        return f"entry {name!r} lacks {', '.join(missing)}", None
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_usize, offsets))):
        return f"data_offsets of {name!r} are not two non-negative integers", None
    begin, end = offsets
    problem = None
    nbytes: int | None = None
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        problem = f"tensor {name!r} has unknown dtype {dtype!r}"
    elif not (isinstance(shape, list) and all(map(_is_usize, shape))):
        problem = f"shape of {name!r} is not a list of non-negative integers"
    else:
        elements = 1
        for dim in shape:
            elements *= dim
        bits = elements * DTYPE_BITS[dtype]
        if elements > _USIZE_MAX or bits > _USIZE_MAX:
            problem = f"shape of {name!r} overflows a 64-bit size"
        elif bits % 8:
            problem = (f"tensor {name!r}: {elements} elements of {dtype} do not fill whole "
                       "bytes; the reference loader refuses it")
        else:
            nbytes = bits // 8
    return problem, _Tensor(name, begin, end, nbytes)


def _layout(tensors: list[_Tensor], data_size: int) -> Iterator[tuple[str, str | None, str]]:
    """Yield (message, tensor name, evidence) for each layout problem, as validate() sees them."""
    cursor = 0
    for t in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if t.end < t.begin:
            yield f"tensor {t.name!r} ends before it begins", t.name, f"[{t.begin}, {t.end}]"
            continue
        if t.nbytes is not None and t.end - t.begin != t.nbytes:
            yield (f"tensor {t.name!r} occupies {t.end - t.begin} bytes but its dtype and shape "
                   f"need {t.nbytes}", t.name, f"[{t.begin}, {t.end}]")
        if t.begin < cursor:
            yield (f"tensor {t.name!r} overlaps the previous tensor (begins at {t.begin}, "
                   f"previous ends at {cursor}); two names share bytes", t.name,
                   f"[{t.begin}, {t.end}]")
        elif t.begin > cursor:
            yield (f"{t.begin - cursor} bytes before tensor {t.name!r} belong to no tensor",
                   t.name, f"[{cursor}, {t.begin}]")
        if t.end > data_size:
            yield (f"tensor {t.name!r} ends at {t.end}, past the {data_size}-byte data section",
                   t.name, f"[{t.begin}, {t.end}]")
        cursor = max(cursor, t.end)
    if cursor < data_size:
        yield (f"{data_size - cursor} bytes after the last tensor belong to no tensor; the "
               "reference loader refuses files it does not fully cover", None,
               f"[{cursor}, {data_size}]")


SCANNER: Final = SafetensorsScanner()
