"""7z archives (nullifAI): members decompressed in memory with py7zr and analysed.

ReversingLabs, February 2025: malicious "PyTorch" models on Hugging Face were 7z archives
that picklescan did not open. With py7zr installed every member is analysed; without it,
or when a member is encrypted or uses an unknown coder, a MEDIUM finding says so.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.policy import Limits, Policy
from modelward.results import FileResult

py7zr = pytest.importorskip("py7zr")

GOOD = b"\x80\x02}q\x00."


def evil_pickle(command: str) -> bytes:
    """``os.system(command)`` as a protocol-0 pickle (never loaded: the guard forbids it)."""
    return b"cos\nsystem\n(S'" + command.encode() + b"'\ntR."


def seven(
    members: Sequence[tuple[str, bytes]],
    *,
    rename: dict[str, str] | None = None,
    filters: list[dict[str, int]] | None = None,
    patch: tuple[bytes, bytes] | None = None,
) -> bytes:
    """A real 7z written by py7zr (plain header), then names/bytes patched and CRCs fixed.

    py7zr refuses to write hostile names, so they are written as same-length placeholders
    and renamed in the (UTF-16) header afterwards.
    """
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", filters=filters) as archive:
        archive.encoded_header_mode = False
        for name, data in members:
            archive.writestr(data, name)
    raw = bytearray(buf.getvalue())
    edits = [(o.encode("utf-16-le"), n.encode("utf-16-le")) for o, n in (rename or {}).items()]
    if patch is not None:
        edits.append(patch)
    for old, new in edits:
        assert len(old) == len(new) and raw.count(old) == 1, old
        at = raw.index(old)
        raw[at : at + len(old)] = new
    return fix_crcs(raw)


def fix_crcs(raw: bytearray) -> bytes:
    """Recompute the next-header and start-header CRCs (when the header is in the file)."""
    offset, size = struct.unpack_from("<QQ", raw, 12)
    if 32 + offset + size <= len(raw):
        struct.pack_into("<I", raw, 28, zlib.crc32(raw[32 + offset : 32 + offset + size]))
    struct.pack_into("<I", raw, 8, zlib.crc32(raw[12:32]))
    return bytes(raw)


def rules_at(result: FileResult) -> set[tuple[str, tuple[str, ...]]]:
    return {(f.rule.id, f.location.members) for f in result.findings}


def test_malicious_pickle_inside_is_critical(marker_command: str) -> None:
    data = seven([("config.json", b"{}"), ("archive/data.pkl", evil_pickle(marker_command))])
    result = scan_bytes(data, "pytorch_model.bin", raise_internal=True)
    critical = [f for f in result.findings if f.severity == Severity.CRITICAL]
    assert critical, result.findings
    assert all(f.rule.id.startswith("MW-PKL") for f in critical)
    assert {f.location.members for f in critical} == {("archive/data.pkl",)}
    assert not any(f.rule.id == "MW-SEVENZIP-001" for f in result.findings)


def test_nullifai_torch_zip_inside_7z(marker_command: str) -> None:
    """The nullifAI shape: a torch.save-style zip whose data.pkl calls os.system, in 7z."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("archive/data.pkl", evil_pickle(marker_command))
        zf.writestr("archive/version", b"3\n")
    data = seven([("model.pt", inner.getvalue())])
    result = scan_bytes(data, "model.7z", raise_internal=True)
    assert any(
        f.severity == Severity.CRITICAL and f.location.members[:1] == ("model.pt",)
        for f in result.findings
    ), result.findings


def test_benign_archive_is_clean() -> None:
    data = seven([("a/data.pkl", GOOD), ("b/data.pkl", GOOD)])
    result = scan_bytes(data, "model.7z", raise_internal=True)
    assert max((f.severity for f in result.findings), default=Severity.INFO) <= Severity.LOW


def test_traversal_and_absolute_names(
    marker_command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = seven(
        [("xx/up/data.pkl", evil_pickle(marker_command)), ("xetc/x.pkl", GOOD)],
        rename={"xx/up/data.pkl": "../up/data.pkl", "xetc/x.pkl": "/etc/x.pkl"},
    )
    result = scan_bytes(data, "model.7z", raise_internal=True)
    found = rules_at(result)
    for name in ("../up/data.pkl", "/etc/x.pkl"):
        assert ("MW-SEVENZIP-002", (name,)) in found, found
    # The escaping member's bytes are still analysed.
    assert any(f.severity == Severity.CRITICAL and f.location.members == ("../up/data.pkl",)
               for f in result.findings)
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere
    assert not (tmp_path.parent / "up").exists()


def test_symlink_and_directory_members_never_touch_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "dir").mkdir()
    os.symlink("/etc/passwd", src / "link")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.write(src / "link", "link")
        archive.write(src / "dir", "dir")
        archive.writestr(GOOD, "dir/data.pkl")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = scan_bytes(buf.getvalue(), "model.7z", raise_internal=True)
    assert ("MW-SEVENZIP-003", ("link",)) in rules_at(result)
    assert list(work.iterdir()) == []


