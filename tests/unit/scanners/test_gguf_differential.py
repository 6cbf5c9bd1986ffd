"""Differential tests: modelward's GGUF header reader against gguf-py's ``GGUFReader``.

A file the reference reader (the one llama.cpp's Python tooling uses) accepts but modelward
parses differently is a scanner blind spot: the loader would see tensors, offsets or keys
the scan did not. Files come from ``gguf.GGUFWriter`` (both byte orders, custom alignments,
string/int/float/nested arrays) and from byte-level edits of them (alignment values and
types, string lengths, tensor offsets). ``gguf`` is only used here, never by the scanner.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from modelward._internal.gguf_reader import GgufHeader, read_header
from modelward.errors import FormatError, ResourceLimitError
from modelward.policy import Policy
from modelward.scanners.base import Artifact, ScanBudget, ScanContext

gguf = pytest.importorskip("gguf")


def ours(data: bytes) -> GgufHeader:
    context = ScanContext(Policy(), ScanBudget(math.inf))
    return read_header(Artifact(data, path="x.gguf", context=context))


def theirs(data: bytes, tmp_path: Path) -> object | None:
    path = tmp_path / "ref.gguf"
    path.write_bytes(data)
    try:
        return gguf.GGUFReader(path)
    except Exception:
        return None


def build(tmp_path: Path, *, big: bool = False, align: int | None = None,
          nested: bool = False) -> bytes:
    path = tmp_path / "w.gguf"
    endian = gguf.GGUFEndian.BIG if big else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(path, "llama", endianess=endian)
    if align:
        writer.add_custom_alignment(align)
    writer.add_array("test.strings", ["x", "yy", "", "ünï"])
    writer.add_array("test.ints", [1, -2, 3])
    writer.add_array("test.floats", [1.5, 2.5])
    if nested:
        writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_string("test.text", "hello")
    writer.add_uint64("test.u64", 2**40)
    writer.add_tensor("t0", np.ones((3, 5), dtype=np.float32))
    writer.add_tensor("t1", np.ones((7,), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def assert_same(data: bytes, tmp_path: Path) -> None:
    """If the reference accepts `data`, modelward must parse it to the same layout."""
    ref = theirs(data, tmp_path)
    if ref is None:
        return
    try:
        header = ours(data)
    except (FormatError, ResourceLimitError) as exc:
        pytest.fail(f"GGUFReader accepts the file, modelward rejects it: {exc}")
    assert header.alignment == ref.alignment
    assert header.data_start == ref.data_offset
    assert [(t.name, t.dims, header.data_start + t.offset) for t in header.tensors] == [
        (t.name, tuple(int(x) for x in t.shape), int(t.data_offset)) for t in ref.tensors]
    ref_keys = [k for k in ref.fields if not k.startswith("GGUF.")]
    assert [kv.key for kv in header.kvs] == ref_keys
    for kv in header.kvs:
        field = ref.fields[kv.key]
        if kv.vtype == 8:  # string
            assert kv.value == bytes(field.parts[-1]).decode("utf-8", "replace")
        elif kv.vtype == 9:  # array: element count
            assert kv.length == int(field.parts[4][0])
        else:
            assert kv.value == pytest.approx(field.parts[-1][0])


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("align", [None, 1, 8, 64, 256])
def test_writer_files_agree(tmp_path: Path, big: bool, align: int | None) -> None:
    assert_same(build(tmp_path, big=big, align=align), tmp_path)


def test_nested_arrays_agree(tmp_path: Path) -> None:
    assert_same(build(tmp_path, nested=True), tmp_path)


def _patch_alignment(data: bytes, value: bytes, vtype: int | None = None) -> bytes:
    key = b"general.alignment"
    at = data.index(key) + len(key)
    if vtype is not None:
        data = data[:at] + struct.pack("<I", vtype) + data[at + 4:]
    return data[:at + 4] + value + data[at + 4 + len(value):]


@pytest.mark.parametrize("value", [0, 3, 48, 2**31])
def test_crafted_alignment_values(tmp_path: Path, value: int) -> None:
    """Alignments that are zero or not powers of two: GGUFReader accepts some of them."""
    data = _patch_alignment(build(tmp_path, align=64), struct.pack("<I", value))
    assert_same(data, tmp_path)


@pytest.mark.parametrize("offset_delta", [1, 32, 4096])
def test_crafted_tensor_offsets(tmp_path: Path, offset_delta: int) -> None:
    """A tensor offset moved off its aligned place or past the file."""
    data = bytearray(build(tmp_path))
    at = data.index(b"t1") + 2 + 4 + 8 + 4
    (old,) = struct.unpack_from("<Q", data, at)
    struct.pack_into("<Q", data, at, old + offset_delta)
    assert_same(bytes(data), tmp_path)


@pytest.mark.parametrize("length", [0, 5, 6])
def test_crafted_string_lengths(tmp_path: Path, length: int) -> None:
    """The length of test.text shortened or lengthened in place."""
    data = bytearray(build(tmp_path))
    at = data.index(b"hello") - 8
    struct.pack_into("<Q", data, at, length)
    assert_same(bytes(data), tmp_path)


def test_crafted_files_the_reference_accepts_are_compared(tmp_path: Path) -> None:
    """Keep the differential honest: an unaligned tensor offset and an in-place string
    length change are accepted by GGUFReader, so the comparison above really runs."""
    data = bytearray(build(tmp_path))
    at = data.index(b"t1") + 2 + 4 + 8 + 4
    struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] + 1)
    assert theirs(bytes(data), tmp_path) is not None
    header = ours(bytes(data))
    assert any(p.kind == "tensor" and "not aligned" in p.message for p in header.problems)
    text = bytearray(build(tmp_path))
    struct.pack_into("<Q", text, text.index(b"hello") - 8, 5)
    assert theirs(bytes(text), tmp_path) is not None
