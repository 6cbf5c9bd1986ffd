"""safetensors scanner: files written by the safetensors library, and tampered headers."""

from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelward import Status, scan_bytes, scan_path
from modelward.scanners.safetensors import DTYPE_BITS

st_numpy = pytest.importorskip("safetensors.numpy")


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def build(header: dict[str, object] | str, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, str) else json.dumps(header)
    body = raw.encode()
    return struct.pack("<Q", len(body)) + body + data


@pytest.fixture(scope="module")
def benign() -> bytes:
    return st_numpy.save({"w": np.zeros((3, 4), np.float32), "b": np.ones(5, np.int8),
                          "h": np.ones((2, 2), np.float16)}, metadata={"format": "np"})


def test_numpy_file_is_clean(benign: bytes) -> None:
    result = scan_bytes(benign, "model.safetensors", raise_internal=True)
    assert result.format == "safetensors"
    assert result.findings == []


def test_torch_file_is_clean(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2, 3, dtype=torch.bfloat16), "b": torch.ones(7)},
              str(tmp_path / "m.safetensors"), metadata={"format": "pt"})
    result = scan_bytes((tmp_path / "m.safetensors").read_bytes(), "m.safetensors",
                        raise_internal=True)
    assert result.findings == []


def test_large_file_scans_from_the_header_alone(tmp_path) -> None:
    size = 1 << 30  # a sparse 1 GiB tensor: only the header may be read
    path = tmp_path / "big.safetensors"
    path.write_bytes(build({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}))
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size + size)
    started = time.perf_counter()
    report = scan_path(path, raise_internal=True)
    assert time.perf_counter() - started < 0.5
    assert report.files[0].findings == []


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_every_dtype_size(dtype: str) -> None:
    nbytes = 8 * DTYPE_BITS[dtype] // 8  # 8 elements always fill whole bytes
    data = build({"t": {"dtype": dtype, "shape": [8], "data_offsets": [0, nbytes]}},
                 b"\0" * nbytes)
    assert scan_bytes(data, "t.safetensors", raise_internal=True).findings == []


def test_subbyte_dtype_not_filling_bytes() -> None:
    data = build({"t": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0\0")
    assert "MW-ST-002" in ids(scan_bytes(data, "t.safetensors", raise_internal=True))


def test_duplicate_keys_are_a_parser_differential() -> None:
    header = ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
              '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}')
    result = scan_bytes(build(header, b"\0" * 8), "d.safetensors", raise_internal=True)
    (finding,) = [f for f in result.findings if f.rule.id == "MW-ST-003"]
    assert finding.location.node == "a"


def test_overlapping_tensors() -> None:
    data = build({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8)
    result = scan_bytes(data, "o.safetensors", raise_internal=True)
    assert any("overlaps" in f.message for f in result.findings if f.rule.id == "MW-ST-004")


def test_gap_and_trailing_bytes() -> None:
    data = build({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 12)
    messages = [f.message for f in scan_bytes(data, "g.safetensors", raise_internal=True).findings]
    assert any("before tensor 'a'" in m for m in messages)
    assert any("after the last tensor" in m for m in messages)


def test_size_disagrees_with_shape() -> None:
    data = build({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8)
    assert "MW-ST-004" in ids(scan_bytes(data, "s.safetensors", raise_internal=True))


def test_out_of_range() -> None:
    data = build({"a": {"dtype": "U8", "shape": [64], "data_offsets": [0, 64]}}, b"\0" * 8)
    result = scan_bytes(data, "r.safetensors", raise_internal=True)
    assert any("past the" in f.message for f in result.findings)


def test_header_length_past_end(benign: bytes) -> None:
    forged = struct.pack("<Q", len(benign) * 4) + benign[8:]
    assert ids(scan_bytes(forged, "l.safetensors", raise_internal=True)) == {"MW-ST-001"}


def test_metadata_must_be_strings() -> None:
    data = build({"__metadata__": {"format": "pt", "n": 3}})
    assert "MW-ST-005" in ids(scan_bytes(data, "m.safetensors", raise_internal=True))


def test_unknown_dtype_and_extra_field() -> None:
    data = build({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1], "payload": "x"}},
                 b"\0")
    assert {"MW-ST-002", "MW-ST-006"} <= ids(scan_bytes(data, "u.safetensors",
                                                        raise_internal=True))


def test_not_json() -> None:
    data = struct.pack("<Q", 6) + b'{"a":}'
    result = scan_bytes(data, "j.safetensors", raise_internal=True)
    assert ids(result) == {"MW-ST-002"}


def test_deeply_nested_json_is_contained() -> None:
    body = '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"
    result = scan_bytes(build(body), "n.safetensors", raise_internal=True)
    assert result.status is not Status.FAILED or result.findings


def test_many_tensors_report_is_bounded() -> None:
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [8 * i, 8 * i + 4]}
              for i in range(500)}
    result = scan_bytes(build(header, b"\0" * 4000), "m.safetensors", raise_internal=True)
    assert len(result.findings) <= 21


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_files_never_crash(benign: bytes, data: st.DataObject) -> None:
    blob = bytearray(benign)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    scan_bytes(bytes(blob[: data.draw(st.integers(0, len(blob)))]), "f.safetensors",
               raise_internal=True)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                         max_size=3),
                    max_leaves=12), st.binary(max_size=64))
def test_arbitrary_json_headers_never_crash(header: object, tail: bytes) -> None:
    body = json.dumps({"x": header}).encode()
    scan_bytes(struct.pack("<Q", len(body)) + body + tail, "f.safetensors", raise_internal=True)
