"""PyTorch zip checkpoints, TorchScript and legacy formats: what torch.load would run is analysed.

Faithfulness: for real torch.save output and for quirky archives that PyTorch's own reader
still accepts, torch's reader (``torch._C.PyTorchFileReader``, which reads names and bytes
and unpickles nothing) returns the very data.pkl bytes the scanner analysed.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import pytest
from zipbuild import Member, build_zip, torch_like

from modelward import scan_bytes, scan_path
from modelward._internal.zipread import ZipArchive
from modelward.findings import Severity
from modelward.scanners import pytorch as pt_module

torch = pytest.importorskip("torch")


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (self.command,))


@pytest.fixture(scope="module")
def evil_pickle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    marker = Path(os.environ.get("MODELWARD_TEST_MARKER", tmp_path_factory.mktemp("m") / "PWNED"))
    return pickle.dumps(_Evil(f"touch {marker}"), protocol=2)


def ids(result) -> set[str]:
    return {f.rule.id for f in result.findings}


def critical_pkl(result) -> bool:
    return any(
        f.rule.id.startswith("MW-PKL-") and f.severity is Severity.CRITICAL for f in result.findings
    )


def saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def torch_reader_pickle(data: bytes) -> bytes:
    """data.pkl as PyTorch's own zip reader returns it (no unpickling)."""
    return bytes(torch._C.PyTorchFileReader(io.BytesIO(data)).get_record("data.pkl"))


def test_benign_checkpoint_is_clean_and_members_match_torch(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3, 2), "n": torch.arange(4)}, path)
    result = scan_path(path, raise_internal=True).files[0]
    assert result.format == "pytorch"
    assert not [f for f in result.findings if f.severity >= Severity.LOW], result.findings
    from modelward._internal.zipread import parse_zip
    from modelward.policy import Limits

    archive = parse_zip(memoryview(path.read_bytes()), Limits())
    records = torch._C.PyTorchFileReader(str(path)).get_all_records()
    assert [e.name.split("/", 1)[1] for e in archive.entries] == records


def test_malicious_data_pkl_is_critical(evil_pickle: bytes) -> None:
    data = torch_like(evil_pickle)
    assert torch_reader_pickle(data) == evil_pickle
    result = scan_bytes(data, "evil.pt", raise_internal=True)
    assert result.format == "pytorch"
    assert critical_pkl(result)


@pytest.mark.parametrize(
    "overrides",
    [
        {"flags": 0x0002 | 0x0004 | 0x0800 | 0x0400},  # odd flag bits
        {"crc": 0xDEADBEEF},  # wrong CRC: miniz in PyTorch skips the check
        {"descriptor": True},  # data descriptor, zero sizes in the local header
        {"method": 8},  # deflated data.pkl
        {"zip64": True},  # ZIP64 extra field
        {"local_name": b"archive/innocent.txt"},  # local header name ignored by miniz
    ],
)
def test_quirks_torch_accepts_are_still_analysed(evil_pickle: bytes, overrides: dict) -> None:
    data = torch_like(evil_pickle, **overrides)
    assert torch_reader_pickle(data) == evil_pickle  # PyTorch would run it
    result = scan_bytes(data, "quirk.pt", raise_internal=True)
    assert critical_pkl(result), result.findings


def test_other_folder_name_and_case_insensitive_lookup(evil_pickle: bytes) -> None:
    data = build_zip(
        [Member(b"weird name/DATA.PKL", evil_pickle), Member(b"weird name/version", b"3\n")]
    )
    assert torch_reader_pickle(data) == evil_pickle
    result = scan_bytes(data, "odd.bin", raise_internal=True)
    assert result.format == "pytorch" and critical_pkl(result)


def test_duplicate_data_pkl_all_candidates_analysed(evil_pickle: bytes) -> None:
    benign = pickle.dumps({"a": 1}, protocol=2)
    data = build_zip(
        [
            Member(b"archive/data.pkl", benign),
            Member(b"archive/version", b"3\n"),
            Member(b"archive/Data.pkl", evil_pickle),
        ]
    )
    result = scan_bytes(data, "dup.pt", raise_internal=True)
    assert "MW-ZIP-004" in ids(result)
    assert critical_pkl(result)


