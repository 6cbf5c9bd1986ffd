"""Container tricks that hide a pickle from scanners while PyTorch's reader still finds it.

The zip cases are checked against PyTorch's own reader (``torch._C.PyTorchFileReader``,
miniz): ``get_record`` returns the bytes ``torch.load`` would unpickle, and unpickles
nothing. The scanner must analyse those exact bytes, or at least fail closed.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from _regression_asserts import assert_flagged, describe
from _regression_pickles import call
from hypothesis import given, settings
from hypothesis import strategies as st

from modelward import scan_bytes
from modelward.findings import Severity

GOOD = b"\x80\x02}q\x00."


def payload(marker_command: str) -> bytes:
    return call("os", "system", marker_command)


def raw_zip(
    members: Sequence[tuple[bytes, bytes]],
    *,
    cd_offset: int | None = None,
    cd_size: int | None = None,
    comment: bytes = b"",
) -> bytes:
    """A stored zip written byte by byte, so that the end record can lie."""
    out = bytearray()
    central = bytearray()
    for name, data in members:
        crc = zlib.crc32(data)
        central += struct.pack(
            "<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0x21, crc,
            len(data), len(data), len(name), 0, 0, 0, 0, 0, len(out),
        ) + name
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(data), len(data),
            len(name), 0,
        ) + name + data
    where = len(out)
    out += central
    out += struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
        len(central) if cd_size is None else cd_size,
        where if cd_offset is None else cd_offset, len(comment),
    ) + comment
    return bytes(out)


def torch_members(pkl: bytes, padding: int = 0) -> list[tuple[bytes, bytes]]:
    return [
        (b"archive/data.pkl", pkl + b"\x00" * padding),
        (b"archive/byteorder", b"little"),
        (b"archive/version", b"3\n"),
    ]


def torch_record(tmp_path: Path, data: bytes, name: str = "data.pkl") -> bytes:
    """What torch.load would unpickle: the record's bytes from PyTorch's reader."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "probe.pt"
    path.write_bytes(data)
    return bytes(torch._C.PyTorchFileReader(str(path)).get_record(name))


def _eocd(data: bytes) -> tuple[int, int, int]:
    at = data.rfind(b"PK\x05\x06")
    _, _, _, _, _, size, offset, _ = struct.unpack_from("<4sHHHHIIH", data, at)
    return at, size, offset


def test_prepended_zip_polyglot_two_central_directories(
    tmp_path: Path, marker_command: str
) -> None:
    """A torch zip followed by a second, benign zip written with offsets relative to
    itself, whose end record points at the *first* directory: zipfile shifts offsets by
    the prepended bytes ("concat") and sees the benign archive, miniz takes the stored
    offset and loads the payload. Scanners built on zipfile analyse the decoy. Technique:
    zip parser differentials (Fickling/modelscan zip confusion, JFrog CVE-2025-10156
    family); found by this red team against modelward, which only reported a MEDIUM.
    """
    evil = raw_zip(torch_members(payload(marker_command)))
    eocd_a, size_a, offset_a = _eocd(evil)
    head = evil[:eocd_a]
    decoy = raw_zip(torch_members(GOOD, padding=len(payload(marker_command)) - len(GOOD)))
    _, size_b, offset_b = _eocd(decoy)
    assert (size_a, offset_a) == (size_b, offset_b)
    data = head + raw_zip(
        torch_members(GOOD, padding=len(payload(marker_command)) - len(GOOD)),
        cd_offset=offset_a,
    )
    assert torch_record(tmp_path, data) == payload(marker_command)
    assert_flagged(scan_bytes(data, "model.pt", raise_internal=True), "system")


def test_fake_end_record_in_comment_points_at_hidden_directory(
    tmp_path: Path, marker_command: str
) -> None:
    """Two central directories; the real end record's comment is itself a complete end
    record pointing at the one holding the payload. miniz (and zipfile) take the last
    complete end record; with raw offsets miniz reads the hidden directory while the
    zipfile-style shifted view is corrupt, so a scanner that gives up reports only a
    malformed file. Source: this red team (zip end-record confusion, cf. picklescan
    GHSA zip handling advisories).
    """
    members = [*torch_members(payload(marker_command)), (b"archive/zz", b"x")]
    base = raw_zip(members)
    eocd, size, offset = _eocd(base)
    records = base[offset : offset + size]
    # A decoy directory of three records: copies of the real ones.
    decoy_dir = records[: records.find(b"PK\x01\x02", 1)]
    rest = records[len(decoy_dir) :]
    decoy_dir += rest[: rest.find(b"PK\x01\x02", 1)]
    rest = rest[rest.find(b"PK\x01\x02", 1) :]
    decoy_dir += rest[: rest.find(b"PK\x01\x02", 1)]
    head = base[:eocd]
    fake = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 4, 4, size, offset, 0)
    data = (
        head
        + decoy_dir
        + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 3, 3, len(decoy_dir), len(head), len(fake))
        + fake
    )
    assert torch_record(tmp_path, data) == payload(marker_command)
    assert_flagged(scan_bytes(data, "model.pt", raise_internal=True), "system")


