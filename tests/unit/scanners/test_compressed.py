"""Compressed streams: every codec joblib uses reaches the pickle scanner, under caps."""

from __future__ import annotations

import builtins
import bz2
import gzip
import lzma
import os
import pickle
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import Policy, Status, scan_bytes
from modelward.findings import Severity
from modelward.policy import Limits
from modelward.scanners.compressed import sniff_codec


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {os.environ.get('MODELWARD_TEST_MARKER', '/nonexistent/x')}",))


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def critical_pkl(result) -> bool:
    return any(
        f.rule.id.startswith("MW-PKL-") and f.severity is Severity.CRITICAL for f in result.findings
    )


def _lz4(data: bytes) -> bytes:
    import lz4.frame

    return lz4.frame.compress(data)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def _zf(data: bytes) -> bytes:  # joblib < 0.10 "ZF" zlib files
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data)


CODECS = {
    "gzip": gzip.compress,
    "zlib": zlib.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "lz4": _lz4,
    "zstd": _zstd,
    "zlib-zf": _zf,
}


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_each_codec_reaches_the_pickle_scanner(codec: str) -> None:
    data = CODECS[codec](pickle.dumps(_Evil()))
    result = scan_bytes(data, "model.joblib", raise_internal=True)
    assert result.format == codec
    assert critical_pkl(result)


def test_joblib_compressed_dump(tmp_path) -> None:
    joblib = pytest.importorskip("joblib")
    import numpy as np

    for compress in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4"):
        path = tmp_path / f"m.{compress}"
        joblib.dump({"a": np.arange(10)}, path, compress=(compress, 3))
        result = scan_bytes(path.read_bytes(), path.name, raise_internal=True)
        assert result.format is not None and result.format.startswith(compress), (
            compress,
            result.format,
        )
        assert result.members and result.members[0].format is not None


def test_truncated_stream_prefix_is_analysed() -> None:
    data = gzip.compress(pickle.dumps(_Evil()) + os.urandom(5000))[:-200]
    result = scan_bytes(data, "t.gz", raise_internal=True)
    assert "MW-CMP-002" in ids(result) and critical_pkl(result)


def test_trailing_data_is_analysed() -> None:
    data = gzip.compress(b"hello") + b"\x01" + pickle.dumps(_Evil())
    result = scan_bytes(data, "t.gz", raise_internal=True)
    assert "MW-CMP-003" in ids(result)


def test_concatenated_gzip_members_are_one_stream() -> None:
    payload = pickle.dumps(_Evil())
    data = gzip.compress(payload[:10]) + gzip.compress(payload[10:])
    result = scan_bytes(data, "t.gz", raise_internal=True)
    assert critical_pkl(result) and "MW-CMP-003" not in ids(result)


def test_bomb_stops_with_resource_limit() -> None:
    data = bz2.compress(b"\0" * (16 << 20))
    result = scan_bytes(
        data, "b.bz2", raise_internal=True, policy=Policy(limits=Limits(max_compression_ratio=100))
    )
    assert "MW-CORE-003" in ids(result) and result.status is Status.FAILED


def test_missing_optional_codec_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _lz4(b"whatever")
    real_import = builtins.__import__

    def no_lz4(name: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if name.startswith("lz4"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lz4)
    result = scan_bytes(data, "x.lz4", raise_internal=True)
    assert "MW-CMP-001" in ids(result)


@pytest.mark.parametrize(
    "head",
    [
        b"x\x9cnot really zlib at all" * 4,
        b"xylophone music " * 8,
        b"\x5d\x00\x00 random text here" * 3,
    ],
)
def test_careful_claims(head: bytes) -> None:
    assert sniff_codec(head) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["gzip", "zlib", "bz2", "xz", "lzma", "lz4", "zstd"]),
    st.integers(min_value=0, max_value=200),
    st.binary(min_size=1, max_size=6),
)
def test_mutated_streams_never_crash(codec: str, where: int, patch: bytes) -> None:
    data = bytearray(CODECS[codec](pickle.dumps({"a": [1, 2, 3] * 20})))
    where %= len(data)
    data[where : where + len(patch)] = patch
    scan_bytes(bytes(data), "m.bin", raise_internal=True)