def test_extra_pickle_member_is_scanned_and_reported(evil_pickle: bytes) -> None:
    data = torch_like(
        pickle.dumps([1, 2], protocol=2), extra=[Member(b"archive/data/evil", evil_pickle)]
    )
    result = scan_bytes(data, "x.pt", raise_internal=True)
    assert "MW-PT-003" in ids(result)
    assert critical_pkl(result)


def test_missing_and_wrongly_sized_storages() -> None:
    good = saved({"w": torch.ones(4)})
    broken = good.replace(b"archive/data/0", b"archive/data/9")
    result = scan_bytes(broken, "m.pt", raise_internal=True)
    assert "MW-PT-004" in ids(result)


def test_no_data_pkl_is_reported() -> None:
    data = build_zip([Member(b"archive/version", b"3\n"), Member(b"other/data.pkl", b"\x80\x02N.")])
    result = scan_bytes(data, "n.pt", raise_internal=True)
    assert "MW-PT-001" in ids(result)


def test_tensor_payloads_are_never_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "big.pt"
    torch.save({f"layer{i}": torch.zeros(512 * 1024) for i in range(10)}, path)  # ~20 MB
    read: list[str] = []
    original = ZipArchive.member_bytes

    def tracking(self, entry, *args, **kwargs):  # type: ignore[no-untyped-def]
        read.append(entry.name)
        return original(self, entry, *args, **kwargs)

    monkeypatch.setattr(ZipArchive, "member_bytes", tracking)
    result = scan_path(path, raise_internal=True).files[0]
    assert result.format == "pytorch"
    assert read and not [n for n in read if "/data/" in n], read
    assert not [m for m in result.members if "/data/" in m.members[-1]]


def test_torchscript_archive(tmp_path: Path) -> None:
    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x) + 1

    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(Net()), path)
    result = scan_path(path, raise_internal=True).files[0]
    assert result.format == "torchscript"
    assert "MW-PT-005" in ids(result)


def test_torchscript_code_custom_op_and_file_access() -> None:
    code = (
        b"class M(Module):\n  def forward(self, x: Tensor) -> Tensor:\n"
        b"    y = torch.ops.evilns.run(x)\n    z = torch.from_file('/etc/passwd')\n    return y\n"
        b"  def __setstate__(self, s: Tuple[int]) -> None:\n    return None\n"
    )
    data = build_zip(
        [
            Member(b"a/data.pkl", b"\x80\x02N."),
            Member(b"a/constants.pkl", b"\x80\x02)."),
            Member(b"a/version", b"3\n"),
            Member(b"a/code/__torch__/m.py", code, method=8),
        ]
    )
    result = scan_bytes(data, "ts.pt", raise_internal=True)
    assert result.format == "torchscript"
    assert {"MW-PT-005", "MW-PT-006", "MW-PT-007"} <= ids(result)


def test_legacy_sequential_with_appended_pickle(evil_pickle: bytes) -> None:
    buf = io.BytesIO()
    torch.save(
        {"w": torch.ones(3), "i": torch.arange(2)}, buf, _use_new_zipfile_serialization=False
    )
    clean = scan_bytes(buf.getvalue(), "old.pt", raise_internal=True)
    assert clean.format == "pytorch-legacy"
    assert max(f.severity for f in clean.findings) <= Severity.LOW
    appended = scan_bytes(buf.getvalue() + evil_pickle, "old.pt", raise_internal=True)
    assert "MW-PT-010" in ids(appended) and critical_pkl(appended)


def test_legacy_sequential_malicious_data_pickle(evil_pickle: bytes) -> None:
    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"little_endian": True}, protocol=2),
        evil_pickle,
        pickle.dumps([], protocol=2),
    ]
    result = scan_bytes(b"".join(parts), "old.pth", raise_internal=True)
    assert result.format == "pytorch-legacy" and critical_pkl(result)


def test_legacy_layout_that_cannot_be_followed() -> None:
    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({}, protocol=2),
        pickle.dumps({"a": 1}, protocol=2),
        pickle.dumps(["0"], protocol=2),
        struct.pack("<q", 2) + b"\0" * 8,
    ]
    result = scan_bytes(b"".join(parts), "old.pth", raise_internal=True)
    assert "MW-PT-009" in ids(result)


def test_scanner_rules_are_documented() -> None:
    doc = pt_module.__doc__ or ""
    for rule in pt_module.PT_RULES:
        assert rule.id in doc and rule.description and rule.remediation