def _seven_zip(packed: bytes) -> bytes:
    """A 7z signature header (valid start-header CRC) followed by `packed` bytes."""
    tail = struct.pack("<QQI", len(packed), 0, 0)
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(tail)) + tail + packed


def test_seven_zip_wrapped_pickle_is_not_clean(marker_command: str) -> None:
    """nullifAI (ReversingLabs, February 2025): malicious "PyTorch" models on Hugging
    Face were 7z archives, not torch.save zips, and picklescan reported nothing. A 7z
    container must never come out clean: modelward cannot decode it, so it says so.

    https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face
    """
    data = _seven_zip(payload(marker_command))
    result = scan_bytes(data, "pytorch_model.bin", raise_internal=True)
    assert_flagged(result, "not analysed", rules={"MW-SEVENZIP-001"}, severity=Severity.MEDIUM)


@given(st.binary(max_size=200))
@settings(max_examples=60, deadline=None)
def test_seven_zip_fuzz_never_raises(tail: bytes) -> None:
    """Property: any bytes after a 7z signature give findings, never an exception."""
    result = scan_bytes(b"7z\xbc\xaf\x27\x1c" + tail, "x.7z", raise_internal=True)
    assert any(f.rule.id == "MW-SEVENZIP-001" for f in result.findings)


def test_gzip_in_zip_in_tar(marker_command: str) -> None:
    """Three containers deep (tar -> zip -> gzip -> pickle): scanners that stop at the
    first archive level miss the pickle (nullifAI-style re-packing; JFrog "Data
    Scientists Targeted by Malicious Hugging Face ML Models").
    """
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("weights/model.pkl.gz", gzip.compress(payload(marker_command)))
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w") as tf:
        info = tarfile.TarInfo("bundle.zip")
        info.size = len(inner.getvalue())
        tf.addfile(info, io.BytesIO(inner.getvalue()))
    assert_flagged(scan_bytes(outer.getvalue(), "bundle.tar", raise_internal=True), "system")


def test_decompression_bomb_nested_three_deep() -> None:
    """gzip(gzip(gzip(50 MB of zeros))): each layer is small, the last inflates beyond
    the ratio; the budget is per file, so the scan stops quickly with a finding instead
    of exhausting memory (classic nested bomb, cf. David Fifield's zip bombs).
    """
    layer = gzip.compress(b"\x00" * (50 << 20), 9)
    for _ in range(2):
        layer = gzip.compress(layer, 9)
    assert len(layer) < 4096
    result = scan_bytes(layer, "weights.gz", raise_internal=True)
    assert any(
        f.rule.id in {"MW-CORE-003", "MW-ZIP-003"} and f.severity >= Severity.MEDIUM
        for f in result.findings
    ), describe(result)


def test_torchscript_custom_operator_printed_without_torch_prefix() -> None:
    """torch.jit.save prints operator calls as ``ops.<namespace>.<op>(...)``, not
    ``torch.ops...``: a reader that only matched the ``torch.ops`` spelling let a custom
    operator (native code from an unreviewed library, which torch.jit.load needs loaded)
    through as plain TorchScript. Source: this red team, checked on torch.jit.save output.
    """
    torch = pytest.importorskip("torch")
    lib = torch.library.Library("mw_redteam_ns", "DEF")
    lib.define("boom(Tensor x) -> Tensor")
    lib.impl("boom", lambda x: x, "CompositeExplicitAutograd")

    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.mw_redteam_ns.boom(x)

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Model()), buf)
    code = [n for n in zipfile.ZipFile(buf).namelist() if n.endswith(".py")]
    assert any(b"ops.mw_redteam_ns.boom" in zipfile.ZipFile(buf).read(n) for n in code)
    result = scan_bytes(buf.getvalue(), "model.pt", raise_internal=True)
    assert_flagged(result, "mw_redteam_ns", rules={"MW-PT-006"}, severity=Severity.MEDIUM)


def test_torchscript_custom_class_attribute() -> None:
    """A TorchScript attribute typed ``__torch__.torch.classes.<ns>.<Class>``: a custom
    C++ class whose ``__setstate__`` runs natively while the archive loads (the library
    must be loaded first). Only PyTorch's own class namespaces (``quantized``, ...) pass.
    Source: PyTorch "Extending TorchScript with Custom C++ Classes" tutorial.
    """
    from modelward.scanners._torchscript import read_code

    source = (
        b"class M(Module):\n"
        b"  packed : __torch__.torch.classes.quantized.LinearPackedParamsBase\n"
        b"  stack : __torch__.torch.classes.my_classes.MyStackClass\n"
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b"    return x\n"
    )
    uses = read_code(source)
    assert [u.text for u in uses if u.kind == "custom-op"] == [
        "torch.classes.my_classes.MyStackClass"
    ]
