"""The zip reader sees what zipfile (and miniz) see, and flags where they could disagree."""

from __future__ import annotations

import io
import struct
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward._internal.zipread import parse_zip
from modelward.errors import FormatError, ResourceLimitError
from modelward.policy import Limits

sys.path.insert(0, str(Path(__file__).parents[1] / "scanners"))
from zipbuild import Member, build_zip

LIMITS = Limits()


def kinds(data: bytes) -> set[str]:
    return {a.kind for a in parse_zip(memoryview(data), LIMITS).anomalies}


def zipfile_bytes(**kwargs: object) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **kwargs) as z:  # type: ignore[arg-type]
        z.writestr("a/one.txt", b"hello" * 50, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("a/two.bin", b"\x00" * 64, compress_type=zipfile.ZIP_STORED)
        z.writestr("b/ünïcode.txt", b"x", compress_type=zipfile.ZIP_BZIP2)
        z.writestr("c/lz.txt", b"lzma" * 30, compress_type=zipfile.ZIP_LZMA)
        z.writestr("empty/", b"")
        z.comment = b"a comment"
    return buf.getvalue()


@pytest.mark.parametrize("prefix", [b"", b"#!/bin/sh\nexec something\n" * 3])
def test_names_and_contents_match_zipfile(prefix: bytes) -> None:
    data = prefix + zipfile_bytes()
    archive = parse_zip(memoryview(data), LIMITS)
    ref = zipfile.ZipFile(io.BytesIO(data))
    assert [e.zipfile_name for e in archive.entries] == ref.namelist()
    for entry in archive.entries:
        assert bytes(archive.member_bytes(entry, LIMITS)) == ref.read(entry.zipfile_name)
    assert archive.comment == b"a comment"
    assert ("prepended-data" in {a.kind for a in archive.anomalies}) == bool(prefix)


def test_zip64_records_are_followed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as z:
        with z.open("big/x.bin", "w", force_zip64=True) as f:
            f.write(b"payload")
    data = buf.getvalue()
    archive = parse_zip(memoryview(data), LIMITS)
    assert [e.name for e in archive.entries] == ["big/x.bin"]
    assert bytes(archive.member_bytes(archive.entries[0], LIMITS)) == b"payload"


def test_zip64_extra_in_central_directory() -> None:
    data = build_zip([Member(b"a/x", b"zz", zip64=True)])
    archive = parse_zip(memoryview(data), LIMITS)
    assert archive.entries[0].size == 2
    assert zipfile.ZipFile(io.BytesIO(data)).read("a/x") == b"zz"


def test_stored_members_are_zero_copy_views() -> None:
    data = build_zip([Member(b"a/t", b"\x01" * 4096)])
    archive = parse_zip(memoryview(data), LIMITS)
    view = archive.member_bytes(archive.entries[0], LIMITS)
    assert isinstance(view, memoryview) and view.obj is data


@pytest.mark.parametrize(
    ("members", "kind"),
    [
        ([Member(b"a/x", b"1"), Member(b"a/x", b"2")], "duplicate-name"),
        ([Member(b"a/x", b"1"), Member(b"A/X", b"2")], "duplicate-name"),
        ([Member(b"a/x", b"1", local_name=b"a/y")], "name-mismatch"),
        ([Member(b"a/x", b"1", local_method=8)], "method-mismatch"),
        ([Member(b"a/x\x00.txt", b"1")], "nul-in-name"),
        ([Member(b"a/x", b"1", flags=1)], "encrypted"),
        ([Member(b"a/x", b"1", method=99)], "unsupported-method"),
        ([Member(b"a/x", b"12", external_attr=0x10)], "dir-attribute"),
    ],
)
def test_disagreements_are_anomalies(members: list[Member], kind: str) -> None:
    assert kind in kinds(build_zip(members))


def test_trailing_bytes_and_extra_end_records() -> None:
    base = build_zip([Member(b"a/x", b"1")])
    assert "comment-length" in kinds(base + b"junk")
    assert "multiple-eocd" in kinds(build_zip([Member(b"a/x", b"PK\x05\x06" + b"\0" * 18)]))


def test_overlapping_members() -> None:
    data = bytearray(build_zip([Member(b"a/x", b"1" * 40), Member(b"a/y", b"2" * 40)]))
    # point the second central record at the first local header
    second = data.rfind(b"PK\x01\x02")
    data[second + 42 : second + 46] = (0).to_bytes(4, "little")
    found = kinds(bytes(data))
    assert "overlap" in found


def test_wrong_crc_is_detected_when_read() -> None:
    data = build_zip([Member(b"a/x", b"abc", crc=1234)])
    archive = parse_zip(memoryview(data), LIMITS)
    result: list[bool] = []
    archive.member_bytes(archive.entries[0], LIMITS, crc_result=result)
    assert result == [False]


def test_bomb_is_capped_by_ratio() -> None:
    data = build_zip([Member(b"a/x", b"\0" * (4 << 20), method=8)])
    archive = parse_zip(memoryview(data), LIMITS)
    with pytest.raises(ResourceLimitError):
        archive.member_bytes(archive.entries[0], Limits(max_compression_ratio=50))


def test_member_count_limit() -> None:
    data = build_zip([Member(b"a/%d" % i, b"") for i in range(20)])
    with pytest.raises(ResourceLimitError):
        parse_zip(memoryview(data), Limits(max_members=10))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=600),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=1, max_size=8),
)
def test_mutated_archives_never_crash(noise: bytes, where: int, patch: bytes) -> None:
    data = bytearray(build_zip([Member(b"a/x", b"hello" * 20, method=8), Member(b"a/y", b"zz")]))
    where %= len(data)
    data[where : where + len(patch)] = patch
    for candidate in (bytes(data), noise, bytes(data) + noise):
        try:
            archive = parse_zip(memoryview(candidate), LIMITS)
        except FormatError:
            continue
        for entry in archive.entries:
            try:
                archive.member_bytes(entry, Limits(max_member_bytes=1 << 20))
            except FormatError:
                pass


