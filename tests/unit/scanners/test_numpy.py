"""NumPy .npy/.npz: object payloads are analysed as pickles, headers parsed like numpy does."""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.scanners.numpy import parse_npy_header


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {os.environ.get('MODELWARD_TEST_MARKER', '/nonexistent/x')}",))


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def critical_pkl(result) -> bool:
    return any(
        f.rule.id.startswith("MW-PKL-") and f.severity is Severity.CRITICAL for f in result.findings
    )


def npy(header: str, payload: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    raw = header.encode("latin1")
    raw += b" " * (-(len(raw) + 11) % 64) + b"\n"
    if version == (1, 0):
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + payload
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(raw)) + raw + payload


def saved(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_numeric_array_is_clean() -> None:
    result = scan_bytes(
        saved(np.arange(12, dtype="<f8").reshape(3, 4)), "a.npy", raise_internal=True
    )
    assert result.format == "numpy" and not result.findings


def test_object_array_with_malicious_pickle() -> None:
    evil = pickle.dumps(_Evil(), protocol=3)
    for version in ((1, 0), (2, 0), (3, 0)):
        data = npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", evil, version)
        result = scan_bytes(data, "o.npy", raise_internal=True)
        assert "MW-NPY-001" in ids(result) and critical_pkl(result)


def test_structured_dtype_with_object_field() -> None:
    evil = pickle.dumps(_Evil())
    data = npy(
        "{'descr': [('a', '<f4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }", evil
    )
    assert critical_pkl(scan_bytes(data, "s.npy", raise_internal=True))
    data = npy("{'descr': 'i4, O', 'fortran_order': False, 'shape': (1,), }", evil)
    assert critical_pkl(scan_bytes(data, "s.npy", raise_internal=True))


def test_benign_object_array_from_numpy() -> None:
    result = scan_bytes(saved(np.array([1, "a", None], dtype=object)), "o.npy", raise_internal=True)
    assert result.format == "npy-object" and "MW-NPY-001" in ids(result)
    assert not critical_pkl(result)


def test_payload_hidden_after_array_data() -> None:
    data = saved(np.zeros(4, dtype="<i4")) + pickle.dumps(_Evil())
    result = scan_bytes(data, "t.npy", raise_internal=True)
    assert "MW-NPY-002" in ids(result) and critical_pkl(result)


def test_short_payload_and_big_header() -> None:
    assert "MW-NPY-002" in ids(scan_bytes(saved(np.zeros(8))[:-8], "s.npy", raise_internal=True))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }" + " " * 12000
    assert "MW-NPY-003" in ids(scan_bytes(npy(header, b"", (2, 0)), "h.npy", raise_internal=True))


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "__import__('os').system('x')",
        "[1, 2, 3]",
    ],
)
def test_bad_headers_are_malformed(header: str) -> None:
    result = scan_bytes(npy(header, b""), "b.npy", raise_internal=True)
    assert "MW-CORE-002" in ids(result)


def test_npz_members_are_scanned() -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.zeros(3), b=np.array([_Evil], dtype=object))
    result = scan_bytes(buf.getvalue(), "z.npz", raise_internal=True)
    assert result.format == "npz"
    assert {m.members[-1] for m in result.members} == {"a.npy", "b.npy"}
    assert "MW-NPY-001" in ids(result)


def test_header_parser_matches_numpy() -> None:
    data = saved(np.zeros((2, 3), dtype=">u2", order="F"))
    header, start, _ = parse_npy_header(memoryview(data), 1 << 20)
    ref = np.lib.format.read_array_header_1_0(_after_magic(data))
    assert (header["shape"], header["fortran_order"]) == (ref[0], ref[1])
    assert np.dtype(header["descr"]) == ref[2] and start == len(data) - 12


def _after_magic(data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)
    np.lib.format.read_magic(stream)
    return stream


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=300),
    st.integers(min_value=0, max_value=200),
    st.binary(min_size=1, max_size=4),
)
def test_arbitrary_npy_never_crashes(tail: bytes, where: int, patch: bytes) -> None:
    data = bytearray(saved(np.array([1, 2], dtype=object)))
    where %= len(data)
    data[where : where + len(patch)] = patch
    scan_bytes(bytes(data), "f.npy", raise_internal=True)
    scan_bytes(b"\x93NUMPY" + tail, "g.npy", raise_internal=True)
