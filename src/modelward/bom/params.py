"""Parameter counts and dtypes of safetensors, ONNX, GGUF and PyTorch files, from headers only.

The ML-BOM's ``parameterCount`` must come from what the file declares, without loading a
model (security invariant 1). Each reader here maps the file read-only and uses the
project's own bounded parsers:

- safetensors: the JSON header (8-byte little-endian length first), identified by content;
  shapes and dtypes of every tensor.
- ONNX: initializer dims from `modelward.graph.ir.parse_model` (tensor payloads are
  skipped, never copied); external-data initializers count too (their dims are in the
  graph), the external files are not read.
- GGUF: tensor infos from `modelward._internal.gguf_reader.read_header`.
- PyTorch zip checkpoints (``torch.save``): the ``data.pkl`` member is analysed
  symbolically (`modelward.pickle_analysis.analyze`, never unpickled); each persistent id
  ``('storage', <dtype storage class>, key, location, numel)`` gives a storage's dtype
  and element count. Storages shared by views count once, so this is the number of
  elements stored (parameters plus buffers).

Anything malformed, over budget or not one of these formats gives ``None``: a BOM states
what is known, it never guesses.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from modelward.errors import ModelwardError
from modelward.policy import Policy

__all__ = ["TensorSummary", "read_safetensors", "read_tensor_summary"]

MAX_FILE: Final = 64 << 30
"""Files larger than this are not mapped for a BOM (the header readers need the size)."""

MAX_PICKLE: Final = 256 << 20
#: Largest safetensors JSON header read.
MAX_SAFETENSORS_HEADER: Final = 64 << 20
"""Largest ``data.pkl`` analysed for storage sizes."""

_ONNX_TYPES: Final = {
    1: "F32", 2: "U8", 3: "I8", 4: "U16", 5: "I16", 6: "I32", 7: "I64", 8: "STRING",
    9: "BOOL", 10: "F16", 11: "F64", 12: "U32", 13: "U64", 16: "BF16", 17: "F8_E4M3FN",
    18: "F8_E4M3FNUZ", 19: "F8_E5M2", 20: "F8_E5M2FNUZ", 21: "U4", 22: "I4",
}
_GGML_TYPES: Final = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 24: "I8",
    25: "I16", 26: "I32", 27: "I64", 28: "F64", 30: "BF16",
}
_TORCH_STORAGES: Final = {
    "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16",
    "BFloat16Storage": "BF16", "LongStorage": "I64", "IntStorage": "I32",
    "ShortStorage": "I16", "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64", "ComplexDoubleStorage": "C128",
}


@dataclass(frozen=True, slots=True)
class TensorSummary:
    """What a file's header declares about its tensors.

    Attributes:
        format: ``safetensors``, ``onnx``, ``gguf`` or ``pytorch``.
        tensors: tensor (or storage) count.
        parameters: total elements declared.
        dtypes: element types, in safetensors spelling (``F32``, ``BF16``, ``Q4_K``...).
    """

    format: str
    tensors: int
    parameters: int
    dtypes: frozenset[str]


def _artifact(data: memoryview, name: str) -> object:
    from modelward.scanners.base import Artifact, ScanBudget, ScanContext

    policy = Policy()
    context = ScanContext(policy, ScanBudget(time.monotonic()
                                             + policy.limits.max_seconds_per_file))
    return Artifact(data, path=name, context=context)


def _onnx(data: memoryview) -> TensorSummary | None:
    from modelward.graph.ir import parse_model

    model = parse_model(data)
    tensors = [t for graph in model.all_graphs() for t in graph.initializers]
    if not tensors:
        return None
    return TensorSummary("onnx", len(tensors), sum(t.numel for t in tensors),
                         frozenset(_ONNX_TYPES.get(t.data_type, str(t.data_type))
                                   for t in tensors))


def _gguf(data: memoryview, name: str) -> TensorSummary | None:
    from modelward._internal.gguf_reader import read_header

    header = read_header(_artifact(data, name))  # type: ignore[arg-type]
    params = 0
    for tensor in header.tensors:
        n = 1
        for d in tensor.dims:
            n *= max(d, 0)
        params += n
    return TensorSummary("gguf", len(header.tensors), params,
                         frozenset(_GGML_TYPES.get(t.ggml_type, str(t.ggml_type))
                                   for t in header.tensors))


def _pytorch(path: Path) -> TensorSummary | None:
    from modelward.pickle_analysis import analyze

    with zipfile.ZipFile(path) as archive:
        members = [i for i in archive.infolist() if i.filename.endswith("/data.pkl")
                   or i.filename == "data.pkl"]
        if len(members) != 1 or members[0].file_size > MAX_PICKLE:
            return None
        raw = archive.read(members[0])
    analysis = analyze(_artifact(memoryview(raw), path.name))  # type: ignore[arg-type]
    if not analysis.complete:
        return None
    seen: dict[str, tuple[str, int]] = {}
    for pid in analysis.persistent_ids:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            continue
        kind, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            return None
        dtype = _TORCH_STORAGES.get(str(kind).rsplit(".", 1)[-1], str(kind))
        seen[str(key)] = (dtype, numel)
    if not seen:
        return None
    return TensorSummary("pytorch", len(seen), sum(n for _, n in seen.values()),
                         frozenset(d for d, _ in seen.values()))


def read_safetensors(path: Path) -> TensorSummary | None:
    """Parse a safetensors header, or return ``None`` when the file is not one.

    Reads at most ``8 + MAX_SAFETENSORS_HEADER`` bytes; tensor data is never touched.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) != 8:
                return None
            (length,) = struct.unpack("<Q", head)
            size = os.fstat(handle.fileno()).st_size
            if length < 2 or length > MAX_SAFETENSORS_HEADER or 8 + length > size:
                return None
            raw = handle.read(length)
    except OSError:
        return None
    if not raw.lstrip().startswith(b"{"):
        return None
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting beyond the C stack
        return None
    if not isinstance(header, dict):
        return None
    tensors = parameters = 0
    dtypes: set[str] = set()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            return None
        shape = info.get("shape")
        dtype = info.get("dtype")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            return None
        if isinstance(dtype, str):
            dtypes.add(dtype)
        tensors += 1
        parameters += math.prod(shape)
    return TensorSummary("safetensors", tensors, parameters, frozenset(dtypes))


def read_tensor_summary(path: Path) -> TensorSummary | None:
    """Summarise a safetensors, ONNX, GGUF or PyTorch zip file's tensors, or ``None``.

    The format is told by content: GGUF magic, a zip holding ``data.pkl``, else an
    attempt at an ONNX ModelProto (only for ``.onnx`` files, as protobuf has no magic
    and any bytes half-parse). Never raises for bad content.
    """
    safetensors = read_safetensors(path)
    if safetensors is not None:
        return safetensors
    try:
        size = path.stat().st_size
        if size < 8 or size > MAX_FILE:
            return None
        with path.open("rb") as handle:
            head = handle.read(4)
            if head[:2] == b"PK":
                return _pytorch(path) if zipfile.is_zipfile(path) else None
            if head != b"GGUF" and path.suffix.lower() != ".onnx":
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
                    mapped.madvise(mmap.MADV_RANDOM)  # headers only: no read-ahead
                view = memoryview(mapped)
                try:
                    if head == b"GGUF":
                        return _gguf(view, path.name)
                    return _onnx(view)
                finally:
                    view.release()
    except (ModelwardError, OSError, ValueError, zipfile.BadZipFile, RecursionError,
            EOFError, KeyError, NotImplementedError, BufferError):
        return None