def _with_count(data: bytes, count: int) -> bytes:
    """Rewrite the end record's member counts (nothing else)."""
    at = data.rfind(b"PK\x05\x06")
    return data[: at + 8] + struct.pack("<HH", count, count) + data[at + 12 :]


def test_entry_count_below_records_gives_two_views() -> None:
    data = _with_count(build_zip([Member(b"a/x", b"1"), Member(b"a/y", b"2")]), 1)
    archive = parse_zip(memoryview(data), LIMITS)
    assert [e.name for e in archive.entries] == zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert [[e.name for e in v.entries] for v in archive.views()] == [["a/x", "a/y"], ["a/x"]]
    assert "entry-count" in {a.kind for a in archive.anomalies}


def test_entry_count_above_records_keeps_zipfile_view() -> None:
    data = _with_count(build_zip([Member(b"a/x", b"1"), Member(b"a/y", b"2")]), 5)
    archive = parse_zip(memoryview(data), LIMITS)
    assert [[e.name for e in v.entries] for v in archive.views()] == [["a/x", "a/y"]]
    assert "entry-count" in {a.kind for a in archive.anomalies}


def test_consistent_archive_has_one_view() -> None:
    archive = parse_zip(memoryview(zipfile_bytes()), LIMITS)
    assert archive.views() == [archive]
    assert archive.alternate is None


def test_zipread_reexports_public_names() -> None:
    from modelward._internal import zipformat, zipinflate, zipread

    assert zipread.ZipEntry is zipformat.ZipEntry
    assert zipread.Anomaly is zipformat.Anomaly
    assert zipread.has_zip_tail is zipformat.has_zip_tail
    assert zipinflate.read_member.__module__ == "modelward._internal.zipinflate"
    assert set(zipread.__all__) >= {"ZipArchive", "ZipEntry", "Anomaly", "parse_zip", "LOCAL_SIG"}
