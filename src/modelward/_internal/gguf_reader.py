"""A bounded reader for the GGUF header (llama.cpp model files), versions 1 to 3.

Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md. Layout: magic ``GGUF``,
``uint32`` version, tensor count and key/value count (``uint32`` in v1, ``uint64`` after),
the typed key/value pairs, the tensor infos (name, dims, ggml type, offset), padding to
``general.alignment`` (default 32), then raw tensor data, which is never read.

Every count and length is checked against the bytes that remain before anything is
allocated: llama.cpp's own reader had heap overflows from exactly these fields
(TALOS-2024-1912..1916, https://talosintelligence.com/vulnerability_reports/TALOS-2024-1913).
Files written big-endian (``gguf-py --bigendian``) keep the magic but store the version and
everything after it big-endian; they are parsed and reported.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from modelward.errors import FormatError, ResourceLimitError
from modelward.scanners.base import Artifact

__all__ = [
    "GGML_TYPES",
    "ExploitPatternError",
    "GgufHeader",
    "GgufKeyValue",
    "GgufTensor",
    "HeaderProblem",
    "read_header",
]

MAGIC: Final = b"GGUF"
DEFAULT_ALIGNMENT: Final = 32
GGML_MAX_DIMS: Final = 4
MAX_TEXT_DECODED: Final = 1 << 21  # strings kept as text (templates); longer ones only measured
MAX_ARRAY_NESTING: Final = 8
INT64_MAX: Final = (1 << 63) - 1

# GGUF value types: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md#file-structure
T_STRING: Final = 8
T_ARRAY: Final = 9
_SCALARS: Final[dict[int, tuple[str, int]]] = {
    0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4),
    6: ("f", 4), 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8),
}
TYPE_NAMES: Final[dict[int, str]] = {
    0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32",
    7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64",
}

# ggml tensor types: id -> (name, elements per block, bytes per block), as in ggml.h /
# gguf-py GGML_QUANT_SIZES. Ids 4, 5 (Q4_2/Q4_3) and 31..33, 36..38 were removed upstream.
_QK: Final = 256
GGML_TYPES: Final[dict[int, tuple[str, int, int]]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", _QK, 2 + 2 + _QK // 16 + _QK // 4),
    11: ("Q3_K", _QK, 2 + _QK // 4 + _QK // 8 + 12),
    12: ("Q4_K", _QK, 2 + 2 + _QK // 2 + 12),
    13: ("Q5_K", _QK, 2 + 2 + _QK // 2 + _QK // 8 + 12),
    14: ("Q6_K", _QK, 2 + _QK // 2 + _QK // 4 + _QK // 16),
    15: ("Q8_K", _QK, 4 + _QK + _QK // 8),
    16: ("IQ2_XXS", _QK, 2 + _QK // 4), 17: ("IQ2_XS", _QK, 2 + _QK // 4 + _QK // 32),
    18: ("IQ3_XXS", _QK, 2 + _QK // 4 + _QK // 8), 19: ("IQ1_S", _QK, 2 + _QK // 8 + _QK // 16),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", _QK, 2 + _QK // 4 + _QK // 8 + _QK // 32 + 4),
    22: ("IQ2_S", _QK, 2 + _QK // 4 + _QK // 16), 23: ("IQ4_XS", _QK, 2 + 2 + _QK // 2 + _QK // 64),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", _QK, _QK // 8 + _QK // 16 + _QK // 32), 30: ("BF16", 1, 2),
    34: ("TQ1_0", _QK, 2 + 4 * 13), 35: ("TQ2_0", _QK, 2 + 64), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """Something wrong with the header that parsing could get past.

    Attributes:
        kind: ``tensor`` (layout), ``header`` (values), ``endian``, ``duplicate``.
        high: whether it matches a known loader-exploitation pattern.
        message: what is wrong.
        offset: byte offset in the file.
        evidence: the offending value.
        node: key or tensor name.
    """

    kind: str
    high: bool
    message: str
    offset: int
    evidence: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class GgufKeyValue:
    """One metadata pair. `value` is the decoded scalar or (bounded) string, else None."""

    key: str
    vtype: int
    offset: int
    value: object = None
    length: int = 0  # string length or array count


@dataclass(frozen=True, slots=True)
class GgufTensor:
    """One tensor info; `offset` is relative to the data section."""

    name: str
    dims: tuple[int, ...]
    ggml_type: int
    offset: int
    info_offset: int


@dataclass(slots=True)
class GgufHeader:
    """The parsed header and the problems found on the way."""

    version: int
    big_endian: bool
    kvs: list[GgufKeyValue] = field(default_factory=list)
    tensors: list[GgufTensor] = field(default_factory=list)
    alignment: int = DEFAULT_ALIGNMENT
    data_start: int = 0
    problems: list[HeaderProblem] = field(default_factory=list)


class ExploitPatternError(FormatError):
    """The header cannot be parsed further, and the reason matches a known loader exploit."""

    def __init__(self, message: str, *, offset: int, node: str, evidence: str) -> None:
        super().__init__(message, offset=offset)
        self.node = node
        self.evidence = evidence


class _Cursor:
    def __init__(self, artifact: Artifact, endian: str, wide: bool) -> None:
        self.artifact = artifact
        self.data = artifact.data
        self.size = len(artifact.data)
        self.end = min(self.size, artifact.limits.max_header_bytes)
        self.pos = 0
        self.endian = endian
        self.wide = wide  # v2+: counts and lengths are uint64
        self.steps = 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise FormatError(f"{what} needs {n} bytes but only {self.size - self.pos} remain",
                              offset=self.pos)
        if self.pos + n > self.end:
            raise ResourceLimitError(
                f"GGUF header runs past the {self.artifact.limits.max_header_bytes}-byte "
                "header budget", offset=self.pos,
                hint="raise [tool.modelward.limits] max-header-bytes")

    def unpack(self, fmt: str, size: int, what: str) -> int | float | bool:
        self.need(size, what)
        (value,) = struct.unpack_from(self.endian + fmt, self.data, self.pos)
        self.pos += size
        return value  # type: ignore[no-any-return]

    def count(self, what: str) -> int:
        return int(self.unpack("Q", 8, what) if self.wide else self.unpack("I", 4, what))

    def u32(self, what: str) -> int:
        return int(self.unpack("I", 4, what))

    def string(self, what: str, keep: int) -> tuple[str | None, int]:
        """Read a length-prefixed string; decode it only when shorter than `keep`."""
        length = self.count(f"length of {what}")
        self.need(length, what)
        start = self.pos
        self.pos += length
        if length > keep:
            return None, length
        raw = bytes(self.data[start : self.pos])
        try:
            return raw.decode("utf-8"), length
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace"), length

    def tick(self) -> None:
        self.steps += 1
        if self.steps & 0xFFF == 0:
            self.artifact.check_deadline()


def read_header(artifact: Artifact) -> GgufHeader:
    """Parse the header of a GGUF artifact without touching tensor data.

    Raises:
        FormatError: not GGUF, unsupported version, or a count/length the file cannot hold.
        ResourceLimitError: the header is larger than the header budget or takes too long.
    """
    data = artifact.data
    if len(data) < 8 or bytes(data[:4]) != MAGIC:
        raise FormatError("missing GGUF magic", offset=0)
    (le_version,) = struct.unpack_from("<I", data, 4)
    (be_version,) = struct.unpack_from(">I", data, 4)
    big_endian = le_version not in (1, 2, 3) and be_version in (1, 2, 3)
    version = be_version if big_endian else le_version
    if version not in (1, 2, 3):
        raise FormatError(f"unsupported GGUF version {le_version}", offset=4)
    header = GgufHeader(version=version, big_endian=big_endian)
    if big_endian:
        header.problems.append(HeaderProblem(
            "endian", False, "big-endian GGUF: most loaders read it as little-endian garbage",
            4, f"version bytes {bytes(data[4:8]).hex()}"))
    cur = _Cursor(artifact, ">" if big_endian else "<", wide=version >= 2)
    cur.pos = 8
    n_tensors = cur.count("tensor count")
    n_kv = cur.count("key/value count")
    # Smallest possible encodings: a kv is a key length, a type and a 1-byte value;
    # a tensor info is a name length, n_dims, one dim, a type and an offset.
    len_size = 8 if cur.wide else 4
    remaining = cur.size - cur.pos
    if n_kv * (len_size + 4 + 1) > remaining:
        raise FormatError(f"header claims {n_kv} key/values, more than the "
                          f"{remaining} remaining bytes can hold", offset=16 if cur.wide else 12)
    if n_tensors * (len_size + 4 + len_size + 4 + 8) > remaining:
        raise FormatError(f"header claims {n_tensors} tensors, more than the "
                          f"{remaining} remaining bytes can hold", offset=8)
    keys: set[str] = set()
    for _ in range(n_kv):
        cur.tick()
        start = cur.pos
        key, _ = cur.string("key", 1 << 16)
        key = key if key is not None else "<oversized key>"
        vtype = cur.u32(f"type of {key}")
        kv = _read_value(cur, key, vtype, start, header, depth=0)
        if key in keys:
            header.problems.append(HeaderProblem(
                "duplicate", False, f"key {key!r} appears twice; loaders disagree on which "
                "value wins (llama.cpp refuses the file)", start, key, key))
        keys.add(key)
        header.kvs.append(kv)
        if key == "general.alignment":
            _set_alignment(header, kv)
    names: set[str] = set()
    for _ in range(n_tensors):
        cur.tick()
        start = cur.pos
        name, _ = cur.string("tensor name", 1 << 16)
        name = name if name is not None else "<oversized name>"
        n_dims = cur.u32(f"dimension count of {name}")
        if n_dims > GGML_MAX_DIMS:
            raise ExploitPatternError(
                f"tensor {name!r} declares {n_dims} dimensions; ggml allows {GGML_MAX_DIMS} and "
                "readers that trust the count overflow a fixed array (TALOS-2024-1915)",
                offset=start, node=name, evidence=str(n_dims))
        dims = tuple(cur.count(f"dimension of {name}") for _ in range(n_dims))
        ggml_type = cur.u32(f"type of {name}")
        offset = int(cur.unpack("Q", 8, f"offset of {name}"))
        if name in names:
            header.problems.append(HeaderProblem(
                "duplicate", False, f"tensor name {name!r} appears twice; loaders disagree on "
                "which one is used", start, name, name))
        names.add(name)
        header.tensors.append(GgufTensor(name, dims, ggml_type, offset, start))
    align = header.alignment
    header.data_start = (cur.pos + align - 1) // align * align
    if header.tensors and header.data_start > cur.size:
        raise FormatError("file ends before the tensor data section", offset=cur.pos)
    _check_tensors(header, cur.size)
    return header


def _set_alignment(header: GgufHeader, kv: GgufKeyValue) -> None:
    value = kv.value
    if kv.vtype != 4 or not isinstance(value, int) or value <= 0 or value & (value - 1):
        header.problems.append(HeaderProblem(
            "header", False, "general.alignment must be a non-zero power of two stored as "
            "uint32; loaders fall back to different values", kv.offset, repr(value),
            "general.alignment"))
        return
    header.alignment = value


def _read_value(cur: _Cursor, key: str, vtype: int, start: int, header: GgufHeader,
                depth: int) -> GgufKeyValue:
    if vtype in _SCALARS:
        fmt, size = _SCALARS[vtype]
        return GgufKeyValue(key, vtype, start, cur.unpack(fmt, size, f"value of {key}"))
    if vtype == T_STRING:
        keep = MAX_TEXT_DECODED if key.startswith("tokenizer.chat_template") else 4096
        text, length = cur.string(f"value of {key}", keep)
        return GgufKeyValue(key, vtype, start, text, length)
    if vtype == T_ARRAY:
        elem = cur.u32(f"element type of {key}")
        count = cur.count(f"element count of {key}")
        remaining = cur.size - cur.pos
        if elem in _SCALARS:
            cur.need(count * _SCALARS[elem][1], f"array {key}")
            cur.pos += count * _SCALARS[elem][1]
        elif elem == T_STRING:
            if count * (8 if cur.wide else 4) > remaining:
                raise FormatError(f"array {key!r} claims {count} strings, more than the file "
                                  "can hold", offset=start)
            for _ in range(count):
                cur.tick()
                length = cur.count(f"string length in {key}")
                cur.need(length, f"string in {key}")
                cur.pos += length
        elif elem == T_ARRAY:
            if depth == 0:
                header.problems.append(HeaderProblem(
                    "header", False, f"array {key!r} nests arrays, which llama.cpp rejects and "
                    "other readers handle differently", start, "array of array", key))
            if depth + 1 >= MAX_ARRAY_NESTING:
                raise ResourceLimitError(f"arrays nested deeper than {MAX_ARRAY_NESTING} in "
                                         f"{key!r}", offset=start)
            if count * 12 > remaining:
                raise FormatError(f"array {key!r} claims {count} arrays, more than the file "
                                  "can hold", offset=start)
            for _ in range(count):
                cur.tick()
                inner_type = T_ARRAY
                _read_value(cur, key, inner_type, cur.pos, header, depth + 1)
        else:
            raise FormatError(f"array {key!r} has unknown element type {elem}", offset=start)
        return GgufKeyValue(key, vtype, start, None, count)
    raise FormatError(f"key {key!r} has unknown value type {vtype}", offset=start)


def tensor_nbytes(tensor: GgufTensor) -> int | None:
    """Bytes the tensor occupies, or None when its type is unknown."""
    info = GGML_TYPES.get(tensor.ggml_type)
    if info is None:
        return None
    _, block, size = info
    elements = 1
    for dim in tensor.dims:
        elements *= dim
    return elements // block * size


def _check_tensors(header: GgufHeader, file_size: int) -> None:
    data_size = file_size - header.data_start
    placed: list[tuple[int, int, GgufTensor]] = []
    for t in header.tensors:
        info = GGML_TYPES.get(t.ggml_type)
        if info is None:
            header.problems.append(HeaderProblem(
                "tensor", False, f"tensor {t.name!r} has unknown ggml type {t.ggml_type}",
                t.info_offset, str(t.ggml_type), t.name))
            continue
        elements = 1
        for dim in t.dims:
            elements *= dim
        if any(d > INT64_MAX for d in t.dims) or elements > INT64_MAX:
            header.problems.append(HeaderProblem(
                "tensor", True, f"tensor {t.name!r} has dimensions whose product overflows a "
                "64-bit integer; readers that multiply them allocate too little "
                "(TALOS-2024-1914)", t.info_offset, "x".join(map(str, t.dims)), t.name))
            continue
        if t.dims and t.dims[0] % info[1]:
            header.problems.append(HeaderProblem(
                "tensor", False, f"tensor {t.name!r}: first dimension {t.dims[0]} is not a "
                f"multiple of the {info[0]} block size {info[1]}", t.info_offset,
                str(t.dims[0]), t.name))
        nbytes = elements // info[1] * info[2]
        if t.offset % header.alignment:
            header.problems.append(HeaderProblem(
                "tensor", False, f"tensor {t.name!r} offset {t.offset} is not aligned to "
                f"{header.alignment}", t.info_offset, str(t.offset), t.name))
        if t.offset + nbytes > data_size:
            header.problems.append(HeaderProblem(
                "tensor", False, f"tensor {t.name!r} spans bytes {t.offset}..{t.offset + nbytes}"
                f" of a data section of {max(data_size, 0)} bytes; it reads past the end of the "
                "file", t.info_offset, f"{t.offset}+{nbytes}", t.name))
            continue
        placed.append((t.offset, nbytes, t))
    placed.sort(key=lambda p: (p[0], p[1]))
    end = 0
    for offset, nbytes, t in placed:
        if offset < end:
            header.problems.append(HeaderProblem(
                "tensor", False, f"tensor {t.name!r} overlaps the previous tensor; two names "
                "read the same bytes", t.info_offset, f"{offset}<{end}", t.name))
        elif offset - end >= header.alignment and end:
            header.problems.append(HeaderProblem(
                "gap", False, f"{offset - end} unaccounted bytes before tensor {t.name!r}",
                header.data_start + end, str(offset - end), t.name))
        end = max(end, offset + nbytes)
    if placed and data_size - end >= header.alignment:
        header.problems.append(HeaderProblem(
            "gap", False, f"{data_size - end} bytes after the last tensor belong to no tensor",
            header.data_start + end, str(data_size - end)))
