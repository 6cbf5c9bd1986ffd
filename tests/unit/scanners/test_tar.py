"""Tar archives: members as tarfile lists them, escapes, links, legacy PyTorch tar pickles."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelward import scan_bytes
from modelward.findings import Severity
from modelward.scanners.tar import is_tar_header

torch = pytest.importorskip("torch")


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {os.environ.get('MODELWARD_TEST_MARKER', '/nonexistent/x')}",))


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def critical_pkl(result) -> bool:
    return any(
        f.rule.id.startswith("MW-PKL-") and f.severity is Severity.CRITICAL for f in result.findings
    )


def add(tar: tarfile.TarFile, name: str, payload: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(payload) if payload else None)


def make_tar(fill, fmt: int = tarfile.PAX_FORMAT) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        fill(tar)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_members_match_tarfile(fmt: int) -> None:
    long_name = "d/" + "x" * (90 if fmt == tarfile.USTAR_FORMAT else 300) + ".pkl"

    def fill(tar: tarfile.TarFile) -> None:
        add(tar, "a.txt", b"hello")
        add(tar, long_name, pickle.dumps([1, 2]))
        add(tar, "dir", type=tarfile.DIRTYPE)

    data = make_tar(fill, fmt)
    result = scan_bytes(data, "a.tar", raise_internal=True)
    expected = [m.name for m in tarfile.open(fileobj=io.BytesIO(data)).getmembers() if m.isreg()]
    assert [m.members[-1] for m in result.members] == expected
    assert not [f for f in result.findings if f.severity >= Severity.LOW]


def test_escapes_links_devices_duplicates() -> None:
    def fill(tar: tarfile.TarFile) -> None:
        add(tar, "../up", b"x")
        add(tar, "/abs", b"x")
        add(tar, "ok/link", type=tarfile.SYMTYPE, linkname="../../etc/passwd")
        add(tar, "ok/inner", type=tarfile.SYMTYPE, linkname="sibling")
        add(tar, "hard", type=tarfile.LNKTYPE, linkname="/etc/shadow")
        add(tar, "dev", type=tarfile.CHRTYPE)
        add(tar, "same", b"1")
        add(tar, "same", b"2")

    found = [
        (f.rule.id, f.location.members[-1])
        for f in scan_bytes(make_tar(fill), "a.tar", raise_internal=True).findings
    ]
    for expected in [
        ("MW-TAR-001", "../up"),
        ("MW-TAR-001", "/abs"),
        ("MW-TAR-001", "ok/link"),
        ("MW-TAR-002", "ok/inner"),
        ("MW-TAR-001", "hard"),
        ("MW-TAR-003", "dev"),
        ("MW-TAR-004", "same"),
    ]:
        assert expected in found, expected


def test_malicious_member_and_tar_gz() -> None:
    data = make_tar(lambda tar: add(tar, "model.pkl", pickle.dumps(_Evil())))
    assert critical_pkl(scan_bytes(data, "a.tar", raise_internal=True))
    result = scan_bytes(gzip.compress(data), "a.tar.gz", raise_internal=True)
    assert result.format == "gzip" and critical_pkl(result)


def _legacy(pickle_payload: bytes, storages_tail: bytes = b"") -> bytes:
    def fill(tar: tarfile.TarFile) -> None:
        add(tar, "sys_info", pickle.dumps({"little_endian": True}, protocol=2))
        storages = (
            pickle.dumps(1, protocol=2)
            + pickle.dumps(("0", "cpu", torch.FloatStorage), protocol=2)
            + (3).to_bytes(8, "little")
            + b"\0" * 12
            + pickle.dumps([], protocol=2)
            + storages_tail
        )
        add(tar, "storages", storages)
        tensors = (
            pickle.dumps(1, protocol=2)
            + pickle.dumps(("t0", "0", torch.FloatTensor), protocol=2)
            + (1).to_bytes(4, "little")
            + b"\0" * 4
            + (3).to_bytes(8, "little")
            + (1).to_bytes(8, "little")
            + (0).to_bytes(8, "little")
        )
        add(tar, "tensors", tensors)
        add(tar, "pickle", pickle_payload)

    return make_tar(fill)


def test_legacy_torch_tar() -> None:
    clean = scan_bytes(_legacy(pickle.dumps({"a": 1}, protocol=2)), "old.tar", raise_internal=True)
    assert clean.format == "pytorch-legacy-tar"
    assert "MW-PT-008" in ids(clean) and not critical_pkl(clean)
    assert not [f for f in clean.findings if f.severity >= Severity.MEDIUM], clean.findings
    evil = scan_bytes(_legacy(pickle.dumps(_Evil(), protocol=2)), "old.tar", raise_internal=True)
    assert critical_pkl(evil)
    hidden = scan_bytes(
        _legacy(pickle.dumps(1), pickle.dumps(_Evil())), "old.tar", raise_internal=True
    )
    assert "MW-PT-010" in ids(hidden) and critical_pkl(hidden)


def test_header_check() -> None:
    data = make_tar(lambda tar: add(tar, "a", b"x"))
    assert is_tar_header(data[:512])
    assert not is_tar_header(b"\0" * 512)
    broken = bytearray(data[:512])
    broken[0] ^= 1
    assert not is_tar_header(bytes(broken))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=3000), st.binary(min_size=1, max_size=8))
def test_mutated_tar_never_crashes(where: int, patch: bytes) -> None:
    data = bytearray(_legacy(pickle.dumps([1]), b""))
    where %= len(data)
    data[where : where + len(patch)] = patch
    scan_bytes(bytes(data), "m.tar", raise_internal=True)