def test_bomb_declared_beyond_member_limit_is_not_extracted() -> None:
    data = seven([("zeros.bin", b"\x00" * (8 << 20))])
    assert len(data) < 64 << 10
    policy = Policy(limits=Limits(max_member_bytes=1 << 20))
    started = time.monotonic()
    result = scan_bytes(data, "model.7z", policy=policy, raise_internal=True)
    assert time.monotonic() - started < 5
    found = rules_at(result)
    assert ("MW-SEVENZIP-004", ("zeros.bin",)) in found
    assert ("MW-SEVENZIP-004", ()) in found  # ratio above the default 1000
    assert not result.members  # the member was refused, not decompressed


def test_bomb_bounded_by_per_file_budget() -> None:
    """Members each under the member limit, together over the per-file budget: the scan
    stops with a resource-limit finding instead of inflating everything."""
    data = seven([(f"m{i}.bin", b"\x00" * (1 << 20)) for i in range(6)])
    policy = Policy(limits=Limits(max_total_bytes=(5 << 20) // 2))
    result = scan_bytes(data, "model.7z", policy=policy, raise_internal=True)
    assert any(f.rule.id == "MW-CORE-003" for f in result.findings), result.findings
    assert any(f.rule.id == "MW-SEVENZIP-004" for f in result.findings)


def test_encrypted_members_and_headers_are_medium_not_analysed(marker_command: str) -> None:
    for header_encryption in (False, True):
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w", password="pw",
                                header_encryption=header_encryption) as archive:
            archive.writestr(evil_pickle(marker_command), "data.pkl")
        result = scan_bytes(buf.getvalue(), "model.7z", raise_internal=True)
        hits = [f for f in result.findings if f.rule.id == "MW-SEVENZIP-001"]
        assert hits and all(f.severity == Severity.MEDIUM for f in hits)
        assert any("encrypted" in f.message for f in hits)


def test_unknown_coder_is_medium_not_analysed() -> None:
    # Folder record: 1 folder, 2 coders; the first (LZMA2, id 0x21) gets id 0x7f.
    folder = b"\x0b\x01\x00\x02\x21\x21\x01"
    data = seven([("data.pkl", GOOD)], patch=(folder, b"\x0b\x01\x00\x02\x21\x7f\x01"))
    result = scan_bytes(data, "model.7z", raise_internal=True)
    (hit,) = [f for f in result.findings if f.rule.id == "MW-SEVENZIP-001"]
    assert hit.severity == Severity.MEDIUM and hit.location.members == ("data.pkl",)
    assert "unknown coder" in hit.message


def test_crc_mismatch_reported_and_content_still_analysed(marker_command: str) -> None:
    body = evil_pickle(marker_command) + b"#" * 16
    data = bytearray(seven([("data.pkl", body)], filters=[{"id": py7zr.FILTER_COPY}]))
    at = data.index(b"#" * 16)
    data[at] = ord("!")
    result = scan_bytes(bytes(data), "model.7z", raise_internal=True)
    found = rules_at(result)
    assert ("MW-SEVENZIP-005", ("data.pkl",)) in found, found
    assert any(f.severity == Severity.CRITICAL for f in result.findings)


def test_without_py7zr_it_is_medium_not_analysed(
    marker_command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = seven([("data.pkl", evil_pickle(marker_command))])
    monkeypatch.setitem(sys.modules, "py7zr", None)  # import py7zr now raises ImportError
    result = scan_bytes(data, "model.7z", raise_internal=True)
    (hit,) = result.findings
    assert hit.rule.id == "MW-SEVENZIP-001" and hit.severity == Severity.MEDIUM
    assert "py7zr is not installed" in hit.message


_SEED = seven(
    [("config.json", b'{"a": 1}'), ("archive/data.pkl", GOOD), ("dir/x.bin", bytes(range(256)))]
)
_SEED_COPY = seven([("data.pkl", GOOD), ("b.bin", b"xyz" * 20)],
                   filters=[{"id": py7zr.FILTER_COPY}])


@given(
    seed=st.sampled_from([_SEED, _SEED_COPY]),
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(6, 1 << 16)),
    fix=st.booleans(),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_archives_never_raise(
    seed: bytes, edits: list[tuple[int, int]], cut: int | None, fix: bool
) -> None:
    """Property: mutated real 7z bytes (CRCs fixed half the time, so the parser goes deep)
    give findings, never an exception."""
    raw = bytearray(seed)
    for offset, value in edits:
        raw[6 + offset % (len(raw) - 6)] = value
    if cut is not None:
        del raw[cut:]
    data = fix_crcs(raw) if fix and len(raw) >= 32 else bytes(raw)
    scan_bytes(data, "x.7z", policy=Policy(limits=Limits(max_seconds_per_file=20)),
               raise_internal=True)
