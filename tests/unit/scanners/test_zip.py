"""Generic zip archives: escapes, links, bombs, CRCs, members handed back to the engine."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zipbuild import Member, build_zip

from modelward import Policy, Status, scan_bytes
from modelward.findings import Severity
from modelward.policy import Limits


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {os.environ.get('MODELWARD_TEST_MARKER', '/nonexistent/x')}",))


@pytest.mark.parametrize("name", [b"../up.txt", b"/abs.txt", b"C:/win.txt", b"a\\..\\b.txt"])
def test_escaping_names(name: bytes) -> None:
    result = scan_bytes(build_zip([Member(name, b"x")]), "a.zip", raise_internal=True)
    assert "MW-ZIP-001" in ids(result)


def test_symlink_member() -> None:
    link = Member(b"link", b"/etc/passwd", create_system=3, external_attr=(0o120777 << 16))
    result = scan_bytes(build_zip([link]), "a.zip", raise_internal=True)
    assert "MW-ZIP-002" in ids(result)


def test_bomb_ratio_is_reported_and_capped() -> None:
    data = build_zip([Member(b"z", b"\0" * (8 << 20), method=8)])
    result = scan_bytes(
        data, "a.zip", raise_internal=True, policy=Policy(limits=Limits(max_compression_ratio=100))
    )
    assert "MW-ZIP-003" in ids(result)
    assert "MW-CORE-003" in ids(result) and result.status is Status.FAILED


def test_members_reach_the_pickle_scanner(marker_command: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner/payload.bin", pickle.dumps(_Evil()))
    result = scan_bytes(buf.getvalue(), "a.zip", raise_internal=True)
    assert result.format == "zip"
    assert any(
        f.rule.id.startswith("MW-PKL-")
        and f.severity is Severity.CRITICAL
        and f.location.members == ("inner/payload.bin",)
        for f in result.findings
    )


def test_crc_mismatch_reported_after_member_read() -> None:
    result = scan_bytes(
        build_zip([Member(b"a.txt", b"hello", crc=7)]), "a.zip", raise_internal=True
    )
    assert "MW-ZIP-006" in ids(result)


def test_prepended_zip_is_claimed_and_flagged() -> None:
    data = build_zip([Member(b"a.txt", b"hello")], prepend=b"MZ" + b"\0" * 100)
    result = scan_bytes(data, "a.zip", raise_internal=True)
    assert result.format == "zip" and "MW-ZIP-004" in ids(result)


def test_encrypted_member_is_not_silently_skipped() -> None:
    result = scan_bytes(
        build_zip([Member(b"a.txt", b"hello", flags=1)]), "a.zip", raise_internal=True
    )
    assert "MW-ZIP-005" in ids(result)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=300), st.binary(min_size=1, max_size=6))
def test_mutated_zip_never_crashes(where: int, patch: bytes) -> None:
    data = bytearray(
        build_zip(
            [
                Member(b"a/x", pickle.dumps([1, 2]), method=8),
                Member(b"a/y.npy", b"\x93NUMPY\x01\x00"),
            ]
        )
    )
    where %= len(data)
    data[where : where + len(patch)] = patch
    scan_bytes(bytes(data), "m.zip", raise_internal=True)
